"""The plan of one session transition: everything it will change, computed before anything does.

A rule method of :class:`~meerkat_runtime.session.core.session_core.SessionCore` (named as the
model names the rule) reads the core and returns a :class:`Plan`; it never changes the core. A
plan holds:

* ``rule``: the model's name of the transition that fires (``executor_failed_exhausted``,
  ``stop_with_loop``, ...): what a post-commit event would be called;
* the new versions of the input rows it changes (copies; the ledger's records are untouched),
  the lane edits, the idempotency keys it adds, the next admission sequence number;
* the phase, pre-run phase, current run and registration phase afterwards;
* the waiters to resolve once it took effect (``resolutions``, ``terminate_all``);
* ``write``: what must be durable before it takes effect — :class:`LifecycleWrite`,
  :class:`BoundaryWrite`, :class:`RowsWrite` — or ``None`` for a step that writes nothing
  (staging, a failed boundary commit, a no-op, loop attachment).

:meth:`~meerkat_runtime.session.core.state.CoreState.apply` installs a plan. The shell installs
plans only through :mod:`meerkat_runtime.session.commit` (persist, then apply, then publish).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from meerkat_runtime.session.completion import Abandoned, CompletionOutcome, RunFailure
from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.ledger import InputLedger, InputRecord, Lane
from meerkat_runtime.store.records import BoundaryReceipt
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState


def stored_phase(phase: RuntimeState, pre_run_phase: RuntimeState | None) -> RuntimeState:
    """The phase a lifecycle record stores: a run lives only in memory, so Running is stored as
    its pre-run phase, and Attached (a live loop) as Idle."""
    if phase is RuntimeState.RUNNING:
        phase = pre_run_phase or RuntimeState.IDLE
    return phase.durable_form


class LaneEdit(enum.Enum):
    REMOVE = "remove"
    APPEND = "append"
    PREPEND = "prepend"


# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_APPEND = LaneEdit.APPEND


@dataclass(frozen=True, slots=True)
class LifecycleWrite:
    """One ``commit_machine_lifecycle``: the lifecycle record (the plan's durable phase) and
    every row that differs from the store (the plan's rows and the ledger's dirty rows)."""


@dataclass(frozen=True, slots=True)
class BoundaryWrite:
    """One ``atomic_apply``: the boundary receipt, the session snapshot and every row that
    differs from the store (the contributors among them)."""

    receipt: BoundaryReceipt
    session_snapshot: bytes | None


@dataclass(frozen=True, slots=True)
class RowsWrite:
    """The plan's own rows only (an accept): one row is one ``persist_input_state``; two rows
    (the new input and the one it supersedes) are one ``commit_machine_lifecycle``. Other dirty
    rows wait for the next commit."""


Write = LifecycleWrite | BoundaryWrite | RowsWrite


@dataclass(slots=True)
class Plan:
    """What one transition changes (see the module docstring). Built by a rule method through
    the helpers below, then handed to ``commit``; never changed after that."""

    rule: str
    phase: RuntimeState
    pre_run_phase: RuntimeState | None
    current_run: CurrentRun | None
    registration: RegistrationPhase
    next_admission_seq: int
    write: Write | None = None
    records: dict[InputId, InputRecord] = field(default_factory=dict)
    lane_edits: list[tuple[LaneEdit, Lane, InputId]] = field(default_factory=list)
    keys: dict[str, InputId] = field(default_factory=dict)
    resolutions: list[tuple[InputId, CompletionOutcome]] = field(default_factory=list)
    terminate_all: str | None = None
    """When set, every waiter still pending afterwards is resolved ``runtime_terminated`` with
    this reason."""
    folded: bool = False
    """Its event is folded into the next plan's: the accept of ``accept_input_and_run``, whose
    run start is the model's one ``accept_and_run`` transition (and event)."""
    retryable: bool = True
    """For a failed run (:meth:`note_failure`): whether its error was one the retry policy
    retries."""
    ledger: InputLedger | None = None
    """When set (``recover``), the ledger that replaces the session's before ``records`` and
    ``lane_edits`` apply: the store's rows recovered in place; its dirty rows are what the
    write-back covers."""

    def durable_phase(self) -> RuntimeState:
        """The phase the lifecycle record stores after this plan (:func:`stored_phase`)."""
        return stored_phase(self.phase, self.pre_run_phase)

    # --- building a plan (rule methods only) -------------------------------------------------

    def put(self, record: InputRecord) -> InputRecord:
        """Record ``record`` (a copy or a new record, never a ledger record) as a row it changes."""
        self.records[record.input_id] = record
        return record

    def take_admission_seq(self) -> int:
        seq = self.next_admission_seq
        self.next_admission_seq += 1
        return seq

    def remove_from_lane(self, record: InputRecord) -> None:
        self.lane_edits.append((LaneEdit.REMOVE, record.lane, record.input_id))

    def append_to_lane(self, record: InputRecord) -> None:
        self.lane_edits.append((_APPEND, record.lane, record.input_id))

    def prepend_to_lane(self, record: InputRecord) -> None:
        self.lane_edits.append((LaneEdit.PREPEND, record.lane, record.input_id))

    def resolve(self, input_id: InputId, outcome: CompletionOutcome) -> None:
        self.resolutions.append((input_id, outcome))

    def note_failure(self, failure: RunFailure, *, retryable: bool = True) -> None:
        """Record the executor failure that ended a run (``executor_failed``): on every row of
        the plan (``last_error``), in the reason of the phase change it caused (the input's
        history: ``... : <type>: <message>``) and on the outcome of a row abandoned for
        exhausted attempts."""
        self.retryable = retryable
        note = f"{failure.error_type}: {failure.message}" + ("" if retryable else " (not retryable)")
        for record in self.records.values():
            record.last_error = failure
            if record.history:
                last = record.history[-1]
                record.history[-1] = replace(last, reason=f"{last.reason}: {note}")
            if isinstance(record.outcome, Abandoned):
                record.outcome = replace(record.outcome, error=failure)
        self.resolutions = [
            (input_id, replace(outcome, error=failure) if isinstance(outcome, Abandoned) else outcome)
            for input_id, outcome in self.resolutions
        ]
