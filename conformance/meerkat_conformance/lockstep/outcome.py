"""What one call returned, on either side: a value or an error kind.

Both the model (``Stepped`` / ``Rejected``) and the runtime (a return value / a raised
``MeerkatError``) are reduced to an :class:`Outcome` so they compare one to one. Errors
compare by ``kind`` only; their messages are shown in traces but never compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Ok:
    """The call succeeded and returned ``value`` (plain, comparable data)."""

    value: Any = None

    def brief(self) -> str:
        return "ok" if self.value is None else f"ok {self.value!r}"


@dataclass(frozen=True, slots=True)
class Err:
    """The call was refused with error kind ``kind``; ``message`` is for humans only."""

    kind: str
    message: str = ""

    def brief(self) -> str:
        return f"error {self.kind}"


Outcome = Ok | Err


def outcomes_agree(model: Outcome, runtime: Outcome) -> bool:
    """True when both succeeded with equal values, or both failed with the same kind."""
    if isinstance(model, Err) and isinstance(runtime, Err):
        return model.kind == runtime.kind
    if isinstance(model, Ok) and isinstance(runtime, Ok):
        return bool(model.value == runtime.value)
    return False
