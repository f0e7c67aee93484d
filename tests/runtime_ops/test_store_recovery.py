"""Recovering from a RuntimeStore: fresh vs recovered epochs, fail-closed loads, canonical id only."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from meerkat_runtime.ops import wire
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.vocab.errors import ReadFailed, SnapshotFormatError
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import bg_spec, completed, result, running

RT = canonical_runtime_id("session-a")


def test_an_empty_store_gives_a_fresh_registry_with_a_new_epoch() -> None:
    store = InMemoryRuntimeStore()
    first = open_durable_ops(store, RT)
    second = open_durable_ops(InMemoryRuntimeStore(), RT)
    assert not first.recovered and first.epoch_id != second.epoch_id
    assert load_persisted_ops(store, RT) is None, "nothing is written before the first durable call"


def test_restart_keeps_epoch_cursors_and_terminal_state() -> None:
    storage = MemoryStorage()
    ops = open_durable_ops(InMemoryRuntimeStore(storage), RT)
    done = completed(ops.registry, "done")
    live = running(ops.registry, bg_spec("live"))
    ops.cursors.advance_runtime_observed(1)
    completed(ops.registry, "carrier")  # writes the moved cursor
    restarted = open_durable_ops(InMemoryRuntimeStore(storage), RT)
    assert restarted.recovered and restarted.epoch_id == ops.epoch_id
    assert restarted.cursors.runtime_observed == 1
    assert restarted.registry.snapshot(done) is not None and restarted.registry.snapshot(live) is None
    assert restarted.registry.view().next_completion_seq == 3


def test_runtimes_are_isolated_and_only_the_given_id_is_read() -> None:
    storage = MemoryStorage()
    a = open_durable_ops(InMemoryRuntimeStore(storage), RT)
    completed(a.registry, "a")
    other = open_durable_ops(InMemoryRuntimeStore(storage), canonical_runtime_id("session-b"))
    assert not other.recovered and other.registry.view().operation_ids == ()


def test_a_failed_load_fails_closed() -> None:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    completed(open_durable_ops(store, RT).registry, "a")
    store.fail_next("load_ops_lifecycle")
    with pytest.raises(ReadFailed, match="injected fault"):
        open_durable_ops(store, RT)


def test_journal_records_without_a_snapshot_are_refused() -> None:
    store = InMemoryRuntimeStore()
    store.append_ops_record(RT, b"{}")
    with pytest.raises(SnapshotFormatError, match="without a base snapshot"):
        load_persisted_ops(store, RT)


def test_a_damaged_journal_record_is_named() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, ownership=None)  # unleased: the test writes the damage
    completed(ops.registry, "a")  # compaction
    completed(ops.registry, "b")  # append
    store.append_ops_record(RT, b'{"format": "meerkat.ops.journal", "version": 1}')
    with pytest.raises(SnapshotFormatError, match="ops journal record #1"):
        load_persisted_ops(store, RT)


def test_a_record_that_does_not_follow_is_refused() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, ownership=None)  # unleased: the test writes the damage
    completed(ops.registry, "a")
    completed(ops.registry, "b")
    stored = store.load_ops_lifecycle(RT)
    assert stored is not None and len(stored.appended) == 1
    store.append_ops_record(RT, stored.appended[0])  # the same record twice: seq 2 again
    with pytest.raises(SnapshotFormatError, match="completion seq 2, expected 3"):
        load_persisted_ops(store, RT)


def test_a_record_from_another_epoch_is_refused() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, ownership=None)  # unleased: the test writes the damage
    completed(ops.registry, "a")
    other_store = InMemoryRuntimeStore()
    other = open_durable_ops(other_store, RT)
    completed(other.registry, "x")
    completed(other.registry, "y")
    stored = other_store.load_ops_lifecycle(RT)
    assert stored is not None
    store.append_ops_record(RT, stored.appended[0])
    with pytest.raises(SnapshotFormatError, match="does not match the snapshot's epoch"):
        load_persisted_ops(store, RT)


def _finish(reg: OpsLifecycleRegistry, registered: tuple[str, ...], finished: tuple[str, ...]) -> None:
    for oid in registered:
        reg.register_operation(bg_spec("same", op_id=oid))
        reg.provisioning_succeeded(oid)
    for oid in finished:
        reg.complete_operation(oid, result(oid))


def test_registration_order_survives_restarts_that_append_to_the_same_journal() -> None:
    """A restarted registry whose compaction is deferred (its snapshot over the size limit)
    appends to the journal the previous process wrote: replay must place the operations each
    process registered after those of the process before, and an operation registered again
    under the id of one the restart dropped (non-terminal in the snapshot) where it was
    registered the second time."""
    storage = MemoryStorage()
    first = open_durable_ops(InMemoryRuntimeStore(storage), RT, compact_every=1000)
    first.registry.register_operation(bg_spec("same", op_id="s"))  # in the snapshot, never finished
    _finish(first.registry, ("w",), ("w",))  # the snapshot: s (provisioning), w
    _finish(first.registry, ("z1", "z2", "z3", "p", "q"), ("q", "p"))  # z*: never finished
    assert (first.persistence.compactions, first.persistence.appended) == (1, 2)
    assert first.registry.view().operation_ids == ("s", "w", "z1", "z2", "z3", "p", "q")

    with patch.object(wire, "MAX_JSON_BYTES", 1700):  # a snapshot of these operations is over it
        second = open_durable_ops(InMemoryRuntimeStore(storage), RT, compact_every=1000)
        assert second.registry.view().operation_ids == ("w", "p", "q")
        _finish(second.registry, ("s", "r"), ("r", "s"))
        assert (second.persistence.compactions, second.persistence.deferred) == (0, 1)
        live = second.registry.view().operation_ids
        listed = [op.id for op in second.registry.list_operations()]
        assert live == ("w", "p", "q", "s", "r") and listed == list(live)

        third = open_durable_ops(InMemoryRuntimeStore(storage), RT, compact_every=1000).registry
        assert third.view().operation_ids == live
        assert [op.id for op in third.list_operations()] == listed
        assert third.view().completed_order == ("w", "q", "p", "r", "s")
