"""Control operations: retire, reset, recycle, stop, destroy, and their failed writes."""

from __future__ import annotations

import pytest
from meerkat_model.action_record import action_name
from meerkat_model.session.actions import (
    CONTROL,
    BeginAttach,
    Crash,
    Destroy,
    Recycle,
    Register,
    Reset,
    Retire,
    SessionAction,
    StartRun,
    Stop,
    Unregister,
    WriteFails,
)
from meerkat_model.session.state import Waiter
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

from .helpers import accept, attached, machine, phase, registered, rejected, run, stepped


def test_retire_without_loop_abandons_and_terminates_waiters() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), accept(1))
    result = stepped(m, state, Retire())
    assert result.transition == "retire_without_loop"
    for i in (0, 1):
        assert phase(result.state, i) is InputPhase.ABANDONED
        assert result.state.waiters[i] is Waiter.TERMINATED_RETIRED
    assert result.state.durable.record == RuntimePhase.RETIRED


def test_retire_with_loop_keeps_work_draining() -> None:
    m = machine()
    state = run(m, attached(m), accept(0))
    result = stepped(m, state, Retire())
    assert result.transition == "retire"
    assert phase(result.state, 0) is InputPhase.QUEUED
    assert stepped(m, result.state, StartRun()).state.memory is not None


def test_retire_twice_is_a_no_op() -> None:
    m = machine()
    state = run(m, registered(m), Retire())
    result = stepped(m, state, Retire())
    assert result.state == state and result.transition == "retire_noop"


def test_reset_abandons_everything_and_accepts_again() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), Retire(), Reset())
    assert state.memory is not None and state.memory.phase is RuntimePhase.IDLE
    row = state.memory.rows[0]
    assert row is not None and row.phase is InputPhase.ABANDONED
    assert run(m, state, accept(1)).memory is not None


def test_reset_waiter_gets_runtime_terminated() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), Reset())
    assert state.waiters[0] is Waiter.TERMINATED_RESET
    row = state.memory.rows[0] if state.memory else None
    assert row is not None and row.reason == AbandonKind.RESET


def test_reset_and_recycle_refuse_a_run_in_flight() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun())
    assert rejected(m, state, Reset()).kind == rejections.INVALID_RUNTIME_TRANSITION
    assert rejected(m, state, Recycle()).kind == rejections.INVALID_RUNTIME_TRANSITION


def test_recycle_revives_a_retired_runtime_and_keeps_queued_work() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), Retire(), Recycle())
    assert state.memory is not None and state.memory.phase is RuntimePhase.ATTACHED
    assert state.memory.queue == (0,)
    assert state.waiters[0] is Waiter.PENDING
    assert state.durable.record == RuntimePhase.IDLE


def test_stop_abandons_detaches_and_refuses_input() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun())
    result = stepped(m, state, Stop())
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
    assert rejected(m, after, Stop()).kind == rejections.INVALID_RUNTIME_TRANSITION


def test_destroy_is_absorbing_and_blocks_re_registration() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), Destroy())
    assert state.destroyed
    for action in (Retire(), Reset(), Recycle(), Stop(), Destroy(), BeginAttach()):
        assert rejected(m, state, action).kind == rejections.DESTROYED
    gone = run(m, state, Unregister())
    assert rejected(m, gone, Register()).kind == rejections.DESTROYED
    crashed = run(m, state, Crash())
    assert rejected(m, crashed, Register()).kind == rejections.DESTROYED


@pytest.mark.parametrize("action", CONTROL, ids=action_name)
def test_failed_control_write_changes_nothing(action: SessionAction) -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    if type(action) is Recycle:
        state = run(m, state, Retire())
    failure = rejected(m, state, WriteFails(action))
    assert failure.kind == rejections.DURABLE_WRITE_FAILED
    assert stepped(m, state, action).state != state
