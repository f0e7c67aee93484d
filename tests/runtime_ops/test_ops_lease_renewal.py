"""The background renewal of ``open_durable_ops`` leases and what a lost lease does: a dropped
handle's lease is no longer renewed, a lost lease closes the registry (its waiters raise
``OwnershipLost``), one store's stuck renewal delays no other store's, and a forked child
renews its own leases."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from meerkat_runtime.ops import lease as lease_module
from meerkat_runtime.ops.recovery import DurableOps, open_durable_ops
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import OwnershipLost
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import bg_spec, result, running

RT = canonical_runtime_id("renewed")
BOUND_S = 30.0
"""A generous cap on waiting for something that must happen (no timing is asserted)."""


def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class RecordingStore(SqliteRuntimeStore):
    """A SQLite store that records every lease renewal and can hold renewals up."""

    def __init__(self, path: Path, **kwargs: object) -> None:
        super().__init__(str(path), **kwargs)  # type: ignore[arg-type]
        self.renewals: list[str] = []
        self.renewed = threading.Event()
        self.entered = threading.Event()
        self.hold: threading.Event | None = None
        """While set to an unset event, a renewal waits for it (a frozen store)."""

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        self.renewals.append(runtime_id)
        self.entered.set()
        hold = self.hold
        if hold is not None:
            hold.wait(BOUND_S)
        renewed = super().renew_lease(fence, runtime_id, duration_s)
        self.renewed.set()
        return renewed


def test_a_dropped_durable_ops_lease_is_no_longer_renewed(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "ops.sqlite")
    ops = open_durable_ops(store, RT, ownership=OwnershipConfig(owner_id="a", lease_s=7200.0, renew_every_s=3600.0))
    assert ops.lease is not None
    ref = weakref.ref(ops.lease)
    del ops
    assert _eventually(lambda: gc.collect() >= 0 and ref() is None), "the renewer keeps a dropped lease alive"
    renewer = lease_module.renewer_for(store)  # the one whose thread is waiting (it holds the renewer)
    assert renewer.tick(time.monotonic() + 10 * 3600.0) is None  # long past due: nothing left to renew
    assert store.renewals == []
    assert renewer.held() == []


def _lost_by_write(ops: DurableOps, op: str) -> None:
    ops.registry.complete_operation(op, result(op))


def _lost_by_renewal(ops: DurableOps, op: str) -> None:
    assert ops.lease is not None
    ops.lease.renew()
    ops.lease.check()


def _lost_by_confirmation(ops: DurableOps, op: str) -> None:
    ops.persistence.confirm_owner()


@pytest.mark.parametrize("find_loss", [_lost_by_write, _lost_by_renewal, _lost_by_confirmation])
def test_a_lost_lease_closes_the_registry_and_releases_its_waiters(
    tmp_path: Path, find_loss: Callable[[DurableOps, str], None]
) -> None:
    clock = ManualClock()
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"), clock=clock)
    config = OwnershipConfig(owner_id="a", lease_s=10.0, renew_every_s=None, clock=clock)
    ops = open_durable_ops(store, RT, ownership=config)
    registry = ops.registry
    op = running(registry, bg_spec("x"))
    watch = registry.register_watcher(op)
    barrier = registry.wait_all([op])

    async def scenario() -> None:
        on_loop = asyncio.ensure_future(_awaited(registry.register_watcher(op)))
        await asyncio.sleep(0)
        clock.advance(11)  # the lease expired (a stalled process) and another worker claims it
        store.claim_lease(RT, "b", 60.0)
        with pytest.raises(OwnershipLost):
            await asyncio.to_thread(find_loss, ops, op)  # found on another thread than the loop's
        with pytest.raises(OwnershipLost):
            await asyncio.wait_for(on_loop, BOUND_S)

    asyncio.run(scenario())
    with pytest.raises(OwnershipLost):
        watch.result(BOUND_S)
    with pytest.raises(OwnershipLost):
        barrier.result(BOUND_S)
    assert registry.closed
    with pytest.raises(OwnershipLost):
        registry.register_operation(bg_spec("after"))
    assert registry.snapshot(op) is not None and [o.display_name for o in registry.list_operations()] == ["x"]
    ops.close()


async def _awaited(watch: object) -> object:
    return await watch  # type: ignore[misc]


def test_a_stuck_renewal_in_one_store_does_not_delay_another_store(tmp_path: Path) -> None:
    config = OwnershipConfig(owner_id="a", lease_s=3600.0, renew_every_s=0.01)
    frozen = RecordingStore(tmp_path / "frozen.sqlite")
    healthy = RecordingStore(tmp_path / "healthy.sqlite")
    release = threading.Event()
    frozen.hold = release
    stuck = open_durable_ops(frozen, RT, ownership=config)
    fine = open_durable_ops(healthy, RT, ownership=config)
    try:
        assert frozen.entered.wait(BOUND_S)  # a renewal of the frozen store is stuck now
        healthy.renewed.clear()
        assert healthy.renewed.wait(BOUND_S), "the healthy store's lease is not renewed behind the stuck one"
        assert fine.lease is not None and fine.lease.owned
    finally:
        release.set()
        fine.close()
        stuck.close()


def _in_child(body: Callable[[], bool]) -> int:
    """Run ``body`` in a forked child; its exit status (0: it returned true; 3: still running
    after ``BOUND_S``, killed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if body() else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return 3


def _renews_its_own_lease(tmp_path: Path, config: OwnershipConfig) -> bool:
    """In a forked child: whether a lease the child opens is renewed in the background."""
    store = RecordingStore(tmp_path / "child.sqlite")
    ops = open_durable_ops(store, RT, ownership=config)
    return store.renewed.wait(BOUND_S / 2) and ops.lease is not None and ops.lease.owned


def test_a_forked_child_renews_its_own_leases(tmp_path: Path) -> None:
    config = OwnershipConfig(lease_s=3600.0, renew_every_s=0.01)
    parent_store = SqliteRuntimeStore(str(tmp_path / "parent.sqlite"))
    parent = open_durable_ops(parent_store, RT, ownership=config)  # the parent's renewal thread runs

    try:
        renewed = _in_child(lambda: _renews_its_own_lease(tmp_path, config))
        assert renewed == 0, "the child's lease is never renewed in the background"
    finally:
        parent.close()


def test_a_renewer_lock_held_at_the_fork_does_not_block_the_child(tmp_path: Path) -> None:
    config = OwnershipConfig(lease_s=3600.0, renew_every_s=0.01)
    holding, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with lease_module._RENEWERS_LOCK:  # another thread of the parent, inside the renewer's bookkeeping
            holding.set()
            done.wait(BOUND_S)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(BOUND_S)

    try:
        renewed = _in_child(lambda: _renews_its_own_lease(tmp_path, config))
        assert renewed == 0, "the child blocks on a lock the parent's thread held at the fork"
    finally:
        done.set()
        holder.join()
