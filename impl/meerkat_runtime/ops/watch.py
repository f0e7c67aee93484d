"""A thread-safe one-shot result, awaitable from any event loop and blockable from any thread.

``OneShot`` is set at most once (the first ``set`` wins). Awaiting it from a coroutine
registers a future on the *awaiting* loop, which is resolved through
``loop.call_soon_threadsafe``; ``result(timeout)`` blocks a plain thread. Both may be used
at once, by any number of waiters. ``OperationCompletionWatch`` is the watcher handed out by
``register_watcher``: the registry keeps it pending until the operation ends, the registry is
closed, or the last reference to the watch is dropped (then the registry releases it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from meerkat_runtime.vocab.operation import TerminalOutcome

T = TypeVar("T")


class _Failure:
    """A stored exception: ``set_exception`` resolves the one-shot with an error."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _deliver(fut: asyncio.Future[Any], value: Any) -> None:
    if fut.done():
        return
    if isinstance(value, _Failure):
        fut.set_exception(value.error)
    else:
        fut.set_result(value)


class OneShot(Generic[T]):
    """A value (or an error) delivered exactly once, observable from threads and event loops."""

    __slots__ = ("_done", "_event", "_lock", "_value", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._done = False
        self._value: T | _Failure | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []

    @classmethod
    def resolved(cls, value: T) -> OneShot[T]:
        """A one-shot that is already set to ``value``."""
        shot: OneShot[T] = cls()
        shot.set(value)
        return shot

    def done(self) -> bool:
        """Whether a value or an error has been delivered."""
        return self._done

    def set(self, value: T) -> bool:
        """Deliver ``value``; returns ``False`` (and changes nothing) if already resolved."""
        return self._resolve(value)

    def set_exception(self, error: BaseException) -> bool:
        """Deliver ``error`` to every waiter; returns ``False`` if already resolved."""
        return self._resolve(_Failure(error))

    def _resolve(self, value: T | _Failure) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
            self._value = value
            waiters, self._waiters = self._waiters, []
        self._event.set()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_deliver, fut, value)
            except RuntimeError:
                continue  # the awaiting loop is closed: nobody is left to wake
        return True

    def _unwrap(self) -> T:
        value = self._value
        if isinstance(value, _Failure):
            raise value.error
        return value  # type: ignore[return-value]

    def result(self, timeout: float | None = None) -> T:
        """Block the calling thread until resolved; raises ``TimeoutError`` after ``timeout`` seconds."""
        if not self._event.wait(timeout):
            raise TimeoutError(f"no result within {timeout} s")
        return self._unwrap()

    def peek(self) -> T | None:
        """The delivered value without waiting (``None`` while pending; raises a delivered error)."""
        return self._unwrap() if self._done else None

    async def wait(self) -> T:
        """Wait on the running event loop until resolved."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._done:
                return self._unwrap()
            fut: asyncio.Future[Any] = loop.create_future()
            entry = (loop, fut)
            self._waiters.append(entry)
        try:
            return await fut  # type: ignore[no-any-return]
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()


class OperationCompletionWatch:
    """Resolves once with the terminal outcome of one operation.

    ``await watch`` (any event loop), ``watch.result(timeout)`` (any thread), ``watch.done()``.
    A watch registered on an already-terminal operation is resolved at once. A watch whose
    awaiting task is cancelled (``asyncio.wait_for`` timing out) stays pending and can be
    awaited again; dropping the last reference to a pending watch releases it from the
    registry (``watcher_count`` no longer counts it). When the registry is closed (its session
    unregistered, closed or lost) a pending watch raises the registry's closing error.
    """

    __slots__ = ("_drop", "_shot", "operation_id")

    def __init__(
        self,
        operation_id: str,
        shot: OneShot[TerminalOutcome],
        drop: Callable[[str, OneShot[TerminalOutcome]], None] | None = None,
    ) -> None:
        self.operation_id = operation_id
        self._shot = shot
        self._drop = drop

    def done(self) -> bool:
        return self._shot.done()

    def outcome(self) -> TerminalOutcome | None:
        """The outcome if resolved, else ``None`` (raises the closing error of a closed registry)."""
        return self._shot.peek()

    def result(self, timeout: float | None = None) -> TerminalOutcome:
        """Block until resolved; ``TimeoutError`` after ``timeout`` seconds."""
        return self._shot.result(timeout)

    async def wait(self) -> TerminalOutcome:
        return await self._shot.wait()

    def __await__(self) -> Generator[Any, None, TerminalOutcome]:
        return self._shot.wait().__await__()

    def __del__(self) -> None:
        try:
            if self._drop is not None and not self._shot.done():
                self._drop(self.operation_id, self._shot)
        except Exception:  # pragma: no cover - interpreter shutdown
            return

    def __repr__(self) -> str:
        state = "resolved" if self.done() else "pending"
        return f"OperationCompletionWatch({self.operation_id!r}, {state})"
