"""Plain-data views of the runtime registry, in the shape of ``OpsMachine.observe``.

Runtime operation ids are ``op-<model id>``; outcomes become ``(kind, payload)`` pairs such as
``("completed", "r1")`` or ``("cancelled", None)``.
"""

from __future__ import annotations

from typing import Any

from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.operation import (
    Aborted,
    Cancelled,
    Completed,
    Failed,
    OperationPeerHandle,
    Retired,
    TerminalOutcome,
    Terminated,
)

OP_PREFIX = "op-"


def runtime_op_id(model_id: int) -> str:
    """The runtime id standing for model id ``model_id``."""
    return f"{OP_PREFIX}{model_id}"


def model_op_id(runtime_id: str) -> int | str:
    """The model id of a runtime id; an id the harness never minted is returned unchanged
    (so it shows up as a difference instead of crashing the comparison)."""
    if runtime_id.startswith(OP_PREFIX) and runtime_id[len(OP_PREFIX) :].isdigit():
        return int(runtime_id[len(OP_PREFIX) :])
    return runtime_id


def outcome_pair(outcome: TerminalOutcome | None) -> tuple[str, str | None] | None:
    """``(kind, payload)`` of a runtime terminal outcome (``None`` stays ``None``)."""
    match outcome:
        case None:
            return None
        case Completed(result=result):
            return ("completed", result.content)
        case Failed(error=error):
            return ("failed", error)
        case Aborted(reason=reason):
            return ("aborted", reason)
        case Cancelled(reason=reason):
            return ("cancelled", reason)
        case Retired():
            return ("retired", None)
        case Terminated(reason=reason):
            return ("terminated", reason)
    raise TypeError(f"not a terminal outcome: {outcome!r}")


def outcome_pairs(pairs: Any) -> tuple[tuple[int | str, tuple[str, str | None] | None], ...]:
    """``((model id, (kind, payload)), ...)`` from runtime ``(id, outcome)`` pairs."""
    return tuple((model_op_id(oid), outcome_pair(outcome)) for oid, outcome in pairs)


def handle_view(handle: OperationPeerHandle | None) -> tuple[str, str, str | None] | None:
    """A peer handle as plain data: ``(peer_name, address, peer_id)``."""
    return None if handle is None else (handle.peer_name, handle.address, handle.peer_id)


def observe_registry(registry: OpsLifecycleRegistry) -> dict[str, Any]:
    """What an observer of ``registry`` sees, shaped like ``OpsMachine.observe``."""
    view = registry.view()
    ops: dict[int | str, dict[str, Any]] = {}
    for snap in sorted(registry.list_operations(), key=lambda s: str(model_op_id(s.id))):
        ops[model_op_id(snap.id)] = {
            "status": snap.status.value,
            "kind": snap.kind.value,
            "peer_ready": snap.peer_ready,
            "progress_count": snap.progress_count,
            "watcher_count": snap.watcher_count,
            "terminal_outcome": outcome_pair(snap.terminal_outcome),
            "completion_seq": snap.completion_seq,
            "peer_handle": handle_view(snap.peer_handle),
        }
    feed = registry.completion_feed()
    return {
        "ops": ops,
        "completed_order": [model_op_id(oid) for oid in view.completed_order],
        "active_count": view.active_count,
        "wait_active": view.wait_active,
        "wait_operation_ids": [model_op_id(oid) for oid in view.wait_operation_ids],
        "feed": [(e.seq, model_op_id(e.operation_id), outcome_pair(e.terminal_outcome)) for e in feed.entries()],
        "watermark": feed.watermark(),
        "next_seq": view.next_completion_seq,
    }
