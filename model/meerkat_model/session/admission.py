"""Accepting inputs: ``accept`` and ``accept_invalid`` (docs/semantics.md, "Accept").

Check order: session registered (``session_not_found``); phase Destroyed (``destroyed``);
phase other than Idle/Attached/Running (``not_ready``); invalid input (outcome Rejected, nothing
stored); idempotency key already used by an input in memory, terminal or not (Deduplicated,
nothing stored; a handle only when the existing input is in flight); otherwise Accepted: the
input is Queued at the back of its lane, and a Queued input with the same supersession key (queue
lane first, then steer lane) becomes Superseded/Coalesced by it. The new row (and the replaced
row) is written before Accepted is returned; a failed write leaves everything as it was.
"""

from __future__ import annotations

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.state import (
    NO_ID,
    NO_KEY,
    NOT_REGISTERED,
    Attrs,
    Lane,
    Memory,
    Row,
    SessionState,
    Waiter,
    with_row,
    with_waiter,
)
from meerkat_model.session.waiters import resolution_outputs, resolve
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import InputPhase, RegistrationPhase, RuntimePhase

StepResult = Stepped[SessionState] | Rejected

_ACCEPTING = (RuntimePhase.IDLE, RuntimePhase.ATTACHED, RuntimePhase.RUNNING)


def admission_refusal(state: SessionState) -> Rejected | None:
    """Why the session refuses any input right now, or ``None`` when it takes input."""
    memory = state.memory
    if memory is None:
        return NOT_REGISTERED
    if memory.phase is RuntimePhase.DESTROYED:
        return Rejected(rejections.DESTROYED, "the runtime is destroyed")
    if memory.phase not in _ACCEPTING:
        return Rejected(rejections.NOT_READY, f"the runtime does not accept input while {memory.phase.name.lower()}")
    return None


def _fresh(state: SessionState, i: int) -> Rejected | None:
    if not 0 <= i < len(state.attrs):
        return Rejected(rejections.VALIDATION_FAILED, f"input id {i} is outside the model's ids")
    if state.attrs[i] is not None:
        return Rejected(rejections.VALIDATION_FAILED, f"input id {i} was already accepted")
    return None


def deduplicating_input(state: SessionState, idem: int) -> int | None:
    """The input in memory that already uses idempotency key ``idem``, if any."""
    memory = state.memory
    if idem == NO_KEY or memory is None:
        return None
    for j, row in enumerate(memory.rows):
        attr = state.attrs[j]
        if row is not None and attr is not None and attr.idem == idem:
            return j
    return None


def supersession_candidate(state: SessionState, memory: Memory, skey: int) -> int | None:
    """The first Queued input with supersession key ``skey``: queue lane first, then steer lane."""
    if skey == NO_KEY:
        return None
    for j in (*memory.queue, *memory.steer):
        attr = state.attrs[j]
        if attr is not None and attr.skey == skey:
            return j
    return None


def accept_invalid(state: SessionState, i: int) -> StepResult:
    """An invalid input (e.g. a prompt with derived durability): outcome Rejected, nothing stored."""
    refusal = admission_refusal(state) or _fresh(state, i)
    if refusal is not None:
        return refusal
    return Stepped(state, (("rejected", i, "durability_violation"),), "reject_invalid")


def accept(state: SessionState, i: int, attrs: Attrs, coalesce: bool, *, write_ok: bool = True) -> StepResult:
    """``accept_input`` of input ``i`` with ``attrs``; ``coalesce`` asks to coalesce (not supersede)."""
    refusal = admission_refusal(state) or _fresh(state, i)
    if refusal is not None:
        return refusal
    memory = state.memory
    assert memory is not None
    existing = deduplicating_input(state, attrs.idem)
    if existing is not None:
        row = memory.rows[existing]
        assert row is not None
        in_flight = not row.phase.is_terminal
        return Stepped(state, (("deduplicated", i, existing, in_flight),), "deduplicate")
    if not write_ok:
        return Rejected(rejections.DURABLE_WRITE_FAILED, f"accepting input {i}: the store write failed")

    rows = with_row(memory.rows, i, Row(InputPhase.QUEUED, 0))
    durable = state.durable
    d_rows = with_row(durable.rows, i, Row(InputPhase.QUEUED, 0))
    queue, steer = memory.queue, memory.steer
    d_queue, d_steer = durable.queue, durable.steer
    waiters = with_waiter(state.waiters, i, Waiter.PENDING)
    outputs: tuple[object, ...] = (("accepted", i),)
    transition = "accept"

    old = supersession_candidate(state, memory, attrs.skey)
    if old is not None:
        old_row = memory.rows[old]
        assert old_row is not None
        phase = InputPhase.COALESCED if coalesce else InputPhase.SUPERSEDED
        replaced = Row(phase, old_row.attempts, -1, i)
        rows = with_row(rows, old, replaced)
        d_rows = with_row(d_rows, old, replaced)
        queue = tuple(j for j in queue if j != old)
        steer = tuple(j for j in steer if j != old)
        d_queue = tuple(j for j in d_queue if j != old)
        d_steer = tuple(j for j in d_steer if j != old)
        outcome = Waiter.ABANDONED_COALESCED if coalesce else Waiter.ABANDONED_SUPERSEDED
        waiters, resolved = resolve(waiters, (old,), outcome)
        transition = "accept_coalescing" if coalesce else "accept_superseding"
        outputs = (*outputs, (phase.name.lower(), old, i), *resolution_outputs(resolved, outcome))

    if attrs.lane is Lane.STEER:
        steer, d_steer = (*steer, i), (*d_steer, i)
    else:
        queue, d_queue = (*queue, i), (*d_queue, i)
    new_attrs = (*state.attrs[:i], attrs, *state.attrs[i + 1 :])
    return Stepped(
        SessionState(
            attrs=new_attrs,
            durable=durable._replace(rows=d_rows, queue=d_queue, steer=d_steer),
            memory=memory._replace(rows=rows, queue=queue, steer=steer),
            waiters=waiters,
            destroyed=state.destroyed,
        ),
        outputs,
        transition,
    )


def accept_and_run(state: SessionState, i: int, idem: int, *, write_ok: bool = True) -> StepResult:
    """``accept_input_and_run`` of a new input ``i`` with idempotency key ``idem`` (see the module
    docstring): Queued and written, then Staged for a run started from Idle."""
    refusal = admission_refusal(state) or _fresh(state, i)
    if refusal is not None:
        return refusal
    memory = state.memory
    assert memory is not None
    if (
        memory.registration is not RegistrationPhase.QUEUING
        or memory.run != NO_ID
        or memory.phase is not RuntimePhase.IDLE
        or memory.queue
        or memory.steer
    ):
        return Rejected(
            rejections.NOT_READY, "accept_input_and_run needs an Idle session without a loop or queued work"
        )
    if deduplicating_input(state, idem) is not None:
        return Rejected(
            rejections.VALIDATION_FAILED, f"input {i} is deduplicated against an earlier input; nothing to run"
        )
    if not write_ok:
        return Rejected(rejections.DURABLE_WRITE_FAILED, f"accepting input {i}: the store write failed")
    durable = state.durable
    staged = memory._replace(
        phase=RuntimePhase.RUNNING,
        run=i,
        pre_run=int(RuntimePhase.IDLE),
        rows=with_row(memory.rows, i, Row(InputPhase.STAGED, 1)),
    )
    return Stepped(
        SessionState(
            attrs=(*state.attrs[:i], Attrs(Lane.QUEUE, int(idem), NO_KEY, False), *state.attrs[i + 1 :]),
            durable=durable._replace(
                rows=with_row(durable.rows, i, Row(InputPhase.QUEUED, 0)), queue=(*durable.queue, i)
            ),
            memory=staged,
            waiters=state.waiters,
            destroyed=state.destroyed,
        ),
        (("accepted", i), ("staged", i, 1)),
        "accept_and_run",
    )
