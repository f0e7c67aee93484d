"""The event loop a ``MeerkatMachine`` runs on.

A machine's sessions keep asyncio state (gates, run loops, waiters) that belongs to one event
loop, so every coroutine method of the machine must run on that loop. :class:`LoopBinding`
binds the machine to the loop of its first call and refuses a call on any other loop with
``WrongEventLoop`` before the call does anything (nothing read, written or published). A
machine whose loop was closed (an ``asyncio.run`` that ended) is bound again by the next call's
loop only if it holds nothing of that loop (``idle()``: no session registered, nothing in
flight); otherwise its sessions' run loops and lease renewal died with the loop, and every
later call is refused (``WrongEventLoop`` saying so), rather than accepting work that nothing
would run. The check on the hot path is one identity comparison.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from meerkat_runtime.vocab.errors import WrongEventLoop

_running_loop = asyncio.get_running_loop


class LoopBinding:
    """The machine's event loop (``None`` before the first call)."""

    __slots__ = ("_idle", "_lock", "loop")

    def __init__(self, idle: Callable[[], bool] = lambda: True) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._idle = idle

    def check(self, action: str) -> None:
        """Return when the running loop is the machine's (binding it on the first call, or when
        the bound loop is closed); raise ``WrongEventLoop`` naming ``action`` otherwise."""
        if _running_loop() is not self.loop:
            self._bind(action)

    def _bind(self, action: str) -> None:
        running = _running_loop()
        with self._lock:
            bound = self.loop
            if bound is None or bound is running:
                self.loop = running
                return
            if bound.is_closed():
                if not self._idle():
                    raise WrongEventLoop(action, loop_closed=True)
                self.loop = running
                return
        raise WrongEventLoop(action)
