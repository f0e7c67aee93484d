"""Recovering a registry from a ``RuntimeStore``: the last full snapshot plus the journal
records appended since, replayed, then ``OpsLifecycleRegistry.from_recovered``.

Fails closed: a store read error propagates unchanged (the caller must not silently start a
fresh epoch), a malformed or inconsistent snapshot or record raises ``SnapshotFormatError``
naming it, and a snapshot or journal that disagrees with the runtime's high-water mark (rows
lost behind the store's back) raises ``Corrupt`` naming the counts. Only the runtime id passed
in is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.ops.persistence import StoreOpsPersistence
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.store.high_water import compare_ops
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting
from meerkat_runtime.vocab.ids import canonical_runtime_id, new_epoch_id


def load_persisted_ops(store: RuntimeStore, runtime_id: str) -> PersistedOpsSnapshot | None:
    """The registry state the store holds for ``runtime_id`` (snapshot + replayed journal),
    or ``None`` if nothing was ever written. The mark is read first and compared with what
    was loaded (``Corrupt`` on a disagreement)."""
    mark = store.load_high_water(runtime_id)
    stored = store.load_ops_lifecycle(runtime_id)
    compare_ops(
        runtime_id,
        mark,
        snapshot=stored is not None and stored.snapshot is not None,
        records=0 if stored is None else len(stored.appended),
    )
    return persisted_from_records(stored, runtime_id)


@dataclass(frozen=True, slots=True)
class DurableOps:
    """A registry wired to a store: its epoch, its live cursors, and the sink it writes through.
    ``recovered`` says whether the state came from the store (same epoch) or is fresh."""

    registry: OpsLifecycleRegistry
    epoch_id: str
    cursors: EpochCursorState
    persistence: StoreOpsPersistence
    recovered: bool


def open_durable_ops(
    store: RuntimeStore,
    runtime_id: str,
    *,
    config: OpsLifecycleConfig | None = None,
    compact_every: int = 256,
    session_id: str | None = None,
) -> DurableOps:
    """Recover the registry of ``runtime_id`` from ``store`` (same epoch, same cursors), or
    create a fresh one with a new epoch if the store holds nothing; then attach a
    ``StoreOpsPersistence`` so every later terminal transition is durable before it returns.
    With ``session_id`` (whose runtime id ``runtime_id`` must be) the registry belongs to that
    session, as a ``MeerkatMachine`` session's does: a spec's ``owner_session_id`` must be
    ``session_id``. Without it the registry is bound to no session and takes any owner text."""
    if session_id is not None and canonical_runtime_id(session_id) != runtime_id:
        raise InvalidSetting(
            f"session_id {session_id!r} does not belong to runtime id {runtime_id!r} "
            f"(its runtime id is {canonical_runtime_id(session_id)!r})"
        )
    persisted = load_persisted_ops(store, runtime_id)
    if persisted is None:
        registry = OpsLifecycleRegistry(config, session_id=session_id)
        epoch_id: str = new_epoch_id()
        cursors = EpochCursorState()
    else:
        registry = OpsLifecycleRegistry.from_recovered(persisted, config, session_id=session_id)
        epoch_id = persisted.epoch_id
        cursors = EpochCursorState.from_snapshot(persisted.cursors)
    sink = StoreOpsPersistence(store, runtime_id, compact_every=compact_every)
    registry.attach_persistence(sink, epoch_id, cursors)
    return DurableOps(registry, epoch_id, cursors, sink, persisted is not None)
