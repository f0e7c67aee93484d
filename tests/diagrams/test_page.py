"""The HTML page: self-contained, every diagram with its tables, and it checks itself in a browser."""

from __future__ import annotations

import re
from pathlib import Path

from meerkat_model.diagrams import Diagram, Table, build_page, find_renderer
from meerkat_model.diagrams.suite import lifecycle_diagrams, reachable_diagram_of

from tests.diagrams.browser import body_attributes, dump_dom
from tests.diagrams.fakes import DoorMachine, explore_fake


def _door_diagrams() -> list[Diagram]:
    machine = DoorMachine()
    return [
        *lifecycle_diagrams([("door", machine)]),
        reachable_diagram_of("door", machine, explore_fake(machine), profile="t"),
    ]


def _svgs(diagrams: list[Diagram]) -> dict[str, str | None]:
    renderer = find_renderer()
    return {d.slug: renderer.render_svg(d.dot, diagram=d.slug) for d in diagrams}


def test_page_has_a_section_svg_and_tables_per_diagram() -> None:
    diagrams = _door_diagrams()
    page = build_page(diagrams, _svgs(diagrams), intro="intro <&>")
    assert page.startswith("<!DOCTYPE html>")
    assert 'data-diagrams-expected="3"' in page
    assert "intro &lt;&amp;&gt;" in page
    sections = re.findall(r'<section class="diagram" id="diagram-([^"]+)"', page)
    assert sections == ["door-lifecycle", "key-lifecycle", "door-reachable-t"]
    assert page.count("<svg") == 3
    assert page.count("<table>") == 1 + 1 + 2  # a transition table per lifecycle; legend + coverage
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert '<span class="swatch" style="background:#' in page


def test_page_has_no_external_resources() -> None:
    diagrams = _door_diagrams()
    page = build_page(diagrams, _svgs(diagrams), intro="")
    assert not re.search(r'\b(src|href)="(?!#)', page)
    assert "@import" not in page and "url(http" not in page


def test_svg_ids_are_unique_on_the_page() -> None:
    diagrams = _door_diagrams()
    page = build_page(diagrams, _svgs(diagrams), intro="")
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_missing_svg_is_said_and_the_dot_source_is_shown() -> None:
    diagrams = _door_diagrams()
    page = build_page(diagrams, {d.slug: None for d in diagrams}, intro="")
    assert page.count("No SVG was rendered") == 3
    assert "&quot;Closed&quot;" in page  # the escaped DOT source


def test_table_cells_are_escaped() -> None:
    diagram = Diagram("x", "lifecycle", "X", "c", "digraph {}\n", (Table("t", ("a",), (("<b>bold</b>",),)),))
    page = build_page([diagram], {"x": None}, intro="")
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


def test_browser_sees_every_diagram_rendered(tmp_path: Path) -> None:
    diagrams = _door_diagrams()
    page = tmp_path / "index.html"
    page.write_text(build_page(diagrams, _svgs(diagrams), intro=""))
    attrs = body_attributes(dump_dom(page))
    assert attrs["data-diagrams-expected"] == "3"
    assert attrs["data-diagrams-rendered"] == "3"
    assert attrs["data-diagrams-missing"] == ""
    assert attrs["data-diagrams-shown"].split() == [d.slug for d in diagrams]


def test_browser_check_reports_a_missing_or_hidden_diagram(tmp_path: Path) -> None:
    diagrams = _door_diagrams()
    svgs = _svgs(diagrams)
    svgs["key-lifecycle"] = None
    html = build_page(diagrams, svgs, intro="")
    html = html.replace("</style>", "#diagram-door-lifecycle svg { visibility: hidden; }</style>")
    page = tmp_path / "index.html"
    page.write_text(html)
    attrs = body_attributes(dump_dom(page))
    assert attrs["data-diagrams-rendered"] == "1"
    assert attrs["data-diagrams-missing"].split() == ["door-lifecycle", "key-lifecycle"]
