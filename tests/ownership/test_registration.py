"""Registration claims the session's lease before it reads anything; one claim per runtime id;
a held lease is refused (or waited for); unregister and close release it; a crash does not."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import LeaseHeld, RecoveryCorruption, WriteFailed

from tests.ownership.helpers import LEASE_S, RT, config, two_workers
from tests.runtime_session.helpers import run


def test_the_lease_is_claimed_before_anything_is_read() -> None:
    async def body() -> None:
        w = two_workers()
        order: list[str] = []
        inner = w.store_a.inner
        for name in (
            "claim_lease",
            "load_machine_lifecycle",
            "load_active_input_states",
            "load_finished_inputs",
            "load_ops_lifecycle",
        ):
            original = getattr(inner, name)

            def spy(*args: object, _name: str = name, _original: object = original) -> object:
                order.append(_name)
                return _original(*args)  # type: ignore[operator]

            setattr(inner, name, spy)
        await w.a.register_session("s")
        assert order[0] == "claim_lease" and order.count("claim_lease") == 1
        reads = {"load_machine_lifecycle", "load_active_input_states", "load_finished_inputs", "load_ops_lifecycle"}
        assert reads <= set(order[1:])

    run(body())


def test_a_session_owned_elsewhere_is_refused_naming_the_owner_and_expiry_and_nothing_is_read() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        lease = w.reader().load_lease(RT)
        assert lease is not None
        with pytest.raises(LeaseHeld) as info:
            await w.b.register_session("s")
        err = info.value
        assert (err.kind, err.owner, err.expires_at, err.runtime_id) == ("lease_held", "A", lease.expires_at, RT)
        assert "'A'" in str(err) and f"{lease.expires_at:.3f}" in str(err)
        assert not await w.b.contains_session("s")
        assert w.store_b.calls("load_active_input_states") == 0 and w.store_b.calls("load_machine_lifecycle") == 0
        assert w.store_b.calls("load_finished_inputs") == 0
        assert w.b.session_claim_handle().get(RT) is None

    run(body())


def test_concurrent_registrations_share_one_claim_and_one_session() -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m = MeerkatMachine.persistent(store)
        await asyncio.gather(*(m.register_session("s") for _ in range(5)))
        await m.register_session("s")
        assert store.calls("claim_lease") == 1
        assert len(m.session_claim_handle().claims()) == 1
        bindings = {id((await m.prepare_bindings("s")).ops_registry) for _ in range(3)}
        assert len(bindings) == 1
        await m.close()

    run(body())


def test_waiting_for_a_held_lease_gives_up_after_the_timeout() -> None:
    async def body() -> None:
        w = two_workers(wait_for_lease=0.05, wait_poll_s=0.01, clock=time.monotonic)  # waiting runs on real time
        await w.a.register_session("s")
        with pytest.raises(LeaseHeld):
            await w.b.register_session("s")
        assert w.store_b.calls("claim_lease") >= 2  # it retried while waiting

    run(body())


def test_waiting_for_a_held_lease_registers_once_the_holder_releases_it() -> None:
    async def body() -> None:
        w = two_workers(wait_for_lease=True, wait_poll_s=0.005)
        await w.a.register_session("s")
        waiting = asyncio.create_task(w.b.register_session("s"))
        await asyncio.sleep(0.03)
        assert not waiting.done()
        await w.a.unregister_session("s")
        await asyncio.wait_for(waiting, 5)
        lease = w.reader().load_lease(RT)
        assert lease is not None and (lease.owner, lease.token) == ("B", 2)

    run(body())


def test_unregister_and_close_release_the_lease_for_the_next_worker_at_once() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        await w.a.register_session("t")
        await w.a.unregister_session("s")
        released = w.reader().load_lease(RT)
        assert released is not None and released.expired(w.clock()) and released.token == 1
        await w.b.register_session("s")
        await w.a.close()
        await w.b.register_session("t")
        lease = w.reader().load_lease("rt:session:t")
        assert lease is not None and (lease.owner, lease.token) == ("B", 2)
        assert w.a.session_claim_handle().claims() == []

    run(body())


def test_a_crash_keeps_the_lease_until_it_expires_and_the_same_owner_takes_it_back_at_once() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        await w.a.halt()
        with pytest.raises(LeaseHeld):
            await w.b.register_session("s")
        restarted = MeerkatMachine.persistent(
            InMemoryRuntimeStore(w.storage, clock=w.clock), ownership=config("A", w.clock)
        )
        await restarted.register_session("s")  # the same owner id: no wait
        lease = w.reader().load_lease(RT)
        assert lease is not None and (lease.owner, lease.token) == ("A", 2)
        await restarted.halt()
        w.expire()
        await w.b.register_session("s")
        lease = w.reader().load_lease(RT)
        assert lease is not None and (lease.owner, lease.token) == ("B", 3)

    run(body())


def test_a_failed_registration_releases_the_lease() -> None:
    async def body() -> None:
        w = two_workers()
        w.store_a.fail_next("load_active_input_states")
        with pytest.raises(Exception, match="injected fault"):
            await w.a.register_session("s")
        lease = w.reader().load_lease(RT)
        assert lease is not None and lease.expired(w.clock())
        assert w.a.session_claim_handle().claims() == []
        await w.b.register_session("s")

    run(body())


def test_a_failing_claim_is_a_store_error_and_leaves_nothing() -> None:
    async def body() -> None:
        w = two_workers()
        w.store_a.fail_next("claim_lease")
        with pytest.raises(WriteFailed, match="injected fault"):
            await w.a.register_session("s")
        assert w.reader().load_lease(RT) is None
        assert not await w.a.contains_session("s")
        await w.a.register_session("s")

    run(body())


def test_recovery_corruption_still_fails_closed_and_releases_the_lease() -> None:
    async def body() -> None:
        from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle
        from meerkat_runtime.store.records import InputRow
        from meerkat_runtime.vocab.runtime import RuntimeState

        w = two_workers()
        store = w.reader()
        store.commit_machine_lifecycle(RT, encode_lifecycle(LifecycleRecord(RuntimeState.IDLE, None)), [])
        store.persist_input_state(RT, InputRow("bad", b"not json"))
        with pytest.raises(RecoveryCorruption, match="input row 'bad'"):
            await w.a.register_session("s")
        lease = w.reader().load_lease(RT)
        assert lease is not None and lease.expired(w.clock())

    run(body())


def test_lease_length_comes_from_the_config() -> None:
    async def body() -> None:
        w = two_workers()
        start = w.clock()
        await w.a.register_session("s")
        lease = w.reader().load_lease(RT)
        assert lease is not None and math.isclose(lease.expires_at, start + LEASE_S)

    run(body())
