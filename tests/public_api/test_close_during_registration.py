"""``close()`` while a registration is in flight: the registration either finished before the
close began (and the close unregisters it) or raises ``MachineClosed``; either way, once
``close()`` returns nothing stays registered and the session's lease is released, so another
worker claims it at once. A registration waiting for another worker's lease gives up."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from meerkat_runtime import InMemoryRuntimeStore, MachineClosed, MeerkatMachine, SqliteRuntimeStore
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.protocol import RuntimeStore

from tests.runtime_session.helpers import run


def _store(kind: str, tmp_path: Path, turns: int) -> RuntimeStore:
    if kind == "memory":
        return InMemoryRuntimeStore()
    return SqliteRuntimeStore(tmp_path / f"race{turns}.sqlite")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("turns", range(8))
def test_close_leaves_no_registration_and_no_lease_behind(kind: str, turns: int, tmp_path: Path) -> None:
    async def body() -> None:
        store = _store(kind, tmp_path, turns)
        machine = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="closing"))
        registering = asyncio.ensure_future(machine.register_session("s1"))
        for _ in range(turns):  # let the registration get as far as its claim or its recovery
            await asyncio.sleep(0)
        await machine.close()
        with contextlib.suppress(MachineClosed):  # closed before it finished: it says so
            await registering
        assert not await machine.contains_session("s1")
        assert machine._sessions == {}
        other = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="next"))
        await other.register_session("s1")  # LeaseHeld if the closed machine still held the lease
        assert await other.contains_session("s1")
        await other.close()
        store.close()

    run(body())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_registration_waiting_for_a_lease_gives_up_when_the_machine_closes(kind: str, tmp_path: Path) -> None:
    async def body() -> None:
        store = _store(kind, tmp_path, 0)
        holder = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="holder"))
        await holder.register_session("s1")
        waiter = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="waiter", wait_for_lease=True))
        waiting = asyncio.ensure_future(waiter.register_session("s1"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # waiting for the holder's lease, without a limit
        await waiter.close()
        await asyncio.wait({waiting}, timeout=5)  # a guard against a hang only
        assert waiting.done()
        with pytest.raises(MachineClosed, match="cannot register session 's1'"):
            waiting.result()
        assert await holder.contains_session("s1")  # the holder keeps its session
        await holder.close()
        store.close()

    run(body())
