"""Lease renewal: in the background every ``renew_every_s``, before a run when a renewal is
overdue, and tolerant of store failures (retried) but not of a lost lease."""

from __future__ import annotations

import asyncio
import time

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.vocab.errors import LeaseHeld

from tests.ownership.helpers import RT, two_workers
from tests.runtime_session.helpers import make_prompt, run


def test_background_renewal_keeps_the_lease_past_its_length() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        store = FaultInjectingStore(InMemoryRuntimeStore(storage))
        short = OwnershipConfig(owner_id="A", lease_s=0.3, renew_every_s=0.05)
        m = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=short)
        await m.register_session("s")
        first = store.load_lease(RT)
        await asyncio.sleep(0.6)  # twice the lease length
        other = MeerkatMachine.persistent(InMemoryRuntimeStore(storage), ownership=OwnershipConfig(owner_id="B"))
        with pytest.raises(LeaseHeld):
            await other.register_session("s")
        renewed = store.load_lease(RT)
        assert first is not None and renewed is not None
        assert renewed.token == first.token and renewed.expires_at > first.expires_at + 0.3
        assert store.calls("renew_lease") >= 3
        await m.close()
        calls = store.calls("renew_lease")
        await asyncio.sleep(0.15)
        assert store.calls("renew_lease") == calls  # close stopped the renewal

    run(body())


def test_a_failing_renewal_is_kept_and_retried_without_losing_the_session() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        w.store_a.fail_next("renew_lease")
        assert await w.a.renew_leases_now() == []
        claim = w.a.session_claim_handle().get(RT)
        assert claim is not None and claim.owned and claim.renew_error is not None
        assert "injected fault" in str(claim.renew_error)
        await w.a.renew_leases_now()
        assert claim.renew_error is None and claim.owned
        await w.a.accept_input("s", make_prompt("still mine"))

    run(body())


def test_an_expired_lease_nobody_took_is_renewed_and_writes_go_on() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        w.expire()
        await w.a.accept_input("s", make_prompt("late but still the owner"))  # token unchanged: allowed
        assert await w.a.renew_leases_now() == []
        lease = w.reader().load_lease(RT)
        assert lease is not None and not lease.expired(w.clock()) and lease.token == 1

    run(body())


@pytest.mark.parametrize("automatic_renewal", [True, False])
def test_an_overdue_renewal_runs_before_a_run_so_a_stalled_owner_never_starts_one(automatic_renewal: bool) -> None:
    async def body() -> None:
        # Automatic renewal every 5 s of the manual clock (the background task's real-time sleeps
        # outlast the test); none at all when switched off.
        w = two_workers(renew_every_s=5.0) if automatic_renewal else two_workers()
        await w.a.register_session("s")
        item = make_prompt("queued before the stall")
        await w.a.accept_input("s", item)
        w.expire()  # the owner stalls past its lease
        await w.b.register_session("s")
        ex = ScriptedExecutor()
        await w.a.ensure_session_with_executor("s", ex)
        await asyncio.sleep(0.05)
        if automatic_renewal:
            assert ex.applied == []  # renewed first, found the lease lost, never ran it
            assert not await w.a.executor_ready("s")
        else:
            # Protection off (no automatic renewal): the stalled owner runs the input (its commit is
            # then refused by the fence, so nothing it did is durable).
            assert [ids for _, ids in ex.applied] == [(item.header.id,)]
        rows = w.reader().load_input_states(RT)
        assert len(rows) == 1  # nothing committed by the stalled owner
        await w.a.halt()
        await w.b.halt()

    run(body())


def test_waiting_registration_takes_over_soon_after_the_holder_dies() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        a = MeerkatMachine.persistent(
            InMemoryRuntimeStore(storage), ownership=OwnershipConfig(owner_id="A", lease_s=0.2, renew_every_s=0.05)
        )
        b = MeerkatMachine.persistent(
            InMemoryRuntimeStore(storage),
            ownership=OwnershipConfig(owner_id="B", lease_s=0.2, renew_every_s=0.05, wait_for_lease=5.0),
        )
        await a.register_session("s")
        waiting = asyncio.create_task(b.register_session("s"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # a keeps renewing
        died = time.monotonic()
        await a.halt()  # no release: b must wait for the expiry
        await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - died < 5
        await b.close()

    run(body())
