"""The versioned JSON wire formats: round trips, refused versions, malformed documents."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from meerkat_runtime.ops.cursors import EpochCursorSnapshot, EpochCursorState
from meerkat_runtime.ops.journal import JournalRecord, persisted_from_records
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import SNAPSHOT_FORMAT, PersistedOpsSnapshot, entry_to_json
from meerkat_runtime.store.records import OpsLifecycleRecords
from meerkat_runtime.vocab.errors import SnapshotFormatError

from tests.runtime_ops.helpers import RecordingSink, bg_spec, child_spec, completed, handle, result, running


def rich_snapshot() -> PersistedOpsSnapshot:
    """A snapshot touching every field: all statuses, a peer handle, a barrier, cursors."""
    reg = OpsLifecycleRegistry.with_config(max_completed=8, max_concurrent=20)
    child = running(reg, child_spec("child"))
    reg.peer_ready(child, handle("member"))
    reg.report_progress(child)
    completed(reg, "done")
    f = running(reg, bg_spec("f"))
    reg.fail_operation(f, "boom")
    c = bg_spec("c")
    reg.register_operation(c)
    reg.cancel_operation(c.id, None)
    r = running(reg, bg_spec("r"))
    reg.request_retire(r)
    reg.register_watcher(r)
    reg.register_operation(bg_spec("prov"))
    pending = reg.wait_all([r, f])
    snap = reg.capture_persistence_snapshot("epoch-1", EpochCursorState(5, 3, 2))
    pending.cancel()
    return snap


def test_snapshot_round_trips_exactly() -> None:
    snap = rich_snapshot()
    data = snap.to_json()
    again = PersistedOpsSnapshot.from_json(data)
    assert again == snap
    assert again.to_json() == data
    doc = json.loads(data)
    assert (doc["format"], doc["version"]) == (SNAPSHOT_FORMAT, 3)
    assert doc["wait"]["operation_ids"] == list(snap.wait_operation_ids)
    assert doc["registrations"] == list(range(len(snap.operations)))


def test_version_1_snapshots_with_every_outcome_in_full_are_still_read() -> None:
    snap = rich_snapshot()
    doc = json.loads(snap.to_json())
    assert all(e["terminal_outcome"] is None for e in doc["completion_entries"])  # each held: referenced
    doc["version"] = 1
    doc["completion_entries"] = [entry_to_json(e) for e in snap.completion_entries]
    assert PersistedOpsSnapshot.from_json(json.dumps(doc)) == snap
    doc["completion_entries"][0]["terminal_outcome"] = None  # version 1 has no references
    with pytest.raises(SnapshotFormatError, match=r"completion_entries\[0\].terminal_outcome"):
        PersistedOpsSnapshot.from_json(json.dumps(doc))


def test_a_feed_entry_refers_only_to_the_operation_with_its_seq() -> None:
    doc = json.loads(rich_snapshot().to_json())
    doc["completion_entries"][0]["seq"], doc["completion_entries"][1]["seq"] = (
        doc["completion_entries"][1]["seq"],
        doc["completion_entries"][0]["seq"],
    )
    with pytest.raises(SnapshotFormatError, match=r"completion_entries\[0\].terminal_outcome' is null but no"):
        PersistedOpsSnapshot.from_json(json.dumps(doc))


def test_snapshot_preserves_cursor_values_and_epoch() -> None:
    reg = OpsLifecycleRegistry()
    snap = reg.capture_persistence_snapshot("epoch-7", EpochCursorState(5, 3, 2))
    assert snap.cursors == EpochCursorSnapshot(5, 3, 2)
    assert snap.epoch_id == "epoch-7"
    assert PersistedOpsSnapshot.from_json(snap.to_json()).cursors == EpochCursorSnapshot(5, 3, 2)
    assert reg.capture_persistence_snapshot("e", EpochCursorSnapshot(1, 1, 1)).cursors == EpochCursorSnapshot(1, 1, 1)
    assert reg.capture_persistence_snapshot("e").cursors == EpochCursorSnapshot()


def test_serde_round_trip_of_a_completed_operation() -> None:
    reg = OpsLifecycleRegistry()
    oid = completed(reg, "serde")
    restored = PersistedOpsSnapshot.from_json(reg.capture_persistence_snapshot("e").to_json())
    assert len(restored.completion_entries) == 1 and restored.completion_entries[0].operation_id == oid
    assert restored.operation_ids == (oid,)


def mutate(path: list[Any], value: Any, *, delete: bool = False) -> bytes:
    doc = json.loads(rich_snapshot().to_json())
    target = doc
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("path", "value", "delete", "message"),
    [
        (["version"], 4, False, "unsupported version 4 (this runtime reads versions 1 to 3)"),
        (["version"], 0, False, "unsupported version 0"),
        (["version"], "1", False, "'version' must be an integer"),
        (["format"], "other", False, "field 'format'"),
        (["epoch_id"], 3, False, "'epoch_id'"),
        (["operations", 0, "status"], "exploded", False, "operations[0].status"),
        (["operations", 0, "spec", "kind"], "robot", False, "operations[0].spec.kind"),
        (["operations", 0, "progress_count"], -1, False, "operations[0].progress_count"),
        (["operations", 1, "terminal_outcome"], None, False, "operations[1].terminal_outcome"),
        (["operations", 1, "terminal_outcome", "outcome_type"], "failed", False, "operations[1].terminal_outcome"),
        (["operations", 0, "peer_handle"], 7, False, "operations[0].peer_handle"),
        (["operations", 0, "created_at_ms"], None, True, "operations[0].created_at_ms' is missing"),
        (["completion_entries", 0, "seq"], 0, False, "completion_entries[0].seq"),
        (["completed_order"], [], False, "completed_order"),
        (["active_count"], 9, False, "active_count"),
        (["next_completion_seq"], 2, False, "next_completion_seq"),
        (["cursors", "runtime_observed"], -4, False, "cursors.runtime_observed"),
        (["config", "max_completed"], "many", False, "config.max_completed"),
        (["wait", "operation_ids"], ["nope"], False, "wait_operation_ids"),
        (["registrations", 1], 0, False, "'registrations' must increase"),
        (["registrations", 0], -1, False, "registrations[0]"),
        (["registrations"], [0], False, "'registrations' has 1 entries"),
        (["registrations"], None, True, "'registrations' is missing"),
    ],
)
def test_malformed_snapshots_are_refused_naming_the_field(
    path: list[Any], value: Any, delete: bool, message: str
) -> None:
    with pytest.raises(SnapshotFormatError) as info:
        PersistedOpsSnapshot.from_json(mutate(path, value, delete=delete))
    assert message in str(info.value)
    assert info.value.kind == "snapshot_format"


@pytest.mark.parametrize("data", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_non_object_documents_are_refused(data: bytes) -> None:
    with pytest.raises(SnapshotFormatError, match="ops snapshot"):
        PersistedOpsSnapshot.from_json(data)


def test_journal_record_round_trips_and_refuses_unknown_versions() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=1)
    sink = RecordingSink()
    reg.attach_persistence(sink, "epoch-1", EpochCursorState(1, 2, 3))
    a = running(reg, bg_spec("a"))
    b = running(reg, child_spec("b"))
    reg.peer_ready(b, handle())
    reg.complete_operation(a, result(a))
    reg.terminate_owner("bye")
    record = sink.records[-1]
    assert record.evicted == (a,) and [op.id for op in record.terminated] == [b]
    assert JournalRecord.from_json(record.to_json()) == record
    doc = json.loads(record.to_json())
    doc["version"] = 9
    with pytest.raises(SnapshotFormatError, match="unsupported version 9"):
        JournalRecord.from_json(json.dumps(doc))
    doc["version"] = 1
    doc["terminated"][0]["status"] = "running"
    doc["terminated"][0]["terminal_outcome"] = None
    doc["terminated"][0]["completion_seq"] = None
    with pytest.raises(SnapshotFormatError, match=r"terminated\[0\].status"):
        JournalRecord.from_json(json.dumps(doc))
    doc = json.loads(record.to_json())
    del doc["cursors"]
    with pytest.raises(SnapshotFormatError, match="'cursors' is missing"):
        JournalRecord.from_json(json.dumps(doc))


def test_validate_catches_hand_built_contradictions() -> None:
    snap = rich_snapshot()

    with pytest.raises(SnapshotFormatError, match="appears twice"):
        replace(snap, operations=snap.operations + snap.operations[:1]).validate()
    with pytest.raises(SnapshotFormatError, match=r"completion \(sequence\) order"):
        replace(snap, completed_order=tuple(reversed(snap.completed_order))).validate()
    with pytest.raises(SnapshotFormatError, match="wait_operation_ids"):
        replace(snap, wait_request_id=None).validate()
    with pytest.raises(SnapshotFormatError):
        OpsLifecycleRegistry.from_recovered(replace(snap, next_completion_seq=1))


def test_version_2_snapshots_and_version_1_records_are_still_read() -> None:
    """Documents of the previous formats have no ``registrations``: a snapshot numbers its
    operations by position and a record's new operations come after the known ones, in the
    order they finished (what the previous readers did); the current ones keep registration
    order."""
    reg = OpsLifecycleRegistry.with_config(max_completed=8)
    sink = RecordingSink()
    reg.attach_persistence(sink, "epoch-1", EpochCursorState())
    running(reg, bg_spec("same", op_id="first"))
    base = reg.capture_persistence_snapshot("epoch-1")
    for oid in ("a", "b"):
        running(reg, bg_spec("same", op_id=oid))
    for oid in ("b", "first", "a"):
        reg.complete_operation(oid, result(oid))
    records = [record.to_json() for record in sink.records]
    current = persisted_from_records(OpsLifecycleRecords(base.to_json(), tuple(records)), "rt")
    assert current is not None and current.operation_ids == ("first", "a", "b")

    old_snapshot = json.loads(base.to_json())
    old_snapshot["version"] = 2
    del old_snapshot["registrations"]
    old_records = []
    for data in records:
        doc = json.loads(data)
        doc["version"] = 1
        del doc["registrations"]
        old_records.append(json.dumps(doc).encode())
    old = persisted_from_records(OpsLifecycleRecords(json.dumps(old_snapshot).encode(), tuple(old_records)), "rt")
    assert old is not None and old.operation_ids == ("first", "b", "a")
    assert old.completed_order == current.completed_order == ("b", "first", "a")
