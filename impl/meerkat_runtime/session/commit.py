"""The one durable-commit seam of a session: plan → persist → apply → publish.

Every session transition takes effect through :func:`commit` (or, for a plan that writes
nothing, through :func:`install`, its synchronous second half). The caller holds the session
gate and hands over a plan a core rule computed without changing anything:

1. **plan** (done by the caller): ``SessionCore.<rule>(...)`` validates and computes the new
   rows, lanes, phase and waiters, and what to write (``Plan.write``);
2. **persist**: :meth:`SessionPersistence.persist` performs that write in one store transaction
   and touches nothing in memory;
3. **apply**: :meth:`CoreState.apply` installs the plan and
   :meth:`SessionPersistence.settle` records what the store now holds;
4. **publish**: waiters resolve (:meth:`RuntimeSession.publish`).

Guarantees: nothing changes in memory unless the write returned; a failed write leaves memory
exactly as before (core, dirty marks, stored encodings, waiters) and raises a typed error
(``DurableWriteFailed`` or a subclass) naming the operation and the store failure. Steps 3 and 4
have no ``await`` between them, so no reader (readers take the gate) ever sees one without the
other. A plan that needs no I/O (it writes nothing, or the session is ephemeral) is installed
without awaiting. Every write of session state goes through here; the only other session write
is an accepted input's inline images, put into the content-addressed blob store just before its
accept is committed (a blob holds payload bytes, never lifecycle state).

Ownership fencing (here, nowhere else): before step 2 the session's claim is checked — a
session whose lease was lost writes nothing and raises ``OwnershipLost``; step 2 hands the
lease's fence to the store (``SessionPersistence.fence``), which refuses a stale one inside the
write's own transaction. A refusal (``OwnershipLost``) loses the claim at once (every later
write of the session is refused before it reaches the store; the machine then detaches the
session) and is raised unwrapped, before step 3: nothing changed in memory.

Unknown write outcomes (here, nowhere else): a store error that does not say the write did
not happen (``write_outcome_unknown``: anything but a ``StoreError`` with ``outcome_unknown``
false) leaves the outcome open. Memory is still as before the write; with the gate still held
the session reads the store back (:meth:`SessionPersistence.read_back`): if the store holds
the write, the commit completes exactly as a successful one (steps 3 and 4; the caller gets its
result); if the store holds what it held before, the write did not land and ``error`` is raised
(``read_back=True``); if the store cannot be read (or holds neither), the session is marked *in
doubt* (``RuntimeSession.in_doubt``) and ``error`` is raised with ``outcome_unknown=True``.
An in-doubt session takes no further step until it has reconciled
(:func:`meerkat_runtime.session.reconcile.reconcile`, which every step calls first); a plan
reaching ``commit`` while the session is in doubt is refused.

Post-commit events (here, nowhere else): after step 4 the plan's event is published on the
machine's bus (:mod:`meerkat_runtime.session.events`), named ``plan.rule`` (the model's name of
the transition) — only for a transition that took effect: never for a failed write, and after a
write whose outcome was unknown only once reading the store back showed it landed (then at once,
or when an in-doubt session reconciles and finds it, :mod:`meerkat_runtime.session.reconcile`).
Steps 3, 4 and the event run with the gate held and no ``await`` between them, so each session's
events are published in commit order.

The composition dispatcher (:mod:`meerkat_runtime.session.dispatch`) plugs in between step 3
and step 4 for the transitions it routes: with its ``restore`` policy a refused signal undoes
the plan in memory (a checkpoint taken before step 3) and on disk (one compensating lifecycle
commit), and nothing is published.

Retention (:mod:`meerkat_runtime.session.retention`): right after step 3 a persistent session
drops the decoded records of its oldest finished inputs (they stay listed and are read from the
store on demand) and an ephemeral one compacts in memory; after a durable plan that finished
inputs, the finished inputs beyond the horizon are compacted (one fenced store call, then memory).

Group commit: with a store that batches writes (the SQLite store by default) step 2 hands the
write to the store's writer and awaits the shared transaction; a failure of the batch reaches
each plan of it through this same ``except`` (``WriteOutcomeUnknown`` when the batch's commit
may have landed), so the rules above hold per plan unchanged.
"""

from __future__ import annotations

from meerkat_runtime.session import events, retention
from meerkat_runtime.session.core.checkpoint import CoreCheckpoint
from meerkat_runtime.session.core.plan import LifecycleWrite, Plan
from meerkat_runtime.session.dispatch import (
    CompositionDispatchFailed,
    CompositionSignal,
    DispatchFailurePolicy,
    log_preserved,
)
from meerkat_runtime.session.persistence import NOTHING_WRITTEN, Written
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed, OwnershipLost, ValidationFailed, write_outcome_unknown


class SessionInDoubt(RuntimeError):
    """A plan reached the commit seam while the session was in doubt (it must reconcile with
    the store first); raised as the cause of ``DurableWriteFailed``."""


async def commit(
    session: RuntimeSession, plan: Plan, what: str, *, error: type[DurableWriteFailed] = DurableWriteFailed
) -> None:
    """Persist ``plan`` (one transaction), then apply and publish it. Called with the session
    gate held. On a failed write nothing in memory changed and ``error(what, cause)`` is raised
    (after an unknown outcome only once the store was read back: see the module docstring); a
    write refused for ownership raises ``OwnershipLost`` and loses the session's claim; an
    accepted row that would not read back raises ``InvalidField`` before anything is written."""
    persistence = session.persistence
    if not persistence.needs_io(plan):  # memory-only plan, or an ephemeral session: no await
        written = persistence.unwritten(plan, session.core.ledger)
        if session.dispatch is None:
            install(session, plan, written)
        else:
            await _install_dispatching(session, plan, written, what)
        return
    claim = session.claim
    claim.check()
    doubt = session.in_doubt
    if doubt is not None:
        raise error(what, SessionInDoubt(f"reconcile with the store first (after: {doubt})"), outcome_unknown=True)
    try:
        prepared = persistence.prepare(plan, session.core.ledger)
    except ValidationFailed:
        raise
    except Exception as exc:
        raise error(what, exc) from exc
    try:
        written = await persistence.persist(plan, session.core.ledger, prepared)
    except OwnershipLost as lost:
        claim.lose(lost)
        raise
    except Exception as exc:
        if not write_outcome_unknown(exc):
            raise error(what, exc) from exc
        landed = await persistence.read_back(prepared)
        if landed is None:
            session.in_doubt = exc
            session.doubt_plan = (plan, prepared)
            session.doubt_before = events.before(session, plan)  # memory is still as before the plan
            raise error(what, exc, outcome_unknown=True) from exc
        if not landed:
            raise error(what, exc, read_back=True) from exc
        written = prepared  # the store holds it: the commit took effect
    if session.dispatch is None:
        install(session, plan, written)
    else:
        await _install_dispatching(session, plan, written, what)
    if retention.finishes_inputs(plan):
        await retention.compact(session, session.retention)


def install(session: RuntimeSession, plan: Plan, written: Written = NOTHING_WRITTEN) -> None:
    """Apply ``plan`` and publish its waiters: the second half of :func:`commit`, called on its
    own only for a plan that writes nothing (``plan.write is None``)."""
    if plan.write is not None and written is NOTHING_WRITTEN and session.persistence.durable:
        raise ValueError(f"plan {plan.rule!r} must be written before it is applied; use commit()")
    core = session.core
    prior = events.before(session, plan)
    core.apply(plan)
    session.persistence.settle(written, core.ledger)
    retention.after_install(session, plan)
    session.publish(plan)
    if prior is not None and not plan.folded:
        events.emit_plan(session, plan, prior)


async def _install_dispatching(session: RuntimeSession, plan: Plan, written: Written, what: str) -> None:
    """Steps 3 and 4 with the composition dispatcher between them (module docstring)."""
    dispatch = session.dispatch
    policy = None if dispatch is None else dispatch.policy_for(plan.rule)
    if dispatch is None or policy is None:
        install(session, plan, written)
        return
    core = session.core
    prior = events.before(session, plan, always=True)
    assert prior is not None
    checkpoint = CoreCheckpoint.take(core, plan) if policy is DispatchFailurePolicy.RESTORE else None
    core.apply(plan)
    session.persistence.settle(written, core.ledger)
    retention.after_install(session, plan)
    view = events.describe(session, plan, prior)
    signal = CompositionSignal(
        view.rule,
        str(session.session_id),
        session.runtime_id,
        view.before,
        view.after,
        view.changes,
        view.run_id,
        view.details,
    )
    try:
        await dispatch.dispatcher(signal)
    except Exception as exc:
        if checkpoint is None:
            session.publish(plan)
            if not plan.folded:
                events.emit_view(session, view)
            if plan.rule in _RUN_ENDS:
                session.last_error = exc
                log_preserved(signal, exc)
                return
            raise CompositionDispatchFailed(plan.rule, exc, restored=False) from exc
        await _restore(session, checkpoint, plan, written, exc)
        raise CompositionDispatchFailed(plan.rule, exc, restored=True) from exc
    session.publish(plan)
    if not plan.folded:
        events.emit_view(session, view)


_RUN_ENDS = frozenset(
    {
        "executor_succeeded",
        "executor_succeeded_retired",
        "executor_succeeded_without_loop",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
        "interrupt",
        "interrupt_retired",
        "interrupt_without_loop",
    }
)


async def _restore(
    session: RuntimeSession, checkpoint: CoreCheckpoint, plan: Plan, written: Written, cause: BaseException
) -> None:
    """Undo an applied plan whose write (``written``) committed: memory back to ``checkpoint``,
    then one compensating lifecycle commit of the previous lifecycle record and rows (nothing is
    published). A failed compensating write leaves the session in doubt (the store holds the
    plan's write or the previous state: reconciling publishes the plan, adopted, if it finds the
    plan's write) and raises ``CompositionDispatchFailed``."""
    core = session.core
    restored = checkpoint.restore(core)
    core.ledger.dirty.update(restored)
    persistence = session.persistence
    compensation = core.draft(plan.rule, LifecycleWrite())
    if not persistence.needs_io(compensation) or plan.write is None:
        return
    try:
        prepared = persistence.prepare(compensation, core.ledger)
        undone = await persistence.persist(compensation, core.ledger, prepared)
    except Exception as exc:
        session.in_doubt = exc
        session.doubt_plan = (plan, written)
        session.doubt_before = None  # memory was restored to before the plan
        raise CompositionDispatchFailed(plan.rule, cause, restored=False, outcome_unknown=True) from exc
    persistence.settle(undone, core.ledger)


def install_start(session: RuntimeSession, plan: Plan) -> BaseException | None:
    """Install ``plan``, which starts a run and writes nothing; the error raised while
    publishing it, if any (the caller then drops the run: it must not stay current)."""
    try:
        install(session, plan)
    except BaseException as exc:
        return exc
    return None
