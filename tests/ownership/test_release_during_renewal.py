"""A session unregistered (or its machine closed) while a renewal of its lease is in flight:
the release must not be undone by that renewal. A release keeps the lease's owner and token, so
a renewal that reaches the store after it cannot tell it from an expired lease nobody took and
would make it live again for a whole lease; the release therefore waits for the renewal in
flight. Real SQLite file; the round's store call is held on an event."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.lease import Fence, RenewalOutcome
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import run


class HeldRenewals(SqliteRuntimeStore):
    """Each ``renew_leases`` call waits for ``proceed`` once it has started (``started``); a
    release reports that it reached the store (``releasing``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.started = threading.Event()
        self.proceed = threading.Event()
        self.releasing = threading.Event()

    def renew_leases(self, renewals: Sequence[tuple[Fence, str]], duration_s: float) -> list[RenewalOutcome]:
        self.started.set()
        self.proceed.wait(30)
        return super().renew_leases(renewals, duration_s)

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        self.releasing.set()
        super().release_lease(fence, runtime_id)


async def _wait(event: threading.Event, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return event.is_set()


@pytest.mark.parametrize("how", ["unregister", "close"])
def test_a_release_during_a_renewal_round_stays_released(tmp_path: Path, how: str) -> None:
    path = tmp_path / "s.db"
    store = HeldRenewals(path)
    rt = str(canonical_runtime_id("s0"))

    async def body() -> None:
        machine = MeerkatMachine.persistent(
            store, ownership=OwnershipConfig(owner_id="A", lease_s=30.0, renew_every_s=None), close_store=False
        )
        for k in range(3):
            await machine.register_session(f"s{k}")
        round_ = asyncio.create_task(machine.renew_leases_now())
        assert await _wait(store.started, 10)
        ending = asyncio.create_task(machine.unregister_session("s0") if how == "unregister" else machine.close())
        # Give the release every chance to reach the store first (it must not, while the
        # round holds the lease's renewal); then let the round's transaction go on.
        await _wait(store.releasing, 1.0)
        store.proceed.set()
        await round_
        await ending
        if how == "unregister":
            await machine.close()
        store.close()

    run(body())
    with SqliteRuntimeStore(path) as other:
        lease = other.load_lease(rt)
        assert lease is not None and lease.expires_at <= other.clock(), f"the released lease is live again: {lease}"
        assert other.claim_lease(rt, "B", 30.0).owner == "B"
