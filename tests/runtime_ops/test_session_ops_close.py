"""A session's registry when the session goes away: ``unregister_session``, ``close()``, the
loss of its lease and ``halt()`` release (or, for ``halt``, leave) its waiters and make it
refuse every change with the error a call on the session raises now; stored operations are
recovered by the next registration."""

from __future__ import annotations

import asyncio

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import MachineClosed, OwnershipLost, SessionNotFound
from meerkat_runtime.vocab.operation import OperationStatus

from tests.ownership.helpers import two_workers
from tests.runtime_ops.helpers import bg_spec, result, running
from tests.runtime_session.helpers import run


def test_unregister_session_releases_the_registry_s_waiters_with_session_not_found() -> None:
    async def body() -> None:
        machine = MeerkatMachine.ephemeral()
        reg = (await machine.prepare_bindings("sess")).ops_registry
        oid = running(reg, bg_spec("x", owner="sess"))
        watch = reg.register_watcher(oid)
        waiting = asyncio.ensure_future(watch.wait())
        await asyncio.sleep(0)
        await machine.unregister_session("sess")
        with pytest.raises(SessionNotFound):
            await asyncio.wait_for(waiting, 5)
        for call in (lambda: reg.complete_operation(oid, result(oid)), lambda: reg.register_watcher(oid)):
            with pytest.raises(SessionNotFound):
                call()
        again = (await machine.prepare_bindings("sess")).ops_registry
        assert again is not reg and not again.closed
        await machine.close()

    run(body())


def test_close_releases_watchers_wait_all_and_feed_waits_with_machine_closed_and_keeps_the_store() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        machine = MeerkatMachine.persistent(store)
        reg = (await machine.prepare_bindings("sess")).ops_registry
        done, a, b = (running(reg, bg_spec(n, owner="sess")) for n in ("done", "a", "b"))
        reg.complete_operation(done, result(done))
        watch = reg.register_watcher(a)
        wait = reg.wait_all([a, b])
        tasks = [
            asyncio.ensure_future(watch.wait()),
            asyncio.ensure_future(wait.wait()),
            asyncio.ensure_future(reg.completion_feed().wait_for_advance(1)),
        ]
        await asyncio.sleep(0)
        await machine.close()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        assert all(isinstance(o, MachineClosed) for o in outcomes), outcomes
        with pytest.raises(MachineClosed):
            reg.register_operation(bg_spec("late", owner="sess"))
        with pytest.raises(MachineClosed):
            reg.provisioning_succeeded(a)
        again = MeerkatMachine.persistent(store)
        recovered = (await again.prepare_bindings("sess")).ops_registry
        views = {v.id: v.status for v in recovered.list_operations()}
        assert views == {done: OperationStatus.COMPLETED}  # stored as it was; the open ones died
        await again.close()

    run(body())


def test_a_lost_lease_releases_the_registry_s_waiters_with_ownership_lost() -> None:
    async def body() -> None:
        w = two_workers()
        reg = (await w.a.prepare_bindings("s")).ops_registry
        oid = running(reg, bg_spec("x", owner="s"))
        waiting = asyncio.ensure_future(reg.register_watcher(oid).wait())
        await asyncio.sleep(0)
        w.expire()
        await w.b.register_session("s")
        await w.a.renew_leases_now()
        with pytest.raises(OwnershipLost):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(OwnershipLost):
            reg.register_watcher(oid)
        await w.a.close()
        await w.b.close()

    run(body())


def test_halt_leaves_the_registry_s_waiters_pending_and_refuses_changes() -> None:
    async def body() -> None:
        machine = MeerkatMachine.ephemeral()
        reg = (await machine.prepare_bindings("sess")).ops_registry
        oid = running(reg, bg_spec("x", owner="sess"))
        watch = reg.register_watcher(oid)
        await machine.halt()
        assert not watch.done()  # a crash resolves nothing
        with pytest.raises(SessionNotFound):
            reg.complete_operation(oid, result(oid))
        assert not watch.done()

    run(body())
