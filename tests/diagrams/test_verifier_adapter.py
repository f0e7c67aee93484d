"""The adapter to meerkat_model.verifier: its graph, violations by state and replayed traces."""

from __future__ import annotations

import itertools

from meerkat_model.diagrams import explore_with_verifier, trace_diagram_of
from meerkat_model.machine import Bounds, Stepped

from tests.diagrams.fakes import DoorMachine, explore_fake


def test_verifier_graph_matches_a_plain_breadth_first_search() -> None:
    machine = DoorMachine()
    ours = explore_fake(machine)
    theirs = explore_with_verifier(machine)
    assert set(theirs.graph.nodes) == set(ours.graph.nodes)
    assert set(theirs.graph.edges) == set(ours.graph.edges)
    assert theirs.violations == {}


def test_violations_are_keyed_by_the_violating_state() -> None:
    machine = DoorMachine(Bounds({"buggy": 1}))
    explored = explore_with_verifier(machine)
    assert explored.violations
    for state, messages in explored.violations.items():
        assert state in explored.graph
        assert machine.invariants()[0].check(state) is not None
        assert all(m.startswith("opens_bounded: opened 2 times") for m in messages)


def test_traces_are_replayed_concrete_steps() -> None:
    machine = DoorMachine(Bounds({"buggy": 1}))
    explored = explore_with_verifier(machine)
    target = next(iter(explored.violations))
    frames = explored.frames_to(target)
    assert frames[0].state == machine.initial_state() and frames[-1].state == target
    for before, after in itertools.pairwise(frames):
        result = machine.step(before.state, (str(after.action),))
        assert isinstance(result, Stepped) and result.state == after.state
    diagram = trace_diagram_of("door", machine, explored, profile="t", to="violation")
    assert len(diagram.tables[0].rows) == len(frames)


def test_every_transition_between_two_states_is_recorded() -> None:
    machine = DoorMachine()
    explored = explore_with_verifier(machine)
    start = machine.initial_state()
    # knock keeps the state; nothing else does from the initial state
    assert explored.graph.edges[start, start]["transitions"] == ("knock",)
    broken = ("Broken", 0, False)
    assert explored.graph.edges[start, broken]["transitions"] == ("break",)
    # close and slam both lead from an open door to a closed one: the edge carries both
    assert explored.graph.edges[("Open", 1, False), ("Closed", 1, False)]["transitions"] == ("close", "slam")
    for _, _, data in explored.graph.edges(data=True):
        assert data["transition"] in data["transitions"]


def test_reachable_diagram_labels_an_edge_with_every_transition() -> None:
    from meerkat_model.diagrams import reachable_diagram_of

    machine = DoorMachine()
    diagram = reachable_diagram_of("door", machine, explore_with_verifier(machine), profile="t")
    assert 'label="close\\nslam"' in diagram.dot
    coverage = dict(diagram.tables[1].rows)
    assert coverage["slam"] == coverage["close"] != "0"
