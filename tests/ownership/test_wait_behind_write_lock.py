"""A registration waiting for a lease (``wait_for_lease=True``) on SQLite while another process
holds the file's write lock (a worker frozen inside a write transaction): its claims time out
waiting for the lock (``LockWaitTimedOut``) and it keeps waiting, then takes the session once the
lock is gone, instead of failing with a store error."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import LockWaitTimedOut
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.stores.write_lock import WriteLockHolder


def test_a_standby_waits_through_a_held_write_lock_and_then_takes_the_session(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    SqliteRuntimeStore(path).close()

    async def body() -> None:
        store = SqliteRuntimeStore(path, busy_timeout_ms=20)
        refusals: list[Exception] = []
        claim = store.claim_lease

        def recorded_claim(runtime_id: str, owner: str, duration_s: float) -> Lease:
            try:
                return claim(runtime_id, owner, duration_s)
            except Exception as exc:
                refusals.append(exc)
                raise

        store.claim_lease = recorded_claim  # type: ignore[method-assign]
        config = OwnershipConfig(owner_id="standby", lease_s=5.0, wait_for_lease=True, wait_poll_s=0.01)
        machine = MeerkatMachine.persistent(store, ownership=config, close_store=True)
        try:
            with WriteLockHolder(path) as lock:
                registering = asyncio.create_task(machine.register_session("s"))
                for _ in range(6000):  # until two claims were refused for the lock (or the task ended)
                    if len(refusals) >= 2 or registering.done():
                        break
                    await asyncio.sleep(0.005)
                assert not registering.done(), registering.exception() if registering.done() else None
                assert refusals and all(isinstance(exc, LockWaitTimedOut) for exc in refusals)
                lock.release()
                await registering
            lease = store.load_lease(canonical_runtime_id("s"))
            assert lease is not None and lease.owner == "standby"
            assert await machine.contains_session("s")
        finally:
            await machine.close()

    asyncio.run(body())
