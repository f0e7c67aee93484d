"""Run a coroutine that must not be interrupted, without a task when it never waits.

:func:`run_shielded_eagerly` is ``await asyncio.shield(task)`` of a task running ``coro``,
with the same guarantee — cancelling the caller never interrupts ``coro`` once it started —
at less cost when ``coro`` finishes without suspending (a durable accept whose write commits
on the event loop's thread): ``coro`` runs on the caller's stack up to its first suspension.
If it returned by then, that is the result: no task, no shield, no callbacks. So that a
caller making such calls back to back does not keep the loop from its other callbacks, timers
and I/O, a call yields to the loop once before returning when no call on that loop (and
thread) yielded for :data:`MAX_RUN_WITHOUT_TURN_S` (a cancellation arriving then raises
``CancelledError`` from a call whose work is done, as the shield did). If it suspended, the
caller's task keeps driving it, through a future of its own for each future ``coro`` awaits
(completed when that one is), so that cancelling the caller cancels only that proxy, never what
``coro`` awaits; a cancellation (or any error thrown into the caller) while ``coro`` is
suspended hands the rest of ``coro`` to a task of its own (resumed exactly where it stopped,
awaiting what it awaited) and raises in the caller at once: a cancelled caller gets
``CancelledError`` while the work finishes on its own, as with the shield, at the cost of a task
only when that happens. An exception ``coro`` raises propagates.

While ``coro`` runs on the caller's stack, ``asyncio.current_task()`` is the caller's task and
context variables are the caller's: use this only for coroutines that do not compare tasks or
set context variables (the accept path).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")


class _Suspended:
    """A coroutine ``coro`` suspended on ``first`` (what it awaited), to be awaited once."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def _take(self) -> tuple[Coroutine[Any, Any, Any], Any]:
        """The coroutine and what it awaited (dropped here, so it is not kept alive twice)."""
        coro, first = self._coro, self._first
        self._first = None
        return coro, first


class _Resumed(_Suspended):
    """Awaiting this resumes the suspended coroutine in the awaiting task: ``first`` is yielded
    to the task first (so it waits for what ``coro`` waited for), then every value sent or
    exception thrown in goes to ``coro``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._take()
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task (its cancellation): to coro
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _rest(resumed: _Resumed) -> Any:
    return await resumed


def retrieve_outcome(task: asyncio.Task[Any]) -> None:
    """A done callback that retrieves ``task``'s exception, so a failure nobody awaits is not
    logged as never retrieved."""
    if not task.cancelled():
        task.exception()


MAX_RUN_WITHOUT_TURN_S = 0.001
"""How long calls that complete without waiting may run back to back before one yields."""

_turns = threading.local()
"""Per thread: ``(id of the loop, loop time)`` of the last yield of a completed call."""


async def run_shielded_eagerly(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result; see the module docstring."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        loop = asyncio.get_running_loop()
        now = loop.time()
        last: tuple[int, float] | None = getattr(_turns, "last", None)
        if last is None or last[0] != id(loop) or now - last[1] >= MAX_RUN_WITHOUT_TURN_S:
            _turns.last = (id(loop), now)
            await asyncio.sleep(0)
        return result
    return cast(T, await _Driven(coro, first))


def _completes(proxy: asyncio.Future[None]) -> Callable[[asyncio.Future[Any]], None]:
    def complete(_: asyncio.Future[Any]) -> None:
        if not proxy.done():
            proxy.set_result(None)

    return complete


class _Driven(_Suspended):
    """Awaiting this drives the suspended coroutine from the awaiting task: each future ``coro``
    awaits is waited for through a proxy future (cancelling the task cancels only the proxy); an
    exception thrown into the task hands ``coro`` to a task of its own (awaiting what it
    awaited) and is raised at once."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._take()
        while True:
            if getattr(pending, "_asyncio_future_blocking", None) is not None:
                proxy: asyncio.Future[None] = pending.get_loop().create_future()
                pending.add_done_callback(_completes(proxy))
                proxy._asyncio_future_blocking = True
                waited: Any = proxy
            else:  # a bare yield (a turn of the loop) or anything else: the task decides
                waited = pending
            try:
                yield waited
            except GeneratorExit:
                coro.close()
                raise
            except BaseException:  # the caller's cancellation: the work goes on in a task
                task = asyncio.ensure_future(_rest(_Resumed(coro, pending)))
                task.add_done_callback(retrieve_outcome)
                raise
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return stop.value
