"""A server whose answers stop arriving (the connection black-holed, its sockets left open): every
call of the store ends at its client-side deadline instead of waiting until TCP gives up, the
silent connection is never used again, and the runtime settles the write as any unknown outcome.

Each call runs under a guard much longer than the deadline (``GUARD_S``): without the deadline
the call would wait for hours, and the guard turns that into a failure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import Block, ScriptedExecutor, Succeed
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import WriteFailed, WriteOutcomeUnknown
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import Consumed

from tests.postgres.helpers import named, open_store, silence_while_sleeping
from tests.postgres.relay import SilencingProxy
from tests.postgres.test_outcomes import _drop_trigger, _trigger
from tests.runtime_session.helpers import make_prompt, run

T = TypeVar("T")
RT = "rt:session:silent"
GUARD_S = 60.0
"""How long a call may run before the test calls it hung (the store's deadline here is 2 s)."""


def _guarded(call: Callable[[], T]) -> T:
    """``call()`` in a thread; fails the test if it has not returned after ``GUARD_S``."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(GUARD_S)
    if thread.is_alive():
        pytest.fail(f"the store call still waits for the silent server after {GUARD_S:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _silent_store(pg_dsn: str, pg_schema: str) -> tuple[PostgresRuntimeStore, str, SilencingProxy]:
    name = f"silent-{pg_schema}"
    proxy = SilencingProxy(named(pg_dsn, name))
    return open_store(proxy.dsn, pg_schema, max_connections=2, timeout_s=1), name, proxy


def _run_closing(proxy: SilencingProxy, steps: Callable[[], Awaitable[None]]) -> None:
    """Run ``steps()``; if it fails, close ``proxy`` at once (a call still waiting sees its
    connection break, so the test ends), and close it in any case when done."""

    async def body() -> None:
        try:
            await steps()
        except BaseException:
            proxy.close()
            raise

    try:
        run(body())
    finally:
        proxy.close()


def test_a_commit_whose_answer_never_arrives_is_an_unknown_outcome(pg_dsn: str, pg_schema: str) -> None:
    store, name, proxy = _silent_store(pg_dsn, pg_schema)
    try:
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(0.5)")
        with silence_while_sleeping(pg_dsn, name, proxy) as silenced, pytest.raises(WriteOutcomeUnknown) as info:
            _guarded(lambda: store.persist_input_state(RT, InputRow("a", b"1")))
        assert silenced and "no answer from the server" in str(info.value)
        assert store.load_input_states(RT) == [InputRow("a", b"1")]  # the server had committed
        _drop_trigger(pg_dsn, pg_schema)
        store.persist_input_state(RT, InputRow("b", b"2"))  # on a connection that answers
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        assert store.pool.get_stats().get("returns_bad", 0) == 1  # closed, and discarded by the pool
        _guarded(store.close)
    finally:
        proxy.close()


def test_a_statement_whose_answer_never_arrives_writes_nothing(pg_dsn: str, pg_schema: str) -> None:
    store, name, proxy = _silent_store(pg_dsn, pg_schema)
    try:
        _trigger(pg_dsn, pg_schema, when="before", action="PERFORM pg_sleep(0.5)")
        with silence_while_sleeping(pg_dsn, name, proxy), pytest.raises(WriteFailed) as info:
            _guarded(lambda: store.persist_input_state(RT, InputRow("a", b"1")))
        assert not isinstance(info.value, WriteOutcomeUnknown)
        assert "before COMMIT was sent; nothing was written" in str(info.value)
        assert store.load_input_states(RT) == []
        _guarded(store.close)
    finally:
        proxy.close()


def test_an_accept_whose_commit_answer_never_arrives_settles_and_is_stored_once(pg_dsn: str, pg_schema: str) -> None:
    """The runtime reads the store back after the unknown outcome; the accept was stored (the
    server committed), and a retry with the same idempotency key finds it."""
    store, name, proxy = _silent_store(pg_dsn, pg_schema)
    first = make_prompt("one", idempotency_key="k")

    async def steps() -> None:
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="w1", lease_s=6))
        await machine.register_session("s")
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(0.5)")
        with silence_while_sleeping(pg_dsn, name, proxy) as silenced:
            outcome = await asyncio.wait_for(machine.accept_input("s", first), GUARD_S)
        assert silenced and isinstance(outcome, Accepted)  # read back: the server had committed
        _drop_trigger(pg_dsn, pg_schema)
        again = await asyncio.wait_for(machine.accept_input("s", make_prompt("again", idempotency_key="k")), GUARD_S)
        assert isinstance(again, Deduplicated) and again.existing_id == first.header.id
        await asyncio.wait_for(machine.close(), GUARD_S)

    _run_closing(proxy, steps)
    with open_store(pg_dsn, pg_schema) as check:
        keys = [
            decode_record(r.payload).input.header.idempotency_key
            for r in check.load_input_states(canonical_runtime_id("s"))
        ]
    assert keys == ["k"]  # stored once


def test_a_boundary_commit_whose_answer_never_arrives_does_not_hold_the_session(pg_dsn: str, pg_schema: str) -> None:
    """The run's end is an unknown outcome like any other: the session answers again, and the
    input ends consumed once."""
    store, name, proxy = _silent_store(pg_dsn, pg_schema)
    item = make_prompt("one")

    async def steps() -> None:
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="w1", lease_s=6))
        executor = ScriptedExecutor(default=Block())
        await machine.register_session_with_executor("s", executor)
        await machine.accept_input("s", item)
        await executor.wait_parked()
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(0.5)")
        with silence_while_sleeping(pg_dsn, name, proxy) as silenced:
            executor.release(Succeed(RunResult("done")))
            await machine.settle("s", timeout=GUARD_S)
        assert silenced
        _drop_trigger(pg_dsn, pg_schema)
        second = await asyncio.wait_for(machine.accept_input("s", make_prompt("two")), GUARD_S)
        assert isinstance(second, Accepted)
        view = await asyncio.wait_for(machine.session_view("s"), GUARD_S)
        assert view is not None
        await asyncio.wait_for(machine.close(), GUARD_S)

    _run_closing(proxy, steps)
    with open_store(pg_dsn, pg_schema) as check:
        first = [
            decode_record(r.payload)
            for r in check.load_input_states(canonical_runtime_id("s"))
            if decode_record(r.payload).input_id == item.header.id
        ]
    assert len(first) == 1 and first[0].terminal == Consumed()
