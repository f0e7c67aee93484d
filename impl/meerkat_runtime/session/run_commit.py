"""Committing the end of a run: the boundary on success, a lifecycle commit on failure or
cancellation. Shared by the run loop, ``accept_input_and_run`` and ``interrupt_current_run``.

Each function is called with the session gate held; on a failed write it restores the
checkpoint taken before the in-memory change and raises ``DurableWriteFailed``.
"""

from __future__ import annotations

import time

from meerkat_runtime.session.core import CurrentRun, Effects
from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorError
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.store.records import BoundaryReceipt
from meerkat_runtime.vocab.errors import DurableWriteFailed

BOUNDARY_SEQUENCE = 0
"""Each run commits one boundary; the runtime mints its sequence (executors cannot)."""


class BoundaryCommitFailed(DurableWriteFailed):
    """The run succeeded but its boundary could not be made durable; its inputs are back as
    the store holds them (Queued, attempt not counted), the runtime is Idle and the loop is
    detached."""


def check_receipt(run: CurrentRun, output: CoreApplyOutput) -> None:
    """The receipt draft must name exactly the run's contributors, in order."""
    if tuple(output.receipt.contributing_input_ids) != run.input_ids:
        raise ExecutorError(
            f"receipt of run {run.run_id} names inputs {list(output.receipt.contributing_input_ids)}, "
            f"expected {list(run.input_ids)}"
        )


async def commit_success(session: RuntimeSession, run: CurrentRun, output: CoreApplyOutput) -> Effects:
    """Consume the contributors and write receipt + every changed row in one ``atomic_apply``.

    On a write failure: memory is restored to what the store holds (contributors Queued at the
    head of their lane, the attempt not counted), the loop is detached (the caller stops the
    executor), ``BoundaryCommitFailed``.
    """
    core = session.core
    cp = core.checkpoint(list(run.input_ids))
    now = time.time()
    effects = core.succeed_run(run.run_id, BOUNDARY_SEQUENCE, output.run_result, now)
    draft = output.receipt
    receipt = BoundaryReceipt(
        run_id=run.run_id,
        sequence=BOUNDARY_SEQUENCE,
        boundary=draft.boundary,
        contributing_input_ids=tuple(run.input_ids),
        conversation_digest=draft.conversation_digest,
        message_count=draft.message_count,
    )
    try:
        await session.persistence.commit_boundary(receipt, output.session_snapshot, core.ledger)
    except Exception as exc:
        core.restore(cp)
        core.detach_loop()
        core.rollback_boundary(run.run_id)
        raise BoundaryCommitFailed("runtime boundary commit", exc) from exc
    session.publish(effects)
    return effects


async def commit_end(session: RuntimeSession, run: CurrentRun, *, cancelled: bool) -> Effects:
    """Record a failed (requeue / abandon at 3 attempts) or cancelled run durably: the
    lifecycle record and every row that differs from the store, in one commit."""
    core = session.core
    cp = core.checkpoint(list(run.input_ids))
    now = time.time()
    effects = core.cancel_run(run.run_id, now) if cancelled else core.fail_run(run.run_id, now)
    try:
        await session.persistence.commit_lifecycle(core.durable_phase(), core.ledger)
    except Exception as exc:
        core.restore(cp)
        what = "run cancellation commit" if cancelled else "run failure commit (terminal snapshot)"
        raise DurableWriteFailed(what, exc) from exc
    session.publish(effects)
    return effects
