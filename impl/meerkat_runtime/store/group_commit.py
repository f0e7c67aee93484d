"""Group commit: one writer thread per store that commits pending writes together.

A caller hands a write to :meth:`GroupCommitter.submit` with a waiter that completes only once
the transaction holding the write has committed (or the write failed): a
:class:`concurrent.futures.Future`, or an :class:`asyncio.Future` of the caller's event loop,
completed on that loop with one call onto it for all the writes of a batch (one wake-up of the
loop per batch, not per write). The writer thread takes every write pending when it is
free (at most ``max_batch``, waiting up to ``max_wait_s`` after the first one for more to
arrive) and hands the batch to the store's ``run_batch``, which decides the transaction rules
(:meth:`meerkat_runtime.store.sqlite.SqliteRuntimeStore` commits a batch as one transaction,
each write in its own savepoint, or a batch of input rows without them). Writes are taken in
submission order; a batch never holds more than ``max_batch`` writes; every future is
completed, also when ``run_batch`` itself fails.

A write submitted from an event loop (:meth:`GroupCommitter.submit_from_loop`) is handed to
the writer at the end of the loop's current turn, together with every other write submitted on
that loop meanwhile (one hand-off, one wake-up of the writer): sessions resumed in the same
turn (by the completion of the previous batch) submit their next writes into one batch instead
of the writer taking the first one alone while the others are still being prepared. So that
the writer does not sit idle through a long turn, once :data:`EARLY_HAND_OVER` writes are
staged while it is idle they are handed over at once (it commits them while the loop prepares
the rest, which form the next batch).
A write submitted any other way (:meth:`GroupCommitter.submit`, :meth:`GroupCommitter.try_lead`)
first hands every staged write to the writer, so that writes commit in submission order also
across threads and when a loop stops before its turn ends.
:meth:`GroupCommitter.hand_over_staged` hands every write still waiting for its loop's turn to
the writer at once (``close`` calls it first, so that a close on the loop's own thread does not
wait for a turn that cannot come).

One batch runs at a time. A caller that would block anyway (a synchronous store call) and
finds the writer idle — nothing queued, no batch running — may run its own write as a batch of
one on its own thread (:meth:`GroupCommitter.try_lead` / :meth:`GroupCommitter.end_lead`),
saving two thread switches; writes submitted meanwhile wait for it and form the next batch.

The thread starts with the first submitted write and ends at :meth:`stop`, after the writes
already submitted are done. The committer counts the batches it ran and the writes they held.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from meerkat_runtime.vocab.errors import WriteFailed, WriteOutcomeUnknown


@dataclass(slots=True)
class PendingWrite:
    """One write: what it is (for error messages), the function that performs it on the
    batch's connection, and who waits for it. ``waiter`` is a
    :class:`concurrent.futures.Future` completed at once, or with ``loop`` an
    :class:`asyncio.Future` of that loop, completed on it after the batch (one call onto the
    loop per batch, see :func:`wake_loops`); ``None`` for a caller that committed its own write
    (it reads ``error``). ``release`` runs once, on the thread that completes the write."""

    runtime_id: str
    what: str
    body: Callable[..., object]
    waiter: Future[None] | asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    release: Callable[[], None] | None = None
    error: BaseException | None = None
    done: bool = False

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self.error = error
            self._finish()

    def succeed(self) -> None:
        if not self.done:
            self._finish()

    def _finish(self) -> None:
        self.done = True
        if self.release is not None:
            self.release()
        waiter = self.waiter
        if self.loop is None and isinstance(waiter, Future):
            if self.error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(self.error)


def _resolve(writes: list[PendingWrite]) -> None:
    """On the loop: complete the asyncio futures of ``writes`` (skipping a cancelled one)."""
    for pending in writes:
        waiter = pending.waiter
        if waiter is None or waiter.done():
            continue
        if pending.error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(pending.error)


def wake_loops(batch: list[PendingWrite]) -> None:
    """Complete the loop-bound waiters of a finished batch: one call onto each loop for all of
    its writes (a closed loop has nobody left to wake)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[PendingWrite]] = {}
    for pending in batch:
        if pending.loop is not None and pending.done:
            by_loop.setdefault(pending.loop, []).append(pending)
    for loop, writes in by_loop.items():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, writes)


EARLY_HAND_OVER = 8
"""Staged writes of one loop that reach the writer before the turn ends when it is idle."""


class CommitterStopped(RuntimeError):
    """A write was submitted after :meth:`GroupCommitter.stop`."""


class GroupCommitter:
    """The writer thread of one store (module docstring)."""

    def __init__(
        self, run_batch: Callable[[list[PendingWrite]], None], *, max_batch: int, max_wait_s: float, name: str
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._name = name
        self._lock = threading.Lock()
        """The condition's lock, taken directly on a lone write's path (``try_lead``, ``end_lead``)."""
        self._cond = threading.Condition(self._lock)
        self._queue: deque[PendingWrite] = deque()
        self._staged: dict[asyncio.AbstractEventLoop, list[PendingWrite]] = {}
        """Per event loop, the writes submitted during its current turn (handed over at its end)."""
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        """A batch is being committed (by the writer thread or a leading caller)."""
        self.batches = 0
        """Batches run so far."""
        self.writes = 0
        """Writes those batches held."""
        self.largest_batch = 0
        self.batch_sizes: dict[int, int] = {}
        """How many batches held each number of writes."""

    def submit(self, pending: PendingWrite) -> None:
        """Queue one write; its waiter completes once it committed or failed."""
        with self._cond:
            if self._stopping:
                raise CommitterStopped(f"{pending.what}: the store's writer has stopped")
            self._queue_staged()  # writes submitted earlier on a loop go first
            self._queue.append(pending)
            self._start()
            self._cond.notify()

    def submit_from_loop(self, pending: PendingWrite) -> None:
        """On the thread of ``pending.loop``: queue one write at the end of the loop's current
        turn, with the other writes submitted on that loop meanwhile (module docstring)."""
        loop = pending.loop
        assert loop is not None
        with self._lock:
            if self._stopping:
                raise CommitterStopped(f"{pending.what}: the store's writer has stopped")
            staged = self._staged.get(loop)
            if staged is not None:
                staged.append(pending)
                if len(staged) >= EARLY_HAND_OVER and not self._busy and not self._queue:
                    self._queue.extend(staged)  # the writer starts while the turn goes on
                    staged.clear()
                    self._start()
                    self._cond.notify()
                return
            loop.call_soon(self.hand_over_staged)  # first: a loop that refuses it stages nothing
            self._staged[loop] = [pending]

    def hand_over_staged(self) -> None:
        """Queue at once every write still waiting for its loop's turn (any thread). Also called
        at the end of each staging loop's turn: its writes join the queue in submission order,
        after those of any other loop staged before them (e.g. of a loop that stopped before its
        turn ended)."""
        with self._cond:
            self._queue_staged()

    def _queue_staged(self) -> None:
        """Every staged write joins the queue (condition's lock held)."""
        if not self._staged:
            return
        for staged in self._staged.values():
            self._queue.extend(staged)
        self._staged.clear()
        self._start()
        self._cond.notify()

    def _start(self) -> None:
        """Start the writer thread if it is not running (condition's lock held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
            self._thread.start()

    def try_lead(self) -> bool:
        """Whether the caller may commit its own write now (writer idle, nothing queued); if
        so the caller must call :meth:`end_lead` after its batch of one."""
        with self._lock:
            self._queue_staged()  # writes submitted earlier on a loop go first
            if self._busy or self._queue or self._stopping:
                return False
            self._busy = True
            return True

    def end_lead(self) -> None:
        with self._lock:
            self._busy = False
            self._count(1)
            if self._queue:  # the writer waits only for queued writes (and not to be busy)
                self._cond.notify_all()

    def _count(self, size: int) -> None:
        self.batches += 1
        self.writes += size
        self.largest_batch = max(self.largest_batch, size)
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    def idle(self) -> bool:
        """Nothing queued and no batch running (a write now would run alone)."""
        return not self._busy and not self._queue and not self._staged

    def on_writer_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _take(self) -> list[PendingWrite] | None:
        """The next batch (``None`` once stopped and drained)."""
        with self._cond:
            while not self._queue or self._busy:
                if self._stopping and not self._queue:
                    return None
                self._cond.wait()
            if self.max_wait_s > 0 and len(self._queue) < self.max_batch and not self._stopping:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            count = min(self.max_batch, len(self._queue))
            self._busy = True
            return [self._queue.popleft() for _ in range(count)]

    def _main(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._run_batch(batch)
            except BaseException as exc:  # never leave a caller waiting for ever
                for pending in batch:
                    pending.fail(
                        WriteOutcomeUnknown(
                            pending.runtime_id, f"{pending.what}: the batch's writer failed unexpectedly: {exc!r}"
                        )
                    )
            wake_loops(batch)
            with self._cond:
                self._busy = False
                self._count(len(batch))

    def stop(self) -> None:
        """Finish the writes already submitted (staged ones too), then end the thread.
        Idempotent."""
        with self._cond:
            self._queue_staged()  # with the stop under one lock: nothing is staged after it
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:  # nothing can be left, but never strand a caller
            left = list(self._queue)
            self._queue.clear()
        for pending in left:
            pending.fail(WriteFailed(pending.runtime_id, f"{pending.what}: store is closed"))
        wake_loops(left)
