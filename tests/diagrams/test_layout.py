"""The lifecycle diagrams as a browser draws them: every text inside the picture and inside its
box, no two labels overlapping, no line through a label (checked with the fonts this browser has,
which are not the fonts the layout measured)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.diagrams.cdp import Browser

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "diagrams" / "index.html"
CHECK = (Path(__file__).parent / "layout_check.js").read_text()
CHECKED_KINDS = ("lifecycle", "overview")


def _problems(browser: Browser) -> dict[str, list[str]]:
    browser.evaluate(CHECK)
    found: dict[str, list[str]] = browser.evaluate(
        f"""Object.fromEntries(Array.from(document.querySelectorAll("section.diagram"))
            .filter((s) => {list(CHECKED_KINDS)!r}.includes(s.dataset.kind))
            .map((s) => [s.dataset.diagram, layoutProblems(s.querySelector("figure.picture svg"))]))"""
    )
    return found


def test_committed_diagrams_fit_and_nothing_overlaps(browser: Browser) -> None:
    browser.open(PAGE, ready="document.body.dataset.diagramsRendered")
    found = _problems(browser)
    assert len(found) >= 5, found.keys()  # every lifecycle at least
    assert {slug: problems for slug, problems in found.items() if problems} == {}


def test_the_check_sees_text_too_wide_for_its_box(browser: Browser) -> None:
    browser.open(PAGE, ready="document.body.dataset.diagramsRendered")
    browser.evaluate(
        """(() => { const style = document.createElement("style");
            style.textContent = "#diagram-operation-lifecycle svg text { font-size: 30px; }";
            document.head.appendChild(style); })()"""
    )
    found = _problems(browser)
    problems = found["operation-lifecycle"]
    assert any("does not fit inside its shape" in p for p in problems)
    assert any(" overlaps " in p for p in problems)
    assert found["input-lifecycle"] == []


SYNTHETIC = """<svg xmlns="http://www.w3.org/2000/svg" width="200pt" height="100pt" viewBox="0 0 200 100">
<g class="graph"><title>g</title>
<g class="node"><title>a</title><polygon points="10,10 60,10 60,40 10,40"/>
  <text x="35" y="30" text-anchor="middle" font-size="10">inside</text></g>
<g class="node"><title>b</title><polygon points="100,10 120,10 120,40 100,40"/>
  <text x="110" y="30" text-anchor="middle" font-size="10">much too wide</text></g>
<g class="edge"><title>a-&gt;c</title><path d="M35,40 L35,95" fill="none" stroke="black"/>
  <text x="180" y="98" font-size="10">off the edge</text></g>
<g class="edge"><title>c-&gt;d</title><path d="M0,27 L200,27" fill="none" stroke="black"/></g>
</g></svg>"""


@pytest.mark.parametrize(
    "expected",
    [
        'text "off the edge" of edge a->c overflows the view box',
        "the text of node b does not fit inside its shape",
        "the line of edge c->d runs through the label of node a",
        "the line of edge c->d runs through the label of node b",
    ],
)
def test_the_check_reports_each_kind_of_problem(browser: Browser, tmp_path: Path, expected: str) -> None:
    page = tmp_path / "synthetic.html"
    page.write_text(f"<!DOCTYPE html><html><body>{SYNTHETIC}</body></html>")
    browser.open(page)
    browser.evaluate(CHECK)
    problems = browser.evaluate("layoutProblems(document.querySelector('svg'))")
    assert expected in problems, problems
