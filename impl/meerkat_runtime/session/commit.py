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

Where the next guarantees plug in (all here, nowhere else):

* unknown-outcome reconciliation — in the ``except`` of step 2: mark the session as needing
  reconciliation (the write may have landed) so the next ``commit`` re-reads the store first;
* group commit — step 2 hands the write to a batcher and awaits the shared transaction;
  failure fails each plan of the batch through this same ``except``;
* post-commit events — after step 4, emit one event named ``plan.rule`` (the model's name of
  the transition).
"""

from __future__ import annotations

from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.persistence import NOTHING_WRITTEN, Written
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed, OwnershipLost


async def commit(
    session: RuntimeSession, plan: Plan, what: str, *, error: type[DurableWriteFailed] = DurableWriteFailed
) -> None:
    """Persist ``plan`` (one transaction), then apply and publish it. Called with the session
    gate held. On a failed write nothing in memory changed and ``error(what, cause)`` is raised;
    a write refused for ownership raises ``OwnershipLost`` and loses the session's claim."""
    persistence = session.persistence
    if not persistence.needs_io(plan):  # memory-only plan, or an ephemeral session: no await
        install(session, plan, persistence.unwritten(plan, session.core.ledger))
        return
    claim = session.claim
    claim.check()
    try:
        written = await persistence.persist(plan, session.core.ledger)
    except OwnershipLost as lost:
        claim.lose(lost)
        raise
    except Exception as exc:
        raise error(what, exc) from exc
    install(session, plan, written)


def install(session: RuntimeSession, plan: Plan, written: Written = NOTHING_WRITTEN) -> None:
    """Apply ``plan`` and publish its waiters: the second half of :func:`commit`, called on its
    own only for a plan that writes nothing (``plan.write is None``)."""
    if plan.write is not None and written is NOTHING_WRITTEN and session.persistence.durable:
        raise ValueError(f"plan {plan.rule!r} must be written before it is applied; use commit()")
    core = session.core
    core.apply(plan)
    session.persistence.settle(written, core.ledger)
    session.publish(plan)
