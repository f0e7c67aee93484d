"""Completion handles: one future per waiter, resolved exactly once per input.

Outcomes: :class:`Completed` (with the run result), :class:`CompletedWithoutResult`,
:class:`Cancelled`, :class:`Abandoned` (max attempts, superseded, coalesced) and
:class:`RuntimeTerminated` (reset, destroy, stop, unregister, retire without a loop) and
:class:`LostOwnership` (another worker took the session's lease over; the input's fate is now
that worker's — it is still stored, Queued or Consumed).
The registry only carries outcomes; which outcome an input gets is decided by the session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.vocab.errors import describe_error
from meerkat_runtime.vocab.ids import InputId


@dataclass(frozen=True, slots=True)
class Completed:
    result: RunResult
    kind = "completed"


@dataclass(frozen=True, slots=True)
class CompletedWithoutResult:
    kind = "completed_without_result"


@dataclass(frozen=True, slots=True)
class Cancelled:
    kind = "cancelled"


MAX_FAILURE_MESSAGE = 4096
"""Characters of an executor error's message kept with a failed input (the rest is cut)."""


@dataclass(frozen=True, slots=True)
class RunFailure:
    """Why a run failed, as stored with its input: the error's type name and message."""

    error_type: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> RunFailure:
        """``error`` described (:func:`describe_error`): never raises."""
        error_type, message = describe_error(error)
        if len(message) > MAX_FAILURE_MESSAGE:
            message = message[:MAX_FAILURE_MESSAGE] + "…"
        message = message.encode("utf-8", "replace").decode("utf-8")
        return cls(error_type, message)


@dataclass(frozen=True, slots=True)
class Abandoned:
    """The input will not run (again): ``reason`` is ``max_attempts_exhausted``, ``superseded``
    or ``coalesced``; ``error`` is the last run failure of an input abandoned after its attempts
    (kept with the row; not part of equality, which compares the reason)."""

    reason: str
    error: RunFailure | None = field(default=None, compare=False)
    kind = "abandoned"


@dataclass(frozen=True, slots=True)
class RuntimeTerminated:
    reason: str
    kind = "runtime_terminated"


@dataclass(frozen=True, slots=True)
class LostOwnership:
    reason: str
    kind = "ownership_lost"


CompletionOutcome = Completed | CompletedWithoutResult | Cancelled | Abandoned | RuntimeTerminated | LostOwnership


class CompletionHandle:
    """Awaitable result of one accepted input."""

    __slots__ = ("_future", "input_id")

    def __init__(self, input_id: InputId, future: asyncio.Future[CompletionOutcome]) -> None:
        self.input_id = input_id
        self._future = future

    async def wait(self) -> CompletionOutcome:
        """The outcome, once the input reaches a final result. Cancelling the wait does not
        cancel the input."""
        return await asyncio.shield(self._future)

    def done(self) -> bool:
        return self._future.done()

    def outcome(self) -> CompletionOutcome | None:
        """The outcome if already resolved, else ``None``."""
        return self._future.result() if self._future.done() else None


class CompletionRegistry:
    """Waiters per input. Each waiter resolves exactly once; later resolutions are ignored."""

    def __init__(self) -> None:
        self._waiters: dict[InputId, list[asyncio.Future[CompletionOutcome]]] = {}
        self.resolved: dict[InputId, CompletionOutcome] = {}

    def register(self, input_id: InputId) -> CompletionHandle:
        future: asyncio.Future[CompletionOutcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(input_id, []).append(future)
        return CompletionHandle(input_id, future)

    def has_waiters(self, input_id: InputId) -> bool:
        return bool(self._waiters.get(input_id))

    def pending_ids(self) -> list[InputId]:
        return list(self._waiters)

    def resolve(self, input_id: InputId, outcome: CompletionOutcome) -> int:
        """Resolve every waiter of ``input_id``; returns how many were resolved."""
        futures = self._waiters.pop(input_id, None)
        if not futures:
            return 0
        self.resolved[input_id] = outcome
        count = 0
        for future in futures:
            if not future.done():
                future.set_result(outcome)
                count += 1
        return count

    def resolved_handle(self, input_id: InputId, outcome: CompletionOutcome) -> CompletionHandle:
        """A handle already resolved with ``outcome`` (the stored outcome of a finished input)."""
        future: asyncio.Future[CompletionOutcome] = asyncio.get_running_loop().create_future()
        future.set_result(outcome)
        return CompletionHandle(input_id, future)

    def resolve_all(self, outcome: CompletionOutcome) -> int:
        """Resolve every waiter of every input (reset, stop, destroy, unregister)."""
        return sum(self.resolve(input_id, outcome) for input_id in list(self._waiters))
