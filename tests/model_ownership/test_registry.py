"""The operation registry in the ownership model (catalog key ``ownership_ops``): single steps
(memory-only registration, fenced terminal writes, the registry seeded from the store at a
claim), every invariant held with fencing, and with fencing off the shortest traces reusing a
completion sequence number and rewriting a terminal operation."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.actions import (
    AmbiguousFinishOp,
    ClaimRegister,
    CrashWorker,
    Expire,
    FinishOp,
    Reconcile,
    RegisterOp,
)
from meerkat_model.ownership.bounds import OwnershipBoundsError
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import OwnershipState
from meerkat_model.ownership.symmetry import canonical
from meerkat_model.verifier.explore import explore
from meerkat_model.verifier.trace import shortest_trace

from tests.model_ownership.helpers import steps

REGISTRY = ("completion_seqs_never_reused", "op_terminal_never_undone", "owner_registry_agrees_with_store")
M = OwnershipMachine(Bounds({"ops": 2, "accepts": 0, "claims": 4}))
DONE, FAIL = op_slots.COMPLETED, op_slots.FAILED


def _bounds(**changes: int) -> Bounds:
    return Bounds({**PROFILES["ci"]["ownership_ops"].values, **changes})


def run(*actions: Any, machine: OwnershipMachine = M) -> OwnershipState:
    return steps(machine, *actions)


def test_registration_is_memory_only_and_a_terminal_write_takes_the_next_number() -> None:
    state = run(ClaimRegister(0), RegisterOp(0, 0))
    assert state.ops == (op_slots.ABSENT, op_slots.ABSENT)
    assert state.workers[0].ops == (op_slots.RUNNING, op_slots.ABSENT)
    state = run(ClaimRegister(0), RegisterOp(0, 0), RegisterOp(0, 1), FinishOp(0, 1, FAIL), FinishOp(0, 0, DONE))
    assert state.ops == (op_slots.terminal(DONE, 2), op_slots.terminal(FAIL, 1))
    assert state.next_seq == 3 and state.workers[0].next_seq == 3
    again = M.step(state, RegisterOp(0, 0))
    assert isinstance(again, Rejected) and again.kind == "already_registered"
    finished = M.step(state, FinishOp(0, 0, FAIL))
    assert isinstance(finished, Rejected) and finished.kind == "invalid_transition"


def test_a_takeover_seeds_the_registry_from_the_store() -> None:
    state = run(ClaimRegister(0), RegisterOp(0, 0), FinishOp(0, 0, DONE), RegisterOp(0, 1), Expire(), ClaimRegister(1))
    taker = state.workers[1]
    assert taker.ops == (op_slots.terminal(DONE, 1), op_slots.ABSENT)  # the running op was never stored
    assert taker.next_seq == 2
    crashed = run(ClaimRegister(0), RegisterOp(0, 0), FinishOp(0, 0, DONE), CrashWorker(0), Expire(), ClaimRegister(0))
    assert crashed.workers[0].ops == (op_slots.terminal(DONE, 1), op_slots.ABSENT)
    assert crashed.workers[0].next_seq == 2


def test_a_stale_terminal_write_is_refused_and_writes_nothing() -> None:
    state = run(ClaimRegister(0), RegisterOp(0, 0), Expire(), ClaimRegister(1), RegisterOp(1, 0), FinishOp(1, 0, FAIL))
    result = M.step(state, FinishOp(0, 0, DONE))
    assert isinstance(result, Stepped) and result.transition == "write_refused"
    assert result.outputs[0][:2] == ("error", "ownership_lost")
    assert result.state.ops == state.ops and result.state.next_seq == state.next_seq
    assert result.state.workers[0].memory is None and result.state.workers[0].ops == ()


def test_without_fencing_the_stale_write_lands_and_breaks_both_invariants() -> None:
    unfenced = OwnershipMachine(Bounds({"ops": 1, "accepts": 0, "fencing": 0}))
    state = run(
        ClaimRegister(0),
        RegisterOp(0, 0),
        Expire(),
        ClaimRegister(1),
        RegisterOp(1, 0),
        FinishOp(1, 0, FAIL),
        FinishOp(0, 0, DONE),
        machine=unfenced,
    )
    assert state.ops == (op_slots.terminal(DONE, 1),)
    assert state.seq_reused and state.op_undone
    problems = {inv.name: inv.check(state) for inv in unfenced.invariants()}
    assert problems["completion_seqs_never_reused"] is not None
    assert problems["op_terminal_never_undone"] is not None


def test_operation_ids_are_renamed_with_the_workers() -> None:
    one = run(ClaimRegister(0), RegisterOp(0, 0), Expire(), ClaimRegister(1), RegisterOp(1, 1))
    other = run(ClaimRegister(1), RegisterOp(1, 1), Expire(), ClaimRegister(0), RegisterOp(0, 0))
    assert one != other
    assert canonical(one) == canonical(other)


def test_bad_registry_bounds_and_actions_are_refused() -> None:
    with pytest.raises(OwnershipBoundsError, match="'ops'"):
        OwnershipMachine(Bounds({"ops": 4}))
    with pytest.raises(OwnershipBoundsError, match="'accepts'"):
        OwnershipMachine(Bounds({"accepts": 2}))
    state = run(ClaimRegister(0))
    for action in (RegisterOp(0, 2), FinishOp(0, 0, 2), RegisterOp(3, 0)):
        refused = M.step(state, action)
        assert isinstance(refused, Rejected) and refused.kind == "validation_failed"


@pytest.fixture(scope="module")
def ci_exploration() -> Any:
    return explore(MACHINES["ownership_ops"](PROFILES["ci"]["ownership_ops"]))


@pytest.fixture(scope="module")
def unfenced_exploration() -> Any:
    return explore(OwnershipMachine(_bounds(fencing=0, ambiguous=0)))


def test_ci_profile_holds_every_registry_invariant_and_fires_every_transition(ci_exploration: Any) -> None:
    assert ci_exploration.complete
    assert ci_exploration.violations == []
    assert set(REGISTRY) <= set(ci_exploration.invariant_results())
    assert set(ci_exploration.invariant_results().values()) == {"held"}
    assert ci_exploration.stuck == []
    assert ci_exploration.coverage.dead == ()
    assert ci_exploration.coverage.undeclared == ()


def _shortest(exploration: Any, invariant: str) -> list[str]:
    violation = next(v for v in exploration.violations if v.invariant == invariant)
    return [step.label for step in shortest_trace(exploration, exploration.state_list[violation.state_index])]


def test_without_fencing_a_completion_sequence_number_is_reused_in_seven_steps(unfenced_exploration: Any) -> None:
    labels = _shortest(unfenced_exploration, "completion_seqs_never_reused")
    assert labels == [
        "w0.claim_and_register",
        "w0.register_operation(op0)",
        "expire",
        "w1.claim_and_register",
        "w1.register_operation(op0)",
        "w1.complete_operation(op0)",
        "w0.complete_operation(op0)",
    ]


def test_without_fencing_a_terminal_operation_is_rewritten_in_seven_steps(unfenced_exploration: Any) -> None:
    labels = _shortest(unfenced_exploration, "op_terminal_never_undone")
    assert len(labels) == 7
    assert labels[2:4] == ["expire", "w1.claim_and_register"]
    assert labels[-2].startswith("w1.") and labels[-1].startswith("w0.")
    assert labels[-2].split(".")[1] != labels[-1].split(".")[1]  # another outcome over the stored one


def test_without_fencing_only_what_fencing_protects_fails(unfenced_exploration: Any) -> None:
    results = unfenced_exploration.invariant_results()
    assert results["completion_seqs_never_reused"] == "violated"
    assert results["op_terminal_never_undone"] == "violated"
    assert results["worker_memory_well_formed"] == "held"


def test_symmetry_reduction_agrees_with_the_full_search_with_two_operation_ids() -> None:
    machine = OwnershipMachine(_bounds(ops=2, control=0, ambiguous=0, crash=0, unregister=0))
    reduced = explore(machine, symmetry=True)
    full = explore(machine, symmetry=False)
    assert reduced.states < full.states
    assert reduced.invariant_results() == full.invariant_results()
    assert {machine.canonical(s) for s in full.state_list} == set(reduced.state_list)


SAME_OP_AFTER_TAKEOVER = (
    ClaimRegister(0),
    RegisterOp(0, 0),
    AmbiguousFinishOp(0, 0, DONE, 0),  # w0's write never landed; w0 is in doubt
    Expire(),
    ClaimRegister(1),
    RegisterOp(1, 0),
    FinishOp(1, 0, DONE),  # the same id, outcome and number: the store looks as w0 expected
)


def test_a_write_in_doubt_reconciled_after_a_takeover_detaches_and_publishes_nothing() -> None:
    state = run(*SAME_OP_AFTER_TAKEOVER)
    assert state.workers[0].in_doubt and state.workers[0].pending == (0, op_slots.terminal(DONE, 1))
    assert state.ops == (op_slots.terminal(DONE, 1), op_slots.ABSENT) and state.next_seq == 2
    result = M.step(state, Reconcile(0))
    assert isinstance(result, Stepped) and result.transition == "reconcile_lost"
    assert result.outputs[0][:2] == ("error", "ownership_lost")
    assert not any(out[0] == "terminal" for out in result.outputs)
    assert result.state.workers[0].memory is None and not result.state.op_misreported


def test_a_write_in_doubt_is_settled_by_its_owner() -> None:
    for landed, after in ((1, op_slots.terminal(DONE, 1)), (0, op_slots.RUNNING)):
        state = run(ClaimRegister(0), RegisterOp(0, 0), AmbiguousFinishOp(0, 0, DONE, landed), Reconcile(0))
        assert not state.workers[0].in_doubt and state.workers[0].ops[0] == after
        assert state.ops[0] == (after if landed else op_slots.ABSENT)


def test_without_the_exact_readback_the_new_owners_write_is_published_as_the_old_owners() -> None:
    loose = OwnershipMachine(Bounds({"ops": 2, "accepts": 0, "claims": 4, "readback": 0}))
    state = run(*SAME_OP_AFTER_TAKEOVER, machine=loose)
    result = loose.step(state, Reconcile(0))
    assert isinstance(result, Stepped) and ("terminal", 0, 1) in result.outputs
    problems = {inv.name: inv.check(result.state) for inv in loose.invariants()}
    assert problems["published_outcome_is_stored"] is not None


def test_without_the_exact_readback_the_verifier_finds_the_misreported_outcome() -> None:
    exploration = explore(OwnershipMachine(_bounds(readback=0)))
    assert exploration.invariant_results()["published_outcome_is_stored"] == "violated"
    labels = _shortest(exploration, "published_outcome_is_stored")
    assert labels[-1] == "w0.reconcile" and "expire" in labels
