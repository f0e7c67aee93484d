"""``OpsCore``: the state of one operation registry and its rules, named as the model names them.

Not thread-safe and never blocking: the shell
(:class:`~meerkat_runtime.ops.registry.OpsLifecycleRegistry`) holds its locks and performs the
durable writes. Rules either raise (changing nothing) or:

* non-durable rules (``register_operation``, ``provisioning_succeeded``, ``peer_ready``,
  ``register_watcher``, ``drop_watcher``, ``report_progress``, ``request_retire``, ``wait_all``,
  ``wait_all_cancel``) validate, then change the state;
* durable rules (``provisioning_failed``, ``abort_provisioning``, ``complete_operation``,
  ``fail_operation``, ``cancel_operation``, ``mark_retired``, ``terminate_owner``,
  ``collect_completed``) change nothing and return an
  :class:`~meerkat_runtime.ops.plan.OpsPlan`; :meth:`OpsCore.apply` installs it once written;
* ``crash_recover`` (a class method): the state rebuilt from a persisted snapshot.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorSnapshot
from meerkat_runtime.ops.feed import CompletionEntry
from meerkat_runtime.ops.journal import JournalRecord
from meerkat_runtime.ops.plan import OpsPlan, PlannedTerminal
from meerkat_runtime.ops.record import OpRecord
from meerkat_runtime.ops.retention import RetentionPlan, apply_retention
from meerkat_runtime.ops.snapshot import PersistedOperation, PersistedOpsSnapshot, registration_numbers
from meerkat_runtime.ops.wait_all import WaitAllResult, WaitAllSatisfied
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.errors import (
    AlreadyPeerReady,
    AlreadyRegistered,
    DuplicateWaitOperation,
    Internal,
    InvalidTransition,
    MaxConcurrentExceeded,
    NotFound,
    PeerNotExpected,
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
_NOTHING_PINNED: frozenset[str] = frozenset()


@dataclass(slots=True)
class Barrier:
    """The active ``wait_all`` barrier: its members (pinned against eviction) and those not
    terminal yet."""

    request_id: str
    members: tuple[str, ...]
    pinned: frozenset[str]
    remaining: set[str]
    shot: OneShot[WaitAllResult]


class OpsCore:
    """Operations by id (registration order), active count, retention FIFO, sequence counter,
    the barrier, and evictions not yet written (``pending_evictions``)."""

    def __init__(self, config: OpsLifecycleConfig) -> None:
        self.config = config
        self.ops: dict[str, OpRecord] = {}
        self.active_count = 0
        self.completed: deque[str] = deque()
        self.next_seq = 1
        self.reg_counter = 0
        self.barrier: Barrier | None = None
        self.pending_evictions: list[str] = []

    # --- non-durable rules ------------------------------------------------------------------

    def register_operation(self, spec: OperationSpec) -> None:
        """Track a new operation in Provisioning. ``AlreadyRegistered`` is checked before
        ``MaxConcurrentExceeded``."""
        if spec.id in self.ops:
            raise AlreadyRegistered(spec.id)
        limit = self.config.max_concurrent
        if limit is not None and self.active_count >= limit:
            raise MaxConcurrentExceeded(limit, self.active_count)
        self.ops[spec.id] = OpRecord(spec, self.reg_counter)
        self.reg_counter += 1
        self.active_count += 1

    def provisioning_succeeded(self, operation_id: str) -> None:
        """Provisioning → Running; stamps ``started_at_ms``."""
        rec = self._require(operation_id, _PROVISIONING, "provisioning_succeeded")
        rec.status = _R
        rec.started_at_ms = rec.stamp_ms()

    def peer_ready(self, operation_id: str, handle: OperationPeerHandle) -> None:
        """Record the peer handle of a running/retiring mob-member child (once)."""
        rec = self._get(operation_id)
        if rec.spec.kind is not OperationKind.MOB_MEMBER_CHILD:
            raise PeerNotExpected(operation_id)
        if rec.peer_ready:
            raise AlreadyPeerReady(operation_id)
        if rec.status not in _RUNNING_OR_RETIRING:
            raise InvalidTransition(operation_id, rec.status.value, "peer_ready")
        rec.peer_ready = True
        rec.peer_handle = handle

    def register_watcher(self, operation_id: str) -> OneShot[TerminalOutcome]:
        """A one-shot resolved with the operation's terminal outcome (already, if terminal)."""
        rec = self._get(operation_id)
        if rec.outcome is not None:
            return OneShot.resolved(rec.outcome)
        shot: OneShot[TerminalOutcome] = OneShot()
        rec.watchers.append(shot)
        return shot

    def drop_watcher(self, operation_id: str, shot: OneShot[TerminalOutcome]) -> bool:
        """Release pending watcher ``shot`` of ``operation_id`` (its watch was dropped); returns
        whether it was still pending there (an ended or untracked operation has none)."""
        rec = self.ops.get(operation_id)
        if rec is None:
            return False
        watchers = rec.watchers
        for index in range(len(watchers) - 1, -1, -1):
            if watchers[index] is shot:
                del watchers[index]
                return True
        return False

    def release_waiters(self) -> tuple[list[OneShot[TerminalOutcome]], OneShot[WaitAllResult] | None]:
        """``detach``: every pending watcher and the barrier's one-shot, taken out of the state
        (no watcher pending, no barrier) for the caller to fail; operations are left as they are."""
        shots: list[OneShot[TerminalOutcome]] = []
        for rec in self.ops.values():
            shots.extend(rec.watchers)
            rec.watchers = []
        barrier, self.barrier = self.barrier, None
        return shots, None if barrier is None else barrier.shot

    def report_progress(self, operation_id: str) -> None:
        """Count one progress report of a running/retiring operation."""
        rec = self._require(operation_id, _RUNNING_OR_RETIRING, "report_progress")
        rec.progress_count += 1

    def request_retire(self, operation_id: str) -> None:
        """Running → Retiring."""
        rec = self._require(operation_id, _RUNNING, "request_retire")
        rec.status = _RT

    def wait_all(self, ids: tuple[str, ...]) -> tuple[str, OneShot[WaitAllResult], bool]:
        """``wait_all_immediate`` (every member terminal, or none listed: resolved at once, no
        barrier) or ``wait_all_begin`` (a barrier is created). Checks, in order:
        ``DuplicateWaitOperation``, ``WaitAlreadyActive``, ``NotFound``. Returns the request
        id, its one-shot and whether a barrier was created."""
        seen: set[str] = set()
        for oid in ids:
            if oid in seen:
                raise DuplicateWaitOperation(oid)
            seen.add(oid)
        if self.barrier is not None:
            raise WaitAlreadyActive()
        for oid in ids:
            if oid not in self.ops:
                raise NotFound(oid)
        request_id = str(uuid7())
        remaining = {oid for oid in ids if self.ops[oid].outcome is None}
        if not remaining:
            return request_id, OneShot.resolved(self._wait_result(request_id, ids, {})), False
        shot: OneShot[WaitAllResult] = OneShot()
        self.barrier = Barrier(request_id, ids, frozenset(ids), remaining, shot)
        return request_id, shot, True

    def wait_all_cancel(self, request_id: str, *, durable: bool) -> bool:
        """End barrier ``request_id`` (if active) with ``WaitAllCancelled``; retention applies
        again at once. Its evictions are written with the next durable call (``durable``)."""
        barrier = self.barrier
        if barrier is None or barrier.request_id != request_id:
            return False
        self.barrier = None
        evicted = self._retain_now()
        if durable:
            self.pending_evictions.extend(evicted)
        barrier.shot.set_exception(WaitAllCancelled(request_id))
        return True

    # --- durable rules (plans) ----------------------------------------------------------------

    def provisioning_failed(self, operation_id: str, error: str) -> OpsPlan:
        """Provisioning/Running/Retiring → Failed{error}."""
        return self._terminal(operation_id, Failed(error), _ACTIVE, "provisioning_failed")

    def abort_provisioning(self, operation_id: str, reason: str | None = None) -> OpsPlan:
        """Provisioning → Aborted{reason}."""
        return self._terminal(operation_id, Aborted(reason), _PROVISIONING, "abort_provisioning")

    def complete_operation(self, operation_id: str, result: OperationResult) -> OpsPlan:
        """Running/Retiring → Completed(result)."""
        return self._terminal(operation_id, Completed(result), _RUNNING_OR_RETIRING, "complete_operation")

    def fail_operation(self, operation_id: str, error: str) -> OpsPlan:
        """Provisioning/Running/Retiring → Failed{error}."""
        return self._terminal(operation_id, Failed(error), _ACTIVE, "fail_operation")

    def cancel_operation(self, operation_id: str, reason: str | None = None) -> OpsPlan:
        """Provisioning/Running/Retiring → Cancelled{reason}."""
        return self._terminal(operation_id, Cancelled(reason), _ACTIVE, "cancel_operation")

    def mark_retired(self, operation_id: str) -> OpsPlan:
        """Running/Retiring → Retired."""
        return self._terminal(operation_id, Retired(), _RUNNING_OR_RETIRING, "mark_retired")

    def terminate_owner(self, reason: str) -> OpsPlan:
        """Every active operation → Terminated{reason}, in registration order."""
        targets = [rec for rec in self.ops.values() if rec.status in _ACTIVE]
        return self._plan_terminals("terminate_owner", None, [(rec, Terminated(reason)) for rec in targets], reason)

    def collect_completed(self) -> OpsPlan:
        """Remove every retained terminal operation except members of an active barrier, in
        completion order."""
        pinned = self.barrier.pinned if self.barrier is not None else _NOTHING_PINNED
        collected: list[tuple[str, TerminalOutcome]] = []
        for oid in self.completed:
            if oid in pinned:
                continue
            outcome = self.ops[oid].outcome
            if outcome is None:  # pragma: no cover - guarded by the invariants
                raise Internal(f"retained operation {oid!r} has no terminal outcome")
            collected.append((oid, outcome))
        kept = tuple(oid for oid in self.completed if oid in pinned)
        return OpsPlan("collect_completed", None, self.next_seq, collected=tuple(collected), kept=kept)

    # --- installing a plan ------------------------------------------------------------------

    def apply(self, plan: OpsPlan, *, written: bool) -> None:
        """Install ``plan`` (its durable write, if any, succeeded: ``written``)."""
        for terminal in plan.terminal:
            rec = terminal.record
            rec.status = terminal.outcome.status
            rec.outcome = terminal.outcome
            rec.completed_at_ms = terminal.completed_at_ms
            rec.elapsed_ms = terminal.elapsed_ms
            rec.completion_seq = terminal.seq
            rec.watchers = []
        self.active_count -= len(plan.terminal)
        self.next_seq = plan.next_seq
        if plan.kept is not None:
            self.completed = deque(plan.kept)
        else:
            apply_retention(self.completed, plan.appended, plan.evicted)
        for oid in plan.evicted:
            del self.ops[oid]
        for oid, _ in plan.collected:
            del self.ops[oid]
        barrier = self.barrier
        if barrier is not None and plan.barrier_done:
            barrier.remaining.difference_update(plan.barrier_done)
        if plan.barrier_result is not None:
            self.barrier = None
        if written:
            self.pending_evictions.clear()

    # --- durable forms ----------------------------------------------------------------------

    def journal_record(self, plan: OpsPlan, epoch_id: str, cursors: EpochCursorSnapshot) -> JournalRecord:
        """The O(1) durable form of ``plan``."""
        return JournalRecord(
            epoch_id=epoch_id,
            action=plan.rule,
            pre_evicted=tuple(self.pending_evictions),
            terminated=tuple(t.persisted() for t in plan.terminal),
            evicted=tuple(plan.evicted),
            collected=plan.collected_ids,
            next_completion_seq=plan.next_seq,
            cursors=cursors,
        )

    def capture(
        self,
        epoch_id: str,
        cursors: EpochCursorSnapshot,
        entries: tuple[CompletionEntry, ...],
        plan: OpsPlan | None = None,
    ) -> PersistedOpsSnapshot:
        """The full persisted form of the state, as it is now or as ``plan`` will leave it
        (``entries``: the feed's retained entries at that point)."""
        if plan is None:
            operations = tuple(rec.persisted() for rec in self.ops.values())
            state = (operations, tuple(self.completed), self.active_count, self.next_seq, self.barrier)
            return self._snapshot(epoch_id, cursors, entries, *state)
        planned: dict[str, PlannedTerminal] = {t.record.spec.id: t for t in plan.terminal}
        removed = set(plan.evicted)
        removed.update(plan.collected_ids)
        operations = tuple(
            planned[oid].persisted() if oid in planned else rec.persisted()
            for oid, rec in self.ops.items()
            if oid not in removed
        )
        if plan.kept is not None:
            order = plan.kept
        else:
            order = tuple(oid for oid in itertools.chain(self.completed, plan.appended) if oid not in removed)
        barrier = None if plan.barrier_result is not None else self.barrier
        active = self.active_count - len(plan.terminal)
        return self._snapshot(epoch_id, cursors, entries, operations, order, active, plan.next_seq, barrier)

    @classmethod
    def crash_recover(cls, snapshot: PersistedOpsSnapshot, config: OpsLifecycleConfig) -> OpsCore:
        """``crash_recover``: terminal operations come back with outcomes, specs and sequence
        numbers; non-terminal ones are dropped; no barrier; retention applies again (its
        evictions are written with the next durable call)."""
        core = cls(config)
        numbers = registration_numbers(snapshot.operations)
        for op, number in zip(snapshot.operations, numbers, strict=True):
            if op.status.is_terminal:
                core.ops[op.id] = OpRecord.recovered(op, number)
        # Later registrations are numbered above every persisted one (the dropped non-terminal
        # ones too): a journal record this registry appends after the records it was recovered
        # from then places its operations after theirs.
        core.reg_counter = max(numbers, default=-1) + 1
        core.completed = deque(oid for oid in snapshot.completed_order if oid in core.ops)
        core.next_seq = snapshot.next_completion_seq
        core.pending_evictions.extend(core._retain_now())
        return core

    # --- helpers ----------------------------------------------------------------------------

    def _get(self, operation_id: str) -> OpRecord:
        rec = self.ops.get(operation_id)
        if rec is None:
            raise NotFound(operation_id)
        return rec

    def _require(self, operation_id: str, allowed: frozenset[OperationStatus], action: str) -> OpRecord:
        rec = self.ops.get(operation_id)
        if rec is None:
            raise NotFound(operation_id)
        if rec.status not in allowed:
            raise InvalidTransition(operation_id, rec.status.value, action)
        return rec

    def _terminal(
        self, operation_id: str, outcome: TerminalOutcome, allowed: frozenset[OperationStatus], action: str
    ) -> OpsPlan:
        rec = self._require(operation_id, allowed, action)
        return self._plan_terminals(action, operation_id, [(rec, outcome)])

    def _plan_terminals(
        self,
        rule: str,
        operation_id: str | None,
        targets: list[tuple[OpRecord, TerminalOutcome]],
        reason: str | None = None,
    ) -> OpsPlan:
        """Terminal effects of each target, in order: outcome and stamps, the next sequence
        number, a feed entry, the FIFO append and retention, the barrier check (a satisfied
        barrier ends and retention applies again without its pins). Retention runs once per
        pinned set (see :mod:`meerkat_runtime.ops.retention`), so a plan is linear in its
        targets."""
        seq = self.next_seq
        terminals: list[PlannedTerminal] = []
        entries: list[CompletionEntry] = []
        fifo = RetentionPlan(self.completed, self.config.max_completed)
        appended = fifo.appended
        barrier = self.barrier
        remaining = set(barrier.remaining) if barrier is not None else None
        outcomes: dict[str, TerminalOutcome] = {}
        done: list[str] = []
        result: tuple[OneShot[WaitAllResult], WaitAllResult] | None = None
        for rec, outcome in targets:
            spec = rec.spec
            oid = spec.id
            completed_at = rec.stamp_ms()
            terminals.append(
                PlannedTerminal(rec, outcome, seq, completed_at, rec.elapsed_now_ms(), tuple(rec.watchers))
            )
            entries.append(CompletionEntry(seq, oid, spec.kind, spec.display_name, outcome, completed_at))
            seq += 1
            appended.append(oid)
            if barrier is None or remaining is None:
                continue
            outcomes[oid] = outcome
            if oid in remaining:
                remaining.discard(oid)
                done.append(oid)
            if not remaining:
                fifo.retain(barrier.pinned)  # everything so far, under the barrier's pins
                result = (barrier.shot, self._wait_result(barrier.request_id, barrier.members, outcomes))
                barrier = remaining = None
        fifo.retain(barrier.pinned if barrier is not None else _NOTHING_PINNED)
        return OpsPlan(
            rule,
            operation_id,
            seq,
            terminal=tuple(terminals),
            entries=tuple(entries),
            appended=tuple(appended),
            evicted=tuple(fifo.evicted),
            barrier_done=tuple(done),
            barrier_result=result,
            reason=reason,
        )

    def _retain_now(self) -> list[str]:
        """Apply retention to the live FIFO (after a barrier ended outside a plan); returns the
        evicted ids."""
        pinned = self.barrier.pinned if self.barrier is not None else _NOTHING_PINNED
        fifo = RetentionPlan(self.completed, self.config.max_completed)
        fifo.retain(pinned)
        apply_retention(self.completed, [], fifo.evicted)
        for oid in fifo.evicted:
            del self.ops[oid]
        return fifo.evicted

    def _wait_result(
        self, request_id: str, members: tuple[str, ...], planned: dict[str, TerminalOutcome]
    ) -> WaitAllResult:
        outcomes: list[tuple[str, TerminalOutcome]] = []
        for oid in members:
            outcome = planned[oid] if oid in planned else self.ops[oid].outcome
            if outcome is None:  # pragma: no cover - guarded by the caller
                raise Internal(f"wait_all member {oid!r} has no terminal outcome")
            outcomes.append((oid, outcome))
        return WaitAllResult(tuple(outcomes), WaitAllSatisfied(request_id, members))

    def _snapshot(
        self,
        epoch_id: str,
        cursors: EpochCursorSnapshot,
        entries: tuple[CompletionEntry, ...],
        operations: tuple[PersistedOperation, ...],
        order: tuple[str, ...],
        active_count: int,
        next_seq: int,
        barrier: Barrier | None,
    ) -> PersistedOpsSnapshot:
        return PersistedOpsSnapshot(
            epoch_id=epoch_id,
            config=self.config,
            operations=operations,
            completed_order=order,
            active_count=active_count,
            wait_request_id=None if barrier is None else barrier.request_id,
            wait_operation_ids=() if barrier is None else barrier.members,
            next_completion_seq=next_seq,
            completion_entries=entries,
            cursors=cursors,
        )
