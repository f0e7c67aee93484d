"""Every durable write of a session carries its lease's fence; after another worker has taken
the lease over, the old owner's writes are refused (nothing written), the session is detached
with ``OwnershipLost`` and its loop stops before any further write."""

from __future__ import annotations

import asyncio

import pytest
from meerkat_runtime.session.completion import LostOwnership
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import Block, ScriptedExecutor, Succeed
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import MemoryStorage
from meerkat_runtime.vocab.errors import DurableWriteFailed, OwnershipLost
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.ownership.helpers import RT, FenceRecordingStore, config, two_workers
from tests.runtime_ops.helpers import bg_spec, result, running
from tests.runtime_session.helpers import make_prompt, run

S = InputLifecycleState


def test_every_durable_write_of_a_session_carries_its_fence() -> None:
    async def body() -> None:
        clock = ManualClock()
        store = FenceRecordingStore(clock=clock)
        m = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=config("A", clock))
        ex = ScriptedExecutor()
        await m.register_session_with_executor("s", ex)
        await m.accept_input("s", make_prompt("one"))  # persist_input_state
        await m.settle("s")  # atomic_apply
        await m.accept_input("s", make_prompt("two", supersession_key="k"))
        ex.push(Block())
        await m.accept_input("s", make_prompt("three"))
        await ex.wait_parked()
        await m.accept_input("s", make_prompt("four", supersession_key="k"))  # supersedes: a lifecycle commit
        ex.release(Succeed())
        await m.settle("s")
        registry = await m.ops_lifecycle_registry("s")
        op = running(registry, bg_spec("x", owner="s"))
        registry.complete_operation(op, result(op))  # persist_ops_lifecycle (first write compacts)
        op2 = running(registry, bg_spec("y", owner="s"))
        registry.complete_operation(op2, result(op2))  # append_ops_record
        await m.retire_runtime("s")  # commit_machine_lifecycle
        lease = store.load_lease(RT)
        assert lease is not None
        methods = {method for method, _ in store.writes}
        assert methods == {
            "persist_input_state",
            "atomic_apply",
            "commit_machine_lifecycle",
            "persist_ops_lifecycle",
            "append_ops_record",
        }
        assert {fence for _, fence in store.writes} == {Fence("A", lease.token)}
        await m.close()

    run(body())


def test_a_stale_owner_s_accept_is_refused_and_detaches_its_session() -> None:
    async def body() -> None:
        w = two_workers()
        ex = ScriptedExecutor()
        await w.a.register_session_with_executor("s", ex)
        _, handle = await w.a.accept_input_with_completion("s", make_prompt("before"))
        await w.a.settle("s")
        w.expire()
        await w.b.register_session("s")  # takes the lease over: token 2
        stored_before = w.reader().load_input_states(RT)
        with pytest.raises(OwnershipLost) as info:
            await w.a.accept_input("s", make_prompt("after"))
        assert info.value.kind == "ownership_lost" and "stale" in str(info.value)
        assert w.reader().load_input_states(RT) == stored_before  # nothing written
        await asyncio.sleep(0)
        await w.a.renew_leases_now()  # lets the detach finish
        assert ex.stopped
        assert not await w.a.contains_session("s") and not await w.a.executor_ready("s")
        for call in (w.a.runtime_state("s"), w.a.accept_input("s", make_prompt("again")), w.a.stop_runtime("s")):
            with pytest.raises(OwnershipLost):
                await call
        assert isinstance(await w.a.last_error("s"), OwnershipLost)
        assert handle is not None and handle.done()

    run(body())


def test_waiters_of_a_lost_session_resolve_with_lost_ownership_and_its_run_never_commits() -> None:
    async def body() -> None:
        w = two_workers()
        ex = ScriptedExecutor(Block())
        await w.a.register_session_with_executor("s", ex)
        item = make_prompt("in flight")
        _, handle = await w.a.accept_input_with_completion("s", item)
        await ex.wait_parked()
        w.expire()
        await w.b.register_session("s")
        ex.release(Succeed())  # the boundary commit is refused
        assert handle is not None
        outcome = await asyncio.wait_for(handle.wait(), 5)
        assert isinstance(outcome, LostOwnership) and outcome.kind == "ownership_lost"
        rows = {r.input_id: decode_record(r.payload) for r in w.reader().load_input_states(RT)}
        assert rows[item.header.id].phase is S.QUEUED  # no receipt, no Consumed: the new owner runs it
        assert isinstance(await w.a.last_error("s"), OwnershipLost)
        ex_b = ScriptedExecutor()
        await w.b.ensure_session_with_executor("s", ex_b)
        await w.b.settle("s")
        assert [ids for _, ids in ex_b.applied] == [(item.header.id,)]
        view = await w.b.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.CONSUMED

    run(body())


def test_renewal_finds_a_lost_lease_and_detaches_without_writing() -> None:
    async def body() -> None:
        w = two_workers()
        ex = ScriptedExecutor()
        await w.a.register_session_with_executor("s", ex)
        _, handle = await w.a.accept_input_with_completion("s", make_prompt(text="queued"))
        await w.a.settle("s")
        assert handle is not None and handle.done()
        ex.push(Block())
        _, pending = await w.a.accept_input_with_completion("s", make_prompt(text="in flight"))
        await ex.wait_parked()
        assert await w.a.renew_leases_now() == []  # still ours: renewed
        w.expire()
        await w.b.register_session("s")
        writes_before = sum(w.store_a.calls(m) for m in ("persist_input_state", "atomic_apply"))
        assert await w.a.renew_leases_now() == [RT]
        assert ex.stopped and not await w.a.executor_ready("s")
        assert pending is not None and isinstance(pending.outcome(), LostOwnership)
        assert sum(w.store_a.calls(m) for m in ("persist_input_state", "atomic_apply")) == writes_before
        claim = w.a.session_claim_handle().get(RT)
        assert claim is not None and claim.lost is not None and not claim.owned

    run(body())


def test_a_stale_ops_terminal_write_is_refused_and_changes_nothing() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        registry = await w.a.ops_lifecycle_registry("s")
        done = running(registry, bg_spec("done", owner="s"))
        registry.complete_operation(done, result(done))
        op = running(registry, bg_spec("late", owner="s"))
        w.expire()
        await w.b.register_session("s")
        before = registry.view()
        with pytest.raises(OwnershipLost):
            registry.complete_operation(op, result(op))
        assert registry.view() == before  # no sequence number issued, nothing applied
        snapshot = registry.snapshot(op)
        assert snapshot is not None and not snapshot.status.is_terminal
        b_registry = await w.b.ops_lifecycle_registry("s")
        assert b_registry.view().next_completion_seq == before.next_completion_seq  # seqs never reused
        await asyncio.sleep(0)
        await w.a.renew_leases_now()
        with pytest.raises(OwnershipLost):
            await w.a.ops_lifecycle_registry("s")
        with pytest.raises(OwnershipLost):  # the sink refuses before the store is asked
            registry.fail_operation(op, "again")

    run(body())


def test_a_lost_session_can_be_registered_again_once_the_lease_is_free() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        w.expire()
        await w.b.register_session("s")
        first = make_prompt("by b")
        await w.b.accept_input("s", first)
        await w.a.renew_leases_now()
        with pytest.raises(Exception, match="held by owner 'B'"):
            await w.a.register_session("s")
        await w.b.unregister_session("s")
        await w.a.register_session("s")  # claims again (token 3) and recovers b's input
        assert await w.a.contains_session("s")
        view = await w.a.input_state("s", first.header.id)
        assert view is not None and view.current_state is S.QUEUED
        lease = w.reader().load_lease(RT)
        assert lease is not None and (lease.owner, lease.token) == ("A", 3)

    run(body())


def test_a_machine_without_ownership_cannot_write_a_leased_runtime() -> None:
    async def body() -> None:
        clock = ManualClock()
        storage = MemoryStorage()
        owned = MeerkatMachine.persistent(
            FenceRecordingStore(storage, clock=clock), offload_store_calls=False, ownership=config("A", clock)
        )
        await owned.register_session("s")
        await owned.close()  # released, but the lease row stays
        unowned = MeerkatMachine.persistent(
            FenceRecordingStore(storage, clock=clock), offload_store_calls=False, ownership=None
        )
        with pytest.raises(OwnershipLost, match="without a fence"):
            await unowned.register_session("s")  # the recovery write-back is refused

    run(body())


def test_a_write_failure_is_not_an_ownership_loss() -> None:
    async def body() -> None:
        w = two_workers()
        await w.a.register_session("s")
        w.store_a.fail_next("persist_input_state")
        with pytest.raises(DurableWriteFailed):
            await w.a.accept_input("s", make_prompt("x"))
        claim = w.a.session_claim_handle().get(RT)
        assert claim is not None and claim.owned
        await w.a.accept_input("s", make_prompt("y"))

    run(body())
