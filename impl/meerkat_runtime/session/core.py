"""The in-memory state machine of one session: runtime phase, current run and input ledger.

Every method is synchronous and either raises (changing nothing) or applies the whole
transition and returns :class:`Effects`: which input rows changed (to be written) and which
waiters to resolve once the write succeeded. Durability, locking and the run loop live in
other modules; :meth:`SessionCore.checkpoint` / :meth:`SessionCore.restore` let them undo a
transition whose durable write failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meerkat_runtime.session.completion import (
    Abandoned as AbandonedOutcome,
)
from meerkat_runtime.session.completion import (
    Cancelled as CancelledOutcome,
)
from meerkat_runtime.session.completion import (
    Completed,
    CompletedWithoutResult,
    CompletionOutcome,
    RuntimeTerminated,
)
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import HandlingMode, Input, wants_coalesce
from meerkat_runtime.session.ledger import HistoryEntry, InputLedger, InputRecord, Lane, LedgerCheckpoint
from meerkat_runtime.session.outcomes import Accepted, Deduplicated, Rejected
from meerkat_runtime.session.reports import (
    DestroyReport,
    RecycleReport,
    ResetReport,
    RetireReport,
    StopReport,
)
from meerkat_runtime.session.validation import rejection_reason
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, NotReady, RuntimeDestroyed
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import (
    MAX_STAGE_ATTEMPTS,
    Abandoned,
    AbandonKind,
    AbandonReason,
    Coalesced,
    Consumed,
    InputLifecycleState,
    Superseded,
)
from meerkat_runtime.vocab.runtime import RuntimeState

S = InputLifecycleState


@dataclass(frozen=True, slots=True)
class CurrentRun:
    run_id: RunId
    input_ids: tuple[InputId, ...]
    staged_from: tuple[InputRecord, ...] = field(default=(), compare=False, repr=False)
    """Copies of the contributors as they were before staging (what the store still holds)."""


@dataclass(slots=True)
class Effects:
    """What a transition changed: the rows it changed (also marked dirty in the ledger, which
    is what a durable write uses), waiters to resolve, whether every remaining waiter is
    terminated (``terminate_all`` is the reason), and ``noop`` when nothing changed at all
    (nothing is written)."""

    changed: list[InputId] = field(default_factory=list)
    resolutions: list[tuple[InputId, CompletionOutcome]] = field(default_factory=list)
    terminate_all: str | None = None
    noop: bool = False


@dataclass(frozen=True, slots=True)
class AcceptPlan:
    """An admission computed without touching the ledger; :meth:`SessionCore.apply_accept`
    performs it."""

    record: InputRecord
    displaced: InputRecord | None


@dataclass(slots=True)
class CoreCheckpoint:
    ledger: LedgerCheckpoint
    phase: RuntimeState
    pre_run_phase: RuntimeState | None
    current_run: CurrentRun | None


class SessionCore:
    """Phase, current run and ledger of one session."""

    def __init__(self, runtime_id: str, phase: RuntimeState = RuntimeState.IDLE) -> None:
        self.runtime_id = runtime_id
        self.phase = phase
        self.pre_run_phase: RuntimeState | None = None
        self.current_run: CurrentRun | None = None
        self.ledger = InputLedger()
        self.loop_attached = False

    # --- checkpoints ----------------------------------------------------------------------

    def checkpoint(self, ids: list[InputId], *, keys: bool = False) -> CoreCheckpoint:
        return CoreCheckpoint(self.ledger.checkpoint(ids, keys=keys), self.phase, self.pre_run_phase, self.current_run)

    def restore(self, cp: CoreCheckpoint) -> None:
        self.ledger.restore(cp.ledger)
        self.phase = cp.phase
        self.pre_run_phase = cp.pre_run_phase
        self.current_run = cp.current_run

    # --- loop attachment ------------------------------------------------------------------

    def idle_phase(self) -> RuntimeState:
        """Attached when a loop is attached, Idle otherwise."""
        return RuntimeState.ATTACHED if self.loop_attached else RuntimeState.IDLE

    def durable_phase(self) -> RuntimeState:
        """The phase a lifecycle record stores: a run lives only in memory, so Running is
        stored as its pre-run phase, and Attached (a live loop) as Idle."""
        phase = self.phase
        if phase is RuntimeState.RUNNING:
            phase = self.pre_run_phase or RuntimeState.IDLE
        return phase.durable_form

    def attach_loop(self) -> None:
        self.loop_attached = True
        if self.phase is RuntimeState.IDLE:
            self.phase = RuntimeState.ATTACHED
        if self.pre_run_phase is RuntimeState.IDLE:
            self.pre_run_phase = RuntimeState.ATTACHED

    def detach_loop(self) -> None:
        self.loop_attached = False
        if self.phase is RuntimeState.ATTACHED:
            self.phase = RuntimeState.IDLE
        if self.pre_run_phase is RuntimeState.ATTACHED:
            self.pre_run_phase = RuntimeState.IDLE

    # --- admission ------------------------------------------------------------------------

    def check_accepting(self) -> None:
        if self.phase is RuntimeState.DESTROYED:
            raise RuntimeDestroyed(self.runtime_id)
        if not self.phase.accepts_input:
            raise NotReady(self.phase.value)

    def plan_accept(self, item: Input, now: float) -> AcceptPlan | Deduplicated | Rejected:
        """Decide admission without changing anything. Raises ``RuntimeDestroyed``/``NotReady``."""
        self.check_accepting()
        reason = rejection_reason(item)
        if reason is not None:
            return Rejected(reason)
        header = item.header
        if header.idempotency_key is not None:
            existing = self.ledger.keys.get(header.idempotency_key)
            if existing is not None:
                return Deduplicated(header.id, existing)
        if header.id in self.ledger.records:
            return Rejected(f"input id {header.id!r} is already known to this session")
        lane = Lane.STEER if item.handling_mode is HandlingMode.STEER else Lane.QUEUE
        record = InputRecord(
            input=item,
            phase=S.QUEUED,
            lane=lane,
            admission_seq=self.ledger.next_admission_seq,
            created_at=now,
            updated_at=now,
        )
        record.history.append(_entry(None, S.ACCEPTED, "accepted", now))
        record.history.append(_entry(S.ACCEPTED, S.QUEUED, "queued", now))
        displaced = self._supersession_candidate(item)
        if displaced is not None:
            displaced = displaced.copy()
            if wants_coalesce(item):
                displaced.terminal = Coalesced(header.id)
                displaced.move(S.COALESCED, f"coalesced into {header.id}", now)
            else:
                displaced.terminal = Superseded(header.id)
                displaced.move(S.SUPERSEDED, f"superseded by {header.id}", now)
        return AcceptPlan(record, displaced)

    def _supersession_candidate(self, item: Input) -> InputRecord | None:
        key = item.header.supersession_key
        if key is None:
            return None
        for lane in (self.ledger.queue, self.ledger.steer):
            for input_id in lane:
                record = self.ledger.records[input_id]
                if record.input.kind == item.kind and record.input.header.supersession_key == key:
                    return record
        return None

    def apply_accept(self, plan: AcceptPlan) -> tuple[Accepted, Effects]:
        ledger = self.ledger
        record = plan.record
        record.admission_seq = ledger.take_admission_seq()
        ledger.records[record.input_id] = record
        ledger.lane(record.lane).append(record.input_id)
        key = record.input.header.idempotency_key
        if key is not None:
            ledger.keys[key] = record.input_id
        effects = Effects(changed=[record.input_id])
        if plan.displaced is not None:
            old = ledger.records[plan.displaced.input_id]
            ledger.remove_from_lane(old)
            ledger.records[old.input_id] = plan.displaced
            effects.changed.append(old.input_id)
            effects.resolutions.append((old.input_id, AbandonedOutcome(plan.displaced.phase.value)))
        return Accepted(record.input_id, record.phase), effects

    # --- runs -----------------------------------------------------------------------------

    def can_start_run(self) -> bool:
        return self.current_run is None and self.phase.can_process_queue

    def next_candidate(self) -> InputId | None:
        """The input the next run takes: the steer lane's head, else the queue lane's head."""
        if self.ledger.steer:
            return self.ledger.steer[0]
        if self.ledger.queue:
            return self.ledger.queue[0]
        return None

    def start_run(self, run_id: RunId, input_id: InputId, now: float) -> CurrentRun:
        """Stage ``input_id`` (must be Queued) as the single contributor of a new run."""
        if not self.can_start_run():
            raise InvalidRuntimeTransition(self.phase.value, "start_run")
        record = self.ledger.records[input_id]
        if record.phase is not S.QUEUED:
            raise InvalidRuntimeTransition(self.phase.value, f"stage input {input_id} ({record.phase.value})")
        before = record.copy()
        self.ledger.remove_from_lane(record)
        record.attempts += 1
        record.last_run_id = run_id
        record.last_boundary_sequence = None
        record.move(S.STAGED, f"staged for run {run_id}", now)
        self.ledger.mark(input_id)
        run = CurrentRun(run_id, (input_id,), (before,))
        self.current_run = run
        self.pre_run_phase = self.phase
        self.phase = RuntimeState.RUNNING
        return run

    def _finish_run(self) -> None:
        self.current_run = None
        if self.phase is RuntimeState.RUNNING:
            pre = self.pre_run_phase or RuntimeState.IDLE
            self.phase = self.idle_phase() if pre in (RuntimeState.IDLE, RuntimeState.ATTACHED) else pre
        self.pre_run_phase = None

    def _require_run(self, run_id: RunId) -> CurrentRun:
        run = self.current_run
        if run is None or run.run_id != run_id:
            raise InvalidRuntimeTransition(self.phase.value, f"finish run {run_id} (not the current run)")
        return run

    def succeed_run(self, run_id: RunId, sequence: int, result: RunResult | None, now: float) -> Effects:
        """Applied → AppliedPendingConsumption → Consumed for every contributor."""
        run = self._require_run(run_id)
        effects = Effects()
        outcome: CompletionOutcome = Completed(result) if result is not None else CompletedWithoutResult()
        for input_id in run.input_ids:
            record = self.ledger.records[input_id]
            if record.phase is not S.STAGED:
                continue
            record.move(S.APPLIED, f"applied by run {run_id}", now)
            record.last_boundary_sequence = sequence
            record.move(S.APPLIED_PENDING_CONSUMPTION, f"boundary {sequence} committed", now)
            record.terminal = Consumed()
            record.move(S.CONSUMED, "consumed", now)
            self.ledger.mark(input_id)
            effects.changed.append(input_id)
            effects.resolutions.append((input_id, outcome))
        self._finish_run()
        return effects

    def fail_run(self, run_id: RunId, now: float) -> Effects:
        """Contributors go back to the end of their lane, or are abandoned after 3 attempts."""
        run = self._require_run(run_id)
        effects = Effects()
        for input_id in run.input_ids:
            record = self.ledger.records[input_id]
            if record.phase is not S.STAGED:
                continue
            self.ledger.mark(input_id)
            effects.changed.append(input_id)
            if record.attempts >= MAX_STAGE_ATTEMPTS:
                reason = AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, record.attempts)
                record.terminal = Abandoned(reason)
                record.move(S.ABANDONED, f"max attempts exhausted ({record.attempts})", now)
                effects.resolutions.append((input_id, AbandonedOutcome("max_attempts_exhausted")))
            else:
                record.admission_seq = self.ledger.take_admission_seq()
                record.last_run_id = None
                record.move(S.QUEUED, f"run {run_id} failed; requeued", now)
                self.ledger.lane(record.lane).append(input_id)
        self._finish_run()
        return effects

    def cancel_run(self, run_id: RunId, now: float) -> Effects:
        """Contributors are abandoned with reason ``cancelled``."""
        run = self._require_run(run_id)
        effects = Effects()
        for input_id in run.input_ids:
            record = self.ledger.records[input_id]
            if record.phase.is_terminal:
                continue
            record.terminal = Abandoned(AbandonReason(AbandonKind.CANCELLED))
            record.move(S.ABANDONED, f"run {run_id} cancelled", now)
            self.ledger.mark(input_id)
            effects.changed.append(input_id)
            effects.resolutions.append((input_id, CancelledOutcome()))
        self._finish_run()
        return effects

    def rollback_boundary(self, run_id: RunId) -> Effects:
        """The boundary could not be committed and nothing was written: the contributors return
        to their form before the run — Queued at the head of their lane, the attempt not
        counted — and the runtime goes to Idle (Retired stays Retired). They stay marked dirty:
        if a control commit during the run wrote them as Staged, the next commit rewrites them."""
        run = self._require_run(run_id)
        effects = Effects()
        for before in reversed(run.staged_from):
            input_id = before.input_id
            record = self.ledger.records[input_id]
            if record.phase.is_terminal or record.phase is S.QUEUED:
                continue
            self.ledger.records[input_id] = before.copy()
            self.ledger.lane(before.lane).appendleft(input_id)
            self.ledger.mark(input_id)
            effects.changed.append(input_id)
        post = self.pre_run_phase if self.phase is RuntimeState.RUNNING else self.phase
        self.current_run = None
        self.pre_run_phase = None
        self.phase = RuntimeState.RETIRED if post is RuntimeState.RETIRED else self.idle_phase()
        return effects

    # --- control --------------------------------------------------------------------------

    def _refuse_destroyed(self) -> None:
        if self.phase is RuntimeState.DESTROYED:
            raise RuntimeDestroyed(self.runtime_id)

    def _abandon(self, kind: AbandonKind, now: float, *, skip: tuple[InputId, ...] = ()) -> list[InputId]:
        abandoned: list[InputId] = []
        for input_id in self.ledger.active_ids():
            if input_id in skip:
                continue
            record = self.ledger.records[input_id]
            if record.phase is S.QUEUED:
                self.ledger.remove_from_lane(record)
            record.terminal = Abandoned(AbandonReason(kind))
            record.move(S.ABANDONED, f"abandoned: {kind.value}", now)
            self.ledger.mark(input_id)
            abandoned.append(input_id)
        return abandoned

    def retire(self, now: float) -> tuple[RetireReport, Effects]:
        self._refuse_destroyed()
        if self.phase is RuntimeState.RETIRED:  # a no-op: nothing changes, nothing is written
            return RetireReport(0, len(self.ledger.queue) + len(self.ledger.steer)), Effects(noop=True)
        if self.phase not in (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RUNNING):
            raise InvalidRuntimeTransition(self.phase.value, "retire")
        self.phase = RuntimeState.RETIRED
        effects = Effects()
        if not self.loop_attached:
            skip = self.current_run.input_ids if self.current_run else ()
            abandoned = self._abandon(AbandonKind.RETIRED, now, skip=skip)
            effects.changed = abandoned
            effects.resolutions = [(i, RuntimeTerminated("retired without runtime loop")) for i in abandoned]
            return RetireReport(len(abandoned), 0), effects
        return RetireReport(0, len(self.ledger.queue) + len(self.ledger.steer)), effects

    def reset(self, now: float) -> tuple[ResetReport, Effects]:
        self._refuse_destroyed()
        if self.current_run is not None or self.phase in (RuntimeState.RUNNING, RuntimeState.STOPPED):
            raise InvalidRuntimeTransition(self.phase.value, "reset")
        abandoned = self._abandon(AbandonKind.RESET, now)
        self.phase = self.idle_phase()
        return ResetReport(len(abandoned)), Effects(changed=abandoned, terminate_all="runtime reset")

    def recycle(self) -> tuple[RecycleReport, Effects]:
        self._refuse_destroyed()
        allowed = (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RETIRED)
        if self.current_run is not None or self.phase not in allowed:
            raise InvalidRuntimeTransition(self.phase.value, "recycle")
        self.phase = self.idle_phase()
        return RecycleReport(len(self.ledger.queue) + len(self.ledger.steer)), Effects()

    def stop(self, now: float) -> tuple[StopReport, Effects]:
        self._refuse_destroyed()
        if self.phase is RuntimeState.STOPPED:
            raise InvalidRuntimeTransition(self.phase.value, "stop")
        abandoned = self._abandon(AbandonKind.STOPPED, now)
        self.current_run = None
        self.pre_run_phase = None
        self.phase = RuntimeState.STOPPED
        return StopReport(len(abandoned)), Effects(changed=abandoned, terminate_all="runtime stopped")

    def destroy(self, now: float) -> tuple[DestroyReport, Effects]:
        self._refuse_destroyed()
        abandoned = self._abandon(AbandonKind.DESTROYED, now)
        self.current_run = None
        self.pre_run_phase = None
        self.phase = RuntimeState.DESTROYED
        return DestroyReport(len(abandoned)), Effects(changed=abandoned, terminate_all="runtime destroyed")


def _entry(frm: InputLifecycleState | None, to: InputLifecycleState, reason: str, now: float) -> HistoryEntry:
    return HistoryEntry(frm, to, reason, now)
