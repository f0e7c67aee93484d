"""Read-only views of a registry: one operation (``OperationLifecycleSnapshot``) and the
registry-wide bookkeeping (``RegistryView``). Both are immutable copies taken under the lock."""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_runtime.vocab.operation import (
    OperationKind,
    OperationPeerHandle,
    OperationStatus,
    TerminalOutcome,
)


@dataclass(frozen=True, slots=True)
class OperationLifecycleSnapshot:
    """One operation as callers see it. Times are Unix epoch milliseconds; ``elapsed_ms`` is
    measured on the monotonic clock from registration to the terminal transition.
    ``completion_seq`` is the feed sequence number of its terminal transition."""

    id: str
    kind: OperationKind
    display_name: str
    status: OperationStatus
    peer_ready: bool
    progress_count: int
    watcher_count: int
    terminal_outcome: TerminalOutcome | None
    child_session_id: str | None
    peer_handle: OperationPeerHandle | None
    created_at_ms: int
    started_at_ms: int | None
    completed_at_ms: int | None
    elapsed_ms: int | None
    completion_seq: int | None


@dataclass(frozen=True, slots=True)
class RegistryView:
    """Registry-wide state: tracked ids (registration order), the active count, the retention
    FIFO (completion order), the ``wait_all`` barrier and the sequence counter."""

    operation_ids: tuple[str, ...]
    active_count: int
    completed_order: tuple[str, ...]
    wait_request_id: str | None
    wait_operation_ids: tuple[str, ...]
    next_completion_seq: int
    watermark: int
    max_completed: int
    max_concurrent: int | None

    @property
    def wait_active(self) -> bool:
        return self.wait_request_id is not None
