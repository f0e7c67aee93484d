"""The in-memory state of one session (runtime phase, current run, registration phase, input
ledger), the reads the rules share, and :meth:`CoreState.apply`, the only way a plan changes it.

The rule methods live in the modules named as the model's modules (``admission``,
``run_loop``, ``control``, ``registration``) and are gathered in
:class:`~meerkat_runtime.session.core.session_core.SessionCore`.
"""

from __future__ import annotations

import contextlib

from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.ledger import InputLedger
from meerkat_runtime.session.core.plan import LaneEdit, Plan, Write
from meerkat_runtime.vocab.inputs import MAX_STAGE_ATTEMPTS
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_APPEND = LaneEdit.APPEND


class CoreState:
    """Phase, current run, registration phase and ledger of one session."""

    def __init__(self, runtime_id: str, phase: RuntimeState = RuntimeState.IDLE) -> None:
        self.runtime_id = runtime_id
        self.phase = phase
        self.pre_run_phase: RuntimeState | None = None
        self.current_run: CurrentRun | None = None
        self.registration = RegistrationPhase.QUEUING
        self.ledger = InputLedger()
        self.max_attempts = MAX_STAGE_ATTEMPTS
        """The retry policy's attempt limit: a run failing an input's ``max_attempts``-th attempt
        abandons it (``executor_failed_exhausted``); the model's ``max_attempts`` bound."""

    # --- shared reads -----------------------------------------------------------------------

    @property
    def loop_attached(self) -> bool:
        """Whether a run loop is attached (registration Active)."""
        return self.registration is RegistrationPhase.ACTIVE

    def idle_phase(self) -> RuntimeState:
        """Attached when a loop is attached, Idle otherwise."""
        return RuntimeState.ATTACHED if self.loop_attached else RuntimeState.IDLE

    def queued_count(self) -> int:
        return len(self.ledger.queue) + len(self.ledger.steer)

    def draft(self, rule: str, write: Write | None = None) -> Plan:
        """An empty plan for ``rule``: nothing changes yet; the rule method fills it in."""
        return Plan(
            rule=rule,
            phase=self.phase,
            pre_run_phase=self.pre_run_phase,
            current_run=self.current_run,
            registration=self.registration,
            next_admission_seq=self.ledger.next_admission_seq,
            write=write,
        )

    # --- the one mutation -----------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        """Install ``plan``. Rows of a plan that writes nothing are marked dirty (they may now
        differ from the store); a written plan's rows are settled by the persistence layer."""
        if plan.ledger is not None:
            self.ledger = plan.ledger
        ledger = self.ledger
        for edit, lane_name, input_id in plan.lane_edits:
            lane = ledger.lane(lane_name)
            if edit is _APPEND:
                lane.append(input_id)
            elif edit is LaneEdit.PREPEND:
                lane.appendleft(input_id)
            else:
                with contextlib.suppress(ValueError):
                    lane.remove(input_id)
        ledger.records.update(plan.records)
        for record in plan.records.values():
            if record.phase.is_terminal:
                ledger.note_finished(record)
        if plan.keys:
            ledger.keys.update(plan.keys)
        ledger.next_admission_seq = plan.next_admission_seq
        if plan.write is None:
            ledger.dirty.update(plan.records)
        self.phase = plan.phase
        self.pre_run_phase = plan.pre_run_phase
        self.current_run = plan.current_run
        self.registration = plan.registration

    def reconcile(self, recovered: CoreState) -> None:
        """``reconcile``: replace this session's state with ``recovered`` (the store's, read back
        by recovery in place after a write whose outcome was unknown). The phase, rows, lanes,
        idempotency keys and admission counter become the store's; a run in flight is dropped
        (its inputs are what the store holds); an attached loop stays attached (phase Idle shown
        as Attached) unless the store says Stopped or Destroyed."""
        recovered.max_attempts = self.max_attempts
        keep_loop = self.loop_attached and recovered.phase not in (RuntimeState.STOPPED, RuntimeState.DESTROYED)
        self.ledger = recovered.ledger
        self.current_run = None
        self.pre_run_phase = None
        self.phase = recovered.phase
        self.registration = RegistrationPhase.ACTIVE if keep_loop else RegistrationPhase.QUEUING
        if keep_loop and self.phase is RuntimeState.IDLE:
            self.phase = RuntimeState.ATTACHED

    def detach_loop(self) -> None:
        """Forget the loop outside any rule (a dead or failed loop, unregistration): registration
        Queuing, Attached back to Idle. Writes nothing: Attached is stored as Idle anyway."""
        self.registration = RegistrationPhase.QUEUING
        if self.phase is RuntimeState.ATTACHED:
            self.phase = RuntimeState.IDLE
        if self.pre_run_phase is RuntimeState.ATTACHED:
            self.pre_run_phase = RuntimeState.IDLE
