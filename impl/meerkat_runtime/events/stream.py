"""``EventStream``: the events of a machine as an async iterator, for applications.

::

    async with machine.events.stream() as events:
        async for event in events:
            print(event.seq, event.rule, event.before, "->", event.after)

Events are queued from any thread onto the event loop that created the stream. The queue holds
at most ``maxsize`` undelivered events; when a reader falls that far behind the stream does not
drop events silently: it delivers what it holds and then raises :class:`EventStreamOverflow`.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from meerkat_runtime.events.event import LifecycleEvent

if TYPE_CHECKING:
    from meerkat_runtime.events.bus import Subscription


class EventStreamOverflow(RuntimeError):
    """The reader fell more than ``maxsize`` events behind; later events were not queued."""


class EventStream:
    """An async iterator over a bus's events (see the module docstring)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._maxsize = maxsize
        self._queue: collections.deque[LifecycleEvent] = collections.deque()
        self._ready = asyncio.Event()
        self._overflowed = False
        self._closed = False
        self._subscription: Subscription | None = None
        self._scheduled = 0
        """Events handed to the loop by ``call_soon_threadsafe`` and not queued yet."""
        self._scheduling = threading.Lock()

    def attach(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def push(self, event: LifecycleEvent) -> None:
        """The bus's subscriber: queue ``event`` (from any thread)."""
        if self._closed or self._overflowed:
            return
        # The bus delivers one event at a time, from whichever thread delivers: an event pushed
        # on the loop's thread while earlier ones pushed from another thread are still
        # scheduled is scheduled behind them, so the stream keeps the bus's order.
        if threading.get_ident() == self._thread and not self._scheduled:
            self._put(event)
        else:
            with self._scheduling:
                self._scheduled += 1
            try:
                self._loop.call_soon_threadsafe(self._put_scheduled, event)
            except BaseException:  # the loop is closed: nothing will be queued
                with self._scheduling:
                    self._scheduled -= 1
                raise

    def _put_scheduled(self, event: LifecycleEvent) -> None:
        with self._scheduling:
            self._scheduled -= 1
        self._put(event)

    def _put(self, event: LifecycleEvent) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._queue) >= self._maxsize:
            self._overflowed = True
            self.close()
        else:
            self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        """Unsubscribe; the iterator ends once the queued events are read."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> LifecycleEvent:
        while not self._queue:
            if self._overflowed:
                raise EventStreamOverflow(f"the reader fell more than {self._maxsize} events behind")
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
