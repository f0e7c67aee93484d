"""Registration phases: one loop per session, attach races, unregister, crash."""

from __future__ import annotations

from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import RegistrationPhase, RuntimePhase

from .helpers import accept, machine, registered, rejected, run, stepped


def test_concurrent_attach_calls_attach_exactly_one_loop() -> None:
    m = machine()
    claimed = run(m, registered(m), ("begin_attach",))
    assert claimed.memory is not None and claimed.memory.registration is RegistrationPhase.ATTACHING
    second = stepped(m, claimed, ("begin_attach",))
    assert second.state == claimed and second.transition == "begin_attach_noop"
    active = run(m, claimed, ("finish_attach",))
    assert active.memory is not None
    assert active.memory.registration is RegistrationPhase.ACTIVE
    assert active.memory.phase is RuntimePhase.ATTACHED
    assert stepped(m, active, ("begin_attach",)).state == active
    assert rejected(m, active, ("finish_attach",)).kind == rejections.NOT_READY


def test_failed_attach_releases_the_claim() -> None:
    m = machine()
    state = run(m, registered(m), ("begin_attach",), ("attach_failed",))
    assert state.memory is not None and state.memory.registration is RegistrationPhase.QUEUING
    assert run(m, state, ("begin_attach",)).memory is not None


def test_attach_to_a_retired_runtime_keeps_it_retired_and_drains() -> None:
    m = machine()
    state = run(m, registered(m), ("retire",), ("crash",), ("register",), ("begin_attach",), ("finish_attach",))
    assert state.memory is not None and state.memory.phase is RuntimePhase.RETIRED


def test_attach_refused_when_stopped_or_destroyed() -> None:
    m = machine()
    assert rejected(m, run(m, registered(m), ("stop",)), ("begin_attach",)).kind == rejections.NOT_READY
    assert rejected(m, run(m, registered(m), ("destroy",)), ("begin_attach",)).kind == rejections.DESTROYED


def test_registering_twice_is_a_no_op() -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    assert stepped(m, state, ("register",)).state == state


def test_unregistered_session_refuses_calls() -> None:
    m = machine()
    state = m.initial_state()
    for action in (("retire",), ("unregister",), ("begin_attach",), ("crash",), ("interrupt",)):
        assert rejected(m, state, action).kind == rejections.SESSION_NOT_FOUND
