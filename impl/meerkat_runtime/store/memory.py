"""``InMemoryRuntimeStore``: the ``RuntimeStore`` contract held in process memory.

Same semantics as the SQLite store: rows carry checksums and a damaged row fails closed with
``Corrupt``; a duplicate boundary receipt is a ``WriteFailed`` and rolls back the whole
``atomic_apply``; every multi-row write is validated first and then applied under one lock, so
it is all-or-nothing. Data lives in a ``MemoryStorage``; several handles can share one storage,
which is how a restart is modelled (close one handle, open another on the same storage).

Ownership follows the same rules as every store (:mod:`meerkat_runtime.store.lease`): leases
live in the storage (shared by its handles), expiries are in the handle's ``clock`` (default
``time.time``; give every handle the same :class:`~meerkat_runtime.store.clock.ManualClock` to
expire leases deterministically), and each write checks its fence under the storage lock, in
the same critical section as the write.

Every data write advances the runtime's high-water mark under the same lock
(:mod:`meerkat_runtime.store.high_water`); marks and quarantined rows live in the storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meerkat_runtime.store import validation as v
from meerkat_runtime.store.clock import Clock
from meerkat_runtime.store.high_water import HighWater, MarkStep, advance, quarantine_refusal, quarantine_refused
from meerkat_runtime.store.integrity import row_checksum, verified_payload
from meerkat_runtime.store.lease import (
    Fence,
    Lease,
    RenewalOutcome,
    claim_outcome,
    fence_refusal,
    released,
    renewal_outcome,
)
from meerkat_runtime.store.receipt_retention import index_entries, released_receipts
from meerkat_runtime.store.records import (
    BoundaryReceipt,
    FinishedInput,
    InputRow,
    OpsLifecycleRecords,
    QuarantinedRow,
    RowColumns,
    ScannedRow,
)
from meerkat_runtime.store.tables import INPUTS, LIFECYCLES, OPS_RECORDS, OPS_SNAPSHOTS, RECEIPTS, SNAPSHOTS
from meerkat_runtime.vocab.errors import Corrupt, OwnershipLost, ReadFailed, RowNotStored, WriteFailed, WriteRefused

STORE_SCOPE = "*"
"""The runtime id store-wide errors name (as in every built-in store)."""

Sealed = tuple[bytes, str]
"""A stored payload and its checksum."""
RowIndex = tuple[float | None, str | None, int | None, bytes | None]
"""An input row's ``(finished_at, idempotency_key, admission_seq, queued)``."""


def seal(table: str, runtime_id: str, key: str, payload: bytes) -> Sealed:
    return payload, row_checksum(table, runtime_id, key, payload)


def intact(table: str, runtime_id: str, key: str, payload: object, checksum: object) -> bool:
    """Whether a stored payload passes its integrity check."""
    try:
        verified_payload(table, runtime_id, key, payload, checksum)
    except Corrupt:
        return False
    return True


@dataclass
class MemoryStorage:
    """The rows behind one or more ``InMemoryRuntimeStore`` handles, keyed by runtime id.

    Attributes are the raw tables (payload, checksum); tooling may inspect them, and the store
    conformance suite damages them to check that reads fail closed.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    inputs: dict[str, dict[str, Sealed]] = field(default_factory=dict)
    receipts: dict[str, dict[tuple[str, int], Sealed]] = field(default_factory=dict)
    snapshots: dict[str, Sealed] = field(default_factory=dict)
    lifecycles: dict[str, Sealed] = field(default_factory=dict)
    ops_snapshots: dict[str, Sealed] = field(default_factory=dict)
    ops_records: dict[str, list[tuple[int, Sealed]]] = field(default_factory=dict)
    next_record_seq: int = 1
    leases: dict[str, Lease] = field(default_factory=dict)
    marks: dict[str, HighWater] = field(default_factory=dict)
    """High-water marks (plain values, like leases)."""
    quarantine: dict[str, list[QuarantinedRow]] = field(default_factory=dict)
    input_index: dict[str, dict[str, RowIndex]] = field(default_factory=dict)
    """What the runtime said about each input row beside its payload: ``(finished_at,
    idempotency_key, admission_seq)``; rows without an entry are active."""
    receipt_index: dict[str, dict[str, set[tuple[str, int]]]] = field(default_factory=dict)
    """The receipts naming each input (:mod:`.receipt_retention`): input id to receipt keys."""


class InMemoryRuntimeStore:
    """A ``RuntimeStore`` in memory. ``storage`` shares data with other handles (a restart)."""

    def __init__(self, storage: MemoryStorage | None = None, *, clock: Clock = time.time) -> None:
        self.storage = storage if storage is not None else MemoryStorage()
        self.clock = clock
        self._closed = False

    # --- helpers --------------------------------------------------------------------------
    def _open_for(self, runtime_id: object, error: type[WriteFailed] | type[ReadFailed]) -> str:
        rt = v.check_runtime_id(runtime_id, error)
        if self._closed:
            raise error(rt, "store is closed")
        return rt

    def _fence_ok(self, rt: str, fence: Fence | None, what: str) -> None:
        """Refuse the write unless ``fence`` matches the lease (call with the storage lock held)."""
        refusal = fence_refusal(rt, self.storage.leases.get(rt), fence, what)
        if refusal is not None:
            raise refusal

    def _advance(self, rt: str, step: MarkStep) -> None:
        """Advance the runtime's high-water mark (call with the storage lock held, after the write)."""
        self.storage.marks[rt] = advance(self.storage.marks.get(rt), rt, step)

    def _new_inputs(self, rt: str, ids: Sequence[str]) -> int:
        """How many of ``ids`` are not stored yet (call with the storage lock held)."""
        stored = self.storage.inputs.get(rt, {})
        return sum(1 for i in ids if i not in stored)

    def _sealed_rows(self, rt: str, rows: Sequence[InputRow]) -> dict[str, Sealed]:
        checked = v.check_rows(rt, rows, WriteFailed)
        return {row.input_id: seal(INPUTS, rt, row.input_id, row.payload) for row in checked}

    def _put_rows(self, rt: str, sealed: dict[str, Sealed], rows: Sequence[InputRow]) -> None:
        """Store checked rows and their index columns (call with the storage lock held)."""
        self.storage.inputs.setdefault(rt, {}).update(sealed)
        index = self.storage.input_index.setdefault(rt, {})
        for row in rows:
            index[row.input_id] = (row.finished_at, row.idempotency_key, row.admission_seq, row.queued)

    def _row(self, rt: str, input_id: str, sealed: Sealed, index: RowIndex | None) -> InputRow:
        return InputRow(input_id, verified_payload(INPUTS, rt, input_id, *sealed), *(index or (None, None, None, None)))

    # --- inputs ---------------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        sealed = self._sealed_rows(rt, [row])
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "persist_input_state")
            added = self._new_inputs(rt, list(sealed))
            self._put_rows(rt, sealed, [row])
            self._advance(rt, MarkStep(inputs_added=added))

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            table = dict(self.storage.inputs.get(rt, {}))
            index = dict(self.storage.input_index.get(rt, {}))
        return [self._row(rt, input_id, table[input_id], index.get(input_id)) for input_id in sorted(table)]

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            index = self.storage.input_index.get(rt, {})
            table = {
                i: sealed
                for i, sealed in self.storage.inputs.get(rt, {}).items()
                if (found := index.get(i)) is None or found[0] is None
            }
            found_index = {i: index.get(i) for i in table}
        return [self._row(rt, input_id, table[input_id], found_index[input_id]) for input_id in sorted(table)]

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            stored = self.storage.inputs.get(rt, {})
            entries = [
                FinishedInput(i, at, key, seq)
                for i, (at, key, seq, _) in self.storage.input_index.get(rt, {}).items()
                if at is not None and i in stored
            ]
        entries.sort(key=lambda e: (e.finished_at, e.input_id))
        return entries

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        rt = self._open_for(runtime_id, ReadFailed)
        key = v.check_input_id(rt, input_id, ReadFailed)
        with self.storage.lock:
            sealed = self.storage.inputs.get(rt, {}).get(key)
            index = self.storage.input_index.get(rt, {}).get(key)
        return None if sealed is None else self._row(rt, key, sealed, index)

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        rt = self._open_for(runtime_id, WriteFailed)
        ids = v.check_input_ids(rt, input_ids, WriteFailed)
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "compact_inputs")
            stored = self.storage.inputs.get(rt, {})
            index = self.storage.input_index.get(rt, {})
            present = [i for i in ids if i in stored]
            for i in present:
                if (found := index.get(i)) is None or found[0] is None:
                    raise WriteRefused(
                        rt, f"compact_inputs: input row {i!r} is active, not finished; nothing was deleted"
                    )
            for i in present:
                del stored[i]
                index.pop(i, None)
            receipts = self.storage.receipts.get(rt, {})
            named = self.storage.receipt_index.get(rt, {})
            keys = sorted({key for i in ids for key in named.get(i, ())})
            bodies = [(run, seq, receipts[(run, seq)][0]) for run, seq in keys if (run, seq) in receipts]
            gone = released_receipts(bodies, frozenset(ids), lambda rest: any(i in stored for i in rest))
            for key, contributors in gone:
                del receipts[key]
                for i in contributors:
                    if (entries := named.get(i)) is not None:
                        entries.discard(key)
                        if not entries:
                            del named[i]
            self._advance(rt, MarkStep(inputs_removed=len(present), receipts_removed=len(gone)))
        return len(present)

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
        rt = self._open_for(runtime_id, WriteFailed)
        checked = v.check_receipt(rt, receipt, WriteFailed)
        snapshot = None
        if session_snapshot is not None:
            snapshot = seal(SNAPSHOTS, rt, "", v.check_bytes(rt, "session_snapshot", session_snapshot, WriteFailed))
        key = (checked.run_id, checked.sequence)
        sealed_receipt = seal(RECEIPTS, rt, v.receipt_key(*key), v.receipt_json(rt, checked, WriteFailed))
        sealed_rows = self._sealed_rows(rt, rows)
        checked_fence = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked_fence, "atomic_apply")
            receipts = self.storage.receipts.setdefault(rt, {})
            if key in receipts:
                raise WriteFailed(
                    rt,
                    f"duplicate boundary receipt (run_id={key[0]!r}, sequence={key[1]}); nothing was applied",
                )
            receipts[key] = sealed_receipt
            named = self.storage.receipt_index.setdefault(rt, {})
            for i in index_entries(checked.contributing_input_ids):
                named.setdefault(i, set()).add(key)
            if snapshot is not None:
                self.storage.snapshots[rt] = snapshot
            added = self._new_inputs(rt, list(sealed_rows))
            self._put_rows(rt, sealed_rows, rows)
            self._advance(
                rt, MarkStep(inputs_added=added, receipts_added=1, session_snapshot=True if snapshot else None)
            )

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None:
        rt = self._open_for(runtime_id, ReadFailed)
        key = v.check_run_key(rt, run_id, sequence, ReadFailed)
        with self.storage.lock:
            stored = self.storage.receipts.get(rt, {}).get(key)
        if stored is None:
            return None
        label = v.receipt_key(*key)
        data = verified_payload(RECEIPTS, rt, label, *stored)
        try:
            receipt = BoundaryReceipt.from_json(data)
        except ValueError as exc:
            raise Corrupt(rt, f"row {RECEIPTS}[{label}] is not a valid receipt: {exc}") from exc
        if (receipt.run_id, receipt.sequence) != key:
            raise Corrupt(rt, f"row {RECEIPTS}[{label}] holds the receipt of another key")
        return receipt

    def load_session_snapshot(self, runtime_id: str) -> bytes | None:
        return self._load_single(runtime_id, SNAPSHOTS, self.storage.snapshots)

    # --- machine lifecycle ----------------------------------------------------------------
    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        sealed = seal(LIFECYCLES, rt, "", v.check_bytes(rt, "lifecycle", lifecycle, WriteFailed))
        sealed_rows = self._sealed_rows(rt, rows)
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "commit_machine_lifecycle")
            self.storage.lifecycles[rt] = sealed
            added = self._new_inputs(rt, list(sealed_rows))
            self._put_rows(rt, sealed_rows, rows)
            self._advance(rt, MarkStep(inputs_added=added, lifecycle=True))

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        return self._load_single(runtime_id, LIFECYCLES, self.storage.lifecycles)

    # --- operation registry ---------------------------------------------------------------
    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        v.check_bytes(rt, "ops record", record, WriteFailed)
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "append_ops_record")
            seq = self.storage.next_record_seq
            self.storage.next_record_seq += 1
            self.storage.ops_records.setdefault(rt, []).append((seq, seal(OPS_RECORDS, rt, str(seq), record)))
            self._advance(rt, MarkStep(ops_records_added=1))

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        sealed = seal(OPS_SNAPSHOTS, rt, "", v.check_bytes(rt, "ops snapshot", snapshot, WriteFailed))
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "persist_ops_lifecycle")
            self.storage.ops_snapshots[rt] = sealed
            self.storage.ops_records.pop(rt, None)
            self._advance(rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            snapshot = self.storage.ops_snapshots.get(rt)
            records = list(self.storage.ops_records.get(rt, ()))
        if snapshot is None and not records:
            return None
        data = None if snapshot is None else verified_payload(OPS_SNAPSHOTS, rt, "", *snapshot)
        appended = tuple(verified_payload(OPS_RECORDS, rt, str(seq), *sealed) for seq, sealed in records)
        return OpsLifecycleRecords(data, appended)

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "delete_ops_lifecycle")
            self.storage.ops_snapshots.pop(rt, None)
            self.storage.ops_records.pop(rt, None)
            self._advance(rt, MarkStep(ops_snapshot=False, ops_records_cleared=True))

    # --- damage detection and quarantine -------------------------------------------------
    def load_high_water(self, runtime_id: str) -> HighWater | None:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            return self.storage.marks.get(rt)

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            table = dict(self.storage.inputs.get(rt, {}))
            index = dict(self.storage.input_index.get(rt, {}))
        found: list[ScannedRow] = []
        for i in sorted(table):
            at, key, seq, _ = index.get(i, (None, None, None, None))
            found.append(ScannedRow(i, table[i][0], intact(INPUTS, rt, i, *table[i]), RowColumns(at, key, seq)))
        return found

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        rt = self._open_for(runtime_id, WriteFailed)
        key = v.check_input_id(rt, input_id, WriteFailed)
        why = v.check_reason(rt, reason, WriteFailed)
        checked = v.check_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            self._fence_ok(rt, checked, "quarantine_row")
            stored = self.storage.inputs.get(rt, {}).get(key)
            if stored is None:
                raise RowNotStored(rt, f"quarantine_row: no input row {key!r} is stored; nothing was moved")
            rows = len(self.storage.inputs.get(rt, {}))
            if (refusal := quarantine_refusal(self.storage.marks.get(rt), rows)) is not None:
                raise quarantine_refused(rt, refusal)
            moved = QuarantinedRow(key, stored[0], intact(INPUTS, rt, key, *stored), why, self.clock())
            del self.storage.inputs[rt][key]
            self.storage.input_index.get(rt, {}).pop(key, None)
            self.storage.quarantine.setdefault(rt, []).append(moved)
            self._advance(rt, MarkStep(inputs_removed=1, quarantined_added=1))
        return moved

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            return list(self.storage.quarantine.get(rt, ()))

    # --- ownership ------------------------------------------------------------------------
    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        rt = self._open_for(runtime_id, WriteFailed)
        who = v.check_owner(rt, owner, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)
        with self.storage.lock:
            lease = claim_outcome(rt, self.storage.leases.get(rt), who, duration, self.clock())
            self.storage.leases[rt] = lease
        return lease

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        rt = self._open_for(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)
        duration = v.check_duration(rt, duration_s, WriteFailed)
        with self.storage.lock:
            lease = renewal_outcome(rt, self.storage.leases.get(rt), checked, duration, self.clock())
            self.storage.leases[rt] = lease
        return lease

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
        """``renew_lease`` for each pair, under one hold of the storage lock (see
        :class:`~meerkat_runtime.store.protocol.RenewsLeases`)."""
        duration, items = v.check_renewals(renewals, duration_s, STORE_SCOPE)
        if self._closed:
            raise WriteFailed(STORE_SCOPE, "renew_leases: store is closed")
        outcomes: list[RenewalOutcome] = []
        with self.storage.lock:
            now = self.clock()
            for item in items:
                if not isinstance(item, tuple):
                    outcomes.append(item)
                    continue
                rt, fence = item
                try:
                    lease = renewal_outcome(rt, self.storage.leases.get(rt), fence, duration, now)
                except OwnershipLost as lost:
                    outcomes.append(lost)
                    continue
                self.storage.leases[rt] = lease
                outcomes.append(lease)
        return outcomes

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        rt = self._open_for(runtime_id, WriteFailed)
        checked = v.check_required_fence(rt, fence, WriteFailed)
        with self.storage.lock:
            lease = released(self.storage.leases.get(rt), checked, self.clock())
            if lease is not None:
                self.storage.leases[rt] = lease

    def load_lease(self, runtime_id: str) -> Lease | None:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            return self.storage.leases.get(rt)

    # --- listing --------------------------------------------------------------------------
    def list_runtimes(self) -> list[str]:
        if self._closed:
            raise ReadFailed(STORE_SCOPE, "list_runtimes: store is closed")
        s = self.storage
        with s.lock:
            tables: tuple[Mapping[str, object], ...] = (
                s.inputs, s.receipts, s.snapshots, s.lifecycles, s.ops_snapshots, s.ops_records, s.leases, s.marks,
                s.quarantine,
            )  # fmt: skip
            found = {rt for table in tables for rt, held in table.items() if held}
        return sorted(found)

    # --- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        """Close this handle (idempotent). The storage and other handles on it are unaffected."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> InMemoryRuntimeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_single(self, runtime_id: str, table: str, rows: dict[str, Sealed]) -> bytes | None:
        rt = self._open_for(runtime_id, ReadFailed)
        with self.storage.lock:
            stored = rows.get(rt)
        return None if stored is None else verified_payload(table, rt, "", *stored)
