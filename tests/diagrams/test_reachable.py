"""Reachable-state diagrams: every state once, coloured by phase, initial and violations marked."""

from __future__ import annotations

import networkx as nx
import pytest
from meerkat_model.diagrams import ExploredGraph, GraphTooLargeError, reachable_diagram, to_dot
from meerkat_model.diagrams.reachable import LEGEND_PREFIX, NO_PHASE, guess_phase_field, state_order
from meerkat_model.diagrams.style import INITIAL_BORDER, VIOLATION_FILL
from meerkat_model.machine import Bounds

from tests.diagrams.fakes import DoorMachine, explore_fake


def _door(**bounds: int) -> tuple[DoorMachine, ExploredGraph]:
    machine = DoorMachine(Bounds(bounds))
    return machine, explore_fake(machine)


def test_one_node_per_state_and_one_edge_per_transition() -> None:
    machine, explored = _door()
    result = reachable_diagram(explored.graph, machine="door", profile="t", describe=machine.describe)
    states = [n for n in result.graph.nodes if not n.node_id.startswith(LEGEND_PREFIX)]
    edges = [e for e in result.graph.edges if e.attrs.get("style") != "invis"]
    assert result.states == explored.graph.number_of_nodes() == len(states)
    assert result.edges == explored.graph.number_of_edges() == len(edges)
    assert sum(count for _, count in result.transition_counts) == result.edges
    assert result.depth == max(d for _, d in explored.graph.nodes(data="depth"))


def test_initial_state_is_marked() -> None:
    machine, explored = _door()
    result = reachable_diagram(explored.graph, machine="door", profile="t", describe=machine.describe)
    initial = [n for n in result.graph.nodes if n.attrs.get("shape") == "doublecircle"]
    assert [n.node_id for n in initial] == ["s0"]
    assert initial[0].attrs["color"] == INITIAL_BORDER
    assert ("source", ("s0",)) in result.graph.rank_groups


def test_nodes_are_coloured_by_phase() -> None:
    machine, explored = _door()
    result = reachable_diagram(explored.graph, machine="door", profile="t", describe=machine.describe)
    assert result.phase_field == "door_status"
    colours = {p.phase: p.colour for p in result.legend}
    assert set(colours) == {"Closed", "Open", "Locked", "Broken", "Removed"}
    assert len(set(colours.values())) == len(colours)
    order = state_order(explored.graph)
    for index, state in enumerate(order):
        node = result.graph.nodes[index]
        assert node.node_id == f"s{index}"
        assert node.attrs["fillcolor"] == colours[machine.describe(state)["door_status"]]
    assert sum(p.states for p in result.legend) == result.states
    legend = {n.attrs["label"]: n.attrs["fillcolor"] for n in result.graph.nodes if n.node_id.startswith(LEGEND_PREFIX)}
    assert legend == colours


def test_explicit_phase_field_and_no_phase() -> None:
    machine, explored = _door()
    by_key = reachable_diagram(
        explored.graph, machine="door", profile="t", describe=machine.describe, phase_field="key"
    )
    assert {p.phase for p in by_key.legend} == {"in", "out"}
    plain = reachable_diagram(explored.graph, machine="door", profile="t", describe=lambda s: {"x": 1})
    assert plain.phase_field is None and [p.phase for p in plain.legend] == [NO_PHASE]


def test_guess_phase_field_prefers_phase_then_status() -> None:
    assert guess_phase_field({"b_status": 1, "a_phase": 2}) == "a_phase"
    assert guess_phase_field({"z": 1, "op_status": 2}) == "op_status"
    assert guess_phase_field({"z": 1}) is None


def test_violating_states_and_edges_into_them_are_red() -> None:
    machine, explored = _door(buggy=1)
    assert explored.violations
    result = reachable_diagram(
        explored.graph, machine="door", profile="t", describe=machine.describe, violations=explored.violations
    )
    red = {n.node_id for n in result.graph.nodes if n.attrs.get("fillcolor") == VIOLATION_FILL}
    assert red == {state_id for state_id, _ in result.violations}
    assert len(red) == len(explored.violations)
    into_red = [e for e in result.graph.edges if e.target in red]
    assert into_red and all("color" in e.attrs for e in into_red)
    assert all("opens_bounded" in "; ".join(msgs) for _, msgs in result.violations)


def test_without_violations_nothing_is_red() -> None:
    machine, explored = _door()
    result = reachable_diagram(
        explored.graph, machine="door", profile="t", describe=machine.describe, violations=explored.violations
    )
    assert result.violations == ()
    assert all(n.attrs["fillcolor"] != VIOLATION_FILL for n in result.graph.nodes)


def test_graph_above_the_node_limit_is_refused_unless_forced() -> None:
    machine, explored = _door()
    count = explored.graph.number_of_nodes()
    with pytest.raises(GraphTooLargeError, match=f"{count} states, above the layout limit of {count - 1}"):
        reachable_diagram(explored.graph, machine="door", profile="t", describe=machine.describe, node_limit=count - 1)
    forced = reachable_diagram(
        explored.graph, machine="door", profile="t", describe=machine.describe, node_limit=count - 1, force=True
    )
    assert forced.states == count


def test_output_does_not_depend_on_graph_insertion_order() -> None:
    machine, explored = _door()
    graph = explored.graph
    reversed_graph = nx.DiGraph()
    reversed_graph.add_nodes_from(reversed(list(graph.nodes(data=True))))
    reversed_graph.add_edges_from(reversed(list(graph.edges(data=True))))
    first = reachable_diagram(graph, machine="door", profile="t", describe=machine.describe)
    second = reachable_diagram(reversed_graph, machine="door", profile="t", describe=machine.describe)
    assert to_dot(first.graph) == to_dot(second.graph)


def test_tooltips_carry_every_field() -> None:
    machine, explored = _door()
    result = reachable_diagram(explored.graph, machine="door", profile="t", describe=machine.describe)
    assert result.graph.nodes[0].attrs["tooltip"] == "s0\ndoor_status: Closed\nkey: out\nopens: 0"


def test_custom_phase_function() -> None:
    machine, explored = _door()
    result = reachable_diagram(
        explored.graph,
        machine="door",
        profile="t",
        describe=machine.describe,
        phase_field="open or not",
        phase_of=lambda d: "open" if d["door_status"] == "Open" else "other",
    )
    assert {p.phase: p.states for p in result.legend} == {
        "open": sum(1 for s in explored.graph.nodes if s[0] == "Open"),
        "other": sum(1 for s in explored.graph.nodes if s[0] != "Open"),
    }
    assert "fill colour = open or not" in result.graph.graph_attrs["label"]
