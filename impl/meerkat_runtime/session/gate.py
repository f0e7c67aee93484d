"""The lock that serialises the steps of one session, and which tells whether taking it would
wait."""

from __future__ import annotations

import asyncio
from typing import Literal


class SessionGate(asyncio.Lock):
    """An ``asyncio.Lock`` that counts the callers inside :meth:`acquire`.

    :meth:`free` is true only when the lock is released *and* nobody is waiting for it, so an
    ``acquire`` made now returns without suspending. (``locked()`` alone is false in the moment
    between a release and the woken waiter taking the lock, when a new caller would overtake
    that waiter.)"""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0
        """How many callers are inside :meth:`acquire`: waiting, or about to take the lock."""

    async def acquire(self) -> Literal[True]:
        """Take the lock, waiting for it if it is held or another caller is waiting for it."""
        self.queued += 1
        try:
            return await super().acquire()
        finally:
            self.queued -= 1

    def free(self) -> bool:
        """Whether :meth:`acquire` would take the lock now without suspending."""
        return not self.locked() and not self.queued
