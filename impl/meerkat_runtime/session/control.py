"""Lifecycle control of one session: retire, reset, recycle, stop, destroy, interrupt.

Each operation, under the session gate: checkpoint → in-memory transition → one durable
lifecycle commit (new phase + every row that differs from the store, including rows changed by
earlier steps that wrote nothing, such as a failed boundary commit) → publish (resolve
waiters). An operation that changes nothing (retiring a Retired runtime) writes nothing. If
the commit fails, memory is restored exactly and ``DurableWriteFailed`` is raised; nothing was
published, so Stopped or Destroyed is never visible before it is durable. Executors are told
to stop only after the gate is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from meerkat_runtime.session.core import Effects
from meerkat_runtime.session.executor import CancelCurrentRun, CoreExecutor, StopRuntimeExecutor
from meerkat_runtime.session.reports import (
    DestroyReport,
    InterruptReport,
    RecycleReport,
    ResetReport,
    RetireReport,
    StopReport,
)
from meerkat_runtime.session.run_commit import commit_end
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed

R = TypeVar("R")

Detached = tuple[CoreExecutor | None, "asyncio.Task[None] | None", "asyncio.Task[Any] | None"]


async def _commit_control(
    session: RuntimeSession, name: str, transition: Callable[[float], tuple[R, Effects]]
) -> tuple[R, Effects]:
    """Run ``transition`` and make it durable; restore and raise on a failed write. A no-op
    transition writes nothing (so a failing store cannot fail it)."""
    core = session.core
    ids = core.ledger.active_ids()
    cp = core.checkpoint(ids)
    report, effects = transition(time.time())
    if effects.noop:
        return report, effects
    try:
        # the staged row of a run in flight is dirty too: it goes to disk (recovery requeues it)
        await session.persistence.commit_lifecycle(core.durable_phase(), core.ledger)
    except Exception as exc:
        core.restore(cp)
        raise DurableWriteFailed(name, exc) from exc
    return report, effects


async def _control(session: RuntimeSession, name: str, transition: Callable[[float], tuple[R, Effects]]) -> R:
    """Under the session gate (the caller holds it): check the session is registered, run
    ``transition`` durably (:func:`_commit_control`) and publish its effects."""
    session.check_registered()
    report, effects = await _commit_control(session, name, transition)
    session.publish(effects)
    return report


async def _halt(session: RuntimeSession, name: str, transition: Callable[[float], tuple[R, Effects]], reason: str) -> R:
    """Stop or destroy: the control transition under the gate, detaching the loop; then, with
    the gate released, stop the detached loop and executor (``reason``)."""
    async with session.gate:
        report = await _control(session, name, transition)
        parts = session.detach()
    await stop_detached(parts, reason)
    return report


async def stop_detached(parts: Detached, reason: str) -> None:
    """Cancel a detached loop / in-flight apply and tell the executor to stop (once)."""
    executor, loop_task, apply_task = parts
    current = asyncio.current_task()
    for task in (apply_task, loop_task):
        if task is not None and task is not current and not task.done():
            task.cancel()
    if executor is not None:
        try:
            await executor.control(StopRuntimeExecutor(reason))
        except Exception:  # a misbehaving executor must not fail the control operation
            return


async def retire(session: RuntimeSession) -> RetireReport:
    async with session.gate:
        report = await _control(session, "retire_runtime", session.core.retire)
        if report.inputs_pending_drain:
            session.wake()
    return report


async def reset(session: RuntimeSession) -> ResetReport:
    async with session.gate:
        return await _control(session, "reset_runtime", session.core.reset)


async def recycle(session: RuntimeSession) -> RecycleReport:
    async with session.gate:
        report = await _control(session, "recycle_runtime", lambda _now: session.core.recycle())
        session.wake()
    return report


async def stop(session: RuntimeSession) -> StopReport:
    return await _halt(session, "stop_runtime", session.core.stop, "runtime stopped")


async def destroy(session: RuntimeSession) -> DestroyReport:
    return await _halt(session, "destroy_runtime", session.core.destroy, "runtime destroyed")


async def interrupt(session: RuntimeSession) -> InterruptReport:
    """Cancel the run in flight: its inputs become Abandoned(cancelled), waiters get
    ``cancelled``, the phase returns to the pre-run phase. No run → no-op."""
    async with session.gate:
        session.check_registered()
        run = session.core.current_run
        if run is None:
            return InterruptReport(())
        await commit_end(session, run, cancelled=True)
        apply_task = session.apply_task if session.applying_run == run.run_id else None
        executor = session.executor
    if executor is not None and not session.executor_stopped:
        with contextlib.suppress(Exception):  # the run is already cancelled; the executor is advisory
            await executor.control(CancelCurrentRun("interrupted"))
    if apply_task is not None and apply_task is not asyncio.current_task() and not apply_task.done():
        apply_task.cancel()
    return InterruptReport(tuple(run.input_ids))
