"""One registered session: its core state, persistence, waiters, loop attachment and bindings.

The ``gate`` (an ``asyncio.Lock``) serialises every plan → write → apply → publish span of the
session (:mod:`meerkat_runtime.session.commit`); executors are never called while it is held,
but for one: an attach holds it while it awaits the executor's ``start()`` (:func:`bounded_start`).
Readers take the gate too (:meth:`RuntimeSession.reading`), so a transition whose durable write is
still in flight is never visible. Neither a read nor a step the model allows while the registration
is Attaching (an accept, retire, reset, recycle, recover, interrupt: :meth:`RuntimeSession.sharing`)
waits for a pending ``start()``: it shares the gate with the attach, one such caller at a time, and
the attach goes on only once they are over. A stop or destroy takes the gate giving such a start up
(:meth:`RuntimeSession.halting`), as a shutdown does.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meerkat_runtime.events.bus import EventBus
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.persistence import StoreOpsPersistence
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.auth import AuthLeaseHandle, OAuthFlowAuthority
from meerkat_runtime.session.blobs import BlobStore
from meerkat_runtime.session.claims import SessionClaim
from meerkat_runtime.session.completion import CompletionRegistry, RuntimeTerminated
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.dispatch import CompositionDispatch
from meerkat_runtime.session.executor import CoreExecutor, RunControlCommand, StopRuntimeExecutor, start_executor
from meerkat_runtime.session.gate import SessionGate
from meerkat_runtime.session.persistence import SessionPersistence, Written
from meerkat_runtime.session.reattach import ReattachBackoff
from meerkat_runtime.session.retention_policy import DEFAULT_RETENTION, RetentionPolicy
from meerkat_runtime.session.retry import DEFAULT_RETRY, RetryPolicy
from meerkat_runtime.vocab.errors import MachineClosed, OwnershipLost, SessionNotFound
from meerkat_runtime.vocab.ids import LogicalRuntimeId, RunId, SessionId
from meerkat_runtime.vocab.runtime import RegistrationPhase

if TYPE_CHECKING:
    from meerkat_runtime.session.events import Before

Detached = tuple[CoreExecutor | None, "asyncio.Task[None] | None", "asyncio.Task[Any] | None"]

_log = logging.getLogger("meerkat_runtime.session")


class LoopState(enum.Enum):
    """What the session's run loop is doing (for observers and ``settle``)."""

    DETACHED = "detached"
    WAITING = "waiting"
    WORKING = "working"
    APPLYING = "applying"
    BACKOFF = "backoff"
    """Waiting out the retry policy's backoff after a failed run."""


@dataclass(frozen=True, slots=True)
class SessionBindings:
    """What a session's agent needs: ids, the epoch, the session's one ops registry and the
    machine's auth authorities."""

    session_id: SessionId
    runtime_id: str
    epoch_id: str
    ops_registry: OpsLifecycleRegistry
    cursors: EpochCursorState
    auth_lease: AuthLeaseHandle | None = None
    """The machine's credential lease handle, the same for every binding (``None`` only when
    bindings are built without a machine)."""
    oauth_flows: OAuthFlowAuthority | None = None
    """The machine's login-flow authority, the same for every binding."""


class RuntimeSession:
    """Mutable state of one registered session (owned by ``MeerkatMachine``)."""

    def __init__(
        self,
        session_id: SessionId,
        core: SessionCore,
        persistence: SessionPersistence,
        blobs: BlobStore | None,
        epoch_id: str,
        ops_registry: OpsLifecycleRegistry,
        cursors: EpochCursorState,
    ) -> None:
        self.session_id = session_id
        self.runtime_id = LogicalRuntimeId(core.runtime_id)
        self.core = core
        self.persistence = persistence
        self.blobs = blobs
        self.gate = SessionGate()
        self.completions = CompletionRegistry()
        self.executor: CoreExecutor | None = None
        self.executor_stopped = False
        self.loop_task: asyncio.Task[None] | None = None
        self.loop_state = LoopState.DETACHED
        self.wake_event = asyncio.Event()
        self.apply_task: asyncio.Task[Any] | None = None
        self.applying_run: RunId | None = None
        self.epoch_id = epoch_id
        self.ops_registry = ops_registry
        self.cursors = cursors
        self.last_error: BaseException | None = None
        self.unregistered = False
        self.closed_with_machine = False
        """Set when the session was unregistered by the machine's ``close()``: a call still in
        flight then raises ``MachineClosed``, not ``SessionNotFound``."""
        self.ops_sink: StoreOpsPersistence | None = None
        self.lost_detached = False
        """Set once the session was detached because its claim was lost."""
        self.in_doubt: BaseException | None = None
        """The store error of a write whose outcome is still unknown (the store could not be
        read back): the session reconciles before its next step
        (:mod:`meerkat_runtime.session.reconcile`)."""
        self.doubt_plan: tuple[Plan, Written] | None = None
        """The plan whose write left the session in doubt, with what it wrote: published (as
        adopted) if reconciling finds it in the store."""
        self.doubt_before: Before | None = None
        """The core as it was when that plan was written: its adopted event describes the
        transition from there (what the store took), not from what memory did meanwhile (a run's
        boundary commit in doubt requeues its input in memory)."""
        self.events: EventBus | None = None
        """The machine's event bus (:mod:`meerkat_runtime.session.events`)."""
        self.events_closed = False
        """Set once the session's last event (``unregister`` or ``terminal_snapshot_failed``)
        was published."""
        self.dispatch: CompositionDispatch | None = None
        """The machine's composition dispatcher, if one is installed."""
        self.retry: RetryPolicy = DEFAULT_RETRY
        self.retention: RetentionPolicy = DEFAULT_RETENTION
        self.background: set[asyncio.Task[Any]] = set()
        """Work the session started to finish on its own (stopping an executor after a
        reconciliation, attaching its executor again after a failed boundary commit);
        unregistering waits for it, a halt cancels it."""
        self.reattach_task: asyncio.Task[None] | None = None
        """The machine's re-attach after a failed boundary commit, while it runs
        (:mod:`meerkat_runtime.session.reattach`); unregistering cancels it."""
        self.reattach_backoff = ReattachBackoff()
        self.starting: ParkedStart | None = None
        """Set while an attach awaits its executor's ``start()`` (:func:`bounded_start`, under the
        gate, until the call is over or given up): :meth:`give_up_start` gives it up."""
        self.start_parked = asyncio.Event()
        """Set while :attr:`starting` is: wakes the callers waiting for the gate
        (:meth:`reading`, :meth:`halting`)."""
        self.reattach_executor: CoreExecutor | None = None
        """The executor the re-attach attaches: the one the last failed boundary commit
        detached (read on each try, so an executor the application attached meanwhile, then
        detached by a later failure, is the one attached, never the one it replaced)."""

    @property
    def claim(self) -> SessionClaim:
        """This machine's claim on the session's runtime id (its lease fence, when owned)."""
        return self.persistence.claim

    @property
    def lost(self) -> OwnershipLost | None:
        """The error with which this machine lost the session's lease, if it did."""
        return self.claim.lost

    @property
    def registration(self) -> RegistrationPhase:
        """Queuing (no loop), Attaching or Active (loop attached); held by the core."""
        return self.core.registration

    def check_registered(self) -> None:
        """Raise ``SessionNotFound`` once the session was unregistered (``MachineClosed`` when the
        machine's ``close()`` unregistered it) and ``OwnershipLost`` once its lease was lost (call
        under the gate)."""
        if self.unregistered:
            if self.closed_with_machine:
                raise MachineClosed(f"use session {str(self.session_id)!r}")
            raise SessionNotFound(self.session_id)
        self.claim.check()

    def bindings(self) -> SessionBindings:
        return SessionBindings(self.session_id, self.runtime_id, self.epoch_id, self.ops_registry, self.cursors)

    def publish(self, plan: Plan) -> None:
        """Resolve the waiters an applied plan decided."""
        for input_id, outcome in plan.resolutions:
            self.completions.resolve(input_id, outcome)
        if plan.terminate_all is not None:
            self.completions.resolve_all(RuntimeTerminated(plan.terminate_all))

    def give_up_start(self) -> None:
        """Make an attach that awaits its executor's ``start()`` give up (:func:`bounded_start`):
        the call is cancelled and nothing is attached (``attach_failed``). A shutdown of the
        session (unregistering it, the machine's ``close`` or ``halt``, the loss of its lease)
        calls this before it waits for the gate, which the attach holds; a stop or destroy
        calls it through :meth:`halting`."""
        starting = self.starting
        if starting is not None and not starting.given_up.done():
            starting.given_up.set_result(None)

    async def _gate_or_start(self) -> ParkedStart | None:
        """Acquire the gate (``None``), or return the attach that holds it while it awaits its
        executor's ``start()``, once there is one. Cancelling the caller leaves the gate as it
        was."""
        loop = asyncio.get_running_loop()
        while True:
            if self.starting is not None:
                return self.starting
            if self.gate.free():
                await self.gate.acquire()  # free, nobody queued: taken without suspending
                return None
            # raced even when the gate looks free: the waiter its release woke may be an attach
            acquiring = loop.create_task(self.gate.acquire())
            parked = loop.create_task(self.start_parked.wait())
            try:
                await asyncio.wait({acquiring, parked}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                parked.cancel()
                self._forgo(acquiring)
                raise
            parked.cancel()
            if acquiring.done():
                return None
            self._forgo(acquiring)

    def _forgo(self, acquiring: asyncio.Task[bool]) -> None:
        """No longer want the gate ``acquiring`` waits for: cancel it, and release the gate
        should it have been acquired all the same."""
        acquiring.cancel()
        acquiring.add_done_callback(self._release_if_acquired)

    def _release_if_acquired(self, acquiring: asyncio.Task[bool]) -> None:
        if not acquiring.cancelled():
            self.gate.release()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Hold the gate for a read (:meth:`sharing`). While an attach awaits its executor's
        ``start()`` the read does not wait for the call: it sees the session as it is before the
        attach finishes (Attaching, the phase it had), never a write in flight."""
        async with self.sharing():
            yield

    def sharing(self) -> Sharing:
        """Hold the gate for a read or for a step the model allows while the registration is
        Attaching (accept, retire, reset, recycle, recover, interrupt). While an attach awaits its
        executor's ``start()`` (it holds the gate, writing nothing) the caller does not wait for
        the call: it shares the gate with the attach, one such caller at a time
        (:attr:`ParkedStart.turn`, so no read sees a write in flight), and the attach goes on
        (``finish_attach`` or ``attach_failed``) only once every caller that shares it is over.
        An ``async with`` context (:class:`Sharing`)."""
        return Sharing(self)

    @contextlib.asynccontextmanager
    async def halting(self) -> AsyncIterator[None]:
        """Hold the gate for a stop or destroy. An attach that holds it while it awaits its
        executor's ``start()`` gives the start up (:meth:`give_up_start`: the call is cancelled
        and waited for at most :data:`EXECUTOR_STOP_LIMIT_S`, the attach records
        ``attach_failed``), then the gate is taken: a stop never waits for ``start()`` to
        return."""
        while (starting := await self._gate_or_start()) is not None:
            self.give_up_start()
            await asyncio.wait({starting.over})
        try:
            yield
        finally:
            self.gate.release()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in the background, tracked in :attr:`background`."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def wake(self) -> None:
        """Signal the loop to look at the lanes again."""
        if self.loop_task is not None:
            self.wake_event.set()

    def detach(self) -> Detached:
        """Forget the loop (registration back to Queuing, if a rule did not already). Returns
        what the caller must stop (:func:`stop_detached`): the executor (if not yet told to
        stop), the loop task and an in-flight apply task."""
        executor = None if self.executor_stopped else self.executor
        self.executor_stopped = True
        loop_task, apply_task = self.loop_task, self.apply_task
        self.loop_task = None
        self.executor = None
        self.core.detach_loop()
        return executor, loop_task, apply_task


class ParkedStart:
    """An attach of the session that holds its gate while it awaits its executor's ``start()``
    (:func:`bounded_start`)."""

    __slots__ = ("given_up", "over", "sharers", "turn", "unshared")

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.given_up: asyncio.Future[None] = loop.create_future()
        """Resolved by :meth:`RuntimeSession.give_up_start`."""
        self.over: asyncio.Future[None] = loop.create_future()
        """Resolved once the attach no longer awaits the call (it returned, raised, or was given
        up and abandoned)."""
        self.sharers = 0
        """Callers sharing the gate meanwhile (:meth:`RuntimeSession.sharing`), in their turn or
        waiting for it."""
        self.turn = asyncio.Lock()
        """Taken by each caller sharing the gate: they go one at a time, as under the gate."""
        self.unshared = asyncio.Event()
        """Set while no caller shares the gate: the attach waits for it before it goes on."""
        self.unshared.set()


EXECUTOR_STOP_LIMIT_S = 5.0
"""How long the runtime waits for an executor's ``control(StopRuntimeExecutor(...))`` (when a
session is unregistered, the machine closes, or a loop is detached), in seconds. An executor
still stopping after it is abandoned: the call is cancelled (not awaited further) and the
shutdown goes on, so one executor that never returns does not hold up the others or the
release of the leases. A shutdown, stop or destroy that finds an attach awaiting the executor's
``start()`` cancels that call at once and waits at most this long for it to end
(:func:`bounded_start`); a start given up so that returns later all the same is told to stop, again
waited for at most this long (:func:`stop_unowned`)."""

_abandoned: set[asyncio.Task[Any]] = set()
"""Stop and start calls abandoned after :data:`EXECUTOR_STOP_LIMIT_S` (cancelled, kept
referenced until they end), and the stops of executors whose given-up start returned
(:func:`stop_unowned`)."""


async def stop_detached(parts: Detached, reason: str) -> None:
    """Cancel a detached loop / in-flight apply and tell the executor to stop (once), waiting at
    most :data:`EXECUTOR_STOP_LIMIT_S` for it. Call with the gate released; never cancels the
    calling task."""
    executor, loop_task, apply_task = parts
    current = asyncio.current_task()
    for task in (apply_task, loop_task):
        if task is not None and task is not current and not task.done():
            task.cancel()
    if executor is not None:
        await bounded_control(executor, StopRuntimeExecutor(reason))


async def bounded_control(executor: CoreExecutor, command: RunControlCommand) -> BaseException | None:
    """``executor.control(command)`` in a task of its own, waited for at most
    :data:`EXECUTOR_STOP_LIMIT_S`; after that the task is cancelled and abandoned. An error of the
    executor is returned, never raised (a misbehaving executor must not fail the caller);
    cancelling the caller cancels the call."""
    call = asyncio.get_running_loop().create_task(_control(executor, command))
    try:
        await asyncio.wait({call}, timeout=EXECUTOR_STOP_LIMIT_S)
    finally:
        _let_go(call)
    return None if not call.done() or call.cancelled() else call.exception()


async def _control(executor: CoreExecutor, command: RunControlCommand) -> None:
    await executor.control(command)


def _let_go(call: asyncio.Task[Any]) -> None:
    """Stop waiting for ``call``: cancel it if it still runs (kept referenced until it ends) and
    retrieve its outcome once it does."""
    if not call.done():
        call.cancel()
        _abandoned.add(call)
        call.add_done_callback(_abandoned.discard)
    call.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # the executor's error is advisory: retrieved, never raised


async def bounded_start(session: RuntimeSession, executor: CoreExecutor) -> bool:
    """``start_executor(executor)`` for an attach of ``session`` (called under its gate), in a task
    of its own: ``True`` once it returned; whatever it raised propagates. ``False`` when a
    shutdown, stop or destroy gave the start up meanwhile (:meth:`RuntimeSession.give_up_start`):
    the call was cancelled and waited for at most :data:`EXECUTOR_STOP_LIMIT_S`, then abandoned;
    the caller attaches nothing. Cancelling the caller cancels the call and does not wait for it.
    A call not attached that returns all the same (it ignored the cancellation) started an
    executor nobody drives: it is told to stop (:func:`stop_unowned`). Callers that shared the gate
    meanwhile (:meth:`RuntimeSession.sharing`) are over before this returns."""
    loop = asyncio.get_running_loop()
    call = loop.create_task(start_executor(executor))
    starting = session.starting = ParkedStart()
    session.start_parked.set()
    attached = False
    try:
        await asyncio.wait({call, starting.given_up}, return_when=asyncio.FIRST_COMPLETED)
        if call.done():
            call.result()
            attached = True
            return True
        call.cancel()  # given up: the start is no longer wanted
        await asyncio.wait({call}, timeout=EXECUTOR_STOP_LIMIT_S)
        return False
    finally:
        session.starting = None
        session.start_parked.clear()
        starting.given_up.cancel()
        starting.over.set_result(None)
        _let_go(call)
        if not attached:
            call.add_done_callback(lambda done: _stop_if_started(session, executor, done))
        await _unshared(starting)


async def _unshared(starting: ParkedStart) -> None:
    """Wait until no caller shares the gate with ``starting``'s attach any more, also when the
    attach is cancelled meanwhile (the cancellation is raised once they are over): the attach
    never goes on (``finish_attach`` / ``attach_failed``) while one of them writes."""
    cancelled: asyncio.CancelledError | None = None
    while not starting.unshared.is_set():
        try:
            await starting.unshared.wait()
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled


def _stop_if_started(session: RuntimeSession, executor: CoreExecutor, call: asyncio.Task[Any]) -> None:
    """``call`` (a start nothing attached) ended: if it returned, stop the executor it started."""
    if call.cancelled() or call.exception() is not None:
        return
    stopping = asyncio.get_running_loop().create_task(stop_unowned(session, executor))
    _abandoned.add(stopping)
    stopping.add_done_callback(_abandoned.discard)
    stopping.add_done_callback(_retrieve)


async def stop_unowned(session: RuntimeSession, executor: CoreExecutor) -> None:
    """Tell ``executor``, whose ``start()`` returned after the attach gave it up, to stop
    (``StopRuntimeExecutor``), waiting at most :data:`EXECUTOR_STOP_LIMIT_S` (then the call is
    cancelled and abandoned). What it raises is logged and kept in ``session.last_error``,
    never raised."""
    error = await bounded_control(executor, StopRuntimeExecutor("start given up"))
    if error is not None:
        session.last_error = error
        _log.warning("session %s: stopping an executor whose start was given up failed: %r", session.session_id, error)


class Sharing:
    """The context :meth:`RuntimeSession.sharing` returns (its rules there): a class rather than
    an ``asynccontextmanager``, whose asynchronous generator costs a generator, the loop's
    first-iteration hook (a weak set entry and its removal) and two more steps on every accept."""

    __slots__ = ("_session", "_starting")

    def __init__(self, session: RuntimeSession) -> None:
        self._session = session
        self._starting: ParkedStart | None = None

    async def __aenter__(self) -> None:
        starting = await self._session._gate_or_start()
        if starting is None:
            return
        self._starting = starting
        starting.sharers += 1
        starting.unshared.clear()
        try:
            await starting.turn.acquire()
        except BaseException:
            _unshare(starting)
            raise

    async def __aexit__(self, *exc: object) -> None:
        starting = self._starting
        if starting is None:
            self._session.gate.release()
            return
        try:
            starting.turn.release()
        finally:
            _unshare(starting)


def _unshare(starting: ParkedStart) -> None:
    """One caller fewer shares the gate with ``starting``'s attach."""
    starting.sharers -= 1
    if not starting.sharers:
        starting.unshared.set()
