"""Property: whatever sequence of calls (and failed writes) happens, the state recovered from
the store equals the state recovered from the live registry — the same operations in the same
(registration) order — and every failed call changed nothing; a registry recovered from the
store and driven on keeps the same property."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from meerkat_runtime.ops import wire
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.persistence import StoreOpsPersistence
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import OpsLifecycleError, PersistenceFailed

from tests.runtime_ops.helpers import bg_spec, child_spec, handle, result

RT = "rt:session:prop"
IDS = ["a", "b", "c", "d"]

actions = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(
                [
                    "register",
                    "register_child",
                    "start",
                    "complete",
                    "fail",
                    "cancel",
                    "abort",
                    "retire",
                    "mark_retired",
                    "progress",
                    "peer",
                    "watch",
                ]
            ),
            st.sampled_from(IDS),
        ),
        st.tuples(st.sampled_from(["terminate", "collect", "cancel_wait", "fail_next_write"]), st.none()),
        st.tuples(st.just("wait"), st.lists(st.sampled_from(IDS), max_size=3, unique=True)),
    ),
    max_size=40,
)


def observable(reg: OpsLifecycleRegistry) -> tuple[object, ...]:
    """Everything a recovered registry shows, in order: tracked ids (registration order), the
    retention FIFO, counters, ``list_operations`` (display name, then registration order) and
    the feed."""
    view = reg.view()
    return (
        view.operation_ids,
        view.completed_order,
        view.next_completion_seq,
        view.watermark,
        reg.list_operations(),
        reg.completion_feed().list_since(0),
    )


def apply(reg: OpsLifecycleRegistry, name: str, arg: Any, handles: list[Any]) -> None:
    calls: dict[str, Callable[[], object]] = {
        "register": lambda: reg.register_operation(bg_spec(arg, op_id=arg)),
        "register_child": lambda: reg.register_operation(child_spec(arg, op_id=arg)),
        "start": lambda: reg.provisioning_succeeded(arg),
        "complete": lambda: reg.complete_operation(arg, result(arg)),
        "fail": lambda: reg.fail_operation(arg, "e"),
        "cancel": lambda: reg.cancel_operation(arg, "c"),
        "abort": lambda: reg.abort_provisioning(arg),
        "retire": lambda: reg.request_retire(arg),
        "mark_retired": lambda: reg.mark_retired(arg),
        "progress": lambda: reg.report_progress(arg),
        "peer": lambda: reg.peer_ready(arg, handle()),
        "watch": lambda: reg.register_watcher(arg),
        "terminate": lambda: reg.terminate_owner("t"),
        "collect": reg.collect_completed,
        "cancel_wait": reg.cancel_wait_all,
        "wait": lambda: handles.append(reg.wait_all(arg)),
    }
    calls[name]()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=actions,
    max_completed=st.integers(0, 2),
    max_concurrent=st.sampled_from([None, 2]),
    compact_every=st.integers(1, 3),
    limit=st.sampled_from([None, 1100, 1700]),
)
def test_store_recovery_matches_live_state(
    steps: list[tuple[str, Any]],
    max_completed: int,
    max_concurrent: int | None,
    compact_every: int,
    limit: int | None,
) -> None:
    """``limit`` lowers the document size limit (64 MiB) so that snapshots of a few operations
    are over it: compactions are deferred (the record is written instead), also right after a
    failed write, and a record of several terminations is itself refused."""
    with patch.object(wire, "MAX_JSON_BYTES", wire.MAX_JSON_BYTES if limit is None else limit):
        _recovery_matches(steps, max_completed, max_concurrent, compact_every)


busy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["cycle", "cycle", "cycle", "register", "start", "cancel"]), st.sampled_from(IDS)),
        st.tuples(st.sampled_from(["terminate", "collect", "fail_next_write"]), st.none()),
    ),
    min_size=10,
    max_size=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=busy, max_completed=st.integers(0, 3), compact_every=st.integers(1, 3), limit=st.sampled_from([1100, 1700])
)
def test_store_recovery_matches_live_state_with_compactions_over_the_size_limit(
    steps: list[tuple[str, Any]], max_completed: int, compact_every: int, limit: int
) -> None:
    """Many completions (``cycle``: register, start, complete) under a size limit a snapshot of
    two or three operations is over: most compactions are deferred, some right after a failed
    write (the store is read back first); recovery still equals the live registry."""
    expanded: list[tuple[str, Any]] = []
    for name, arg in steps:
        expanded.extend([("register", arg), ("start", arg), ("complete", arg)] if name == "cycle" else [(name, arg)])
    with patch.object(wire, "MAX_JSON_BYTES", limit):
        _recovery_matches(expanded, max_completed, None, compact_every)


def _recovery_matches(
    steps: list[tuple[str, Any]],
    max_completed: int,
    max_concurrent: int | None,
    compact_every: int,
) -> None:
    """Run ``steps`` on a registry over a store, recover, compare; then run them again on the
    recovered registry (a restart that goes on writing to the same store, appending to the
    previous journal while its compactions are deferred) and compare again."""
    store = FaultInjectingStore(InMemoryRuntimeStore())
    config = OpsLifecycleConfig(max_completed, max_concurrent)
    for _process in range(2):
        ops = open_durable_ops(store, RT, config=config, compact_every=compact_every)
        _drive(store, ops.registry, steps, max_completed)
        store.clear()
        persisted = load_persisted_ops(store, RT)
        live = OpsLifecycleRegistry.from_recovered(ops.registry.capture_persistence_snapshot(ops.epoch_id, ops.cursors))
        if persisted is None:
            assert live.view().next_completion_seq == 1
            continue
        assert persisted.epoch_id == ops.epoch_id
        assert observable(OpsLifecycleRegistry.from_recovered(persisted)) == observable(live)
    again = open_durable_ops(store, RT, config=config, compact_every=compact_every)
    assert isinstance(again.persistence, StoreOpsPersistence)
    assert again.recovered == (load_persisted_ops(store, RT) is not None)
    assert not again.recovered or again.epoch_id == ops.epoch_id


def _drive(
    store: FaultInjectingStore, reg: OpsLifecycleRegistry, steps: list[tuple[str, Any]], max_completed: int
) -> None:
    handles: list[Any] = []
    for name, arg in steps:
        if name == "fail_next_write":
            store.fail_next("persist_ops_lifecycle")
            store.fail_next("append_ops_record")
            continue
        before = observable(reg)
        try:
            apply(reg, name, arg, handles)
        except PersistenceFailed:
            assert observable(reg) == before, f"{name}({arg}) was not rolled back"
        except OpsLifecycleError:
            assert observable(reg) == before, f"rejected {name}({arg}) changed state"
        view = reg.view()
        assert len(view.completed_order) <= max_completed + len(view.wait_operation_ids)
        assert view.watermark == view.next_completion_seq - 1


def test_evictions_after_a_cancelled_barrier_reach_the_journal() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, config=OpsLifecycleConfig(max_completed=1), compact_every=1000)
    reg = ops.registry
    for oid in ("a", "b", "x", "y", "z"):
        reg.register_operation(bg_spec(oid, op_id=oid))
        reg.provisioning_succeeded(oid)
    pending = reg.wait_all(["a", "b", "x"])
    reg.complete_operation("a", result("a"))  # first write: compaction
    reg.complete_operation("b", result("b"))  # appended; a and b pinned
    pending.cancel()  # retention evicts a, without a write of its own
    reg.complete_operation("y", result("y"))  # appended, carries the eviction of a
    reg.complete_operation("z", result("z"))
    stored = store.load_ops_lifecycle(RT)
    assert stored is not None and len(stored.appended) == 3
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None and persisted.completed_order == ("z",)
    assert observable(OpsLifecycleRegistry.from_recovered(persisted)) == observable(
        OpsLifecycleRegistry.from_recovered(reg.capture_persistence_snapshot(ops.epoch_id))
    )
