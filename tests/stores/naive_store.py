"""A deliberately simple third-party-style store with switchable bugs, used to prove that
each store conformance check can fail (and that a correct simple store passes)."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any

from meerkat_conformance.stores.backend import RowRef, SqliteBackend
from meerkat_conformance.stores.failure import NotApplicable
from meerkat_runtime.store.high_water import HighWater, MarkStep, advance
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import (
    BoundaryReceipt,
    FinishedInput,
    InputRow,
    OpsLifecycleRecords,
    QuarantinedRow,
    ScannedRow,
)
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import (
    Corrupt,
    LeaseHeld,
    OwnershipLost,
    ReadFailed,
    StoreError,
    WriteFailed,
    WriteRefused,
)

BUGS = frozenset(
    {
        "overwrite_duplicate_receipt",
        "no_integrity",
        "partial_commit",
        "prefix_isolation",
        "insertion_order",
        "reversed_records",
        "close_ignored",
        "no_compaction",
        "unlocked_receipts",
        "lenient_sequence",
        "steals_live_lease",
        "no_takeover_after_expiry",
        "token_on_renew",
        "batch_raises_refusal",
        "batch_keeps_expiry",
        "token_restarts_after_release",
        "fence_compares_owner_only",
        "fence_ignored",
        "fence_checked_after_write",
        "unfenced_writes_allowed",
        "unlocked_claims",
        "release_ignores_fence",
        "delete_unfenced",
        "mark_misses_appends",
        "mark_counts_updates",
        "mark_moves_on_refusal",
        "mark_races_compaction",
        "quarantine_keeps_row",
        "quarantine_drops_bytes",
        "scan_raises_on_damage",
        "listing_misses_leases",
        "active_lists_finished",
        "compaction_skips_mark",
        "compacts_active_rows",
        "compaction_keeps_receipts",
    }
)


RELEASED = 0.0
"""The expiry a release writes: long past."""


class NaiveData:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cells: dict[tuple[str, str, str], tuple[bytes, int]] = {}
        self.records: list[tuple[str, bytes, int]] = []
        self.leases: dict[str, Lease] = {}
        self.marks: dict[str, HighWater] = {}
        self.quarantine: dict[str, list[QuarantinedRow]] = {}
        self.index: dict[tuple[str, str], tuple[float | None, str | None, int | None, bytes | None]] = {}


class NaiveStore:
    """Keys are ``(family, runtime_id, key)``; values carry a CRC32."""

    def __init__(self, data: NaiveData, bugs: frozenset[str]) -> None:
        self.data, self.bugs, self.closed = data, bugs, False

    def _ok(self, rt: object, error: type[WriteFailed] | type[ReadFailed]) -> str:
        if not isinstance(rt, str) or not rt:
            raise error(repr(rt), "bad runtime id")
        if self.closed and "close_ignored" not in self.bugs:
            raise error(rt, "closed")
        return rt

    def _put(self, family: str, rt: str, key: str, payload: object) -> None:
        if not isinstance(payload, bytes):
            raise WriteFailed(rt, f"{family}[{key}] payload must be bytes")
        self.data.cells[(family, rt, key)] = (payload, zlib.crc32(payload))

    def _get(self, family: str, rt: str, key: str) -> bytes | None:
        cell = self.data.cells.get((family, rt, key))
        if cell is None:
            return None
        if "no_integrity" not in self.bugs and zlib.crc32(cell[0]) != cell[1]:
            raise Corrupt(rt, f"{family}[{key}] damaged")
        return cell[0]

    def _check_rows(self, rt: str, rows: Sequence[InputRow]) -> None:
        for r in rows:
            if isinstance(r, InputRow) and r.queued is not None and r.finished_at is not None:
                raise WriteFailed(rt, "a finished row carries queued fields")
        if "partial_commit" in self.bugs:
            return
        for r in rows:
            if not isinstance(r, InputRow) or not r.input_id or not isinstance(r.payload, bytes):
                raise WriteFailed(rt, "bad row")

    def _fence(self, rt: str, fence: Fence | None, what: str) -> None:
        """The ownership check of a write (call with the data lock held)."""
        if "fence_ignored" in self.bugs or (what == "delete_ops_lifecycle" and "delete_unfenced" in self.bugs):
            return
        lease = self.data.leases.get(rt)
        if fence is None:
            if lease is not None and "unfenced_writes_allowed" not in self.bugs:
                raise OwnershipLost(rt, f"{what} without a fence: leased by {lease.owner!r}")
            return
        if lease is None or lease.owner != fence.owner:
            raise OwnershipLost(rt, f"{what}: fence of {fence.owner!r} is stale")
        if lease.token != fence.token and "fence_compares_owner_only" not in self.bugs:
            raise OwnershipLost(rt, f"{what}: fence token {fence.token} is stale")

    def _guarded(self, rt: str, fence: Fence | None, what: str, write: Any) -> None:
        """Run ``write()`` under the data lock after (or, with a bug, before) the fence check."""
        with self.data.lock:
            if "fence_checked_after_write" in self.bugs:
                write()
                self._fence(rt, fence, what)
                return
            self._fence(rt, fence, what)
            write()

    def _mark(self, rt: str, step: MarkStep) -> None:
        """Advance the runtime's high-water mark (with the data lock held)."""
        self.data.marks[rt] = advance(self.data.marks.get(rt), rt, step)

    def _added(self, rt: str, rows: Sequence[InputRow]) -> int:
        """Input rows of ``rows`` not stored yet (with the data lock held)."""
        if "mark_counts_updates" in self.bugs:
            return len(rows)
        return len({r.input_id for r in rows if ("input", rt, r.input_id) not in self.data.cells})

    def _rows(self, rt: str, rows: Sequence[InputRow]) -> None:
        for r in rows:
            if not isinstance(r, InputRow) or not r.input_id:
                raise WriteFailed(rt, "bad row")
            self._put("input", rt, r.input_id, r.payload)
            self.data.index[(rt, r.input_id)] = (r.finished_at, r.idempotency_key, r.admission_seq, r.queued)

    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        self._check_rows(rt, [row])

        def write() -> None:
            added = self._added(rt, [row])
            self._rows(rt, [row])
            self._mark(rt, MarkStep(inputs_added=added))

        self._guarded(rt, fence, "persist_input_state", write)

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            keys = [
                k
                for k in self.data.cells
                if k[0] == "input" and (k[1].startswith(rt) if "prefix_isolation" in self.bugs else k[1] == rt)
            ]
            if "insertion_order" not in self.bugs:
                keys.sort()
            return [InputRow(k[2], self._get(*k) or b"", *self._index(rt, k[2])) for k in keys]

    def _index(self, rt: str, input_id: str) -> tuple[float | None, str | None, int | None, bytes | None]:
        return self.data.index.get((rt, input_id), (None, None, None, None))

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        rows = self.load_input_states(runtime_id)
        if "active_lists_finished" in self.bugs:
            return rows
        return [r for r in rows if r.finished_at is None]

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            found = [
                FinishedInput(k[2], at, key, seq)
                for k in self.data.cells
                if k[0] == "input" and k[1] == rt
                for at, key, seq, _ in [self._index(rt, k[2])]
                if at is not None
            ]
        return sorted(found, key=lambda f: (f.finished_at, f.input_id))

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            payload = self._get("input", rt, input_id)
            return None if payload is None else InputRow(input_id, payload, *self._index(rt, input_id))

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        rt = self._ok(runtime_id, WriteFailed)
        removed: list[int] = []

        def write() -> None:
            present = [i for i in dict.fromkeys(input_ids) if ("input", rt, i) in self.data.cells]
            if "compacts_active_rows" not in self.bugs and any(self._index(rt, i)[0] is None for i in present):
                raise WriteRefused(rt, "an active row was named")
            for i in present:
                del self.data.cells[("input", rt, i)]
                self.data.index.pop((rt, i), None)
            released = 0 if "compaction_keeps_receipts" in self.bugs else self._release_receipts(rt, set(input_ids))
            if "compaction_skips_mark" not in self.bugs:
                self._mark(rt, MarkStep(inputs_removed=len(present), receipts_removed=released))
            removed.append(len(present))

        self._guarded(rt, fence, "compact_inputs", write)
        return removed[0]

    def _release_receipts(self, rt: str, compacted: set[str]) -> int:
        """Delete the receipts naming a compacted input none of whose contributors is stored."""
        keys = [cell[2] for cell in self.data.cells if cell[0] == "receipt" and cell[1] == rt]
        gone = 0
        for key in keys:
            data = self._get("receipt", rt, key)
            ids = set() if data is None else set(BoundaryReceipt.from_json(data).contributing_input_ids)
            if ids & compacted and not any(("input", rt, i) in self.data.cells for i in ids):
                del self.data.cells[("receipt", rt, key)]
                gone += 1
        return gone

    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(receipt, BoundaryReceipt) or not receipt.run_id:
            raise WriteFailed(rt, "bad receipt")
        if "lenient_sequence" not in self.bugs and not 0 <= receipt.sequence < 1 << 64:
            raise WriteFailed(rt, "bad sequence")
        if session_snapshot is not None and not isinstance(session_snapshot, bytes):
            raise WriteFailed(rt, "bad snapshot")
        self._check_rows(rt, rows)
        key = f"{receipt.run_id}#{receipt.sequence}"
        if "unlocked_receipts" in self.bugs:
            self._fence(rt, fence, "atomic_apply")
            exists = ("receipt", rt, key) in self.data.cells
            time.sleep(0.05)  # the racers released together all read "absent" (wide enough under load)
            self._apply(rt, key, exists, session_snapshot, receipt, rows)
            return
        self._guarded(
            rt,
            fence,
            "atomic_apply",
            lambda: self._apply(rt, key, ("receipt", rt, key) in self.data.cells, session_snapshot, receipt, rows),
        )

    def _apply(
        self, rt: str, key: str, exists: bool, snap: bytes | None, receipt: BoundaryReceipt, rows: Sequence[InputRow]
    ) -> None:
        step = MarkStep(inputs_added=self._added(rt, rows), receipts_added=1, session_snapshot=snap is not None or None)
        if "mark_moves_on_refusal" in self.bugs:
            self._mark(rt, step)
        if exists and "overwrite_duplicate_receipt" not in self.bugs:
            raise WriteFailed(rt, f"duplicate receipt {key}")
        if snap is not None:
            self._put("snapshot", rt, "", snap)
        self._put("receipt", rt, key, receipt.to_json())
        self._rows(rt, rows)
        if "mark_moves_on_refusal" not in self.bugs:
            self._mark(rt, step)

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None:
        rt = self._ok(runtime_id, ReadFailed)
        if not isinstance(sequence, int) or sequence < 0:
            raise ReadFailed(rt, "bad sequence")
        with self.data.lock:
            data = self._get("receipt", rt, f"{run_id}#{sequence}")
        try:
            return None if data is None else BoundaryReceipt.from_json(data)
        except ValueError as exc:
            raise Corrupt(rt, f"receipt {run_id} unreadable") from exc

    def load_session_snapshot(self, runtime_id: str) -> bytes | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return self._get("snapshot", rt, "")

    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        self._check_rows(rt, rows)

        def write() -> None:
            added = self._added(rt, rows)
            self._put("lifecycle", rt, "", lifecycle)
            self._rows(rt, rows)
            self._mark(rt, MarkStep(inputs_added=added, lifecycle=True))

        self._guarded(rt, fence, "commit_machine_lifecycle", write)

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return self._get("lifecycle", rt, "")

    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(record, bytes):
            raise WriteFailed(rt, "bad record")

        def write() -> None:
            self.data.records.append((rt, record, zlib.crc32(record)))
            if "mark_misses_appends" not in self.bugs:
                self._mark(rt, MarkStep(ops_records_added=1))

        self._guarded(rt, fence, "append_ops_record", write)

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(snapshot, bytes):
            raise WriteFailed(rt, "bad ops snapshot")

        def write() -> None:
            self._put("ops", rt, "", snapshot)
            if "no_compaction" not in self.bugs:
                self.data.records = [r for r in self.data.records if r[0] != rt]
            self._mark(rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))

        if "mark_races_compaction" in self.bugs:
            self._compact_then_mark(rt, snapshot, fence)
            return
        self._guarded(rt, fence, "persist_ops_lifecycle", write)

    def _compact_then_mark(self, rt: str, snapshot: bytes, fence: Fence | None) -> None:
        """A compaction that drops the records it saw, then sets the mark in a later critical
        section: records appended in between survive while the mark says none are left."""
        with self.data.lock:
            self._fence(rt, fence, "persist_ops_lifecycle")
            self._put("ops", rt, "", snapshot)
            covered = {id(r) for r in self.data.records if r[0] == rt}
            self.data.records = [r for r in self.data.records if id(r) not in covered]
        time.sleep(0.001)
        with self.data.lock:
            self._mark(rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            snap = self._get("ops", rt, "")
            mine = [r for r in self.data.records if r[0] == rt]
        if "no_integrity" not in self.bugs and any(zlib.crc32(r[1]) != r[2] for r in mine):
            raise Corrupt(rt, "ops record damaged")
        records = tuple(r[1] for r in mine)
        if "reversed_records" in self.bugs:
            records = records[::-1]
        return None if snap is None and not records else OpsLifecycleRecords(snap, records)

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None:
        rt = self._ok(runtime_id, WriteFailed)

        def write() -> None:
            self.data.cells.pop(("ops", rt, ""), None)
            self.data.records = [r for r in self.data.records if r[0] != rt]
            self._mark(rt, MarkStep(ops_snapshot=False, ops_records_cleared=True))

        self._guarded(rt, fence, "delete_ops_lifecycle", write)

    # --- damage detection and quarantine ---------------------------------------------------
    def load_high_water(self, runtime_id: str) -> HighWater | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return self.data.marks.get(rt)

    def _intact(self, key: tuple[str, str, str]) -> bool:
        payload, crc = self.data.cells[key]
        return "no_integrity" in self.bugs or zlib.crc32(payload) == crc

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            keys = sorted(k for k in self.data.cells if k[0] == "input" and k[1] == rt)
            if "scan_raises_on_damage" in self.bugs:
                return [ScannedRow(k[2], self._get(*k) or b"", True) for k in keys]
            return [ScannedRow(k[2], self.data.cells[k][0], self._intact(k)) for k in keys]

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(input_id, str) or not input_id or not isinstance(reason, str) or not reason:
            raise WriteFailed(rt, "bad quarantine arguments")
        moved: list[QuarantinedRow] = []

        def write() -> None:
            key = ("input", rt, input_id)
            if key not in self.data.cells:
                raise WriteRefused(rt, f"no input row {input_id!r}")
            payload = b"" if "quarantine_drops_bytes" in self.bugs else self.data.cells[key][0]
            row = QuarantinedRow(input_id, payload, self._intact(key), reason, time.time())
            if "quarantine_keeps_row" not in self.bugs:
                del self.data.cells[key]
            self.data.quarantine.setdefault(rt, []).append(row)
            self._mark(rt, MarkStep(inputs_removed=1, quarantined_added=1))
            moved.append(row)

        self._guarded(rt, fence, "quarantine_row", write)
        return moved[0]

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return list(self.data.quarantine.get(rt, ()))

    # --- listing ---------------------------------------------------------------------------
    def list_runtimes(self) -> list[str]:
        if self.closed and "close_ignored" not in self.bugs:
            raise ReadFailed("*", "closed")
        with self.data.lock:
            found = {rt for _, rt, _ in self.data.cells} | {r[0] for r in self.data.records} | set(self.data.marks)
            found |= {rt for rt, rows in self.data.quarantine.items() if rows}
            if "listing_misses_leases" not in self.bugs:
                found |= set(self.data.leases)
        return sorted(found)

    # --- ownership (clock: time.time) ------------------------------------------------------
    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(owner, str) or not owner or not duration_s > 0:
            raise WriteFailed(rt, "bad claim")
        if "unlocked_claims" in self.bugs:
            current = self.data.leases.get(rt)
            time.sleep(0.005)
            return self._claim(rt, current, owner, duration_s)
        with self.data.lock:
            return self._claim(rt, self.data.leases.get(rt), owner, duration_s)

    def _claim(self, rt: str, current: Lease | None, owner: str, duration_s: float) -> Lease:
        now = time.time()
        if current is not None and current.owner != owner and "steals_live_lease" not in self.bugs:
            expired = current.expires_at <= now
            if "no_takeover_after_expiry" in self.bugs:
                expired = current.expires_at == RELEASED  # only a released lease is free
            if not expired:
                raise LeaseHeld(rt, current.owner, current.expires_at)
        token = 1 if current is None else current.token + 1
        lease = Lease(rt, owner, token, now + duration_s)
        self.data.leases[rt] = lease
        return lease

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        rt = self._ok(runtime_id, WriteFailed)
        with self.data.lock:
            current = self.data.leases.get(rt)
            if current is None or current.fence != fence:
                raise OwnershipLost(rt, "renewal with a stale fence")
            token = current.token + 1 if "token_on_renew" in self.bugs else current.token
            lease = Lease(rt, current.owner, token, time.time() + duration_s)
            self.data.leases[rt] = lease
            return lease

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[Lease | StoreError]:
        outcomes: list[Lease | StoreError] = []
        with self.data.lock:
            for fence, runtime_id in renewals:
                try:
                    if not isinstance(fence, Fence):
                        raise WriteFailed(str(runtime_id), "a fence is required")
                    current = self.data.leases.get(str(runtime_id))
                    lease = self.renew_lease(fence, runtime_id, duration_s)
                    if "batch_keeps_expiry" in self.bugs and current is not None:
                        self.data.leases[lease.runtime_id] = lease = current
                except (OwnershipLost, WriteFailed) as refused:
                    if "batch_raises_refusal" in self.bugs:
                        raise
                    outcomes.append(refused)
                    continue
                outcomes.append(lease)
        return outcomes

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        with self.data.lock:
            current = self.data.leases.get(rt)
            if current is None or (current.fence != fence and "release_ignores_fence" not in self.bugs):
                return
            if "token_restarts_after_release" in self.bugs:
                del self.data.leases[rt]
                return
            self.data.leases[rt] = Lease(rt, current.owner, current.token, RELEASED)

    def load_lease(self, runtime_id: str) -> Lease | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return self.data.leases.get(rt)

    def close(self) -> None:
        self.closed = True


class NaiveBackend:
    name = "naive"
    capabilities = frozenset({"damage"})

    def __init__(self, bugs: frozenset[str]) -> None:
        self.data, self.bugs = NaiveData(), bugs

    def open(self) -> RuntimeStore:
        return NaiveStore(self.data, self.bugs)

    def damage(self, row: RowRef) -> None:
        rt = row.runtime_id
        if row.kind == "ops_record":
            mine = [i for i, r in enumerate(self.data.records) if r[0] == rt]
            i = mine[row.position]
            owner, payload, crc = self.data.records[i]
            self.data.records[i] = (owner, payload + b"!", crc)
            return
        key: tuple[str, str, str] = {
            "input": ("input", rt, row.input_id),
            "receipt": ("receipt", rt, f"{row.run_id}#{row.sequence}"),
            "session_snapshot": ("snapshot", rt, ""),
            "machine_lifecycle": ("lifecycle", rt, ""),
            "ops_snapshot": ("ops", rt, ""),
        }[row.kind]
        payload, crc = self.data.cells[key]
        self.data.cells[key] = (payload + b"!", crc)

    def process_opener(self) -> tuple[str, list[Any]]:
        raise NotApplicable("in-memory")

    def fail_writes_to(self, runtime_id: str, input_id: str) -> Any:
        raise NotApplicable("in-memory")

    def dispose(self) -> None:
        pass


class RacySqliteStore(SqliteRuntimeStore):
    """The SQLite store with one planted bug: a claim reads the lease in one transaction and
    writes it in another, so processes (and threads) racing for a free lease can all win."""

    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        current = self.load_lease(runtime_id)
        time.sleep(0.02)
        if current is not None and current.owner != owner and current.expires_at > time.time():
            raise LeaseHeld(runtime_id, current.owner, current.expires_at)
        token = 1 if current is None else current.token + 1
        lease = Lease(runtime_id, owner, token, time.time() + duration_s)

        def body(conn: Any) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO runtime_leases VALUES (?, ?, ?, ?, ?)",
                (runtime_id, owner, token, lease.expires_at, _lease_checksum(lease)),
            )

        self._write(runtime_id, "claim_lease", body)
        return lease


def _lease_checksum(lease: Lease) -> str:
    from meerkat_runtime.store.integrity import row_checksum

    return row_checksum("runtime_leases", lease.runtime_id, "", lease.payload())


class RacySqliteBackend(SqliteBackend):
    """Handles of ``RacySqliteStore``, also in child processes (which must be able to import
    ``tests``: the test puts the project root on ``PYTHONPATH``)."""

    name = "racy-sqlite"

    def open(self) -> RuntimeStore:
        return RacySqliteStore(self.path, **self.store_options)

    def process_opener(self) -> tuple[str, list[Any]]:
        return "tests.stores.naive_store:RacySqliteStore", [str(self.path)]
