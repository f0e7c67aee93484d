"""Crash recovery: the normalisation table, corruption, order, and restarts."""

from __future__ import annotations

import pytest
from meerkat_model.machine import Rejected
from meerkat_model.session.actions import (
    Crash,
    ExecutorFailed,
    ExecutorSucceeded,
    Register,
    Retire,
    StartRun,
    Stop,
    Unregister,
    WriteFails,
)
from meerkat_model.session.recovery import recover
from meerkat_model.session.state import NO_RECORD, Attrs, Durable, Lane, Memory, Row, Waiter
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

from .helpers import STEER, accept, attached, machine, phase, registered, run, stepped

DURABLE = Attrs(Lane.QUEUE, -1, -1, False)
RESET = int(AbandonKind.RESET)


def _store(row: Row, *, receipt: bool = False, record: int = RuntimePhase.IDLE, attrs: Attrs = DURABLE) -> Memory:
    in_lane = not row.phase.is_terminal
    durable = Durable(record, (row,), (0,) if in_lane else (), (), (receipt,))
    got = recover((attrs,), durable)
    assert isinstance(got, Memory), got
    return got


@pytest.mark.parametrize(
    ("stored", "receipt", "expected"),
    [
        (Row(InputPhase.ACCEPTED, 0), False, Row(InputPhase.QUEUED, 0)),
        (Row(InputPhase.QUEUED, 1), False, Row(InputPhase.QUEUED, 1)),
        (Row(InputPhase.STAGED, 2), False, Row(InputPhase.QUEUED, 1)),
        (Row(InputPhase.APPLIED, 1), True, Row(InputPhase.CONSUMED, 1)),
        (Row(InputPhase.APPLIED_PENDING_CONSUMPTION, 2), True, Row(InputPhase.CONSUMED, 2)),
        (Row(InputPhase.APPLIED, 1), False, Row(InputPhase.QUEUED, 0)),
        (Row(InputPhase.APPLIED_PENDING_CONSUMPTION, 3), False, Row(InputPhase.QUEUED, 2)),
        (Row(InputPhase.CONSUMED, 1), True, Row(InputPhase.CONSUMED, 1)),
        (Row(InputPhase.ABANDONED, 0, RESET), False, Row(InputPhase.ABANDONED, 0, RESET)),
    ],
)
def test_normalisation_table(stored: Row, receipt: bool, expected: Row) -> None:
    memory = _store(stored, receipt=receipt)
    assert memory.rows[0] == expected
    assert memory.queue == ((0,) if expected.phase is InputPhase.QUEUED else ())
    assert memory.registration is RegistrationPhase.QUEUING
    assert memory.run == -1


def test_no_record_recovers_idle_and_stored_phases_come_back() -> None:
    assert _store(Row(InputPhase.CONSUMED, 1), record=NO_RECORD).phase is RuntimePhase.IDLE
    assert _store(Row(InputPhase.QUEUED, 0), record=RuntimePhase.RETIRED).phase is RuntimePhase.RETIRED
    assert _store(Row(InputPhase.CONSUMED, 1), record=RuntimePhase.STOPPED).phase is RuntimePhase.STOPPED


def test_ephemeral_rows_are_dropped() -> None:
    memory = _store(Row(InputPhase.QUEUED, 0), attrs=Attrs(Lane.QUEUE, -1, -1, True))
    assert memory.rows == (None,)
    assert memory.queue == ()


@pytest.mark.parametrize(
    ("row", "record", "names"),
    [
        (Row(InputPhase.QUEUED, 0), RuntimePhase.STOPPED, "stopped"),
        (Row(InputPhase.ABANDONED, 1), RuntimePhase.IDLE, "without an abandon reason"),
        (Row(InputPhase.ABANDONED, 2, int(AbandonKind.MAX_ATTEMPTS_EXHAUSTED)), RuntimePhase.IDLE, "only 2 attempts"),
        (Row(InputPhase.QUEUED, 4), RuntimePhase.IDLE, "4 attempts"),
        (Row(InputPhase.SUPERSEDED, 0), RuntimePhase.IDLE, "without the input that replaced it"),
    ],
)
def test_contradicting_rows_fail_as_corruption_naming_the_row(row: Row, record: int, names: str) -> None:
    got = recover((DURABLE,), Durable(record, (row,), (0,), (), (False,)))
    assert isinstance(got, Rejected)
    assert got.kind == rejections.RECOVERY_CORRUPTION
    assert "input 0" in got.detail and names in got.detail


def test_queued_row_missing_from_its_lane_order_is_corruption() -> None:
    got = recover((DURABLE,), Durable(RuntimePhase.IDLE, (Row(InputPhase.QUEUED, 0),), (), (), (False,)))
    assert isinstance(got, Rejected) and "admission order" in got.detail


def test_destroyed_record_rejects_registration() -> None:
    got = recover((DURABLE,), Durable(RuntimePhase.DESTROYED, (Row(InputPhase.CONSUMED, 1),), (), (), (True,)))
    assert isinstance(got, Rejected) and got.kind == rejections.DESTROYED


def test_crash_mid_run_replays_the_input_without_counting_the_attempt() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun(), Crash())
    assert state.memory is None
    assert all(w is Waiter.NONE for w in state.waiters)
    state = run(m, state, Register())
    assert state.memory is not None
    assert state.memory.queue == (0, 1)
    row = state.memory.rows[0]
    assert row is not None and row.phase is InputPhase.QUEUED and row.attempts == 0


def test_retired_in_flight_run_stored_staged_comes_back_first_in_its_lane() -> None:
    m = machine()
    state = run(m, attached(m), accept(0, lane=STEER), accept(1, lane=STEER), StartRun(), Retire())
    assert state.durable.steer == (0, 1)
    state = run(m, state, Crash(), Register())
    assert state.memory is not None
    assert state.memory.phase is RuntimePhase.RETIRED
    assert state.memory.steer == (0, 1)


def test_failed_input_recovers_behind_the_backlog_with_its_attempts() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun(), ExecutorFailed(), Crash(), Register())
    assert state.memory is not None and state.memory.queue == (1, 0)
    row = state.memory.rows[0]
    assert row is not None and row.attempts == 1


def test_consumed_input_is_not_replayed() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun(), ExecutorSucceeded(1), Crash(), Register())
    assert phase(state, 0) is InputPhase.CONSUMED
    assert state.memory is not None and state.memory.queue == ()


def test_unregister_then_register_recovers_from_the_store() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), accept(1), StartRun())
    result = stepped(m, state, Unregister())
    assert result.state.waiters == (Waiter.TERMINATED_UNREGISTERED,) * 2 + (Waiter.NONE,)
    again = run(m, result.state, Register())
    assert again.memory is not None
    assert again.memory.queue == (0, 1)
    assert again.memory.registration is RegistrationPhase.QUEUING


def test_failed_recovery_write_leaves_the_session_unregistered() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), Crash())
    failure = m.step(state, WriteFails(Register()))
    assert isinstance(failure, Rejected) and failure.kind == rejections.DURABLE_WRITE_FAILED


def test_stopped_runtime_survives_restart() -> None:
    m = machine()
    state = run(m, registered(m), accept(0), Stop(), Crash(), Register())
    assert state.memory is not None and state.memory.phase is RuntimePhase.STOPPED
    assert phase(state, 0) is InputPhase.ABANDONED
