"""Reconciling an in-doubt session with the store (docs/semantics.md, "Unknown write outcomes").

A session is *in doubt* after a write whose outcome the store left unknown and which it could
not read back at once (:mod:`meerkat_runtime.session.commit`): the store may hold the write or
not, memory holds the state from before it. Every step of the session (accept, run start and
end, control, loop attachment) first calls :func:`reconcile` with the gate held. While the
session is in doubt it reads the session's lifecycle record and input rows and recovers them in
place, by the crash-recovery rules (:func:`~meerkat_runtime.session.core.recovery.recover_session`):

* the phase, rows, lanes, idempotency keys and admission counter become the store's
  (``SessionCore.reconcile``), so no admission position, idempotency key or lifecycle the store
  holds can be reused or undone;
* a run in flight is dropped: its inputs are what the store holds (Consumed if its boundary
  landed, else Queued again; the interrupted attempt is not counted); its executor call is
  cancelled and a late result is discarded;
* the waiters of inputs the store shows finished resolve with the stored outcome;
* when the store says Stopped or Destroyed the loop is detached and the executor stopped; an
  attached loop otherwise stays attached and is woken.

If the store still cannot be read (or its rows contradict each other) the step fails with
``error(what, cause, outcome_unknown=True)`` and the session stays in doubt.
"""

from __future__ import annotations

import time

from meerkat_runtime.events.event import Change, spell
from meerkat_runtime.session import events, retention
from meerkat_runtime.session.completion import CompletedWithoutResult, RuntimeTerminated
from meerkat_runtime.session.core.recovery import recover_session
from meerkat_runtime.session.core.terminal import completion_of
from meerkat_runtime.session.executor import CancelCurrentRun, CoreExecutor
from meerkat_runtime.session.runtime_session import RuntimeSession, bounded_control, stop_detached
from meerkat_runtime.vocab.errors import DurableWriteFailed
from meerkat_runtime.vocab.runtime import RuntimeState

NOT_STORED = "the input is not in the store (found when reconciling after a write whose outcome was unknown)"


class ReconciliationFailed(RuntimeError):
    """The store could not be read back (or held contradictory rows) while the session was in
    doubt; raised as the cause of the step's ``DurableWriteFailed``."""


async def reconcile(
    session: RuntimeSession, what: str, *, error: type[DurableWriteFailed] = DurableWriteFailed
) -> bool:
    """If the session is in doubt, make its memory the store's (module docstring) and return
    ``True``; else return ``False`` at once. Called with the gate held, before the step plans
    anything. Raises ``error(what, ..., outcome_unknown=True)`` when the store cannot be read."""
    doubt = session.in_doubt
    if doubt is None:
        return False
    persistence = session.persistence
    runtime_id = session.runtime_id
    max_attempts = session.core.max_attempts
    try:
        high_water, lifecycle, rows, finished = await persistence.read(persistence.load_stored)
        result = await persistence.read(
            lambda: recover_session(
                runtime_id,
                lifecycle,
                rows,
                persistence.receipt_exists,
                time.time(),
                in_place=True,
                high_water=high_water,
                max_attempts=max_attempts,
                finished=finished,
            )
        )
        retention.keep_known_finished(session.core.ledger, result.core.ledger)
        await retention.read_recent(session, result.core.ledger)
    except Exception as exc:
        cause = ReconciliationFailed(f"cannot read the store back ({exc}) after: {doubt}")
        raise error(what, cause, outcome_unknown=True) from exc
    core = session.core
    await _publish_landed(session)
    before_phase, before_registration = core.phase.value, core.registration.value
    run = core.current_run
    apply_task = session.apply_task if run is not None and session.applying_run == run.run_id else None
    core.reconcile(result.core)
    persistence.loaded(result.stored, lifecycle)
    session.in_doubt = None
    session.doubt_plan = None
    session.doubt_before = None
    _publish_reconciled(session, before_phase, before_registration)
    ledger = core.ledger
    for input_id in session.completions.pending_ids():
        record = ledger.records.get(input_id)
        if record is None and input_id in ledger.finished:
            try:
                record = await retention.finished_record(session, input_id)
            except Exception:
                record = None
        if record is None:
            session.completions.resolve(input_id, RuntimeTerminated(NOT_STORED))
        elif record.phase.is_terminal:
            session.completions.resolve(input_id, completion_of(record) or CompletedWithoutResult())
    executor = session.executor if not session.executor_stopped else None
    if core.phase in (RuntimeState.STOPPED, RuntimeState.DESTROYED):
        reason = f"runtime {core.phase.value}"
        session.completions.resolve_all(RuntimeTerminated(reason))
        session.spawn(stop_detached(session.detach(), reason))
        return True
    if run is not None:
        if apply_task is not None and not apply_task.done():
            apply_task.cancel()
        if executor is not None:
            session.spawn(_cancel_run(executor))
    session.wake()
    return True


async def _publish_landed(session: RuntimeSession) -> None:
    """Publish the event of the plan whose write left the session in doubt, if the store holds
    it (reconciling adopts it: it committed), described from the core as it was when the plan was
    written (a boundary commit's event from the run in flight, although memory requeued its
    input meanwhile). Called before memory becomes the store's."""
    pending = session.doubt_plan
    bus = session.events
    if pending is None or bus is None or not bus.active:
        return
    plan, written = pending
    if await session.persistence.read_back(written):
        prior = session.doubt_before or events.before(session, plan)
        events.emit_plan(session, plan, prior, adopted=True)


def _publish_reconciled(session: RuntimeSession, phase: str, registration: str) -> None:
    """The ``reconcile`` event: what memory adopted from the store (its phase, registration and
    active inputs; ``attached``: the loop stayed attached)."""
    bus = session.events
    if bus is None or not bus.active:
        return
    core = session.core
    changes = []
    if phase != core.phase.value:
        changes.append(Change("runtime", session.runtime_id, spell(phase), spell(core.phase.value)))
    if registration != core.registration.value:
        changes.append(Change("registration", session.runtime_id, spell(registration), spell(core.registration.value)))
    active = {i: spell(r.phase.value) for i, r in core.ledger.records.items() if not r.phase.is_terminal}
    events.emit_step(
        session,
        "reconcile",
        before=spell(phase),
        after=spell(core.phase.value),
        changes=tuple(changes),
        details={"active": active, "attached": core.loop_attached, "max_attempts": core.max_attempts},
    )


async def _cancel_run(executor: CoreExecutor) -> None:
    """Advisory (the run's result is discarded anyway): its errors are swallowed, and an executor
    that does not answer within ``EXECUTOR_STOP_LIMIT_S`` is not waited for (unregistering the
    session waits for this task)."""
    await bounded_control(executor, CancelCurrentRun("reconciled with the store: the run in flight was dropped"))
