"""What ``accept_input`` returns: Accepted, Deduplicated or Rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

from meerkat_runtime.session.completion import CompletionOutcome
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import InputLifecycleState
from meerkat_runtime.vocab.slot_init import slot_init


@slot_init
@dataclass(frozen=True, slots=True)
class Accepted:
    """The input is admitted; ``state`` is its phase right after admission (Queued)."""

    input_id: InputId
    state: InputLifecycleState

    @property
    def is_accepted(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """The idempotency key was already used by ``existing_id``; nothing was stored. When that
    input has finished, ``outcome`` is what its waiters got (stored with its row, so it survives
    restarts); ``None`` while it is in flight (or for a row stored without its outcome). Equality
    compares the ids only."""

    input_id: InputId
    existing_id: InputId
    outcome: CompletionOutcome | None = field(default=None, compare=False)

    @property
    def is_accepted(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Rejected:
    """The input is invalid; nothing was stored."""

    reason: str

    @property
    def is_accepted(self) -> bool:
        return False


AcceptOutcome = Accepted | Deduplicated | Rejected
