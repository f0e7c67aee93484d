"""The run loop: staging, success, failures, exhausted attempts, boundary and snapshot failures."""

from __future__ import annotations

from meerkat_model.session.actions import (
    BoundaryCommitFails,
    ExecutorFailed,
    ExecutorSucceeded,
    Interrupt,
    Register,
    Retire,
    StartRun,
    TerminalSnapshotFails,
)
from meerkat_model.session.state import Waiter
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

from .helpers import STEER, accept, attached, machine, phase, registered, rejected, run, stepped, stored_phase


def test_no_run_without_an_attached_loop() -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    assert rejected(m, state, StartRun()).kind == rejections.NOT_READY
    assert m.obligations(state) == ["handle of input 0 is pending"]


def test_steer_lane_is_drained_first() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1, lane=STEER))
    result = stepped(m, state, StartRun())
    assert result.outputs == (("staged", 1, 1),)
    assert result.state.memory is not None
    assert result.state.memory.run == 1
    assert result.state.memory.phase is RuntimePhase.RUNNING
    assert result.state.memory.pre_run == RuntimePhase.ATTACHED


def test_staging_is_not_written() -> None:
    m = machine()
    before = run(m, attached(m), accept(0))
    after = run(m, before, StartRun())
    assert after.durable == before.durable


def test_success_consumes_with_one_boundary_commit() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun())
    result = stepped(m, state, ExecutorSucceeded(1))
    after = result.state
    assert phase(after, 0) is InputPhase.CONSUMED
    assert stored_phase(after, 0) is InputPhase.CONSUMED
    assert after.durable.receipts[0]
    assert after.durable.record == state.durable.record  # no lifecycle record written
    assert after.waiters[0] is Waiter.COMPLETED
    assert after.memory is not None and after.memory.phase is RuntimePhase.ATTACHED


def test_success_without_result() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun(), ExecutorSucceeded(0))
    assert state.waiters[0] is Waiter.COMPLETED_WITHOUT_RESULT


def test_failure_requeues_at_the_back_and_keeps_draining() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun())
    result = stepped(m, state, ExecutorFailed())
    after = result.state
    assert after.memory is not None
    assert after.memory.queue == (1, 0)
    assert after.memory.phase is RuntimePhase.ATTACHED
    assert after.waiters[0] is Waiter.PENDING
    assert after.durable.queue == (1, 0)
    assert after.durable.rows[0] is not None and after.durable.rows[0].attempts == 1
    assert stepped(m, after, StartRun()).outputs == (("staged", 1, 1),)


def test_abandoned_after_three_failed_attempts() -> None:
    m = machine()
    state = run(m, attached(m), accept(0))
    for attempt in (1, 2):
        state = run(m, state, StartRun(), ExecutorFailed())
        assert phase(state, 0) is InputPhase.QUEUED
        assert state.memory is not None and state.memory.rows[0] is not None
        assert state.memory.rows[0].attempts == attempt
    result = stepped(m, run(m, state, StartRun()), ExecutorFailed())
    row = result.state.memory.rows[0] if result.state.memory else None
    assert row is not None and row.phase is InputPhase.ABANDONED
    assert row.reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED and row.attempts == 3
    assert result.state.waiters[0] is Waiter.ABANDONED_MAX_ATTEMPTS
    assert result.transition == "executor_failed_exhausted"
    assert stored_phase(result.state, 0) is InputPhase.ABANDONED


def test_boundary_commit_failure_unwinds_to_what_is_stored() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun())
    result = stepped(m, state, BoundaryCommitFails())
    after = result.state
    assert after.memory is not None
    assert phase(after, 0) is InputPhase.QUEUED
    assert after.memory.rows[0] is not None and after.memory.rows[0].attempts == 0
    assert after.memory.queue == (0, 1)
    assert after.memory.phase is RuntimePhase.IDLE
    assert after.memory.registration is RegistrationPhase.QUEUING
    assert ("executor_stopped",) in result.outputs
    assert after.durable == state.durable
    assert after.waiters[0] is Waiter.PENDING


def test_terminal_snapshot_failure_unregisters_and_stores_nothing() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun())
    result = stepped(m, state, TerminalSnapshotFails())
    assert result.state.memory is None
    assert result.state.durable == state.durable
    assert result.state.waiters[0] is Waiter.TERMINATED_UNREGISTERED
    recovered = run(m, result.state, Register())
    assert phase(recovered, 0) is InputPhase.QUEUED


def test_interrupt_cancels_the_run() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun())
    result = stepped(m, state, Interrupt())
    row = result.state.memory.rows[0] if result.state.memory else None
    assert row is not None and row.phase is InputPhase.ABANDONED and row.reason == AbandonKind.CANCELLED
    assert result.state.waiters[0] is Waiter.CANCELLED
    assert stored_phase(result.state, 0) is InputPhase.ABANDONED
    assert result.state.memory is not None and result.state.memory.phase is RuntimePhase.ATTACHED


def test_interrupt_without_a_run_is_a_no_op() -> None:
    m = machine()
    state = attached(m)
    result = stepped(m, state, Interrupt())
    assert result.state == state and result.transition == "interrupt_noop"


def test_retired_runtime_drains_and_stays_retired() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun(), Retire())
    assert state.memory is not None and state.memory.phase is RuntimePhase.RETIRED
    assert stored_phase(state, 0) is InputPhase.STAGED
    result = stepped(m, state, ExecutorSucceeded(1))
    assert result.transition == "executor_succeeded_retired"
    drained = run(m, result.state, StartRun(), ExecutorSucceeded(1))
    assert drained.memory is not None and drained.memory.phase is RuntimePhase.RETIRED
    assert phase(drained, 1) is InputPhase.CONSUMED
