"""Control operations: retire, reset, recycle, stop, destroy, recover (docs/semantics.md,
"Control").

Each one writes the new lifecycle record and every row in one commit before it takes effect; a
failed write leaves everything as it was (``durable_write_failed``). "Idle" after an operation
means Attached when a loop is attached. Retiring without a loop abandons the queued inputs but
not the input of a run in flight (``accept_input_and_run``): that run goes on and ends Retired;
stop and destroy cancel it (its caller is told ``invalid_runtime_transition``). Errors:
``session_not_found`` (not registered), ``destroyed`` (phase Destroyed),
``invalid_runtime_transition`` (Stopped, or a run in flight for reset/recycle).

``recover`` re-reads the store in place: memory := recover(store) by the crash-recovery rules
(an ephemeral input memory holds is kept), the phase and registration kept (an attached loop
stays attached: Idle shown as Attached). Allowed from Idle, Attached, Retired and Stopped with
no run in flight (else ``invalid_runtime_transition``; Destroyed: ``destroyed``). When the store
needs a write-back (rows recovery normalises) or memory differs from what the store recovers
to, the normalised rows and lifecycle record are written in one commit (``recover``) and the
pending handles of inputs the store shows finished (or no longer holds) resolve; otherwise
nothing changes and nothing is written (``recover_noop``). Rows that contradict each other
refuse it with ``recovery_corruption``, nothing changed.
"""

from __future__ import annotations

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.direct import caller_result
from meerkat_model.session.durable import full_commit
from meerkat_model.session.recovery import recover as recover_store
from meerkat_model.session.state import NO_ID, NOT_REGISTERED, TERMINATED_BY, Memory, Row, SessionState
from meerkat_model.session.waiters import resolution_outputs, resolve, resolve_from_store
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import MAX_STAGE_ATTEMPTS, AbandonKind, InputPhase, RegistrationPhase, RuntimePhase

StepResult = Stepped[SessionState] | Rejected


_REFUSALS: dict[tuple[str, str], Rejected] = {}
"""Every refusal built so far, by (why, action): refusals are immutable and repeat."""


def _refused(why: str, action: str) -> Rejected:
    refusal = _REFUSALS.get((why, action))
    if refusal is None:
        if why == "destroyed":
            refusal = Rejected(rejections.DESTROYED, f"cannot {action}: the runtime is destroyed")
        elif why == "stopped":
            refusal = Rejected(rejections.INVALID_RUNTIME_TRANSITION, f"cannot {action} while stopped")
        elif why == "run":
            refusal = Rejected(rejections.INVALID_RUNTIME_TRANSITION, f"cannot {action} while a run is in flight")
        else:
            refusal = Rejected(rejections.DURABLE_WRITE_FAILED, f"{action}: the store write failed; nothing changed")
        _REFUSALS[(why, action)] = refusal
    return refusal


def _refusal(state: SessionState, action: str, *, no_run: bool = False, stopped_ok: bool = False) -> Rejected | None:
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.phase is RuntimePhase.DESTROYED:
        return _refused("destroyed", action)
    if memory.phase is RuntimePhase.STOPPED and not stopped_ok:
        return _refused("stopped", action)
    if no_run and memory.run != NO_ID:
        return _refused("run", action)
    return None


_LOWER_NAMES = {kind: kind.name.lower() for kind in AbandonKind}
_new = tuple.__new__  # a record built from its fields at once (the halting steps build many)


def _with_loop(memory: Memory) -> bool:
    return memory.registration is RegistrationPhase.ACTIVE


def _idle(memory: Memory) -> RuntimePhase:
    return RuntimePhase.ATTACHED if _with_loop(memory) else RuntimePhase.IDLE


def _abandon_all(
    state: SessionState, memory: Memory, reason: AbandonKind, *, keep_run: bool = False
) -> tuple[SessionState, tuple[object, ...]]:
    """Every non-terminal input Abandoned{reason} (but the run's input when ``keep_run``), lanes
    emptied, waiters terminated; the run is cleared (its direct caller told so) unless kept."""
    rows = memory.rows
    kept = memory.run if keep_run else None
    code = int(reason)
    changed: list[Row | None] | None = None
    abandoned: list[int] = []
    for i, row in enumerate(rows):
        if row is not None and not row.phase.is_terminal and i != kept:
            if changed is None:
                changed = list(rows)
            changed[i] = _new(Row, (InputPhase.ABANDONED, row.attempts, code, NO_ID))
            abandoned.append(i)
    outcome = TERMINATED_BY[reason]
    waiters, resolved = resolve(state.waiters, tuple(abandoned), outcome)
    reason_name = _LOWER_NAMES.get(reason) or reason.name.lower()
    outputs: tuple[object, ...] = (
        *[("abandoned", i, reason_name) for i in abandoned],
        *resolution_outputs(resolved, outcome),
    )
    new_rows = rows if changed is None else tuple(changed)
    if keep_run:
        cleared = _new(Memory, (memory[0], memory[1], memory[2], memory[3], (), (), new_rows))
    else:
        cleared = _new(Memory, (memory[0], memory[1], NO_ID, -1, (), (), new_rows))
        outputs = (*outputs, *caller_result(memory, rejections.INVALID_RUNTIME_TRANSITION))
    return _new(SessionState, (state[0], state[1], cleared, waiters, state[4])), outputs


def _commit(state: SessionState, memory: Memory) -> SessionState:
    return SessionState(state[0], full_commit(state[0], state[1], memory), memory, state[3], state[4])


def _write_failed(action: str) -> Rejected:
    return _refused("write", action)


def _admitted(
    state: SessionState, action: str, *, write_ok: bool = True, no_run: bool = False, stopped_ok: bool = False
) -> Memory | Rejected:
    """The memory ``action`` works on, or why it is refused: ``_refusal``, then a failed write."""
    refusal = _refusal(state, action, no_run=no_run, stopped_ok=stopped_ok)
    if refusal is not None:
        return refusal
    if not write_ok:
        return _write_failed(action)
    assert state.memory is not None
    return state.memory


def _abandon_into(
    state: SessionState, memory: Memory, reason: AbandonKind, phase: RuntimePhase, *, keep_run: bool = False
) -> tuple[SessionState, Memory, tuple[object, ...]]:
    """``_abandon_all`` for ``reason``: the state it leaves, that state's memory moved to ``phase``
    (not yet committed) and the outputs."""
    abandoned, outputs = _abandon_all(state, memory, reason, keep_run=keep_run)
    assert abandoned.memory is not None
    return abandoned, abandoned.memory._replace(phase=phase), outputs


def _halt(
    state: SessionState, memory: Memory, reason: AbandonKind, phase: RuntimePhase, action: str
) -> tuple[SessionState, tuple[object, ...], str]:
    """Stop or destroy: abandon everything for ``reason`` and commit ``phase``; an attached loop
    is detached (registration Queuing) and told to stop. Returns the committed state, the
    outputs and the transition name (``action``, or ``<action>_with_loop``)."""
    abandoned, halted, outputs = _abandon_into(state, memory, reason, phase)
    name = action
    if _with_loop(memory):
        halted = halted._replace(registration=RegistrationPhase.QUEUING)
        name = f"{action}_with_loop"
        outputs = (*outputs, ("executor_stopped",))
    return _commit(abandoned, halted), outputs, name


def retire(state: SessionState, *, write_ok: bool = True) -> StepResult:
    memory = _admitted(state, "retire")
    if isinstance(memory, Rejected):
        return memory
    if memory.phase is RuntimePhase.RETIRED:
        return Stepped(state, (("already_retired",),), "retire_noop")
    if not write_ok:
        return _write_failed("retire")
    if _with_loop(memory):
        retired = memory._replace(phase=RuntimePhase.RETIRED)
        pending = len(memory.queue) + len(memory.steer)
        return Stepped(_commit(state, retired), (("retired", 0, pending),), "retire")
    # Without a loop the queued work can never drain; a run in flight (``accept_input_and_run``)
    # is not queued work: it goes on, and ends Retired.
    abandoned, retired, outputs = _abandon_into(state, memory, AbandonKind.RETIRED, RuntimePhase.RETIRED, keep_run=True)
    return Stepped(_commit(abandoned, retired), (("retired",), *outputs), "retire_without_loop")


def reset(state: SessionState, *, write_ok: bool = True) -> StepResult:
    memory = _admitted(state, "reset", write_ok=write_ok, no_run=True)
    if isinstance(memory, Rejected):
        return memory
    abandoned, idle, outputs = _abandon_into(state, memory, AbandonKind.RESET, _idle(memory))
    name = "reset_with_loop" if _with_loop(memory) else "reset"
    return Stepped(_commit(abandoned, idle), (("reset",), *outputs), name)


def recycle(state: SessionState, *, write_ok: bool = True) -> StepResult:
    memory = _admitted(state, "recycle", write_ok=write_ok, no_run=True)
    if isinstance(memory, Rejected):
        return memory
    idle = memory._replace(phase=_idle(memory))
    name = "recycle_with_loop" if _with_loop(memory) else "recycle"
    return Stepped(_commit(state, idle), (("recycled", len(memory.queue) + len(memory.steer)),), name)


def stop(state: SessionState, *, write_ok: bool = True) -> StepResult:
    memory = _admitted(state, "stop", write_ok=write_ok)
    if isinstance(memory, Rejected):
        return memory
    committed, outputs, name = _halt(state, memory, AbandonKind.STOPPED, RuntimePhase.STOPPED, "stop")
    return Stepped(committed, (("stopped",), *outputs), name)


def destroy(state: SessionState, *, write_ok: bool = True) -> StepResult:
    memory = _admitted(state, "destroy", write_ok=write_ok, stopped_ok=True)
    if isinstance(memory, Rejected):
        return memory
    committed, outputs, name = _halt(state, memory, AbandonKind.DESTROYED, RuntimePhase.DESTROYED, "destroy")
    return Stepped(committed._replace(destroyed=True), (("destroyed",), *outputs), name)


def recovered_in_place(state: SessionState, max_attempts: int = MAX_STAGE_ATTEMPTS) -> Memory | Rejected:
    """What ``recover`` makes memory: the store recovered in place (the ephemeral inputs memory
    holds kept), with memory's registration; Idle is Attached when a loop is attached."""
    memory = state.memory
    assert memory is not None
    recovered = recover_store(state.attrs, state.durable, max_attempts, live=memory.rows)
    if isinstance(recovered, Rejected):
        return recovered
    phase = recovered.phase
    if _with_loop(memory) and phase is RuntimePhase.IDLE:
        phase = RuntimePhase.ATTACHED
    return recovered._replace(registration=memory.registration, phase=phase)


def recover(state: SessionState, *, write_ok: bool = True, max_attempts: int = MAX_STAGE_ATTEMPTS) -> StepResult:
    memory = _admitted(state, "recover", no_run=True, stopped_ok=True)
    if isinstance(memory, Rejected):
        return memory
    recovered = recovered_in_place(state, max_attempts)
    if isinstance(recovered, Rejected):
        return recovered
    durable = full_commit(state.attrs, state.durable, recovered)
    if recovered == memory and durable == state.durable:
        return Stepped(state, (("recovered", 0),), "recover_noop")
    if not write_ok:
        return _write_failed("recover")
    waiters, resolved = resolve_from_store(state.waiters, recovered.rows)
    changed = sum(1 for i, row in enumerate(durable.rows) if row != state.durable.rows[i])
    after = state._replace(memory=recovered, durable=durable, waiters=waiters)
    return Stepped(after, (("recovered", changed), *resolved), "recover")
