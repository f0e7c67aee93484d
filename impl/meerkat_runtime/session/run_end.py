"""Ending a run: commit how it ended, and handle a commit that fails — one path for the run
loop and ``accept_input_and_run``.

* success → ``executor_succeeded``: one boundary commit (``atomic_apply``), waiters resolve;
* failure → ``executor_failed`` (``_exhausted`` at the 3rd attempt): one lifecycle commit;
* cancellation → ``interrupt``: one lifecycle commit;
* the boundary commit fails → ``boundary_commit_failed``: memory goes back to what the store
  holds (inputs Queued, attempt not counted, phase Idle or Retired), the loop is detached and
  the executor told to stop; :class:`BoundaryCommitFailed`; then ``on_detached`` is handed
  that executor (the machine attaches it again once the store answers,
  :mod:`meerkat_runtime.session.reattach`);
* the lifecycle commit after a failure or cancellation fails → ``terminal_snapshot_failed``:
  the session is unregistered (``on_fatal``) and the error kept in ``session.last_error``;
* the session is in doubt (an earlier write's outcome unknown): it reconciles with the store
  first; the run is then no longer current and its end is not committed (``RunEnd.STALE``);
* the commit is refused for ownership (``OwnershipLost``: another worker claimed the session's
  lease): nothing changed, the claim is lost and the machine detaches the session; the loop
  stops without another write.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.events.event import UNREGISTERED, Change, spell
from meerkat_runtime.session import events
from meerkat_runtime.session.commit import commit, install
from meerkat_runtime.session.completion import RunFailure
from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.run_loop import boundary_receipt
from meerkat_runtime.session.executor import CoreApplyOutput, CoreExecutor, ExecutorError
from meerkat_runtime.session.output_fields import check_output
from meerkat_runtime.session.reconcile import reconcile
from meerkat_runtime.session.runtime_session import Detached, RuntimeSession, stop_detached
from meerkat_runtime.vocab.errors import (
    DurableWriteFailed,
    InvalidRuntimeTransition,
    OwnershipLost,
    describe_error,
    error_message,
)
from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES, JsonLimitExceeded

FatalHandler = Callable[[RuntimeSession, BaseException], Awaitable[None]]
"""Called (gate released) when a run's terminal snapshot failed; unregisters the session."""

_log = logging.getLogger("meerkat_runtime.session")

DetachedHandler = Callable[[RuntimeSession, CoreExecutor, "BoundaryCommitFailed"], None]
"""Called (gate released) after a failed boundary commit detached the session's loop and its
executor was told to stop, with that executor and the error (the machine's re-attach)."""


class BoundaryCommitFailed(DurableWriteFailed):
    """The run succeeded but its boundary could not be made durable; its inputs are back as
    the store holds them (Queued, attempt not counted), the runtime is Idle and the loop is
    detached."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How the executor finished a run: ``output`` on success, else ``error`` or ``cancelled``."""

    output: CoreApplyOutput | None = None
    error: BaseException | None = None
    cancelled: bool = False


class RunEnd(enum.Enum):
    """What :func:`end_run` did."""

    COMMITTED = "committed"
    STALE = "stale"
    """The run was no longer current (interrupted, stopped or destroyed meanwhile), or the session
    was unregistered (or the process halted): nothing done."""
    LOOP_GONE = "loop_gone"
    """The calling loop was detached meanwhile: nothing done."""
    DETACHED = "detached"
    """The boundary commit failed: the loop is detached (``session.last_error``)."""
    FATAL = "fatal"
    """The terminal snapshot failed: the session was unregistered (``session.last_error``)."""
    OWNERSHIP_LOST = "ownership_lost"
    """The store refused the commit's fence: the session is being detached (``session.last_error``)."""


RunError = DurableWriteFailed | OwnershipLost


def check_receipt(run: CurrentRun, output: CoreApplyOutput, session: RuntimeSession) -> None:
    """The output must be well formed (:func:`check_output`: it is stored with the boundary),
    its receipt draft must name exactly the run's contributors, in order, and the receipt and
    the rows it finishes must be within the size a reader accepts (else the boundary commit
    would fail)."""
    check_output(output)
    _check_rows_fit(session, run, output)
    draft = output.receipt
    if tuple(draft.contributing_input_ids) != run.input_ids:
        raise ExecutorError(
            f"receipt of run {run.run_id} names inputs {list(draft.contributing_input_ids)}, "
            f"expected {list(run.input_ids)}"
        )
    if _receipt_may_be_too_large(run, draft.conversation_digest):
        try:
            boundary_receipt(run, draft).to_json()
        except JsonLimitExceeded as exc:
            raise ExecutorError(f"receipt of run {run.run_id} cannot be stored: {exc}") from None


_ROW_GROWTH = 64 * 1024
"""More than a boundary adds to an input's row besides the result's text (history entries, ids,
phase and counters)."""


def _check_rows_fit(session: RuntimeSession, run: CurrentRun, output: CoreApplyOutput) -> None:
    """``ExecutorError`` when the boundary of ``run`` with ``output`` would write an input row
    over the size a reader accepts (a result too large): bad output, known before anything is
    written, so the run fails as an executor failure (retried, then abandoned), not as a
    failed boundary commit. The rows are encoded only when the result could make one that
    large (its text at 12 bytes a character beside the row as last written)."""
    persistence = session.persistence
    result = output.run_result
    if not persistence.durable:
        return
    if not persistence.may_outgrow(run.input_ids, 12 * (len(result.text) if result else 0) + _ROW_GROWTH):
        return
    core = session.core
    try:
        plan = core.executor_succeeded(run.run_id, output, time.time())
    except InvalidRuntimeTransition:  # no longer the current run: its end is not committed
        return
    too_large = persistence.too_large(plan, core.ledger, run.input_ids)
    if too_large is not None:
        raise ExecutorError(f"the output of run {run.run_id} cannot be stored: {too_large}")


def _receipt_may_be_too_large(run: CurrentRun, digest: str | None) -> bool:
    """Whether the receipt of ``run`` could be over the size limit: its text is at most 12 bytes
    per character of its strings (an escaped character outside the BMP) and 256 bytes of keys,
    numbers and punctuation, so a receipt under that bound is never encoded here."""
    chars = len(run.run_id) + len(digest or "") + sum(len(i) + 1 for i in run.input_ids)
    return 12 * chars + 256 > MAX_JSON_BYTES


async def commit_run_end(session: RuntimeSession, run: CurrentRun, outcome: RunOutcome) -> bool:
    """Commit how ``run`` ended (gate held; ``run`` must be the current run); an executor
    failure is stored with the rows (``last_error``). On a failed boundary commit the
    ``boundary_commit_failed`` plan is installed before ``BoundaryCommitFailed`` is raised; on a
    failed lifecycle commit nothing changed and ``DurableWriteFailed`` is raised. Returns
    ``False`` when the session first had to reconcile with the store (a write's outcome was
    unknown): the run is then no longer current and nothing is committed."""
    core = session.core
    now = time.time()
    if outcome.output is not None:
        what = "runtime boundary commit"
        try:
            if await reconcile(session, what, error=BoundaryCommitFailed):
                return False
            plan = core.executor_succeeded(run.run_id, outcome.output, now)
            await commit(session, plan, what, error=BoundaryCommitFailed)
        except BoundaryCommitFailed:
            install(session, core.boundary_commit_failed(run.run_id))
            raise
        return True
    what = "run cancellation commit" if outcome.cancelled else "run failure commit (terminal snapshot)"
    if await reconcile(session, what):
        return False
    if outcome.cancelled:
        plan = core.interrupt(now, run.run_id)
    else:
        retryable = session.retry.is_retryable(outcome.error)
        plan = core.executor_failed(run.run_id, now, retryable=retryable)
        if outcome.error is not None:
            plan.note_failure(RunFailure.of(outcome.error), retryable=retryable)
    await commit(session, plan, what)
    return True


def _terminal_snapshot_failed(session: RuntimeSession, run: CurrentRun, error: DurableWriteFailed) -> None:
    """Publish ``terminal_snapshot_failed`` (gate held): the session is about to be unregistered,
    so this is its last event."""
    if session.events_closed:
        return
    session.events_closed = True
    change = Change("registration", session.runtime_id, spell(session.registration.value), UNREGISTERED)
    error_type, message = describe_error(error.cause)
    events.emit_step(
        session,
        "terminal_snapshot_failed",
        after=UNREGISTERED,
        changes=(change,),
        run_id=run.run_id,
        details={"error": {"type": error_type, "message": message}},
    )


async def end_run(
    session: RuntimeSession,
    run: CurrentRun,
    outcome: RunOutcome,
    on_fatal: FatalHandler,
    *,
    loop_task: asyncio.Task[Any] | None = None,
    on_detached: DetachedHandler | None = None,
) -> tuple[RunEnd, RunError | None]:
    """Take the gate and, if ``run`` is still current (and ``loop_task``, when given, is still
    the session's loop), commit its end (:func:`commit_run_end`). Then, with the gate released:
    after a failed boundary commit the detached loop and executor are stopped and
    ``on_detached`` gets that executor (when one was attached); after a failed terminal snapshot
    ``on_fatal`` unregisters the session. A failed commit's error is returned (and kept in
    ``session.last_error``), not raised. A boundary commit that lands resets the session's
    re-attach backoff."""
    parts: Detached | None = None
    error: DurableWriteFailed | None = None
    failed_boundary: BoundaryCommitFailed | None = None
    async with session.gate:
        if loop_task is not None and session.loop_task is not loop_task:
            return RunEnd.LOOP_GONE, None
        if session.unregistered:  # unregistered or halted meanwhile: nothing more is written
            return RunEnd.STALE, None
        current = session.core.current_run
        if current is None or current.run_id != run.run_id:
            return RunEnd.STALE, None
        try:
            if not await commit_run_end(session, run, outcome):
                return RunEnd.STALE, None
            if outcome.output is not None:
                session.reattach_backoff.reset()
        except BoundaryCommitFailed as exc:
            session.last_error = error = failed_boundary = exc
            parts = session.detach()
        except DurableWriteFailed as exc:
            session.last_error = error = exc
            _terminal_snapshot_failed(session, run, exc)
        except OwnershipLost as lost:
            session.last_error = lost
            return RunEnd.OWNERSHIP_LOST, lost
    if parts is not None and error is not None:
        await stop_detached(parts, f"runtime boundary commit failed: {error.cause}")
        executor = parts[0]
        if on_detached is not None and executor is not None and failed_boundary is not None:
            on_detached(session, executor, failed_boundary)
        return RunEnd.DETACHED, error
    if error is not None:
        await on_fatal(session, error)
        return RunEnd.FATAL, error
    return RunEnd.COMMITTED, None


async def drop_stranded(session: RuntimeSession, run: CurrentRun, defect: BaseException) -> None:
    """Last resort after something unexpected (``defect``: not an executor error, which fails
    the run, nor a failed commit, handled above) escaped the end of ``run``: make sure the run
    does not stay current with nobody left to end it. Takes the gate; nothing to do when ``run``
    is no longer current (it ended before the defect) or the session was unregistered.

    Otherwise the run ends as a failed boundary commit does (the model's
    ``boundary_commit_failed``; nothing written): its inputs go back to their form before the
    run (Queued at the head of their lane, the attempt not counted), the runtime to Idle (Retired
    stays Retired), the loop is detached and the executor told to stop; ``defect`` is kept in
    ``last_error``. What reached the store is not known, so a persistent session is then marked
    in doubt and reconciles with the store at once (memory becomes what the store holds; should
    the store not answer, the session's next step reconciles). No re-attach follows (a defect
    that recurs would rerun the input without counting the attempt): an attach runs the input."""
    async with session.gate:
        current = session.core.current_run
        if session.unregistered or current is None or current.run_id != run.run_id:
            return
        session.last_error = defect
        try:  # install applies the plan first: only publishing it can fail after that
            install(session, session.core.boundary_commit_failed(run.run_id))
        except Exception:
            _log.exception("session %s: publishing the drop of run %s failed", session.runtime_id, run.run_id)
        parts = session.detach()
        if session.persistence.durable:
            if session.in_doubt is None:
                session.in_doubt = defect
            try:
                await reconcile(session, f"drop run {run.run_id} after an unexpected error")
            except Exception as exc:  # the store cannot be read: the next step reconciles
                _log.warning("session %s stays in doubt: %s", session.runtime_id, error_message(exc))
    await stop_detached(parts, f"run {run.run_id} dropped after an unexpected error: {error_message(defect)}")
