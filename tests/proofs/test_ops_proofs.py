"""The operation-registry encoding: every invariant inductive, broken variants caught."""

from __future__ import annotations

from typing import Any

import pytest
import z3
from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.ops_encoding import build_ops_machine, ops_invariants, ops_transitions
from meerkat_model.proofs.totality import check_totality

from tests.proofs.variants import (
    complete_without_outcome,
    complete_without_post_state,
    recover_without_retention,
    register_ignoring_limit,
    replace,
)

EXPECTED_INVARIANTS = {
    "op.terminal_outcome",
    "op.peer_ready",
    "op.kind_known",
    "registry.active_count",
    "registry.max_concurrent",
    "registry.completed_order",
    "registry.retention_bound",
    "registry.barrier_members",
    "feed.watermark",
    "feed.seq_issued",
    "feed.seq_distinct",
}


@pytest.fixture(scope="module")
def results_at_8() -> dict[str, object]:
    return {r.name: r for r in prove_invariants(build_ops_machine(8))}


def test_the_spec_invariants_are_encoded() -> None:
    names = {inv.name for inv in ops_invariants()}
    assert names >= EXPECTED_INVARIANTS


def test_every_ops_invariant_is_inductive_over_8_ids(results_at_8: dict[str, object]) -> None:
    assert len(results_at_8) == len(ops_invariants())
    not_proved = {name: r for name, r in results_at_8.items() if r.status != "proved"}  # type: ignore[attr-defined]
    assert not_proved == {}


def test_complete_without_outcome_yields_a_counterexample_to_induction() -> None:
    machine = build_ops_machine(3, replace(ops_transitions(), complete_without_outcome()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:op.terminal_outcome"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None
    assert cex["transition"] == "complete_operation"
    assert cex["invariant"] == "op.terminal_outcome"
    k = cex["broken_id"]
    assert cex["pre"]["status"][k] in ("Running", "Retiring")
    assert cex["pre"]["outcome"][k] == "None"
    assert cex["post"]["status"][k] == "Completed"
    assert cex["post"]["outcome"][k] == "None"
    assert "complete_operation" in broken.detail
    # the other transitions still preserve it: only the broken one is named
    assert "fail_operation" not in broken.detail


def test_register_without_limit_breaks_max_concurrent_only_there() -> None:
    machine = build_ops_machine(3, replace(ops_transitions(), register_ignoring_limit()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:registry.max_concurrent"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "register_operation"
    assert cex["pre"]["has_limit"] is True
    assert cex["pre"]["active"] == cex["pre"]["max_concurrent"]
    assert cex["post"]["active"] == cex["pre"]["active"] + 1
    assert results["inductive:op.terminal_outcome"].status == "proved"


def test_a_broken_initial_state_is_reported() -> None:
    from dataclasses import replace as dc_replace

    import z3

    machine = build_ops_machine(2)
    bad = dc_replace(
        machine,
        initial=lambda s: z3.And(
            machine.initial(s).arg(0), s["active"] == 1, z3.Not(s["barrier"]), s["watermark"] == 0, s["next_seq"] == 1
        ),
    )
    results = {r.name: r for r in prove_invariants(bad)}
    broken = results["inductive:registry.active_count"]
    assert broken.status == "failed"
    assert broken.counterexample is not None and broken.counterexample["transition"] == "<initial>"


def test_fewer_ids_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_ops_machine(0)


def test_recovery_must_reapply_retention() -> None:
    machine = build_ops_machine(3, replace(ops_transitions(), recover_without_retention()))
    results = {r.name: r for r in prove_invariants(machine)}
    broken = results["inductive:registry.retention_bound"]
    assert broken.status == "failed"
    cex = broken.counterexample
    assert cex is not None and cex["transition"] == "crash_recover"
    assert cex["pre"]["barrier"] is True and cex["post"]["barrier"] is False
    assert sum(cex["post"]["done"].values()) > cex["pre"]["max_completed"]


def test_a_counterexample_shows_every_id_the_broken_count_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever solver finds it (here the exact one: the over-approximating first try is made
    to give up, as it may under load), the report shows every id the invariant counts, also
    those the step left alone."""
    from meerkat_model.proofs import induction

    check = induction._StepSolver.check

    def exact_only(self: Any, goal: Any) -> Any:
        return (z3.unknown, None, {}) if not self._args[4] else check(self, goal)

    monkeypatch.setattr(induction._StepSolver, "check", exact_only)
    machine = build_ops_machine(3, replace(ops_transitions(), recover_without_retention()))
    broken = {r.name: r for r in prove_invariants(machine)}["inductive:registry.retention_bound"]
    cex = broken.counterexample
    assert broken.status == "failed" and cex is not None
    assert sum(cex["post"]["done"].values()) > cex["pre"]["max_completed"]


def test_a_transition_without_a_post_state_is_not_total() -> None:
    machine = build_ops_machine(2, replace(ops_transitions(), complete_without_post_state()))
    result = check_totality(machine)
    assert result.status == "failed" and result.name == "total:ops"
    cex = result.counterexample
    assert cex is not None and cex["transition"] == "complete_operation"
    assert cex["state"]["barrier"] is True
    assert check_totality(build_ops_machine(2)).status == "proved"


def test_a_proof_that_relies_on_an_unproved_invariant_says_so() -> None:
    machine = build_ops_machine(3, replace(ops_transitions(), complete_without_outcome()))
    results = {r.name: r for r in prove_invariants(machine)}
    assert results["inductive:op.terminal_outcome"].status == "failed"
    conditional = [r for r in results.values() if r.assumes]
    assert conditional, "no proof relied on the broken invariant"
    for r in conditional:
        assert r.status == "proved" and "op.terminal_outcome" in r.assumes
        assert r.label.startswith("proved assuming ") and r.detail == r.label
    # a sound machine proves everything without assumptions
    assert not any(r.assumes for r in prove_invariants(build_ops_machine(3)))


def test_assumptions_follow_proofs_transitively() -> None:
    from meerkat_model.proofs.induction import _assumptions, _Tally

    tallies = {name: _Tally() for name in ("a", "b", "c", "d")}
    tallies["a"].uses = {"b"}
    tallies["b"].uses = {"c"}
    tallies["c"].status = "unknown"
    tallies["d"].uses = {"a", "d"}
    assert _assumptions(tallies) == {"a": ("c",), "b": ("c",), "c": (), "d": ("c",)}
