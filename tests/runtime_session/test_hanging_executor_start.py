"""An executor whose ``start()`` (the attach hook) never returns holds up no shutdown: the attach
awaiting it holds the session's gate, so ``close()``, ``unregister_session`` and ``halt()`` give
the start up instead of waiting for it — the call is cancelled (waited for at most
``EXECUTOR_STOP_LIMIT_S``, then abandoned), nothing is attached (the model's ``attach_failed``)
and the attach's caller gets ``MachineClosed`` / ``SessionNotFound``. The lease is released, the
renewal stops and the other sessions are shut down as usual; the same when the pending start is
the machine's own re-attach after a failed boundary commit, and when the lease is lost to
another worker (``OwnershipLost``). A stop or destroy of the session gives the start up the same
way before it takes effect (its log replays through the model: ``attach_failed`` then ``stop``),
and a read does not wait for it (it sees the session Attaching). A given-up start that returns all
the same (it ignored the cancellation) is told to stop: nothing keeps running unowned. No test
asserts how long anything took (``run`` only guards against a hang)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session import reattach, runtime_session
from meerkat_runtime.session.completion import CompletionHandle, RuntimeTerminated
from meerkat_runtime.session.executor import RunControlCommand, StopRuntimeExecutor
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import Block, ScriptedExecutor
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import MachineClosed, NotReady, OwnershipLost, SessionNotFound
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.ownership.helpers import two_workers
from tests.runtime_session.helpers import S, logged, make_prompt, persistent, replays, run, view_of


class NeverStarts(ScriptedExecutor):
    """``start()`` parks (from call number ``hang_from`` on) until ``let_go`` is set; with
    ``ignore_cancel`` it keeps waiting when cancelled (only ``let_go`` ends it), with
    ``return_on_cancel`` it returns when cancelled (started all the same). ``stop_error``: what
    ``control(StopRuntimeExecutor(...))`` raises."""

    def __init__(
        self,
        *,
        hang_from: int = 1,
        ignore_cancel_on_start: bool = False,
        return_on_cancel: bool = False,
        stop_error: Exception | None = None,
    ) -> None:
        super().__init__()
        self.hang_from = hang_from
        self.ignore_cancel_on_start = ignore_cancel_on_start
        self.return_on_cancel = return_on_cancel
        self.stop_error = stop_error
        self.hanging = asyncio.Event()
        self.let_go = asyncio.Event()
        self.start_cancelled = False
        self.start_tasks: list[asyncio.Task[object]] = []

    async def start(self) -> None:
        await super().start()
        if self.starts < self.hang_from:
            return
        task = asyncio.current_task()
        assert task is not None
        self.start_tasks.append(task)
        self.hanging.set()
        while True:
            try:
                await self.let_go.wait()
                return
            except asyncio.CancelledError:
                self.start_cancelled = True
                if self.return_on_cancel:
                    return
                if not self.ignore_cancel_on_start:
                    raise

    async def control(self, command: RunControlCommand) -> None:
        await super().control(command)
        if isinstance(command, StopRuntimeExecutor) and self.stop_error is not None:
            raise self.stop_error


def _released(store: InMemoryRuntimeStore, session_id: str) -> bool:
    lease = store.load_lease(canonical_runtime_id(session_id))
    return lease is not None and lease.expires_at <= time.time()


def _others() -> set[asyncio.Task[object]]:
    """The tasks still pending besides the test's own."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


def _queued(gate: asyncio.Lock, count: int) -> bool:
    """Whether ``count`` callers wait for ``gate``."""
    waiters = getattr(gate, "_waiters", None)
    return waiters is not None and len(waiters) == count


async def _told_to_stop(executor: ScriptedExecutor) -> None:
    """Wait until ``executor`` was told to stop and no abandoned executor call runs any more (a
    guard against a hang, not a timing check)."""
    async with asyncio.timeout(10):
        while not executor.stopped or runtime_session._abandoned:
            await asyncio.sleep(0.001)


async def _stuck_and_other(
    store: InMemoryRuntimeStore, log: EventLog | None = None, **hang: Any
) -> tuple[MeerkatMachine, NeverStarts, asyncio.Task[bool], ScriptedExecutor, CompletionHandle | None]:
    """Session ``other`` with a run in flight, and session ``stuck`` whose attach awaits a
    ``start()`` that does not return; returns the attach's task and ``other``'s waiter."""
    m, _ = persistent(store)
    if log is not None:
        m.events.subscribe(log)
    other = ScriptedExecutor(Block())
    await m.register_session_with_executor("other", other)
    _, waiter = await m.accept_input_with_completion("other", make_prompt())
    await other.wait_parked()
    stuck = NeverStarts(**hang)
    await m.register_session("stuck")
    attaching = asyncio.create_task(m.register_session_with_executor("stuck", stuck))
    await stuck.hanging.wait()
    assert await m.registration_phase("other") is RegistrationPhase.ACTIVE
    return m, stuck, attaching, other, waiter


def _fast_re_attach(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's re-attach after a failed boundary commit retries at once."""
    monkeypatch.setattr(reattach, "FIRST_DELAY_S", 0.001)
    monkeypatch.setattr(reattach, "MAX_DELAY_S", 0.01)


async def _hanging_re_attach(log_dir: Path) -> tuple[MeerkatMachine, InMemoryRuntimeStore, NeverStarts, EventLog]:
    """Session ``s`` whose boundary commit failed, the machine's re-attach awaiting a second
    ``start()`` that never returns (with :func:`_fast_re_attach`); returns the machine, its inner
    store, the executor and the event log (in ``log_dir``)."""
    inner = InMemoryRuntimeStore()
    store = FaultInjectingStore(inner)
    m, log = logged(store, log_dir, offload_store_calls=False)
    ex = NeverStarts(hang_from=2)
    await m.register_session_with_executor("s", ex)
    store.fail_next("atomic_apply")
    await m.accept_input("s", make_prompt("q"))
    async with asyncio.timeout(10):  # a guard against a hang, not a timing check
        await ex.hanging.wait()  # the re-attach awaits the second start()
    return m, inner, ex, log


def test_close_gives_up_a_start_that_never_returns(tmp_path: Path) -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        log = EventLog(tmp_path)
        m, stuck, attaching, other, waiter = await _stuck_and_other(store, log)
        assert m.session_claim_handle().renewing
        await m.close()  # returns although start() never does
        with pytest.raises(MachineClosed):
            await attaching  # nothing attached
        assert stuck.start_cancelled and all(t.done() for t in stuck.start_tasks)
        assert stuck.applied == [] and not stuck.stopped  # never attached, so never told to stop
        assert waiter is not None and isinstance(await waiter.wait(), RuntimeTerminated)
        assert other.stopped  # the other session was shut down as usual
        assert _released(store, "stuck") and _released(store, "other")
        assert not m.session_claim_handle().renewing
        assert _others() == set()  # nothing left running
        another_worker, _ = persistent(store, ownership=OwnershipConfig(owner_id="worker-2", wait_for_lease=False))
        await another_worker.register_session("stuck")  # no LeaseHeld: the lease was released
        await another_worker.close()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "attach_failed", "unregister")


def test_unregister_gives_up_a_start_that_never_returns(tmp_path: Path) -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        log = EventLog(tmp_path)
        m, stuck, attaching, other, waiter = await _stuck_and_other(store, log)
        await m.unregister_session("stuck")  # returns although start() never does
        with pytest.raises(SessionNotFound):
            await attaching
        assert stuck.start_cancelled and all(t.done() for t in stuck.start_tasks)
        assert _released(store, "stuck") and not _released(store, "other")
        assert m.session_claim_handle().renewing  # "other" is still held
        assert waiter is not None and not waiter.done() and not other.stopped  # untouched
        fresh = ScriptedExecutor()
        assert await m.register_session_with_executor("stuck", fresh)  # registered and attached again
        item = make_prompt("after")
        await m.accept_input("stuck", item)
        await m.settle("stuck")
        assert [ids for _, ids in fresh.applied] == [(item.header.id,)]
        await m.close()
        assert _released(store, "stuck") and _released(store, "other")
        assert not m.session_claim_handle().renewing
        assert _others() == set()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "attach_failed", "unregister", "finish_attach")


def test_a_start_that_ignores_cancellation_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_session, "EXECUTOR_STOP_LIMIT_S", 0.05)

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, attaching, other, _ = await _stuck_and_other(store, ignore_cancel_on_start=True)
        try:
            async with asyncio.timeout(10):  # a guard against a hang, not a timing check
                await m.close()  # returns although start() keeps running after it was cancelled
        except TimeoutError:
            stuck.let_go.set()  # let the stuck start end, so the event loop can shut down
            raise
        with pytest.raises(MachineClosed):
            await attaching
        assert stuck.start_cancelled and not stuck.start_tasks[0].done()  # abandoned, still running
        assert other.stopped and _released(store, "stuck") and _released(store, "other")
        assert not m.session_claim_handle().renewing
        assert not stuck.stopped
        stuck.let_go.set()  # the abandoned call ends on its own; nothing is attached by it
        await asyncio.wait(stuck.start_tasks)
        await _told_to_stop(stuck)  # it returned: the executor it started is stopped, not left running
        assert stuck.commands == [StopRuntimeExecutor("start given up")]
        assert stuck.applied == [] and _others() == set()

    run(body())


def test_a_given_up_start_that_returns_at_once_is_stopped() -> None:
    """The start swallows the cancellation and returns (within the stop limit): the executor
    started although nothing attached it, so it is told to stop."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, attaching, _, _ = await _stuck_and_other(store, return_on_cancel=True)
        await m.unregister_session("stuck")
        with pytest.raises(SessionNotFound):
            await attaching
        await _told_to_stop(stuck)
        assert stuck.start_cancelled and stuck.applied == []
        assert stuck.commands == [StopRuntimeExecutor("start given up")]
        await m.close()
        assert _others() == set()

    run(body())


def test_a_failing_stop_of_a_given_up_start_is_kept_not_raised() -> None:
    """The stop of an executor whose given-up start returned raises: the error is kept in the
    session's ``last_error``; neither the stop that gave the start up nor anything else raises it."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        broken = RuntimeError("stop failed")
        m, stuck, attaching, _, _ = await _stuck_and_other(store, return_on_cancel=True, stop_error=broken)
        await m.stop_runtime("stuck")
        with pytest.raises(NotReady):
            await attaching
        await _told_to_stop(stuck)
        assert await m.last_error("stuck") is broken
        assert await m.runtime_state("stuck") is RuntimeState.STOPPED
        await m.close()
        assert _others() == set()

    run(body())


@pytest.mark.parametrize("control", ["stop", "destroy"])
def test_stop_or_destroy_gives_up_a_start_that_never_returns(control: str, tmp_path: Path) -> None:
    """``stop_runtime`` / ``destroy_runtime`` wait for the gate an attach awaiting ``start()``
    holds: they give the start up (``attach_failed``) and then take effect; the log replays
    through the model (``begin_attach``, ``attach_failed``, then the stop or destroy)."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        log = EventLog(tmp_path)
        m, stuck, attaching, other, waiter = await _stuck_and_other(store, log)
        item = make_prompt("queued")
        accepting = asyncio.create_task(m.accept_input("stuck", item))  # waits for the gate
        try:
            async with asyncio.timeout(10):  # a guard against a hang, not a timing check
                if control == "stop":
                    await m.stop_runtime("stuck")
                else:
                    await m.destroy_runtime("stuck")
        finally:
            stuck.let_go.set()
        with pytest.raises(NotReady):
            await attaching  # nothing attached
        await accepting  # taken before the stop, which abandoned it
        assert (await view_of(m, item, "stuck")).current_state is S.ABANDONED
        assert stuck.start_cancelled and all(t.done() for t in stuck.start_tasks)
        assert stuck.applied == [] and not stuck.stopped  # never attached, its start raised
        if control == "stop":
            assert await m.runtime_state("stuck") is RuntimeState.STOPPED
            assert await m.registration_phase("stuck") is RegistrationPhase.QUEUING
            with pytest.raises(NotReady):
                await m.register_session_with_executor("stuck", ScriptedExecutor())
        else:
            assert await m.runtime_state("stuck") is RuntimeState.DESTROYED
        assert waiter is not None and not waiter.done() and not other.stopped  # the other session runs on
        await m.close()
        assert _others() == set()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "attach_failed", control)


def test_a_stop_gives_up_a_re_attach_whose_start_never_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's re-attach after a failed boundary commit awaits a ``start()`` that never
    returns: ``stop_runtime`` gives it up, the re-attach ends, the session is Stopped."""
    _fast_re_attach(monkeypatch)

    async def body() -> None:
        m, _, ex, log = await _hanging_re_attach(tmp_path)
        async with asyncio.timeout(10):  # a guard against a hang, not a timing check
            await m.stop_runtime("s")
        assert ex.start_cancelled and all(t.done() for t in ex.start_tasks)
        assert await m.runtime_state("s") is RuntimeState.STOPPED
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        await m.close()
        assert _others() == set()
        log.close()

    run(body())
    replays(tmp_path, "boundary_commit_failed", "attach_failed", "stop")


def test_reads_do_not_wait_for_a_start_that_never_returns() -> None:
    """A read while an attach awaits ``start()`` answers at once with the session as it is
    before the attach finishes (Attaching, the phase unchanged, its inputs); once the start
    returns the attach goes on."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, _ = persistent(store)
        item = make_prompt("before")
        await m.register_session("s")
        await m.accept_input("s", item)  # queued, no loop
        stuck = NeverStarts()
        attaching = asyncio.create_task(m.register_session_with_executor("s", stuck))
        await stuck.hanging.wait()
        try:
            async with asyncio.timeout(10):  # a guard against a hang, not a timing check
                assert await m.runtime_state("s") is RuntimeState.IDLE
                assert await m.list_active_inputs("s") == [item.header.id]
                view = await m.session_view("s")
                assert view.registration_phase is RegistrationPhase.ATTACHING
                assert [str(i) for i in view.queue] == [str(item.header.id)]
                assert [v.input_id for v in await m.input_states("s")] == [item.header.id]
                found = await m.input_state("s", item.header.id)
                assert found is not None and found.input_id == item.header.id
        finally:
            stuck.let_go.set()
        assert await attaching  # the attach was not disturbed by the reads
        await m.settle("s")
        assert [ids for _, ids in stuck.applied] == [(item.header.id,)]
        await m.close()
        assert _others() == set()

    run(body())


def test_a_read_queued_before_the_start_does_not_wait_for_it() -> None:
    """A read already waiting for the gate when an attach takes it and then awaits ``start()``
    is let in once the start is pending, not when it returns."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, _ = persistent(store)
        await m.register_session("s")
        gate = m._sessions[canonical_runtime_id("s")].gate
        stuck = NeverStarts()
        await gate.acquire()  # hold the gate so the attach, then the read, queue for it
        attaching = asyncio.create_task(m.register_session_with_executor("s", stuck))
        async with asyncio.timeout(10):
            while not _queued(gate, 1):  # the attach queues first
                await asyncio.sleep(0)
        reading = asyncio.create_task(m.runtime_state("s"))
        async with asyncio.timeout(10):
            while not _queued(gate, 2):
                await asyncio.sleep(0)
        gate.release()
        try:
            async with asyncio.timeout(10):  # a guard against a hang, not a timing check
                await stuck.hanging.wait()
                assert await reading is RuntimeState.IDLE
        finally:
            stuck.let_go.set()
        assert await attaching
        await m.close()
        assert _others() == set()

    run(body())


def test_halt_gives_up_a_start_that_never_returns() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, attaching, _, _ = await _stuck_and_other(store)
        await m.halt()
        with pytest.raises(SessionNotFound):
            await attaching  # the caller is not left waiting on a start nobody wants
        assert stuck.start_cancelled and all(t.done() for t in stuck.start_tasks)
        assert not _released(store, "stuck")  # a halt is a crash: leases are left to expire
        assert _others() == set()

    run(body())


@pytest.mark.parametrize("shutdown", ["close", "unregister"])
def test_a_re_attach_whose_start_never_returns_does_not_hold_up_the_shutdown(
    shutdown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed boundary commit the machine attaches the executor again; its second
    ``start()`` never returns."""
    _fast_re_attach(monkeypatch)

    async def body() -> None:
        m, inner, ex, log = await _hanging_re_attach(tmp_path)
        assert await m.registration_phase("s") is RegistrationPhase.ATTACHING
        if shutdown == "close":
            await m.close()
        else:
            await m.unregister_session("s")
        assert ex.start_cancelled and all(t.done() for t in ex.start_tasks)
        assert _released(inner, "s")
        await m.close()
        assert not m.session_claim_handle().renewing
        assert _others() == set()
        log.close()

    run(body())
    replays(tmp_path, "boundary_commit_failed", "attach_failed", "unregister")


def test_losing_the_lease_gives_up_a_start_that_never_returns() -> None:
    """The detach after a lost lease (it waits for the session's gate, like a shutdown) gives the
    pending start up: ``renew_leases_now`` returns and the attach's caller gets ``OwnershipLost``."""

    async def body() -> None:
        w = two_workers()
        stuck = NeverStarts()
        await w.a.register_session("s")
        attaching = asyncio.create_task(w.a.register_session_with_executor("s", stuck))
        await stuck.hanging.wait()
        w.expire()
        other = ScriptedExecutor()
        assert await w.b.ensure_session_with_executor("s", other)  # B takes the session over
        assert await w.a.renew_leases_now() == [canonical_runtime_id("s")]  # A learns it lost the lease
        with pytest.raises(OwnershipLost):
            await attaching
        assert stuck.start_cancelled and all(t.done() for t in stuck.start_tasks)
        await w.a.close()
        await w.b.close()
        assert _others() == set()

    run(body())
