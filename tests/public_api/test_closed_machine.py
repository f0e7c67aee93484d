"""A closed machine says so: every call that registers or uses a session raises
``MachineClosed`` (kind ``machine_closed``) instead of a store error or ``SessionNotFound``; the
store is not asked; ``close()`` stays idempotent and ``unregister_session`` a no-op."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime import InMemoryRuntimeStore, MachineClosed, MeerkatMachine, ScriptedExecutor
from meerkat_runtime.store.faults import FaultInjectingStore

from tests.runtime_session.helpers import make_prompt, run

CALLS: dict[str, Callable[[MeerkatMachine], Awaitable[Any]]] = {
    "register_session": lambda m: m.register_session("s"),
    "register_session_with_executor": lambda m: m.register_session_with_executor("s", ScriptedExecutor()),
    "register a new session": lambda m: m.register_session("new"),
    "accept_input": lambda m: m.accept_input("s", make_prompt()),
    "accept_input_with_completion": lambda m: m.accept_input_with_completion("s", make_prompt()),
    "runtime_state": lambda m: m.runtime_state("s"),
    "stop_runtime": lambda m: m.stop_runtime("s"),
    "prepare_bindings": lambda m: m.prepare_bindings("s"),
    "session_view": lambda m: m.session_view("s"),
}


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "ephemeral"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_on_a_closed_machine_says_it_is_closed(call: str, persistent: bool) -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        machine = MeerkatMachine.persistent(store, close_store=True) if persistent else MeerkatMachine.ephemeral()
        await machine.register_session_with_executor("s", ScriptedExecutor())
        await machine.close()
        calls_before = store.call_counts()
        with pytest.raises(MachineClosed, match="the machine is closed: cannot") as info:
            await CALLS[call](machine)
        assert info.value.kind == "machine_closed" and "\n" not in str(info.value)
        assert store.call_counts() == calls_before  # the (closed) store was not asked
        await machine.close()  # still idempotent
        await machine.unregister_session("s")  # nothing to unregister: a no-op
        assert not await machine.contains_session("s")

    run(body())


def test_async_with_on_a_closed_machine_says_it_is_closed(tmp_path: Path) -> None:
    async def body() -> None:
        async with MeerkatMachine.persistent(tmp_path / "store.sqlite") as machine:
            await machine.register_session("s")
        with pytest.raises(MachineClosed, match="cannot enter 'async with' again"):
            async with machine:
                pass
        with pytest.raises(MachineClosed, match="cannot register session 's'"):
            await machine.register_session("s")

    run(body())


def test_calls_in_flight_when_close_runs_say_the_machine_is_closed() -> None:
    """Accepts that passed the door before ``close()`` and wait for the session's gate (held by
    the first one's durable write) while ``close()`` unregisters the session end with
    ``MachineClosed``, never ``SessionNotFound``."""

    async def body() -> None:
        machine = MeerkatMachine.persistent(InMemoryRuntimeStore())
        await machine.register_session("s")
        accepts = [asyncio.create_task(machine.accept_input("s", make_prompt(f"m{i}"))) for i in range(20)]
        await asyncio.sleep(0)  # every accept has started and waits for the gate
        closing = asyncio.create_task(machine.close())
        results = await asyncio.gather(*accepts, return_exceptions=True)
        await closing
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors, "close() ran before any accept was refused: the test shows nothing"
        assert all(isinstance(e, MachineClosed) for e in errors), sorted({type(e).__name__ for e in errors})
        assert all("cannot use session 's'" in str(e) for e in errors)

    run(body())
