"""Registration phases: one loop per session, attach races, unregister, crash."""

from __future__ import annotations

from meerkat_model.session.actions import (
    AttachFailed,
    BeginAttach,
    Crash,
    Destroy,
    FinishAttach,
    Interrupt,
    Register,
    Retire,
    Stop,
    Unregister,
)
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import RegistrationPhase, RuntimePhase

from .helpers import accept, machine, registered, rejected, run, stepped


def test_concurrent_attach_calls_attach_exactly_one_loop() -> None:
    m = machine()
    claimed = run(m, registered(m), BeginAttach())
    assert claimed.memory is not None and claimed.memory.registration is RegistrationPhase.ATTACHING
    second = stepped(m, claimed, BeginAttach())
    assert second.state == claimed and second.transition == "begin_attach_noop"
    active = run(m, claimed, FinishAttach())
    assert active.memory is not None
    assert active.memory.registration is RegistrationPhase.ACTIVE
    assert active.memory.phase is RuntimePhase.ATTACHED
    assert stepped(m, active, BeginAttach()).state == active
    assert rejected(m, active, FinishAttach()).kind == rejections.NOT_READY


def test_failed_attach_releases_the_claim() -> None:
    m = machine()
    state = run(m, registered(m), BeginAttach(), AttachFailed())
    assert state.memory is not None and state.memory.registration is RegistrationPhase.QUEUING
    assert run(m, state, BeginAttach()).memory is not None


def test_attach_to_a_retired_runtime_keeps_it_retired_and_drains() -> None:
    m = machine()
    state = run(m, registered(m), Retire(), Crash(), Register(), BeginAttach(), FinishAttach())
    assert state.memory is not None and state.memory.phase is RuntimePhase.RETIRED


def test_attach_refused_when_stopped_or_destroyed() -> None:
    m = machine()
    assert rejected(m, run(m, registered(m), Stop()), BeginAttach()).kind == rejections.NOT_READY
    assert rejected(m, run(m, registered(m), Destroy()), BeginAttach()).kind == rejections.DESTROYED


def test_registering_twice_is_a_no_op() -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    assert stepped(m, state, Register()).state == state


def test_unregistered_session_refuses_calls() -> None:
    m = machine()
    state = m.initial_state()
    for action in (Retire(), Unregister(), BeginAttach(), Crash(), Interrupt()):
        assert rejected(m, state, action).kind == rejections.SESSION_NOT_FOUND
