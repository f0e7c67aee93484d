"""An executor whose ``control(StopRuntimeExecutor)`` never returns holds up neither the shutdown
nor the other sessions: the stop is waited for at most ``EXECUTOR_STOP_LIMIT_S`` (then the call
is cancelled and abandoned), ``close()`` unregisters the sessions side by side, and when it ends
every lease is released and the renewal stopped — also after the caller of ``close()`` was
cancelled (``asyncio.wait_for`` at shutdown). The limit is lowered here so the tests do not wait
out the default; no test asserts how long anything took (``run`` only guards against a hang)."""

from __future__ import annotations

import asyncio
import time

import pytest
from meerkat_runtime.session import runtime_session
from meerkat_runtime.session.completion import CompletionHandle, RuntimeTerminated
from meerkat_runtime.session.executor import RunControlCommand, StopRuntimeExecutor
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import Block, ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import make_prompt, persistent, run


class NeverStops(ScriptedExecutor):
    """Runs block; ``control(StopRuntimeExecutor)`` does not return until ``let_go`` is set."""

    def __init__(self) -> None:
        super().__init__(Block())
        self.asked_to_stop = asyncio.Event()
        self.let_go = asyncio.Event()
        self.stop_cancelled = False

    async def control(self, command: RunControlCommand) -> None:
        await super().control(command)
        if isinstance(command, StopRuntimeExecutor):
            self.asked_to_stop.set()
            try:
                await self.let_go.wait()
            except asyncio.CancelledError:
                self.stop_cancelled = True
                raise


def _released(store: InMemoryRuntimeStore, session_id: str) -> bool:
    lease = store.load_lease(canonical_runtime_id(session_id))
    return lease is not None and lease.expires_at <= time.time()


async def _two_sessions(
    store: InMemoryRuntimeStore,
) -> tuple[MeerkatMachine, NeverStops, ScriptedExecutor, list[CompletionHandle | None]]:
    """Session ``stuck`` (registered first) with an executor that never stops and ``other`` with
    a well-behaved one, each with a run in flight; returns both waiters."""
    m, _ = persistent(store)
    stuck, other = NeverStops(), ScriptedExecutor(Block())
    await m.register_session_with_executor("stuck", stuck)
    await m.register_session_with_executor("other", other)
    waiters: list[CompletionHandle | None] = []
    for sid, executor in (("stuck", stuck), ("other", other)):
        _, handle = await m.accept_input_with_completion(sid, make_prompt())
        waiters.append(handle)
        await executor.wait_parked()
    return m, stuck, other, waiters


def test_one_executor_that_never_stops_does_not_hold_up_the_other_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_session, "EXECUTOR_STOP_LIMIT_S", 3600.0)  # the stuck stop is not cut short

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, other, (_, other_waiter) = await _two_sessions(store)
        closing = asyncio.create_task(m.close())
        await stuck.asked_to_stop.wait()
        assert other_waiter is not None
        assert isinstance(await other_waiter.wait(), RuntimeTerminated)  # not behind the stuck stop
        while not _released(store, "other"):
            await asyncio.sleep(0.005)
        assert other.stopped and not closing.done() and not _released(store, "stuck")
        stuck.let_go.set()
        await closing
        assert _released(store, "stuck") and not m.session_claim_handle().renewing

    run(body())


def test_close_abandons_an_executor_that_never_stops_and_releases_every_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_session, "EXECUTOR_STOP_LIMIT_S", 0.05)

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, other, waiters = await _two_sessions(store)
        assert m.session_claim_handle().renewing
        await m.close()  # returns although the stuck stop never does
        assert stuck.stop_cancelled and other.stopped  # the abandoned stop call was cancelled
        assert all(w is not None and w.done() for w in waiters)
        assert _released(store, "stuck") and _released(store, "other")
        assert not m.session_claim_handle().renewing
        another_worker, _ = persistent(store, ownership=OwnershipConfig(owner_id="worker-2", wait_for_lease=False))
        await another_worker.register_session("stuck")  # no LeaseHeld: the lease was released
        await another_worker.close()

    run(body())


def test_a_cancelled_close_still_ends_with_leases_released_and_renewal_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_session, "EXECUTOR_STOP_LIMIT_S", 0.05)

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, _, _ = await _two_sessions(store)
        closing = asyncio.create_task(m.close())
        await stuck.asked_to_stop.wait()
        closing.cancel()  # what asyncio.wait_for(m.close(), t) does when t runs out
        with pytest.raises(asyncio.CancelledError):
            await closing
        await m.close()  # joins the shutdown, which went on without its caller
        assert stuck.stop_cancelled
        assert _released(store, "stuck") and _released(store, "other")
        assert not m.session_claim_handle().renewing

    run(body())


def test_unregister_abandons_an_executor_that_never_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_session, "EXECUTOR_STOP_LIMIT_S", 0.05)

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, stuck, _, (stuck_waiter, _) = await _two_sessions(store)
        await m.unregister_session("stuck")  # returns although the stop never does
        assert stuck.stop_cancelled and stuck_waiter is not None and stuck_waiter.done()
        assert _released(store, "stuck") and not _released(store, "other")
        await m.register_session("stuck")  # claimed again at once
        await m.close()
        assert _released(store, "stuck") and _released(store, "other")

    run(body())
