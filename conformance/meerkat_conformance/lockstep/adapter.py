"""The protocol between the lockstep driver and one runtime under test.

An adapter owns one live runtime (and its store). It maps model actions to runtime calls,
reduces what the runtime returns to an :class:`~meerkat_conformance.lockstep.outcome.Outcome`, and
projects both sides' observable state to the same plain-data shape.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from enum import Enum
from typing import Any, Protocol

from meerkat_model.machine import Rejected, Stepped

from meerkat_conformance.lockstep.outcome import Outcome


class RuntimeStuck(Exception):
    """The runtime did not come to rest within the adapter's bound on event-loop turns (a loop
    that spins, a lock never released, a task that never finishes). The lockstep driver reports
    it as a disagreement with the trace; the bound counts turns, not seconds, so it does not
    depend on how loaded the machine is."""


class StepKind(Enum):
    """How the report counts a step."""

    CALL = "call"
    CRASH = "crash"
    FAULT = "fault"


class RuntimeAdapter(Protocol):
    """One runtime instance driven in lockstep with a model machine."""

    def execute(self, action: Hashable) -> Outcome:
        """Apply the model action to the runtime; never raises for runtime errors (raises
        :class:`RuntimeStuck` when the runtime does not come to rest)."""
        ...

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        """What the runtime must return for ``action`` given the model's step result."""
        ...

    def observe(self) -> Any:
        """The runtime's observable state as plain data."""
        ...

    def model_view(self, model_state: Any) -> Any:
        """The model's observable state in the same shape as :meth:`observe`."""
        ...

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        """The model actions a harness action stands for, applied in order, all or nothing:
        ``(action,)`` for a plain model action; a harness-only variant such as "crash with a
        failing read" maps to the model's crash; a runtime call that does several model steps
        at once maps to their sequence (``model_state`` lets the adapter pick it)."""
        ...

    def autonomous(self) -> Sequence[Hashable]:
        """Model actions the runtime performed by itself since the last call (e.g. its run
        loop starting a run); the model must allow each. Empty for a passive runtime."""
        ...

    def overdue(self, model_state: Any) -> str | None:
        """A message when the model says something is due now that the runtime left undone
        (e.g. queued work an attached loop did not pick up), else ``None``."""
        ...

    def step_kind(self, action: Hashable) -> StepKind: ...

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        """Variants of ``action`` with a store fault injected (the replay probes each one the
        model refuses at every state it visits); empty when the action writes nothing."""
        ...

    def note(self, action: Hashable) -> str:
        """A short annotation for the trace ("" for a plain call)."""
        ...

    def close(self) -> None:
        """Release the runtime and its store (no clean shutdown is implied)."""
        ...
