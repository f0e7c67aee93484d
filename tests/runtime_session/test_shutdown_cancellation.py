"""Cancelling ``unregister_session()`` or ``close()`` (``asyncio.wait_for`` at shutdown) never
leaves a session forgotten while its loop keeps running: the unregistration finishes in its own
task (loop stopped, executor told, lease released) and registering the session again waits for
it, so a second loop never runs beside the first and no input runs twice. The ``protection off``
test runs the unregistration as it was (in the caller's task) and shows the input running twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.session.completion import RuntimeTerminated
from meerkat_runtime.session.executor import RunControlCommand, StopRuntimeExecutor
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.runtime_session import stop_detached
from meerkat_runtime.session.testing import Block, ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import LogicalRuntimeId, canonical_runtime_id

from tests.runtime_session.helpers import make_prompt, persistent, run

RT = canonical_runtime_id("s")


class SlowAccepts:
    """A store whose row writes take ``delay`` seconds while it is set (in the worker thread that
    runs store calls), holding the session gate meanwhile; everything else goes to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.delay = 0.0
        self.writing = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def persist_input_state(self, runtime_id: str, row: InputRow, **kwargs: Any) -> None:
        if self.delay:
            self.writing.set()
            time.sleep(self.delay)
        self.inner.persist_input_state(runtime_id, row, **kwargs)


@pytest.fixture(params=["memory", "sqlite"])
def slow_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SlowAccepts]:
    inner: Any = (
        InMemoryRuntimeStore()
        if request.param == "memory"
        else SqliteRuntimeStore(tmp_path / "runtime.sqlite", synchronous="NORMAL")
    )
    yield SlowAccepts(inner)
    inner.close()


async def _cancel_during_a_slow_accept(m: MeerkatMachine, store: SlowAccepts, shutdown: Any) -> asyncio.Task[Any]:
    """Start an accept whose write holds the gate, then cancel ``shutdown()`` while it waits."""
    store.delay = 0.3
    accept = asyncio.create_task(m.accept_input("s", make_prompt("accepted while shutting down")))
    while not store.writing.is_set():
        await asyncio.sleep(0.001)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(shutdown(), 0.02)
    store.delay = 0.0
    return accept


def _released(store: Any) -> bool:
    lease = store.load_lease(RT)
    return lease is not None and lease.expires_at <= time.time()


@pytest.mark.parametrize("shutdown", ["unregister", "close"])
def test_cancelled_shutdown_still_stops_the_loop_and_a_new_registration_runs_each_input_once(
    shutdown: str, slow_store: SlowAccepts
) -> None:
    async def body() -> None:
        store = slow_store
        m, _ = persistent(store)
        first = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", first)
        _, waiter = await m.accept_input_with_completion("s", make_prompt("waiting"))
        call = (lambda: m.unregister_session("s")) if shutdown == "unregister" else m.close
        accept = await _cancel_during_a_slow_accept(m, store, call)
        assert (await accept).is_accepted
        assert not await m.contains_session("s")
        await call()  # joins the shutdown still in flight (it finished on its own)
        assert first.stopped and _released(store)
        assert waiter is not None and waiter.done()
        second = ScriptedExecutor()
        if shutdown == "close":  # a closed machine stays closed: the session moves to a new one
            m, _ = persistent(store)
        await m.register_session_with_executor("s", second)
        await m.settle("s")
        # the first loop ran nothing after the shutdown began: its parked run was cancelled (never
        # committed, so it runs again), the input accepted meanwhile runs only in the second loop
        assert len(first.applied) == 1 and len(second.applied) == 2
        assert second.applied[0][1] == first.applied[0][1]
        assert len(await m.list_active_inputs("s")) == 0
        await m.close()
        assert _released(store)

    run(body())


def test_cancelled_unregister_releases_the_lease_even_when_the_executor_is_slow_to_stop() -> None:
    class SlowToStop(ScriptedExecutor):
        async def control(self, command: RunControlCommand) -> None:
            await super().control(command)
            if isinstance(command, StopRuntimeExecutor):
                await asyncio.sleep(0.2)

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, _ = persistent(store)
        await m.register_session_with_executor("s", SlowToStop())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(m.unregister_session("s"), 0.02)
        assert not _released(store)  # still stopping the executor
        await m.register_session("s")  # waits for the unregistration, then claims anew
        assert store.load_lease(RT) is not None and store.load_lease(RT).token == 2  # type: ignore[union-attr]
        await m.close()
        assert _released(store)

    run(body())


async def _unregister_unshielded(self: MeerkatMachine, runtime_id: LogicalRuntimeId) -> None:
    """The unregistration as it was: in the caller's task, so cancelling the caller abandons it."""
    session = self._sessions.pop(runtime_id, None)
    if session is None:
        return
    session.unregistered = True
    async with session.gate:
        parts = session.detach()
        session.completions.resolve_all(RuntimeTerminated("runtime session unregistered"))
    await stop_detached(parts, "runtime session unregistered")
    await self._claims.release(session.claim)


def test_protection_off_a_cancelled_unregister_leaves_a_loop_running_and_an_input_runs_twice(
    monkeypatch: pytest.MonkeyPatch, slow_store: SlowAccepts
) -> None:
    monkeypatch.setattr(MeerkatMachine, "_unregister", _unregister_unshielded)

    async def body() -> None:
        store = slow_store
        m, _ = persistent(store)
        first = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", first)
        accept = await _cancel_during_a_slow_accept(m, store, lambda: m.unregister_session("s"))
        item_accepted = await accept
        assert item_accepted.is_accepted and not await m.contains_session("s")
        await first.wait_parked()  # forgotten, yet its loop runs the input
        second = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", second)
        await second.wait_parked()  # a second loop runs the same input
        assert first.applied[0][1] == second.applied[0][1]
        first.release()
        second.release()
        await m.halt()

    run(body())
