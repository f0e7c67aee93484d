"""A machine serves one event loop: a call on another loop (another thread's ``asyncio.run``) is
refused with ``WrongEventLoop`` (kind ``wrong_event_loop``) before anything is read, written or
published, while the machine's own loop goes on; a machine whose loop was closed serves the
next only if it held nothing of the closed loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from meerkat_runtime import InMemoryRuntimeStore, MeerkatMachine, ScriptedExecutor, WrongEventLoop
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.store.faults import FaultInjectingStore

from tests.runtime_session.helpers import make_prompt, run

CALLS: dict[str, Callable[[MeerkatMachine], Awaitable[Any]]] = {
    "accept_input": lambda m: m.accept_input("s", make_prompt("elsewhere")),
    "accept_input_with_completion": lambda m: m.accept_input_with_completion("s", make_prompt("elsewhere")),
    "register_session": lambda m: m.register_session("other"),
    "stop_runtime": lambda m: m.stop_runtime("s"),
    "input_states": lambda m: m.input_states("s"),
    "close": lambda m: m.close(),
}


def _on_another_loop(call: Callable[[], Awaitable[Any]]) -> BaseException | None:
    """Run ``call`` on a new event loop in another thread; what it raised (``None``: nothing)."""
    raised: list[BaseException | None] = [None]

    def body() -> None:
        async def go() -> None:
            await call()

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported to the test
            raised[0] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return raised[0]


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_call_on_another_event_loop_is_refused_before_anything_happens(call: str) -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m = MeerkatMachine.persistent(store)
        await m.register_session_with_executor("s", ScriptedExecutor())
        events: list[LifecycleEvent] = []
        m.events.subscribe(events.append)
        calls_before = store.call_counts()
        raised = await asyncio.to_thread(_on_another_loop, lambda: CALLS[call](m))
        assert isinstance(raised, WrongEventLoop), raised
        assert isinstance(raised, RuntimeError)
        assert raised.kind == "wrong_event_loop"
        assert f"MeerkatMachine.{call}() refused" in str(raised)
        assert store.call_counts() == calls_before  # the store was not asked
        assert events == []  # nothing was published
        # the machine's own loop goes on
        assert await m.input_states("s") == []
        await m.accept_input("s", make_prompt("here"))
        await m.settle("s")
        assert len(await m.input_states("s")) == 1
        await m.close()

    run(body())


def test_a_machine_whose_loop_was_closed_holding_nothing_serves_the_next_loop() -> None:
    m = MeerkatMachine.ephemeral()

    async def first() -> None:
        await m.register_session("s")
        await m.unregister_session("s")  # nothing of this loop is left in the machine

    async def second() -> int:
        await m.register_session_with_executor("s", ScriptedExecutor())
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        assert handle is not None
        await asyncio.wait_for(handle.wait(), 30)  # a run loop of this loop ran it
        count = len(await m.input_states("s"))
        await m.close()
        return count

    asyncio.run(first())  # closes its loop when it returns
    assert asyncio.run(second()) == 1


def test_a_machine_whose_loop_closed_while_it_held_sessions_refuses_the_next_loop() -> None:
    """Its sessions' run loops and lease renewal ended with that loop: an input accepted now
    would never run. Every call is refused, saying so, and nothing is written."""
    store = InMemoryRuntimeStore()
    m = MeerkatMachine.persistent(store, ownership=None)

    async def first() -> None:
        await m.register_session_with_executor("s", ScriptedExecutor())

    async def second() -> None:
        with pytest.raises(WrongEventLoop, match=r"has closed .* while it held sessions") as info:
            await m.accept_input("s", make_prompt())
        assert info.value.loop_closed
        with pytest.raises(WrongEventLoop):
            await m.input_states("s")

    asyncio.run(first())
    asyncio.run(second())
    assert store.load_input_states("rt:session:s") == []
