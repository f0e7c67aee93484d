"""Every per-operation method from every status: accepted exactly from the from-set of the
table in docs/semantics.md; otherwise ``invalid_transition`` naming the method and status."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.action_record import action_name
from meerkat_model.ops.actions import (
    AbortProvisioning,
    CancelOperation,
    CompleteOperation,
    FailOperation,
    MarkRetired,
    OpsAction,
    PeerReady,
    ProvisioningFailed,
    ProvisioningSucceeded,
    RegisterOperation,
    ReportProgress,
    RequestRetire,
    TerminateOwner,
)
from meerkat_model.ops.state import RegistryState
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import MOB, machine, ok, rejected, run

OperationCall = (
    ProvisioningSucceeded
    | ProvisioningFailed
    | AbortProvisioning
    | ReportProgress
    | CompleteOperation
    | FailOperation
    | CancelOperation
    | RequestRetire
    | MarkRetired
    | PeerReady
)

# method -> (statuses it is allowed from, status after, the call on operation 0)
TABLE: dict[str, tuple[set[str], str | None, OperationCall]] = {
    "provisioning_succeeded": ({"provisioning"}, "running", ProvisioningSucceeded(0)),
    "provisioning_failed": ({"provisioning", "running", "retiring"}, "failed", ProvisioningFailed(0, "e1")),
    "abort_provisioning": ({"provisioning"}, "aborted", AbortProvisioning(0, None)),
    "report_progress": ({"running", "retiring"}, None, ReportProgress(0)),
    "complete_operation": ({"running", "retiring"}, "completed", CompleteOperation(0, "r1")),
    "fail_operation": ({"provisioning", "running", "retiring"}, "failed", FailOperation(0, "e1")),
    "cancel_operation": ({"provisioning", "running", "retiring"}, "cancelled", CancelOperation(0, None)),
    "request_retire": ({"running"}, "retiring", RequestRetire(0)),
    "mark_retired": ({"running", "retiring"}, "retired", MarkRetired(0)),
    "peer_ready": ({"running", "retiring"}, None, PeerReady(0)),
}


# how to bring operation 0 (a mob member child) into each status
REACH: dict[str, list[OpsAction]] = {
    "provisioning": [],
    "running": [ProvisioningSucceeded(0)],
    "retiring": [ProvisioningSucceeded(0), RequestRetire(0)],
    "completed": [ProvisioningSucceeded(0), CompleteOperation(0, "r1")],
    "failed": [FailOperation(0, "e1")],
    "aborted": [AbortProvisioning(0, None)],
    "cancelled": [CancelOperation(0, None)],
    "retired": [ProvisioningSucceeded(0), MarkRetired(0)],
    "terminated": [TerminateOwner("shutdown")],
}


def in_status(status: str) -> tuple[Any, RegistryState]:
    m = machine(max_completed=2)
    s = run(m, RegisterOperation(0, MOB), *REACH[status])
    assert m.observe(s)["ops"][0]["status"] == status
    return m, s


@pytest.mark.parametrize("status", sorted(REACH))
@pytest.mark.parametrize("method", sorted(TABLE))
def test_method_from_status(method: str, status: str) -> None:
    m, s = in_status(status)
    allowed, target, action = TABLE[method]
    assert action_name(action) == method
    if status in allowed:
        result = ok(m, s, action)
        after = m.observe(result.state)["ops"][0]["status"]
        assert after == (target or status)
        assert result.transition == method
    else:
        refused = rejected(m, s, action)
        assert refused.kind == rj.INVALID_TRANSITION
        assert method in refused.detail and status in refused.detail


@pytest.mark.parametrize("method", sorted(TABLE))
def test_untracked_id_is_not_found(method: str) -> None:
    m = machine()
    _, _, action = TABLE[method]
    assert rejected(m, m.initial_state(), action._replace(op=1)).kind == rj.NOT_FOUND


def test_declared_transitions_match_the_table() -> None:
    m = machine()
    declared = {t.name: t for t in m.transitions() if t.entity == "operation"}
    for method, (allowed, target, _) in TABLE.items():
        decl = declared[method]
        assert {s.lower() for s in decl.sources} == allowed
        assert (decl.target.lower() if decl.target else None) == target
        assert decl.terminal_target == (target in {"completed", "failed", "aborted", "cancelled", "retired"})


def test_terminal_statuses_are_absorbing() -> None:
    for status in ("completed", "failed", "aborted", "cancelled", "retired", "terminated"):
        m, s = in_status(status)
        for action in (call for _, _, call in TABLE.values()):
            assert rejected(m, s, action).kind == rj.INVALID_TRANSITION
