"""Shared builders for the operation-registry tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from meerkat_runtime.ops.journal import JournalRecord
from meerkat_runtime.ops.persistence import OpsDurableWrite
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.snapshot import PersistedOpsSnapshot
from meerkat_runtime.vocab.ids import OperationId
from meerkat_runtime.vocab.operation import (
    OperationKind,
    OperationPeerHandle,
    OperationResult,
    OperationSpec,
)

_ids = itertools.count()


def bg_spec(name: str = "op", op_id: str | None = None, owner: str = "session-1") -> OperationSpec:
    """A background tool operation with a fresh id, owned by session ``owner``."""
    oid = op_id if op_id is not None else f"op-{name}-{next(_ids)}"
    return OperationSpec(OperationId(oid), OperationKind.BACKGROUND_TOOL_OP, owner, name, "test")


def child_spec(name: str = "child", op_id: str | None = None) -> OperationSpec:
    """A mob-member child (expects a peer channel)."""
    oid = op_id if op_id is not None else f"op-{name}-{next(_ids)}"
    return OperationSpec(
        OperationId(oid), OperationKind.MOB_MEMBER_CHILD, "session-1", name, "test", "child-session", True
    )


def result(op_id: str, content: str = "done") -> OperationResult:
    return OperationResult(op_id, content, False, 42, 0)


def handle(name: str = "peer") -> OperationPeerHandle:
    return OperationPeerHandle(name, f"inproc://{name}", "peer-1")


def running(registry: OpsLifecycleRegistry, spec: OperationSpec) -> str:
    """Register ``spec`` and move it to Running; returns its id."""
    registry.register_operation(spec)
    registry.provisioning_succeeded(spec.id)
    return spec.id


def completed(registry: OpsLifecycleRegistry, name: str = "op") -> str:
    """Register, start and complete a background operation; returns its id."""
    oid = running(registry, bg_spec(name))
    registry.complete_operation(oid, result(oid, f"{name}-done"))
    return oid


@dataclass
class RecordingSink:
    """A persistence sink that keeps every write (record and full snapshot) and can be told
    to fail or be closed."""

    records: list[JournalRecord] = field(default_factory=list)
    snapshots: list[PersistedOpsSnapshot] = field(default_factory=list)
    fail_with: Exception | None = None
    closed: bool = False
    calls: int = 0

    def persist(self, write: OpsDurableWrite) -> None:
        self.calls += 1
        if self.closed:
            raise RuntimeError("ops persistence channel closed: recording sink closed")
        if self.fail_with is not None:
            raise self.fail_with
        self.records.append(write.record)
        self.snapshots.append(write.full_snapshot())

    def close(self) -> None:
        self.closed = True
