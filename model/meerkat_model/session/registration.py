"""Registration, the runtime loop's attachment, unregistration and crashes.

- ``register``: an unregistered session is recovered from the store (see ``recovery``) and the
  normalised rows and lifecycle record are written back in one commit; it is then Queuing (no
  loop). Registering a registered session is a no-op.
- ``begin_attach`` / ``finish_attach`` / ``attach_failed``: attaching a runtime loop. The first
  caller claims the attachment (Queuing -> Attaching); concurrent callers return at once without
  attaching a second loop (no-op while Attaching or Active); finishing publishes the loop (Active;
  Idle becomes Attached); a failed attach (the executor's ``start()`` raised) releases the claim
  and the caller gets ``executor_start_failed``. Attaching to a Stopped runtime is
  ``not_ready``, to a Destroyed one ``destroyed``.
- ``unregister``: stops the loop, resolves pending waiters with ``runtime_terminated``, cancels
  a run ``accept_input_and_run`` started (its caller is told ``invalid_runtime_transition``),
  forgets the session in memory; the store is kept.
- ``crash``: the process dies: memory and every completion handle are gone, the store is kept.
"""

from __future__ import annotations

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.direct import caller_result
from meerkat_model.session.durable import full_commit
from meerkat_model.session.recovery import recover
from meerkat_model.session.state import NOT_REGISTERED, Memory, SessionState, Waiter
from meerkat_model.session.waiters import resolution_outputs, resolve_all_pending
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, RegistrationPhase, RuntimePhase

StepResult = Stepped[SessionState] | Rejected


def register(state: SessionState, *, write_ok: bool = True, max_attempts: int = MAX_STAGE_ATTEMPTS) -> StepResult:
    if state.memory is not None:
        return Stepped(state, (("already_registered",),), "register_noop")
    recovered = recover(state.attrs, state.durable, max_attempts)
    if isinstance(recovered, Rejected):
        return recovered
    if not write_ok:
        return Rejected(rejections.DURABLE_WRITE_FAILED, "registering: the recovery write-back failed; nothing changed")
    durable = full_commit(state.attrs, state.durable, recovered)
    recovered_ids = tuple(i for i, row in enumerate(recovered.rows) if row is not None)
    return Stepped(
        state._replace(memory=recovered, durable=durable),
        (("registered", recovered.phase.name.lower(), recovered_ids),),
        "register",
    )


def _moved(state: SessionState, memory: Memory, output: str, name: str) -> Stepped[SessionState]:
    """The step to ``memory`` (nothing written) with the single output ``(output,)``."""
    return Stepped(state._replace(memory=memory), ((output,),), name)


def _attaching(state: SessionState) -> Memory | Rejected:
    """The memory of a session whose loop attachment is in progress, or why there is none."""
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.registration is not RegistrationPhase.ATTACHING:
        return Rejected(rejections.NOT_READY, "no runtime loop attachment is in progress")
    return memory


def begin_attach(state: SessionState) -> StepResult:
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.registration in (RegistrationPhase.ATTACHING, RegistrationPhase.ACTIVE):
        return Stepped(state, (("already_attached",),), "begin_attach_noop")
    if memory.phase is RuntimePhase.DESTROYED:
        return Rejected(rejections.DESTROYED, "cannot attach a runtime loop: the runtime is destroyed")
    if memory.phase is RuntimePhase.STOPPED:
        return Rejected(rejections.NOT_READY, "cannot attach a runtime loop while stopped")
    claimed = memory._replace(registration=RegistrationPhase.ATTACHING)
    return _moved(state, claimed, "attaching", "begin_attach")


def finish_attach(state: SessionState) -> StepResult:
    memory = _attaching(state)
    if isinstance(memory, Rejected):
        return memory
    if memory.phase is RuntimePhase.IDLE:
        attached = memory._replace(registration=RegistrationPhase.ACTIVE, phase=RuntimePhase.ATTACHED)
        return _moved(state, attached, "attached", "finish_attach")
    attached = memory._replace(registration=RegistrationPhase.ACTIVE)
    return _moved(state, attached, "attached", "finish_attach_keep_phase")


def attach_failed(state: SessionState) -> StepResult:
    memory = _attaching(state)
    if isinstance(memory, Rejected):
        return memory
    released = memory._replace(registration=RegistrationPhase.QUEUING)
    error = ("error", rejections.EXECUTOR_START_FAILED, "the executor failed to start; nothing attached")
    return Stepped(state._replace(memory=released), (("attach_failed",), error), "attach_failed")


def unregister(state: SessionState) -> StepResult:
    if state.memory is None:
        return NOT_REGISTERED
    waiters, resolved = resolve_all_pending(state.waiters, Waiter.TERMINATED_UNREGISTERED)
    return Stepped(
        state._replace(memory=None, waiters=waiters),
        (
            ("unregistered",),
            *resolution_outputs(resolved, Waiter.TERMINATED_UNREGISTERED),
            *caller_result(state.memory, rejections.INVALID_RUNTIME_TRANSITION),
        ),
        "unregister",
    )


def crash(state: SessionState) -> StepResult:
    if state.memory is None:
        return Rejected(rejections.SESSION_NOT_FOUND, "no registered session to crash")
    lost = (Waiter.NONE,) * len(state.waiters)
    return Stepped(state._replace(memory=None, waiters=lost), (("crashed",),), "crash")
