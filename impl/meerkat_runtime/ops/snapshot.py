"""The full persisted state of an operation registry and its versioned JSON wire format.

``PersistedOpsSnapshot.to_json`` writes format ``meerkat.ops.snapshot`` version 3 (documented
in docs/ops-registry.md); ``from_json`` reads versions 1 to 3 back, refusing other versions and
malformed or self-contradicting documents with a ``SnapshotFormatError`` that names the field.
Version 2 stores each terminal outcome once: a feed entry of an operation the snapshot still
holds (same sequence number) writes ``terminal_outcome: null`` and takes the operation's.
Version 3 adds ``registrations``, each operation's registration number, which journal records
(version 2) refer to; an older snapshot numbers its operations by position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from meerkat_runtime.ops import wire
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.cursors import EpochCursorSnapshot
from meerkat_runtime.ops.feed import CompletionEntry
from meerkat_runtime.vocab.errors import SnapshotFormatError
from meerkat_runtime.vocab.ids import OperationId
from meerkat_runtime.vocab.operation import (
    OperationKind,
    OperationPeerHandle,
    OperationSpec,
    OperationStatus,
    TerminalOutcome,
    outcome_from_json,
    outcome_to_json,
)

SNAPSHOT_FORMAT = "meerkat.ops.snapshot"
SNAPSHOT_VERSION = 3
OLDEST_SNAPSHOT_VERSION = 1
"""Version 1 wrote every feed entry's outcome in full (a retained result twice); versions 1 and
2 have no ``registrations``."""

_PEER_READY_STATUSES = frozenset({OperationStatus.RUNNING, OperationStatus.RETIRING})


@dataclass(frozen=True, slots=True)
class PersistedOperation:
    """Everything persisted about one operation."""

    spec: OperationSpec
    status: OperationStatus
    peer_ready: bool
    progress_count: int
    watcher_count: int
    terminal_outcome: TerminalOutcome | None
    completion_seq: int | None
    peer_handle: OperationPeerHandle | None
    created_at_ms: int
    started_at_ms: int | None
    completed_at_ms: int | None
    elapsed_ms: int | None
    registration: int | None = field(default=None, compare=False)
    """The registry's registration number (registration order: larger is later; ``None`` if
    not known), written in a snapshot's and a journal record's ``registrations``: replay puts
    an operation registered after the snapshot in its place and tells a later registration of
    an id from the one the snapshot holds. Not compared: two states are equal if their
    operations are, in the same order."""

    @property
    def id(self) -> str:
        return self.spec.id

    def completion_entry(self) -> CompletionEntry:
        """The feed entry of this (terminal) operation."""
        if self.terminal_outcome is None or self.completion_seq is None:
            raise ValueError(f"operation {self.id!r} is not terminal; it has no completion entry")
        return CompletionEntry(
            self.completion_seq,
            self.id,
            self.spec.kind,
            self.spec.display_name,
            self.terminal_outcome,
            self.completed_at_ms,
        )

    def validate(self, path: str) -> None:
        """Per-operation invariants; raises ``SnapshotFormatError`` naming ``path``."""
        status, outcome = self.status, self.terminal_outcome
        if status is OperationStatus.ABSENT:
            raise SnapshotFormatError(f"{path}status: a tracked operation cannot be 'absent'")
        if status.is_terminal:
            if outcome is None or outcome.status is not status:
                raise SnapshotFormatError(
                    f"{path}terminal_outcome: status {status.value!r} needs a matching outcome, got {outcome!r}"
                )
            if self.completion_seq is None or self.completion_seq < 1:
                raise SnapshotFormatError(f"{path}completion_seq: a terminal operation needs a sequence number >= 1")
        else:
            if outcome is not None:
                raise SnapshotFormatError(
                    f"{path}terminal_outcome: non-terminal status {status.value!r} has an outcome"
                )
            if self.completion_seq is not None:
                raise SnapshotFormatError(f"{path}completion_seq: non-terminal status {status.value!r} has a sequence")
        if self.peer_ready and (
            self.spec.kind is not OperationKind.MOB_MEMBER_CHILD
            or not (status in _PEER_READY_STATUSES or status.is_terminal)
        ):
            raise SnapshotFormatError(
                f"{path}peer_ready: only a running/retiring/terminal mob_member_child can be peer-ready"
            )


@dataclass(frozen=True, slots=True)
class PersistedOpsSnapshot:
    """A registry's full state: operations (registration order), retention FIFO, barrier,
    sequence counter, feed entries, epoch id and consumer cursors."""

    epoch_id: str
    config: OpsLifecycleConfig
    operations: tuple[PersistedOperation, ...]
    completed_order: tuple[str, ...]
    active_count: int
    wait_request_id: str | None
    wait_operation_ids: tuple[str, ...]
    next_completion_seq: int
    completion_entries: tuple[CompletionEntry, ...]
    cursors: EpochCursorSnapshot

    def operation(self, operation_id: str) -> PersistedOperation | None:
        for op in self.operations:
            if op.id == operation_id:
                return op
        return None

    @property
    def operation_ids(self) -> tuple[str, ...]:
        return tuple(op.id for op in self.operations)

    def validate(self) -> None:
        """Cross-field invariants; raises ``SnapshotFormatError`` naming the first violation."""
        if not self.epoch_id:
            raise SnapshotFormatError("field 'epoch_id' must be a non-empty string")
        if self.next_completion_seq < 1:
            raise SnapshotFormatError("field 'next_completion_seq' must be >= 1")
        by_id: dict[str, PersistedOperation] = {}
        seqs: set[int] = set()
        for i, op in enumerate(self.operations):
            path = f"operations[{i}]."
            if op.id in by_id:
                raise SnapshotFormatError(f"{path}spec.id: operation {op.id!r} appears twice")
            op.validate(path)
            if op.completion_seq is not None:
                if op.completion_seq >= self.next_completion_seq or op.completion_seq in seqs:
                    raise SnapshotFormatError(
                        f"{path}completion_seq: {op.completion_seq} is reused or not below "
                        f"next_completion_seq {self.next_completion_seq}"
                    )
                seqs.add(op.completion_seq)
            by_id[op.id] = op
        active = sum(1 for op in self.operations if op.status.is_active)
        if active != self.active_count:
            raise SnapshotFormatError(f"field 'active_count' is {self.active_count} but {active} operations are active")
        terminal_ids = {op.id for op in self.operations if op.status.is_terminal}
        if len(set(self.completed_order)) != len(self.completed_order) or set(self.completed_order) != terminal_ids:
            raise SnapshotFormatError("field 'completed_order' must list every tracked terminal operation exactly once")
        order_seqs = [by_id[i].completion_seq or 0 for i in self.completed_order]
        if order_seqs != sorted(order_seqs):
            raise SnapshotFormatError("field 'completed_order' must be in completion (sequence) order")
        if self.wait_request_id is None:
            if self.wait_operation_ids:
                raise SnapshotFormatError("field 'wait_operation_ids' must be empty without a wait_request_id")
        else:
            members = self.wait_operation_ids
            if len(set(members)) != len(members) or any(m not in by_id for m in members):
                raise SnapshotFormatError("field 'wait_operation_ids' must list distinct, tracked operations")
        previous = 0
        for i, entry in enumerate(self.completion_entries):
            if entry.seq <= previous:
                raise SnapshotFormatError(f"completion_entries[{i}].seq: {entry.seq} is not above {previous}")
            previous = entry.seq
        if previous != self.next_completion_seq - 1:
            raise SnapshotFormatError(
                f"completion_entries: the last entry's seq ({previous}) must be next_completion_seq - 1 "
                f"({self.next_completion_seq - 1})"
            )

    # --- wire format ------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "epoch_id": self.epoch_id,
            "config": {"max_completed": self.config.max_completed, "max_concurrent": self.config.max_concurrent},
            "operations": [operation_to_json(op) for op in self.operations],
            "registrations": [op.registration for op in self.operations],
            "completed_order": list(self.completed_order),
            "active_count": self.active_count,
            "wait": None
            if self.wait_request_id is None
            else {"wait_request_id": self.wait_request_id, "operation_ids": list(self.wait_operation_ids)},
            "next_completion_seq": self.next_completion_seq,
            "completion_entries": self._entries_to_json(),
            "cursors": cursors_to_json(self.cursors),
        }

    def _entries_to_json(self) -> list[dict[str, Any]]:
        """Feed entries; an entry whose operation is held (same seq, same outcome) refers to it."""
        held = {op.completion_seq: op for op in self.operations if op.completion_seq is not None}
        out = []
        for entry in self.completion_entries:
            doc = entry_to_json(entry, with_outcome=False)
            op = held.get(entry.seq)
            if op is None or op.id != entry.operation_id or op.terminal_outcome != entry.terminal_outcome:
                doc["terminal_outcome"] = outcome_to_json(entry.terminal_outcome)
            out.append(doc)
        return out

    def to_json(self) -> bytes:
        return wire.dump_document(self.to_document())

    @staticmethod
    def from_json(data: bytes | str) -> PersistedOpsSnapshot:
        """Parse and validate; raises ``SnapshotFormatError`` naming what is wrong."""
        doc = wire.parse_document(data, "ops snapshot")
        version = wire.check_header(
            doc, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, "ops snapshot", oldest=OLDEST_SNAPSHOT_VERSION
        )
        config_doc = wire.req_obj(doc, "config")
        max_completed = wire.req_int(config_doc, "max_completed", "config.")
        max_concurrent = wire.opt_int(config_doc, "max_concurrent", "config.")
        wait = wire.opt_obj(doc, "wait")
        wait_request_id = None if wait is None else wire.req_str(wait, "wait_request_id", "wait.")
        wait_ids: tuple[str, ...] = ()
        if wait is not None:
            wait_ids = tuple(
                wire.as_str(v, f"wait.operation_ids[{i}]")
                for i, v in enumerate(wire.req_list(wait, "operation_ids", "wait."))
            )
        listed = wire.req_list(doc, "operations")
        numbers: list[int | None] = list(range(len(listed)))
        if version >= 3:
            numbers = registrations_from_json(doc, len(listed), "operations")
            known = [n for n in numbers if n is not None]
            if any(a >= b for a, b in itertools.pairwise(known)):
                raise SnapshotFormatError("field 'registrations' must increase: operations are in registration order")
        operations = tuple(
            operation_from_json(v, f"operations[{i}].", registration=numbers[i]) for i, v in enumerate(listed)
        )
        held = {op.completion_seq: op for op in operations if op.completion_seq is not None and version >= 2}
        snapshot = PersistedOpsSnapshot(
            epoch_id=wire.req_str(doc, "epoch_id"),
            config=OpsLifecycleConfig(max_completed, max_concurrent),
            operations=operations,
            completed_order=tuple(
                wire.as_str(v, f"completed_order[{i}]") for i, v in enumerate(wire.req_list(doc, "completed_order"))
            ),
            active_count=wire.req_int(doc, "active_count"),
            wait_request_id=wait_request_id,
            wait_operation_ids=wait_ids,
            next_completion_seq=wire.req_int(doc, "next_completion_seq", minimum=1),
            completion_entries=tuple(
                entry_from_json(v, f"completion_entries[{i}].", held)
                for i, v in enumerate(wire.req_list(doc, "completion_entries"))
            ),
            cursors=cursors_from_json(wire.req_obj(doc, "cursors"), "cursors."),
        )
        snapshot.validate()
        return snapshot


# --- pieces shared with the journal format ------------------------------------------------


def spec_to_json(spec: OperationSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "kind": spec.kind.value,
        "owner_session_id": spec.owner_session_id,
        "display_name": spec.display_name,
        "source_label": spec.source_label,
        "child_session_id": spec.child_session_id,
        "expect_peer_channel": spec.expect_peer_channel,
    }


def spec_from_json(value: Any, path: str) -> OperationSpec:
    doc = wire.as_obj(value, path.rstrip("."))
    return OperationSpec(
        id=OperationId(wire.req_str(doc, "id", path)),
        kind=wire.req_enum(doc, "kind", OperationKind, path),
        owner_session_id=wire.req_str(doc, "owner_session_id", path, allow_empty=True),
        display_name=wire.req_str(doc, "display_name", path, allow_empty=True),
        source_label=wire.req_str(doc, "source_label", path, allow_empty=True),
        child_session_id=wire.opt_str(doc, "child_session_id", path),
        expect_peer_channel=wire.req_bool(doc, "expect_peer_channel", path),
    )


def _outcome_from_json(value: Any, path: str) -> TerminalOutcome | None:
    if value is None:
        return None
    try:
        return outcome_from_json(value)
    except ValueError as exc:
        raise SnapshotFormatError(f"field {path!r} is not a terminal outcome: {exc}") from None


def _handle_to_json(handle: OperationPeerHandle | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    return {"peer_name": handle.peer_name, "address": handle.address, "peer_id": handle.peer_id}


def _handle_from_json(doc: dict[str, Any] | None, path: str) -> OperationPeerHandle | None:
    if doc is None:
        return None
    return OperationPeerHandle(
        wire.req_str(doc, "peer_name", path),
        wire.req_str(doc, "address", path, allow_empty=True),
        wire.opt_str(doc, "peer_id", path),
    )


def operation_to_json(op: PersistedOperation) -> dict[str, Any]:
    return {
        "spec": spec_to_json(op.spec),
        "status": op.status.value,
        "peer_ready": op.peer_ready,
        "progress_count": op.progress_count,
        "watcher_count": op.watcher_count,
        "terminal_outcome": None if op.terminal_outcome is None else outcome_to_json(op.terminal_outcome),
        "completion_seq": op.completion_seq,
        "peer_handle": _handle_to_json(op.peer_handle),
        "created_at_ms": op.created_at_ms,
        "started_at_ms": op.started_at_ms,
        "completed_at_ms": op.completed_at_ms,
        "elapsed_ms": op.elapsed_ms,
    }


def registrations_from_json(doc: dict[str, Any], count: int, listed: str) -> list[int | None]:
    """The ``registrations`` field: one integer >= 0 (or null: unknown) per ``listed`` entry."""
    given = wire.req_list(doc, "registrations")
    if len(given) != count:
        raise SnapshotFormatError(f"field 'registrations' has {len(given)} entries for {count} in {listed!r}")
    return [wire.as_opt_int(v, f"registrations[{i}]") for i, v in enumerate(given)]


def registration_numbers(operations: tuple[PersistedOperation, ...]) -> tuple[int, ...]:
    """The registration number of each of ``operations`` (listed in registration order): the
    ones they carry if all carry one and they increase down the list, their positions otherwise."""
    numbers: list[int] = []
    for op in operations:
        number = op.registration
        if number is None or (numbers and number <= numbers[-1]):
            return tuple(range(len(operations)))
        numbers.append(number)
    return tuple(numbers)


def operation_from_json(value: Any, path: str, *, registration: int | None = None) -> PersistedOperation:
    doc = wire.as_obj(value, path.rstrip("."))
    op = PersistedOperation(
        spec=spec_from_json(wire.field(doc, "spec", path), path + "spec."),
        status=wire.req_enum(doc, "status", OperationStatus, path),
        peer_ready=wire.req_bool(doc, "peer_ready", path),
        progress_count=wire.req_int(doc, "progress_count", path),
        watcher_count=wire.req_int(doc, "watcher_count", path),
        terminal_outcome=_outcome_from_json(wire.field(doc, "terminal_outcome", path), path + "terminal_outcome"),
        completion_seq=wire.opt_int(doc, "completion_seq", path, minimum=1),
        peer_handle=_handle_from_json(wire.opt_obj(doc, "peer_handle", path), path + "peer_handle."),
        created_at_ms=wire.req_int(doc, "created_at_ms", path),
        started_at_ms=wire.opt_int(doc, "started_at_ms", path),
        completed_at_ms=wire.opt_int(doc, "completed_at_ms", path),
        elapsed_ms=wire.opt_int(doc, "elapsed_ms", path),
        registration=registration,
    )
    op.validate(path)
    return op


def entry_to_json(entry: CompletionEntry, *, with_outcome: bool = True) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "operation_id": entry.operation_id,
        "kind": entry.kind.value,
        "display_name": entry.display_name,
        "terminal_outcome": outcome_to_json(entry.terminal_outcome) if with_outcome else None,
        "completed_at_ms": entry.completed_at_ms,
    }


def entry_from_json(value: Any, path: str, held: dict[int, PersistedOperation] | None = None) -> CompletionEntry:
    """A feed entry; with ``held`` (version 2: the snapshot's terminal operations by sequence
    number) a null ``terminal_outcome`` is the outcome of the operation with the entry's seq."""
    doc = wire.as_obj(value, path.rstrip("."))
    seq = wire.req_int(doc, "seq", path, minimum=1)
    operation_id = wire.req_str(doc, "operation_id", path)
    outcome = _outcome_from_json(wire.field(doc, "terminal_outcome", path), path + "terminal_outcome")
    if outcome is None:
        op = None if held is None else held.get(seq)
        if op is None or op.id != operation_id:
            raise SnapshotFormatError(
                f"field {path + 'terminal_outcome'!r} is null but no operation {operation_id!r} "
                f"with completion_seq {seq} is in 'operations' to take it from"
            )
        outcome = op.terminal_outcome
        if outcome is None:  # pragma: no cover - validated: a completion_seq implies an outcome
            raise SnapshotFormatError(f"field {path + 'terminal_outcome'!r}: operation {operation_id!r} has none")
    return CompletionEntry(
        seq=seq,
        operation_id=operation_id,
        kind=wire.req_enum(doc, "kind", OperationKind, path),
        display_name=wire.req_str(doc, "display_name", path, allow_empty=True),
        terminal_outcome=outcome,
        completed_at_ms=wire.opt_int(doc, "completed_at_ms", path),
    )


def cursors_to_json(cursors: EpochCursorSnapshot) -> dict[str, Any]:
    return {
        "agent_applied": cursors.agent_applied,
        "runtime_observed": cursors.runtime_observed,
        "runtime_injected": cursors.runtime_injected,
    }


def cursors_from_json(doc: dict[str, Any], path: str) -> EpochCursorSnapshot:
    return EpochCursorSnapshot(
        wire.req_int(doc, "agent_applied", path),
        wire.req_int(doc, "runtime_observed", path),
        wire.req_int(doc, "runtime_injected", path),
    )
