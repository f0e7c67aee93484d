"""Every declared transition is enabled in a reachable state; planted dead ones are found."""

from __future__ import annotations

from meerkat_model.proofs.ops_encoding import build_ops_machine, ops_transitions
from meerkat_model.proofs.reachability import check_enabled
from meerkat_model.proofs.session_encoding import build_session_machine

from tests.proofs.variants import deep_transition, impossible_transition


def test_every_ops_transition_has_a_witness_path() -> None:
    results = check_enabled(build_ops_machine(2))
    assert [r.name for r in results] == [f"enabled:{t.name}" for t in ops_transitions()]
    assert [r.name for r in results if r.status != "proved"] == []
    by_name = {r.name: r.detail for r in results}
    # a witness ends with the transition itself and starts from the initial state
    assert by_name["enabled:complete_operation"].endswith("complete_operation")
    assert "register_operation" in by_name["enabled:complete_operation"]
    assert "wait_all_begin" in by_name["enabled:wait_all_cancel"]


def test_every_session_transition_has_a_witness_path() -> None:
    from meerkat_model.catalog import MACHINES
    from meerkat_model.machine import Bounds

    results = check_enabled(build_session_machine(2))
    names = list(dict.fromkeys(d.name for d in MACHINES["session"](Bounds()).transitions()))
    assert [r.name for r in results] == [f"enabled:{name}" for name in names]
    assert [r.name for r in results if r.status != "proved"] == []
    by_name = {r.name: r.detail for r in results}
    assert "retire" in by_name["enabled:executor_failed_exhausted_retired"]


def test_a_planted_dead_transition_is_reported_dead() -> None:
    machine = build_ops_machine(2, (*ops_transitions(), impossible_transition()))
    results = {r.name: r for r in check_enabled(machine, max_depth=3)}
    dead = results["enabled:planted_dead"]
    assert dead.status == "failed"
    assert dead.counterexample is not None
    assert dead.counterexample["kind"] == "dead transition"
    assert dead.counterexample["transition"] == "planted_dead"
    assert results["enabled:complete_operation"].status == "proved"


def test_a_transition_deeper_than_the_bound_is_unknown_not_dead() -> None:
    machine = build_ops_machine(3, (*ops_transitions(), deep_transition(3)))
    shallow = {r.name: r for r in check_enabled(machine, max_depth=2)}["enabled:planted_deep"]
    assert shallow.status == "unknown"
    assert "no witness within 2 steps" in shallow.detail
    deep = {r.name: r for r in check_enabled(machine, max_depth=3)}["enabled:planted_deep"]
    assert deep.status == "proved"
    assert deep.detail.count("register_operation") == 3
