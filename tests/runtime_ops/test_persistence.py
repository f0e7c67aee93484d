"""Durable terminal transitions: written before they return, rolled back when the write fails."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.persistence import OpsDurableWrite, OpsPersistenceSink, StoreOpsPersistence
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import InvalidTransition, PersistenceFailed, WriteFailed
from meerkat_runtime.vocab.operation import Completed, OperationStatus

from tests.runtime_ops.helpers import RecordingSink, bg_spec, completed, result, running

RT = "rt:session:test"


def durable(sink: OpsPersistenceSink, **config: Any) -> OpsLifecycleRegistry:
    reg = OpsLifecycleRegistry.with_config(**config)
    reg.attach_persistence(sink, "epoch-1", EpochCursorState())
    return reg


def fingerprint(reg: OpsLifecycleRegistry) -> tuple[object, ...]:
    """Everything a caller can observe about a registry."""
    return (reg.view(), reg.list_operations(), reg.completion_feed().list_since(0))


def test_recording_sink_sees_a_burst_of_32_terminals_without_loss() -> None:
    sink = RecordingSink()
    reg = durable(sink)
    for i in range(32):
        completed(reg, f"queued-terminal-{i}")
    assert sink.calls == len(sink.records) == 32
    latest = sink.snapshots[-1]
    assert latest.epoch_id == "epoch-1" and len(latest.completion_entries) == 32
    back = OpsLifecycleRegistry.from_recovered(latest)
    assert len(back.completion_feed().list_since(0).entries) == 32


def test_store_burst_of_32_is_fully_recoverable() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, compact_every=8)
    ids = [completed(ops.registry, f"burst-{i}") for i in range(32)]
    assert ops.persistence.compactions >= 2 and ops.persistence.appended >= 16
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None and persisted.epoch_id == ops.epoch_id
    back = OpsLifecycleRegistry.from_recovered(persisted)
    assert [e.operation_id for e in back.completion_feed().list_since(0).entries] == ids
    assert back.view().next_completion_seq == 33


def test_the_write_happens_before_anything_is_observable() -> None:
    seen: list[tuple[bool, int]] = []
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("a"))
    watch = reg.register_watcher(oid)

    class Probe:
        def persist(self, write: OpsDurableWrite) -> None:
            seen.append((watch.done(), reg.completion_feed().watermark()))

        def close(self) -> None:
            return None

    reg.attach_persistence(Probe(), "e", EpochCursorState())
    reg.complete_operation(oid, result(oid))
    assert seen == [(False, 0)]
    assert watch.done() and reg.completion_feed().watermark() == 1


def test_non_terminal_transitions_and_empty_bulk_calls_are_not_written() -> None:
    sink = RecordingSink()
    reg = durable(sink)
    oid = running(reg, bg_spec("a"))
    reg.report_progress(oid)
    reg.request_retire(oid)
    reg.register_watcher(oid)
    assert reg.collect_completed() == []
    reg.mark_retired(oid)
    assert reg.terminate_owner("none active") == 0
    assert sink.calls == 1


def test_terminate_owner_is_one_durable_write() -> None:
    sink = RecordingSink()
    reg = durable(sink)
    ids = [running(reg, bg_spec(str(i))) for i in range(4)]
    assert reg.terminate_owner("bye") == 4
    assert sink.calls == 1
    assert [op.id for op in sink.records[0].terminated] == ids


def test_closed_sink_fails_the_terminal_transition() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT)
    oid = running(ops.registry, bg_spec("closed"))
    ops.persistence.close()
    with pytest.raises(PersistenceFailed) as info:
        ops.registry.complete_operation(oid, result(oid))
    assert "persistence channel closed" in str(info.value)
    assert info.value.kind == "persistence_failed"
    assert ops.registry.snapshot(oid).status is OperationStatus.RUNNING  # type: ignore[union-attr]


def test_store_write_failure_surfaces_its_message_after_exactly_one_call() -> None:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    ops = open_durable_ops(store, RT)
    oid = running(ops.registry, bg_spec("rejected"))
    store.fail_next("persist_ops_lifecycle")
    with pytest.raises(PersistenceFailed) as info:
        ops.registry.complete_operation(oid, result(oid))
    assert "injected fault" in str(info.value) and oid in str(info.value)
    assert isinstance(info.value.__cause__, WriteFailed)
    assert store.calls("persist_ops_lifecycle") == 1
    assert store.calls("append_ops_record") == 0


def _busy_registry(sink: RecordingSink) -> tuple[OpsLifecycleRegistry, dict[str, Any]]:
    """A registry at its retention limit, with watchers and a pending barrier."""
    reg = durable(sink, max_completed=2)
    old = [completed(reg, f"old-{i}") for i in range(2)]
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    c = bg_spec("c")
    reg.register_operation(c)
    watches = [reg.register_watcher(a), reg.register_watcher(b)]
    barrier = reg.wait_all([a, b])
    return reg, {"old": old, "a": a, "b": b, "c": c.id, "watches": watches, "barrier": barrier}


def test_failed_write_rolls_back_a_terminal_transition_completely() -> None:
    sink = RecordingSink()
    reg, parts = _busy_registry(sink)
    reg.complete_operation(parts["b"], result(parts["b"]))  # b done; a still pins the barrier
    before = fingerprint(reg)
    sink.fail_with = OSError("disk full")
    with pytest.raises(PersistenceFailed, match="disk full"):
        reg.complete_operation(parts["a"], result(parts["a"]))
    assert fingerprint(reg) == before
    assert not parts["watches"][0].done() and not parts["barrier"].done()
    sink.fail_with = None
    reg.complete_operation(parts["a"], result(parts["a"]))
    assert parts["barrier"].result(0).outcomes[0] == (parts["a"], Completed(result(parts["a"])))
    assert reg.snapshot(parts["a"]).completion_seq == 4  # type: ignore[union-attr]


def test_failed_write_rolls_back_terminate_owner_with_evictions_and_barrier() -> None:
    sink = RecordingSink()
    reg, parts = _busy_registry(sink)
    before = fingerprint(reg)
    sink.fail_with = RuntimeError("store offline")
    with pytest.raises(PersistenceFailed, match="store offline"):
        reg.terminate_owner("shutdown")
    assert fingerprint(reg) == before
    assert not any(w.done() for w in parts["watches"]) and not parts["barrier"].done()
    assert all(reg.snapshot(o) is not None for o in parts["old"])
    sink.fail_with = None
    assert reg.terminate_owner("shutdown") == 3
    assert parts["barrier"].done()
    assert len(reg.view().completed_order) == 2


def test_failed_write_rolls_back_collect_completed() -> None:
    sink = RecordingSink()
    reg, parts = _busy_registry(sink)
    reg.complete_operation(parts["b"], result(parts["b"]))
    before = fingerprint(reg)
    sink.fail_with = RuntimeError("nope")
    with pytest.raises(PersistenceFailed):
        reg.collect_completed()
    assert fingerprint(reg) == before
    sink.fail_with = None
    # b's completion evicted the oldest entry; b itself is pinned by the barrier
    assert [oid for oid, _ in reg.collect_completed()] == parts["old"][1:]
    assert reg.view().completed_order == (parts["b"],)
    parts["barrier"].cancel()


def test_registration_order_survives_a_rolled_back_eviction() -> None:
    sink = RecordingSink()
    reg = durable(sink, max_completed=1)
    first = completed(reg, "first")
    x = running(reg, bg_spec("x"))
    y = running(reg, bg_spec("y"))
    order = reg.view().operation_ids
    sink.fail_with = RuntimeError("fail")
    with pytest.raises(PersistenceFailed):
        reg.complete_operation(x, result(x))
    assert reg.view().operation_ids == order == (first, x, y)


def test_a_journal_record_does_not_grow_with_the_registry() -> None:
    sizes = []
    for retained in (10, 1000):
        sink = RecordingSink()
        reg = OpsLifecycleRegistry.with_config(max_completed=retained)
        for i in range(retained):
            completed(reg, f"r{i}")
        reg.attach_persistence(sink, "e", EpochCursorState())
        oid = running(reg, bg_spec("probe", op_id="probe"))
        reg.complete_operation(oid, result(oid))
        sizes.append(len(sink.records[-1].to_json()))
    assert sizes[0] == sizes[1] or abs(sizes[0] - sizes[1]) < 16


def test_store_sink_appends_between_compactions() -> None:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    sink = StoreOpsPersistence(store, RT, compact_every=4, compact_ratio=0.0)
    reg = durable(sink)
    for i in range(9):
        completed(reg, str(i))
    # write 1 compacts (no base yet), writes 2-5 append, write 6 compacts, writes 7-9 append
    assert store.calls("persist_ops_lifecycle") == sink.compactions == 2
    assert store.calls("append_ops_record") == sink.appended == 7
    stored = store.load_ops_lifecycle(RT)
    assert stored is not None and len(stored.appended) == 3


def test_an_ambiguous_write_that_landed_completes_the_call_and_the_next_write_compacts() -> None:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    ops = open_durable_ops(store, RT)
    a = completed(ops.registry, "a")
    b = running(ops.registry, bg_spec("b"))
    watch = ops.registry.register_watcher(b)
    store.fail_next("append_ops_record", after_write=True)
    ops.registry.complete_operation(b, result(b, "first try"))  # read back: the store holds it
    assert ops.registry.snapshot(b).terminal_outcome == Completed(result(b, "first try"))  # type: ignore[union-attr]
    assert ops.registry.snapshot(b).completion_seq == 2  # type: ignore[union-attr]
    assert watch.done() and not ops.registry.in_doubt
    with pytest.raises(InvalidTransition):  # Completed is absorbing: no second outcome
        ops.registry.complete_operation(b, result(b, "second try"))
    c = completed(ops.registry, "c")
    assert store.calls("persist_ops_lifecycle") == 2  # the write after the ambiguous one compacted
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    back = OpsLifecycleRegistry.from_recovered(persisted)
    assert back.snapshot(b).terminal_outcome == Completed(result(b, "first try"))  # type: ignore[union-attr]
    assert back.view().completed_order == (a, b, c)
    assert [op.completion_seq for op in persisted.operations] == [1, 2, 3]


def test_detach_persistence_stops_durable_writes() -> None:
    sink = RecordingSink()
    reg = durable(sink)
    completed(reg, "a")
    assert reg.detach_persistence() is sink
    completed(reg, "b")
    assert sink.calls == 1 and reg.detach_persistence() is None
    with pytest.raises(ValueError):
        reg.attach_persistence(sink, "", EpochCursorState())
    with pytest.raises(ValueError):
        StoreOpsPersistence(InMemoryRuntimeStore(), RT, compact_every=0)


def test_journal_carries_cursor_positions() -> None:
    sink = RecordingSink()
    cursors = EpochCursorState()
    reg = OpsLifecycleRegistry()
    reg.attach_persistence(sink, "e", cursors)
    completed(reg, "a")
    cursors.advance_agent_applied(1)
    completed(reg, "b")
    assert [r.cursors.agent_applied for r in sink.records] == [0, 1]


def test_reads_are_not_blocked_while_a_terminal_transition_is_being_written() -> None:
    """The sink runs outside the state lock: another thread can read the registry while a
    write is in flight, and sees the state before the transition (nothing is applied yet)."""
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("slow"))
    seen: list[object] = []

    class SlowSink:
        def persist(self, write: OpsDurableWrite) -> None:
            reader = threading.Thread(target=lambda: seen.append(reg.snapshot(oid).status))  # type: ignore[union-attr]
            reader.start()
            reader.join(5)
            seen.append(reader.is_alive())

        def close(self) -> None:
            return None

    reg.attach_persistence(SlowSink(), "e", EpochCursorState())
    reg.complete_operation(oid, result(oid))
    assert seen == [OperationStatus.RUNNING, False]
    assert reg.snapshot(oid).status is OperationStatus.COMPLETED  # type: ignore[union-attr]


def test_a_change_waits_for_the_write_in_flight_and_is_never_interleaved_with_it() -> None:
    """Changes are serialised with durable writes: a terminal transition started while another
    one is being written gets the next sequence number only after that write returned."""
    reg = OpsLifecycleRegistry()
    first, second = running(reg, bg_spec("first")), running(reg, bg_spec("second"))
    order: list[str] = []
    release = threading.Event()

    class GateSink:
        def persist(self, write: OpsDurableWrite) -> None:
            order.append(f"write {write.record.terminated[0].id}")
            if write.record.terminated[0].id == first:
                release.wait(5)

        def close(self) -> None:
            return None

    reg.attach_persistence(GateSink(), "e", EpochCursorState())
    t1 = threading.Thread(target=reg.complete_operation, args=(first, result(first)))
    t1.start()
    while not order:
        time.sleep(0.001)
    t2 = threading.Thread(target=reg.complete_operation, args=(second, result(second)))
    t2.start()
    t2.join(0.05)
    assert t2.is_alive() and order == [f"write {first}"]  # waits for the commit lock
    release.set()
    t1.join(5)
    t2.join(5)
    assert order == [f"write {first}", f"write {second}"]
    assert [e.operation_id for e in reg.completion_feed().list_since(0).entries] == [first, second]
