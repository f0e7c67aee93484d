"""Registration: duplicate and capacity admission, in that order (seed 001)."""

from __future__ import annotations

from meerkat_model.ops.actions import CompleteOperation, ProvisioningSucceeded, RegisterOperation
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import BG, MOB, machine, ok, rejected, run, running


def test_register_starts_in_provisioning_and_counts_as_active() -> None:
    m = machine()
    s = run(m, RegisterOperation(0, MOB))
    view = m.observe(s)
    assert view["ops"][0]["status"] == "provisioning"
    assert view["ops"][0]["kind"] == "mob_member_child"
    assert view["active_count"] == 1


def test_duplicate_registration_is_rejected_while_tracked() -> None:
    m = machine()
    s = running(m, 0)
    assert rejected(m, s, RegisterOperation(0, BG)).kind == rj.ALREADY_REGISTERED


def test_already_registered_is_checked_before_capacity() -> None:
    m = machine(max_concurrent=1)
    s = run(m, RegisterOperation(0, BG))
    assert rejected(m, s, RegisterOperation(0, BG)).kind == rj.ALREADY_REGISTERED
    assert rejected(m, s, RegisterOperation(1, BG)).kind == rj.MAX_CONCURRENT_EXCEEDED


def test_max_concurrent_enforcement_frees_a_slot_on_completion() -> None:
    m = machine(ids=4, max_concurrent=2, max_completed=4)
    s = run(m, RegisterOperation(0, BG), RegisterOperation(1, BG))
    refused = rejected(m, s, RegisterOperation(2, BG))
    assert refused.kind == rj.MAX_CONCURRENT_EXCEEDED
    assert "2" in refused.detail
    s = run(m, ProvisioningSucceeded(0), CompleteOperation(0, "r1"), state=s)
    s = run(m, RegisterOperation(3, BG), state=s)
    assert m.observe(s)["active_count"] == 2


def test_an_evicted_id_can_be_registered_again() -> None:
    m = machine(max_completed=1)
    s = running(m, 0)
    s = run(m, CompleteOperation(0, "r1"), state=s)
    s = running(m, 1, state=s)
    s = run(m, CompleteOperation(1, "r1"), state=s)  # evicts 0
    assert 0 not in m.observe(s)["ops"]
    result = ok(m, s, RegisterOperation(0, MOB))
    assert m.observe(result.state)["ops"][0]["status"] == "provisioning"
