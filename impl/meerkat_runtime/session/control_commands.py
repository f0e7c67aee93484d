"""The async control commands of one session: retire, reset, recycle, stop, destroy, recover,
interrupt (the shell of the core's control rules, :mod:`meerkat_runtime.session.core.control`,
and of its ``interrupt`` rule).

Each command, under the session gate (retire, reset, recycle, recover and interrupt share it with
an attach awaiting its executor's ``start()`` instead of waiting for the call,
``RuntimeSession.sharing``; stop and destroy give such a start up, ``RuntimeSession.halting``):
an in-doubt session first reconciles with the store
(:mod:`meerkat_runtime.session.reconcile`); the core rule computes its plan, then
:func:`~meerkat_runtime.session.commit.commit` writes the new lifecycle record and every row
that differs from the store (including rows changed by earlier steps that wrote nothing, such
as the staged row of a run in flight or a row restored by a failed boundary commit) in one
commit, and only then applies and publishes it. A rule that changes nothing (retiring a Retired
runtime, interrupting without a run) writes nothing. If the write fails, memory is as before and
``DurableWriteFailed`` is raised; nothing was published, so Stopped or Destroyed is never
visible before it is durable. Executors are told to stop only after the gate is released.

``recover`` first reads the session's lifecycle record and rows back from the store and
recovers them in place (:func:`~meerkat_runtime.session.core.recovery.recover_session` with
``in_place=True``); the core rule then compares them with memory and plans the write-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from meerkat_runtime.session import retention
from meerkat_runtime.session.commit import commit
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.recovery import RecoveryResult
from meerkat_runtime.session.core.recovery import recover_session as recover_stored
from meerkat_runtime.session.executor import CancelCurrentRun
from meerkat_runtime.session.reconcile import reconcile
from meerkat_runtime.session.reports import (
    DestroyReport,
    InterruptReport,
    RecoveryReport,
    RecycleReport,
    ResetReport,
    RetireReport,
    StopReport,
)
from meerkat_runtime.session.runtime_session import RuntimeSession, stop_detached
from meerkat_runtime.vocab.errors import DurableWriteFailed, RecoveryCorruption
from meerkat_runtime.vocab.runtime import RegistrationPhase

R = TypeVar("R")


async def _control(session: RuntimeSession, what: str, rule: Callable[[float], tuple[R, Plan]]) -> R:
    """Under the session gate (the caller holds it): check the session is registered, reconcile
    it with the store if it is in doubt, compute the rule's plan and commit it."""
    session.check_registered()
    await reconcile(session, what)
    report, plan = rule(time.time())
    await commit(session, plan, what)
    return report


async def _halt(session: RuntimeSession, what: str, rule: Callable[[float], tuple[R, Plan]], reason: str) -> R:
    """Stop or destroy: the control rule under the gate, detaching the loop; then, with the gate
    released, stop the detached loop and executor (``reason``). An attach awaiting its executor's
    ``start()`` (it holds the gate) gives the start up first (``attach_failed``): the stop never
    waits for ``start()`` to return (``RuntimeSession.halting``)."""
    async with session.halting():
        report = await _control(session, what, rule)
        parts = session.detach()
    await stop_detached(parts, reason)
    return report


async def retire_runtime(session: RuntimeSession) -> RetireReport:
    async with session.sharing():
        report = await _control(session, "retire_runtime", session.core.retire)
        if report.inputs_pending_drain:
            session.wake()
    return report


async def reset_runtime(session: RuntimeSession) -> ResetReport:
    async with session.sharing():
        return await _control(session, "reset_runtime", session.core.reset)


async def recycle_runtime(session: RuntimeSession) -> RecycleReport:
    async with session.sharing():
        report = await _control(session, "recycle_runtime", session.core.recycle)
        session.wake()
    return report


async def stop_runtime(session: RuntimeSession) -> StopReport:
    return await _halt(session, "stop_runtime", session.core.stop, "runtime stopped")


async def destroy_runtime(session: RuntimeSession) -> DestroyReport:
    return await _halt(session, "destroy_runtime", session.core.destroy, "runtime destroyed")


async def recover_session(session: RuntimeSession) -> RecoveryReport:
    """``recover`` / ``recover_noop``: re-read the session's rows from the store and adopt them
    in place (the core's ``recover``), writing the normalised rows and lifecycle record back in
    one commit when needed; waiters of inputs no longer pending resolve and the loop is woken
    (stopped, when the store says Stopped or Destroyed). Raises ``RuntimeDestroyed``,
    ``InvalidRuntimeTransition`` (a run in flight), ``RecoveryCorruption`` or ``Corrupt`` (rows
    the store cannot recover: nothing changed) and ``DurableWriteFailed`` (the store could not
    be read, or the write-back failed: nothing changed)."""
    what = "recover_session"
    async with session.sharing():
        session.check_registered()
        await reconcile(session, what)
        core = session.core
        core.check_recover()
        persistence = session.persistence
        stored: RecoveryResult | None = None
        record_current = True
        if persistence.durable:
            try:
                high_water, lifecycle, rows, finished = await persistence.read(persistence.load_stored)
            except Exception as exc:
                raise DurableWriteFailed(what, exc) from exc
            runtime_id, max_attempts = session.runtime_id, core.max_attempts
            stored = recover_stored(
                runtime_id,
                lifecycle,
                rows,
                persistence.receipt_exists,
                time.time(),
                in_place=True,
                high_water=high_water,
                max_attempts=max_attempts,
                live=core.ledger.records.keys(),
                finished=finished,
            )
            recovered = stored.core.ledger
            retention.keep_known_finished(core.ledger, recovered)
            ended = [i for i in core.ledger.active_ids() if i not in recovered.records and i in recovered.finished]
            try:
                await retention.read_back(session, recovered, ended)
                await retention.read_recent(session, recovered)
            except RecoveryCorruption:
                raise
            except Exception as exc:
                raise DurableWriteFailed(what, exc) from exc
            persistence.loaded(stored.stored, lifecycle)
            record_current = persistence.lifecycle_holds(core.phase, core.pre_run_phase)
        report, plan = core.recover(stored, record_current, time.time())
        detaching = core.loop_attached and plan.registration is RegistrationPhase.QUEUING
        await commit(session, plan, what)
        if not detaching:
            session.wake()
            return report
        parts = session.detach()
    await stop_detached(parts, f"runtime {session.core.phase.value}")
    return report


async def interrupt_current_run(session: RuntimeSession) -> InterruptReport:
    """Cancel the run in flight (``interrupt``): its inputs become Abandoned(cancelled), waiters
    get ``cancelled``, the phase returns to the pre-run phase; then the executor is told and
    the in-flight apply cancelled. No run → ``interrupt_noop``."""
    async with session.sharing():
        session.check_registered()
        await reconcile(session, "run cancellation commit")
        run = session.core.current_run
        plan = session.core.interrupt(time.time())
        await commit(session, plan, "run cancellation commit")
        if run is None:
            return InterruptReport(())
        apply_task = session.apply_task if session.applying_run == run.run_id else None
        executor = session.executor
    if executor is not None and not session.executor_stopped:
        with contextlib.suppress(Exception):  # the run is already cancelled; the executor is advisory
            await executor.control(CancelCurrentRun("interrupted"))
    if apply_task is not None and apply_task is not asyncio.current_task() and not apply_task.done():
        apply_task.cancel()
    return InterruptReport(tuple(run.input_ids))
