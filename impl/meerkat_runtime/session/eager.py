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
rest of it runs in a task (resumed exactly where it stopped, awaiting what it awaited) and the
caller awaits that task shielded, as before: a cancelled caller gets ``CancelledError`` while
the task finishes on its own. An exception ``coro`` raises before suspending propagates at once.

While ``coro`` runs on the caller's stack, ``asyncio.current_task()`` is the caller's task:
use this only for coroutines that do not compare tasks (the accept path).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class _Resumed:
    """Awaiting this resumes ``coro``, which suspended on ``first``: ``first`` is yielded to
    the task first (so it waits for what ``coro`` waited for), then every value sent or
    exception thrown in goes to ``coro``."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._first
        self._first = None
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


def _retrieve(task: asyncio.Task[Any]) -> None:
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
    task = asyncio.ensure_future(_rest(_Resumed(coro, first)))
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)
