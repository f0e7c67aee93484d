"""Every per-operation method from every status: accepted exactly from the from-set of the
table in docs/semantics.md; otherwise ``invalid_transition`` naming the method and status."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.ops.state import RegistryState
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import MOB, machine, ok, rejected, run

# method -> (statuses it is allowed from, status after, action arguments after the id)
TABLE: dict[str, tuple[set[str], str | None, tuple[Any, ...]]] = {
    "provisioning_succeeded": ({"provisioning"}, "running", ()),
    "provisioning_failed": ({"provisioning", "running", "retiring"}, "failed", ("e1",)),
    "abort_provisioning": ({"provisioning"}, "aborted", (None,)),
    "report_progress": ({"running", "retiring"}, None, ()),
    "complete_operation": ({"running", "retiring"}, "completed", ("r1",)),
    "fail_operation": ({"provisioning", "running", "retiring"}, "failed", ("e1",)),
    "cancel_operation": ({"provisioning", "running", "retiring"}, "cancelled", (None,)),
    "request_retire": ({"running"}, "retiring", ()),
    "mark_retired": ({"running", "retiring"}, "retired", ()),
    "peer_ready": ({"running", "retiring"}, None, ()),
}

# how to bring operation 0 (a mob member child) into each status
REACH: dict[str, list[tuple[Any, ...]]] = {
    "provisioning": [],
    "running": [("provisioning_succeeded", 0)],
    "retiring": [("provisioning_succeeded", 0), ("request_retire", 0)],
    "completed": [("provisioning_succeeded", 0), ("complete_operation", 0, "r1")],
    "failed": [("fail_operation", 0, "e1")],
    "aborted": [("abort_provisioning", 0, None)],
    "cancelled": [("cancel_operation", 0, None)],
    "retired": [("provisioning_succeeded", 0), ("mark_retired", 0)],
    "terminated": [("terminate_owner", "shutdown")],
}


def in_status(status: str) -> tuple[Any, RegistryState]:
    m = machine(max_completed=2)
    s = run(m, ("register_operation", 0, MOB), *REACH[status])
    assert m.observe(s)["ops"][0]["status"] == status
    return m, s


@pytest.mark.parametrize("status", sorted(REACH))
@pytest.mark.parametrize("method", sorted(TABLE))
def test_method_from_status(method: str, status: str) -> None:
    m, s = in_status(status)
    allowed, target, args = TABLE[method]
    action = (method, 0, *args)
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
    _, _, args = TABLE[method]
    assert rejected(m, m.initial_state(), (method, 1, *args)).kind == rj.NOT_FOUND


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
        for method, (_, _, args) in TABLE.items():
            assert rejected(m, s, (method, 0, *args)).kind == rj.INVALID_TRANSITION
