"""The ownership encoding: the per-input and per-operation ownership invariants are inductive
with fencing on, z3 finds the double run, the reused completion sequence number (and the other
violations) with fencing off, and the encoding simulates the executable ownership model (with
and without the operation registry)."""

from __future__ import annotations

import pytest
import z3
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.proofs.abstractions import ABSTRACTIONS
from meerkat_model.proofs.differential import compare
from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.ownership_encoding import build_ownership_machine, ownership_transitions
from meerkat_model.proofs.reachability import shortest_violation
from meerkat_model.proofs.symbolic import Params, StepFormula, SymState, SymTransition
from meerkat_model.verifier import explore

FENCED = ("input.consumed_once", "input.consumed_stays_consumed", "runtime.halt_never_undone")
"""The model's no_input_consumed_twice, consumed_stays_consumed and halt_never_undone."""
FENCED_OPS = ("op.seqs_never_reused", "op.terminal_never_undone", "op.owner_registry_agrees")
"""The model's completion_seqs_never_reused, op_terminal_never_undone and owner_registry_agrees_with_store."""


def test_every_ownership_invariant_is_inductive_with_fencing_for_eight_ids() -> None:
    results = prove_invariants(build_ownership_machine(8), timeout_ms=30_000)
    assert {r.name: r.status for r in results} == {
        f"inductive:{name}": "proved"
        for name in (
            "ownership.typed",
            "lease.tokens",
            "worker.unregistered_is_clean",
            "owner.agrees_with_store",
            *FENCED,
            *FENCED_OPS,
            "op.store_numbers",
        )
    }
    assert not any(r.assumes for r in results)


def test_without_fencing_the_invariants_are_not_inductive() -> None:
    results = {r.name: r for r in prove_invariants(build_ownership_machine(2, fencing=False), timeout_ms=30_000)}
    for name in (*FENCED, "owner.agrees_with_store"):
        r = results[f"inductive:{name}"]
        assert r.status == "failed", name
        assert r.counterexample is not None and r.counterexample["transition"] in ("write", "ambiguous_landed")


@pytest.mark.parametrize("invariant", FENCED)
def test_without_fencing_z3_finds_a_reachable_violation(invariant: str) -> None:
    path = shortest_violation(build_ownership_machine(1, fencing=False), invariant, max_depth=9)
    assert path is not None, invariant
    names = [name for name, _ in path]
    assert names[0] == "<initial>" and names.count("claim") >= 2  # a takeover happened
    last = path[-1][1]
    if invariant == "input.consumed_once":
        assert last["commits"] == {0: 2}
    if invariant == "input.consumed_stays_consumed":
        assert last["commits"] == {0: 1} and last["st"] != {0: "Consumed"}
    if invariant == "runtime.halt_never_undone":
        assert last["undone"] or (last["destroyed"] and last["rec"] != "Destroyed")


def test_with_fencing_no_double_run_within_the_same_bound() -> None:
    assert shortest_violation(build_ownership_machine(1), "input.consumed_once", max_depth=9) is None


def test_the_encoding_simulates_the_model_without_fencing_too() -> None:
    model = MACHINES["ownership"](Bounds({**PROFILES["tiny"]["ownership"].values, "fencing": 0, "ambiguous": 0}))
    abstraction = ABSTRACTIONS["ownership"]()
    encoding = build_ownership_machine(abstraction.ids(model), fencing=False)
    report = compare(model, encoding, abstraction, explore(model).state_list[::20])
    assert report.ok, "\n".join(d.render() for d in report.drifts)
    assert report.states >= 200 and report.queries > 0


def _never_fires(pre: SymState, post: SymState, p: Params) -> StepFormula:
    """A ``local`` transition that never fires (a planted drift: the run start is lost)."""
    p.int("w", 0, 2)
    return StepFormula(z3.BoolVal(False), z3.BoolVal(True), frozenset())


def test_a_model_step_the_encoding_cannot_take_is_named() -> None:
    model = MACHINES["ownership"](PROFILES["tiny"]["ownership"])
    abstraction = ABSTRACTIONS["ownership"]()
    never = SymTransition("local", "lease", (), None, _never_fires)
    without_local = tuple(never if t.name == "local" else t for t in ownership_transitions())
    encoding = build_ownership_machine(abstraction.ids(model), transitions=without_local)
    report = compare(model, encoding, abstraction, explore(model).state_list, limit=1)
    (drift,) = report.drifts
    assert "start_run" in drift.action
    assert "no candidate admits it" in drift.encoding and "mem" in drift.encoding


def test_without_fencing_the_registry_invariants_are_not_inductive() -> None:
    results = {r.name: r for r in prove_invariants(build_ownership_machine(2, fencing=False), timeout_ms=30_000)}
    for name in FENCED_OPS:
        r = results[f"inductive:{name}"]
        assert r.status == "failed", name
        assert r.counterexample is not None and r.counterexample["transition"] == "finish_op"


@pytest.mark.parametrize("invariant", ["op.seqs_never_reused", "op.terminal_never_undone"])
def test_without_fencing_z3_finds_a_stale_terminal_write(invariant: str) -> None:
    path = shortest_violation(build_ownership_machine(1, fencing=False), invariant, max_depth=8)
    assert path is not None, invariant
    names = [name for name, _ in path]
    assert names.count("claim") >= 2 and names[-1] == "finish_op" and names.count("finish_op") == 2
    assert len(names) - 1 == 7  # claim, register_op, expire, claim, register_op, finish_op, finish_op
    with_fence = shortest_violation(build_ownership_machine(1), invariant, max_depth=8)
    assert with_fence is None


@pytest.mark.parametrize("fencing", [1, 0])
def test_the_encoding_simulates_the_model_s_registry(fencing: int) -> None:
    values = {**PROFILES["tiny"]["ownership_ops"].values, "fencing": fencing, "ambiguous": fencing}
    model = MACHINES["ownership_ops"](Bounds(values))
    abstraction = ABSTRACTIONS["ownership"]()
    encoding = build_ownership_machine(abstraction.ids(model), fencing=bool(fencing))
    report = compare(model, encoding, abstraction, explore(model).state_list[::25])
    assert report.ok, "\n".join(d.render() for d in report.drifts)
    assert report.states >= 200 and report.queries > 0
