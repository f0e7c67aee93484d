"""The input ledger of one session: a record per input, the two lanes and the idempotency index.

The ledger holds state and enforces nothing beyond bookkeeping; the phase rules live in the
rule modules of :mod:`meerkat_runtime.session.core`, which never change the ledger themselves:
they return a :class:`~meerkat_runtime.session.core.plan.Plan` that
:meth:`~meerkat_runtime.session.core.state.CoreState.apply` installs.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field, replace
from typing import NamedTuple, assert_never

from meerkat_runtime.session.completion import CompletionOutcome, RunFailure
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import InputLifecycleState, InputTerminalOutcome
from meerkat_runtime.vocab.slot_init import slot_init


class Lane(enum.Enum):
    QUEUE = "queue"
    STEER = "steer"


# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_QUEUE = Lane.QUEUE


@slot_init
@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One phase change of an input."""

    from_state: InputLifecycleState | None
    to_state: InputLifecycleState
    reason: str
    timestamp: float


@dataclass(slots=True)
class InputRecord:
    """Everything the session knows about one input."""

    input: Input
    phase: InputLifecycleState
    lane: Lane
    admission_seq: int
    created_at: float
    updated_at: float
    attempts: int = 0
    terminal: InputTerminalOutcome | None = None
    last_run_id: RunId | None = None
    last_boundary_sequence: int | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    recovery_count: int = 0
    stored_input: Input | None = None
    """The persisted form of ``input`` (inline images replaced by blob references), if it differs."""
    outcome: CompletionOutcome | None = None
    """What the input's waiters get, stored with its terminal commit (``None`` while it is active,
    and for a terminal row stored without one by an older release)."""
    last_error: RunFailure | None = None
    """The failure of the input's last failed run, if any (stored with the commit that recorded it)."""

    @property
    def input_id(self) -> InputId:
        return self.input.header.id

    def copy(self) -> InputRecord:
        return replace(self, history=list(self.history))

    def move(self, to: InputLifecycleState, reason: str, now: float) -> None:
        """Record a phase change (history entry + timestamps)."""
        self.history.append(HistoryEntry(self.phase, to, reason, now))
        self.phase = to
        self.updated_at = now


class FinishedRef(NamedTuple):
    """What the ledger keeps of a finished input whether or not its record is resident: when
    it finished, its idempotency key (``None`` for an ephemeral input once stored: its key does
    not outlive a restart), its admission position, and whether it was listed by recovery
    rather than finished in this process (``recovered``). A named tuple: a restart builds one
    per finished input."""

    finished_at: float
    idempotency_key: str | None
    admission_seq: int | None
    recovered: bool = False


class InputLedger:
    """Records by id, the queue and steer lanes (ids of Queued inputs) and key → id.

    ``records`` holds every active input and the *resident* finished ones; ``finished`` lists
    every finished input the session keeps (resident or not), in the order they finished, and
    ``resident`` the ids of the finished inputs whose records are in ``records``, oldest first
    (a persistent session keeps only the most recent ones resident: the rest are read from the
    store on demand). Retention (:mod:`meerkat_runtime.session.retention`) forgets finished
    inputs beyond its horizon, their keys included.

    ``dirty`` holds the ids of records that may differ from what the store holds: a transition
    that changes a record without writing it (staging, a failed boundary commit) marks it, and
    only a successful durable write clears it (see
    :class:`~meerkat_runtime.session.persistence.SessionPersistence`). It may hold more ids
    than strictly necessary (the write compares encodings), never fewer.
    """

    def __init__(self) -> None:
        self.records: dict[InputId, InputRecord] = {}
        self.queue: deque[InputId] = deque()
        self.steer: deque[InputId] = deque()
        self.keys: dict[str, InputId] = {}
        self.next_admission_seq = 1
        self.dirty: set[InputId] = set()
        self.finished: dict[InputId, FinishedRef] = {}
        self.finished_in_order = True
        """Whether ``finished`` is in ``finished_at`` order, as it is unless the wall clock
        stepped back: an input finished at an earlier time than the one listed before it
        clears it (retention then walks the whole listing; see ``retention.beyond_horizon``)."""
        self.resident: deque[InputId] = deque()

    def knows(self, input_id: InputId) -> bool:
        """Whether ``input_id`` names an input of this session (active or a finished one kept)."""
        return input_id in self.records or input_id in self.finished

    def note_finished(self, record: InputRecord) -> None:
        """Record that ``record`` (terminal, in ``records``) finished in this process."""
        if record.input_id in self.finished:
            return
        key = record.input.header.idempotency_key
        finished = self.finished
        if finished and record.updated_at < next(reversed(finished.values())).finished_at:
            self.finished_in_order = False
        finished[record.input_id] = FinishedRef(record.updated_at, key, record.admission_seq)
        self.resident.append(record.input_id)

    def forget(self, input_id: InputId) -> None:
        """Drop a finished input entirely (retention): its record, its key, its listing."""
        ref = self.finished.pop(input_id, None)
        record = self.records.get(input_id)
        if record is not None and record.phase.is_terminal:
            del self.records[input_id]
        key = ref.idempotency_key if ref is not None else None
        if record is not None and key is None:
            key = record.input.header.idempotency_key
        if key is not None and self.keys.get(key) == input_id:
            del self.keys[key]
        self.dirty.discard(input_id)
        self._prune_resident()

    def _prune_resident(self) -> None:
        """Keep ``resident`` to inputs still listed in ``finished`` (a forgotten input leaves it):
        forgotten ids at its head go at once, the others once it lists more than twice as many
        ids as ``finished`` (amortised constant cost), so it never outgrows what is kept, an
        ephemeral session's (never evicted: it has no store to read records back from) included."""
        resident, finished = self.resident, self.finished
        while resident and resident[0] not in finished:
            resident.popleft()
        if len(resident) > 2 * len(finished) + 16:
            kept = [input_id for input_id in resident if input_id in finished]
            resident.clear()
            resident.extend(kept)

    def mark(self, input_id: InputId) -> None:
        """Record that ``input_id`` changed in memory since it was last written."""
        self.dirty.add(input_id)

    def lane(self, lane: Lane) -> deque[InputId]:
        """The ids of ``lane``'s Queued inputs, in the order they run (every lane named: a lane
        added to :class:`Lane` fails the type check here until it has its own)."""
        if lane is _QUEUE:  # the common case, without the lookups below
            return self.queue
        if lane is Lane.STEER:
            return self.steer
        if lane is Lane.QUEUE:
            return self.queue
        assert_never(lane)

    def active_ids(self) -> list[InputId]:
        """Ids of non-terminal inputs, in admission order."""
        active = [r for r in self.records.values() if not r.phase.is_terminal]
        active.sort(key=lambda r: r.admission_seq)
        return [r.input_id for r in active]
