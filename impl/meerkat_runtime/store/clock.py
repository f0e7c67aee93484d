"""Clocks: what stores and machines read the time from, injectable for tests.

A clock is a zero-argument callable returning seconds as a float. Stores default to
``time.time`` (lease expiries are compared across processes); a ``MeerkatMachine`` defaults to
``time.monotonic`` for its own schedule. :class:`ManualClock` only moves when told to, so a test
can expire a lease deterministically by handing the same instance to the store and the machines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Clock = Callable[[], float]


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it. Thread-safe."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must not be negative); returns the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            if now < self._now:
                raise ValueError(f"a clock cannot go back: {now} < {self._now}")
            self._now = float(now)
