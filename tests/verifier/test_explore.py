"""The breadth-first explorer: fixed point, graph, coverage, stuck states, shortest traces,
symmetry reduction."""

from __future__ import annotations

import importlib

import networkx as nx
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.ops import OpsMachine
from meerkat_model.ops.actions import CancelOperation, RegisterOperation, TerminateOwner, WaitAll
from meerkat_model.verifier import explore, shortest_trace, symmetry_comparison

from tests.verifier.toys import SMALL_OPS, THREE_IDS, Counter, ForgetfulTerminateOwner, LeakyCancel, UnpinnedRetention
from tests.verifier.traces import replayed_violation_trace


def test_reaches_the_fixed_point_of_a_counter() -> None:
    e = explore(Counter(limit=5))
    assert e.complete
    assert sorted(e.state_list) == [0, 1, 2, 3, 4, 5]
    assert e.depth == 5
    # inc: 5, dec: 5, reset: 6 (including the self-loop at zero)
    assert e.edges == 16
    assert e.violations == [] and e.ok


def test_coverage_lists_dead_transitions() -> None:
    e = explore(Counter(limit=3))
    assert e.coverage.dead == ("never",)
    assert e.coverage.ratio == 0.75
    assert e.coverage.undeclared == ()


def test_stuck_states_have_obligations_and_no_way_forward() -> None:
    e = explore(Counter(limit=5, obliged_at=3))
    assert [e.state_list[i] for i in e.stuck] == [3]
    assert explore(Counter(limit=5)).stuck == []


def test_violation_is_recorded_at_the_shallowest_state_with_a_shortest_trace() -> None:
    e = explore(Counter(limit=9, bad=4))
    assert not e.ok
    (v,) = e.violations
    assert v.invariant == "below_bad" and v.depth == 4
    trace = shortest_trace(e, e.state_list[v.state_index])
    assert [st.label for st in trace] == ["inc"] * 4
    assert trace[-1].diff == {"value": (3, 4)}
    # a violating state is not expanded
    assert 5 not in e.state_list


def test_graph_is_built_from_the_compact_record() -> None:
    e = explore(Counter(limit=3))
    g = e.graph()
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == e.states
    assert g.nodes[0]["initial"] and g.nodes[3]["depth"] == 3
    assert g.edges[1, 2]["transition"] == "inc"
    assert g.edges[1, 2]["action"] == "inc" and g.edges[1, 2]["action_obj"] == ("inc",)


def test_progress_is_reported_while_exploring(monkeypatch: object) -> None:
    explore_module = importlib.import_module("meerkat_model.verifier.explore")

    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(explore_module, "PROGRESS_EVERY", 2)  # type: ignore[attr-defined]
    explore(Counter(limit=9), progress=lambda s, f, t: calls.append((s, f, t)))
    assert calls and all(s >= 1 and t >= 0 for s, _, t in calls)


def test_max_states_stops_early_and_marks_incomplete() -> None:
    e = explore(Counter(limit=50), max_states=10)
    assert not e.complete and e.states >= 10


def test_planted_durability_bug_gives_the_shortest_trace() -> None:
    machine = ForgetfulTerminateOwner(SMALL_OPS)
    e = explore(machine)
    names = {v.invariant for v in e.violations}
    assert "acknowledged_terminal_ops_recoverable" in names
    # the trace has the violation's depth and replays on concrete states to the violation
    trace = replayed_violation_trace(machine, e, "acknowledged_terminal_ops_recoverable")
    assert [type(st.action) for st in trace] == [RegisterOperation, TerminateOwner]
    assert "op[0]" in trace[-1].diff


def test_planted_capacity_bug_is_found_with_and_without_symmetry() -> None:
    for symmetry in (True, False):
        e = explore(LeakyCancel(SMALL_OPS), symmetry=symmetry)
        v = next(v for v in e.violations if v.invariant == "active_count_matches")
        trace = shortest_trace(e, e.state_list[v.state_index])
        assert [type(st.action) for st in trace] == [RegisterOperation, CancelOperation]


def test_reduced_and_full_explorations_agree() -> None:
    bounds = Bounds({**SMALL_OPS.values, "kinds": 2})
    machine = OpsMachine(bounds)
    reduced, full = explore(machine, symmetry=True), explore(machine, symmetry=False)
    comparison = symmetry_comparison(reduced, full)
    assert comparison["invariants_agree"] and comparison["canonical_states_agree"]
    assert full.states > reduced.states and comparison["ratio"] > 1.5
    assert reduced.coverage.dead == full.coverage.dead
    buggy_reduced, buggy_full = explore(LeakyCancel(bounds)), explore(LeakyCancel(bounds), symmetry=False)
    assert buggy_reduced.invariant_results() == buggy_full.invariant_results()


def test_trace_through_a_reduced_exploration_replays_concretely() -> None:
    machine = OpsMachine(SMALL_OPS)
    e = explore(machine)
    deepest = max(range(e.states), key=e.depths.__getitem__)
    trace = shortest_trace(e, e.state_list[deepest])
    assert len(trace) == e.depth
    state = machine.initial_state()
    for st in trace:
        result = machine.step(state, st.action)
        assert isinstance(result, Stepped) and result.state == st.state
        state = result.state
    assert machine.canonical(state) == e.state_list[deepest]


def test_unpinned_retention_loses_a_barrier_member() -> None:
    machine = UnpinnedRetention(THREE_IDS)
    e = explore(machine)
    v = next(v for v in e.violations if v.invariant == "barrier_members_tracked")
    trace = shortest_trace(e, e.state_list[v.state_index])
    kinds = [type(st.action) for st in trace]
    assert kinds.count(RegisterOperation) == 3 and WaitAll in kinds
    assert len(trace) == v.depth == 6
    assert explore(OpsMachine(THREE_IDS)).ok
