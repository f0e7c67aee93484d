"""Limits of one operation registry."""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.vocab.settings import MAX_COUNT, bounded_int

DEFAULT_MAX_COMPLETED = 256
"""How many terminal operations a registry retains before evicting the oldest."""

MIN_FEED_CAPACITY = 1024
"""The completion feed never holds fewer entries than this."""


@dataclass(frozen=True, slots=True)
class OpsLifecycleConfig:
    """``max_completed``: terminal operations kept (FIFO, oldest evicted first);
    ``max_concurrent``: non-terminal operations allowed at once (``None`` = unlimited). Both are
    integers in ``0..MAX_COUNT`` (2**40); anything else is ``InvalidSetting``."""

    max_completed: int = DEFAULT_MAX_COMPLETED
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        bounded_int("max_completed", self.max_completed, 0, MAX_COUNT)
        if self.max_concurrent is not None:
            bounded_int("max_concurrent", self.max_concurrent, 0, MAX_COUNT)

    @property
    def feed_capacity(self) -> int:
        """Entries the completion feed retains: ``max(4 * max_completed, 1024)``."""
        return max(4 * self.max_completed, MIN_FEED_CAPACITY)
