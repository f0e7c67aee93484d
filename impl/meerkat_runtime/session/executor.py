"""The executor protocol: what the run loop hands work to, and what it gets back.

An executor runs one *run* at a time: ``apply(run_id, primitive)`` performs the turn (the slow
part, e.g. an LLM call) and returns a :class:`CoreApplyOutput` whose receipt draft names the
inputs that contributed, in order. The runtime mints the final boundary receipt (run id and
sequence) itself, so an executor cannot forge one. Raising :class:`ExecutorError` fails the
run (inputs are retried); raising :class:`ExecutorCancelled` cancels it.

``control(command)`` delivers out-of-band commands: cancel the current run, cancel after the
next boundary, or stop (``StopRuntimeExecutor``: the loop driving the executor is gone). After a
stop the runtime calls ``apply`` again only if it attaches the executor again, ``start()``
first: a machine built with ``reattach=True`` (the default) does so after a failed boundary
commit, once the store answers (:mod:`meerkat_runtime.session.reattach`), so an executor must
accept being started again after a stop, or the application builds the machine with
``reattach=False`` and attaches a loop itself. A shutdown waits for
``StopRuntimeExecutor`` at most ``EXECUTOR_STOP_LIMIT_S`` (5 s,
:mod:`meerkat_runtime.session.runtime_session`): after that the call is cancelled and the
executor abandoned. A shutdown, stop or destroy that finds ``start()`` still running (an attach
in progress) does not wait for it: the call is cancelled at once, waited for at most
``EXECUTOR_STOP_LIMIT_S``, then abandoned, and nothing is attached (``attach_failed``). A
``start()`` that returns all the same (it ignored the cancellation) is followed by
``control(StopRuntimeExecutor("start given up"))``, so the executor does not run unowned.

An executor may also define ``async def start(self) -> None`` (optional, see
:func:`start_executor`): it is awaited each time the executor's run loop is attached, before the
loop exists; if it raises, nothing is attached (``ExecutorStartFailed``, the model's
``attach_failed``). Open connections or warm caches there. An object without a callable
``apply`` or ``control`` is refused the same way, before ``start()``.

The run loop treats a call to ``apply`` that raises before returning an awaitable, or that
returns something not awaitable (a plain ``def apply``), as a failed run, like an error raised
by the awaited ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from meerkat_runtime.session.inputs import Input
from meerkat_runtime.store.records import BoundaryKind
from meerkat_runtime.vocab.ids import InputId, RunId


@dataclass(frozen=True, slots=True)
class RunPrimitive:
    """The work of one run: the contributing inputs, in order."""

    run_id: RunId
    inputs: tuple[Input, ...]

    @property
    def contributing_input_ids(self) -> tuple[InputId, ...]:
        return tuple(item.header.id for item in self.inputs)


@dataclass(frozen=True, slots=True)
class ReceiptDraft:
    """The executor's account of a committed boundary; the runtime adds run id and sequence."""

    contributing_input_ids: tuple[InputId, ...]
    boundary: BoundaryKind = BoundaryKind.RUN_START
    conversation_digest: str | None = None
    message_count: int = 0


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced for the caller waiting on its completion handle."""

    text: str
    turns: int = 1
    tool_calls: int = 0
    tokens_used: int = 0


@dataclass(frozen=True, slots=True)
class CoreApplyOutput:
    """A successful run: the receipt draft, an optional session snapshot, an optional result."""

    receipt: ReceiptDraft
    session_snapshot: bytes | None = None
    run_result: RunResult | None = None


class ExecutorError(Exception):
    """The run failed; its inputs go back to the queue (or are abandoned after 3 attempts)."""


class ExecutorCancelled(ExecutorError):
    """The run was cancelled; its inputs are abandoned with reason ``cancelled``."""


@dataclass(frozen=True, slots=True)
class CancelCurrentRun:
    reason: str


@dataclass(frozen=True, slots=True)
class CancelAfterBoundary:
    reason: str


@dataclass(frozen=True, slots=True)
class StopRuntimeExecutor:
    reason: str


RunControlCommand = CancelCurrentRun | CancelAfterBoundary | StopRuntimeExecutor


@runtime_checkable
class CoreExecutor(Protocol):
    """Runs turns for one session. Called from the session's run loop, one run at a time."""

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        """Run the turn; raise ``ExecutorError`` to fail it, ``ExecutorCancelled`` to cancel it."""
        ...

    async def control(self, command: RunControlCommand) -> None:
        """Receive a control command; must not raise for commands it does not act on."""
        ...


class StartableExecutor(CoreExecutor, Protocol):
    """A ``CoreExecutor`` with the optional attach hook: ``start()`` is awaited each time its run
    loop is attached (again after a failed boundary commit, when the machine re-attaches it);
    raising fails the attachment (``ExecutorStartFailed``). It runs in a task of its own, which a
    shutdown of the session (``close``, ``unregister_session``, ``halt``, the lease lost) or a
    stop or destroy cancels if it is still running, waiting at most ``EXECUTOR_STOP_LIMIT_S`` for
    it to end; nothing is attached then (``attach_failed``), and if it returns all the same the
    executor is told to stop."""

    async def start(self) -> None: ...


async def start_executor(executor: CoreExecutor) -> None:
    """Check that ``executor`` has a callable ``apply`` and ``control`` (``TypeError`` if not),
    then await ``executor.start()`` when the executor defines it (the optional attach hook); an
    executor without one starts at once. Whatever ``start()`` raises propagates."""
    for name in ("apply", "control"):
        if not callable(getattr(executor, name, None)):
            raise TypeError(f"{type(executor).__name__} is not an executor: it has no callable {name}()")
    start = getattr(executor, "start", None)
    if start is None:
        return
    if not callable(start):
        raise TypeError(f"{type(executor).__name__}.start is not callable")
    await start()


def success_output(primitive: RunPrimitive, result: RunResult | None = None) -> CoreApplyOutput:
    """The usual successful output: every contributing input, a run-start boundary."""
    return CoreApplyOutput(ReceiptDraft(primitive.contributing_input_ids), None, result)
