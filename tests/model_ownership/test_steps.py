"""Single steps of the ownership model: claims, the fence, renewal, release, crashes, writes
whose outcome is unknown and reconciliation."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ownership.actions import Ambiguous, ClaimRegister, CrashWorker, Expire, On, Reconcile, Release, Renew
from meerkat_model.ownership.bounds import OwnershipBoundsError
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import Lease, OwnershipState
from meerkat_model.session.actions import Accept, BeginAttach, ExecutorSucceeded, FinishAttach, StartRun, Stop
from meerkat_model.session.state import Waiter
from meerkat_model.vocab.statuses import InputPhase, RegistrationPhase, RuntimePhase

from tests.model_ownership.helpers import steps

M = OwnershipMachine(Bounds({"claims": 4}))
ACCEPT = Accept(0, 0, -1, -1, 0, 0)


def run(*actions: Any, machine: OwnershipMachine = M) -> OwnershipState:
    return steps(machine, *actions)


def test_claims_grow_the_token_and_a_held_lease_is_refused() -> None:
    state = run(ClaimRegister(0))
    assert state.lease == Lease(0, 1, False)
    refused = M.step(state, ClaimRegister(1))
    assert isinstance(refused, Rejected) and refused.kind == "lease_held"
    state = run(ClaimRegister(0), Expire(), ClaimRegister(1))
    assert state.lease == Lease(1, 2, False)
    assert M.step(state, ClaimRegister(1)).transition == "register_noop"  # type: ignore[union-attr]


def test_a_stale_write_is_refused_and_the_worker_detaches() -> None:
    state = run(ClaimRegister(0), On(0, ACCEPT), Expire(), ClaimRegister(1))
    result = M.step(state, On(0, Stop()))
    assert isinstance(result, Stepped) and result.transition == "write_refused"
    assert result.outputs[0][:2] == ("error", "ownership_lost")
    assert result.state.durable == state.durable
    assert result.state.workers[0].memory is None
    assert result.state.workers[0].waiters[0] is Waiter.OWNERSHIP_LOST


def test_expiry_alone_refuses_nothing_and_the_owner_may_renew() -> None:
    state = run(ClaimRegister(0), Expire(), On(0, ACCEPT))
    assert state.durable.rows[0] is not None
    renewed = run(ClaimRegister(0), Expire(), Renew(0))
    assert renewed.lease == Lease(0, 1, False)


def test_renewing_a_taken_lease_detaches() -> None:
    state = run(ClaimRegister(0), Expire(), ClaimRegister(1))
    result = M.step(state, Renew(0))
    assert isinstance(result, Stepped) and result.transition == "renew_lost"
    assert result.state.workers[0].memory is None


def test_release_expires_the_lease_and_a_crash_does_not() -> None:
    assert run(ClaimRegister(0), Release(0)).lease == Lease(0, 1, True)
    assert run(ClaimRegister(0), CrashWorker(0)).lease == Lease(0, 1, False)
    stale = run(ClaimRegister(0), Expire(), ClaimRegister(1), Release(0))
    assert stale.lease == Lease(1, 2, False)


def test_a_failed_registration_spends_the_token_and_releases_it() -> None:
    from meerkat_model.session.actions import Destroy

    state = run(ClaimRegister(0), On(0, Destroy()), Release(0))
    result = M.step(state, ClaimRegister(1))
    assert isinstance(result, Stepped) and result.transition == "claim_register_refused"
    assert result.outputs[0][:2] == ("error", "destroyed")
    assert result.state.lease == Lease(1, 2, True)


def test_an_ambiguous_boundary_commit_that_landed_is_reconciled_as_consumed() -> None:
    running = run(ClaimRegister(0), On(0, ACCEPT), On(0, BeginAttach()), On(0, FinishAttach()), On(0, StartRun()))
    doubt = M.step(running, Ambiguous(0, ExecutorSucceeded(1), 1))
    assert isinstance(doubt, Stepped) and doubt.state.workers[0].in_doubt
    assert doubt.state.durable.rows[0].phase is InputPhase.CONSUMED  # type: ignore[union-attr]
    left = doubt.state.workers[0].memory  # as after a failed boundary commit: queued again, loop detached
    assert left is not None and left.queue == (0,) and left.registration is RegistrationPhase.QUEUING
    refused = M.step(doubt.state, On(0, Stop()))
    assert isinstance(refused, Rejected) and refused.kind == "durable_write_failed"
    assert next(a for a in M.actions(doubt.state) if getattr(a, "w", None) == 0) == Reconcile(0)
    settled = M.step(doubt.state, Reconcile(0))
    assert isinstance(settled, Stepped)
    worker = settled.state.workers[0]
    assert not worker.in_doubt and worker.waiters[0] is Waiter.COMPLETED
    assert worker.memory is not None and worker.memory.phase is RuntimePhase.IDLE and worker.memory.queue == ()
    assert worker.memory.rows[0].phase is InputPhase.CONSUMED  # type: ignore[union-attr]


def test_an_ambiguous_write_that_did_not_land_reconciles_to_the_old_state() -> None:
    state = run(ClaimRegister(0), On(0, ACCEPT))
    doubt = M.step(state, Ambiguous(0, Stop(), 0))
    assert isinstance(doubt, Stepped) and doubt.state.durable == state.durable
    settled = run(ClaimRegister(0), On(0, ACCEPT), Ambiguous(0, Stop(), 0), Reconcile(0))
    assert settled.workers[0].memory == state.workers[0].memory


def test_a_stale_ambiguous_write_that_would_land_is_refused() -> None:
    state = run(ClaimRegister(0), Expire(), ClaimRegister(1))
    result = M.step(state, Ambiguous(0, Stop(), 1))
    assert isinstance(result, Stepped) and result.transition == "write_refused"


def test_malformed_actions_and_bounds_are_refused_by_name() -> None:
    state = M.initial_state()
    assert isinstance(M.step(state, ClaimRegister(7)), Rejected)
    assert isinstance(M.step(state, On(0, StartRun())), Rejected)
    with pytest.raises(OwnershipBoundsError, match="workers"):
        OwnershipMachine(Bounds({"workers": 9}))
    with pytest.raises(OwnershipBoundsError, match="fencing"):
        OwnershipMachine(Bounds({"fencing": 2}))
