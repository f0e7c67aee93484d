"""Lifecycle diagrams follow the declared transitions exactly, whatever their declaration order."""

from __future__ import annotations

import random

import pytest
from meerkat_model.diagrams import UnknownEntityError, build_lifecycle, entities, lifecycle_graph, to_dot
from meerkat_model.diagrams.lifecycle import JUNCTION_PREFIX, START_NODE, transition_label
from meerkat_model.machine import TransitionDecl

from tests.diagrams.fakes import DOOR_TRANSITIONS


def _door_dot(transitions: tuple[TransitionDecl, ...] = DOOR_TRANSITIONS) -> str:
    return to_dot(lifecycle_graph(build_lifecycle("door", transitions, "door"), title="Door"))


def test_entities_in_declaration_order() -> None:
    assert entities(DOOR_TRANSITIONS) == ["door", "key"]


def test_statuses_entry_and_terminal() -> None:
    lifecycle = build_lifecycle("door", DOOR_TRANSITIONS, "door")
    assert set(lifecycle.statuses) == {"Closed", "Open", "Locked", "Broken", "Removed"}
    assert lifecycle.statuses[0] == "Closed"  # flow order starts at the entry status
    assert lifecycle.entry == ("Closed",)
    assert set(lifecycle.terminal) == {"Broken", "Removed"}
    assert [d.name for d in lifecycle.transitions] == sorted(d.name for d in DOOR_TRANSITIONS if d.entity == "door")


def test_every_declared_transition_is_drawn_with_its_guard() -> None:
    graph = lifecycle_graph(build_lifecycle("door", DOOR_TRANSITIONS, "door"), title="Door")
    labels = "\n".join(edge.attrs.get("label", "") for edge in graph.edges) + graph.graph_attrs["label"]
    for decl in DOOR_TRANSITIONS:
        if decl.entity == "door":
            assert decl.name in labels
            if decl.guard:
                assert f"[{decl.guard}]" in labels


def test_creating_transition_starts_at_the_start_point() -> None:
    graph = lifecycle_graph(build_lifecycle("door", DOOR_TRANSITIONS, "door"), title="Door")
    from_start = [e for e in graph.edges if e.source == START_NODE]
    assert [(e.target, e.attrs.get("label")) for e in from_start] == [("Closed", "install\n[frame ready]")]


def test_multi_source_transitions_meet_at_one_junction() -> None:
    graph = lifecycle_graph(build_lifecycle("door", DOOR_TRANSITIONS, "door"), title="Door")
    junctions = [n.node_id for n in graph.nodes if n.node_id.startswith(JUNCTION_PREFIX)]
    assert len(junctions) == 1  # break and remove share the source set {Closed, Open, Locked}
    into = sorted(e.source for e in graph.edges if e.target == junctions[0])
    assert into == ["Closed", "Locked", "Open"]
    out = sorted((e.target, e.attrs["label"]) for e in graph.edges if e.source == junctions[0])
    assert out == [("Broken", "break"), ("Removed", "remove")]


def test_status_keeping_transition_allowed_in_many_statuses_is_noted_once() -> None:
    lifecycle = build_lifecycle("door", DOOR_TRANSITIONS, "door")
    assert [d.name for d in lifecycle.widely_kept] == ["knock"]
    graph = lifecycle_graph(lifecycle, title="Door")
    assert not [e for e in graph.edges if e.source == e.target]
    assert graph.graph_attrs["label"] == "Door\nkeeps the status in every status: knock"


def test_status_keeping_transition_in_few_statuses_is_listed_in_each_box() -> None:
    decls = (
        TransitionDecl("go", "x", ("A",), "B"),
        TransitionDecl("stop", "x", ("B",), "C", "", True),
        TransitionDecl("other", "x", ("D",), "E"),
        TransitionDecl("poke", "x", ("A", "B"), None, "gently"),
        TransitionDecl("sink", "x", ("E",), None),
        TransitionDecl("look", "x", ("A", "B", "C"), None),
        TransitionDecl("nod", "x", ("B", "C", "D"), None),
        TransitionDecl("wave", "x", ("A", "B", "C", "D"), None),
        TransitionDecl("shrug", "x", ("A", "B", "C", "D", "E"), None),
    )
    graph = lifecycle_graph(build_lifecycle("m", decls, "x"), title="X")
    assert not [e for e in graph.edges if e.source == e.target]  # no loop: its label would meet other lines
    kept = sorted((n.node_id, n.attrs["tooltip"]) for n in graph.nodes if "tooltip" in n.attrs)
    assert kept == [
        ("A", "A\nkeeps the status:\npoke\n[gently]"),
        ("B", "B\nkeeps the status:\npoke\n[gently]"),
        ("E", "E\nkeeps the status:\nsink"),
    ]
    labels = {n.node_id: n.attrs["label"] for n in graph.nodes}
    assert "poke<BR" in labels["A"] and "[gently]" in labels["A"] and "sink<BR" in labels["E"]
    assert labels["C"] == "C" and labels["D"] == "D"
    assert graph.graph_attrs["label"].split("\n")[1:] == [
        "keeps the status in A, B, C: look",
        "keeps the status in D, B, C: nod",  # statuses in flow order: entries A, D first
        "keeps the status in every status: shrug",
        "keeps the status in every status but E: wave",
    ]


def test_terminal_statuses_have_a_double_border_and_sink_rank() -> None:
    graph = lifecycle_graph(build_lifecycle("door", DOOR_TRANSITIONS, "door"), title="Door")
    nodes = {n.node_id: n.attrs for n in graph.nodes}
    assert nodes["Broken"]["peripheries"] == "2" and nodes["Removed"]["peripheries"] == "2"
    assert "peripheries" not in nodes["Open"]
    assert ("sink", ("Broken", "Removed")) in graph.rank_groups


def test_output_does_not_depend_on_declaration_order() -> None:
    expected = _door_dot()
    shuffled = list(DOOR_TRANSITIONS)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert _door_dot(tuple(shuffled)) == expected


def test_a_changed_declaration_changes_the_output() -> None:
    changed = tuple(
        TransitionDecl(d.name, d.entity, d.sources, d.target, "key turned twice") if d.name == "unlock" else d
        for d in DOOR_TRANSITIONS
    )
    assert _door_dot(changed) != _door_dot()


def test_cyclic_lifecycle_has_an_entry_only_when_the_initial_status_is_known() -> None:
    unknown = build_lifecycle("door", DOOR_TRANSITIONS, "key")
    assert unknown.entry == () and unknown.terminal == ()
    graph = lifecycle_graph(unknown, title="Key")
    assert START_NODE not in {n.node_id for n in graph.nodes}
    assert START_NODE not in "".join(to_dot(graph))
    known = build_lifecycle("door", DOOR_TRANSITIONS, "key", initial="out")
    assert known.entry == ("Out",) and known.statuses[0] == "Out"
    graph = lifecycle_graph(known, title="Key")
    assert [(e.source, e.target) for e in graph.edges if e.source == START_NODE] == [(START_NODE, "Out")]


def test_lifecycle_diagrams_read_the_initial_status_from_describe() -> None:
    from meerkat_model.diagrams.suite import initial_status, lifecycle_diagrams

    from tests.diagrams.fakes import DoorMachine

    assert initial_status(DoorMachine(), "key") == "out"  # describe() has a field named "key"
    assert initial_status(DoorMachine(), "door") is None  # and none named "door"
    diagrams = {d.slug: d for d in lifecycle_diagrams([("door", DoorMachine())])}
    assert '"__start__" -> "Out"' in diagrams["key-lifecycle"].dot


def test_unknown_entity_is_a_typed_error() -> None:
    with pytest.raises(UnknownEntityError, match=r"'window'.*door, key"):
        build_lifecycle("door", DOOR_TRANSITIONS, "window")


def test_long_guards_are_wrapped() -> None:
    decl = TransitionDecl("go", "x", ("A",), "B", "a guard that is far too long to fit on a single edge label")
    lines = transition_label(decl).split("\n")
    assert lines[0] == "go" and len(lines) > 2
    assert " ".join(lines[1:]) == "[a guard that is far too long to fit on a single edge label]"


def test_transitions_sharing_a_guard_share_one_guard_line() -> None:
    from meerkat_model.diagrams.lifecycle import edge_label

    decls = [
        TransitionDecl("succeeded", "run", ("Running",), "Idle", "pre-run Idle"),
        TransitionDecl("failed", "run", ("Running",), "Idle", "pre-run Idle"),
        TransitionDecl("failed", "run", ("Running",), "Idle", "pre-run Idle"),
        TransitionDecl("crashed", "run", ("Running",), "Idle"),
    ]
    assert edge_label(decls) == "succeeded, failed\n[pre-run Idle]\ncrashed"


def test_entry_status_found_in_the_first_state_that_shows_the_entity() -> None:
    from meerkat_model.diagrams.suite import initial_status

    from tests.diagrams.fakes import DoorMachine, explore_fake

    class LateKey(DoorMachine):
        """``key`` is only described once the door has been opened."""

        def describe(self, state: tuple[str, int, bool]) -> dict[str, object]:
            described = dict(super().describe(state))
            if state[1] == 0:
                described["key"] = None
            return described

    machine = LateKey()
    assert initial_status(machine, "key") is None
    assert initial_status(machine, "key", explore_fake(machine).graph) == "out"
