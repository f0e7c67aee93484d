"""Control rules: ``retire`` (``_without_loop``, ``_noop``), ``reset`` (``_with_loop``),
``recycle`` (``_with_loop``), ``stop`` (``_with_loop``), ``destroy`` (``_with_loop``),
``recover`` (``_noop``) (docs/semantics.md, "Control"; the model's ``session/control.py``).

Each returns its report and a plan that writes the new lifecycle record and every row that
differs from the store in one commit (:class:`LifecycleWrite`); ``retire_noop`` writes nothing.
Errors: ``RuntimeDestroyed`` (phase Destroyed), ``InvalidRuntimeTransition`` (Stopped, or a run
in flight for reset/recycle). "Idle" after an operation is Attached when a loop is attached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from meerkat_runtime.session.completion import CompletedWithoutResult, RuntimeTerminated
from meerkat_runtime.session.core.ledger import InputLedger, InputRecord
from meerkat_runtime.session.core.plan import LifecycleWrite, Plan
from meerkat_runtime.session.core.state import CoreState
from meerkat_runtime.session.core.terminal import TERMINATION_REASONS, abandoned_outcome, completion_of
from meerkat_runtime.session.reports import (
    DestroyReport,
    RecoveryReport,
    RecycleReport,
    ResetReport,
    RetireReport,
    StopReport,
)
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, RuntimeDestroyed
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import Abandoned, AbandonKind, AbandonReason, InputLifecycleState
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

if TYPE_CHECKING:
    from meerkat_runtime.session.core.recovery import RecoveryResult

S = InputLifecycleState
R = TypeVar("R", StopReport, DestroyReport)

NOT_STORED = "the input is not in the store (found when the session recovered from it)"
_HALTED = (RuntimeState.STOPPED, RuntimeState.DESTROYED)


class ControlRules(CoreState):
    """The control rules of :class:`~meerkat_runtime.session.core.session_core.SessionCore`."""

    def retire(self, now: float) -> tuple[RetireReport, Plan]:
        """Idle/Attached/Running → Retired. With a loop the queue keeps draining; without one
        every non-terminal input not in the run is Abandoned{retired} (``retire_without_loop``)."""
        self._refuse_destroyed()
        if self.phase is RuntimeState.RETIRED:  # nothing changes, nothing is written
            return RetireReport(0, self.queued_count()), self.draft("retire_noop")
        if self.phase not in (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RUNNING):
            raise InvalidRuntimeTransition(self.phase.value, "retire")
        if self.loop_attached:
            plan = self.draft("retire", LifecycleWrite())
            plan.phase = RuntimeState.RETIRED
            return RetireReport(0, self.queued_count()), plan
        plan = self.draft("retire_without_loop", LifecycleWrite())
        plan.phase = RuntimeState.RETIRED
        skip = self.current_run.input_ids if self.current_run else ()
        abandoned = self._abandon(plan, AbandonKind.RETIRED, now, skip=skip)
        for input_id in abandoned:
            plan.resolve(input_id, RuntimeTerminated(TERMINATION_REASONS[AbandonKind.RETIRED]))
        return RetireReport(len(abandoned), 0), plan

    def reset(self, now: float) -> tuple[ResetReport, Plan]:
        """Every non-terminal input Abandoned{reset}; Idle. Not with a run in flight."""
        self._refuse_destroyed()
        if self.current_run is not None or self.phase in (RuntimeState.RUNNING, RuntimeState.STOPPED):
            raise InvalidRuntimeTransition(self.phase.value, "reset")
        plan = self.draft("reset_with_loop" if self.loop_attached else "reset", LifecycleWrite())
        abandoned = self._abandon(plan, AbandonKind.RESET, now)
        plan.phase = self.idle_phase()
        plan.terminate_all = "runtime reset"
        return ResetReport(len(abandoned)), plan

    def recycle(self, now: float) -> tuple[RecycleReport, Plan]:
        """Idle/Attached/Retired with no run in flight → Idle; queued work is kept."""
        self._refuse_destroyed()
        allowed = (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RETIRED)
        if self.current_run is not None or self.phase not in allowed:
            raise InvalidRuntimeTransition(self.phase.value, "recycle")
        plan = self.draft("recycle_with_loop" if self.loop_attached else "recycle", LifecycleWrite())
        plan.phase = self.idle_phase()
        return RecycleReport(self.queued_count()), plan

    def stop(self, now: float) -> tuple[StopReport, Plan]:
        """Any phase but Stopped/Destroyed → Stopped; every non-terminal input
        Abandoned{stopped}; an attached loop is detached (``stop_with_loop``)."""
        self._refuse_destroyed()
        if self.phase is RuntimeState.STOPPED:
            raise InvalidRuntimeTransition(self.phase.value, "stop")
        return self._halt("stop", AbandonKind.STOPPED, RuntimeState.STOPPED, now, StopReport)

    def destroy(self, now: float) -> tuple[DestroyReport, Plan]:
        """Any phase but Destroyed → Destroyed; every non-terminal input Abandoned{destroyed};
        an attached loop is detached (``destroy_with_loop``)."""
        self._refuse_destroyed()
        return self._halt("destroy", AbandonKind.DESTROYED, RuntimeState.DESTROYED, now, DestroyReport)

    def check_recover(self) -> None:
        """Why ``recover`` is refused, if it is: ``RuntimeDestroyed`` (Destroyed),
        ``InvalidRuntimeTransition`` (a run in flight). Idle, Attached, Retired, Stopped pass."""
        self._refuse_destroyed()
        if self.current_run is not None or self.phase is RuntimeState.RUNNING:
            raise InvalidRuntimeTransition(self.phase.value, "recover")

    def recover(self, stored: RecoveryResult | None, record_current: bool, now: float) -> tuple[RecoveryReport, Plan]:
        """``recover``: memory := the store's rows recovered in place (``stored``: recovery
        run with ``in_place=True``, keeping the ephemeral inputs memory holds; ``None`` for an
        ephemeral session, whose memory is the only copy). The phase is the stored one (Idle
        shown as Attached with a loop); a loop stays attached unless the store says Stopped or
        Destroyed (then every waiter is terminated and the registration is Queuing). The plan
        writes the lifecycle record and the rows recovery normalised in one commit, and
        resolves the waiters of inputs the store shows finished or no longer holds.
        ``recover_noop`` (nothing written, nothing changed) when nothing needs writing back (no
        row normalised; ``record_current``: the stored lifecycle record is the one memory
        would write) and memory already is what the store recovers to."""
        self.check_recover()
        if stored is None:
            return RecoveryReport(len(self.ledger.active_ids()), 0, 0, 0), self.draft("recover_noop")
        ledger = stored.core.ledger
        phase = stored.core.phase
        halted = phase in _HALTED
        keep_loop = self.loop_attached and not halted
        if keep_loop and phase is RuntimeState.IDLE:
            phase = RuntimeState.ATTACHED
        registration = RegistrationPhase.QUEUING if self.loop_attached and not keep_loop else self.registration
        ledger.next_admission_seq = max(ledger.next_admission_seq, self.ledger.next_admission_seq)
        same = (
            not ledger.dirty
            and record_current
            and phase is self.phase
            and registration is self.registration
            and self._same_ledger(ledger)
        )
        recovered = len(ledger.active_ids())
        if same:
            return RecoveryReport(recovered, 0, 0, 0), self.draft("recover_noop")
        plan = self.draft("recover", LifecycleWrite())
        plan.ledger = ledger
        plan.phase = phase
        plan.registration = registration
        for input_id in ledger.dirty:
            plan.records[input_id] = ledger.records[input_id]
        for input_id in self.ledger.active_ids():
            record = ledger.records.get(input_id)
            if record is None:
                plan.resolve(input_id, RuntimeTerminated(NOT_STORED))
            elif record.phase.is_terminal:
                plan.resolve(input_id, completion_of(record) or CompletedWithoutResult())
        if halted:
            plan.terminate_all = f"runtime {phase.value}"
        return RecoveryReport(recovered, stored.requeued, stored.consumed, len(ledger.dirty)), plan

    # --- helpers --------------------------------------------------------------------------

    def _same_ledger(self, ledger: InputLedger) -> bool:
        """Whether ``ledger`` holds what memory holds, as the lifecycle sees it: the same active inputs
        in the same phases, attempts, lanes, admission order and keys, the same finished inputs
        listed, and the same terminal outcomes where both hold a finished input's record."""
        mine = self.ledger
        if mine.keys != ledger.keys or mine.finished.keys() != ledger.finished.keys():
            return False
        if list(mine.queue) != list(ledger.queue) or list(mine.steer) != list(ledger.steer):
            return False
        # finished inputs compare by listing: whether a record is resident is not lifecycle state
        theirs = ledger.records
        if {i for i, r in mine.records.items() if not r.phase.is_terminal} != set(ledger.active_ids()):
            return False
        return all(_lifecycle_view(r) == _lifecycle_view(theirs[i]) for i, r in mine.records.items() if i in theirs)

    def _refuse_destroyed(self) -> None:
        if self.phase is RuntimeState.DESTROYED:
            raise RuntimeDestroyed(self.runtime_id)

    def _halt(
        self,
        rule: str,
        kind: AbandonKind,
        phase: RuntimeState,
        now: float,
        report: Callable[[int], R],
    ) -> tuple[R, Plan]:
        with_loop = self.loop_attached
        plan = self.draft(f"{rule}_with_loop" if with_loop else rule, LifecycleWrite())
        abandoned = self._abandon(plan, kind, now)
        plan.current_run = None
        plan.pre_run_phase = None
        plan.phase = phase
        plan.registration = RegistrationPhase.QUEUING
        plan.terminate_all = f"runtime {phase.value}"
        return report(len(abandoned)), plan

    def _abandon(self, plan: Plan, kind: AbandonKind, now: float, *, skip: tuple[InputId, ...] = ()) -> list[InputId]:
        """Every non-terminal input not in ``skip`` Abandoned{kind} (in admission order) and out
        of its lane."""
        abandoned: list[InputId] = []
        for input_id in self.ledger.active_ids():
            if input_id in skip:
                continue
            current = self.ledger.records[input_id]
            if current.phase is S.QUEUED:
                plan.remove_from_lane(current)
            record = plan.put(current.copy())
            record.terminal = Abandoned(AbandonReason(kind))
            record.outcome = abandoned_outcome(kind)
            record.move(S.ABANDONED, f"abandoned: {kind.value}", now)
            abandoned.append(input_id)
        return abandoned


def _lifecycle_view(record: InputRecord) -> tuple[object, ...]:
    return (record.phase, record.attempts, record.lane, record.admission_seq, record.terminal)
