"""A deliberately simple third-party-style store with switchable bugs, used to prove that
each store conformance check can fail (and that a correct simple store passes)."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any

from meerkat_conformance.stores.backend import RowRef
from meerkat_conformance.stores.failure import NotApplicable
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryReceipt, InputRow, OpsLifecycleRecords
from meerkat_runtime.vocab.errors import Corrupt, ReadFailed, WriteFailed

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
    }
)


class NaiveData:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cells: dict[tuple[str, str, str], tuple[bytes, int]] = {}
        self.records: list[tuple[str, bytes, int]] = []


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
        if "partial_commit" in self.bugs:
            return
        for r in rows:
            if not isinstance(r, InputRow) or not r.input_id or not isinstance(r.payload, bytes):
                raise WriteFailed(rt, "bad row")

    def _rows(self, rt: str, rows: Sequence[InputRow]) -> None:
        for r in rows:
            if not isinstance(r, InputRow) or not r.input_id:
                raise WriteFailed(rt, "bad row")
            self._put("input", rt, r.input_id, r.payload)

    def persist_input_state(self, runtime_id: str, row: InputRow) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        self._check_rows(rt, [row])
        with self.data.lock:
            self._rows(rt, [row])

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
            return [InputRow(k[2], self._get(*k) or b"") for k in keys]

    def atomic_apply(
        self, runtime_id: str, *, session_snapshot: bytes | None, receipt: BoundaryReceipt, rows: Sequence[InputRow]
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
            exists = ("receipt", rt, key) in self.data.cells
            time.sleep(0.005)
            self._apply(rt, key, exists, session_snapshot, receipt, rows)
            return
        with self.data.lock:
            self._apply(rt, key, ("receipt", rt, key) in self.data.cells, session_snapshot, receipt, rows)

    def _apply(
        self, rt: str, key: str, exists: bool, snap: bytes | None, receipt: BoundaryReceipt, rows: Sequence[InputRow]
    ) -> None:
        if exists and "overwrite_duplicate_receipt" not in self.bugs:
            raise WriteFailed(rt, f"duplicate receipt {key}")
        if snap is not None:
            self._put("snapshot", rt, "", snap)
        self._put("receipt", rt, key, receipt.to_json())
        self._rows(rt, rows)

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

    def commit_machine_lifecycle(self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow]) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        self._check_rows(rt, rows)
        with self.data.lock:
            self._put("lifecycle", rt, "", lifecycle)
            self._rows(rt, rows)

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        rt = self._ok(runtime_id, ReadFailed)
        with self.data.lock:
            return self._get("lifecycle", rt, "")

    def append_ops_record(self, runtime_id: str, record: bytes) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        if not isinstance(record, bytes):
            raise WriteFailed(rt, "bad record")
        with self.data.lock:
            self.data.records.append((rt, record, zlib.crc32(record)))

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        with self.data.lock:
            self._put("ops", rt, "", snapshot)
            if "no_compaction" not in self.bugs:
                self.data.records = [r for r in self.data.records if r[0] != rt]

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

    def delete_ops_lifecycle(self, runtime_id: str) -> None:
        rt = self._ok(runtime_id, WriteFailed)
        with self.data.lock:
            self.data.cells.pop(("ops", rt, ""), None)
            self.data.records = [r for r in self.data.records if r[0] != rt]

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
