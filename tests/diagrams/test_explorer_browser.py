"""The state explorer in a real headless browser: open it, search, click through a path, filter by
transition, switch machine, and step through a counterexample from ``meerkat-verify --trace-json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from meerkat_model.diagrams.explorer_data import unpack

from tests.diagrams.cdp import Browser
from tests.diagrams.explorer_pages import Decoded, counterexample_page, embedded

PAGE = Path(__file__).resolve().parents[2] / "diagrams" / "explorer.html"
READY = "document.body.dataset.explorerReady"


@pytest.fixture(scope="module")
def ops() -> Decoded:
    return Decoded(embedded(PAGE.read_text())["machines"][0])


def _open(browser: Browser, page: Path = PAGE) -> None:
    browser.page_errors.clear()
    browser.open(page, ready=READY)


def _state(browser: Browser) -> int:
    return int(browser.evaluate("document.body.dataset.explorerState"))


def test_it_opens_on_the_initial_state_and_loads_nothing(browser: Browser, ops: Decoded) -> None:
    _open(browser)
    assert browser.evaluate("document.body.dataset.explorerMachine") == "ops"
    assert _state(browser) == 0
    assert f"{ops.n:,} states" in browser.evaluate("document.getElementById('facts').textContent")
    rows = browser.evaluate(
        """Array.from(document.querySelectorAll('#state-view table.fields tbody tr'))
           .map((tr) => [tr.dataset.field, tr.querySelector('.doc').textContent,
                         tr.querySelector('.value').textContent])"""
    )
    assert [r[0] for r in rows] == ops.names
    assert all(doc for _, doc, _ in rows)  # every field says what it means
    assert {name: value for name, _, value in rows} == ops.fields[0]
    assert browser.evaluate("performance.getEntriesByType('resource').length") == 0
    assert browser.page_errors == []


def test_search_finds_exactly_the_matching_states(browser: Browser, ops: Decoded) -> None:
    _open(browser)
    browser.type_into("#search", "op[*]~cancelled active_count=0")
    expected = ops.where(
        lambda f: (
            any("cancelled" in v.lower() for k, v in f.items() if re.fullmatch(r"op\[.*\]", k))
            and f["active_count"] == "0"
        )
    )
    assert 0 < len(expected) < ops.n
    assert int(browser.wait_for("document.body.dataset.explorerResults")) == len(expected)
    shown = browser.evaluate("Array.from(document.querySelectorAll('#results li')).map((li) => +li.dataset.state)")
    assert shown == expected[: len(shown)]
    browser.type_into("#search", "depth=3 is:initial")
    assert browser.wait_for("document.body.dataset.explorerResults === '0'")
    browser.type_into("#search", "nosuchfield=1")
    assert "no field named" in browser.evaluate("document.getElementById('search-problems').textContent")


def test_click_through_a_path_and_back(browser: Browser, ops: Decoded) -> None:
    _open(browser)
    browser.type_into("#search", "depth=4 op[*]~retiring")
    target = ops.where(lambda f: any(v.startswith("retiring") for k, v in f.items() if k.startswith("op[")))
    target = [s for s in target if ops.depths[s] == 4]
    browser.wait_for(f"document.body.dataset.explorerResults === '{len(target)}'")
    browser.click("#results li")
    first = target[0]
    assert _state(browser) == first
    path = browser.evaluate(
        "Array.from(document.querySelectorAll('#state-view ol.path a')).map((a) => +a.dataset.state)"
    )
    assert path == ops.path(first) and len(path) == 5
    browser.click(f"#state-view ol.path a[data-state='{path[1]}']")  # back up to depth 1
    assert _state(browser) == path[1]
    successor = next(t for _, t in ops.out[path[1]] if t != path[1])
    browser.click(f"#state-view tr.edge-row a[data-state='{successor}']")  # follow a transition
    assert _state(browser) == successor
    changed = browser.evaluate(
        "Array.from(document.querySelectorAll('#state-view tr.changed')).map((tr) => tr.dataset.field)"
    )
    parent = ops.parents[successor]
    assert changed == [k for k in ops.names if ops.fields[successor].get(k) != ops.fields[parent].get(k)]
    browser.evaluate("history.back()")
    browser.wait_for(f"document.body.dataset.explorerState === '{path[1]}'")


def test_filter_by_transition(browser: Browser, ops: Decoded) -> None:
    _open(browser)
    browser.evaluate(
        """(() => { const s = document.getElementById('transition-filter'); s.value = 'wait_all_cancel';
           s.dispatchEvent(new Event('change')); })()"""
    )
    expected = ops.enabling("wait_all_cancel")
    assert 0 < len(expected) < ops.n
    assert browser.wait_for("document.body.dataset.explorerResults") == str(len(expected))
    browser.click("#results li")
    highlighted = browser.evaluate(
        "Array.from(document.querySelectorAll('#state-view tr.edge-row.filtered')).map((tr) => tr.dataset.transition)"
    )
    assert highlighted and set(highlighted) == {"wait_all_cancel"}


def test_switch_machine(browser: Browser) -> None:
    _open(browser)
    browser.click("button.machine[data-machine='session']")
    assert browser.wait_for("document.body.dataset.explorerMachine === 'session'")
    session = Decoded(embedded(PAGE.read_text())["machines"][1])
    assert browser.evaluate("document.body.dataset.explorerResults") == str(session.n)
    assert "runtime" in browser.evaluate(
        "Array.from(document.querySelectorAll('#state-view tr')).map((tr) => tr.dataset.field)"
    )


@pytest.fixture(scope="module")
def counterexample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    return counterexample_page(tmp_path_factory.mktemp("explorer"))


def test_step_through_a_counterexample(browser: Browser, counterexample: tuple[Path, Path, int]) -> None:
    page, trace, violating = counterexample
    _open(browser, page)
    browser.set_files("#trace-file", [trace])
    assert browser.wait_for("document.body.dataset.explorerTraceSteps") == "3"
    assert browser.evaluate("document.body.dataset.explorerTab") == "trace"
    assert browser.evaluate("document.body.dataset.explorerTraceStep") == "0"
    browser.click("#trace-next")
    browser.click("#trace-next")
    assert browser.evaluate("document.body.dataset.explorerTraceStep") == "2"
    assert browser.evaluate("document.querySelector('#trace-next').disabled") is True
    browser.press("ArrowLeft", key_code=37)
    assert browser.evaluate("document.body.dataset.explorerTraceStep") == "1"
    browser.press("ArrowRight", key_code=39)
    assert browser.evaluate("document.body.dataset.explorerTraceStep") == "2"
    text = browser.evaluate("document.querySelector('#trace-content').textContent")
    assert "active_count_matches" in text and "cancel_operation(0, None)" in text
    changed = browser.evaluate(
        "Array.from(document.querySelectorAll('.trace-step tr.changed')).map((tr) => tr.dataset.field)"
    )
    assert "op[0]" in changed and "active_count" not in changed  # the bug: cancel keeps the slot
    browser.click("a.in-graph")
    assert browser.evaluate("document.body.dataset.explorerTab") == "state"
    assert _state(browser) == violating
    assert "violates active_count_matches" in browser.evaluate("document.querySelector('#state-view h2').textContent")
    assert browser.page_errors == []


def test_a_file_that_is_not_a_trace_is_refused_with_a_reason(browser: Browser, tmp_path: Path) -> None:
    _open(browser)
    wrong = tmp_path / "report.json"
    wrong.write_text('{"machines": []}')
    browser.set_files("#trace-file", [wrong])
    message = browser.wait_for("document.body.dataset.explorerTraceError")
    assert "report.json: not a meerkat.trace version 1 document" in message


def test_a_trace_of_another_machine_switches_to_it(browser: Browser, tmp_path: Path) -> None:
    raw = embedded(PAGE.read_text())["machines"][1]
    assert raw["key"] == "session"
    rows, names = unpack(raw["rows"]), [f["name"] for f in raw["fields"]]
    start = {name: raw["values"][rows[i] - 1] for i, name in enumerate(names) if rows[i]}
    trace = tmp_path / "session-trace.json"
    step = {"index": 0, "action": None, "transition": None, "state": start, "canonical": start}
    document = {"format": "meerkat.trace", "version": 1, "machine": "session", "profile": "ci", "bounds": {}}
    document |= {
        "violation": {"invariant": "made_up", "message": "m"},
        "steps": [{**step, "changed": {}, "outputs": []}],
    }
    trace.write_text(json.dumps(document))
    _open(browser)
    browser.set_files("#trace-file", [trace])
    browser.wait_for("document.body.dataset.explorerTraceSteps === '1'")
    assert browser.evaluate("document.body.dataset.explorerMachine") == "session"
    assert browser.evaluate("document.querySelector('a.in-graph').textContent") == "state #0"
    browser.click("#tab-state")
    fields = browser.evaluate(
        "Array.from(document.querySelectorAll('#state-view tr[data-field]')).map((tr) => tr.dataset.field)"
    )
    assert fields == names
    assert browser.page_errors == []


@pytest.fixture(scope="module")
def stranded_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page of two toy machines: ``livelock`` (two stranded states) and ``dropping`` (the same
    two states, whose only way out is the give-up ``drain``: they need a give-up)."""
    from meerkat_model.diagrams.explorer_data import explorer_graph
    from meerkat_model.diagrams.explorer_page import build_explorer_page
    from meerkat_model.verifier import explore

    from tests.verifier.toys import DrainIsDropping, Livelock

    graphs = [
        explorer_graph("livelock", explore(Livelock()), profile="t", bounds={}),
        explorer_graph("dropping", explore(DrainIsDropping(drain=True)), profile="t", bounds={}),
    ]
    page = tmp_path_factory.mktemp("explorer") / "explorer-stranded.html"
    page.write_text(build_explorer_page(graphs, intro="Two toy machines."), encoding="utf-8")
    return page


def _badges(browser: Browser) -> list[str]:
    script = "Array.from(document.querySelectorAll('#state-view .badge')).map((b) => b.textContent)"
    return list(browser.evaluate(script))


def test_the_stranded_and_needs_give_up_filters_and_badges(browser: Browser, stranded_page: Path) -> None:
    _open(browser, stranded_page)
    assert browser.evaluate("document.body.dataset.explorerMachine") == "livelock"
    browser.click("button[data-query='is:stranded']")
    assert browser.wait_for("document.body.dataset.explorerResults") == "2"
    browser.click("#results li")
    assert "stranded" in _badges(browser) and "needs a give-up" not in _badges(browser)
    browser.type_into("#search", "is:needs-give-up")
    assert browser.wait_for("document.body.dataset.explorerResults === '0'")
    browser.click("button.machine[data-machine='dropping']")
    assert browser.wait_for("document.body.dataset.explorerMachine === 'dropping'")
    browser.click("button[data-query='is:needs-give-up']")
    assert browser.wait_for("document.body.dataset.explorerResults") == "2"
    browser.click("#results li")
    assert "needs a give-up" in _badges(browser) and "stranded" not in _badges(browser)
    browser.type_into("#search", "is:stranded")
    assert browser.wait_for("document.body.dataset.explorerResults === '0'")
    browser.type_into("#search", "is:initial")
    assert browser.wait_for("document.body.dataset.explorerResults === '1'")
    browser.click("#results li")
    assert "needs a give-up" not in _badges(browser)
    assert browser.page_errors == []
