"""Consumer cursors of one runtime epoch over the completion feed.

Three forward-only positions (all start at 0):

* ``agent_applied`` — the agent has surfaced every completion up to here;
* ``runtime_observed`` — the runtime loop has read the feed up to here;
* ``runtime_injected`` — watermark at the last injected "background op completed" input.

Advancing a cursor to a lower value is a no-op (the cursor keeps the maximum); the advance
methods return the cursor's value afterwards. Thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EpochCursorSnapshot:
    """The three cursor values at one instant."""

    agent_applied: int = 0
    runtime_observed: int = 0
    runtime_injected: int = 0

    def __post_init__(self) -> None:
        for name in ("agent_applied", "runtime_observed", "runtime_injected"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"cursor {name!r} must be a non-negative integer, got {value!r}")

    def merged(self, other: EpochCursorSnapshot) -> EpochCursorSnapshot:
        """Cursor-wise maximum of two snapshots."""
        return EpochCursorSnapshot(
            max(self.agent_applied, other.agent_applied),
            max(self.runtime_observed, other.runtime_observed),
            max(self.runtime_injected, other.runtime_injected),
        )


class EpochCursorState:
    """Live, shared cursor values; every advance is monotonic (max)."""

    __slots__ = ("_agent_applied", "_lock", "_runtime_injected", "_runtime_observed")

    def __init__(self, agent_applied: int = 0, runtime_observed: int = 0, runtime_injected: int = 0) -> None:
        start = EpochCursorSnapshot(agent_applied, runtime_observed, runtime_injected)
        self._lock = threading.Lock()
        self._agent_applied = start.agent_applied
        self._runtime_observed = start.runtime_observed
        self._runtime_injected = start.runtime_injected

    @classmethod
    def from_snapshot(cls, snapshot: EpochCursorSnapshot) -> EpochCursorState:
        return cls(snapshot.agent_applied, snapshot.runtime_observed, snapshot.runtime_injected)

    def snapshot(self) -> EpochCursorSnapshot:
        with self._lock:
            return EpochCursorSnapshot(self._agent_applied, self._runtime_observed, self._runtime_injected)

    @property
    def agent_applied(self) -> int:
        return self._agent_applied

    @property
    def runtime_observed(self) -> int:
        return self._runtime_observed

    @property
    def runtime_injected(self) -> int:
        return self._runtime_injected

    @staticmethod
    def _check(value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"a cursor position must be a non-negative integer, got {value!r}")

    def advance_agent_applied(self, seq: int) -> int:
        self._check(seq)
        with self._lock:
            self._agent_applied = max(self._agent_applied, seq)
            return self._agent_applied

    def advance_runtime_observed(self, seq: int) -> int:
        self._check(seq)
        with self._lock:
            self._runtime_observed = max(self._runtime_observed, seq)
            return self._runtime_observed

    def advance_runtime_injected(self, seq: int) -> int:
        self._check(seq)
        with self._lock:
            self._runtime_injected = max(self._runtime_injected, seq)
            return self._runtime_injected

    def __repr__(self) -> str:
        s = self.snapshot()
        return f"EpochCursorState({s.agent_applied}, {s.runtime_observed}, {s.runtime_injected})"
