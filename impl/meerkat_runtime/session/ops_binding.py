"""The one operation registry of a session, with its epoch id and consumer cursors.

A persistent session recovers them from the canonical runtime id's stored ops state (the
last snapshot plus the journal records appended since): same epoch, same cursors, terminal
operations kept. Nothing stored → a fresh registry and a new epoch. A load or decode failure
is raised (registration fails closed; it never silently starts a new epoch). The registry
then writes every durable call through a ``StoreOpsPersistence`` sink.
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.journal import JournalRecord, replay
from meerkat_runtime.ops.persistence import FenceHolder, StoreOpsPersistence
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.store.high_water import HighWater, compare_ops
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import OpsLifecycleRecords
from meerkat_runtime.vocab.errors import SnapshotFormatError
from meerkat_runtime.vocab.ids import new_epoch_id


@dataclass(frozen=True, slots=True)
class OpsBinding:
    registry: OpsLifecycleRegistry
    epoch_id: str
    cursors: EpochCursorState
    recovered: bool


def fresh_binding(epoch_id: str | None = None, *, session_id: str | None = None) -> OpsBinding:
    """An empty registry (of session ``session_id``); a new epoch unless ``epoch_id`` is given."""
    registry = OpsLifecycleRegistry(session_id=session_id)
    return OpsBinding(registry, epoch_id or new_epoch_id(), EpochCursorState(), False)


def recover_binding(
    stored: OpsLifecycleRecords | None,
    *,
    fallback_epoch: str | None = None,
    runtime_id: str,
    high_water: HighWater | None,
    session_id: str | None = None,
) -> OpsBinding:
    """Rebuild from stored ops state. With no ops state stored, the registry is fresh and the
    epoch is ``fallback_epoch`` (the one in the session's lifecycle record) or a new one.
    Raises ``Corrupt`` when the stored state disagrees with the runtime's high-water mark
    ``high_water`` (read before it), ``SnapshotFormatError`` for malformed stored state."""
    compare_ops(
        runtime_id,
        high_water,
        snapshot=stored is not None and stored.snapshot is not None,
        records=0 if stored is None else len(stored.appended),
    )
    if stored is None:
        return fresh_binding(fallback_epoch, session_id=session_id)
    if stored.snapshot is None:
        if stored.appended:
            raise SnapshotFormatError("ops journal records are stored without a base snapshot")
        return fresh_binding(fallback_epoch, session_id=session_id)
    snapshot = PersistedOpsSnapshot.from_json(stored.snapshot)
    if stored.appended:
        records = [JournalRecord.from_json(r, f"ops journal record {i}") for i, r in enumerate(stored.appended)]
        snapshot = replay(snapshot, records)
    registry = OpsLifecycleRegistry.from_recovered(snapshot, session_id=session_id)
    return OpsBinding(registry, snapshot.epoch_id, EpochCursorState.from_snapshot(snapshot.cursors), True)


def attach_store(
    binding: OpsBinding, store: RuntimeStore, runtime_id: str, owner: FenceHolder | None = None
) -> StoreOpsPersistence:
    """Make the registry's terminal transitions durable in ``store`` under ``runtime_id``,
    fenced by ``owner``'s lease; returns the sink (closing it makes later terminal transitions
    fail with ``persistence_failed``)."""
    sink = StoreOpsPersistence(store, runtime_id, owner=owner)
    binding.registry.attach_persistence(sink, binding.epoch_id, binding.cursors)
    return sink
