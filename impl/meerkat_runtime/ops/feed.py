"""The completion feed: every terminal transition of a registry, in sequence order.

The registry is the only writer; any number of readers use ``watermark``, ``list_since`` and
``wait_for_advance`` (async, any event loop) or ``wait_for_advance_blocking`` (threads).
Sequence numbers start at 1 and grow by 1 per terminal transition; the watermark is the
highest published sequence number (0 before the first). The feed is a FIFO bounded by its
capacity: the oldest entries are dropped by capacity only, never by consumers. Once the
registry is closed (:meth:`CompletionFeed.close`) the feed never advances again: every wait,
pending or later, raises the closing error at once unless the watermark already passed it;
the entries stay readable.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from meerkat_runtime.vocab.operation import OperationKind, TerminalOutcome


@dataclass(frozen=True, slots=True)
class CompletionEntry:
    """One terminal transition as consumers see it."""

    seq: int
    operation_id: str
    kind: OperationKind
    display_name: str
    terminal_outcome: TerminalOutcome
    completed_at_ms: int | None


@dataclass(frozen=True, slots=True)
class CompletionBatch:
    """Entries newer than a cursor, with the watermark read atomically with them."""

    entries: tuple[CompletionEntry, ...]
    watermark: int


def _wake(fut: asyncio.Future[int], watermark: int) -> None:
    if not fut.done():
        fut.set_result(watermark)


def _fail(fut: asyncio.Future[int], error: BaseException) -> None:
    if not fut.done():
        fut.set_exception(error)


class CompletionFeed:
    """Bounded, sequence-ordered log of completions with lost-wake-up-free waiting."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"feed capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: deque[CompletionEntry] = deque()
        self._watermark = 0
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[int]]] = []
        self._closed: Callable[[], BaseException] | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    def watermark(self) -> int:
        """Highest published sequence number (0 if none)."""
        return self._watermark

    def __len__(self) -> int:
        return len(self._entries)

    def list_since(self, after_seq: int) -> CompletionBatch:
        """Retained entries with ``seq > after_seq``, oldest first, and the current watermark."""
        with self._lock:
            newer: list[CompletionEntry] = []
            for entry in reversed(self._entries):
                if entry.seq <= after_seq:
                    break
                newer.append(entry)
            newer.reverse()
            return CompletionBatch(tuple(newer), self._watermark)

    def entries(self) -> tuple[CompletionEntry, ...]:
        """Every retained entry, oldest first."""
        with self._lock:
            return tuple(self._entries)

    async def wait_for_advance(self, after_seq: int) -> int:
        """Return the watermark as soon as it exceeds ``after_seq`` (at once if it already does)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._watermark > after_seq:
                return self._watermark
            if self._closed is not None:
                raise self._closed()
            fut: asyncio.Future[int] = loop.create_future()
            waiter = (after_seq, loop, fut)
            self._waiters.append(waiter)
        try:
            return await fut
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def wait_for_advance_blocking(self, after_seq: int, timeout: float | None = None) -> int:
        """Thread form of :meth:`wait_for_advance`; raises ``TimeoutError`` after ``timeout`` s."""
        with self._changed:
            passed = self._changed.wait_for(lambda: self._watermark > after_seq or self._closed is not None, timeout)
            if self._watermark > after_seq:
                return self._watermark
            if passed and self._closed is not None:
                raise self._closed()
            raise TimeoutError(f"feed watermark did not pass {after_seq} within {timeout} s")

    def close(self, error: Callable[[], BaseException]) -> None:
        """The owning registry was closed: every pending wait and every later one (whose cursor
        the watermark has not passed) raises ``error()``. Closing again changes nothing."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = error
            waiters, self._waiters = self._waiters, []
            self._changed.notify_all()
        for _, loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_fail, fut, error())
            except RuntimeError:
                continue  # the waiting loop is closed

    # --- writer side (the owning registry only) ----------------------------------------

    def publish(self, entries: Iterable[CompletionEntry]) -> None:
        """Append entries (strictly increasing seqs, above the watermark) and wake waiters."""
        with self._lock:
            pushed = False
            for entry in entries:
                if entry.seq <= self._watermark:
                    raise ValueError(f"feed seq {entry.seq} is not above the watermark {self._watermark}")
                self._entries.append(entry)
                self._watermark = entry.seq
                pushed = True
            if not pushed:
                return
            while len(self._entries) > self._capacity:
                self._entries.popleft()
            watermark = self._watermark
            ready = [w for w in self._waiters if w[0] < watermark]
            self._waiters = [w for w in self._waiters if w[0] >= watermark]
            self._changed.notify_all()
        for _, loop, fut in ready:
            try:
                loop.call_soon_threadsafe(_wake, fut, watermark)
            except RuntimeError:
                continue  # the waiting loop is closed

    def preview(self, pending: Iterable[CompletionEntry]) -> tuple[CompletionEntry, ...]:
        """The retained entries as they would be after publishing ``pending`` (nothing changes)."""
        with self._lock:
            merged = [*self._entries, *pending]
        return tuple(merged[-self._capacity :])
