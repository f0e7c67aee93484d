"""Recovering a registry from a ``RuntimeStore``: the last full snapshot plus the journal
records appended since, replayed, then ``OpsLifecycleRegistry.from_recovered``.

Fails closed: a store read error propagates unchanged (the caller must not silently start a
fresh epoch), a malformed or inconsistent snapshot or record raises ``SnapshotFormatError``
naming it, and a snapshot or journal that disagrees with the runtime's high-water mark (rows
lost behind the store's back) raises ``Corrupt`` naming the counts. Only the runtime id passed
in is read.

``open_durable_ops`` claims the runtime's lease first (``ops.lease``): a second writer of the
same runtime's ops state gets ``LeaseHeld`` instead of interleaving its writes with the first's
(which would leave a state no reader accepts); ``DurableOps.close`` releases it. Once the lease
is lost (a refused renewal or write) the registry is closed with ``OwnershipLost``: its waiters
are released and later calls refused, as a ``MeerkatMachine`` session's registry is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.ops.lease import OpsLease
from meerkat_runtime.ops.persistence import PersistenceChannelClosed, StoreOpsPersistence
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.high_water import compare_ops
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting, OwnershipLost
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
    ``recovered`` says whether the state came from the store (same epoch) or is fresh.
    ``lease`` is the runtime's lease the writes are fenced with (``None``: opened with
    ``ownership=None``). ``close()`` (or leaving a ``with`` block) closes the registry and the
    sink and releases the lease."""

    registry: OpsLifecycleRegistry
    epoch_id: str
    cursors: EpochCursorState
    persistence: StoreOpsPersistence
    recovered: bool
    lease: OpsLease | None = field(default=None)

    def close(self) -> None:
        """Close the registry (every later change, pending watcher and ``wait_all`` raises
        ``PersistenceChannelClosed``), close the sink, then release the lease so another
        process can open the runtime at once. Idempotent; waits for a write in flight."""
        runtime_id = self.persistence.runtime_id
        self.registry.close(
            lambda: PersistenceChannelClosed(f"ops persistence channel closed: DurableOps of {runtime_id!r} was closed")
        )
        self.persistence.close()
        if self.lease is not None:
            self.lease.release()

    def __enter__(self) -> DurableOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DEFAULT_OPS_OWNERSHIP = OwnershipConfig()
"""``open_durable_ops``'s default: claim the lease under the process's owner id
(``ops.lease.process_owner_id``), 15 s, renewed every 5 s, no waiting for a held one."""


def open_durable_ops(
    store: RuntimeStore,
    runtime_id: str,
    *,
    config: OpsLifecycleConfig | None = None,
    compact_every: int = 256,
    session_id: str | None = None,
    ownership: OwnershipConfig | None = DEFAULT_OPS_OWNERSHIP,
) -> DurableOps:
    """Recover the registry of ``runtime_id`` from ``store`` (same epoch, same cursors), or
    create a fresh one with a new epoch if the store holds nothing; then attach a
    ``StoreOpsPersistence`` so every later terminal transition is durable before it returns.
    With ``session_id`` (whose runtime id ``runtime_id`` must be) the registry belongs to that
    session, as a ``MeerkatMachine`` session's does: a spec's ``owner_session_id`` must be
    ``session_id``. Without it the registry is bound to no session and takes any owner text.

    ``ownership`` (on by default): the runtime's lease is claimed before anything is read
    (``LeaseHeld`` when another owner holds it and ``ownership.wait_for_lease`` does not wait it
    out; the owner id is ``ownership.owner_id`` or one per process), every write carries its
    fence (``OwnershipLost`` once another owner claimed it), it is renewed while held and
    released by ``DurableOps.close()``. ``None`` writes unfenced, as before leases existed: only
    while the runtime has never been leased, and only safe with a single writer."""
    if session_id is not None and canonical_runtime_id(session_id) != runtime_id:
        raise InvalidSetting(
            f"session_id {session_id!r} does not belong to runtime id {runtime_id!r} "
            f"(its runtime id is {canonical_runtime_id(session_id)!r})"
        )
    if ownership is not None and not isinstance(ownership, OwnershipConfig):
        raise InvalidSetting(f"ownership must be an OwnershipConfig or None, got {type(ownership).__name__}")
    lease = None if ownership is None else OpsLease.claim(store, runtime_id, ownership)
    try:
        return _open(store, runtime_id, config, compact_every, session_id, lease)
    except BaseException:
        if lease is not None:
            lease.release()
        raise


def _close_lost(registry: OpsLifecycleRegistry, error: OwnershipLost) -> None:
    """Close ``registry`` once its lease is lost, as a ``MeerkatMachine`` session's registry is:
    its pending watchers, ``wait_all`` handle and feed waits (on threads or event loops) and every
    later call raise ``OwnershipLost``. Later changes are refused at once (``refuse``); the
    waiters are released on a thread of its own: the loss may be found by a writer still inside
    its change, which ``close`` waits for."""

    def lost() -> BaseException:
        fresh = OwnershipLost(error.runtime_id, error.detail)
        fresh.__cause__ = error
        return fresh

    registry.refuse(lost)
    threading.Thread(target=registry.close, args=(lost,), name="meerkat-ops-lease-lost", daemon=True).start()


def _open(
    store: RuntimeStore,
    runtime_id: str,
    config: OpsLifecycleConfig | None,
    compact_every: int,
    session_id: str | None,
    lease: OpsLease | None,
) -> DurableOps:
    persisted = load_persisted_ops(store, runtime_id)
    if persisted is None:
        registry = OpsLifecycleRegistry(config, session_id=session_id)
        epoch_id: str = new_epoch_id()
        cursors = EpochCursorState()
    else:
        registry = OpsLifecycleRegistry.from_recovered(persisted, config, session_id=session_id)
        epoch_id = persisted.epoch_id
        cursors = EpochCursorState.from_snapshot(persisted.cursors)
    sink = StoreOpsPersistence(store, runtime_id, compact_every=compact_every, owner=lease)
    registry.attach_persistence(sink, epoch_id, cursors)
    if lease is not None:
        lease.on_lost(lambda error: _close_lost(registry, error))
    return DurableOps(registry, epoch_id, cursors, sink, persisted is not None, lease)
