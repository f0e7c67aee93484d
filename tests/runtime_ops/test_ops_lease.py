"""``open_durable_ops`` holds the runtime's lease: one writer at a time, fenced writes, release
on ``close``, renewal, takeover by the same owner, and ``ownership=None`` as before leases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from meerkat_runtime.ops import lease as lease_module
from meerkat_runtime.ops.persistence import PersistenceChannelClosed
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting, LeaseHeld, OwnershipLost, SnapshotFormatError
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import completed

RT = canonical_runtime_id("leased")


def manual(owner: str, clock: ManualClock, lease_s: float = 10.0) -> OwnershipConfig:
    """Renewal only when asked (or before a write once due), on ``clock``."""
    return OwnershipConfig(owner_id=owner, lease_s=lease_s, renew_every_s=None, clock=clock)


def completed_ids(store: InMemoryRuntimeStore) -> list[str]:
    """The display names of the operations the store holds."""
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    return [op.spec.display_name for op in persisted.operations]


def test_a_second_owner_is_refused_while_the_first_holds_the_lease() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    first = open_durable_ops(store, RT, ownership=manual("a", clock))
    completed(first.registry, "x")
    with pytest.raises(LeaseHeld, match="'a'"):
        open_durable_ops(store, RT, ownership=manual("b", clock))
    completed(first.registry, "y")
    assert completed_ids(store) == ["x", "y"]
    assert first.lease is not None and first.lease.owned


def test_close_releases_the_lease_and_refuses_later_changes() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    with open_durable_ops(store, RT, ownership=manual("a", clock)) as first:
        completed(first.registry, "x")
    with pytest.raises(PersistenceChannelClosed):
        completed(first.registry, "late")
    second = open_durable_ops(store, RT, ownership=manual("b", clock))  # at once: released
    assert second.recovered and [op.display_name for op in second.registry.list_operations()] == ["x"]
    completed(second.registry, "z")
    assert completed_ids(store) == ["x", "z"]


def test_a_writer_whose_expired_lease_was_claimed_is_refused_and_the_state_stays_readable() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    first = open_durable_ops(store, RT, ownership=manual("a", clock))
    completed(first.registry, "x")
    clock.advance(11)  # the lease expired (a stalled process)
    second = open_durable_ops(store, RT, ownership=manual("b", clock))
    with pytest.raises(OwnershipLost):
        completed(first.registry, "stale")
    assert first.lease is not None and first.lease.lost is not None
    with pytest.raises(OwnershipLost):  # refused before the store: the lease is known lost
        completed(first.registry, "stale-again")
    completed(second.registry, "y")
    assert completed_ids(store) == ["x", "y"]


def test_the_same_owner_takes_over_and_the_old_handle_is_refused() -> None:
    storage = MemoryStorage()
    old = open_durable_ops(InMemoryRuntimeStore(storage), RT)
    completed(old.registry, "x")
    new = open_durable_ops(InMemoryRuntimeStore(storage), RT)  # the same process: its owner id
    assert new.recovered
    with pytest.raises(OwnershipLost):
        completed(old.registry, "stale")
    completed(new.registry, "y")
    assert completed_ids(InMemoryRuntimeStore(storage)) == ["x", "y"]
    new.close()
    old.close()


def test_a_write_renews_a_lease_whose_renewal_is_due() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    config = OwnershipConfig(owner_id="a", lease_s=10.0, renew_every_s=3.0, clock=clock)
    ops = open_durable_ops(store, RT, ownership=config)
    try:
        first_expiry = store.load_lease(RT)
        assert first_expiry is not None
        clock.advance(8)
        completed(ops.registry, "x")
        lease = store.load_lease(RT)
        assert lease is not None and lease.expires_at == first_expiry.expires_at + 8
        clock.advance(8)  # past the first expiry, not the renewed one
        with pytest.raises(LeaseHeld):
            open_durable_ops(store, RT, ownership=manual("b", clock))
    finally:
        ops.close()


def test_a_failed_recovery_releases_the_lease() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    store.append_ops_record(RT, b"{}")  # a record without a snapshot: unreadable
    with pytest.raises(SnapshotFormatError):
        open_durable_ops(store, RT, ownership=manual("a", clock))
    lease = store.load_lease(RT)
    assert lease is not None and lease.expired(clock())


def test_a_machine_and_an_ops_opener_exclude_each_other() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    ownership = OwnershipConfig(owner_id="machine", lease_s=10.0, renew_every_s=None, clock=clock)

    async def scenario() -> None:
        machine = MeerkatMachine.persistent(store, ownership=ownership)
        await machine.register_session("leased")
        with pytest.raises(LeaseHeld, match="'machine'"):
            open_durable_ops(store, RT, session_id="leased", ownership=manual("ops", clock))
        await machine.unregister_session("leased")
        ops = open_durable_ops(store, RT, session_id="leased", ownership=manual("ops", clock))
        with pytest.raises(LeaseHeld, match="'ops'"):
            await machine.register_session("leased")
        ops.close()
        await machine.register_session("leased")
        await machine.close()

    asyncio.run(scenario())


def test_without_ownership_writes_are_unfenced_and_refused_once_leased() -> None:
    clock = ManualClock()
    store = InMemoryRuntimeStore(clock=clock)
    ops = open_durable_ops(store, RT, ownership=None)
    assert ops.lease is None
    completed(ops.registry, "x")
    open_durable_ops(store, RT, ownership=manual("a", clock))
    with pytest.raises(OwnershipLost):
        completed(ops.registry, "y")
    with pytest.raises(InvalidSetting, match="ownership"):
        open_durable_ops(store, RT, ownership="yes")  # type: ignore[arg-type]


def _eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` becomes true (polled; generous cap, no timing asserted)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_held_lease_is_renewed_in_the_background_until_closed(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(str(tmp_path / "ops.sqlite"))
    ops = open_durable_ops(store, RT, ownership=OwnershipConfig(owner_id="a", lease_s=60.0, renew_every_s=0.02))
    assert ops.lease is not None and ops.lease.lease is not None
    first = ops.lease.lease.expires_at
    assert _eventually(lambda: store.load_lease(RT).expires_at > first)  # type: ignore[union-attr]
    ops.close()
    released = store.load_lease(RT)
    assert released is not None and released.expired(time.time())
    held = ops.lease
    assert _eventually(lambda: held not in lease_module.renewer_for(store).held()), (
        "the renewer forgets a released lease"
    )
    again = store.load_lease(RT)
    assert again is not None and again.expires_at == released.expires_at, "nothing renewed after close"
