"""The operation registry a store holds for one session, as recovery would read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.ops.snapshot import PersistedOperation, PersistedOpsSnapshot
from meerkat_runtime.store.high_water import compare_ops
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import StoreError
from meerkat_runtime.vocab.operation import outcome_to_json


@dataclass(frozen=True, slots=True)
class StoredOperations:
    """The registry state (``None``: nothing stored), how many journal records follow the last
    snapshot, and a disagreement with the high-water mark if there is one."""

    state: PersistedOpsSnapshot | None
    journal_records: int
    snapshot_stored: bool
    mark_problem: str | None = None


def stored_operations(store: RuntimeStore, runtime_id: str) -> StoredOperations:
    """Read the registry of ``runtime_id``; a malformed snapshot or record raises
    ``SnapshotFormatError`` naming it, a damaged one the store's ``Corrupt``."""
    stored = store.load_ops_lifecycle(runtime_id)
    snapshot = stored is not None and stored.snapshot is not None
    records = 0 if stored is None else len(stored.appended)
    problem = None
    try:
        compare_ops(runtime_id, store.load_high_water(runtime_id), snapshot=snapshot, records=records)
    except StoreError as exc:
        problem = exc.detail
    return StoredOperations(persisted_from_records(stored, runtime_id), records, snapshot, problem)


def operation_summary(op: PersistedOperation) -> dict[str, Any]:
    """One operation, JSON-ready."""
    return {
        "operation_id": op.id,
        "kind": op.spec.kind.value,
        "display_name": op.spec.display_name,
        "status": op.status.value,
        "completion_seq": op.completion_seq,
        "outcome": outcome_to_json(op.terminal_outcome) if op.terminal_outcome is not None else None,
        "peer_ready": op.peer_ready,
        "progress_count": op.progress_count,
        "created_at_ms": op.created_at_ms,
        "started_at_ms": op.started_at_ms,
        "completed_at_ms": op.completed_at_ms,
        "elapsed_ms": op.elapsed_ms,
    }
