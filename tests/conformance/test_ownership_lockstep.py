"""Two runtime workers on one SQLite file in lockstep with the ownership model: claims,
takeovers after expiry, crashes, renewals, writes whose outcome is unknown, reconciliation and
the operation registry's steps; and the harness reporting a difference (the runtime's fence
against a model without one)."""

from __future__ import annotations

import pytest
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ownership.adapter import OwnershipAdapter
from meerkat_conformance.ownership.walk import WALK_BOUNDS, walk
from meerkat_model.machine import Bounds
from meerkat_model.ownership.actions import ClaimRegister, Expire, FinishOp, On, RegisterOp
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.session.actions import Retire, Stop

EXPECTED_COVERED = {
    "claim_register",
    "takeover",
    "claim_register_refused",
    "renew",
    "renew_lost",
    "expire",
    "release",
    "crash",
    "write_refused",
    "ambiguous_write_landed",
    "ambiguous_write_lost",
    "reconcile",
    "accept",
    "start_run",
    "executor_succeeded",
    "register_operation",
    "complete_operation",
    "fail_operation",
}


@pytest.mark.parametrize("seed", [1, 2])
def test_two_workers_agree_with_the_model_over_a_walk(seed: int) -> None:
    tally = walk(seed, 200)
    assert tally.steps == 200 and tally.disagreements == 0
    assert tally.crashes > 5 and tally.faults > 20 and tally.examples >= 1


def test_the_walks_cover_claims_takeovers_crashes_and_unknown_outcomes() -> None:
    covered: set[str] = set()
    for seed in (1, 2, 3):
        covered |= walk(seed, 200).covered
    assert covered >= EXPECTED_COVERED, sorted(EXPECTED_COVERED - covered)


def test_a_model_without_fencing_disagrees_with_the_runtime_and_the_report_shows_where() -> None:
    machine = OwnershipMachine(Bounds({**WALK_BOUNDS.values, "fencing": 0}))
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in (ClaimRegister(0), Expire(), ClaimRegister(1), On(1, Retire())):
            lock.apply(action)
        with pytest.raises(Disagreement) as caught:
            lock.apply(On(0, Stop()))
    finally:
        lock.close()
    report = str(caught.value)
    assert "step 5 returned different results" in report
    assert "w0.stop()" in report and "ownership_lost" in report


def test_a_stale_worker_s_terminal_operation_write_is_refused_in_both() -> None:
    machine = OwnershipMachine(WALK_BOUNDS)
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in (
            ClaimRegister(0),
            RegisterOp(0, 0),
            RegisterOp(0, 1),
            FinishOp(0, 1, 1),
            Expire(),
            ClaimRegister(1),
            RegisterOp(1, 0),
            FinishOp(1, 0, 0),
            FinishOp(0, 0, 1),
        ):
            lock.apply(action)
        ops = machine.observe(lock.state)["ops"]
    finally:
        lock.close()
    assert ops["stored"] == {0: "completed#2", 1: "failed#1"}  # the takeover went on from number 2
    assert ops["next_seq"] == 3
    assert ops["workers"][0] is None  # the stale worker detached, nothing written


def test_a_model_without_fencing_disagrees_on_a_stale_terminal_operation_write() -> None:
    machine = OwnershipMachine(Bounds({**WALK_BOUNDS.values, "fencing": 0}))
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in (ClaimRegister(0), RegisterOp(0, 0), Expire(), ClaimRegister(1), RegisterOp(1, 0)):
            lock.apply(action)
        lock.apply(FinishOp(1, 0, 1))
        with pytest.raises(Disagreement) as caught:
            lock.apply(FinishOp(0, 0, 0))
    finally:
        lock.close()
    report = str(caught.value)
    assert "w0.complete_operation(op0)" in report and "ownership_lost" in report
