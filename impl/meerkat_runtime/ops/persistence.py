"""Durable terminal transitions: the sink protocol and the store-backed sink.

When a sink is attached to a registry, every durable call (each terminal transition,
``terminate_owner`` with at least one termination, ``collect_completed`` that removed
something) hands the sink one ``OpsDurableWrite`` before anything of the call happens in
memory — under the registry's commit lock, with its state lock released — and only returns
once ``persist`` returned. If ``persist`` raises, the registry leaves the call unapplied and
raises ``PersistenceFailed`` carrying the sink's message.

``StoreOpsPersistence`` writes an O(1) journal record per call through
``RuntimeStore.append_ops_record`` and compacts (``persist_ops_lifecycle`` with the full
snapshot, which also drops the covered records) on its first write and then periodically, so
the cost of a transition does not grow with the registry's size. A compaction whose snapshot
would be over the document size limit is deferred (the call's record is written instead).

Ownership: a sink given an ``owner`` (a :class:`FenceHolder`, e.g. the session's claim) checks
it before each write (a lost owner writes nothing), hands its fence to the store (which refuses a
stale one in the same transaction) and reports a refusal to it (``lose``); the refusal
(``OwnershipLost``) reaches the registry's caller unwrapped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from meerkat_runtime.ops.journal import JournalRecord, persisted_from_records, replay
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.ops.wire import DocumentTooLarge
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting, OwnershipLost, SnapshotFormatError
from meerkat_runtime.vocab.settings import MAX_COUNT, bounded_int, bounded_number

MAX_COMPACT_RATIO = 1e6
"""Largest ``compact_ratio`` (journal bytes per snapshot byte before a compaction)."""


def durable_part(snapshot: PersistedOpsSnapshot) -> tuple[object, ...]:
    """What recovery keeps of ``snapshot``: epoch, terminal operations (by id, and their
    registration order), completion order, feed and the next sequence number (non-terminal
    operations and the barrier are not durable; cursors only move forward and are not compared)."""
    terminal = {op.id: op for op in snapshot.operations if op.status.is_terminal}
    return (
        snapshot.epoch_id,
        terminal,
        tuple(terminal),
        snapshot.completed_order,
        snapshot.completion_entries,
        snapshot.next_completion_seq,
    )


class PersistenceChannelClosed(RuntimeError):
    """The sink was closed; nothing can be made durable through it any more."""


class OpsDurableWrite:
    """What one durable call changed: ``record`` (small, O(1)) and, on demand, the full
    snapshot of the registry after the call (``full_snapshot()``, O(registry size))."""

    __slots__ = ("_full", "_snapshot", "action", "record")

    def __init__(self, action: str, record: JournalRecord, full: Callable[[], PersistedOpsSnapshot]) -> None:
        self.action = action
        self.record = record
        self._full = full
        self._snapshot: PersistedOpsSnapshot | None = None

    def full_snapshot(self) -> PersistedOpsSnapshot:
        if self._snapshot is None:
            self._snapshot = self._full()
        return self._snapshot


@runtime_checkable
class OpsPersistenceSink(Protocol):
    """Receives durable writes. ``persist`` returns only once ``write`` is durable and raises
    (any exception, with a message a user can act on) if it cannot be made durable."""

    def persist(self, write: OpsDurableWrite) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ReadableOpsSink(Protocol):
    """A sink that can read back what the store holds. A sink whose ``persist`` may fail
    without knowing whether the write landed must implement it: the registry reads the store
    back after such a failure (docs/semantics.md, "Unknown write outcomes"). Any other sink's
    exceptions are taken to mean nothing was written, unless they carry ``outcome_unknown =
    True`` (then the registry stays in doubt, refusing changes, until persistence is detached)."""

    def load_persisted(self) -> PersistedOpsSnapshot | None:
        """The registry state the store holds (``None`` if nothing was written yet)."""
        ...


@runtime_checkable
class OwnedOpsSink(Protocol):
    """A readable sink that writes under a lease. After an unknown write outcome the registry
    calls ``confirm_owner`` right after reading the store back (``load_persisted``): a store
    read made while the writer's fence was still the lease's holds no other writer's write."""

    def confirm_owner(self) -> None:
        """Raise ``OwnershipLost`` if the writer's fence is no longer the store's lease (another
        worker claimed the session); any other exception if the lease cannot be read."""
        ...


class FenceHolder(Protocol):
    """Whoever holds the lease the sink writes under."""

    @property
    def fence(self) -> Fence | None: ...

    def check(self) -> None:
        """Raise ``OwnershipLost`` if the lease is known to be lost."""
        ...

    def lose(self, error: OwnershipLost) -> None:
        """Record that the store refused the fence."""
        ...


class StoreOpsPersistence:
    """A sink over a ``RuntimeStore`` for one runtime id.

        Compaction happens on the first write through this sink (so the store's snapshot matches
        the live registry, e.g. right after recovery) and then once at least ``compact_every``
        records were appended *and* their total size reached ``compact_ratio`` times the size of
        the last snapshot; appends are therefore amortised O(1) however many operations the
        registry retains. After a failed write the next one compacts, so a write the store kept
    although it reported an error never leaves the journal inconsistent.

    A compaction whose snapshot would be over the document size limit is deferred: the call's
    journal record is appended instead (when the sink has not written yet or its last write
    failed, only once the store, read back, with the record replayed holds exactly the
    registry's durable state after the call); the next attempt waits for ``compact_every`` records
    and ``compact_ratio`` times the refused snapshot's size (``deferred`` counts them). A record that is
    itself over the limit fails that one call; nothing is written. ``load_persisted``
    reads back what the store holds (the registry does after a write whose outcome is unknown).
    ``close`` closes the sink, not the store.
    """

    def __init__(
        self,
        store: RuntimeStore,
        runtime_id: str,
        *,
        compact_every: int = 256,
        compact_ratio: float = 1.0,
        owner: FenceHolder | None = None,
    ) -> None:
        bounded_int("compact_every", compact_every, 1, MAX_COUNT)
        bounded_number("compact_ratio", compact_ratio, 0.0, MAX_COMPACT_RATIO)
        if not isinstance(runtime_id, str) or not runtime_id:
            raise InvalidSetting(f"runtime_id must be a non-empty string, got {runtime_id!r}")
        self._store = store
        self._runtime_id = runtime_id
        self._owner = owner
        self._compact_every = compact_every
        self._compact_ratio = compact_ratio
        self._lock = threading.Lock()
        self._closed = False
        self._based = False
        self._records_since = 0
        self._bytes_since = 0
        self._snapshot_bytes = 0
        self.appended = 0
        self.compactions = 0
        self.deferred = 0

    @property
    def runtime_id(self) -> str:
        return self._runtime_id

    @property
    def closed(self) -> bool:
        return self._closed

    def _due(self) -> bool:
        if not self._based:
            return True
        return (
            self._records_since >= self._compact_every
            and self._bytes_since >= self._compact_ratio * self._snapshot_bytes
        )

    def persist(self, write: OpsDurableWrite) -> None:
        with self._lock:
            owner = self._owner
            if owner is not None:
                owner.check()  # a lost lease is reported as such, even once the sink is closed
            if self._closed:
                raise PersistenceChannelClosed(
                    f"ops persistence channel closed: the sink for runtime {self._runtime_id!r} was closed"
                )
            try:
                self._write(write)
            except OwnershipLost as lost:
                if owner is not None:
                    owner.lose(lost)
                self._based = False
                raise
            except SnapshotFormatError:
                raise  # the encoder refused the document before the store was called: nothing changed
            except BaseException:
                # The store may or may not hold the write (an ambiguous commit): the next
                # write replaces the snapshot instead of appending to an uncertain journal.
                self._based = False
                raise

    def _write(self, write: OpsDurableWrite) -> None:
        fence = None if self._owner is None else self._owner.fence
        refused: DocumentTooLarge | None = None
        if self._due():
            try:
                data = write.full_snapshot().to_json()
            except DocumentTooLarge as too_large:
                refused = too_large  # deferred: the record below is written instead, if it can be
            else:
                self._store.persist_ops_lifecycle(self._runtime_id, data, fence=fence)
                self._based = True
                self._records_since = 0
                self._bytes_since = 0
                self._snapshot_bytes = len(data)
                self.compactions += 1
                return
        data = write.record.to_json()  # over the limit itself: SnapshotFormatError, nothing written
        if refused is not None and not self._based and not self._record_completes_store(write):
            raise refused
        self._store.append_ops_record(self._runtime_id, data, fence=fence)
        if refused is not None:
            # Try again once as many bytes were appended as the refused snapshot had: compaction
            # stays amortised O(1) per byte written even while the state is over the limit.
            self._based = True
            self._records_since = 0
            self._bytes_since = 0
            self._snapshot_bytes = refused.size
            self.deferred += 1
        self._records_since += 1
        self._bytes_since += len(data)
        self.appended += 1

    def _record_completes_store(self, write: OpsDurableWrite) -> bool:
        """Whether the store's state with ``write.record`` replayed is the registry's durable
        state after the call (terminal operations, completion order, feed, sequence counter):
        then appending the record is as good as the compaction it replaces."""
        full = write.full_snapshot()
        try:
            stored = self.load_persisted()
            if stored is None:
                return False  # a journal record needs a base snapshot
            # under the registry's own settings (a feed capacity changed since the store's
            # snapshot was written): recovery trims to them too
            after = replay(replace(stored, config=full.config), [write.record])
        except SnapshotFormatError:
            return False
        return durable_part(after) == durable_part(full)

    def confirm_owner(self) -> None:
        """Raise ``OwnershipLost`` (reported to the owner, ``lose``) unless the store's lease is
        still the owner's fence (same owner and token: no claim since, so no other fenced writer);
        a no-op without an owner or fence. Store errors propagate (the lease cannot be read)."""
        owner = self._owner
        if owner is None:
            return
        owner.check()
        fence = owner.fence
        if fence is None:
            return
        lease = self._store.load_lease(self._runtime_id)
        if lease is not None and lease.owner == fence.owner and lease.token == fence.token:
            return
        holder = "nobody" if lease is None else f"{lease.owner!r} (token {lease.token})"
        lost = OwnershipLost(
            self._runtime_id,
            f"the lease of token {fence.token} is now held by {holder}: another worker claimed the session",
        )
        owner.lose(lost)
        raise lost

    def load_persisted(self) -> PersistedOpsSnapshot | None:
        """What the store holds for this runtime (snapshot + replayed journal)."""
        return persisted_from_records(self._store.load_ops_lifecycle(self._runtime_id), self._runtime_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
