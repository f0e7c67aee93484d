"""``async with MeerkatMachine.persistent(...)`` closes what the machine opened: its sessions
(leases released), its renewal task and a store it opened from a path; a store passed in stays
open unless ``close_store=True``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from meerkat_runtime import (
    Accepted,
    InMemoryRuntimeStore,
    InvalidSetting,
    MeerkatMachine,
    ReadFailed,
    ScriptedExecutor,
    SqliteRuntimeStore,
    prompt,
)
from meerkat_runtime.vocab.ids import canonical_runtime_id


def test_a_path_opens_a_store_the_block_closes(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"

    async def main() -> MeerkatMachine:
        async with MeerkatMachine.persistent(path) as machine:
            await machine.register_session_with_executor("s", ScriptedExecutor())
            outcome, handle = await machine.accept_input_with_completion("s", prompt("hello"))
            assert isinstance(outcome, Accepted) and handle is not None
            await handle.wait()
            assert isinstance(machine.store, SqliteRuntimeStore) and not machine.store.closed
        return machine

    machine = asyncio.run(main())
    store = machine.store
    assert isinstance(store, SqliteRuntimeStore) and store.closed
    with pytest.raises(ReadFailed, match="closed"):
        store.load_input_states(canonical_runtime_id("s"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.sqlite"]  # every connection closed
    with SqliteRuntimeStore(path) as reopened:
        lease = reopened.load_lease(canonical_runtime_id("s"))
        assert lease is not None and lease.expires_at <= time.time()  # released on close
        assert len(reopened.load_input_states(canonical_runtime_id("s"))) == 1


def test_the_block_closes_everything_when_it_raises(tmp_path: Path) -> None:
    opened: list[MeerkatMachine] = []

    async def main() -> None:
        async with MeerkatMachine.persistent(str(tmp_path / "s.sqlite")) as machine:
            opened.append(machine)
            await machine.register_session("s")
            raise RuntimeError("the application failed")

    with pytest.raises(RuntimeError, match="the application failed"):
        asyncio.run(main())
    store = opened[0].store
    assert isinstance(store, SqliteRuntimeStore) and store.closed


def test_a_store_passed_in_stays_open_unless_handed_over(tmp_path: Path) -> None:
    async def use(store: SqliteRuntimeStore, close_store: bool | None) -> None:
        async with MeerkatMachine.persistent(store, close_store=close_store) as machine:
            await machine.register_session("s")
            await machine.accept_input("s", prompt("x"))

    store = SqliteRuntimeStore(tmp_path / "mine.sqlite")
    asyncio.run(use(store, None))
    assert not store.closed and len(store.load_input_states(canonical_runtime_id("s"))) == 1
    asyncio.run(use(store, True))
    assert store.closed


def test_an_owned_in_memory_store_and_an_ephemeral_machine() -> None:
    store = InMemoryRuntimeStore()

    async def main() -> None:
        async with MeerkatMachine.persistent(store, close_store=True, offload_store_calls=False) as machine:
            await machine.register_session("s")
        async with MeerkatMachine.ephemeral() as ephemeral:
            await ephemeral.register_session("e")
            assert await ephemeral.contains_session("e")
        assert not await ephemeral.contains_session("e")

    asyncio.run(main())
    assert store.closed


def test_a_bad_path_is_refused_and_opens_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match="is a folder"):
        MeerkatMachine.persistent(tmp_path)
    assert list(tmp_path.iterdir()) == []
