"""Append-only journal records: the O(1) durable form of one registry call, and their replay.

A record describes what one durable call changed: evictions that happened since the previous
record without a durable write of their own (``pre_evicted``: retention after a cancelled
barrier or after recovery), the operations it made terminal (with their
full persisted state, which also yields their feed entries), the ids it evicted or collected,
the sequence counter afterwards and the consumer cursors at that moment. Recovery replays the
records written since the last full snapshot (``replay``). Wire format ``meerkat.ops.journal``
version 2 (version 1 is still read), documented in docs/ops-registry.md.

Version 2 adds ``registrations``: the registration number of each operation in ``terminated``.
Registration itself is not durable, so without it replay cannot tell in which order operations
registered after the snapshot were registered (version 1 records put them in termination order).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from meerkat_runtime.ops import wire
from meerkat_runtime.ops.cursors import EpochCursorSnapshot
from meerkat_runtime.ops.feed import CompletionEntry
from meerkat_runtime.ops.snapshot import (
    PersistedOperation,
    PersistedOpsSnapshot,
    cursors_from_json,
    cursors_to_json,
    operation_from_json,
    operation_to_json,
    registration_numbers,
    registrations_from_json,
)
from meerkat_runtime.store.records import OpsLifecycleRecords
from meerkat_runtime.vocab.errors import SnapshotFormatError

JOURNAL_FORMAT = "meerkat.ops.journal"
JOURNAL_VERSION = 2
OLDEST_JOURNAL_VERSION = 1
"""Version 1 records carry no ``registrations``."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """The effect of one durable call (``action``), in the order it happened."""

    epoch_id: str
    action: str
    pre_evicted: tuple[str, ...]
    terminated: tuple[PersistedOperation, ...]
    evicted: tuple[str, ...]
    collected: tuple[str, ...]
    next_completion_seq: int
    cursors: EpochCursorSnapshot

    def to_json(self) -> bytes:
        return wire.dump_document(
            {
                "format": JOURNAL_FORMAT,
                "version": JOURNAL_VERSION,
                "epoch_id": self.epoch_id,
                "action": self.action,
                "pre_evicted": list(self.pre_evicted),
                "terminated": [operation_to_json(op) for op in self.terminated],
                "registrations": [op.registration for op in self.terminated],
                "evicted": list(self.evicted),
                "collected": list(self.collected),
                "next_completion_seq": self.next_completion_seq,
                "cursors": cursors_to_json(self.cursors),
            }
        )

    @staticmethod
    def from_json(data: bytes | str, what: str = "ops journal record") -> JournalRecord:
        """Parse one record; raises ``SnapshotFormatError`` naming the field."""
        doc = wire.parse_document(data, what)
        version = wire.check_header(doc, JOURNAL_FORMAT, JOURNAL_VERSION, what, oldest=OLDEST_JOURNAL_VERSION)
        prefix = f"{what}: "
        try:
            listed = wire.req_list(doc, "terminated")
            numbers: list[int | None] = [None] * len(listed)
            if version >= 2:
                numbers = registrations_from_json(doc, len(listed), "terminated")
            terminated = tuple(
                operation_from_json(v, f"terminated[{i}].", registration=numbers[i]) for i, v in enumerate(listed)
            )
            record = JournalRecord(
                epoch_id=wire.req_str(doc, "epoch_id"),
                action=wire.req_str(doc, "action"),
                pre_evicted=tuple(
                    wire.as_str(v, f"pre_evicted[{i}]") for i, v in enumerate(wire.req_list(doc, "pre_evicted"))
                ),
                terminated=terminated,
                evicted=tuple(wire.as_str(v, f"evicted[{i}]") for i, v in enumerate(wire.req_list(doc, "evicted"))),
                collected=tuple(
                    wire.as_str(v, f"collected[{i}]") for i, v in enumerate(wire.req_list(doc, "collected"))
                ),
                next_completion_seq=wire.req_int(doc, "next_completion_seq", minimum=1),
                cursors=cursors_from_json(wire.req_obj(doc, "cursors"), "cursors."),
            )
        except SnapshotFormatError as exc:
            raise SnapshotFormatError(prefix + exc.message) from None
        for i, op in enumerate(record.terminated):
            if not op.status.is_terminal:
                raise SnapshotFormatError(f"{prefix}terminated[{i}].status: {op.status.value!r} is not terminal")
        return record


def replay(snapshot: PersistedOpsSnapshot, records: list[JournalRecord]) -> PersistedOpsSnapshot:
    """Apply ``records`` (oldest first) to ``snapshot``. The result has no wait barrier (waits
    are not durable). Raises ``SnapshotFormatError`` naming the first record that does not
    follow from the state before it."""
    if not records:
        return snapshot
    ops: dict[str, PersistedOperation] = {op.id: op for op in snapshot.operations}
    # Registration numbers: the snapshot's, then the records'. A record's operation the state
    # holds as non-terminal under another number is a later registration of that id (a restart
    # dropped the one the snapshot holds); a version 1 record's operation that is new comes after
    # every operation known so far (termination order).
    numbers = dict(zip(ops, registration_numbers(snapshot.operations), strict=True))
    top = max(numbers.values(), default=-1)
    order: dict[str, None] = dict.fromkeys(snapshot.completed_order)
    capacity = snapshot.config.feed_capacity
    entries: deque[CompletionEntry] = deque(snapshot.completion_entries, maxlen=capacity)
    next_seq = snapshot.next_completion_seq
    cursors = snapshot.cursors
    for n, record in enumerate(records):
        where = f"ops journal record #{n}"
        if record.epoch_id != snapshot.epoch_id:
            raise SnapshotFormatError(
                f"{where}: epoch {record.epoch_id!r} does not match the snapshot's epoch {snapshot.epoch_id!r}"
            )
        for removed in record.pre_evicted:
            _remove_terminal(ops, order, numbers, removed, where)
        for op in record.terminated:
            if op.completion_seq != next_seq:
                raise SnapshotFormatError(
                    f"{where}: operation {op.id!r} has completion seq {op.completion_seq}, expected {next_seq}"
                )
            known = ops.get(op.id)
            if known is not None and known.status.is_terminal:
                raise SnapshotFormatError(f"{where}: operation {op.id!r} is already terminal")
            number = op.registration
            if number is None:
                number = numbers[op.id] if known is not None else top + 1
            elif known is not None and number != numbers[op.id]:
                del ops[op.id]
            ops[op.id] = op
            numbers[op.id] = number
            top = max(top, number)
            order[op.id] = None
            entries.append(op.completion_entry())
            next_seq += 1
        for removed in (*record.evicted, *record.collected):
            _remove_terminal(ops, order, numbers, removed, where)
        if record.next_completion_seq != next_seq:
            raise SnapshotFormatError(
                f"{where}: next_completion_seq is {record.next_completion_seq}, expected {next_seq}"
            )
        cursors = cursors.merged(record.cursors)
    if len(set(numbers.values())) != len(numbers):
        raise SnapshotFormatError("ops journal: two tracked operations have the same registration number")
    operations = tuple(
        replace(op, registration=numbers[op.id]) for op in sorted(ops.values(), key=lambda op: numbers[op.id])
    )
    result = replace(
        snapshot,
        operations=operations,
        completed_order=tuple(order),
        active_count=sum(1 for op in ops.values() if op.status.is_active),
        wait_request_id=None,
        wait_operation_ids=(),
        next_completion_seq=next_seq,
        completion_entries=tuple(entries),
        cursors=cursors,
    )
    result.validate()
    return result


def _remove_terminal(
    ops: dict[str, PersistedOperation], order: dict[str, None], numbers: dict[str, int], removed: str, where: str
) -> None:
    known = ops.get(removed)
    if known is None or not known.status.is_terminal:
        raise SnapshotFormatError(f"{where}: removes {removed!r}, which is not a tracked terminal operation")
    del ops[removed]
    del order[removed]
    del numbers[removed]


def persisted_from_records(stored: OpsLifecycleRecords | None, runtime_id: str) -> PersistedOpsSnapshot | None:
    """The registry state a store holds for ``runtime_id``: its last snapshot with the journal
    records appended since replayed; ``None`` if nothing was ever written. Raises
    ``SnapshotFormatError`` naming a malformed or inconsistent snapshot or record."""
    if stored is None:
        return None
    if stored.snapshot is None:
        if stored.appended:
            raise SnapshotFormatError(
                f"ops state of runtime {runtime_id!r}: {len(stored.appended)} journal record(s) without a base snapshot"
            )
        return None
    base = PersistedOpsSnapshot.from_json(stored.snapshot)
    records = [
        JournalRecord.from_json(data, f"ops journal record #{n} of runtime {runtime_id!r}")
        for n, data in enumerate(stored.appended)
    ]
    return replay(base, records)
