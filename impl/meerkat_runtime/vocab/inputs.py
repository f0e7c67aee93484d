"""Input vocabulary: lifecycle states, durability, abandon reasons and terminal outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meerkat_runtime.vocab.ids import InputId

MAX_STAGE_ATTEMPTS = 3
"""An input whose run fails this many times is abandoned instead of requeued."""


class InputLifecycleState(enum.Enum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    STAGED = "staged"
    APPLIED = "applied"
    APPLIED_PENDING_CONSUMPTION = "applied_pending_consumption"
    CONSUMED = "consumed"
    SUPERSEDED = "superseded"
    COALESCED = "coalesced"
    ABANDONED = "abandoned"

    @property
    def is_terminal(self) -> bool:
        return self._value_ in _TERMINAL_VALUES  # by value: an enum member hashes in Python


TERMINAL_INPUT_STATES = frozenset(
    {
        InputLifecycleState.CONSUMED,
        InputLifecycleState.SUPERSEDED,
        InputLifecycleState.COALESCED,
        InputLifecycleState.ABANDONED,
    }
)
_TERMINAL_VALUES = frozenset(state.value for state in TERMINAL_INPUT_STATES)


class Durability(enum.Enum):
    """Whether an input must survive a crash. Ephemeral inputs are dropped at recovery."""

    DURABLE = "durable"
    EPHEMERAL = "ephemeral"
    DERIVED = "derived"


class AbandonKind(enum.Enum):
    RETIRED = "retired"
    RESET = "reset"
    STOPPED = "stopped"
    DESTROYED = "destroyed"
    CANCELLED = "cancelled"
    MAX_ATTEMPTS_EXHAUSTED = "max_attempts_exhausted"


@dataclass(frozen=True, slots=True)
class AbandonReason:
    kind: AbandonKind
    attempts: int | None = None  # set only for MAX_ATTEMPTS_EXHAUSTED


@dataclass(frozen=True, slots=True)
class Consumed:
    pass


@dataclass(frozen=True, slots=True)
class Superseded:
    superseded_by: InputId


@dataclass(frozen=True, slots=True)
class Coalesced:
    aggregate_id: InputId


@dataclass(frozen=True, slots=True)
class Abandoned:
    reason: AbandonReason


InputTerminalOutcome = Consumed | Superseded | Coalesced | Abandoned
