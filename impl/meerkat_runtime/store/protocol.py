"""The ``RuntimeStore`` protocol: what the runtime needs from durable storage.

Contract for every implementation:

* Every method is keyed by the canonical runtime id (``rt:session:<id>``); runtimes are
  isolated from each other.
* A method that returns normally has made its write durable (as durable as the store's
  documented setting). A method that raises has changed nothing — except
  ``WriteOutcomeUnknown`` (``outcome_unknown`` is ``True``), raised when the failure happened
  while the transaction was being committed: the write may or may not be durable. Multi-row
  writes are one transaction.
* Errors are ``meerkat_runtime.vocab.errors`` store errors naming the runtime id and what
  failed: ``WriteFailed``, ``ReadFailed``, ``Corrupt`` (a damaged row fails closed),
  ``VersionMismatch`` (a schema or record version the store does not know), ``WriteRefused``
  and its kinds ``OwnershipLost`` and ``LeaseHeld`` (refused after checking the lease; nothing
  written), ``WriteOutcomeUnknown``.
* A boundary receipt is unique per ``(runtime_id, run_id, sequence)``; a duplicate is a
  ``WriteFailed`` and rolls back the whole ``atomic_apply``. Sequences are unsigned 64-bit
  integers (``0 .. 2**64 - 1``).
* ``persist_ops_lifecycle`` drops every record appended before it for that runtime (the
  snapshot covers them); records appended after it are returned after the snapshot.
* Methods are synchronous and safe to call from several threads.

Ownership (leases and fences; :mod:`meerkat_runtime.store.lease` holds the rules as code):

* A runtime has at most one lease row ``(owner, token, expires_at)``; ``expires_at`` is in the
  store's clock (the built-in stores take a ``clock``, default ``time.time``; a server-side
  store uses the server's clock). A lease is expired when ``now >= expires_at``.
* ``claim_lease`` succeeds when there is no row, the row has expired, or the row already
  belongs to ``owner``: it writes ``(owner, token + 1, now + duration_s)`` (token 1 for a new
  row) and returns it. Otherwise it raises ``LeaseHeld`` naming the holder and its expiry. The
  read and the write are one transaction: of claims racing for one runtime, from threads or
  processes, exactly one wins while the lease is live.
* ``renew_lease`` extends the lease to ``now + duration_s`` iff the row still has the fence's
  owner and token (even if it has expired meanwhile: nobody took it); the token never changes
  on renew. Else ``OwnershipLost``.
* ``renew_leases(renewals, duration_s)`` (optional, see :class:`RenewsLeases`) renews up to
  ``RENEW_BATCH_MAX`` leases, given as ``(fence, runtime_id)`` pairs, in one transaction: each
  outcome is what ``renew_lease`` alone would give (the renewed lease, or its error returned in
  its place); a stale fence refuses that lease only.
* ``release_lease`` sets ``expires_at`` to now (owner and token kept, so tokens keep growing)
  iff the row matches the fence; a stale fence is a no-op.
* Every write method takes a keyword-only ``fence``. Inside the write's own transaction: with
  a fence, the row must exist with that owner and token; without one (``fence=None``), the
  runtime must have no lease row at all. Otherwise the whole write is refused with
  ``OwnershipLost`` and nothing of it is written. Expiry alone refuses nothing; a stale
  writer is refused once another owner has claimed (the token moved).
* Reads take no fence.

Finished inputs and compaction (restarts follow the backlog, not history):

* An input row carries, beside its opaque payload, what the runtime says about it
  (``InputRow.finished_at``, ``idempotency_key``, ``admission_seq``, and ``queued``: opaque
  bytes a restart recovers a waiting input from); the store keeps them as given with every
  upsert and returns them with the row, and refuses ``queued`` on a finished row
  (``WriteFailed``). A store another writer may share with a release that does not know
  ``queued`` (the SQL stores) returns it only while the row holds the payload it was written
  with, else ``None`` (a stale column: :func:`~meerkat_runtime.store.sql_rows.unbound_queued`).
  A row with ``finished_at`` set is *finished* (its input is terminal), else *active*.
* ``load_active_input_states`` returns only the active rows (checksums verified), ordered by
  input id; a store may return a row carrying ``queued`` before verifying its payload, with
  ``InputRow.check`` and ``InputRow.checksum`` set (``InputRow.verified_payload()`` performs the
  check: a restart need not decode, nor check, a row it recovers from ``queued``), and a write
  checks such a row's payload before storing it; ``load_finished_inputs`` lists the finished
  rows without reading their payloads (id, ``finished_at``, key, admission position), oldest
  ``finished_at`` first (ties by input id). Both are a read of that subset only: a restart
  reads the backlog, not history. Together they are every row ``load_input_states`` returns.
* ``load_input_state`` reads one row by id (checksum verified), ``None`` if there is none.
* ``compact_inputs`` deletes the named finished rows in one transaction and returns how many
  it deleted; a name with no row is skipped (so a retry after an unknown outcome is harmless);
  naming an active row refuses the whole call (``WriteRefused``, nothing deleted). It advances
  the high-water mark like any data write (``writes`` + 1, ``inputs`` minus the rows deleted),
  so a compacted session never disagrees with its mark. Fenced like every write. In the same
  transaction it deletes every boundary receipt naming one of the named inputs whose
  contributing inputs are then all gone (``receipts`` minus as many;
  :mod:`~meerkat_runtime.store.receipt_retention`): no reader needs such a receipt, and
  receipts stay bounded by the rows kept.

Listing (for operators' tools, :mod:`meerkat_runtime.cli`):

* ``list_runtimes`` returns every runtime id the store holds anything for (an input row, a
  receipt, a session snapshot, a lifecycle record, ops state, a lease, a high-water mark or a
  quarantined row), each once, in code-point order; an empty store returns ``[]``. It reads
  only. Store-wide errors name the runtime id ``"*"``.

Damage detection and quarantine (:mod:`meerkat_runtime.store.high_water`):

* Every data write (the six write methods, ``compact_inputs`` and ``quarantine_row``) advances the runtime's
  high-water mark **in its own transaction** with
  :func:`~meerkat_runtime.store.high_water.advance`: ``writes`` + 1 and the row counts it
  changed (an upsert of an input id not stored yet adds one input; a receipt adds one; a
  session snapshot, lifecycle record or ops snapshot sets its flag; an ops record adds one,
  ``persist_ops_lifecycle`` resets ``ops_records`` to 0, ``delete_ops_lifecycle`` clears both).
  A refused or failed write changes nothing, the mark included. ``load_high_water`` reads it
  (``None`` until the first data write).
* ``scan_input_states`` returns every input row with its stored payload and whether it passed
  the integrity check, without raising ``Corrupt`` for a damaged row.
* ``quarantine_row`` moves one input row, whatever its state (intact, undecodable or failing
  its checksum), into the runtime's quarantine in one transaction: the row leaves
  ``load_input_states``, its stored bytes are kept unchanged with the reason and the time, and
  the mark moves one count from ``inputs`` to ``quarantined``. No such row: ``WriteRefused``,
  nothing written. Fenced like every write. ``load_quarantined`` lists the quarantine, oldest
  first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.lease import Fence, Lease, RenewalOutcome
from meerkat_runtime.store.records import (
    BoundaryReceipt,
    FinishedInput,
    InputRow,
    OpsLifecycleRecords,
    QuarantinedRow,
    ScannedRow,
)


@runtime_checkable
class RuntimeStore(Protocol):
    # --- inputs ---------------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        """Upsert one input row (durable-before-ack on accept)."""
        ...

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        """Every input row of the runtime, ordered by input id."""
        ...

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        """The runtime's rows without ``finished_at``, ordered by input id."""
        ...

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        """The runtime's finished rows without their payloads, oldest ``finished_at`` first
        (ties by input id)."""
        ...

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        """One row by input id, or ``None``."""
        ...

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        """In one transaction: delete each named finished row (names without a row are
        skipped); ``WriteRefused`` (nothing deleted) if one names an active row. Returns the
        number of rows deleted."""
        ...

    # --- run boundaries -------------------------------------------------------------------
    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        """In one transaction: replace the session snapshot (if given), insert the receipt
        (duplicate -> ``WriteFailed``), upsert every row."""
        ...

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None: ...

    def load_session_snapshot(self, runtime_id: str) -> bytes | None: ...

    # --- machine lifecycle ----------------------------------------------------------------
    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        """In one transaction: replace the lifecycle record and upsert every row."""
        ...

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None: ...

    # --- operation registry ---------------------------------------------------------------
    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        """Append one terminal-transition record: O(1) in the registry's size."""
        ...

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        """Replace the full snapshot and drop the appended records it covers (compaction),
        in one transaction."""
        ...

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        """The snapshot and the records appended since, or ``None`` if nothing is stored."""
        ...

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None: ...

    # --- ownership ------------------------------------------------------------------------
    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        """Take the lease if it is free, expired or already ``owner``'s: token + 1, expiry
        ``now + duration_s``; else ``LeaseHeld(runtime_id, owner=<holder>, expires_at=<when>)``."""
        ...

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        """Extend the lease to ``now + duration_s`` iff it still matches ``fence`` (same token);
        else ``OwnershipLost``."""
        ...

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        """Expire the lease now iff it still matches ``fence``; a stale fence is a no-op."""
        ...

    def load_lease(self, runtime_id: str) -> Lease | None:
        """The runtime's lease row, or ``None`` if it was never claimed."""
        ...

    # --- damage detection and quarantine -------------------------------------------------
    def load_high_water(self, runtime_id: str) -> HighWater | None:
        """The runtime's high-water mark, or ``None`` if no data write ever committed for it."""
        ...

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        """Every input row as stored, ordered by input id, each with ``intact`` (its integrity
        check passed); a damaged row is returned, not raised."""
        ...

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        """In one transaction: move input row ``input_id`` (intact or not) into the quarantine
        with ``reason``, keeping its stored bytes; ``WriteRefused`` if there is no such row."""
        ...

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        """The runtime's quarantined rows, oldest first."""
        ...

    # --- listing --------------------------------------------------------------------------
    def list_runtimes(self) -> list[str]:
        """Every runtime id with anything stored, each once, sorted (code-point order)."""
        ...

    # --- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Release resources. Calls after ``close`` raise ``WriteFailed``/``ReadFailed``."""
        ...


STORE_METHODS: tuple[str, ...] = tuple(
    name for name, value in vars(RuntimeStore).items() if not name.startswith("_") and callable(value)
)
"""The methods of the ``RuntimeStore`` protocol."""


def missing_store_methods(store: object) -> list[str]:
    """The ``RuntimeStore`` methods ``store`` lacks (none for a store). Looked up as a call
    looks them up, so a wrapper forwarding them through ``__getattr__`` has them all (which
    ``isinstance(store, RuntimeStore)`` does not see on Python 3.12 and later)."""
    return [name for name in STORE_METHODS if not callable(getattr(store, name, None))]


@runtime_checkable
class RenewsLeases(Protocol):
    """An optional capability of a store (all built-in stores have it): renew many leases in one
    transaction. ``renew_leases`` takes at most ``RENEW_BATCH_MAX`` pairs ``(fence,
    runtime_id)`` with distinct runtime ids and returns one outcome per pair, in order: the
    renewed lease, or the error ``renew_lease`` would raise for that pair alone (returned, not
    raised; the other pairs are renewed). A failure of the transaction itself raises, as
    ``renew_lease`` does, for all of them. A store without it is renewed one lease at a time."""

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]: ...


def batched_renewal(store: object) -> Callable[[Sequence[tuple[Fence, str]], float], list[RenewalOutcome]] | None:
    """``store.renew_leases`` when ``store``'s class defines it no less derived than its
    ``renew_lease`` (so a subclass that changes ``renew_lease`` alone, or a wrapper forwarding
    attributes, keeps being renewed through ``renew_lease``); else ``None``."""
    if not isinstance(store, RenewsLeases):
        return None
    cls = type(store)
    batch_owner = next((k for k in cls.__mro__ if callable(vars(k).get("renew_leases"))), None)
    if batch_owner is None:
        return None
    single_owner = next((k for k in cls.__mro__ if "renew_lease" in vars(k)), None)
    if single_owner is not None and not issubclass(batch_owner, single_owner):
        return None
    return store.renew_leases


@runtime_checkable
class SubmitsWrites(Protocol):
    """An optional capability of a store with group commit (the SQLite store): a write can be
    started without blocking the caller. ``group_commit`` says whether it is on;
    ``submit_write(call)`` runs ``call`` — exactly one call of a write method returning
    ``None`` — and returns a future holding what the call returns or raises once its batch
    committed. The runtime awaits that future instead of blocking a thread on the call."""

    group_commit: bool

    def submit_write(self, call: Callable[[], None]) -> Future[None]: ...

    def submit_write_on(self, loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> asyncio.Future[None]:
        """``submit_write`` for a caller on ``loop``: the future is an ``asyncio.Future`` of
        ``loop``, completed on it (one call onto the loop per batch)."""
        ...

    def writer_idle(self) -> bool:
        """No write queued or being committed: a write started now would commit alone."""
        ...
