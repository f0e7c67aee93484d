"""The run ``accept_input_and_run`` starts and ends (the caller drives it through its ``op``).

The call's work — accept, stage, await ``op``, commit the run's end — runs in a task of its own
(:func:`drive`), which the caller awaits through a shield. Cancelling the caller therefore never
interrupts a durable step between its write and its in-memory publish (the accept, or the run's
boundary or lifecycle commit): ``op`` is cancelled if it has not returned yet
(:meth:`DirectCall.cancel`; the run then ends as an interrupt), the task commits how the run
ended — as the boundary when ``op`` had already returned — and the caller gets ``CancelledError``
once that commit is over (a second cancellation stops the wait; the task finishes regardless).
Either way memory and the store agree once that commit is over, and the session takes the next
run. (The session model has no caller-cancellation step: each step stays atomic, as it assumes.)

:func:`finish` waits for ``op`` and ends the run through
:func:`~meerkat_runtime.session.run_end.end_run`, the path the run loop shares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.eager import retrieve_outcome
from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorCancelled
from meerkat_runtime.session.run_end import DetachedHandler, FatalHandler, RunEnd, RunOutcome, check_receipt, end_run
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, MachineClosed

T = TypeVar("T")


class DirectCall:
    """The caller's side of one ``accept_input_and_run``: whether it was cancelled, and the
    task running its ``op`` once the run started."""

    __slots__ = ("cancelled", "op_task")

    def __init__(self) -> None:
        self.cancelled = False
        self.op_task: asyncio.Task[Any] | None = None

    def cancel(self) -> None:
        """The caller was cancelled: cancel ``op`` now, or as soon as the run starts (a no-op once
        ``op`` returned: its run's end is committed as it is)."""
        self.cancelled = True
        if self.op_task is not None:
            self.op_task.cancel()

    def started(self, op_task: asyncio.Task[Any]) -> None:
        """The run started with ``op_task`` running ``op`` (cancelled at once if the caller was)."""
        self.op_task = op_task
        if self.cancelled:
            op_task.cancel()

    async def drive(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result, ``work`` running in a task of its own: cancelling the caller cancels
        ``op`` (:meth:`cancel`), never ``work``, and raises ``CancelledError`` once ``work`` has
        committed how the run ended (so a retry made right after finds the session free); a
        second cancellation stops that wait, and ``work`` then finishes on its own (its outcome
        retrieved)."""
        task = asyncio.ensure_future(work)
        task.add_done_callback(retrieve_outcome)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError as cancelled:
            self.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # a second cancellation: stop waiting
                await asyncio.wait({task})
            raise cancelled from None


def stale(session: RuntimeSession, run: CurrentRun, what: str) -> Exception:
    """The error of a run whose end was not committed because it was no longer current:
    ``MachineClosed`` when the machine's ``close()`` unregistered the session, else
    ``InvalidRuntimeTransition`` naming ``what`` (interrupted, stopped, destroyed, unregistered,
    halted)."""
    if session.unregistered and session.closed_with_machine:
        return MachineClosed(f"finish run {run.run_id} of session {str(session.session_id)!r}")
    return InvalidRuntimeTransition(session.core.phase.value, what)


async def finish(
    session: RuntimeSession,
    run: CurrentRun,
    task: asyncio.Task[tuple[T, CoreApplyOutput]],
    on_fatal: FatalHandler,
    on_detached: DetachedHandler,
) -> T:
    """Wait for the ``op`` of ``run`` (running in ``task``), commit how it ended and return its
    value (or raise, see ``MeerkatMachine.accept_input_and_run``)."""
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:  # this task itself is cancelled (the event loop's teardown)
        task.cancel()
        await end_run(session, run, RunOutcome(cancelled=True), on_fatal)
        raise
    finally:
        if session.apply_task is task:
            session.apply_task = None
            session.applying_run = None
    if task.cancelled():
        ended, error = await end_run(session, run, RunOutcome(cancelled=True), on_fatal)
        if error is not None:
            raise error
        if ended is RunEnd.STALE:
            raise stale(
                session,
                run,
                f"finish run {run.run_id}: it was interrupted, or the runtime stopped, destroyed or unregistered",
            )
        raise ExecutorCancelled(f"run {run.run_id} was cancelled")
    try:
        value, output = task.result()
        check_receipt(run, output, session)
    except BaseException as exc:  # any error of op (GeneratorExit, SystemExit, ... too): the run fails
        cancelled = isinstance(exc, ExecutorCancelled)
        ended, error = await end_run(session, run, RunOutcome(error=exc, cancelled=cancelled), on_fatal)
        if ended is RunEnd.FATAL and error is not None:
            raise error from exc
        if ended is RunEnd.STALE and session.unregistered and session.closed_with_machine:
            raise stale(session, run, f"finish run {run.run_id}") from exc
        raise
    # a failed boundary commit detaches a loop attached meanwhile: the machine attaches it again
    ended, error = await end_run(session, run, RunOutcome(output=output), on_fatal, on_detached=on_detached)
    if error is not None:
        raise error
    if ended is RunEnd.STALE:
        raise stale(session, run, f"commit run {run.run_id}: it was cancelled or stopped meanwhile")
    return value
