"""``ScriptedExecutor``: an executor whose next outcomes you choose, for tests and harnesses.

Script steps, consumed one per run (the ``default`` applies when the script is empty):

* :class:`Succeed` — success, with or without a :class:`RunResult`;
* :class:`Fail` — raise ``ExecutorError`` (or the exception it carries, for instance one the
  session's ``RetryPolicy.retryable`` does not retry);
* :class:`Cancel` — raise ``ExecutorCancelled``;
* :class:`Block` — park inside ``apply`` until :meth:`ScriptedExecutor.release` gives the
  outcome (``parked()`` is then true, which ``MeerkatMachine.settle`` understands).

Everything the runtime did to the executor is recorded: ``applied`` (run id and input ids per
call), ``commands`` (control commands received) and ``starts`` (calls of the attach hook
``start()``). Two misbehaviours can be switched on: ``start_error`` (an exception ``start()``
raises, failing the attachment) and ``ignore_cancel`` (a parked run keeps waiting when told
``CancelCurrentRun``: only cancelling its task ends it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from meerkat_runtime.session.executor import (
    CancelCurrentRun,
    CoreApplyOutput,
    ExecutorCancelled,
    ExecutorError,
    ReceiptDraft,
    RunControlCommand,
    RunPrimitive,
    RunResult,
    StopRuntimeExecutor,
)
from meerkat_runtime.vocab.ids import InputId, RunId


@dataclass(frozen=True, slots=True)
class Succeed:
    result: RunResult | None = None
    session_snapshot: bytes | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """Raise ``error`` when given, else ``ExecutorError(message)``."""

    message: str = "scripted executor failure"
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


@dataclass(frozen=True, slots=True)
class Block:
    pass


Step = Succeed | Fail | Cancel | Block
Final = Succeed | Fail | Cancel


class ScriptedExecutor:
    """A ``CoreExecutor`` driven by a script of outcomes."""

    def __init__(
        self,
        *script: Step,
        default: Step = Succeed(),
        start_error: Exception | None = None,
        ignore_cancel: bool = False,
    ) -> None:
        self._script: deque[Step] = deque(script)
        self.default = default
        self.start_error = start_error
        self.ignore_cancel = ignore_cancel
        self.starts = 0
        self.applied: list[tuple[RunId, tuple[InputId, ...]]] = []
        self.commands: list[RunControlCommand] = []
        self._parked: asyncio.Future[Final] | None = None
        self._parked_event: asyncio.Event | None = None

    def push(self, *steps: Step) -> None:
        """Append steps to the script."""
        self._script.extend(steps)

    @property
    def stopped(self) -> bool:
        return any(isinstance(c, StopRuntimeExecutor) for c in self.commands)

    def parked(self) -> bool:
        """True while an ``apply`` waits for :meth:`release`."""
        return self._parked is not None and not self._parked.done()

    def release(self, outcome: Final = Succeed()) -> None:
        """Finish the parked run with ``outcome``; ``RuntimeError`` if nothing is parked."""
        if not self.parked():
            raise RuntimeError("no run is parked in the scripted executor")
        assert self._parked is not None
        self._parked.set_result(outcome)

    async def wait_parked(self, timeout: float = 5.0) -> None:
        """Wait until a run is parked."""
        async with asyncio.timeout(timeout):
            while not self.parked():
                await asyncio.sleep(0.0005)

    async def start(self) -> None:
        """The attach hook: counts the call, then raises ``start_error`` if one is set."""
        self.starts += 1
        if self.start_error is not None:
            raise self.start_error

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        self.applied.append((run_id, primitive.contributing_input_ids))
        step = self._script.popleft() if self._script else self.default
        if isinstance(step, Block):
            future: asyncio.Future[Final] = asyncio.get_running_loop().create_future()
            self._parked = future
            try:
                step = await future
            finally:
                self._parked = None
        if isinstance(step, Fail):
            raise step.error if step.error is not None else ExecutorError(step.message)
        if isinstance(step, Cancel):
            raise ExecutorCancelled("scripted cancellation")
        draft = ReceiptDraft(primitive.contributing_input_ids)
        return CoreApplyOutput(draft, step.session_snapshot, step.result)

    async def control(self, command: RunControlCommand) -> None:
        self.commands.append(command)
        if isinstance(command, CancelCurrentRun) and self.ignore_cancel:
            return
        if isinstance(command, CancelCurrentRun | StopRuntimeExecutor) and self.parked():
            assert self._parked is not None
            self._parked.set_result(Cancel())
