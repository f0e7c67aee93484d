"""What ``accept_input`` returns: Accepted, Deduplicated or Rejected."""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import InputLifecycleState


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
    """The idempotency key was already used by ``existing_id``; nothing was stored."""

    input_id: InputId
    existing_id: InputId

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
