"""The operation registry across a takeover, on one SQLite file with two workers: a terminal
write whose outcome the stale worker never learnt (its store unreadable) is neither repeated nor
given a number the new owner hands out again, and the new owner's numbers go on from the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.watch import OperationCompletionWatch
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import READ_METHODS, FaultInjectingStore
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import OwnershipLost, PersistenceFailed

from tests.ownership.helpers import LEASE_S, RT, config
from tests.runtime_ops.helpers import bg_spec, result, running
from tests.runtime_session.helpers import run


class DroppingSqlite(SqliteRuntimeStore):
    """While ``drop`` is set, an ops write raises ``ConnectionError`` without reaching the file
    (a lost connection: the caller cannot tell whether it landed)."""

    drop = False

    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        self._dropped()
        super().append_ops_record(runtime_id, record, fence=fence)

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        self._dropped()
        super().persist_ops_lifecycle(runtime_id, snapshot, fence=fence)

    def _dropped(self) -> None:
        if self.drop:
            self.drop = False
            raise ConnectionError("connection dropped while committing an ops write")


@dataclass
class File:
    path: Path
    clock: ManualClock

    def worker(self, owner: str) -> tuple[MeerkatMachine, FaultInjectingStore]:
        store = FaultInjectingStore(DroppingSqlite(self.path, synchronous="NORMAL", clock=self.clock))
        machine = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=config(owner, self.clock))
        return machine, store

    def stored(self) -> dict[str, int | None]:
        """Stored terminal operations -> completion sequence number, and ``next``."""
        with SqliteRuntimeStore(self.path) as store:
            snapshot = persisted_from_records(store.load_ops_lifecycle(RT), RT)
        assert snapshot is not None
        out: dict[str, int | None] = {str(op.spec.id): op.completion_seq for op in snapshot.operations}
        out["next"] = snapshot.next_completion_seq
        return out


@pytest.fixture
def file(tmp_path: Path) -> Iterator[File]:
    yield File(tmp_path / "runtime.sqlite3", ManualClock())


def _unknown_outcome(store: FaultInjectingStore, *, landed: bool) -> list[object]:
    """The next ops write fails with its outcome unknown (after landing, or before reaching the
    file) and every read fails; returns the read rules to remove."""
    if landed:
        for method in ("append_ops_record", "persist_ops_lifecycle"):
            store.fail_next(method, after_write=True)
    else:
        inner = store.inner
        assert isinstance(inner, DroppingSqlite)
        inner.drop = True
    return [store.fail_always(method) for method in sorted(READ_METHODS)]


def _complete(registry: OpsLifecycleRegistry, op: str) -> None:
    registry.complete_operation(op, result(op))


class InDoubt(NamedTuple):
    """Worker A's completion of ``late`` failed with ``error``, its outcome unknown; A's reads
    fail until the ``unreadable`` rules are removed from ``store_a``. B has not registered yet."""

    a: MeerkatMachine
    b: MeerkatMachine
    store_a: FaultInjectingStore
    registry_a: OpsLifecycleRegistry
    late: str
    unreadable: list[object]
    error: PersistenceFailed
    watch: OperationCompletionWatch | None


async def _a_write_in_doubt(file: File, *, landed: bool, watched: bool = False, content: str = "done") -> InDoubt:
    """A registers ``s`` and completes ``first`` (number 1), then completes ``late`` (result
    ``content``; a watcher registered on it first when ``watched``) with the write's outcome
    unknown: it landed in the file, or it never reached it (``landed``)."""
    a, store_a = file.worker("A")
    b, _ = file.worker("B")
    await a.register_session("s")
    registry_a = await a.ops_lifecycle_registry("s")
    _complete(registry_a, running(registry_a, bg_spec(op_id="first", owner="s")))
    late = running(registry_a, bg_spec(op_id="late", owner="s"))
    watch = registry_a.register_watcher(late) if watched else None
    unreadable = _unknown_outcome(store_a, landed=landed)
    with pytest.raises(PersistenceFailed) as caught:
        registry_a.complete_operation(late, result(late, content))
    return InDoubt(a, b, store_a, registry_a, late, unreadable, caught.value, watch)


@pytest.mark.parametrize("landed", [True, False])
def test_a_terminal_write_left_in_doubt_is_never_repeated_after_a_takeover(file: File, landed: bool) -> None:
    async def body() -> None:
        a, b, store_a, registry_a, _, unreadable, error, _ = await _a_write_in_doubt(file, landed=landed)
        assert error.outcome_unknown and registry_a.in_doubt
        file.clock.advance(LEASE_S + 1)
        await b.register_session("s")  # takeover: B's registry is what the store holds
        registry_b = await b.ops_lifecycle_registry("s")
        taken = 2 if landed else 1
        assert registry_b.view().next_completion_seq == taken + 1
        _complete(registry_b, running(registry_b, bg_spec(op_id="after", owner="s")))
        for rule in unreadable:
            store_a.remove(rule)  # type: ignore[arg-type]
        with pytest.raises((PersistenceFailed, OwnershipLost)):  # A's registry never writes again
            _complete(registry_a, running(registry_a, bg_spec(op_id="stale", owner="s")))
        expected: dict[str, int | None] = {"first": 1, "after": taken + 1, "next": taken + 2}
        if landed:
            expected["late"] = 2
        assert file.stored() == expected  # every number taken once
        await a.renew_leases_now()
        with pytest.raises(OwnershipLost):
            await a.ops_lifecycle_registry("s")

    run(body())


def test_a_lost_write_settled_before_the_new_owner_writes_is_refused_by_the_fence(file: File) -> None:
    async def body() -> None:
        _, b, store_a, registry_a, late, unreadable, _, _ = await _a_write_in_doubt(file, landed=False)
        file.clock.advance(LEASE_S + 1)
        await b.register_session("s")
        registry_b = await b.ops_lifecycle_registry("s")
        for rule in unreadable:
            store_a.remove(rule)  # type: ignore[arg-type]
        # A reads the store back: its write is not there, so it drops it and retries with the
        # number it still holds (2), which B would hand out next: the fence refuses it.
        with pytest.raises(OwnershipLost):
            _complete(registry_a, late)
        assert not registry_a.in_doubt
        assert file.stored() == {"first": 1, "next": 2}
        _complete(registry_b, running(registry_b, bg_spec(op_id="b0", owner="s")))
        assert file.stored() == {"first": 1, "b0": 2, "next": 3}

    run(body())


def test_a_write_in_doubt_is_not_taken_for_the_new_owners_write_of_the_same_operation(file: File) -> None:
    """A's completion of ``late`` never reached the file; B takes over, registers ``late`` again
    and completes it with another result under the same number (2). A's read-back finds ``late``
    completed with number 2 and the next number it expected: it must not take B's write for its
    own. A's next change raises ``OwnershipLost``; its watcher never sees A's result."""

    async def body() -> None:
        _, b, store_a, registry_a, late, unreadable, error, watch = await _a_write_in_doubt(
            file, landed=False, watched=True, content="A-version"
        )
        assert watch is not None
        assert error.outcome_unknown and registry_a.in_doubt
        file.clock.advance(LEASE_S + 1)
        await b.register_session("s")
        registry_b = await b.ops_lifecycle_registry("s")
        assert registry_b.snapshot(late) is None  # A's write never landed
        running(registry_b, bg_spec(op_id=late, owner="s"))
        registry_b.complete_operation(late, result(late, "B-version"))
        assert file.stored() == {"first": 1, late: 2, "next": 3}
        for rule in unreadable:
            store_a.remove(rule)  # type: ignore[arg-type]
        with pytest.raises(OwnershipLost):
            _complete(registry_a, running(registry_a, bg_spec(op_id="a2", owner="s")))
        assert not registry_a.in_doubt
        if watch.done():  # released with the closing error, never with A's result
            with pytest.raises(OwnershipLost):
                watch.result()
        seen = registry_a.snapshot(late)
        assert seen is not None and not seen.status.is_terminal  # A's result was never applied
        assert [e.operation_id for e in registry_a.completion_feed().entries()] == ["first"]
        assert file.stored() == {"first": 1, late: 2, "next": 3}

    run(body())
