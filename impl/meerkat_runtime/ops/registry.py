"""``OpsLifecycleRegistry``: the lifecycle of a session's async operations (the thread-safe shell
of :class:`~meerkat_runtime.ops.core.OpsCore`).

Contract (binding: docs/semantics.md, "Operation registry"):

* Every method is atomic and safe from threads and asyncio tasks. Watchers and ``wait_all``
  handles are awaitable from any event loop and blockable from any thread.
* Two locks. The *commit lock* serialises every call that changes the registry, for the whole
  call, durable write included, so no two changes interleave. The *state lock* guards the
  state itself and is held only for in-memory work, never across a store write: reads
  (``snapshot``, ``list_operations``, ``view``, ``capture_persistence_snapshot``) take only
  the state lock, so they are never blocked by I/O. Order: commit lock, then state lock.
* Per-operation calls on an untracked id raise ``NotFound``; a status outside the method's
  from-set raises ``InvalidTransition(id, status, action)`` with the method name as action.
* Terminal transitions set the outcome, resolve and clear watchers, push a feed entry with
  the next sequence number (1, 2, ...; never reused), append to the retention FIFO, evict
  the oldest terminal operations beyond ``max_completed`` (members of an active barrier are
  pinned), check the barrier, and — with a persistence sink attached — are written before
  anything of it happens in memory (:meth:`OpsLifecycleRegistry._commit`). If the write fails,
  nothing happened (watchers, feed, barrier, counters) and ``PersistenceFailed`` is raised —
  or ``OwnershipLost`` when the store refused the write because another worker owns the
  session now.
* Unknown write outcomes: when the sink fails without saying the write did not happen, the
  registry reads the store back at once (commit lock held): if it holds the write the call
  completes as a successful one, if it holds the state from before the call fails as above; if
  it cannot be read the registry is *in doubt*: every later change first reads the store again
  (applying or dropping the pending call), and fails with ``PersistenceFailed``
  (``outcome_unknown``) while it cannot. Reads never wait for it. "Holds the write" is exact:
  the operations it made terminal with the outcome, number and completion time it wrote, so
  another writer's write of the same operation id under the same number is not taken for it;
  and a sink that writes under a lease (``OwnedOpsSink``) confirms, after the read, that the
  lease is still its fence: if another worker claimed the session the call (or the doubt)
  resolves as ``OwnershipLost`` and nothing of the pending call is published.
* Arguments are checked at the door (:mod:`meerkat_runtime.ops.fields`): a field of the wrong
  type or range raises ``InvalidField`` (kind ``validation_failed``) naming it.
* Closing (:meth:`OpsLifecycleRegistry.close`, when the session goes away: unregistered, its
  machine closed, its lease lost): every pending watcher, the pending ``wait_all`` handle and
  every completion-feed wait raise the closing error, and every later call that changes the
  registry (registrations, transitions, watchers, ``wait_all``, ``collect_completed``,
  ``terminate_owner``) raises it too, before anything happens. Nothing durable changes: the
  operations stay as stored and the session's next registry recovers them. Reads keep
  answering with the state as it was at the close (no watcher pending, no barrier).
* Dropped watches: a pending watch whose last reference is dropped is released (the next call
  drains it; ``watcher_count`` no longer counts it), as a dropped ``wait_all`` handle cancels
  its barrier.
* Deterministic: ``terminate_owner`` works in registration order, ``collect_completed`` in
  completion order, ``list_operations`` sorts by display name then registration order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from meerkat_runtime.events.event import Change, spell
from meerkat_runtime.ops import fields
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.core import OpsCore
from meerkat_runtime.ops.cursors import EpochCursorSnapshot, EpochCursorState
from meerkat_runtime.ops.events import OpsEventSink
from meerkat_runtime.ops.feed import CompletionFeed
from meerkat_runtime.ops.persistence import (
    OpsDurableWrite,
    OpsPersistenceSink,
    OwnedOpsSink,
    PersistenceChannelClosed,
    ReadableOpsSink,
)
from meerkat_runtime.ops.plan import OpsPlan
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.ops.views import OperationLifecycleSnapshot, RegistryView
from meerkat_runtime.ops.wait_all import WaitAllHandle
from meerkat_runtime.ops.watch import OneShot, OperationCompletionWatch
from meerkat_runtime.vocab.errors import OwnershipLost, PersistenceFailed, SnapshotFormatError, write_outcome_unknown
from meerkat_runtime.vocab.operation import (
    OperationPeerHandle,
    OperationProgressUpdate,
    OperationResult,
    OperationSpec,
    TerminalOutcome,
)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class _Durability:
    sink: OpsPersistenceSink
    epoch_id: str
    cursors: EpochCursorState


@dataclass(frozen=True, slots=True)
class _Doubt:
    """A durable call whose write's outcome is unknown and could not be read back yet."""

    plan: OpsPlan
    write: OpsDurableWrite
    error: BaseException


Fingerprint = tuple[int, frozenset[tuple[object, ...]]]


def _fingerprint(snapshot: PersistedOpsSnapshot | None, ignore: frozenset[str]) -> Fingerprint:
    """What a durable call changes in the stored registry, exactly: the next sequence number and
    the terminal operations (id, status, sequence, outcome, completion time), leaving out
    ``ignore``d ids. The outcome and completion time tell this registry's write from another
    writer's of the same operation id with the same sequence number (a takeover)."""
    if snapshot is None:
        return 1, frozenset()
    terminal = frozenset(
        (op.id, op.status.value, op.completion_seq, op.terminal_outcome, op.completed_at_ms)
        for op in snapshot.operations
        if op.status.is_terminal and op.id not in ignore
    )
    return snapshot.next_completion_seq, terminal


def _publish(sink: OpsEventSink, plan: OpsPlan, landed: bool, befores: dict[str, str], *, waiting: bool) -> None:
    """The event of a committed durable plan: a per-operation terminal transition, or
    ``terminate_owner`` / ``collect_completed`` for the registry."""
    details: dict[str, object] = {}
    if plan.evicted:
        details["evicted"] = list(plan.evicted)
    if plan.barrier_result is not None:
        details["barrier_done"] = True
    if landed:
        details["adopted"] = True
    if plan.operation_id is not None and len(plan.terminal) == 1:
        terminal = plan.terminal[0]
        outcome = terminal.outcome
        sink.operation(
            plan.rule,
            plan.operation_id,
            befores[plan.operation_id],
            outcome.status.value,
            seq=terminal.seq,
            **details,
        )
        return
    changes = tuple(
        Change("operation", t.record.spec.id, spell(befores[t.record.spec.id]), spell(t.outcome.status.value))
        for t in plan.terminal
    )
    details["seqs"] = {t.record.spec.id: t.seq for t in plan.terminal}
    if plan.collected:
        details["collected"] = list(plan.collected_ids)
    if plan.reason is not None:
        details["reason"] = plan.reason
    after = "Waiting" if waiting else "Idle"
    before = "Waiting" if waiting or plan.barrier_result is not None else "Idle"
    sink.emit(plan.rule, before, after, changes, details)


class OpsLifecycleRegistry:
    """Thread-safe registry of async operations, with completion feed, watchers, a
    ``wait_all`` barrier and optional durable terminal transitions."""

    def __init__(self, config: OpsLifecycleConfig | None = None, *, session_id: str | None = None) -> None:
        self._config = config if config is not None else OpsLifecycleConfig()
        self._session_id = session_id
        self._commit_lock = threading.Lock()
        self._lock = threading.Lock()
        self._core = OpsCore(self._config)
        self._feed = CompletionFeed(self._config.feed_capacity)
        self._durability: _Durability | None = None
        self._dropped_waits: deque[str] = deque()
        self._dropped_watchers: deque[tuple[str, OneShot[TerminalOutcome]]] = deque()
        self._closed: Callable[[], BaseException] | None = None
        self._refusing: Callable[[], BaseException] | None = None
        self._refuse_lock = threading.Lock()
        self._doubt: _Doubt | None = None
        self._events: OpsEventSink | None = None

    @classmethod
    def with_config(cls, max_completed: int = 256, max_concurrent: int | None = None) -> OpsLifecycleRegistry:
        return cls(OpsLifecycleConfig(max_completed, max_concurrent))

    @property
    def config(self) -> OpsLifecycleConfig:
        return self._config

    @property
    def session_id(self) -> str | None:
        """The session this registry belongs to (every spec's ``owner_session_id`` must be
        it), or ``None`` for a registry bound to no session (any owner text is taken)."""
        return self._session_id

    # --- persistence wiring -------------------------------------------------------------

    def attach_persistence(self, sink: OpsPersistenceSink, epoch_id: str, cursors: EpochCursorState) -> None:
        """Make every later durable call write through ``sink`` before it returns."""
        if not epoch_id:
            raise ValueError("epoch_id must not be empty")
        with self._commit_lock, self._lock:
            self._drain_dropped()
            self._durability = _Durability(sink, epoch_id, cursors)
        self._deliver()

    def detach_persistence(self) -> OpsPersistenceSink | None:
        """Stop writing durably; returns the sink that was attached (not closed). An unresolved
        doubt (a write whose outcome is unknown) is forgotten with it."""
        with self._commit_lock, self._lock:
            self._doubt = None
            self._drain_dropped()
            durability, self._durability = self._durability, None
        self._deliver()
        return None if durability is None else durability.sink

    def attach_events(self, sink: OpsEventSink | None) -> None:
        """Publish an event for every later call that takes effect (:mod:`meerkat_runtime.ops.events`)."""
        with self._commit_lock:
            self._events = sink

    def _deliver(self) -> None:
        """Deliver the events this registry's calls queued (:meth:`EventBus.deliver`): called
        once the call released the registry's locks, so no subscriber runs under them and a
        subscriber may call the registry."""
        sink = self._events
        if sink is not None:
            sink.bus.deliver()

    def publish_recovered(self) -> None:
        """Publish ``crash_recover`` for a registry rebuilt by :meth:`from_recovered` (its
        terminal operations with their sequence numbers, and the next sequence number)."""
        sink = self._events
        if sink is None or not sink.active:
            return
        with self._commit_lock, self._lock:
            core = self._core
            terminal = {oid: [rec.status.value, rec.completion_seq] for oid, rec in core.ops.items()}
            sink.registry("crash_recover", "Idle", "Idle", operations=terminal, next_seq=core.next_seq)
        self._deliver()

    def _status(self, operation_id: str) -> str:
        rec = self._core.ops.get(operation_id)
        return "absent" if rec is None else rec.status.value

    def _per_op(self, rule: str, operation_id: str, call: Callable[[], T], **details: object) -> T:
        """Run a non-durable per-operation rule (inside :meth:`_changing`) and publish it."""
        sink = self._events
        if sink is None or not sink.active:
            return call()
        before = self._status(operation_id)
        result = call()
        sink.operation(rule, operation_id, before, self._status(operation_id), **details)
        return result

    @property
    def in_doubt(self) -> bool:
        """Whether a write's outcome is still unknown (every change reads the store back first)."""
        return self._doubt is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` (or :meth:`refuse`) was called (every change raises its error)."""
        return self._closed is not None or self._refusing is not None

    def refuse(self, error: Callable[[], BaseException]) -> None:
        """Make every later change raise ``error()`` at once, without waiting for a change in
        flight or releasing any waiter: safe on a thread that is inside a change (a sink's lease
        loss found by the write itself). :meth:`close` then releases the waiters with this error
        (whatever error it is given). First call wins."""
        with self._refuse_lock:
            if self._refusing is None:
                self._refusing = error

    def close(self, error: Callable[[], BaseException], *, release_waiters: bool = True) -> bool:
        """Close the registry: its session is gone. Every later change raises ``error()`` (a
        fresh exception each time, e.g. ``SessionNotFound``, ``MachineClosed``,
        ``OwnershipLost``); with ``release_waiters`` every pending watcher, the pending
        ``wait_all`` handle and every completion-feed wait raise it now (without, as a crash
        would leave them, they stay pending: ``halt``). Waits for a change in flight (its durable
        write completes or fails first); changes nothing durable. Returns ``False`` (and changes
        nothing) when already closed."""
        with self._commit_lock, self._lock:
            if self._closed is not None:
                return False
            if self._refusing is not None:  # refused first (a lost lease): that error stays
                error = self._refusing
            self._closed = error
            self._dropped_waits.clear()
            self._dropped_watchers.clear()
            if not release_waiters:
                return True
            shots, barrier = self._core.release_waiters()
        for shot in shots:
            shot.set_exception(error())
        if barrier is not None:
            barrier.set_exception(error())
        self._feed.close(error)
        return True

    def _check_open(self) -> None:
        """Raise the closing error of a closed registry (commit lock held)."""
        closed = self._refusing if self._refusing is not None else self._closed
        if closed is not None:
            raise closed()

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the commit lock, refuse a closed registry, settle a doubt (:meth:`_reconcile`),
        then hold the state lock with dropped waits drained: how every non-durable change starts."""
        try:
            with self._commit_lock:
                self._check_open()
                self._reconcile()
                with self._lock:
                    self._drain_dropped()
                    yield
        finally:
            self._deliver()

    # --- registration and non-terminal transitions --------------------------------------

    def register_operation(self, spec: OperationSpec) -> None:
        """Track a new operation in Provisioning. ``AlreadyRegistered`` is checked before
        ``MaxConcurrentExceeded``."""
        fields.check_spec(spec, self._session_id)
        with self._changing():
            self._per_op(
                "register_operation",
                spec.id,
                lambda: self._core.register_operation(spec),
                kind=spec.kind.value,
            )

    def provisioning_succeeded(self, operation_id: str) -> None:
        """Provisioning -> Running; stamps ``started_at_ms``."""
        with self._changing():
            self._per_op(
                "provisioning_succeeded", operation_id, lambda: self._core.provisioning_succeeded(operation_id)
            )

    def peer_ready(self, operation_id: str, handle: OperationPeerHandle) -> None:
        """Record the peer handle of a running/retiring mob-member child (once)."""
        fields.check_handle(handle)
        with self._changing():
            self._per_op("peer_ready", operation_id, lambda: self._core.peer_ready(operation_id, handle))

    def register_watcher(self, operation_id: str) -> OperationCompletionWatch:
        """A watch that resolves once with the operation's terminal outcome (at once if it
        is already terminal)."""
        with self._changing():
            shot = self._per_op("register_watcher", operation_id, lambda: self._core.register_watcher(operation_id))
            if shot.done():
                return OperationCompletionWatch(operation_id, shot)
            return OperationCompletionWatch(operation_id, shot, self._watch_dropped)

    def report_progress(self, operation_id: str, update: OperationProgressUpdate | None = None) -> None:
        """Count one progress report of a running/retiring operation (the payload is advisory)."""
        with self._changing():
            self._per_op("report_progress", operation_id, lambda: self._core.report_progress(operation_id))

    def request_retire(self, operation_id: str) -> None:
        """Running -> Retiring."""
        with self._changing():
            self._per_op("request_retire", operation_id, lambda: self._core.request_retire(operation_id))

    # --- terminal transitions -----------------------------------------------------------

    def provisioning_failed(self, operation_id: str, error: str) -> None:
        """Provisioning/Running/Retiring -> Failed{error}."""
        fields.check_text("error", error)
        self._durable(self._core.provisioning_failed, operation_id, error)

    def abort_provisioning(self, operation_id: str, reason: str | None = None) -> None:
        """Provisioning -> Aborted{reason}."""
        fields.check_text("reason", reason, optional=True)
        self._durable(self._core.abort_provisioning, operation_id, reason)

    def complete_operation(self, operation_id: str, result: OperationResult) -> None:
        """Running/Retiring -> Completed(result)."""
        fields.check_result(result, operation_id)
        self._durable(self._core.complete_operation, operation_id, result)

    def fail_operation(self, operation_id: str, error: str) -> None:
        """Provisioning/Running/Retiring -> Failed{error}."""
        fields.check_text("error", error)
        self._durable(self._core.fail_operation, operation_id, error)

    def cancel_operation(self, operation_id: str, reason: str | None = None) -> None:
        """Provisioning/Running/Retiring -> Cancelled{reason}."""
        fields.check_text("reason", reason, optional=True)
        self._durable(self._core.cancel_operation, operation_id, reason)

    def mark_retired(self, operation_id: str) -> None:
        """Running/Retiring -> Retired."""
        self._durable(self._core.mark_retired, operation_id)

    def terminate_owner(self, reason: str) -> int:
        """Every active operation -> Terminated{reason}, in registration order, with one
        durable write. Returns how many were terminated."""
        fields.check_text("reason", reason)
        return len(self._durable(self._core.terminate_owner, reason).terminal)

    def collect_completed(self) -> list[tuple[str, TerminalOutcome]]:
        """Remove every retained terminal operation (barrier members stay until the barrier
        ends) and return ``(id, outcome)`` in completion order. Durable when it removed any."""
        return list(self._durable(self._core.collect_completed).collected)

    # --- wait_all -----------------------------------------------------------------------

    def wait_all(self, operation_ids: Iterable[str], run_id: str | None = None) -> WaitAllHandle:
        """Wait until every listed operation is terminal. Checks, in order:
        ``DuplicateWaitOperation``, ``WaitAlreadyActive``, ``NotFound``. If all are already
        terminal (or the list is empty) the handle is resolved and no barrier is created.
        ``run_id`` is accepted for interface parity and not interpreted. ``operation_ids``
        must be a collection of id strings (a single string is refused, not split into
        characters): ``InvalidField`` otherwise."""
        ids = fields.check_ids("wait_all", "operation_ids", operation_ids)
        fields.check_text("run_id", run_id, optional=True)
        with self._changing():
            request_id, shot, pending = self._core.wait_all(ids)
            sink = self._events
            if sink is not None and sink.active:
                rule = "wait_all_begin" if pending else "wait_all_immediate"
                sink.registry(rule, "Idle", "Waiting" if pending else "Idle", members=list(ids))
        if not pending:
            return WaitAllHandle(request_id, ids, shot)
        return WaitAllHandle(request_id, ids, shot, cancel=self._cancel_wait, drop=self._wait_dropped)

    def cancel_wait_all(self) -> bool:
        """Cancel the active barrier, if any; its handle raises ``WaitAllCancelled``."""
        with self._changing():
            barrier = self._core.barrier
            if barrier is None:
                return False
            return self._cancel_barrier(barrier.request_id)

    # --- reads (state lock only) --------------------------------------------------------

    def snapshot(self, operation_id: str) -> OperationLifecycleSnapshot | None:
        """The operation's current view, or ``None`` if it is not tracked."""
        self._drain_if_idle()
        with self._lock:
            rec = self._core.ops.get(operation_id)
            return None if rec is None else rec.view()

    def list_operations(self) -> list[OperationLifecycleSnapshot]:
        """Every tracked operation, sorted by display name, then registration order."""
        self._drain_if_idle()
        with self._lock:
            records = sorted(self._core.ops.values(), key=lambda r: (r.spec.display_name, r.reg_index))
            return [rec.view() for rec in records]

    def view(self) -> RegistryView:
        """Registry-wide bookkeeping (tracked ids, active count, FIFO, barrier, sequences)."""
        self._drain_if_idle()
        with self._lock:
            core = self._core
            barrier = core.barrier
            return RegistryView(
                operation_ids=tuple(core.ops),
                active_count=core.active_count,
                completed_order=tuple(core.completed),
                wait_request_id=None if barrier is None else barrier.request_id,
                wait_operation_ids=() if barrier is None else barrier.members,
                next_completion_seq=core.next_seq,
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
        self._drain_if_idle()
        with self._lock:
            return self._core.capture(epoch_id, cursors, self._feed.entries())

    @classmethod
    def from_recovered(
        cls, snapshot: PersistedOpsSnapshot, config: OpsLifecycleConfig | None = None, *, session_id: str | None = None
    ) -> OpsLifecycleRegistry:
        """Rebuild a registry after a restart (``crash_recover``): terminal operations come back
        with outcomes, specs and sequence numbers; non-terminal ones are dropped; the feed keeps
        its entries; the next sequence number is preserved; no barrier; retention is applied
        (the barrier that may have pinned extra members is gone). Raises
        ``SnapshotFormatError`` if the snapshot contradicts itself."""
        snapshot.validate()
        registry = cls(config if config is not None else snapshot.config, session_id=session_id)
        registry._core = OpsCore.crash_recover(snapshot, registry._config)
        registry._feed.publish(snapshot.completion_entries)
        return registry

    # --- the durable-commit seam --------------------------------------------------------

    def _durable(self, rule: Callable[P, OpsPlan], *args: P.args, **kwargs: P.kwargs) -> OpsPlan:
        """Run a durable rule of the core: under the commit lock, plan it (state lock held:
        validate and compute, nothing changes), then :meth:`_commit` it."""
        try:
            with self._commit_lock:
                self._check_open()
                self._reconcile()
                with self._lock:
                    self._drain_dropped()
                    plan = rule(*args, **kwargs)
                self._commit(plan)
        finally:
            self._deliver()
        return plan

    def _commit(self, plan: OpsPlan, *, landed: bool = False) -> None:
        """The one function through which every durable write of the registry goes: persist,
        then apply, then publish. Called with the commit lock held and the state lock released.

        Guarantees: the sink is called outside the state lock, once, with the plan's journal
        record (and, on demand, the full snapshot as the plan leaves the registry); nothing
        changes in memory unless it returned. If it raises, the registry is exactly as before
        and ``PersistenceFailed`` names the call and the store failure (a write refused for
        ownership raises the store's ``OwnershipLost`` unwrapped). A plan that changes
        nothing durable is not written. Apply (state lock) and publish (feed entries in
        sequence order, watchers, a satisfied barrier) follow with the commit lock still held.

        Ownership fencing: the sink carries the session's lease fence to the store, which
        refuses a stale one in the same transaction (raising here, before apply).

        Unknown outcomes: a failure that does not say the write did not happen
        (:meth:`_outcome_unknown`) is read back from a readable sink at once (:meth:`_landed`):
        the store holds the write → the call completes as a successful one; it holds the state
        from before → ``PersistenceFailed`` as above; it cannot be read → the registry is in
        doubt (:meth:`_reconcile`) and ``PersistenceFailed(outcome_unknown=True)`` is raised.
        ``landed=True`` applies a pending plan the store was found to hold (no write).

        Where the next guarantees plug in: group commit batches ``sink.persist`` calls; a
        post-commit event named ``plan.rule`` is numbered and queued after publish (delivered
        by the caller once the commit lock is released: :meth:`_deliver`).
        """
        durability = self._durability
        written = landed
        if durability is not None and plan.changed and not landed:
            record = self._core.journal_record(plan, durability.epoch_id, durability.cursors.snapshot())
            write = OpsDurableWrite(
                plan.rule,
                record,
                lambda: self._core.capture(durability.epoch_id, record.cursors, self._feed.preview(plan.entries), plan),
            )
            try:
                durability.sink.persist(write)
            except OwnershipLost:
                raise
            except Exception as exc:
                if not self._outcome_unknown(durability.sink, exc):
                    raise PersistenceFailed(f"{plan.subject} was rolled back: the durable write failed: {exc}") from exc
                found = self._landed(durability, plan, write)
                if found is None:
                    self._doubt = _Doubt(plan, write, exc)
                    raise PersistenceFailed(
                        f"{plan.subject} may or may not have been applied: the store left the write's outcome "
                        f"unknown and could not be read back; the registry reads it again before any change: {exc}",
                        outcome_unknown=True,
                    ) from exc
                if not found:
                    raise PersistenceFailed(
                        f"{plan.subject} was rolled back: the store reported an ambiguous failure and holds no "
                        f"trace of the write: {exc}"
                    ) from exc
            written = True
        befores: dict[str, str] = {str(t.record.spec.id): t.record.status.value for t in plan.terminal}
        with self._lock:
            self._core.apply(plan, written=written)
        self._feed.publish(plan.entries)
        for terminal in plan.terminal:
            for shot in terminal.watchers:
                shot.set(terminal.outcome)
        if plan.barrier_result is not None:
            barrier_shot, result = plan.barrier_result
            barrier_shot.set(result)
        sink = self._events
        if sink is not None and sink.active:
            _publish(sink, plan, landed, befores, waiting=self._core.barrier is not None)

    # --- unknown write outcomes -----------------------------------------------------------

    @staticmethod
    def _outcome_unknown(sink: OpsPersistenceSink, error: BaseException) -> bool:
        """Whether a failed ``persist`` may have written: for a sink that can be read back,
        unless the store said it did not happen (or the sink was closed, or the write's document
        was refused by its encoder, before the store was called: ``SnapshotFormatError``); for
        any other sink only when the error says so (``outcome_unknown``)."""
        if isinstance(error, PersistenceChannelClosed | SnapshotFormatError):
            return False
        if isinstance(sink, ReadableOpsSink):
            return write_outcome_unknown(error)
        return getattr(error, "outcome_unknown", False) is True

    def _landed(self, durability: _Durability, plan: OpsPlan, write: OpsDurableWrite) -> bool | None:
        """Read the store back after a write whose outcome is unknown (commit lock held, the
        registry unchanged since ``plan``): ``True`` if it holds the write, ``False`` if it holds
        the state from before, ``None`` if it cannot be read (or holds neither). Raises
        ``OwnershipLost`` when the sink's lease is no longer its fence (read after the store:
        a fence current then proves no other worker wrote what was read)."""
        sink = durability.sink
        if not isinstance(sink, ReadableOpsSink):
            return None
        try:
            stored = sink.load_persisted()
        except Exception:
            return None
        if isinstance(sink, OwnedOpsSink):
            try:
                sink.confirm_owner()  # after the read: a fence still current then vouches for it
            except OwnershipLost:
                raise
            except Exception:
                return None
        ignore = frozenset(self._core.pending_evictions)  # evicted in memory, written with the next call
        found = _fingerprint(stored, ignore)
        if found == _fingerprint(write.full_snapshot(), ignore):
            return True
        before = self._core.capture(durability.epoch_id, write.record.cursors, self._feed.entries())
        return False if found == _fingerprint(before, ignore) else None

    def _reconcile(self) -> None:
        """Settle a doubt before a change (commit lock held, state lock not): read the store
        back; apply the pending call if it holds it, drop it if not; raise
        ``PersistenceFailed(outcome_unknown=True)`` while it cannot be read."""
        doubt = self._doubt
        if doubt is None:
            return
        durability = self._durability
        try:
            found = None if durability is None else self._landed(durability, doubt.plan, doubt.write)
        except OwnershipLost:
            self._doubt = None  # settled: another worker owns the session; nothing is published
            raise
        if found is None:
            raise PersistenceFailed(
                f"the registry cannot change: the outcome of {doubt.plan.subject} is still unknown and the store "
                f"could not be read back (after: {doubt.error})",
                outcome_unknown=True,
            )
        self._doubt = None
        if found:
            self._commit(doubt.plan, landed=True)

    # --- dropped and cancelled waits ----------------------------------------------------

    def _cancel_wait(self, request_id: str) -> bool:
        try:
            with self._commit_lock:
                if self._doubt is not None:  # cancelled once the doubt is settled (never raises here)
                    self._dropped_waits.append(request_id)
                    return True
                with self._lock:
                    self._drain_dropped()
                    return self._cancel_barrier(request_id)
        finally:
            self._deliver()

    def _wait_dropped(self, request_id: str) -> None:
        """Called when a pending handle is garbage-collected: never blocks on a lock (the
        collector may run while this thread holds one); the next call drains the request."""
        self._dropped_waits.append(request_id)
        self._drain_if_idle(deliver=False)

    def _watch_dropped(self, operation_id: str, shot: OneShot[TerminalOutcome]) -> None:
        """Called when a pending watch is garbage-collected: never blocks on a lock (as
        :meth:`_wait_dropped`); the next call releases the watcher."""
        self._dropped_watchers.append((operation_id, shot))
        self._drain_if_idle(deliver=False)

    def _drain_if_idle(self, *, deliver: bool = True) -> None:
        """Drain dropped waits and watches if both locks are free right now (never blocks:
        readers and the garbage collector use it). A dropped watch or handle passes
        ``deliver=False`` (the garbage collector may run where the thread holds any lock): its
        event stays queued for the bus's next delivery, e.g. by the next reader here."""
        if (self._dropped_waits or self._dropped_watchers) and self._commit_lock.acquire(blocking=False):
            try:
                if self._lock.acquire(blocking=False):
                    try:
                        self._drain_dropped()
                    finally:
                        self._lock.release()
            finally:
                self._commit_lock.release()
        if deliver:
            self._deliver()

    def _drain_dropped(self) -> None:
        """Release the watchers of dropped watches (``drop_watcher``, published), and cancel the
        barriers of dropped handles (both locks held; barriers not while in doubt)."""
        while self._dropped_watchers:
            try:
                operation_id, shot = self._dropped_watchers.popleft()
            except IndexError:  # pragma: no cover - raced with another drainer
                break
            if self._core.drop_watcher(operation_id, shot):
                sink = self._events
                if sink is not None and sink.active:
                    status = self._status(operation_id)
                    sink.operation("drop_watcher", operation_id, status, status)
        while self._dropped_waits and self._doubt is None:
            try:
                request_id = self._dropped_waits.popleft()
            except IndexError:  # pragma: no cover - raced with another drainer
                return
            self._cancel_barrier(request_id)

    def _cancel_barrier(self, request_id: str) -> bool:
        """``wait_all_cancel`` of ``request_id`` (both locks held), published when it ended one."""
        cancelled = self._core.wait_all_cancel(request_id, durable=self._durability is not None)
        sink = self._events
        if cancelled and sink is not None:
            sink.registry("wait_all_cancel", "Waiting", "Idle")
        return cancelled
