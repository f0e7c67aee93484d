"""Crash recovery and durable-write failures (seed 000 recovery contract tests; SPEC
"memory never runs ahead of disk")."""

from __future__ import annotations

import pytest
from meerkat_model.action_record import action_name
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ops.actions import (
    AbortProvisioning,
    CancelOperation,
    CollectCompleted,
    CompleteOperation,
    Crash,
    DropWait,
    FailOperation,
    MarkRetired,
    OpsAction,
    PeerReady,
    ProvisioningFailed,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
    RequestRetire,
    TerminateOwner,
    WaitAll,
    WriteFails,
)
from meerkat_model.ops.state import RegistryState
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import BG, MOB, machine, ok, run, running


def test_recovery_keeps_terminal_ops_and_drops_the_rest() -> None:
    m = machine(max_completed=2)
    s = running(m, 0, MOB)
    s = run(
        m,
        PeerReady(0),
        CompleteOperation(0, "r1"),
        RegisterOperation(1, BG),
        WaitAll((1,)),
        RegisterWatcher(1),
        state=s,
    )
    before = m.observe(s)
    recovered = ok(m, s, Crash())
    assert recovered.transition == "crash_recover"
    view = m.observe(recovered.state)
    assert sorted(view["ops"]) == [0]
    assert view["ops"][0] == before["ops"][0]
    assert view["active_count"] == 0
    assert not view["wait_active"]
    assert view["feed"] == before["feed"]
    assert view["next_seq"] == before["next_seq"] and view["watermark"] == before["watermark"]
    # the dropped id is free again
    ok(m, recovered.state, RegisterOperation(1, MOB))


def test_recovery_before_any_write_is_a_fresh_registry() -> None:
    m = machine()
    s = running(m, 0)
    assert ok(m, s, Crash()).state == m.initial_state()


def test_recovery_after_collection_does_not_bring_collected_ops_back() -> None:
    m = machine()
    s = running(m, 0)
    s = run(m, CompleteOperation(0, "r1"), CollectCompleted(), Crash(), state=s)
    view = m.observe(s)
    assert view["ops"] == {} and view["next_seq"] == 2 and view["watermark"] == 1


def test_recovery_applies_retention_after_a_dropped_barrier() -> None:
    m = machine(ids=3, max_completed=1)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = running(m, 2, state=s)
    s = run(
        m,
        WaitAll((0, 1, 2)),
        CompleteOperation(0, "r1"),
        CompleteOperation(1, "r1"),
        DropWait(),
        state=s,
    )
    in_memory = m.observe(s)
    recovered = m.observe(run(m, Crash(), state=s))
    assert recovered["completed_order"] == in_memory["completed_order"] == [1]
    assert sorted(recovered["ops"]) == [1]


DURABLE: list[tuple[str, OpsAction, list[OpsAction]]] = [
    ("complete", CompleteOperation(0, "r1"), [ProvisioningSucceeded(0)]),
    ("fail", FailOperation(0, "e1"), []),
    ("provisioning_failed", ProvisioningFailed(0, "e1"), []),
    ("abort", AbortProvisioning(0, None), []),
    ("cancel", CancelOperation(0, None), [ProvisioningSucceeded(0)]),
    ("mark_retired", MarkRetired(0), [ProvisioningSucceeded(0), RequestRetire(0)]),
    ("terminate_owner", TerminateOwner("shutdown"), []),
    ("collect_completed", CollectCompleted(), [FailOperation(0, "e1")]),
]


@pytest.mark.parametrize(("name", "action", "setup"), DURABLE, ids=[d[0] for d in DURABLE])
def test_failed_durable_write_leaves_the_state_unchanged(name: str, action: OpsAction, setup: list[OpsAction]) -> None:
    m = machine()
    s: RegistryState = run(m, RegisterOperation(0, BG), RegisterWatcher(0), *setup)
    if name != "collect_completed":
        s = run(m, WaitAll((0,)), state=s)
    assert isinstance(m.step(s, action), Stepped)
    failed = m.step(s, WriteFails(action))
    assert isinstance(failed, Rejected)
    assert failed.kind == rj.PERSISTENCE_FAILED
    assert action_name(action) in failed.detail


def test_write_failure_variant_of_a_call_that_writes_nothing_behaves_normally() -> None:
    m = machine()
    s = m.initial_state()
    assert m.step(s, WriteFails(TerminateOwner("shutdown"))) == m.step(s, TerminateOwner("shutdown"))
    assert m.step(s, WriteFails(CollectCompleted())) == m.step(s, CollectCompleted())


def test_write_failure_variant_reports_the_inner_rejection_first() -> None:
    m = machine()
    result = m.step(m.initial_state(), WriteFails(CompleteOperation(0, "r1")))
    assert isinstance(result, Rejected) and result.kind == rj.NOT_FOUND


def test_non_terminal_steps_are_not_written() -> None:
    m = machine()
    s = running(m, 0)
    assert s.disk == ()
    s = run(m, CompleteOperation(0, "r1"), state=s)
    assert s.disk != ()
    disk = s.disk
    s = running(m, 1, state=s)
    assert s.disk is disk
