"""The committed diagrams/ directory is what the model generates today, and its page works.

Fails when a machine's declared transitions, its described fields or its reachable graph change
without the diagrams being regenerated (``./run render``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from meerkat_model.diagrams import Diagram, check_drift, standard_diagrams
from meerkat_model.diagrams.explorations import ExplorationCache
from meerkat_model.diagrams.suite import standard_explorer

from tests.diagrams.browser import body_attributes, dump_dom

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"
README_PICTURE = DIAGRAMS / "operation-lifecycle.svg"


@pytest.fixture(scope="module")
def cache() -> ExplorationCache:
    return ExplorationCache()


@pytest.fixture(scope="module")
def current(cache: ExplorationCache) -> list[Diagram]:
    return standard_diagrams(cache=cache)


@pytest.fixture(scope="module")
def explorer(cache: ExplorationCache) -> str:
    return standard_explorer(cache=cache)


def test_committed_diagrams_match_the_model(current: list[Diagram]) -> None:
    problems = check_drift(DIAGRAMS, current)
    assert problems == [], "diagrams/ is out of date; run ./run render\n" + "\n".join(problems)


def test_committed_explorer_page_matches_the_model(current: list[Diagram], explorer: str) -> None:
    problems = check_drift(DIAGRAMS, current, explorer=explorer)
    assert problems == [], "diagrams/ is out of date; run ./run render\n" + "\n".join(problems)


def test_the_docs_give_the_committed_explorer_counts() -> None:
    """docs/diagrams.md states each machine's states and edges in the committed explorer page."""
    page = (DIAGRAMS / "explorer.html").read_text(encoding="utf-8")
    counts = re.findall(r'"key":"(\w+)","profile":"\w+".*?"states":(\d+),"edges":(\d+)', page)
    assert [key for key, _, _ in counts] == ["ops", "session"]
    docs = " ".join((DIAGRAMS.parent / "docs" / "diagrams.md").read_text().split())
    for key, states, edges in counts:
        assert f"{int(states):,} states, {int(edges):,} edges" in docs, key


def test_every_catalog_entity_has_a_lifecycle_and_every_machine_a_reachable_graph(current: list[Diagram]) -> None:
    from meerkat_model.catalog import DRAWN, MACHINES, PROFILES

    slugs = {d.slug for d in current}
    for key in DRAWN:
        machine = MACHINES[key](PROFILES["tiny"][key])
        for entity in {decl.entity for decl in machine.transitions()}:
            assert f"{entity}-lifecycle" in slugs or f"{key}-{entity}-lifecycle" in slugs
        assert f"{key}-reachable-tiny" in slugs


def test_the_readme_picture_exists() -> None:
    assert README_PICTURE.is_file() and "<svg" in README_PICTURE.read_text()


def test_the_page_shows_every_diagram_in_a_browser(current: list[Diagram]) -> None:
    attrs = body_attributes(dump_dom(DIAGRAMS / "index.html"))
    assert attrs["data-diagrams-expected"] == str(len(current))
    assert attrs["data-diagrams-missing"] == ""
    assert attrs["data-diagrams-shown"].split() == [d.slug for d in current]
    assert attrs["data-diagrams-rendered"] == str(len(current))
