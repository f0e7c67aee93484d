"""Read-only, plain-data views of a session and its inputs (what observers and the
conformance harness compare)."""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.session.completion import CompletionOutcome, RunFailure
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import Durability, InputLifecycleState, InputTerminalOutcome
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState


@dataclass(frozen=True, slots=True)
class InputStateView:
    """One input's state. ``lane`` is where it waits (or waited) — ``"queue"`` or ``"steer"``."""

    input_id: InputId
    kind: str
    current_state: InputLifecycleState
    lane: str
    attempts: int
    terminal_outcome: InputTerminalOutcome | None
    last_run_id: RunId | None
    last_boundary_sequence: int | None
    durability: Durability
    idempotency_key: str | None
    admission_seq: int
    history: tuple[HistoryEntry, ...]
    outcome: CompletionOutcome | None = None
    """What the input's waiters got, once it finished (stored with its row)."""
    last_error: RunFailure | None = None
    """The failure of its last failed run, if any (stored with its row)."""

    @property
    def phase(self) -> InputLifecycleState:
        return self.current_state


@dataclass(frozen=True, slots=True)
class SessionView:
    runtime_state: RuntimeState
    registration_phase: RegistrationPhase
    current_run_id: RunId | None
    current_run_inputs: tuple[InputId, ...]
    pre_run_phase: RuntimeState | None
    queue: tuple[InputId, ...]
    steer: tuple[InputId, ...]
    inputs: tuple[InputStateView, ...]


def input_view(record: InputRecord) -> InputStateView:
    header = record.input.header
    return InputStateView(
        input_id=record.input_id,
        kind=record.input.kind,
        current_state=record.phase,
        lane=record.lane.value,
        attempts=record.attempts,
        terminal_outcome=record.terminal,
        last_run_id=record.last_run_id,
        last_boundary_sequence=record.last_boundary_sequence,
        durability=header.durability,
        idempotency_key=header.idempotency_key,
        admission_seq=record.admission_seq,
        history=tuple(record.history),
        outcome=record.outcome,
        last_error=record.last_error,
    )


def session_view(session: RuntimeSession, records: list[InputRecord] | None = None) -> SessionView:
    """The session as plain data; ``records`` are the inputs to show (default: those in memory)."""
    core = session.core
    run = core.current_run
    if records is None:
        records = sorted(core.ledger.records.values(), key=lambda r: r.admission_seq)
    return SessionView(
        runtime_state=core.phase,
        registration_phase=session.registration,
        current_run_id=run.run_id if run else None,
        current_run_inputs=run.input_ids if run else (),
        pre_run_phase=core.pre_run_phase,
        queue=tuple(core.ledger.queue),
        steer=tuple(core.ledger.steer),
        inputs=tuple(input_view(r) for r in records),
    )
