"""A checkpoint of a session's core taken just before a plan is applied, so the plan can be
undone in memory (the composition dispatcher's ``restore`` policy,
:mod:`meerkat_runtime.session.dispatch`).

It keeps what :meth:`~meerkat_runtime.session.core.state.CoreState.apply` changes: phase,
pre-run phase, current run, registration, the admission counter, the plan's records as they
were (absent ones too), both lanes, the dirty set and the idempotency keys the plan adds.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass

from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.ledger import InputLedger, InputRecord
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.state import CoreState
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState


@dataclass(frozen=True, slots=True)
class CoreCheckpoint:
    phase: RuntimeState
    pre_run_phase: RuntimeState | None
    current_run: CurrentRun | None
    registration: RegistrationPhase
    next_admission_seq: int
    records: dict[InputId, InputRecord | None]
    queue: tuple[InputId, ...]
    steer: tuple[InputId, ...]
    dirty: frozenset[InputId]
    added_keys: tuple[str, ...]
    ledger: InputLedger | None = None
    """The ledger a plan that replaces it (``recover``) replaced."""

    @staticmethod
    def take(core: CoreState, plan: Plan) -> CoreCheckpoint:
        ledger = core.ledger
        return CoreCheckpoint(
            phase=core.phase,
            pre_run_phase=core.pre_run_phase,
            current_run=core.current_run,
            registration=core.registration,
            next_admission_seq=ledger.next_admission_seq,
            records={input_id: ledger.records.get(input_id) for input_id in plan.records},
            queue=tuple(ledger.queue),
            steer=tuple(ledger.steer),
            dirty=frozenset(ledger.dirty),
            added_keys=tuple(key for key in plan.keys if key not in ledger.keys),
            ledger=ledger if plan.ledger is not None else None,
        )

    def restore(self, core: CoreState) -> set[InputId]:
        """Put ``core`` back as it was; returns the ids whose rows changed back (to rewrite)."""
        if self.ledger is not None:
            core.ledger = self.ledger
        ledger = core.ledger
        for input_id, record in self.records.items():
            if record is None:
                ledger.records.pop(input_id, None)
            else:
                ledger.records[input_id] = record
            if (record is None or not record.phase.is_terminal) and ledger.finished.pop(input_id, None) is not None:
                with contextlib.suppress(ValueError):
                    ledger.resident.remove(input_id)
        for key in self.added_keys:
            ledger.keys.pop(key, None)
        ledger.queue = deque(self.queue)
        ledger.steer = deque(self.steer)
        ledger.next_admission_seq = self.next_admission_seq
        ledger.dirty = set(self.dirty)
        core.phase = self.phase
        core.pre_run_phase = self.pre_run_phase
        core.current_run = self.current_run
        core.registration = self.registration
        return {input_id for input_id, record in self.records.items() if record is not None}
