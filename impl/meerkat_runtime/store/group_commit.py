"""Group commit: one writer thread per store that commits pending writes together.

A caller hands a write to :meth:`GroupCommitter.submit` and gets a
:class:`concurrent.futures.Future` that completes only once the transaction holding the write
has committed (or the write failed). The writer thread takes every write pending when it is
free (at most ``max_batch``, waiting up to ``max_wait_s`` after the first one for more to
arrive) and hands the batch to the store's ``run_batch``, which decides the transaction rules
(:meth:`meerkat_runtime.store.sqlite.SqliteRuntimeStore` commits a batch as one transaction
with one savepoint per write). Writes are taken in submission order; a batch never holds more
than ``max_batch`` writes; every future is completed, also when ``run_batch`` itself fails.

One batch runs at a time. A caller that would block anyway (a synchronous store call) and
finds the writer idle — nothing queued, no batch running — may run its own write as a batch of
one on its own thread (:meth:`GroupCommitter.try_lead` / :meth:`GroupCommitter.end_lead`),
saving two thread switches; writes submitted meanwhile wait for it and form the next batch.

The thread starts with the first submitted write and ends at :meth:`stop`, after the writes
already submitted are done. The committer counts the batches it ran and the writes they held.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from meerkat_runtime.vocab.errors import WriteFailed, WriteOutcomeUnknown


@dataclass(slots=True)
class PendingWrite:
    """One submitted write: what it is (for error messages), the function that performs it on
    the batch's connection, and the future its caller waits on."""

    runtime_id: str
    what: str
    body: Callable[..., object]
    future: Future[None] = field(default_factory=Future)

    def __post_init__(self) -> None:
        self.future.set_running_or_notify_cancel()  # a submitted write cannot be cancelled

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def succeed(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


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
        self._cond = threading.Condition()
        self._queue: deque[PendingWrite] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        """A batch is being committed (by the writer thread or a leading caller)."""
        self.batches = 0
        """Batches run so far."""
        self.writes = 0
        """Writes those batches held."""
        self.largest_batch = 0

    def submit(self, runtime_id: str, what: str, body: Callable[..., object]) -> Future[None]:
        """Queue one write; the future completes once it committed or failed."""
        pending = PendingWrite(runtime_id, what, body)
        with self._cond:
            if self._stopping:
                raise CommitterStopped(f"{what}: the store's writer has stopped")
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return pending.future

    def try_lead(self) -> bool:
        """Whether the caller may commit its own write now (writer idle, nothing queued); if
        so the caller must call :meth:`end_lead` after its batch of one."""
        with self._cond:
            if self._busy or self._queue or self._stopping:
                return False
            self._busy = True
            return True

    def end_lead(self) -> None:
        with self._cond:
            self._busy = False
            self._count(1)
            self._cond.notify_all()

    def _count(self, size: int) -> None:
        self.batches += 1
        self.writes += size
        self.largest_batch = max(self.largest_batch, size)

    def idle(self) -> bool:
        """Nothing queued and no batch running (a write now would run alone)."""
        return not self._busy and not self._queue

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
            with self._cond:
                self._busy = False
                self._count(len(batch))

    def stop(self) -> None:
        """Finish the writes already submitted, then end the thread. Idempotent."""
        with self._cond:
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
