"""Two runtime workers on one SQLite file in lockstep with the ownership model: claims,
takeovers after expiry, crashes, renewals, writes whose outcome is unknown, reconciliation and
the operation registry's steps; and the harness reporting a difference (the runtime's fence
against a model without one)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from meerkat_conformance.cli.main import main
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ownership.adapter import OwnershipAdapter, Reincarnate
from meerkat_conformance.ownership.walk import WALK_BOUNDS, probes, walk
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.ownership.actions import (
    AmbiguousFinishOp,
    ClaimRegister,
    Expire,
    FinishOp,
    On,
    Reconcile,
    RegisterOp,
)
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.session.actions import Retire, Stop
from meerkat_runtime.store import lease, sqlite
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.vocab.errors import OwnershipLost

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


SAME_OPERATION_AFTER_TAKEOVER = (
    ClaimRegister(0),
    RegisterOp(0, 1),
    FinishOp(0, 1, 0),
    RegisterOp(0, 0),
    AmbiguousFinishOp(0, 0, 0, 0),  # w0's completion never lands; its store cannot be read
    Expire(),
    ClaimRegister(1),
    RegisterOp(1, 0),
    FinishOp(1, 0, 0),  # op0 completed#2 again, by w1: the store has the shape w0 expects
)


def test_a_write_in_doubt_settled_after_a_takeover_of_the_same_operation_is_lost_in_both() -> None:
    machine = OwnershipMachine(WALK_BOUNDS)
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in SAME_OPERATION_AFTER_TAKEOVER:
            lock.apply(action)
        lock.apply(Reconcile(0))
        ops = machine.observe(lock.state)["ops"]
    finally:
        lock.close()
    assert ops["stored"] == {0: "completed#2", 1: "completed#1"} and ops["next_seq"] == 3
    assert ops["workers"][0] is None  # w0 detached without publishing op0


def test_a_model_that_reconciles_by_shape_disagrees_with_the_runtime() -> None:
    machine = OwnershipMachine(Bounds({**WALK_BOUNDS.values, "readback": 0}))
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in SAME_OPERATION_AFTER_TAKEOVER:
            lock.apply(action)
        with pytest.raises(Disagreement) as caught:
            lock.apply(Reconcile(0))
    finally:
        lock.close()
    assert "w0.reconcile" in str(caught.value) and "ownership_lost" in str(caught.value)


# --- probes: a claim against a live lease, a stale process of the same owner -----------------


def _claim_ignoring_live_leases(original: Callable[..., Lease]) -> Callable[..., Lease]:
    def planted(runtime_id: str, current: Lease | None, owner: str, duration_s: float, now: float) -> Lease:
        if current is not None and current.owner != owner and not current.expired(now):
            return Lease(runtime_id, owner, current.token + 1, now + duration_s)  # BUG: takes a live lease
        return original(runtime_id, current, owner, duration_s, now)

    return planted


Refusal = OwnershipLost | None


def _fence_checking_the_owner_only(original: Callable[..., Refusal]) -> Callable[..., Refusal]:
    def planted(runtime_id: str, current: Lease | None, fence: Fence | None, what: str) -> OwnershipLost | None:
        if fence is not None and current is not None and current.owner == fence.owner:
            return None  # BUG: a stale token of the same owner passes
        return original(runtime_id, current, fence, what)

    return planted


def test_the_walk_tries_a_claim_against_a_live_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{sqlite.__name__}.claim_outcome", _claim_ignoring_live_leases(lease.claim_outcome))
    with pytest.raises(Disagreement) as caught:
        walk(1, 200)
    step = caught.value.trace.steps[-1]
    assert "claim_and_register" in step.label and step.model.brief().startswith("error lease_held")
    assert step.runtime.brief().startswith("ok")


def test_the_walk_lets_a_stale_process_of_the_lease_holder_try_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{sqlite.__name__}.fence_refusal", _fence_checking_the_owner_only(lease.fence_refusal))
    with pytest.raises(Disagreement) as caught:
        walk(1, 200)
    step = caught.value.trace.steps[-1]
    assert "re-claims" in step.note and "stale_write_landed" in step.runtime.brief()


def test_probes_are_a_refused_claim_and_a_re_claim_by_a_new_process() -> None:
    machine = OwnershipMachine(WALK_BOUNDS)
    state = machine.step(machine.initial_state(), ClaimRegister(0))
    assert isinstance(state, Stepped)

    class Always(random.Random):
        def random(self) -> float:
            return 0.0

    assert probes(machine, state.state, Always()) == [ClaimRegister(1), Reincarnate(0)]
    assert probes(machine, machine.initial_state(), Always()) == []


def test_the_command_runs_the_ownership_walks(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--profile", "fast", "--machine", "ownership", "--max-examples", "1", "--steps", "60"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "[ownership walks]" in err and "walk 1/1 (seed 1)" in err
    assert "machine ownership:" in out and "steps                 60 " in out


def test_the_command_reports_a_disagreement_of_the_walks_with_its_reproduction(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{sqlite.__name__}.claim_outcome", _claim_ignoring_live_leases(lease.claim_outcome))
    code = main(["--profile", "fast", "--machine", "ownership", "--seed", "1", "--max-examples", "2"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "model and runtime disagree on the ownership machine" in out
    assert "reproduce with: meerkat-conformance --profile fast --machine ownership --seed 1 --max-examples 1" in out
    assert "coverage floor" not in out or "not assessed" in out
