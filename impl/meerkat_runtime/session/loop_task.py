"""The loop task of a session: an asyncio task that drains the session's lanes into its executor
(the shell of the core's run rules, :mod:`meerkat_runtime.session.core.run_loop`).

On each wake it repeats: under the gate, take one input (steer lane first, else the queue
lane's head) and stage it as a new run (``start_run``); release the gate and await
``executor.apply``; then end the run through :func:`~meerkat_runtime.session.run_end.end_run`
(the path ``accept_input_and_run`` shares): success, failure (requeued at the back of its lane,
abandoned after its 3rd failed attempt; the loop keeps draining, so a lone failing input is
tried ``max_attempts`` times and then abandoned, after the retry policy's backoff between
attempts, and a failing executor never spins), cancellation,
a failed boundary commit (the loop detaches, the executor is told to stop and ``on_detached``
is handed it: the machine attaches it again once the store answers), a failed
terminal snapshot (the session is unregistered through ``on_fatal``) or a commit refused for
ownership (the loop stops).

Something unexpected escaping a run or its end (a defect, not the executor's error: a retry
predicate that raises, a failure publishing the run's start) fails the run with that error, as
an executor error does (the loop lives on); should ending it that way raise as well, the run is
dropped (:func:`~meerkat_runtime.session.run_end.drop_stranded`: as a failed boundary commit,
the loop detached; the session is never left Running with no loop to end the run) and the loop
exits.

A Queued input recovered without decoding its row
(:mod:`~meerkat_runtime.session.packed_record`) is decoded when the loop takes it; a row that
does not decode stops the loop before anything is staged, with ``last_error`` the
``RecoveryCorruption`` naming the input (as a registration would have refused it): the row is
then quarantined with the repair tooling and the session registered again.

An in-doubt session (a write's outcome unknown) reconciles with the store before the loop stages
anything; while the store cannot be read the loop waits for the next wake.

Ownership: before each run the session's claim renews its lease if a renewal is overdue (a
stalled process must not start a run on a lease another worker may hold by now), and the loop
stops as soon as the claim is lost, before it stages another input.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from meerkat_runtime.session.commit import install_start
from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.executor import CoreApplyOutput, CoreExecutor, ExecutorCancelled, RunPrimitive
from meerkat_runtime.session.packed_record import unpack
from meerkat_runtime.session.reconcile import reconcile
from meerkat_runtime.session.run_end import (
    DetachedHandler,
    FatalHandler,
    RunEnd,
    RunOutcome,
    check_receipt,
    drop_stranded,
    end_run,
)
from meerkat_runtime.session.runtime_session import LoopState, RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed, RecoveryCorruption
from meerkat_runtime.vocab.ids import new_run_id


async def apply_run(
    session: RuntimeSession, executor: CoreExecutor, run: CurrentRun, primitive: RunPrimitive
) -> RunOutcome:
    """Run ``executor.apply`` as its own task (so an interrupt can cancel it) and classify the
    result. Cancelling the caller cancels the apply too.

    A call to ``apply`` that raises before returning an awaitable (or an executor without
    ``apply``), or one that returns something not awaitable (a plain ``def apply``), fails the run
    like an error the apply raised: the run ends through the executor-failure rule (retried, then
    abandoned), and the loop lives on."""
    task: asyncio.Task[Any] = asyncio.ensure_future(_apply(executor, run, primitive))
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
        return RunOutcome(cancelled=True)
    error = task.exception()
    if error is not None:
        return _failed(error)
    output = task.result()
    if not isinstance(output, CoreApplyOutput):
        return RunOutcome(error=TypeError(f"executor returned {type(output).__name__}, not CoreApplyOutput"))
    try:
        check_receipt(run, output, session)
    except Exception as bad:
        return RunOutcome(error=bad)
    return RunOutcome(output=output)


async def awaited(op: Callable[..., Any], *args: Any) -> Any:
    """Call ``op(*args)`` and await what it returns, inside the coroutine (so inside the task
    that runs it): a call that raises, or returns something not awaitable, is that task's error,
    never the caller's (for ``accept_input_and_run``'s ``op``)."""
    pending = op(*args)
    if not inspect.isawaitable(pending):
        raise TypeError(
            f"{getattr(op, '__qualname__', type(op).__name__)} returned {type(pending).__name__}, not an awaitable"
        )
    return await pending


async def _apply(executor: CoreExecutor, run: CurrentRun, primitive: RunPrimitive) -> Any:
    """``executor.apply`` for ``run``, looked up, called and awaited inside the apply task (an
    executor without ``apply`` fails the task like any other apply error)."""
    return await awaited(executor.apply, run.run_id, primitive)


def _failed(exc: BaseException) -> RunOutcome:
    """How a run whose executor raised ``exc`` ends: cancelled for ``ExecutorCancelled``, else failed."""
    if isinstance(exc, ExecutorCancelled):
        return RunOutcome(cancelled=True)
    return RunOutcome(error=exc)


async def run_loop(
    session: RuntimeSession,
    executor: CoreExecutor,
    on_fatal: FatalHandler,
    on_detached: DetachedHandler | None = None,
) -> None:
    """Body of the loop task; returns when the session detaches it."""
    me = asyncio.current_task()
    try:
        while True:
            session.loop_state = LoopState.WAITING
            await session.wake_event.wait()
            session.wake_event.clear()
            if session.loop_task is not me or session.lost is not None:
                return
            session.loop_state = LoopState.WORKING
            if not await _drain(session, executor, me, on_fatal, on_detached):
                return
    finally:
        if session.loop_task is me or session.loop_task is None:
            session.loop_state = LoopState.DETACHED


async def _drain(
    session: RuntimeSession,
    executor: CoreExecutor,
    me: asyncio.Task[Any] | None,
    on_fatal: FatalHandler,
    on_detached: DetachedHandler | None = None,
) -> bool:
    """Run inputs until no run can start (the lanes are empty, or the phase does not drain).
    Returns ``False`` when the loop must exit."""
    core = session.core
    while True:
        await session.claim.ensure_fresh()
        async with session.gate:
            if session.loop_task is not me or session.lost is not None:
                return False
            try:
                await reconcile(session, "start_run")
            except DurableWriteFailed as exc:  # the store cannot be read: wait for the next wake
                session.last_error = exc
                return True
            if session.loop_task is not me:
                return False
            session.wake_event.clear()  # this drain serves every wake that arrived so far
            candidate = core.next_candidate() if core.can_start_run() else None
            if candidate is None:
                return True
            try:
                unpack(core.ledger.records[candidate])
            except RecoveryCorruption as exc:  # a row read lazily does not decode: stop, naming it
                session.last_error = exc
                return False
            plan = core.start_run(new_run_id(), candidate, time.time())
            run = plan.current_run
            assert run is not None
            unstarted = install_start(session, plan)
            if unstarted is None:
                primitive = RunPrimitive(run.run_id, tuple(core.ledger.records[i].input for i in run.input_ids))
        if unstarted is not None:
            await drop_stranded(session, run, unstarted)
            raise unstarted
        attempt = plan.records[run.input_ids[0]].attempts
        session.loop_state = LoopState.APPLYING
        try:
            outcome = await apply_run(session, executor, run, primitive)
            session.loop_state = LoopState.WORKING
            ended, _ = await end_run(session, run, outcome, on_fatal, loop_task=me, on_detached=on_detached)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as defect:  # not the executor's error (apply_run classifies that)
            session.loop_state = LoopState.WORKING
            outcome = RunOutcome(error=defect)
            ended = await _end_after_defect(session, run, defect, on_fatal, me, on_detached)
        if ended in (RunEnd.LOOP_GONE, RunEnd.DETACHED, RunEnd.FATAL, RunEnd.OWNERSHIP_LOST):
            return False
        if outcome.error is not None and ended is RunEnd.COMMITTED:
            delay = session.retry.delay(attempt)
            if delay > 0:  # backoff: the next run waits; the gate is free meanwhile
                session.loop_state = LoopState.BACKOFF
                await asyncio.sleep(delay)
                session.loop_state = LoopState.WORKING


async def _end_after_defect(
    session: RuntimeSession,
    run: CurrentRun,
    defect: BaseException,
    on_fatal: FatalHandler,
    me: asyncio.Task[Any] | None,
    on_detached: DetachedHandler | None,
) -> RunEnd:
    """Something unexpected escaped the run or its end (``defect``, kept in ``last_error``): end
    ``run`` as failed with ``defect`` as its error, as an executor error would (requeued, or
    abandoned at its last attempt: a defect that recurs cannot keep an input running), so the
    loop lives on; nothing to do when the run already ended (``RunEnd.STALE``). Should that end
    raise as well, the run is dropped (:func:`~meerkat_runtime.session.run_end.drop_stranded`)
    and the error re-raised: the loop exits and is detached, its session no longer Running."""
    session.last_error = defect
    try:
        ended, _ = await end_run(
            session, run, RunOutcome(error=defect), on_fatal, loop_task=me, on_detached=on_detached
        )
    except asyncio.CancelledError:
        raise
    except BaseException as again:
        await drop_stranded(session, run, again)
        raise
    return ended
