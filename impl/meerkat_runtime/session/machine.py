"""``MeerkatMachine``: the per-process registry of sessions and their public asyncio API.

Create it with :meth:`MeerkatMachine.ephemeral` (memory only) or
:meth:`MeerkatMachine.persistent` (a ``RuntimeStore``, optionally a ``BlobStore``). Every
method is a coroutine and must be called on one event loop. A session has one canonical id:
its durable state lives under the runtime id ``rt:session:<session id>``, sessions are keyed by
that runtime id, and a session id that itself starts with ``rt:session:`` is refused with
``ValidationFailed`` (so no second spelling can reach the same stored runtime).

Registration claims the session (:mod:`meerkat_runtime.session.claims`: with ownership on, the
session's lease in the store — ``LeaseHeld`` if another worker holds it), then recovers a
persistent session from the store (see :mod:`meerkat_runtime.session.core.recovery`); a failure
releases the claim and leaves no entry behind. A registered session queues inputs;
``ensure_session_with_executor`` attaches one run loop (concurrent callers attach exactly one).
Unknown sessions raise ``SessionNotFound``. A session whose lease another worker took over is
detached (loop stopped, waiters resolved with ``LostOwnership``) and every later call on it
raises ``OwnershipLost`` until it is registered again or unregistered.

This module is the shell of the session's rules: each method takes the session gate, asks the
core (:mod:`meerkat_runtime.session.core`) for the rule's plan and makes it take effect through
:mod:`meerkat_runtime.session.commit`; :mod:`meerkat_runtime.session.transitions` maps every
rule to its core method and to the method here (or the loop task) that drives it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session import control_commands, reports
from meerkat_runtime.session.blobs import BlobStore, externalize_images
from meerkat_runtime.session.claims import SessionClaimRegistry
from meerkat_runtime.session.commit import commit, install
from meerkat_runtime.session.completion import CompletionHandle, CompletionOutcome, LostOwnership, RuntimeTerminated
from meerkat_runtime.session.core.current_run import CurrentRun
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.recovery import recover_session
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.executor import (
    CancelAfterBoundary,
    CoreApplyOutput,
    CoreExecutor,
    ExecutorCancelled,
    RunPrimitive,
    start_executor,
)
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.loop_task import run_loop
from meerkat_runtime.session.ops_binding import OpsBinding, attach_store, fresh_binding, recover_binding
from meerkat_runtime.session.outcomes import Accepted, AcceptOutcome, Deduplicated, Rejected
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.persistence import SessionPersistence
from meerkat_runtime.session.run_end import RunEnd, RunOutcome, check_receipt, end_run
from meerkat_runtime.session.runtime_session import LoopState, RuntimeSession, SessionBindings, stop_detached
from meerkat_runtime.session.views import InputStateView, SessionView, input_view, session_view
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import (
    ExecutorStartFailed,
    InvalidRuntimeTransition,
    NotReady,
    OwnershipLost,
    SessionNotFound,
    ValidationFailed,
)
from meerkat_runtime.vocab.ids import (
    CANONICAL_RUNTIME_PREFIX,
    InputId,
    LogicalRuntimeId,
    SessionId,
    canonical_runtime_id,
    new_run_id,
)
from meerkat_runtime.vocab.inputs import InputLifecycleState
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

T = TypeVar("T")

RunOp = Callable[[str, RunPrimitive], Awaitable[tuple[T, CoreApplyOutput]]]

DEFAULT_OWNERSHIP = OwnershipConfig()
"""Ownership of a persistent machine unless told otherwise: on, 15 s leases renewed every 5 s."""


def session_runtime_id(session_id: SessionId | str) -> LogicalRuntimeId:
    """The canonical runtime id of ``session_id``; ``ValidationFailed`` for an empty id or one
    that already carries the runtime-id prefix (one canonical id per session)."""
    text = str(session_id)
    if not text:
        raise ValidationFailed("session id must not be empty")
    if text.startswith(CANONICAL_RUNTIME_PREFIX):
        raise ValidationFailed(
            f"session id {text!r} starts with the runtime-id prefix {CANONICAL_RUNTIME_PREFIX!r}; "
            f"pass the session id itself ({text[len(CANONICAL_RUNTIME_PREFIX) :]!r})"
        )
    return canonical_runtime_id(text)


def _dead(task: asyncio.Task[None] | None) -> bool:
    return task is not None and task.done()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _shielded(durable: bool, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` so that cancelling the caller cannot interrupt it between a durable write
    and the in-memory publish (memory would fall behind disk). Ephemeral work needs no shield."""
    if not durable:
        return await coro
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


class MeerkatMachine:
    """Sessions, their inputs, run loops, completions and lifecycle control."""

    def __init__(
        self,
        store: RuntimeStore | None,
        blob_store: BlobStore | None = None,
        *,
        offload_store_calls: bool = True,
        ownership: OwnershipConfig | None = DEFAULT_OWNERSHIP,
    ) -> None:
        self._store = store
        self._blobs = blob_store
        self._offload = offload_store_calls
        self._sessions: dict[LogicalRuntimeId, RuntimeSession] = {}
        self._claims = SessionClaimRegistry(store, ownership, offload=offload_store_calls)
        self._detaching: set[asyncio.Task[None]] = set()

    @classmethod
    def ephemeral(cls) -> MeerkatMachine:
        """Sessions live in memory only."""
        return cls(None)

    @classmethod
    def persistent(
        cls,
        store: RuntimeStore,
        blob_store: BlobStore | None = None,
        *,
        offload_store_calls: bool = True,
        ownership: OwnershipConfig | None = DEFAULT_OWNERSHIP,
    ) -> MeerkatMachine:
        """Durable sessions. Without ``blob_store``, inputs carrying inline images are refused.

        ``offload_store_calls`` runs each synchronous store call in a worker thread (default)
        instead of on the event loop. ``ownership`` (on by default) makes several machines on
        one store safe: each session is leased to one machine at a time and every write is
        fenced (:class:`~meerkat_runtime.session.ownership.OwnershipConfig`); ``None`` turns it
        off, for a store only this machine ever writes.
        """
        return cls(store, blob_store, offload_store_calls=offload_store_calls, ownership=ownership)

    @property
    def is_persistent(self) -> bool:
        return self._store is not None

    # --- ownership ------------------------------------------------------------------------

    @property
    def ownership(self) -> OwnershipConfig | None:
        """The ownership settings, or ``None`` when ownership is off (or the machine is ephemeral)."""
        return self._claims.config

    @property
    def owner_id(self) -> str | None:
        """The owner id this machine claims leases under (``None`` without ownership)."""
        return self._claims.owner_id

    def session_claim_handle(self) -> SessionClaimRegistry:
        """This machine's ``SessionClaimRegistry``: one live ``SessionClaim`` per registered
        runtime id (``get(runtime_id)``), with its lease, fence and loss state."""
        return self._claims

    async def renew_leases_now(self) -> list[LogicalRuntimeId]:
        """Renew every lease now (what the background renewal does each period) and detach the
        sessions whose lease another worker has taken; returns their runtime ids."""
        lost = await self._claims.renew_all()
        await self._settle_detaches()
        return [claim.runtime_id for claim in lost]

    async def _settle_detaches(self) -> None:
        """Let loss notifications run and wait for the detaches they started."""
        await asyncio.sleep(0)
        while self._detaching:
            await asyncio.wait(set(self._detaching))

    def _lost(self, session: RuntimeSession, error: OwnershipLost) -> None:
        """A claim was lost (called on the loop): detach its session in the background."""
        if session.unregistered:
            return
        task = asyncio.get_running_loop().create_task(self._detach_lost(session, error))
        self._detaching.add(task)
        task.add_done_callback(self._detaching.discard)

    async def _detach_lost(self, session: RuntimeSession, error: OwnershipLost) -> None:
        """Stop the session's loop and executor and resolve its waiters with ``LostOwnership``;
        the session stays registered (lost) so later calls raise ``OwnershipLost``."""
        async with session.gate:
            if session.unregistered or session.lost_detached:
                return
            session.lost_detached = True
            session.last_error = error
            parts = session.detach()
            session.completions.resolve_all(LostOwnership(f"ownership lost: {error.detail}"))
        await stop_detached(parts, f"ownership lost: {error.detail}")

    # --- registration ---------------------------------------------------------------------

    def _get(self, session_id: SessionId | str, *, lost_ok: bool = False) -> RuntimeSession:
        session = self._sessions.get(session_runtime_id(session_id))
        if session is None:
            raise SessionNotFound(str(session_id))
        if not lost_ok:
            session.claim.check()
        return session

    async def contains_session(self, session_id: SessionId | str) -> bool:
        """Whether the session is registered here (and not lost to another worker)."""
        session = self._sessions.get(session_runtime_id(session_id))
        return session is not None and session.lost is None

    async def register_session(self, session_id: SessionId | str) -> None:
        """Register (recovering durable state) if not registered yet; idempotent.

        Raises ``RuntimeDestroyed`` for a destroyed persistent runtime, ``RecoveryCorruption``
        for contradictory stored rows, store errors for unreadable data and
        ``DurableWriteFailed`` if the recovered state cannot be written back. On error no
        entry is left.

        With ownership on, the session's lease is claimed first, before anything is read:
        ``LeaseHeld`` (naming the holder and its expiry) when another worker holds it — after
        waiting for it, if ``OwnershipConfig.wait_for_lease`` says so. A session lost to another
        worker is claimed again. ``ValidationFailed`` for an empty or prefixed session id.
        """
        await self._ensure_registered(session_id)

    async def _ensure_registered(self, session_id: SessionId | str) -> RuntimeSession:
        runtime_id = session_runtime_id(session_id)
        session = self._sessions.get(runtime_id)
        if session is not None and session.lost is None:
            return session
        return await _shielded(self._store is not None, self._claim_and_build(runtime_id))

    async def _claim_and_build(self, runtime_id: LogicalRuntimeId) -> RuntimeSession:
        lock = self._claims.lock(runtime_id)
        try:
            async with lock:
                session = self._sessions.get(runtime_id)
                if session is not None and session.lost is None:
                    return session  # a concurrent registration built it
                if session is not None:
                    await self._forget(session)
                claim = await self._claims.acquire(runtime_id)
                try:
                    built = await self._build_session(runtime_id[len(CANONICAL_RUNTIME_PREFIX) :])
                except BaseException:
                    await self._claims.release(claim)
                    raise
                self._sessions[runtime_id] = built
                claim.on_lost(lambda error: self._lost(built, error))
                return built
        finally:
            self._claims.unlock_idle(runtime_id, lock)

    async def _forget(self, session: RuntimeSession) -> None:
        """Drop a lost session (its detach finished first) so it can be claimed again."""
        lost = session.lost
        if lost is not None:
            await self._detach_lost(session, lost)
        session.unregistered = True
        if self._sessions.get(session.runtime_id) is session:
            del self._sessions[session.runtime_id]
        if session.ops_sink is not None:
            session.ops_sink.close()
        self._claims.forget(session.claim)

    async def _build_session(self, key: str) -> RuntimeSession:
        """Recover (or create) session ``key`` under the claim :meth:`_claim_and_build` took."""
        runtime_id = canonical_runtime_id(key)
        claim = self._claims.get(runtime_id)
        if claim is None:
            raise RuntimeError(f"no claim on {runtime_id!r}: sessions are built by _claim_and_build")
        persistence = SessionPersistence(self._store, runtime_id, offload=self._offload, claim=claim)
        store = self._store
        if store is None:
            core = SessionCore(runtime_id)
            binding = fresh_binding()
        else:
            now = time.time()
            lifecycle = await persistence.read(persistence.load_lifecycle)
            rows = await persistence.read(persistence.load_rows)
            result = await persistence.read(
                lambda: recover_session(runtime_id, lifecycle, rows, persistence.receipt_exists, now)
            )
            stored_ops = await persistence.read(persistence.load_ops)
            binding = recover_binding(stored_ops, fallback_epoch=result.epoch_id)
            core = result.core
            persistence.epoch_id = binding.epoch_id
            persistence.loaded(result.stored)
            session = self._new_session(key, core, persistence, binding)
            await commit(session, core.register(), "recovery write-back")  # not visible to anyone yet
            session.ops_sink = attach_store(binding, store, runtime_id, claim)
            return session
        return self._new_session(key, core, persistence, binding)

    def _new_session(
        self, key: str, core: SessionCore, persistence: SessionPersistence, binding: OpsBinding
    ) -> RuntimeSession:
        return RuntimeSession(
            SessionId(key), core, persistence, self._blobs, binding.epoch_id, binding.registry, binding.cursors
        )

    async def register_session_with_executor(self, session_id: SessionId | str, executor: CoreExecutor) -> bool:
        """Register and attach a run loop driving ``executor``; see ``ensure_session_with_executor``."""
        return await self.ensure_session_with_executor(session_id, executor)

    async def ensure_session_with_executor(self, session_id: SessionId | str, executor: CoreExecutor) -> bool:
        """Make sure the session is registered and has a run loop.

        Returns ``True`` if this call attached ``executor``; ``False`` if a loop was already
        attached (or being attached by a concurrent call), in which case ``executor`` is not
        used. A dead loop is replaced. Raises ``RuntimeDestroyed`` for a destroyed runtime and
        ``NotReady`` for a stopped one.

        An executor with a ``start()`` coroutine (the optional attach hook) is started first,
        under the session gate, before its loop exists; if ``start()`` raises, nothing is
        attached (``attach_failed``: the session queues input as before) and
        ``ExecutorStartFailed`` is raised with the error as its ``cause``.
        """
        session = await self._ensure_registered(session_id)
        if session.registration is not RegistrationPhase.QUEUING and not _dead(session.loop_task):
            return False
        async with session.gate:
            session.check_registered()
            if _dead(session.loop_task):
                session.detach()  # repair a loop that died
            if session.registration is not RegistrationPhase.QUEUING:
                return False  # begin_attach_noop: another caller attached (or is attaching) the loop
            # The claim (begin_attach) and the attachment (finish_attach) happen under the gate,
            # so exactly one caller attaches; the only await in between is the executor's start.
            core = session.core
            install(session, core.begin_attach())
            try:
                await start_executor(executor)
            except BaseException as exc:
                install(session, core.attach_failed())
                if isinstance(exc, Exception):
                    raise ExecutorStartFailed(str(session.session_id), exc) from exc
                raise
            body = self._loop_main(session, executor)
            try:
                session.loop_task = asyncio.create_task(body)
            except BaseException:
                body.close()
                install(session, core.attach_failed())
                raise
            session.executor = executor
            session.executor_stopped = False
            session.wake_event = asyncio.Event()
            install(session, core.finish_attach())
            if core.queued_count():
                session.wake_event.set()
        return True

    async def _loop_main(self, session: RuntimeSession, executor: CoreExecutor) -> None:
        try:
            await run_loop(session, executor, self._on_fatal)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a defect in the loop: keep the error, detach, keep the session
            session.last_error = exc
            async with session.gate:
                if session.loop_task is asyncio.current_task():
                    parts = session.detach()
                else:
                    return
            await stop_detached(parts, f"runtime loop failed: {exc}")

    async def _on_fatal(self, session: RuntimeSession, error: BaseException) -> None:
        if self._sessions.get(session.runtime_id) is session:
            await self._unregister(session.runtime_id)

    async def unregister_session(self, session_id: SessionId | str) -> None:
        """Stop the loop, resolve waiters with ``runtime_terminated``, forget the session in
        memory and release its lease. Durable state is kept. Unknown sessions are ignored (a
        session lost to another worker is forgotten, its lease left to its new owner)."""
        await self._unregister(session_runtime_id(session_id))

    async def _unregister(self, runtime_id: LogicalRuntimeId) -> None:
        session = self._sessions.pop(runtime_id, None)
        if session is None:
            return
        session.unregistered = True
        async with session.gate:
            parts = session.detach()
            session.completions.resolve_all(RuntimeTerminated("runtime session unregistered"))
        if session.ops_sink is not None:  # later terminal transitions fail loudly, never half-durable
            session.ops_sink.close()
        await stop_detached(parts, "runtime session unregistered")
        await self._claims.release(session.claim)

    async def prepare_bindings(self, session_id: SessionId | str) -> SessionBindings:
        """Register if needed and return the session's id, epoch and its one ops registry."""
        session = await self._ensure_registered(session_id)
        return session.bindings()

    async def ops_lifecycle_registry(self, session_id: SessionId | str) -> OpsLifecycleRegistry:
        """The session's operation registry (``OpsLifecycleRegistry``)."""
        return self._get(session_id).ops_registry

    async def close(self) -> None:
        """Unregister every session (releasing its lease) and stop the lease renewal."""
        await self._settle_detaches()
        for runtime_id in list(self._sessions):
            await self._unregister(runtime_id)
        await self._claims.stop()

    async def halt(self) -> None:
        """What a process crash does, for tests and harnesses: cancel every loop and in-flight
        run and forget every session without writing anything, resolving any waiter or
        telling executors to stop. Durable state is exactly what was written so far; leases
        are not released (they expire, or this owner id claims them again at once)."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await self._claims.stop()
        tasks: list[asyncio.Task[Any]] = list(self._detaching)
        for task in tasks:
            task.cancel()
        for session in sessions:
            self._claims.forget(session.claim)
            session.unregistered = True
            for running in (session.apply_task, session.loop_task):
                if running is not None and not running.done():
                    running.cancel()
                    tasks.append(running)
            session.loop_task = None
            if session.ops_sink is not None:
                session.ops_sink.close()
        if tasks:
            await asyncio.wait(tasks)

    # --- inputs ---------------------------------------------------------------------------

    async def accept_input(self, session_id: SessionId | str, item: Input) -> AcceptOutcome:
        """Admit ``item``: ``Accepted`` (durable before it returns), ``Deduplicated`` or
        ``Rejected``. Raises ``RuntimeDestroyed`` / ``NotReady`` when the phase refuses input,
        ``DurableWriteFailed`` when the row could not be written (nothing changed)."""
        session = self._get(session_id)
        return await _shielded(session.persistence.durable, self._accept(session, item))

    async def _accept(self, session: RuntimeSession, item: Input) -> AcceptOutcome:
        async with session.gate:
            session.check_registered()
            outcome, _ = await self._accept_locked(session, item, want_handle=False)
        return outcome

    async def accept_input_with_completion(
        self, session_id: SessionId | str, item: Input
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        """Like ``accept_input`` plus a completion handle: for an accepted input, and for a
        duplicate of an input still in flight (same outcome). ``None`` for a duplicate of a
        finished input. A rejected input raises ``ValidationFailed``."""
        session = self._get(session_id)
        outcome, handle = await _shielded(session.persistence.durable, self._accept_with_handle(session, item))
        if isinstance(outcome, Rejected):
            raise ValidationFailed(outcome.reason)
        return outcome, handle

    async def _accept_with_handle(
        self, session: RuntimeSession, item: Input
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        async with session.gate:
            session.check_registered()
            return await self._accept_locked(session, item, want_handle=True)

    async def _accept_locked(
        self, session: RuntimeSession, item: Input, *, want_handle: bool
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        core = session.core
        decided = core.accept(item, time.time())
        if isinstance(decided, Rejected):
            return decided, None
        if isinstance(decided, Deduplicated):
            existing = core.ledger.records.get(decided.existing_id)
            if want_handle and existing is not None and not existing.phase.is_terminal:
                return decided, session.completions.register(decided.existing_id)
            return decided, None
        if session.persistence.durable:
            await self._store_images(session, decided, item)
        await commit(session, decided, "accept_input")
        handle = session.completions.register(item.header.id) if want_handle else None
        session.wake()
        return Accepted(item.header.id, InputLifecycleState.QUEUED), handle

    async def _store_images(self, session: RuntimeSession, plan: Plan, item: Input) -> None:
        """Before an accept is written: move inline images to the blob store; only the
        persisted copy of the new row changes."""
        blobs = session.blobs
        stored = await session.persistence.read(lambda: externalize_images(item, blobs))
        if stored is not item:
            plan.records[item.header.id].stored_input = stored

    async def accept_input_and_run(self, session_id: SessionId | str, item: Input, op: RunOp[T]) -> T:
        """Accept ``item`` and run it right away through ``op(run_id, primitive)`` instead of a
        run loop. Requires an Idle session without a loop or queued work (else ``NotReady``).

        ``op`` returns ``(value, CoreApplyOutput)``; the boundary is committed and ``value``
        returned. If ``op`` raises, the run fails (input requeued; ``ExecutorCancelled``: the
        input is Abandoned as cancelled) and the error propagates; if that cannot be recorded
        the session is unregistered and ``DurableWriteFailed`` raised. A failed boundary commit
        raises ``BoundaryCommitFailed`` with the input Queued and the runtime Idle.

        ``op`` runs as the session's in-flight apply: interrupting the run, stopping,
        destroying or unregistering the session cancels it, and the call then raises
        ``InvalidRuntimeTransition`` (the run already ended as those operations say). Retiring
        the runtime meanwhile lets the run finish (it ends Retired). Cancelling the caller
        cancels the run (committed as an interrupt).
        """
        session = self._get(session_id)
        core = session.core
        await session.claim.ensure_fresh()
        async with session.gate:
            session.check_registered()
            if (
                core.loop_attached
                or core.current_run is not None
                or core.phase is not RuntimeState.IDLE
                or core.ledger.queue
                or core.ledger.steer
            ):
                core.check_accepting()
                raise NotReady(core.phase.value)
            outcome, _ = await self._accept_locked(session, item, want_handle=False)
            if isinstance(outcome, Rejected):
                raise ValidationFailed(outcome.reason)
            if isinstance(outcome, Deduplicated):
                raise ValidationFailed(f"input deduplicated against {outcome.existing_id}; nothing to run")
            plan = core.start_run(new_run_id(), outcome.input_id, time.time())
            install(session, plan)
            run = plan.current_run
            assert run is not None
            primitive = RunPrimitive(run.run_id, (item,))
            task: asyncio.Task[tuple[T, CoreApplyOutput]] = asyncio.ensure_future(op(run.run_id, primitive))
            session.apply_task = task
            session.applying_run = run.run_id
        try:
            return await self._finish_direct_run(session, run, task)
        finally:
            session.wake()  # a loop attached meanwhile drains what was queued during the run

    async def _finish_direct_run(
        self, session: RuntimeSession, run: CurrentRun, task: asyncio.Task[tuple[T, CoreApplyOutput]]
    ) -> T:
        """Wait for the op of a run ``accept_input_and_run`` started, commit how it ended and
        return its value (or raise, see ``accept_input_and_run``)."""
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the caller is cancelled: so is its run
            task.cancel()
            await end_run(session, run, RunOutcome(cancelled=True), self._on_fatal)
            raise
        finally:
            if session.apply_task is task:
                session.apply_task = None
                session.applying_run = None
        if task.cancelled():
            ended, error = await end_run(session, run, RunOutcome(cancelled=True), self._on_fatal)
            if error is not None:
                raise error
            if ended is RunEnd.STALE:
                what = f"finish run {run.run_id}: it was interrupted, or the runtime stopped, destroyed or unregistered"
                raise InvalidRuntimeTransition(session.core.phase.value, what)
            raise ExecutorCancelled(f"run {run.run_id} was cancelled")
        try:
            value, output = task.result()
            check_receipt(run, output)
        except Exception as exc:
            cancelled = isinstance(exc, ExecutorCancelled)
            ended, error = await end_run(session, run, RunOutcome(error=exc, cancelled=cancelled), self._on_fatal)
            if ended is RunEnd.FATAL and error is not None:
                raise error from exc
            raise
        ended, error = await end_run(session, run, RunOutcome(output=output), self._on_fatal)
        if error is not None:
            raise error
        if ended is RunEnd.STALE:
            what = f"commit run {run.run_id}: it was cancelled or stopped meanwhile"
            raise InvalidRuntimeTransition(session.core.phase.value, what)
        return value

    async def _control(self, session_id: SessionId | str, op: Callable[[RuntimeSession], Coroutine[Any, Any, T]]) -> T:
        """Run the control operation ``op`` on the session (shielded from cancellation when durable)."""
        session = self._get(session_id)
        return await _shielded(session.persistence.durable, op(session))

    async def interrupt_current_run(self, session_id: SessionId | str) -> reports.InterruptReport:
        """Cancel the run in flight (no-op without one)."""
        return await self._control(session_id, control_commands.interrupt_current_run)

    async def cancel_after_boundary(self, session_id: SessionId | str, reason: str = "") -> bool:
        """Forward ``CancelAfterBoundary`` to the attached executor (it stops the run at its next
        boundary). Returns ``False`` when no executor is attached."""
        session = self._get(session_id)
        executor = session.executor
        if executor is None or session.executor_stopped:
            return False
        await executor.control(CancelAfterBoundary(reason))
        return True

    async def wake(self, session_id: SessionId | str) -> None:
        """Ask the session's loop to look at its lanes again."""
        self._get(session_id).wake()

    # --- control --------------------------------------------------------------------------

    async def retire_runtime(self, session_id: SessionId | str) -> reports.RetireReport:
        return await self._control(session_id, control_commands.retire_runtime)

    async def reset_runtime(self, session_id: SessionId | str) -> reports.ResetReport:
        return await self._control(session_id, control_commands.reset_runtime)

    async def recycle_runtime(self, session_id: SessionId | str) -> reports.RecycleReport:
        return await self._control(session_id, control_commands.recycle_runtime)

    async def stop_runtime(self, session_id: SessionId | str) -> reports.StopReport:
        return await self._control(session_id, control_commands.stop_runtime)

    async def destroy_runtime(self, session_id: SessionId | str) -> reports.DestroyReport:
        return await self._control(session_id, control_commands.destroy_runtime)

    # --- observation ----------------------------------------------------------------------

    async def runtime_state(self, session_id: SessionId | str) -> RuntimeState:
        session = self._get(session_id)
        async with session.gate:
            return session.core.phase

    async def executor_ready(self, session_id: SessionId | str) -> bool:
        """True when the session has a live run loop; False when it only queues, is unknown or
        was lost to another worker."""
        session = self._sessions.get(session_runtime_id(session_id))
        if session is None or session.loop_task is None or session.lost is not None:
            return False
        return session.registration is RegistrationPhase.ACTIVE and not session.loop_task.done()

    async def registration_phase(self, session_id: SessionId | str) -> RegistrationPhase:
        return self._get(session_id).registration

    async def input_state(self, session_id: SessionId | str, input_id: InputId | str) -> InputStateView | None:
        session = self._get(session_id)
        async with session.gate:
            record = session.core.ledger.records.get(InputId(str(input_id)))
            return input_view(record) if record is not None else None

    async def input_states(self, session_id: SessionId | str) -> list[InputStateView]:
        """Every input the session knows, in admission order."""
        session = self._get(session_id)
        async with session.gate:
            records = sorted(session.core.ledger.records.values(), key=lambda r: r.admission_seq)
            return [input_view(r) for r in records]

    async def list_active_inputs(self, session_id: SessionId | str) -> list[InputId]:
        """Ids of non-terminal inputs, in admission order."""
        session = self._get(session_id)
        async with session.gate:
            return session.core.ledger.active_ids()

    async def session_view(self, session_id: SessionId | str) -> SessionView:
        """Phase, registration, current run, lanes and every input, as plain data."""
        session = self._get(session_id)
        async with session.gate:
            return session_view(session)

    async def completion_outcomes(self, session_id: SessionId | str) -> dict[InputId, CompletionOutcome]:
        """Outcomes delivered so far to waiters, by input id (also of a session lost to another
        worker)."""
        return dict(self._get(session_id, lost_ok=True).completions.resolved)

    async def last_error(self, session_id: SessionId | str) -> BaseException | None:
        """The last error the session's loop recorded (boundary or terminal-snapshot failure,
        ``OwnershipLost``); also for a session lost to another worker."""
        return self._get(session_id, lost_ok=True).last_error

    def settled_now(self, session_id: SessionId | str) -> bool:
        """Whether the session's loop has nothing runnable right now: no loop (or no session),
        waiting for a wake with none pending and the gate free, or inside an executor that
        reports it is parked (``ScriptedExecutor.parked()``). Never blocks; for harnesses that
        drive the event loop themselves (``settle`` waits for it)."""
        session = self._sessions.get(session_runtime_id(session_id))
        if session is None or session.loop_task is None:
            return True
        state = session.loop_state
        if state is LoopState.WAITING and not session.wake_event.is_set() and not session.gate.locked():
            return True
        parked = getattr(session.executor, "parked", None)
        return state is LoopState.APPLYING and callable(parked) and bool(parked())

    async def settle(self, session_id: SessionId | str, timeout: float = 5.0) -> None:
        """Wait until the session's loop has nothing runnable (:meth:`settled_now`). Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        spins = 0
        while True:
            session = self._sessions.get(session_runtime_id(session_id))
            if session is None or session.loop_task is None:
                await asyncio.sleep(0)
                return
            if self.settled_now(session_id):
                return
            if time.monotonic() > deadline:
                state = session.loop_state
                raise TimeoutError(f"session {session_id!r} did not settle within {timeout} s (loop {state.value})")
            spins += 1
            await asyncio.sleep(0 if spins < 50 else 0.0005)
