"""Shared helpers for the session-model tests: build states by running actions."""

from __future__ import annotations

from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session.actions import Accept, BeginAttach, FinishAttach, Register, SessionAction
from meerkat_model.session.state import SessionState
from meerkat_model.vocab.statuses import InputPhase

QUEUE, STEER = 0, 1
NO = -1


def machine(**bounds: int) -> SessionMachine:
    values = {"inputs": 3, "idem_keys": 2, "super_keys": 1}
    values.update(bounds)
    return SessionMachine(Bounds(values))


def accept(i: int, lane: int = QUEUE, idem: int = NO, skey: int = NO, coalesce: int = 0, eph: int = 0) -> Accept:
    return Accept(i, lane, idem, skey, coalesce, eph)


def run(m: SessionMachine, state: SessionState, *actions: SessionAction) -> SessionState:
    """Apply ``actions`` in order; each must be taken (not rejected)."""
    for action in actions:
        result = m.step(state, action)
        assert isinstance(result, Stepped), f"{action} was rejected: {result}"
        state = result.state
    return state


def stepped(m: SessionMachine, state: SessionState, action: SessionAction) -> Stepped[SessionState]:
    result = m.step(state, action)
    assert isinstance(result, Stepped), f"{action} was rejected: {result}"
    return result


def rejected(m: SessionMachine, state: SessionState, action: SessionAction) -> Rejected:
    result = m.step(state, action)
    assert isinstance(result, Rejected), f"{action} was not rejected: {result}"
    return result


def attached(m: SessionMachine) -> SessionState:
    """A registered session with its runtime loop attached."""
    return run(m, m.initial_state(), Register(), BeginAttach(), FinishAttach())


def registered(m: SessionMachine) -> SessionState:
    return run(m, m.initial_state(), Register())


def phase(state: SessionState, i: int) -> InputPhase:
    assert state.memory is not None
    row = state.memory.rows[i]
    assert row is not None
    return row.phase


def stored_phase(state: SessionState, i: int) -> InputPhase:
    row = state.durable.rows[i]
    assert row is not None
    return row.phase
