"""Altered copies of the session runtime, each with one realistic planted bug.

Used by ``test_session_planted_bugs`` to check that the conformance harness finds and reports
such bugs. Nothing here changes ``meerkat_runtime`` itself: every bug lives in a
``MeerkatMachine`` subclass (passed to ``SessionAdapter(..., runtime_class=...)`` or set as
``SessionLockstepMachine.RUNTIME_CLASS``), so only the runtimes these tests build carry it.
"""

from __future__ import annotations

import time
from unittest import mock

from meerkat_runtime.session.commit import install
from meerkat_runtime.session.completion import CompletionHandle
from meerkat_runtime.session.core import recovery
from meerkat_runtime.session.core.plan import LaneEdit, Plan
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ops_binding import OpsBinding
from meerkat_runtime.session.outcomes import Accepted, AcceptOutcome, Deduplicated, Rejected
from meerkat_runtime.session.persistence import SessionPersistence, Written
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import DurableWriteFailed
from meerkat_runtime.vocab.ids import RunId
from meerkat_runtime.vocab.inputs import InputLifecycleState

S = InputLifecycleState


# --- (a) an executor failure loses the input -------------------------------------------------


class _CoreLosingFailedInputs(SessionCore):
    def executor_failed(self, run_id: RunId, now: float, *, retryable: bool = True) -> Plan:
        plan = super().executor_failed(run_id, now, retryable=retryable)
        # BUG: "requeued", but put back in no lane: never run again
        plan.lane_edits = [edit for edit in plan.lane_edits if edit[0] is not LaneEdit.APPEND]
        return plan


class FailedRunLosesInput(MeerkatMachine):
    """Planted bug: after an executor failure the input is marked Queued (and written so) but
    is not put back into its lane, so the loop never runs it again."""

    def _new_session(
        self, key: str, core: SessionCore, persistence: SessionPersistence, binding: OpsBinding
    ) -> RuntimeSession:
        core.__class__ = _CoreLosingFailedInputs
        return super()._new_session(key, core, persistence, binding)


# --- (b) a durable accept acknowledged before its write, never rolled back -------------------


class AcceptBeforeWrite(MeerkatMachine):
    """Planted bug: ``accept_input`` admits the input in memory (and registers its handle)
    before writing its row; when the write fails the error is raised, but memory keeps the
    input the store never received."""

    async def _accept_locked(
        self, session: RuntimeSession, item: Input, *, want_handle: bool
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        core = session.core
        plan = core.accept(item, time.time())
        if isinstance(plan, Rejected | Deduplicated):
            return await super()._accept_locked(session, item, want_handle=want_handle)
        write, plan.write = plan.write, None
        install(session, plan)  # BUG: memory first ...
        handle = session.completions.register(item.header.id) if want_handle else None
        plan.write = write
        try:
            await session.persistence.persist(plan, core.ledger)  # ... and a failed write is not undone
        except Exception as exc:
            raise DurableWriteFailed("accept_input", exc) from exc
        session.wake()
        return Accepted(item.header.id, S.QUEUED), handle


# --- (c) recovery counts the run the crash interrupted --------------------------------------

_normalise = recovery._normalise


def _normalise_counting_the_interrupted_run(
    rec: recovery.InputRecord, receipt_exists: object, now: float, result: recovery.RecoveryResult
) -> None:
    staged = rec.phase is S.STAGED
    _normalise(rec, receipt_exists, now, result)  # type: ignore[arg-type]
    if staged:
        rec.attempts += 1  # BUG: the run the crash interrupted is charged to the retry budget


class RecoveryCountsInterruptedRun(MeerkatMachine):
    """Planted bug: recovering a row stored as Staged (written by a control commit while its
    run was in flight) requeues it but keeps the interrupted run's attempt, so a crash eats
    into the input's retry budget. The altered rule applies only while this runtime recovers."""

    async def _build_session(self, key: str) -> RuntimeSession:
        with mock.patch.object(recovery, "_normalise", _normalise_counting_the_interrupted_run):
            return await super()._build_session(key)


# --- (d) a failed boundary commit charges the attempt ---------------------------------------


class _CoreChargingFailedBoundaries(SessionCore):
    def boundary_commit_failed(self, run_id: RunId) -> Plan:
        plan = super().boundary_commit_failed(run_id)
        for record in plan.records.values():
            record.attempts += 1  # BUG: restores the row, but keeps the attempt
        return plan


class BoundaryFailureChargesAttempt(MeerkatMachine):
    """Planted bug: when the boundary commit (``atomic_apply``) fails, the input goes back to
    its lane with the attempt of a run that, as far as the store knows, never happened."""

    def _new_session(
        self, key: str, core: SessionCore, persistence: SessionPersistence, binding: OpsBinding
    ) -> RuntimeSession:
        core.__class__ = _CoreChargingFailedBoundaries
        return super()._new_session(key, core, persistence, binding)


# --- (e) a write whose outcome was unknown, and that did not land, acknowledged anyway -------


class UnlandedWriteAcknowledged(MeerkatMachine):
    """Planted bug: after a write whose outcome is unknown the store is read back, but a
    read-back that finds the write missing is taken for one that found it: the call is
    acknowledged and applied in memory while the store never received it."""

    def _new_session(
        self, key: str, core: SessionCore, persistence: SessionPersistence, binding: OpsBinding
    ) -> RuntimeSession:
        read_back = persistence.read_back

        async def believed(written: Written) -> bool | None:
            landed = await read_back(written)
            return True if landed is False else landed  # BUG: "not landed" taken as "landed"

        persistence.read_back = believed  # type: ignore[method-assign]
        return super()._new_session(key, core, persistence, binding)
