"""Traces: shortest paths read from the graph, drawn with the changed fields of every step."""

from __future__ import annotations

import itertools

import pytest
from meerkat_model.diagrams import NoCounterexampleError, shortest_frames, to_dot, trace_diagram_of, trace_graph
from meerkat_model.diagrams.explored import deepest_state, initial_states
from meerkat_model.machine import Bounds, Stepped

from tests.diagrams.fakes import DoorMachine, explore_fake


def test_shortest_frames_replay_through_the_machine() -> None:
    machine = DoorMachine(Bounds({"max_opens": 2}))
    explored = explore_fake(machine)
    target = ("Open", 2, False)
    frames = shortest_frames(explored.graph, target)
    assert frames[0].state == machine.initial_state() and frames[0].action is None
    assert frames[-1].state == target
    assert [f.action for f in frames[1:]] == ["open", "close", "open"]
    for before, after in itertools.pairwise(frames):
        result = machine.step(before.state, (after.action,))  # type: ignore[arg-type]
        assert isinstance(result, Stepped) and result.state == after.state
        assert result.transition == after.transition


def test_unreachable_target_is_an_error() -> None:
    explored = explore_fake(DoorMachine())
    with pytest.raises(ValueError, match="not reachable"):
        shortest_frames(explored.graph, ("Open", 99, False))


def test_deepest_and_initial_states() -> None:
    explored = explore_fake(DoorMachine())
    graph = explored.graph
    assert initial_states(graph) == [("Closed", 0, False)]
    deepest = deepest_state(graph)
    assert graph.nodes[deepest]["depth"] == max(d for _, d in graph.nodes(data="depth"))


def test_trace_graph_lists_initial_fields_then_changes() -> None:
    machine = DoorMachine()
    frames = shortest_frames(explore_fake(machine).graph, ("Open", 1, True))
    dot = to_dot(trace_graph(frames, machine="door", title="T", describe=machine.describe))
    assert "step 0: initial state\\ldoor_status: Closed\\lkey: out\\lopens: 0\\l" in dot
    assert "key: out -> in" in dot and "door_status: Closed -> Open" in dot and "opens: 0 -> 1" in dot
    assert dot.count(' -> "step') == len(frames) - 1
    assert "VIOLATES" not in dot


def test_counterexample_trace_ends_in_red_at_a_shallowest_violation() -> None:
    machine = DoorMachine(Bounds({"buggy": 1}))
    explored = explore_fake(machine)
    diagram = trace_diagram_of("door", machine, explored, profile="t", to="violation")
    assert diagram.kind == "trace" and diagram.slug == "trace-door-t"
    assert "VIOLATES:\\lopens_bounded: opened 2 times, limit 1\\l" in diagram.dot
    steps = diagram.tables[0].rows
    assert [row[1] for row in steps] == ["(initial)", "open", "close", "open"]
    assert "opens: 1 -> 2" in steps[-1][3]


def test_no_counterexample_when_every_invariant_holds() -> None:
    machine = DoorMachine()
    with pytest.raises(NoCounterexampleError, match="no invariant of 'door' is violated"):
        trace_diagram_of("door", machine, explore_fake(machine), profile="t", to="violation")


def test_trace_to_a_deepest_state() -> None:
    machine = DoorMachine()
    explored = explore_fake(machine)
    diagram = trace_diagram_of("door", machine, explored, profile="t", to="deepest")
    depth = explored.graph.nodes[deepest_state(explored.graph)]["depth"]
    assert len(diagram.tables[0].rows) == depth + 1
    assert "VIOLATES" not in diagram.dot


def test_empty_trace_is_refused() -> None:
    with pytest.raises(ValueError, match="at least its initial state"):
        trace_graph([], machine="door", title="T", describe=DoorMachine().describe)


def test_edge_names_the_transition_only_when_the_action_label_does_not() -> None:
    from meerkat_model.diagrams import TraceFrame

    frames = [
        TraceFrame(("Closed", 0, False)),
        TraceFrame(("Open", 1, False), "open(door)", "open"),
        TraceFrame(("Closed", 1, False), "open_close(x)", "open"),
        TraceFrame(("Closed", 1, False), "knock", "knock"),
    ]
    graph = trace_graph(frames, machine="door", title="T", describe=DoorMachine().describe)
    assert [e.attrs["label"] for e in graph.edges] == ["open(door)", "open_close(x)\n(open)", "knock"]
