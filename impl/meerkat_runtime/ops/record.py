"""The registry's mutable per-operation record (private to the registry, guarded by its lock)."""

from __future__ import annotations

import time

from meerkat_runtime.ops.snapshot import PersistedOperation
from meerkat_runtime.ops.views import OperationLifecycleSnapshot
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import (
    OperationPeerHandle,
    OperationSpec,
    OperationStatus,
    TerminalOutcome,
)


class OpRecord:
    """One tracked operation. Wall-clock stamps derive from one wall anchor plus the monotonic
    clock, so ``created <= started <= completed`` always holds."""

    __slots__ = (
        "completed_at_ms",
        "completion_seq",
        "created_at_ms",
        "created_mono_ns",
        "elapsed_ms",
        "outcome",
        "peer_handle",
        "peer_ready",
        "progress_count",
        "reg_index",
        "spec",
        "started_at_ms",
        "status",
        "watchers",
    )

    def __init__(self, spec: OperationSpec, reg_index: int) -> None:
        self.spec = spec
        self.reg_index = reg_index
        self.status = OperationStatus.PROVISIONING
        self.outcome: TerminalOutcome | None = None
        self.peer_ready = False
        self.progress_count = 0
        self.watchers: list[OneShot[TerminalOutcome]] = []
        self.peer_handle: OperationPeerHandle | None = None
        self.created_mono_ns: int | None = time.monotonic_ns()
        self.created_at_ms = time.time_ns() // 1_000_000
        self.started_at_ms: int | None = None
        self.completed_at_ms: int | None = None
        self.elapsed_ms: int | None = None
        self.completion_seq: int | None = None

    def stamp_ms(self) -> int:
        """Current wall time in ms, measured from the creation anchor on the monotonic clock."""
        if self.created_mono_ns is None:
            return time.time_ns() // 1_000_000
        return self.created_at_ms + (time.monotonic_ns() - self.created_mono_ns) // 1_000_000

    def elapsed_now_ms(self) -> int | None:
        if self.created_mono_ns is None:
            return None
        return (time.monotonic_ns() - self.created_mono_ns) // 1_000_000

    def view(self) -> OperationLifecycleSnapshot:
        spec = self.spec
        return OperationLifecycleSnapshot(
            id=spec.id,
            kind=spec.kind,
            display_name=spec.display_name,
            status=self.status,
            peer_ready=self.peer_ready,
            progress_count=self.progress_count,
            watcher_count=len(self.watchers),
            terminal_outcome=self.outcome,
            child_session_id=spec.child_session_id,
            peer_handle=self.peer_handle,
            created_at_ms=self.created_at_ms,
            started_at_ms=self.started_at_ms,
            completed_at_ms=self.completed_at_ms,
            elapsed_ms=self.elapsed_ms,
            completion_seq=self.completion_seq,
        )

    def persisted(self) -> PersistedOperation:
        return PersistedOperation(
            spec=self.spec,
            status=self.status,
            peer_ready=self.peer_ready,
            progress_count=self.progress_count,
            watcher_count=len(self.watchers),
            terminal_outcome=self.outcome,
            completion_seq=self.completion_seq,
            peer_handle=self.peer_handle,
            created_at_ms=self.created_at_ms,
            started_at_ms=self.started_at_ms,
            completed_at_ms=self.completed_at_ms,
            elapsed_ms=self.elapsed_ms,
            registration=self.reg_index,
        )

    @classmethod
    def recovered(cls, op: PersistedOperation, reg_index: int) -> OpRecord:
        """A record rebuilt from persisted state (no watchers; stamps as persisted)."""
        rec = cls(op.spec, reg_index)
        rec.status = op.status
        rec.outcome = op.terminal_outcome
        rec.peer_ready = op.peer_ready
        rec.progress_count = op.progress_count
        rec.peer_handle = op.peer_handle
        rec.created_mono_ns = None
        rec.created_at_ms = op.created_at_ms
        rec.started_at_ms = op.started_at_ms
        rec.completed_at_ms = op.completed_at_ms
        rec.elapsed_ms = op.elapsed_ms
        rec.completion_seq = op.completion_seq
        return rec
