"""Per-operation transitions: from-sets, error kinds and their order, effects of each method."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.errors import (
    AlreadyPeerReady,
    AlreadyRegistered,
    InvalidTransition,
    MaxConcurrentExceeded,
    NotFound,
    OpsLifecycleError,
    PeerNotExpected,
)
from meerkat_runtime.vocab.operation import (
    Aborted,
    Cancelled,
    Completed,
    Failed,
    OperationProgressUpdate,
    OperationStatus,
    Retired,
    Terminated,
)

from tests.runtime_ops.helpers import bg_spec, child_spec, handle, result, running

S = OperationStatus
ACTIVE = {S.PROVISIONING, S.RUNNING, S.RETIRING}
TERMINAL = {S.COMPLETED, S.FAILED, S.ABORTED, S.CANCELLED, S.RETIRED, S.TERMINATED}
ALL = sorted(ACTIVE | TERMINAL, key=lambda s: s.value)


def at_status(status: OperationStatus, *, child: bool = True) -> tuple[OpsLifecycleRegistry, str]:
    """A fresh registry holding one operation in ``status``."""
    reg = OpsLifecycleRegistry()
    spec = child_spec("x") if child else bg_spec("x")
    reg.register_operation(spec)
    oid = spec.id
    if status in (S.RUNNING, S.RETIRING, S.COMPLETED, S.RETIRED):
        reg.provisioning_succeeded(oid)
    if status is S.RETIRING:
        reg.request_retire(oid)
    drive: dict[OperationStatus, Callable[[], object]] = {
        S.COMPLETED: lambda: reg.complete_operation(oid, result(oid)),
        S.FAILED: lambda: reg.fail_operation(oid, "boom"),
        S.ABORTED: lambda: reg.abort_provisioning(oid, "no"),
        S.CANCELLED: lambda: reg.cancel_operation(oid, "stop"),
        S.RETIRED: lambda: reg.mark_retired(oid),
        S.TERMINATED: lambda: reg.terminate_owner("owner gone"),
    }
    if status in drive:
        drive[status]()
    snap = reg.snapshot(oid)
    assert snap is not None and snap.status is status
    return reg, oid


Call = Callable[[OpsLifecycleRegistry, str], object]
METHODS: dict[str, tuple[set[OperationStatus], Call, OperationStatus | None]] = {
    "provisioning_succeeded": ({S.PROVISIONING}, lambda r, i: r.provisioning_succeeded(i), S.RUNNING),
    "provisioning_failed": (ACTIVE, lambda r, i: r.provisioning_failed(i, "e"), S.FAILED),
    "abort_provisioning": ({S.PROVISIONING}, lambda r, i: r.abort_provisioning(i), S.ABORTED),
    "report_progress": ({S.RUNNING, S.RETIRING}, lambda r, i: r.report_progress(i), None),
    "complete_operation": ({S.RUNNING, S.RETIRING}, lambda r, i: r.complete_operation(i, result(i)), S.COMPLETED),
    "fail_operation": (ACTIVE, lambda r, i: r.fail_operation(i, "e"), S.FAILED),
    "cancel_operation": (ACTIVE, lambda r, i: r.cancel_operation(i), S.CANCELLED),
    "request_retire": ({S.RUNNING}, lambda r, i: r.request_retire(i), S.RETIRING),
    "mark_retired": ({S.RUNNING, S.RETIRING}, lambda r, i: r.mark_retired(i), S.RETIRED),
    "peer_ready": ({S.RUNNING, S.RETIRING}, lambda r, i: r.peer_ready(i, handle()), None),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("status", ALL, ids=lambda s: s.value)
def test_from_set_of_every_method(method: str, status: OperationStatus) -> None:
    allowed, call, target = METHODS[method]
    reg, oid = at_status(status)
    before = reg.snapshot(oid)
    assert before is not None
    if status in allowed:
        call(reg, oid)
        after = reg.snapshot(oid)
        assert after is not None
        assert after.status is (target if target is not None else status)
    else:
        with pytest.raises(InvalidTransition) as info:
            call(reg, oid)
        err = info.value
        assert (err.kind, err.operation_id, err.status, err.action) == ("invalid_transition", oid, status.value, method)
        assert reg.snapshot(oid) == before, "a rejected call must change nothing"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_on_an_untracked_id_is_not_found(method: str) -> None:
    reg = OpsLifecycleRegistry()
    with pytest.raises(NotFound) as info:
        METHODS[method][1](reg, "ghost")
    assert info.value.kind == "not_found" and "ghost" in str(info.value)
    with pytest.raises(NotFound):
        reg.register_watcher("ghost")


def test_terminal_outcomes_carry_their_payloads() -> None:
    reg = OpsLifecycleRegistry()
    ids = [running(reg, bg_spec(n)) for n in "abcdef"]
    reg.complete_operation(ids[0], result(ids[0], "ok"))
    reg.fail_operation(ids[1], "broken")
    reg.cancel_operation(ids[2], "user")
    reg.mark_retired(ids[3])
    reg.provisioning_failed(ids[4], "late failure")
    spec = bg_spec("g")
    reg.register_operation(spec)
    reg.abort_provisioning(spec.id)
    assert reg.terminate_owner("bye") == 1
    outcomes = {oid: reg.snapshot(oid).terminal_outcome for oid in [*ids, spec.id]}  # type: ignore[union-attr]
    assert outcomes == {
        ids[0]: Completed(result(ids[0], "ok")),
        ids[1]: Failed("broken"),
        ids[2]: Cancelled("user"),
        ids[3]: Retired(),
        ids[4]: Failed("late failure"),
        ids[5]: Terminated("bye"),
        spec.id: Aborted(None),
    }


def test_already_registered_is_checked_before_capacity() -> None:
    reg = OpsLifecycleRegistry(OpsLifecycleConfig(max_concurrent=1))
    spec = bg_spec("a")
    reg.register_operation(spec)
    with pytest.raises(AlreadyRegistered) as info:
        reg.register_operation(spec)
    assert info.value.kind == "already_registered"
    with pytest.raises(MaxConcurrentExceeded):
        reg.register_operation(bg_spec("b"))


def test_max_concurrent_enforced_and_released_by_terminal_transitions() -> None:
    reg = OpsLifecycleRegistry.with_config(max_concurrent=2)
    a = running(reg, bg_spec("a"))
    reg.register_operation(bg_spec("b"))
    with pytest.raises(MaxConcurrentExceeded) as info:
        reg.register_operation(bg_spec("c"))
    assert (info.value.limit, info.value.active, info.value.kind) == (2, 2, "max_concurrent_exceeded")
    assert "raise max_concurrent" in str(info.value)
    reg.complete_operation(a, result(a))
    reg.register_operation(bg_spec("d"))
    assert reg.view().active_count == 2


def test_max_concurrent_zero_admits_nothing() -> None:
    reg = OpsLifecycleRegistry.with_config(max_concurrent=0)
    with pytest.raises(MaxConcurrentExceeded):
        reg.register_operation(bg_spec("a"))


def test_peer_ready_check_order() -> None:
    reg = OpsLifecycleRegistry()
    bg = running(reg, bg_spec("bg"))
    with pytest.raises(PeerNotExpected):
        reg.peer_ready(bg, handle())
    # A background op is not expected to have a peer even when terminal.
    reg.complete_operation(bg, result(bg))
    with pytest.raises(PeerNotExpected):
        reg.peer_ready(bg, handle())
    child = running(reg, child_spec("c"))
    reg.peer_ready(child, handle("member-x"))
    with pytest.raises(AlreadyPeerReady):
        reg.peer_ready(child, handle())
    # already_peer_ready wins over invalid_transition on a terminal child
    reg.mark_retired(child)
    with pytest.raises(AlreadyPeerReady):
        reg.peer_ready(child, handle())
    provisioning = child_spec("p")
    reg.register_operation(provisioning)
    with pytest.raises(InvalidTransition):
        reg.peer_ready(provisioning.id, handle())


def test_snapshot_includes_peer_handle_after_peer_ready() -> None:
    reg = OpsLifecycleRegistry()
    child = running(reg, child_spec("c"))
    first = reg.snapshot(child)
    assert first is not None and first.peer_handle is None and not first.peer_ready
    reg.peer_ready(child, handle("member-x"))
    second = reg.snapshot(child)
    assert second is not None and second.peer_ready
    assert second.peer_handle is not None and second.peer_handle.peer_name == "member-x"
    assert second.child_session_id == "child-session"


def test_snapshot_includes_timestamps() -> None:
    reg = OpsLifecycleRegistry()
    spec = bg_spec("timed")
    reg.register_operation(spec)
    s1 = reg.snapshot(spec.id)
    assert s1 is not None and s1.created_at_ms > 0
    assert (s1.started_at_ms, s1.completed_at_ms, s1.elapsed_ms) == (None, None, None)
    reg.provisioning_succeeded(spec.id)
    s2 = reg.snapshot(spec.id)
    assert s2 is not None and s2.started_at_ms is not None and s2.started_at_ms >= s2.created_at_ms
    reg.complete_operation(spec.id, result(spec.id))
    s3 = reg.snapshot(spec.id)
    assert s3 is not None and s3.completed_at_ms is not None and s3.elapsed_ms is not None
    assert s3.started_at_ms is not None and s3.completed_at_ms >= s3.started_at_ms


def test_report_progress_counts_reports() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("p"))
    reg.report_progress(oid)
    reg.report_progress(oid, OperationProgressUpdate("half", 50.0))
    reg.request_retire(oid)
    reg.report_progress(oid)
    snap = reg.snapshot(oid)
    assert snap is not None and snap.progress_count == 3


def test_terminate_owner_targets_only_active_operations_in_registration_order() -> None:
    reg = OpsLifecycleRegistry()
    done = running(reg, bg_spec("done"))
    reg.complete_operation(done, result(done))
    provisioning = bg_spec("z-prov")
    reg.register_operation(provisioning)
    run = running(reg, bg_spec("a-run"))
    retiring = running(reg, bg_spec("m-ret"))
    reg.request_retire(retiring)
    assert reg.terminate_owner("shutdown") == 3
    assert reg.snapshot(done).status is S.COMPLETED  # type: ignore[union-attr]
    seqs = [reg.snapshot(i).completion_seq for i in (provisioning.id, run, retiring)]  # type: ignore[union-attr]
    assert seqs == [2, 3, 4], "terminations are sequenced in registration order"
    assert reg.view().active_count == 0
    assert reg.terminate_owner("again") == 0


def test_collect_completed_drains_terminal_operations_in_completion_order() -> None:
    reg = OpsLifecycleRegistry()
    a = running(reg, bg_spec("a"))
    b = running(reg, bg_spec("b"))
    c = bg_spec("c")
    reg.register_operation(c)
    reg.fail_operation(b, "x")
    reg.complete_operation(a, result(a))
    collected = reg.collect_completed()
    assert collected == [(b, Failed("x")), (a, Completed(result(a)))]
    assert reg.snapshot(a) is None and reg.snapshot(b) is None
    assert reg.snapshot(c.id) is not None
    assert reg.collect_completed() == []
    with pytest.raises(NotFound):
        reg.register_watcher(a)
    # an id freed by collection may be registered again, as a new operation
    reg.register_operation(bg_spec("again", op_id=a))
    assert reg.snapshot(a).status is S.PROVISIONING  # type: ignore[union-attr]


def test_bounded_retention_evicts_oldest() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=3)
    ids = []
    for i in range(5):
        oid = running(reg, bg_spec(f"op-{i}"))
        reg.complete_operation(oid, result(oid))
        ids.append(oid)
    assert [reg.snapshot(i) is not None for i in ids] == [False, False, True, True, True]
    assert reg.view().completed_order == tuple(ids[2:])


def test_max_completed_zero_keeps_no_terminal_operation() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=0)
    oid = running(reg, bg_spec("a"))
    watch = reg.register_watcher(oid)
    reg.complete_operation(oid, result(oid))
    assert reg.snapshot(oid) is None
    assert watch.result(1) == Completed(result(oid))
    assert reg.completion_feed().watermark() == 1


def test_list_operations_sorted_by_display_name_then_registration() -> None:
    reg = OpsLifecycleRegistry()
    for name in ["b", "a", "b", "c"]:
        reg.register_operation(bg_spec(name))
    listed = reg.list_operations()
    assert [s.display_name for s in listed] == ["a", "b", "b", "c"]
    view_order = reg.view().operation_ids
    bs = [s.id for s in listed if s.display_name == "b"]
    assert bs == [i for i in view_order if i in bs]


def test_view_reports_registry_bookkeeping() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=5, max_concurrent=9)
    a = running(reg, bg_spec("a"))
    reg.register_operation(bg_spec("b"))
    reg.complete_operation(a, result(a))
    view = reg.view()
    assert view.active_count == 1 and view.completed_order == (a,)
    assert (view.next_completion_seq, view.watermark) == (2, 1)
    assert (view.max_completed, view.max_concurrent, view.wait_active) == (5, 9, False)


def test_invalid_arguments_are_rejected_before_any_change() -> None:
    reg = OpsLifecycleRegistry()
    with pytest.raises(ValueError, match="non-empty id"):
        reg.register_operation(bg_spec("x", op_id=""))
    with pytest.raises(ValueError, match="max_completed"):
        OpsLifecycleConfig(max_completed=-1)
    with pytest.raises(ValueError, match="max_concurrent"):
        OpsLifecycleConfig(max_concurrent=-2)
    assert reg.view().operation_ids == ()


def test_every_registry_error_is_an_ops_lifecycle_error_with_a_kind() -> None:
    reg = OpsLifecycleRegistry()
    with pytest.raises(OpsLifecycleError) as info:
        reg.complete_operation("ghost", result("ghost"))
    assert info.value.kind == "not_found"
