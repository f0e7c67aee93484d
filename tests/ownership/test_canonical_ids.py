"""One canonical id per session: ``foo`` and ``rt:session:foo`` can never be two sessions. A
session id that carries the runtime-id prefix is refused with ``ValidationFailed``; sessions are
keyed by their canonical runtime id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from meerkat_runtime.session.machine import MeerkatMachine, session_runtime_id
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import ValidationFailed

from tests.runtime_session.helpers import make_prompt, run

PREFIXED = "rt:session:foo"

CALLS: dict[str, Callable[[MeerkatMachine], Awaitable[Any]]] = {
    "register_session": lambda m: m.register_session(PREFIXED),
    "contains_session": lambda m: m.contains_session(PREFIXED),
    "accept_input": lambda m: m.accept_input(PREFIXED, make_prompt()),
    "runtime_state": lambda m: m.runtime_state(PREFIXED),
    "stop_runtime": lambda m: m.stop_runtime(PREFIXED),
    "unregister_session": lambda m: m.unregister_session(PREFIXED),
    "prepare_bindings": lambda m: m.prepare_bindings(PREFIXED),
    "executor_ready": lambda m: m.executor_ready(PREFIXED),
    "settle": lambda m: m.settle(PREFIXED),
}


def test_the_canonical_runtime_id_of_a_session() -> None:
    assert session_runtime_id("foo") == "rt:session:foo"
    with pytest.raises(ValidationFailed, match="pass the session id itself \\('foo'\\)"):
        session_runtime_id(PREFIXED)
    with pytest.raises(ValidationFailed, match="must not be empty"):
        session_runtime_id("")


@pytest.mark.parametrize("persistent", [True, False])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_refuses_the_prefixed_spelling(call: str, persistent: bool) -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m = MeerkatMachine.persistent(store) if persistent else MeerkatMachine.ephemeral()
        await m.register_session("foo")
        calls_before = store.call_counts()
        with pytest.raises(ValidationFailed, match="runtime-id prefix") as info:
            await CALLS[call](m)
        assert info.value.kind == "validation_failed"
        assert store.call_counts() == calls_before  # refused before the store is asked
        assert await m.contains_session("foo")
        await m.close()

    run(body())


def test_foo_and_its_runtime_id_are_never_two_sessions() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        m = MeerkatMachine.persistent(store)
        await m.register_session("foo")
        with pytest.raises(ValidationFailed):
            await m.register_session(PREFIXED)
        bindings = await m.prepare_bindings("foo")
        assert (bindings.session_id, bindings.runtime_id) == ("foo", "rt:session:foo")
        assert list(m._sessions) == ["rt:session:foo"]
        assert len(m.session_claim_handle().claims()) == 1
        await m.close()

    run(body())
