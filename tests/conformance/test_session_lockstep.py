"""A persistent session runs in lockstep with its model under the fast profile (executor
outcomes, crashes with recovery from SQLite, store faults), and two focused scenarios."""

from __future__ import annotations

from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.profiles import get_profile
from meerkat_conformance.lockstep.runner import run_lockstep
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.session.adapter import ATTACH, SessionAdapter
from meerkat_conformance.session.stateful import SessionLockstepMachine
from meerkat_model.session.actions import (
    Accept,
    BoundaryCommitFails,
    Crash,
    ExecutorFailed,
    ExecutorSucceeded,
    Recycle,
    Register,
    Retire,
    WriteFails,
)
from meerkat_model.session.machine import SessionMachine


def _lockstep() -> Lockstep:
    machine = SessionMachine(SessionLockstepMachine.BOUNDS)
    return Lockstep(machine, SessionAdapter(machine, make_disk("sqlite")))


def test_session_agrees_with_the_model_under_the_fast_profile() -> None:
    tally = fresh_tally(SessionMachine(SessionLockstepMachine.BOUNDS))
    run_lockstep(SessionLockstepMachine, get_profile("fast"), tally)
    assert tally.disagreements == 0
    assert tally.crashes > 0
    assert tally.faults > 0
    assert {"start_run", "executor_succeeded", "crash", "register"} <= tally.covered, tally.uncovered


def test_a_run_lifecycle_with_crash_and_recovery_agrees_step_by_step() -> None:
    lock = _lockstep()
    try:
        lock.apply(ATTACH)
        lock.apply(Accept(0, 0, -1, -1, 0, 0))
        lock.apply(Accept(1, 1, -1, -1, 0, 0))
        assert "start_run" not in lock.last_transitions  # a run is already in flight
        lock.apply(ExecutorSucceeded(1))
        assert "start_run" in lock.last_transitions  # the loop took the steer input by itself
        lock.apply(Crash())
        lock.apply(Register())
        view = lock.adapter.observe()
        assert view["inputs"][0]["outcome"] == "consumed"
        assert view["inputs"][1]["phase"] == "queued"  # staged when the process died: replayed
        assert lock.tally.disagreements == 0
    finally:
        lock.close()


def test_a_failed_run_is_retried_by_the_attached_loop() -> None:
    """docs/semantics.md: after an executor failure the input is requeued and the loop keeps
    draining; the model starts the retry at once."""
    lock = _lockstep()
    try:
        lock.apply(ATTACH)
        lock.apply(Accept(0, 0, -1, -1, 0, 0))
        lock.apply(ExecutorFailed())
        assert "start_run" in lock.last_transitions
    finally:
        lock.close()


def test_retiring_a_retired_runtime_is_a_no_op_even_when_the_store_fails() -> None:
    """docs/semantics.md: Retired -> Retired is a no-op, so it writes nothing and cannot fail."""
    lock = _lockstep()
    try:
        lock.apply(Register())
        lock.apply(Retire())
        lock.apply(WriteFails(Retire()))
    finally:
        lock.close()


def test_a_control_commit_after_a_failed_boundary_writes_the_rows_as_they_are_in_memory() -> None:
    """docs/semantics.md: starting a run is not persisted; a boundary-commit failure puts the
    input back to Queued; a later control commit writes rows as they are (never a stale Staged)."""
    lock = _lockstep()
    try:
        lock.apply(ATTACH)
        lock.apply(Accept(0, 0, -1, -1, 0, 0))
        lock.apply(Retire())
        lock.apply(BoundaryCommitFails())
        lock.apply(Recycle())
    finally:
        lock.close()
