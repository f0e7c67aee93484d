"""Overview pictures: every reachable state grouped, every transition that fires written at least once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from meerkat_model.catalog import DRAWN, MACHINES, PROFILES
from meerkat_model.diagrams.groupings import Grouping
from meerkat_model.diagrams.lifecycle import build_lifecycle
from meerkat_model.diagrams.overview import compact, overview_diagram_of, overview_lifecycle
from meerkat_model.diagrams.suite import OVERVIEW_PROFILE
from meerkat_model.machine import Bounds, TransitionDecl
from meerkat_model.verifier import explore

from tests.diagrams.fakes import DoorMachine

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"
_LABEL = re.compile(r'label=("(?:[^"\\]|\\.)*"|<.*?>)(?=[,\];])')


def _label_words(dot: str) -> set[str]:
    """Every word written in a label of ``dot`` (edge labels, boxes, the title)."""
    text = " ".join(_LABEL.findall(dot)).replace("\\n", " ").replace("\\l", " ")
    text = re.sub(r"<[^>]*>", " ", text)
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


@pytest.mark.parametrize("key", sorted(DRAWN))
def test_the_committed_overview_shows_every_declared_transition(key: str) -> None:
    dot = (DIAGRAMS / f"{key}-overview-{OVERVIEW_PROFILE}.dot").read_text()
    machine = MACHINES[key](PROFILES[OVERVIEW_PROFILE][key])
    declared = {decl.name for decl in machine.transitions()}
    missing = sorted(declared - _label_words(dot))
    assert missing == [], f"{key}: transitions not written in the overview: {missing}"


def test_a_missing_transition_would_be_seen() -> None:
    dot = (DIAGRAMS / f"session-overview-{OVERVIEW_PROFILE}.dot").read_text()
    assert "accept_coalescing" in _label_words(dot)
    assert "accept_coalescing" not in _label_words(dot.replace("accept_coalescing", "x"))


def _door_overview(bounds: Bounds | None = None) -> tuple[DoorMachine, object]:
    machine = DoorMachine(bounds)
    exploration = explore(machine)
    states = exploration.state_list
    overview = overview_lifecycle(
        "door",
        states,
        initial=machine.initial_state(),
        edges=((states[a], states[b], t) for a, b, _, t in exploration.edge_list),
        describe=machine.describe,
        grouping=Grouping("door status", lambda d: str(d["door_status"])),
    )
    return machine, overview


def test_groups_and_transitions_of_a_small_machine() -> None:
    machine, overview = _door_overview()
    lifecycle = overview.lifecycle  # type: ignore[attr-defined]
    assert set(lifecycle.statuses) == {"Closed", "Open", "Locked", "Broken", "Removed"}
    assert lifecycle.entry == ("Closed",)
    assert sum(overview.per_group.values()) == overview.states  # type: ignore[attr-defined]
    fired = set(explore(machine).coverage.fired)
    assert overview.shown == fired  # type: ignore[attr-defined]
    between = {
        (e.sources, e.target, d.name) for e in lifecycle.edges for d in e.transitions if e.sources != (e.target,)
    }
    assert (("Closed",), "Open", "open") in between and (("Locked",), "Closed", "unlock") in between
    within = {(e.target, d.name) for e in lifecycle.edges for d in e.transitions if e.sources == (e.target,)}
    assert ("Closed", "insert_key") in within  # the key moves, the door stays Closed


def test_compact_moves_few_group_stays_into_boxes_and_notes_edges_from_everywhere() -> None:
    groups = ("A", "B", "C", "D", "E")
    decls = [
        TransitionDecl("go", "g", ("A",), "B"),
        TransitionDecl("on", "g", ("B",), "C"),
        TransitionDecl("up", "g", ("C",), "D"),
        TransitionDecl("crash", "g", ("B", "C", "D", "E"), "A"),
        TransitionDecl("end", "g", ("D",), "E"),
        TransitionDecl("poke", "g", ("A", "B", "C"), None),  # 3 of 5: not widespread
        TransitionDecl("noop", "g", groups, None),  # every group: stays a note
    ]
    lifecycle, notes = compact(build_lifecycle("m", decls, "g", initial="A"))
    assert notes == ("from every other group to A: crash",)
    assert [d.name for d in lifecycle.widely_kept] == ["noop"]
    loops = sorted((e.target, d.name) for e in lifecycle.edges for d in e.transitions if e.sources == (e.target,))
    assert loops == [("A", "poke"), ("B", "poke"), ("C", "poke")]
    assert not [e for e in lifecycle.edges if "crash" in {d.name for d in e.transitions}]


def test_the_diagram_says_when_a_declared_transition_does_not_fire() -> None:
    machine = DoorMachine(Bounds({"max_opens": 0}))
    diagram = overview_diagram_of("door", explore(machine), profile="t", narrowed={})
    assert diagram.kind == "overview" and diagram.slug == "door-overview-t"
    assert "7 of 11 declared transitions fire; not reachable under these bounds: install, open, close, slam." in (
        diagram.caption
    )
    full = overview_diagram_of("door", explore(DoorMachine()), profile="t", narrowed={})
    assert "10 of 11 declared transitions fire; not reachable under these bounds: install." in full.caption


@pytest.mark.parametrize("key", sorted(DRAWN))
def test_the_page_says_under_each_overview_that_every_transition_appears(key: str) -> None:
    page = (DIAGRAMS / "index.html").read_text()
    section = page.split(f'data-diagram="{key}-overview-{OVERVIEW_PROFILE}"', 1)[1].split("</section>", 1)[0]
    declared = len({decl.name for decl in MACHINES[key](PROFILES[OVERVIEW_PROFILE][key]).transitions()})
    assert f"All {declared} declared transitions appear." in section


def test_the_readme_shows_an_overview_and_links_the_explorer() -> None:
    readme = (DIAGRAMS.parent / "README.md").read_text()
    picture = f"diagrams/session-overview-{OVERVIEW_PROFILE}.svg"
    assert f"]({picture})" in readme and (DIAGRAMS.parent / picture).is_file()
    assert "](diagrams/explorer.html)" in readme and (DIAGRAMS / "explorer.html").is_file()
