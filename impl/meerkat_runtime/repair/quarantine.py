"""Setting one stored input row aside so the rest of its session recovers.

:func:`quarantine_input` moves the row with ``RuntimeStore.quarantine_row`` (one transaction;
the row's stored bytes are kept in the quarantine with the reason and the time). When the
session has a lease (its store is used with ownership), the move is made under a claim of that
lease by ``owner``, released right after: a worker that holds it live makes this fail with
``LeaseHeld`` (stop it, or let the lease expire, first), and a worker whose lease had expired
finds its fence stale afterwards. Without a lease the write is unfenced, as the session's own
writes are; then no machine may have the session registered meanwhile.

The quarantined input is no longer part of the session: it is not recovered, not run, and its
idempotency key no longer deduplicates. Its bytes stay available with
``RuntimeStore.load_quarantined``.
"""

from __future__ import annotations

from meerkat_runtime.session.machine import stored_session_runtime_id
from meerkat_runtime.store.high_water import quarantine_refusal, quarantine_refused
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import QuarantinedRow

REPAIR_OWNER = "meerkat-runtime-repair"
"""The lease owner name quarantine claims under."""

REPAIR_LEASE_S = 30.0


def quarantine_input(
    store: RuntimeStore,
    session_id: str,
    input_id: str,
    reason: str,
    *,
    owner: str = REPAIR_OWNER,
    lease_s: float = REPAIR_LEASE_S,
) -> QuarantinedRow:
    """Move input ``input_id`` of ``session_id`` into the quarantine; returns what was moved.

    Raises ``ValidationFailed`` (bad session id), ``LeaseHeld`` (a live worker owns the
    session), ``WriteRefused`` (no such input row), ``Corrupt`` (the session's high-water mark
    is missing or counts other rows than are stored: see
    :func:`~meerkat_runtime.store.high_water.quarantine_refusal`; the store's ``quarantine_row``
    refuses the same in its transaction, and this refuses before claiming the lease) or the
    store's error; nothing is moved then.
    """
    runtime_id = stored_session_runtime_id(session_id)
    stored = {row.input_id for row in store.scan_input_states(runtime_id)}
    if input_id in stored and (refusal := quarantine_refusal(store.load_high_water(runtime_id), len(stored))):
        raise quarantine_refused(runtime_id, refusal)  # before the lease is claimed: nothing is written
    if store.load_lease(runtime_id) is None:
        return store.quarantine_row(runtime_id, input_id, reason)
    lease = store.claim_lease(runtime_id, owner, lease_s)
    try:
        return store.quarantine_row(runtime_id, input_id, reason, fence=lease.fence)
    finally:
        store.release_lease(lease.fence, runtime_id)
