"""Control operations: retire, reset, recycle, stop, destroy, and their failed writes."""

from __future__ import annotations

import pytest
from meerkat_model.session.state import Waiter
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

from .helpers import accept, attached, machine, phase, registered, rejected, run, stepped


def test_retire_without_loop_abandons_and_terminates_waiters() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), accept(1))
    result = stepped(m, state, ("retire",))
    assert result.transition == "retire_without_loop"
    for i in (0, 1):
        assert phase(result.state, i) is InputPhase.ABANDONED
        assert result.state.waiters[i] is Waiter.TERMINATED_RETIRED
    assert result.state.durable.record == RuntimePhase.RETIRED


def test_retire_with_loop_keeps_work_draining() -> None:
    m = machine()
    state = run(m, attached(m), accept(0))
    result = stepped(m, state, ("retire",))
    assert result.transition == "retire"
    assert phase(result.state, 0) is InputPhase.QUEUED
    assert stepped(m, result.state, ("start_run",)).state.memory is not None


def test_retire_twice_is_a_no_op() -> None:
    m = machine()
    state = run(m, registered(m), ("retire",))
    result = stepped(m, state, ("retire",))
    assert result.state == state and result.transition == "retire_noop"


def test_reset_abandons_everything_and_accepts_again() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), ("retire",), ("reset",))
    assert state.memory is not None and state.memory.phase is RuntimePhase.IDLE
    row = state.memory.rows[0]
    assert row is not None and row.phase is InputPhase.ABANDONED
    assert run(m, state, accept(1)).memory is not None


def test_reset_waiter_gets_runtime_terminated() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), ("reset",))
    assert state.waiters[0] is Waiter.TERMINATED_RESET
    row = state.memory.rows[0] if state.memory else None
    assert row is not None and row.reason == AbandonKind.RESET


def test_reset_and_recycle_refuse_a_run_in_flight() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), ("start_run",))
    assert rejected(m, state, ("reset",)).kind == rejections.INVALID_RUNTIME_TRANSITION
    assert rejected(m, state, ("recycle",)).kind == rejections.INVALID_RUNTIME_TRANSITION


def test_recycle_revives_a_retired_runtime_and_keeps_queued_work() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), ("retire",), ("recycle",))
    assert state.memory is not None and state.memory.phase is RuntimePhase.ATTACHED
    assert state.memory.queue == (0,)
    assert state.waiters[0] is Waiter.PENDING
    assert state.durable.record == RuntimePhase.IDLE


def test_stop_abandons_detaches_and_refuses_input() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), ("start_run",))
    result = stepped(m, state, ("stop",))
    after = result.state
    assert result.transition == "stop_with_loop"
    assert after.memory is not None
    assert after.memory.phase is RuntimePhase.STOPPED
    assert after.memory.registration is RegistrationPhase.QUEUING
    assert after.memory.run == -1
    for i in (0, 1):
        assert phase(after, i) is InputPhase.ABANDONED
        assert after.waiters[i] is Waiter.TERMINATED_STOPPED
    assert rejected(m, after, accept(2)).kind == rejections.NOT_READY
    assert rejected(m, after, ("stop",)).kind == rejections.INVALID_RUNTIME_TRANSITION


def test_destroy_is_absorbing_and_blocks_re_registration() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), ("destroy",))
    assert state.destroyed
    for action in (("retire",), ("reset",), ("recycle",), ("stop",), ("destroy",), ("begin_attach",)):
        assert rejected(m, state, action).kind == rejections.DESTROYED
    gone = run(m, state, ("unregister",))
    assert rejected(m, gone, ("register",)).kind == rejections.DESTROYED
    crashed = run(m, state, ("crash",))
    assert rejected(m, crashed, ("register",)).kind == rejections.DESTROYED


@pytest.mark.parametrize("action", ["retire", "reset", "recycle", "stop", "destroy"])
def test_failed_control_write_changes_nothing(action: str) -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    if action == "recycle":
        state = run(m, state, ("retire",))
    failure = rejected(m, state, ("write_fails", (action,)))
    assert failure.kind == rejections.DURABLE_WRITE_FAILED
    assert stepped(m, state, (action,)).state != state
