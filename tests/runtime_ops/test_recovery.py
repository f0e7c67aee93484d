"""Recovery from a persisted snapshot: what survives, what is dropped, what is preserved."""

from __future__ import annotations

from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.vocab.operation import Completed, OperationStatus

from tests.runtime_ops.helpers import bg_spec, child_spec, completed, handle, result, running


def recover(reg: OpsLifecycleRegistry, epoch: str = "epoch-1") -> OpsLifecycleRegistry:
    """Capture, go through the wire format, rebuild."""
    snap = reg.capture_persistence_snapshot(epoch, EpochCursorState())
    return OpsLifecycleRegistry.from_recovered(PersistedOpsSnapshot.from_json(snap.to_json()))


def test_recovered_registry_contains_terminal_completion_entries() -> None:
    reg = OpsLifecycleRegistry()
    ids = [running(reg, bg_spec(str(i))) for i in range(3)]
    for oid in ids[:2]:
        reg.complete_operation(oid, result(oid))
    back = recover(reg)
    assert [e.operation_id for e in back.completion_feed().list_since(0).entries] == ids[:2]


def test_recovered_registry_strips_non_terminal_operations() -> None:
    reg = OpsLifecycleRegistry()
    done = completed(reg, "terminal")
    live = running(reg, bg_spec("in-progress"))
    provisioning = bg_spec("prov")
    reg.register_operation(provisioning)
    back = recover(reg)
    assert back.snapshot(done) is not None
    assert back.snapshot(live) is None and back.snapshot(provisioning.id) is None
    assert back.view().active_count == 0


def test_recovered_terminal_operations_keep_outcome_spec_seq_and_stamps() -> None:
    reg = OpsLifecycleRegistry()
    child = running(reg, child_spec("child"))
    reg.peer_ready(child, handle("m"))
    reg.report_progress(child)
    reg.complete_operation(child, result(child, "out"))
    before = reg.snapshot(child)
    after = recover(reg).snapshot(child)
    assert after == before
    assert after is not None and after.terminal_outcome == Completed(result(child, "out"))
    assert after.status is OperationStatus.COMPLETED and after.completion_seq == 1


def test_recovered_feed_list_since_persisted_cursor_returns_unsurfaced_entries() -> None:
    reg = OpsLifecycleRegistry()
    completed(reg, "a")
    completed(reg, "b")
    feed = recover(reg).completion_feed()
    batch = feed.list_since(0)
    assert len(batch.entries) == 2
    assert feed.list_since(batch.watermark).entries == ()


def test_recovered_registry_clears_wait_state_and_accepts_new_operations() -> None:
    reg = OpsLifecycleRegistry()
    done = completed(reg, "done")
    pending = running(reg, bg_spec("pending"))
    handle_ = reg.wait_all([done, pending])
    snap = reg.capture_persistence_snapshot("e")
    assert snap.wait_request_id == handle_.wait_request_id
    back = OpsLifecycleRegistry.from_recovered(snap)
    assert not back.view().wait_active
    back.register_operation(bg_spec("post-recovery"))
    assert back.wait_all([done]).done()
    handle_.cancel()


def test_recovered_epoch_and_cursors_match_the_persisted_ones() -> None:
    snap = OpsLifecycleRegistry().capture_persistence_snapshot("epoch-x", EpochCursorState(5, 3, 2))
    again = PersistedOpsSnapshot.from_json(snap.to_json())
    assert again.epoch_id == "epoch-x"
    cursors = EpochCursorState.from_snapshot(again.cursors)
    assert (cursors.agent_applied, cursors.runtime_observed, cursors.runtime_injected) == (5, 3, 2)


def test_recovered_feed_watermark_and_next_seq_are_preserved() -> None:
    reg = OpsLifecycleRegistry()
    for i in range(3):
        completed(reg, str(i))
    back = recover(reg)
    assert back.completion_feed().watermark() == 3
    oid = completed(back, "after")
    assert back.snapshot(oid).completion_seq == 4  # type: ignore[union-attr]
    assert [e.seq for e in back.completion_feed().list_since(0).entries] == [1, 2, 3, 4]


def test_sequence_numbers_stay_monotonic_across_collection_and_recovery() -> None:
    reg = OpsLifecycleRegistry()
    completed(reg, "a")
    completed(reg, "b")
    reg.collect_completed()
    back = recover(reg)
    assert back.view().operation_ids == () and back.completion_feed().watermark() == 2
    oid = completed(back, "c")
    assert back.snapshot(oid).completion_seq == 3  # type: ignore[union-attr]


def test_snapshot_captures_feed_entries_beyond_retention() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=2)
    for i in range(4):
        completed(reg, f"evict-{i}")
    snap = reg.capture_persistence_snapshot("e")
    assert len(snap.completion_entries) == 4
    assert len(snap.operations) == 2
    back = OpsLifecycleRegistry.from_recovered(snap)
    assert len(back.completion_feed().list_since(0).entries) == 4
    assert len(back.view().operation_ids) == 2


def test_recovery_applies_retention_to_members_a_barrier_had_pinned() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=1)
    a, b, x = (running(reg, bg_spec(n)) for n in "abx")
    pending = reg.wait_all([a, b, x])
    reg.complete_operation(a, result(a))
    reg.complete_operation(b, result(b))
    snap = reg.capture_persistence_snapshot("e")
    assert snap.completed_order == (a, b)
    back = OpsLifecycleRegistry.from_recovered(snap)
    assert back.view().completed_order == (b,), "the barrier is gone, so retention applies"
    pending.cancel()


def test_recovery_can_override_the_configuration() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=4)
    ids = [completed(reg, str(i)) for i in range(4)]
    back = OpsLifecycleRegistry.from_recovered(reg.capture_persistence_snapshot("e"), OpsLifecycleConfig(2, 1))
    assert back.view().completed_order == tuple(ids[2:])
    assert back.config.max_concurrent == 1
