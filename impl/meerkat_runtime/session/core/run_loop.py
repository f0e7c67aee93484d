"""Run rules: ``start_run`` and every way a run ends — ``executor_succeeded``,
``executor_failed`` (``_exhausted`` at the policy's last attempt, 3 by default), ``interrupt``,
``boundary_commit_failed`` (docs/semantics.md, "Run loop"; the model's ``session/run_loop.py``).

A run stages one input (Queued → Staged, attempt + 1) and sets the phase Running, remembering
the pre-run phase. When it ends the phase returns to the pre-run phase (Attached or Idle, as a
loop is attached then), or stays Retired when the runtime was retired in flight; the rule's name
then ends in ``_retired``, or in ``_without_loop`` when it ends Idle (a run
``accept_input_and_run`` started, no loop attached since), as in the model.
``terminal_snapshot_failed`` changes nothing here: the shell unregisters the session.
"""

from __future__ import annotations

from meerkat_runtime.session.completion import Abandoned as AbandonedOutcome
from meerkat_runtime.session.completion import Cancelled as CancelledOutcome
from meerkat_runtime.session.completion import Completed, CompletedWithoutResult, CompletionOutcome
from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.plan import BoundaryWrite, LifecycleWrite, Plan
from meerkat_runtime.session.core.state import CoreState
from meerkat_runtime.session.executor import CoreApplyOutput, ReceiptDraft
from meerkat_runtime.store.records import BoundaryReceipt
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import (
    Abandoned,
    AbandonKind,
    AbandonReason,
    Consumed,
    InputLifecycleState,
)
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

S = InputLifecycleState

BOUNDARY_SEQUENCE = 0
"""Each run commits one boundary; the runtime mints its sequence (executors cannot)."""


def boundary_receipt(run: CurrentRun, draft: ReceiptDraft) -> BoundaryReceipt:
    """The receipt a successful ``run`` commits with its boundary, from the executor's draft."""
    return BoundaryReceipt(
        run_id=run.run_id,
        sequence=BOUNDARY_SEQUENCE,
        boundary=draft.boundary,
        contributing_input_ids=tuple(run.input_ids),
        conversation_digest=draft.conversation_digest,
        message_count=draft.message_count,
    )


class RunLoopRules(CoreState):
    """The run rules of :class:`~meerkat_runtime.session.core.session_core.SessionCore`."""

    def can_start_run(self) -> bool:
        return self.current_run is None and self.phase.can_process_queue

    def next_candidate(self) -> InputId | None:
        """The input the next run takes: the steer lane's head, else the queue lane's head."""
        if self.ledger.steer:
            return self.ledger.steer[0]
        if self.ledger.queue:
            return self.ledger.queue[0]
        return None

    def start_run(self, run_id: RunId, input_id: InputId, now: float, *, rule: str = "start_run") -> Plan:
        """Stage ``input_id`` (must be Queued) as the single contributor of a new run. Writes
        nothing: the staged row is only marked dirty. ``rule``: ``accept_and_run`` for the run
        ``accept_input_and_run`` starts right after its accept."""
        if not self.can_start_run():
            raise InvalidRuntimeTransition(self.phase.value, "start_run")
        current = self.ledger.records[input_id]
        if current.phase is not S.QUEUED:
            raise InvalidRuntimeTransition(self.phase.value, f"stage input {input_id} ({current.phase.value})")
        plan = self.draft(rule)
        plan.remove_from_lane(current)
        record = plan.put(current.copy())
        record.attempts += 1
        record.last_run_id = run_id
        record.last_boundary_sequence = None
        record.move(S.STAGED, f"staged for run {run_id}", now)
        plan.current_run = CurrentRun(run_id, (input_id,), (current,))
        plan.pre_run_phase = self.phase
        plan.phase = RuntimeState.RUNNING
        return plan

    def executor_succeeded(self, run_id: RunId, output: CoreApplyOutput, now: float) -> Plan:
        """Applied → AppliedPendingConsumption → Consumed for every contributor, written with the
        boundary receipt in one ``atomic_apply``."""
        run = self._require_run(run_id)
        receipt = boundary_receipt(run, output.receipt)
        plan = self.draft("executor_succeeded", BoundaryWrite(receipt, output.session_snapshot))
        result = output.run_result
        outcome: CompletionOutcome = Completed(result) if result is not None else CompletedWithoutResult()
        for input_id in run.input_ids:
            current = self.ledger.records[input_id]
            if current.phase is not S.STAGED:
                continue
            record = plan.put(current.copy())
            record.move(S.APPLIED, f"applied by run {run_id}", now)
            record.last_boundary_sequence = BOUNDARY_SEQUENCE
            record.move(S.APPLIED_PENDING_CONSUMPTION, f"boundary {BOUNDARY_SEQUENCE} committed", now)
            record.terminal = Consumed()
            record.outcome = outcome
            record.move(S.CONSUMED, "consumed", now)
            plan.resolve(input_id, outcome)
        self._end_run(plan)
        return plan

    def executor_failed(self, run_id: RunId, now: float, *, retryable: bool = True) -> Plan:
        """Contributors go back to the end of their lane (``executor_failed``), or are abandoned
        after their ``max_attempts``-th failed attempt (``executor_failed_exhausted``); one
        lifecycle commit. A failure that is not ``retryable`` exhausts the attempts at once: the
        input is abandoned as if it had failed its last attempt (attempts set to the limit)."""
        run = self._require_run(run_id)
        plan = self.draft("executor_failed", LifecycleWrite())
        for input_id in run.input_ids:
            current = self.ledger.records[input_id]
            if current.phase is not S.STAGED:
                continue
            record = plan.put(current.copy())
            if not retryable:
                record.attempts = max(record.attempts, self.max_attempts)
            if record.attempts >= self.max_attempts:
                plan.rule = "executor_failed_exhausted"
                record.terminal = Abandoned(AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, record.attempts))
                record.move(S.ABANDONED, f"max attempts exhausted ({record.attempts})", now)
                record.outcome = AbandonedOutcome("max_attempts_exhausted")
                plan.resolve(input_id, record.outcome)
            else:
                record.admission_seq = plan.take_admission_seq()
                record.last_run_id = None
                record.move(S.QUEUED, f"run {run_id} failed; requeued", now)
                plan.append_to_lane(record)
        self._end_run(plan)
        return plan

    def interrupt(self, now: float, run_id: RunId | None = None) -> Plan:
        """Cancel the run in flight (``run_id`` when given must be it): its contributors are
        Abandoned(cancelled), their waiters get ``cancelled``; one lifecycle commit. Without a
        run: ``interrupt_noop``, nothing changes or is written."""
        if self.current_run is None and run_id is None:
            return self.draft("interrupt_noop")
        run = self._require_run(run_id if run_id is not None else self._current_run_id())
        plan = self.draft("interrupt", LifecycleWrite())
        for input_id in run.input_ids:
            current = self.ledger.records[input_id]
            if current.phase.is_terminal:
                continue
            record = plan.put(current.copy())
            record.terminal = Abandoned(AbandonReason(AbandonKind.CANCELLED))
            record.move(S.ABANDONED, f"run {run.run_id} cancelled", now)
            record.outcome = CancelledOutcome()
            plan.resolve(input_id, record.outcome)
        self._end_run(plan)
        return plan

    def boundary_commit_failed(self, run_id: RunId) -> Plan:
        """The boundary could not be committed and nothing was written: the contributors return
        to their form before the run — Queued at the head of their lane, the attempt not
        counted — the loop is detached (registration Queuing) and the runtime goes to Idle
        (Retired stays Retired). Writes nothing; the restored rows are marked dirty: if a control
        commit during the run wrote them as Staged, the next commit rewrites them."""
        run = self._require_run(run_id)
        post = self._post_run_phase()
        plan = self.draft(
            "boundary_commit_failed_retired" if post is RuntimeState.RETIRED else "boundary_commit_failed"
        )
        for before in reversed(run.staged_from):
            current = self.ledger.records[before.input_id]
            if current.phase.is_terminal or current.phase is S.QUEUED:
                continue
            plan.put(before.copy())
            plan.prepend_to_lane(before)
        plan.current_run = None
        plan.pre_run_phase = None
        plan.phase = RuntimeState.RETIRED if post is RuntimeState.RETIRED else RuntimeState.IDLE
        plan.registration = RegistrationPhase.QUEUING
        return plan

    # --- helpers --------------------------------------------------------------------------

    def _current_run_id(self) -> RunId:
        run = self.current_run
        if run is None:  # pragma: no cover - guarded by the caller
            raise InvalidRuntimeTransition(self.phase.value, "end a run (no run in flight)")
        return run.run_id

    def _require_run(self, run_id: RunId) -> CurrentRun:
        run = self.current_run
        if run is None or run.run_id != run_id:
            raise InvalidRuntimeTransition(self.phase.value, f"finish run {run_id} (not the current run)")
        return run

    def _post_run_phase(self) -> RuntimeState:
        """The phase the run leaves behind before the loop is considered: the pre-run phase,
        or the current phase when the runtime was retired in flight."""
        if self.phase is RuntimeState.RUNNING:
            return self.pre_run_phase or RuntimeState.IDLE
        return self.phase

    def _end_run(self, plan: Plan) -> None:
        """The run is over: no current run, the phase back to its pre-run phase (Idle or
        Attached as the loop is), Retired kept; ``_retired`` appended to the rule's name when
        the runtime ends Retired, ``_without_loop`` when it ends Idle."""
        post = self._post_run_phase()
        plan.current_run = None
        plan.pre_run_phase = None
        if self.phase is RuntimeState.RUNNING:
            plan.phase = self.idle_phase() if post in (RuntimeState.IDLE, RuntimeState.ATTACHED) else post
        if plan.phase is RuntimeState.RETIRED:
            plan.rule = f"{plan.rule}_retired"
        elif plan.phase is RuntimeState.IDLE:
            plan.rule = f"{plan.rule}_without_loop"
