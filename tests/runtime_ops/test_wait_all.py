"""wait_all: check order, immediate and pending barriers, cancellation paths, pinned members."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.errors import (
    DuplicateWaitOperation,
    InvalidField,
    NotFound,
    WaitAllCancelled,
    WaitAlreadyActive,
)
from meerkat_runtime.vocab.operation import Completed, Failed, Terminated

from tests.runtime_ops.helpers import bg_spec, result, running


def test_wait_all_returns_all_outcomes_in_request_order() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    reg.fail_operation(b, "b-error")
    reg.complete_operation(a, result(a, "a-done"))
    handle = reg.wait_all([a, b])
    assert handle.done() and not reg.view().wait_active, "all terminal: no barrier is created"
    res = asyncio.run(handle.wait())
    assert res.outcomes == ((a, Completed(result(a, "a-done"))), (b, Failed("b-error")))
    assert res.satisfied.operation_ids == (a, b)
    assert res.satisfied.wait_request_id != ""


def test_empty_wait_all_resolves_at_once() -> None:
    reg = OpsLifecycleRegistry()
    res = reg.wait_all([]).result(0)
    assert res.outcomes == () and res.satisfied.operation_ids == ()
    assert not reg.view().wait_active


def test_pending_wait_resolves_with_the_active_request_id() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    reg.complete_operation(b, result(b))

    async def main() -> None:
        handle = reg.wait_all([a, b], run_id="run-1")
        task = asyncio.ensure_future(handle.wait())
        await asyncio.sleep(0.01)
        assert not task.done()
        view = reg.view()
        assert view.wait_request_id == handle.wait_request_id and view.wait_operation_ids == (a, b)
        reg.complete_operation(a, result(a))
        res = await asyncio.wait_for(task, 5)
        assert res.satisfied.wait_request_id == handle.wait_request_id
        assert [oid for oid, _ in res.outcomes] == [a, b]
        assert not reg.view().wait_active

    asyncio.run(main())


def test_check_order_duplicate_then_active_then_not_found() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    handle = reg.wait_all([a])
    with pytest.raises(DuplicateWaitOperation) as dup:
        reg.wait_all(["ghost", "ghost"])
    assert dup.value.kind == "duplicate_wait_operation" and dup.value.operation_id == "ghost"
    with pytest.raises(WaitAlreadyActive):
        reg.wait_all(["ghost"])
    handle.cancel()
    with pytest.raises(NotFound):
        reg.wait_all([a, "ghost"])
    assert not reg.view().wait_active, "a rejected wait_all creates no barrier"


def test_dropping_a_pending_handle_clears_the_barrier() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    handle = reg.wait_all([a])
    assert reg.view().wait_active
    del handle
    gc.collect()
    view = reg.view()
    assert not view.wait_active and view.wait_operation_ids == ()
    reg.wait_all([a]).cancel()


def test_drop_while_the_lock_is_held_is_applied_by_the_next_call() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    handle = reg.wait_all([a])
    with reg._lock:
        del handle  # the finaliser must not block on the held lock
    assert not reg.view().wait_active


def test_cancelling_the_awaiting_task_clears_the_barrier() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))

    async def main() -> None:
        handle = reg.wait_all([a])
        task = asyncio.ensure_future(handle.wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not reg.view().wait_active
        with pytest.raises(WaitAllCancelled):
            handle.result(0)

    asyncio.run(main())


def test_timeout_of_the_awaiting_task_clears_the_barrier() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reg.wait_all([a]).wait(), 0.01)
        assert not reg.view().wait_active

    asyncio.run(main())


def test_explicit_cancel() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    handle = reg.wait_all([a])
    assert handle.cancel()
    assert not handle.cancel(), "a second cancel changes nothing"
    assert not reg.view().wait_active
    with pytest.raises(WaitAllCancelled) as info:
        handle.result(0)
    assert info.value.kind == "internal"
    other = reg.wait_all([a])
    assert reg.cancel_wait_all() and not reg.cancel_wait_all()
    assert other.done()
    # completing after a cancel does not resolve the cancelled handle differently
    reg.complete_operation(a, result(a))
    with pytest.raises(WaitAllCancelled):
        handle.result(0)


def test_a_stale_cancel_does_not_clear_a_newer_barrier() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    first = reg.wait_all([a])
    first.cancel()
    second = reg.wait_all([a])
    assert not reg._cancel_wait(first.wait_request_id)
    assert reg.view().wait_request_id == second.wait_request_id
    second.cancel()


def test_blocking_result_from_a_thread() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    handle = reg.wait_all([a])
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(handle.result(5)))
    waiter.start()
    with pytest.raises(TimeoutError):
        handle.result(0.01)
    assert reg.view().wait_active, "a blocking timeout leaves the barrier active"
    reg.terminate_owner("end")
    waiter.join(5)
    assert got and got[0].outcomes == ((a, Terminated("end")),)  # type: ignore[attr-defined]


def test_barrier_members_are_pinned_against_eviction_until_satisfied() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=1)
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    handle = reg.wait_all([a, b])
    reg.complete_operation(a, result(a))
    fillers = []
    for name in ("f1", "f2"):
        f = running(reg, bg_spec(name))
        reg.complete_operation(f, result(f))
        fillers.append(f)
    view = reg.view()
    assert view.completed_order == (a,), "a is pinned; the oldest unpinned ops are evicted (even the newest)"
    assert all(reg.snapshot(f) is None for f in fillers)
    assert len(view.completed_order) <= 1 + len(view.wait_operation_ids)
    reg.complete_operation(b, result(b))
    res = handle.result(0)
    assert [o for _, o in res.outcomes] == [Completed(result(a)), Completed(result(b))]
    assert reg.view().completed_order == (b,), "retention is applied again when the barrier ends"


def test_cancelled_barrier_reapplies_retention() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=1)
    a, b, x = (running(reg, bg_spec(n)) for n in "abx")
    handle = reg.wait_all([a, b, x])
    reg.complete_operation(a, result(a))
    reg.complete_operation(b, result(b))
    assert reg.view().completed_order == (a, b), "both pinned: nothing evicted beyond max_completed"
    handle.cancel()
    assert reg.view().completed_order == (b,)
    assert reg.snapshot(a) is None and reg.snapshot(x) is not None


def test_collect_completed_keeps_barrier_members() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    c = running(reg, bg_spec("c"))
    handle = reg.wait_all([a, b])
    reg.complete_operation(a, result(a))
    reg.complete_operation(c, result(c))
    assert [oid for oid, _ in reg.collect_completed()] == [c]
    assert reg.snapshot(a) is not None
    reg.complete_operation(b, result(b))
    assert handle.done()
    assert [oid for oid, _ in reg.collect_completed()] == [a, b]


def test_terminate_owner_satisfies_a_pending_barrier() -> None:
    reg = OpsLifecycleRegistry()
    ids = [running(reg, bg_spec(str(i))) for i in range(3)]
    handle = reg.wait_all(ids)
    reg.terminate_owner("stop")
    assert handle.result(0).outcomes == tuple((i, Terminated("stop")) for i in ids)
    assert not reg.view().wait_active


@pytest.mark.parametrize(("member", "evicted_last"), [(0, "a"), (2, "a")])
def test_terminate_owner_retains_as_if_one_terminal_at_a_time(member: int, evicted_last: str) -> None:
    """One call terminating several operations evicts exactly what one terminal transition at a
    time would: the oldest unpinned ids, the barrier's members pinned until it is satisfied
    (by the first or the last of them), then retention without pins."""
    reg = OpsLifecycleRegistry.with_config(max_completed=2)
    old = []
    for name in ("o1", "o2"):
        oid = running(reg, bg_spec(name, op_id=name))
        reg.complete_operation(oid, result(oid))
        old.append(oid)
    active = [running(reg, bg_spec(name, op_id=name)) for name in ("a", "b", "c")]
    handle = reg.wait_all([active[member]])
    assert reg.terminate_owner("bye") == 3
    assert handle.done()
    assert reg.view().completed_order == ("b", "c")
    assert [reg.snapshot(oid) for oid in (*old, evicted_last)] == [None, None, None]


def test_terminate_owner_of_many_operations_keeps_the_newest() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=3)
    ids = [running(reg, bg_spec(f"op{i}", op_id=f"op{i}")) for i in range(3000)]
    handle = reg.wait_all(ids[1500:1502])
    assert reg.terminate_owner("shutdown") == 3000
    assert handle.done() and not reg.view().wait_active
    assert reg.view().completed_order == tuple(ids[-3:])
    assert [e.seq for e in reg.completion_feed().list_since(0).entries][-1] == 3000


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ("op-1", "operation_ids"),
        (b"op-1", "operation_ids"),
        (None, "operation_ids"),
        (7, "operation_ids"),
        (["op-1", 1], "operation_ids[1]"),
        ([None], "operation_ids[0]"),
    ],
)
def test_wait_all_refuses_what_is_not_a_collection_of_id_strings(ids: object, field: str) -> None:
    reg = OpsLifecycleRegistry()
    for oid in ("op-1", "o", "p", "-", "1"):
        running(reg, bg_spec(oid, op_id=oid))
    with pytest.raises(InvalidField) as info:
        reg.wait_all(ids)  # type: ignore[arg-type]
    assert info.value.kind == "validation_failed" and info.value.field == field
    assert reg.view().wait_request_id is None  # no barrier was begun


def test_wait_all_refuses_a_run_id_that_is_not_text() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    with pytest.raises(InvalidField) as info:
        reg.wait_all([oid], run_id=5)  # type: ignore[arg-type]
    assert info.value.field == "run_id"
