"""The per-session run loop: an asyncio task that drains the session's lanes into its executor.

On each wake it repeats: under the gate, take one input (steer lane first, else the queue
lane's head) and stage it as a new run; release the gate and await ``executor.apply``;
under the gate again, commit the outcome:

* success → boundary commit (``atomic_apply``), waiters resolve;
* failure → the input is requeued at the back of its lane (abandoned after its 3rd failed
  attempt) with one lifecycle commit, and the loop keeps draining — the requeued input
  included, so a lone failing input is tried 3 times in a row and then abandoned; the attempt
  budget bounds the retries, so a failing executor never spins;
* cancellation → the input is abandoned (``cancelled``);
* boundary-commit failure → the input is Queued again, the runtime Idle, the loop detaches
  and the executor is told to stop;
* failure to commit a failed or cancelled run (the terminal snapshot) → the session is
  unregistered through ``on_fatal`` and the error kept in ``session.last_error``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from meerkat_runtime.session.core import CurrentRun
from meerkat_runtime.session.executor import (
    CoreApplyOutput,
    CoreExecutor,
    ExecutorCancelled,
    RunPrimitive,
    StopRuntimeExecutor,
)
from meerkat_runtime.session.run_commit import BoundaryCommitFailed, check_receipt, commit_end, commit_success
from meerkat_runtime.session.runtime_session import LoopState, RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed
from meerkat_runtime.vocab.ids import new_run_id

FatalHandler = Callable[[RuntimeSession, BaseException], Awaitable[None]]


class _Outcome:
    __slots__ = ("cancelled", "error", "output")

    def __init__(
        self, output: CoreApplyOutput | None = None, error: BaseException | None = None, cancelled: bool = False
    ) -> None:
        self.output = output
        self.error = error
        self.cancelled = cancelled


async def apply_run(
    session: RuntimeSession, executor: CoreExecutor, run: CurrentRun, primitive: RunPrimitive
) -> _Outcome:
    """Run ``executor.apply`` as its own task (so an interrupt can cancel it) and classify the
    result. Cancelling the caller cancels the apply too."""
    task: asyncio.Task[Any] = asyncio.ensure_future(executor.apply(run.run_id, primitive))
    session.apply_task = task
    session.applying_run = run.run_id
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        if session.apply_task is task:
            session.apply_task = None
            session.applying_run = None
    if task.cancelled():
        return _Outcome(cancelled=True)
    exc = task.exception()
    if isinstance(exc, ExecutorCancelled):
        return _Outcome(cancelled=True)
    if exc is not None:
        return _Outcome(error=exc)
    output = task.result()
    if not isinstance(output, CoreApplyOutput):
        return _Outcome(error=TypeError(f"executor returned {type(output).__name__}, not CoreApplyOutput"))
    try:
        check_receipt(run, output)
    except Exception as bad:
        return _Outcome(error=bad)
    return _Outcome(output=output)


async def run_loop(session: RuntimeSession, executor: CoreExecutor, on_fatal: FatalHandler) -> None:
    """Body of the loop task; returns when the session detaches it."""
    me = asyncio.current_task()
    try:
        while True:
            session.loop_state = LoopState.WAITING
            await session.wake_event.wait()
            session.wake_event.clear()
            if session.loop_task is not me:
                return
            session.loop_state = LoopState.WORKING
            if not await _drain(session, executor, me, on_fatal):
                return
    finally:
        if session.loop_task is me or session.loop_task is None:
            session.loop_state = LoopState.DETACHED


async def _drain(
    session: RuntimeSession, executor: CoreExecutor, me: asyncio.Task[Any] | None, on_fatal: FatalHandler
) -> bool:
    """Run inputs until no run can start (the lanes are empty, or the phase does not drain).
    Returns ``False`` when the loop must exit."""
    core = session.core
    while True:
        async with session.gate:
            if session.loop_task is not me:
                return False
            session.wake_event.clear()  # this drain serves every wake that arrived so far
            candidate = core.next_candidate() if core.can_start_run() else None
            if candidate is None:
                return True
            run = core.start_run(new_run_id(), candidate, time.time())
            primitive = RunPrimitive(run.run_id, tuple(core.ledger.records[i].input for i in run.input_ids))
        session.loop_state = LoopState.APPLYING
        outcome = await apply_run(session, executor, run, primitive)
        session.loop_state = LoopState.WORKING
        stop_reason: str | None = None
        fatal: BaseException | None = None
        async with session.gate:
            if session.loop_task is not me:
                return False
            if core.current_run is None or core.current_run.run_id != run.run_id:
                continue  # interrupted, stopped or destroyed while applying
            try:
                if outcome.output is not None:
                    await commit_success(session, run, outcome.output)
                else:
                    await commit_end(session, run, cancelled=outcome.cancelled)
            except BoundaryCommitFailed as exc:
                session.last_error = exc
                session.detach()
                stop_reason = f"runtime boundary commit failed: {exc.cause}"
            except DurableWriteFailed as exc:
                session.last_error = exc
                fatal = exc
        if stop_reason is not None:
            await _stop_executor(executor, stop_reason)
            return False
        if fatal is not None:
            await on_fatal(session, fatal)
            return False


async def _stop_executor(executor: CoreExecutor, reason: str) -> None:
    try:
        await executor.control(StopRuntimeExecutor(reason))
    except Exception:  # an executor failing to stop must not take the caller down
        return
