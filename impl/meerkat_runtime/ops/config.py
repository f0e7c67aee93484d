"""Limits of one operation registry."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_COMPLETED = 256
"""How many terminal operations a registry retains before evicting the oldest."""

MIN_FEED_CAPACITY = 1024
"""The completion feed never holds fewer entries than this."""


@dataclass(frozen=True, slots=True)
class OpsLifecycleConfig:
    """``max_completed``: terminal operations kept (FIFO, oldest evicted first);
    ``max_concurrent``: non-terminal operations allowed at once (``None`` = unlimited)."""

    max_completed: int = DEFAULT_MAX_COMPLETED
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_completed, bool) or not isinstance(self.max_completed, int) or self.max_completed < 0:
            raise ValueError(f"max_completed must be a non-negative integer, got {self.max_completed!r}")
        mc = self.max_concurrent
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 0):
            raise ValueError(f"max_concurrent must be a non-negative integer or None, got {mc!r}")

    @property
    def feed_capacity(self) -> int:
        """Entries the completion feed retains: ``max(4 * max_completed, 1024)``."""
        return max(4 * self.max_completed, MIN_FEED_CAPACITY)
