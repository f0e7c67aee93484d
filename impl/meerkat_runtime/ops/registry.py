"""``OpsLifecycleRegistry``: the lifecycle of a session's async operations.

Contract (binding: docs/semantics.md, "Operation registry"):

* One lock per registry; every method is atomic and safe from threads and asyncio tasks.
  Watchers and ``wait_all`` handles are awaitable from any event loop and blockable from any
  thread.
* Per-operation calls on an untracked id raise ``NotFound``; a status outside the method's
  from-set raises ``InvalidTransition(id, status, action)`` with the method name as action.
* Terminal transitions set the outcome, resolve and clear watchers, push a feed entry with
  the next sequence number (1, 2, ...; never reused), append to the retention FIFO, evict
  the oldest terminal operations beyond ``max_completed`` (members of an active barrier are
  pinned), check the barrier, and — with a persistence sink attached — write durably before
  returning. If the write fails, the whole call is rolled back and ``PersistenceFailed``
  is raised; nothing observable (watchers, feed, barrier) happened.
* Deterministic: ``terminate_owner`` works in registration order, ``collect_completed`` in
  completion order, ``list_operations`` sorts by display name then registration order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorSnapshot, EpochCursorState
from meerkat_runtime.ops.feed import CompletionEntry, CompletionFeed
from meerkat_runtime.ops.journal import JournalRecord
from meerkat_runtime.ops.persistence import OpsDurableWrite, OpsPersistenceSink
from meerkat_runtime.ops.record import OpRecord
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.ops.transaction import Transaction
from meerkat_runtime.ops.views import OperationLifecycleSnapshot, RegistryView
from meerkat_runtime.ops.wait_all import WaitAllHandle, WaitAllResult, WaitAllSatisfied
from meerkat_runtime.ops.watch import OneShot, OperationCompletionWatch
from meerkat_runtime.vocab.errors import (
    AlreadyPeerReady,
    AlreadyRegistered,
    DuplicateWaitOperation,
    Internal,
    InvalidTransition,
    MaxConcurrentExceeded,
    NotFound,
    PeerNotExpected,
    PersistenceFailed,
    WaitAllCancelled,
    WaitAlreadyActive,
)
from meerkat_runtime.vocab.ids import uuid7
from meerkat_runtime.vocab.operation import (
    Aborted,
    Cancelled,
    Completed,
    Failed,
    OperationKind,
    OperationPeerHandle,
    OperationProgressUpdate,
    OperationResult,
    OperationSpec,
    OperationStatus,
    Retired,
    TerminalOutcome,
    Terminated,
)

_P = OperationStatus.PROVISIONING
_R = OperationStatus.RUNNING
_RT = OperationStatus.RETIRING
_PROVISIONING = frozenset({_P})
_RUNNING = frozenset({_R})
_RUNNING_OR_RETIRING = frozenset({_R, _RT})
_ACTIVE = frozenset({_P, _R, _RT})


@dataclass(slots=True)
class _Barrier:
    request_id: str
    members: tuple[str, ...]
    pinned: frozenset[str]
    remaining: set[str]
    shot: OneShot[WaitAllResult]


@dataclass(slots=True)
class _Durability:
    sink: OpsPersistenceSink
    epoch_id: str
    cursors: EpochCursorState


class OpsLifecycleRegistry:
    """Thread-safe registry of async operations, with completion feed, watchers, a
    ``wait_all`` barrier and optional durable terminal transitions."""

    def __init__(self, config: OpsLifecycleConfig | None = None) -> None:
        self._config = config if config is not None else OpsLifecycleConfig()
        self._lock = threading.Lock()
        self._ops: dict[str, OpRecord] = {}
        self._active_count = 0
        self._completed: deque[str] = deque()
        self._next_seq = 1
        self._reg_counter = 0
        self._feed = CompletionFeed(self._config.feed_capacity)
        self._barrier: _Barrier | None = None
        self._durability: _Durability | None = None
        self._pending_evictions: list[str] = []
        self._dropped_waits: deque[str] = deque()

    @classmethod
    def with_config(cls, max_completed: int = 256, max_concurrent: int | None = None) -> OpsLifecycleRegistry:
        return cls(OpsLifecycleConfig(max_completed, max_concurrent))

    @property
    def config(self) -> OpsLifecycleConfig:
        return self._config

    # --- persistence wiring -------------------------------------------------------------

    def attach_persistence(self, sink: OpsPersistenceSink, epoch_id: str, cursors: EpochCursorState) -> None:
        """Make every later durable call write through ``sink`` before it returns."""
        if not epoch_id:
            raise ValueError("epoch_id must not be empty")
        with self._lock:
            self._drain_dropped()
            self._durability = _Durability(sink, epoch_id, cursors)

    def detach_persistence(self) -> OpsPersistenceSink | None:
        """Stop writing durably; returns the sink that was attached (not closed)."""
        with self._lock:
            self._drain_dropped()
            durability, self._durability = self._durability, None
        return None if durability is None else durability.sink

    # --- registration and non-terminal transitions --------------------------------------

    def register_operation(self, spec: OperationSpec) -> None:
        """Track a new operation in Provisioning. ``AlreadyRegistered`` is checked before
        ``MaxConcurrentExceeded``."""
        if not isinstance(spec, OperationSpec) or not isinstance(spec.id, str) or not spec.id:
            raise ValueError(f"register_operation needs an OperationSpec with a non-empty id, got {spec!r}")
        if not isinstance(spec.kind, OperationKind):
            raise ValueError(f"operation {spec.id!r} has an unknown kind {spec.kind!r}")
        with self._lock:
            self._drain_dropped()
            if spec.id in self._ops:
                raise AlreadyRegistered(spec.id)
            limit = self._config.max_concurrent
            if limit is not None and self._active_count >= limit:
                raise MaxConcurrentExceeded(limit, self._active_count)
            self._ops[spec.id] = OpRecord(spec, self._reg_counter)
            self._reg_counter += 1
            self._active_count += 1

    def provisioning_succeeded(self, operation_id: str) -> None:
        """Provisioning -> Running; stamps ``started_at_ms``."""
        with self._lock:
            self._drain_dropped()
            rec = self._require(operation_id, _PROVISIONING, "provisioning_succeeded")
            rec.status = _R
            rec.started_at_ms = rec.stamp_ms()

    def peer_ready(self, operation_id: str, handle: OperationPeerHandle) -> None:
        """Record the peer handle of a running/retiring mob-member child (once)."""
        with self._lock:
            self._drain_dropped()
            rec = self._ops.get(operation_id)
            if rec is None:
                raise NotFound(operation_id)
            if rec.spec.kind is not OperationKind.MOB_MEMBER_CHILD:
                raise PeerNotExpected(operation_id)
            if rec.peer_ready:
                raise AlreadyPeerReady(operation_id)
            if rec.status not in _RUNNING_OR_RETIRING:
                raise InvalidTransition(operation_id, rec.status.value, "peer_ready")
            rec.peer_ready = True
            rec.peer_handle = handle

    def register_watcher(self, operation_id: str) -> OperationCompletionWatch:
        """A watch that resolves once with the operation's terminal outcome (at once if it
        is already terminal)."""
        with self._lock:
            self._drain_dropped()
            rec = self._ops.get(operation_id)
            if rec is None:
                raise NotFound(operation_id)
            if rec.outcome is not None:
                return OperationCompletionWatch(operation_id, OneShot.resolved(rec.outcome))
            shot: OneShot[TerminalOutcome] = OneShot()
            rec.watchers.append(shot)
            return OperationCompletionWatch(operation_id, shot)

    def report_progress(self, operation_id: str, update: OperationProgressUpdate | None = None) -> None:
        """Count one progress report of a running/retiring operation (the payload is advisory)."""
        with self._lock:
            self._drain_dropped()
            rec = self._require(operation_id, _RUNNING_OR_RETIRING, "report_progress")
            rec.progress_count += 1

    def request_retire(self, operation_id: str) -> None:
        """Running -> Retiring."""
        with self._lock:
            self._drain_dropped()
            rec = self._require(operation_id, _RUNNING, "request_retire")
            rec.status = _RT

    # --- terminal transitions -----------------------------------------------------------

    def provisioning_failed(self, operation_id: str, error: str) -> None:
        """Provisioning/Running/Retiring -> Failed{error}."""
        self._terminal_call(operation_id, Failed(error), _ACTIVE, "provisioning_failed")

    def abort_provisioning(self, operation_id: str, reason: str | None = None) -> None:
        """Provisioning -> Aborted{reason}."""
        self._terminal_call(operation_id, Aborted(reason), _PROVISIONING, "abort_provisioning")

    def complete_operation(self, operation_id: str, result: OperationResult) -> None:
        """Running/Retiring -> Completed(result)."""
        self._terminal_call(operation_id, Completed(result), _RUNNING_OR_RETIRING, "complete_operation")

    def fail_operation(self, operation_id: str, error: str) -> None:
        """Provisioning/Running/Retiring -> Failed{error}."""
        self._terminal_call(operation_id, Failed(error), _ACTIVE, "fail_operation")

    def cancel_operation(self, operation_id: str, reason: str | None = None) -> None:
        """Provisioning/Running/Retiring -> Cancelled{reason}."""
        self._terminal_call(operation_id, Cancelled(reason), _ACTIVE, "cancel_operation")

    def mark_retired(self, operation_id: str) -> None:
        """Running/Retiring -> Retired."""
        self._terminal_call(operation_id, Retired(), _RUNNING_OR_RETIRING, "mark_retired")

    def terminate_owner(self, reason: str) -> int:
        """Every active operation -> Terminated{reason}, in registration order, with one
        durable write. Returns how many were terminated."""
        with self._lock:
            self._drain_dropped()
            targets = [rec for rec in self._ops.values() if rec.status in _ACTIVE]
            if not targets:
                return 0
            txn = Transaction()
            for rec in targets:
                self._terminalize(rec, Terminated(reason), txn)
            self._commit(txn, "terminate_owner", f"terminate_owner({reason!r}) of {len(targets)} operation(s)")
            return len(targets)

    def collect_completed(self) -> list[tuple[str, TerminalOutcome]]:
        """Remove every retained terminal operation (barrier members stay until the barrier
        ends) and return ``(id, outcome)`` in completion order. Durable when it removed any."""
        with self._lock:
            self._drain_dropped()
            pinned = self._barrier.pinned if self._barrier is not None else frozenset()
            taken = [oid for oid in self._completed if oid not in pinned]
            if not taken:
                return []
            txn = Transaction()
            old_completed = self._completed
            self._completed = deque(oid for oid in old_completed if oid in pinned)
            txn.undo(partial(setattr, self, "_completed", old_completed))
            collected: list[tuple[str, TerminalOutcome]] = []
            for oid in taken:
                rec = self._ops.pop(oid)
                txn.undo(partial(self._ops.__setitem__, oid, rec))
                if rec.outcome is None:  # pragma: no cover - guarded by the invariants
                    raise Internal(f"retained operation {oid!r} has no terminal outcome")
                collected.append((oid, rec.outcome))
            txn.reorder_needed = True
            txn.collected.extend(taken)
            self._commit(txn, "collect_completed", f"collect_completed() of {len(taken)} operation(s)")
            return collected

    # --- wait_all -----------------------------------------------------------------------

    def wait_all(self, operation_ids: Iterable[str], run_id: str | None = None) -> WaitAllHandle:
        """Wait until every listed operation is terminal. Checks, in order:
        ``DuplicateWaitOperation``, ``WaitAlreadyActive``, ``NotFound``. If all are already
        terminal (or the list is empty) the handle is resolved and no barrier is created.
        ``run_id`` is accepted for interface parity and not interpreted."""
        ids = tuple(operation_ids)
        with self._lock:
            self._drain_dropped()
            seen: set[str] = set()
            for oid in ids:
                if oid in seen:
                    raise DuplicateWaitOperation(oid)
                seen.add(oid)
            if self._barrier is not None:
                raise WaitAlreadyActive()
            for oid in ids:
                if oid not in self._ops:
                    raise NotFound(oid)
            request_id = str(uuid7())
            remaining = {oid for oid in ids if self._ops[oid].outcome is None}
            if not remaining:
                return WaitAllHandle(request_id, ids, OneShot.resolved(self._wait_result(request_id, ids)))
            shot: OneShot[WaitAllResult] = OneShot()
            self._barrier = _Barrier(request_id, ids, frozenset(ids), remaining, shot)
        return WaitAllHandle(request_id, ids, shot, cancel=self._cancel_wait, drop=self._wait_dropped)

    def cancel_wait_all(self) -> bool:
        """Cancel the active barrier, if any; its handle raises ``WaitAllCancelled``."""
        with self._lock:
            self._drain_dropped()
            if self._barrier is None:
                return False
            return self._cancel_locked(self._barrier.request_id)

    # --- reads --------------------------------------------------------------------------

    def snapshot(self, operation_id: str) -> OperationLifecycleSnapshot | None:
        """The operation's current view, or ``None`` if it is not tracked."""
        with self._lock:
            rec = self._ops.get(operation_id)
            return None if rec is None else rec.view()

    def list_operations(self) -> list[OperationLifecycleSnapshot]:
        """Every tracked operation, sorted by display name, then registration order."""
        with self._lock:
            self._drain_dropped()
            records = sorted(self._ops.values(), key=lambda r: (r.spec.display_name, r.reg_index))
            return [rec.view() for rec in records]

    def view(self) -> RegistryView:
        """Registry-wide bookkeeping (tracked ids, active count, FIFO, barrier, sequences)."""
        with self._lock:
            self._drain_dropped()
            barrier = self._barrier
            return RegistryView(
                operation_ids=tuple(self._ops),
                active_count=self._active_count,
                completed_order=tuple(self._completed),
                wait_request_id=None if barrier is None else barrier.request_id,
                wait_operation_ids=() if barrier is None else barrier.members,
                next_completion_seq=self._next_seq,
                watermark=self._feed.watermark(),
                max_completed=self._config.max_completed,
                max_concurrent=self._config.max_concurrent,
            )

    def completion_feed(self) -> CompletionFeed:
        """The registry's completion feed (the same object for the registry's lifetime)."""
        return self._feed

    # --- snapshots and recovery ---------------------------------------------------------

    def capture_persistence_snapshot(
        self, epoch_id: str, cursor_state: EpochCursorState | EpochCursorSnapshot | None = None
    ) -> PersistedOpsSnapshot:
        """The full persisted form of the registry now, with the given epoch and cursors."""
        if cursor_state is None:
            cursors = EpochCursorSnapshot()
        elif isinstance(cursor_state, EpochCursorState):
            cursors = cursor_state.snapshot()
        else:
            cursors = cursor_state
        with self._lock:
            self._drain_dropped()
            return self._capture(epoch_id, cursors, ())

    @classmethod
    def from_recovered(
        cls, snapshot: PersistedOpsSnapshot, config: OpsLifecycleConfig | None = None
    ) -> OpsLifecycleRegistry:
        """Rebuild a registry after a restart: terminal operations come back with outcomes,
        specs and sequence numbers; non-terminal ones are dropped; the feed keeps its entries;
        the next sequence number is preserved; no barrier; retention is applied (the barrier
        that may have pinned extra members is gone). Raises ``SnapshotFormatError`` if the
        snapshot contradicts itself."""
        snapshot.validate()
        registry = cls(config if config is not None else snapshot.config)
        for op in snapshot.operations:
            if op.status.is_terminal:
                registry._ops[op.id] = OpRecord.recovered(op, registry._reg_counter)
                registry._reg_counter += 1
        registry._completed = deque(oid for oid in snapshot.completed_order if oid in registry._ops)
        registry._next_seq = snapshot.next_completion_seq
        registry._feed.publish(snapshot.completion_entries)
        txn = Transaction()
        registry._retain(txn)
        registry._pending_evictions.extend(txn.evicted)
        return registry

    # --- internals (lock held) ----------------------------------------------------------

    def _require(self, operation_id: str, allowed: frozenset[OperationStatus], action: str) -> OpRecord:
        rec = self._ops.get(operation_id)
        if rec is None:
            raise NotFound(operation_id)
        if rec.status not in allowed:
            raise InvalidTransition(operation_id, rec.status.value, action)
        return rec

    def _terminal_call(
        self, operation_id: str, outcome: TerminalOutcome, allowed: frozenset[OperationStatus], action: str
    ) -> None:
        with self._lock:
            self._drain_dropped()
            rec = self._require(operation_id, allowed, action)
            txn = Transaction()
            self._terminalize(rec, outcome, txn)
            self._commit(txn, action, f"{action} of operation {operation_id!r}")

    def _terminalize(self, rec: OpRecord, outcome: TerminalOutcome, txn: Transaction) -> None:
        oid = rec.spec.id
        saved: _SavedRecord = (
            rec.status,
            rec.outcome,
            rec.completed_at_ms,
            rec.elapsed_ms,
            rec.completion_seq,
            rec.watchers,
        )
        txn.undo(partial(_restore_record, rec, saved))
        seq = self._next_seq
        rec.status = outcome.status
        rec.outcome = outcome
        rec.completed_at_ms = rec.stamp_ms()
        rec.elapsed_ms = rec.elapsed_now_ms()
        rec.completion_seq = seq
        if rec.watchers:
            txn.watchers.append((rec.watchers, outcome))
            rec.watchers = []
        txn.undo(partial(self._restore_counters, seq, self._active_count))
        self._next_seq = seq + 1
        self._active_count -= 1
        txn.terminated.append(rec)
        txn.entries.append(
            CompletionEntry(seq, oid, rec.spec.kind, rec.spec.display_name, outcome, rec.completed_at_ms)
        )
        self._completed.append(oid)
        txn.undo(self._completed.pop)
        barrier = self._barrier
        if barrier is not None and oid in barrier.remaining:
            barrier.remaining.discard(oid)
            txn.undo(partial(barrier.remaining.add, oid))
        self._retain(txn)
        if barrier is not None and not barrier.remaining and self._barrier is barrier:
            txn.barrier_result = (barrier.shot, self._wait_result(barrier.request_id, barrier.members))
            self._barrier = None
            txn.undo(partial(setattr, self, "_barrier", barrier))
            self._retain(txn)

    def _restore_counters(self, next_seq: int, active_count: int) -> None:
        self._next_seq = next_seq
        self._active_count = active_count

    def _retain(self, txn: Transaction) -> None:
        """Evict the oldest unpinned terminal operations while more than ``max_completed`` remain."""
        completed = self._completed
        excess = len(completed) - self._config.max_completed
        if excess <= 0:
            return
        pinned = self._barrier.pinned if self._barrier is not None else frozenset()
        i = 0
        while excess > 0 and i < len(completed):
            oid = completed[i]
            if oid in pinned:
                i += 1
                continue
            del completed[i]
            txn.undo(partial(completed.insert, i, oid))
            rec = self._ops.pop(oid)
            txn.undo(partial(self._ops.__setitem__, oid, rec))
            txn.evicted.append(oid)
            txn.reorder_needed = True
            excess -= 1

    def _wait_result(self, request_id: str, members: tuple[str, ...]) -> WaitAllResult:
        outcomes: list[tuple[str, TerminalOutcome]] = []
        for oid in members:
            outcome = self._ops[oid].outcome
            if outcome is None:  # pragma: no cover - guarded by the caller
                raise Internal(f"wait_all member {oid!r} has no terminal outcome")
            outcomes.append((oid, outcome))
        return WaitAllResult(tuple(outcomes), WaitAllSatisfied(request_id, members))

    def _commit(self, txn: Transaction, action: str, subject: str) -> None:
        durability = self._durability
        if durability is not None and txn.changed:
            pre_evicted = tuple(self._pending_evictions)
            record = JournalRecord(
                epoch_id=durability.epoch_id,
                action=action,
                pre_evicted=pre_evicted,
                terminated=tuple(rec.persisted() for rec in txn.terminated),
                evicted=tuple(txn.evicted),
                collected=tuple(txn.collected),
                next_completion_seq=self._next_seq,
                cursors=durability.cursors.snapshot(),
            )
            entries = tuple(txn.entries)
            write = OpsDurableWrite(action, record, lambda: self._capture(durability.epoch_id, record.cursors, entries))
            try:
                durability.sink.persist(write)
            except Exception as exc:
                self._rollback(txn)
                raise PersistenceFailed(f"{subject} was rolled back: the durable write failed: {exc}") from exc
            self._pending_evictions.clear()
        self._feed.publish(txn.entries)
        txn.publish_effects()

    def _rollback(self, txn: Transaction) -> None:
        txn.rollback()
        if txn.reorder_needed:
            self._ops = dict(sorted(self._ops.items(), key=lambda item: item[1].reg_index))

    def _capture(
        self, epoch_id: str, cursors: EpochCursorSnapshot, pending: tuple[CompletionEntry, ...]
    ) -> PersistedOpsSnapshot:
        barrier = self._barrier
        return PersistedOpsSnapshot(
            epoch_id=epoch_id,
            config=self._config,
            operations=tuple(rec.persisted() for rec in self._ops.values()),
            completed_order=tuple(self._completed),
            active_count=self._active_count,
            wait_request_id=None if barrier is None else barrier.request_id,
            wait_operation_ids=() if barrier is None else barrier.members,
            next_completion_seq=self._next_seq,
            completion_entries=self._feed.preview(pending),
            cursors=cursors,
        )

    def _cancel_locked(self, request_id: str) -> bool:
        barrier = self._barrier
        if barrier is None or barrier.request_id != request_id:
            return False
        self._barrier = None
        txn = Transaction()
        self._retain(txn)
        if self._durability is not None:
            self._pending_evictions.extend(txn.evicted)
        barrier.shot.set_exception(WaitAllCancelled(request_id))
        return True

    def _cancel_wait(self, request_id: str) -> bool:
        with self._lock:
            self._drain_dropped()
            return self._cancel_locked(request_id)

    def _wait_dropped(self, request_id: str) -> None:
        """Called when a pending handle is garbage-collected: never blocks on the lock (the
        collector may run while this thread holds it); the next call drains the request."""
        self._dropped_waits.append(request_id)
        if self._lock.acquire(blocking=False):
            try:
                self._drain_dropped()
            finally:
                self._lock.release()

    def _drain_dropped(self) -> None:
        while self._dropped_waits:
            try:
                request_id = self._dropped_waits.popleft()
            except IndexError:  # pragma: no cover - raced with another drainer
                return
            self._cancel_locked(request_id)


_SavedRecord = tuple[
    OperationStatus, TerminalOutcome | None, int | None, int | None, int | None, list[OneShot[TerminalOutcome]]
]


def _restore_record(rec: OpRecord, saved: _SavedRecord) -> None:
    rec.status, rec.outcome, rec.completed_at_ms, rec.elapsed_ms, rec.completion_seq, rec.watchers = saved
