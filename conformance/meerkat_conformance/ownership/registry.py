"""The operation registry in the two-worker lockstep: the runtime calls that stand for the
ownership model's ``RegisterOp`` / ``FinishOp`` and what both sides show of the registry.

Operation ``i`` of the model is the background operation ``op<i>`` of the session's registry
(``MeerkatMachine.ops_lifecycle_registry``). ``RegisterOp`` registers it and reports provisioning
succeeded (Running, memory only); ``FinishOp`` completes it (outcome 0) or fails it (1): a
terminal write the store fences with the worker's lease. The observation has the model's shape
(``meerkat_model.ownership.observe.ops_view``): what the store holds (read with the runtime's own
journal replay) and each worker's registry.
"""

from __future__ import annotations

from typing import Any

from meerkat_model.ownership.op_slots import COMPLETED
from meerkat_runtime.ops.journal import persisted_from_records
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.ids import OperationId
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec, OperationStatus

_SPELLED = {OperationStatus.COMPLETED: "completed", OperationStatus.FAILED: "failed"}


def operation_id(op: int) -> str:
    return f"op{op}"


def model_op(operation: str) -> int | str:
    """The model's index of ``op<i>``; any other id is returned as is (and differs)."""
    return int(operation[2:]) if operation.startswith("op") and operation[2:].isdigit() else operation


def register(registry: OpsLifecycleRegistry, session_id: str, op: int) -> None:
    """Register operation ``op`` and move it to Running (nothing is written)."""
    oid = operation_id(op)
    registry.register_operation(
        OperationSpec(OperationId(oid), OperationKind.BACKGROUND_TOOL_OP, session_id, oid, "conformance")
    )
    registry.provisioning_succeeded(oid)


def finish(registry: OpsLifecycleRegistry, op: int, outcome: int) -> None:
    """Complete (``outcome`` 0) or fail (1) operation ``op``: a fenced terminal write."""
    oid = operation_id(op)
    if outcome == COMPLETED:
        registry.complete_operation(oid, OperationResult(oid, "done", False, 1, 0))
    else:
        registry.fail_operation(oid, "failed")


def read_back(registry: OpsLifecycleRegistry) -> None:
    """A registry change that changes nothing else (``cancel_wait_all`` without a barrier): a
    registry in doubt reads the store back first."""
    registry.cancel_wait_all()


def _spell(status: OperationStatus, seq: int | None) -> str:
    name = _SPELLED.get(status)
    return status.value if name is None or seq is None else f"{name}#{seq}"


def stored_registry(store: RuntimeStore, runtime_id: str) -> tuple[dict[int | str, str], int]:
    """The terminal operations the store holds (id -> ``completed#n`` / ``failed#n``) and its
    next completion sequence number (1 while nothing was written)."""
    snapshot = persisted_from_records(store.load_ops_lifecycle(runtime_id), runtime_id)
    if snapshot is None:
        return {}, 1
    stored = {
        model_op(str(op.spec.id)): _spell(op.status, op.completion_seq)
        for op in snapshot.operations
        if op.status.is_terminal
    }
    return stored, snapshot.next_completion_seq


def worker_registry(registry: OpsLifecycleRegistry) -> dict[str, Any]:
    """A registered worker's registry: its tracked operations and next sequence number."""
    operations = {model_op(s.id): _spell(s.status, s.completion_seq) for s in registry.list_operations()}
    return {"operations": operations, "next_seq": registry.view().next_completion_seq}
