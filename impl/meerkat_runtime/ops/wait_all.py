"""The result of ``wait_all`` and the handle a caller awaits.

A ``WaitAllHandle`` resolves once, with a ``WaitAllResult`` whose outcomes are in request
order and were read when the last member became terminal. It can be awaited from any event
loop, blocked on from a thread (``result(timeout)``), or cancelled (``cancel()``). Cancelling
the task that awaits it, or dropping the last reference to a pending handle, cancels the
barrier too; a cancelled handle raises ``WaitAllCancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import TerminalOutcome


@dataclass(frozen=True, slots=True)
class WaitAllSatisfied:
    """Proof that one barrier was satisfied: its request id and member ids (request order)."""

    wait_request_id: str
    operation_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WaitAllResult:
    """Every member's terminal outcome, in request order."""

    outcomes: tuple[tuple[str, TerminalOutcome], ...]
    satisfied: WaitAllSatisfied


class WaitAllHandle:
    """A pending or finished ``wait_all``. Single consumer: cancelling an awaiting task
    cancels the barrier."""

    __slots__ = ("__weakref__", "_cancel", "_drop", "_shot", "operation_ids", "wait_request_id")

    def __init__(
        self,
        wait_request_id: str,
        operation_ids: tuple[str, ...],
        shot: OneShot[WaitAllResult],
        cancel: Callable[[str], bool] | None = None,
        drop: Callable[[str], None] | None = None,
    ) -> None:
        self.wait_request_id = wait_request_id
        self.operation_ids = operation_ids
        self._shot = shot
        self._cancel = cancel
        self._drop = drop

    def done(self) -> bool:
        """Resolved (satisfied or cancelled)."""
        return self._shot.done()

    def cancel(self) -> bool:
        """Clear the barrier if it is still pending; returns whether this call cancelled it."""
        if self._shot.done() or self._cancel is None:
            return False
        return self._cancel(self.wait_request_id)

    def result(self, timeout: float | None = None) -> WaitAllResult:
        """Block until resolved; ``TimeoutError`` after ``timeout`` s (the barrier stays active)."""
        return self._shot.result(timeout)

    async def wait(self) -> WaitAllResult:
        try:
            return await self._shot.wait()
        except asyncio.CancelledError:
            self.cancel()
            raise

    def __await__(self) -> Generator[Any, None, WaitAllResult]:
        return self.wait().__await__()

    def __del__(self) -> None:
        try:
            if self._drop is not None and not self._shot.done():
                self._drop(self.wait_request_id)
        except Exception:  # pragma: no cover - interpreter shutdown
            return

    def __repr__(self) -> str:
        state = "resolved" if self.done() else "pending"
        return f"WaitAllHandle({self.wait_request_id!r}, {list(self.operation_ids)!r}, {state})"
