"""Crash recovery and durable-write failures (seed 000 recovery contract tests; SPEC
"memory never runs ahead of disk")."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.ops.state import RegistryState
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import BG, MOB, machine, ok, run, running


def test_recovery_keeps_terminal_ops_and_drops_the_rest() -> None:
    m = machine(max_completed=2)
    s = running(m, 0, MOB)
    s = run(
        m,
        ("peer_ready", 0),
        ("complete_operation", 0, "r1"),
        ("register_operation", 1, BG),
        ("wait_all", (1,)),
        ("register_watcher", 1),
        state=s,
    )
    before = m.observe(s)
    recovered = ok(m, s, ("crash",))
    assert recovered.transition == "crash_recover"
    view = m.observe(recovered.state)
    assert sorted(view["ops"]) == [0]
    assert view["ops"][0] == before["ops"][0]
    assert view["active_count"] == 0
    assert not view["wait_active"]
    assert view["feed"] == before["feed"]
    assert view["next_seq"] == before["next_seq"] and view["watermark"] == before["watermark"]
    # the dropped id is free again
    ok(m, recovered.state, ("register_operation", 1, MOB))


def test_recovery_before_any_write_is_a_fresh_registry() -> None:
    m = machine()
    s = running(m, 0)
    assert ok(m, s, ("crash",)).state == m.initial_state()


def test_recovery_after_collection_does_not_bring_collected_ops_back() -> None:
    m = machine()
    s = running(m, 0)
    s = run(m, ("complete_operation", 0, "r1"), ("collect_completed",), ("crash",), state=s)
    view = m.observe(s)
    assert view["ops"] == {} and view["next_seq"] == 2 and view["watermark"] == 1


def test_recovery_applies_retention_after_a_dropped_barrier() -> None:
    m = machine(ids=3, max_completed=1)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = running(m, 2, state=s)
    s = run(
        m,
        ("wait_all", (0, 1, 2)),
        ("complete_operation", 0, "r1"),
        ("complete_operation", 1, "r1"),
        ("drop_wait",),
        state=s,
    )
    in_memory = m.observe(s)
    recovered = m.observe(run(m, ("crash",), state=s))
    assert recovered["completed_order"] == in_memory["completed_order"] == [1]
    assert sorted(recovered["ops"]) == [1]


DURABLE: list[tuple[str, tuple[Any, ...], list[tuple[Any, ...]]]] = [
    ("complete", ("complete_operation", 0, "r1"), [("provisioning_succeeded", 0)]),
    ("fail", ("fail_operation", 0, "e1"), []),
    ("provisioning_failed", ("provisioning_failed", 0, "e1"), []),
    ("abort", ("abort_provisioning", 0, None), []),
    ("cancel", ("cancel_operation", 0, None), [("provisioning_succeeded", 0)]),
    ("mark_retired", ("mark_retired", 0), [("provisioning_succeeded", 0), ("request_retire", 0)]),
    ("terminate_owner", ("terminate_owner", "shutdown"), []),
    ("collect_completed", ("collect_completed",), [("fail_operation", 0, "e1")]),
]


@pytest.mark.parametrize(("name", "action", "setup"), DURABLE, ids=[d[0] for d in DURABLE])
def test_failed_durable_write_leaves_the_state_unchanged(
    name: str, action: tuple[Any, ...], setup: list[tuple[Any, ...]]
) -> None:
    m = machine()
    s: RegistryState = run(m, ("register_operation", 0, BG), ("register_watcher", 0), *setup)
    if name != "collect_completed":
        s = run(m, ("wait_all", (0,)), state=s)
    assert isinstance(m.step(s, action), Stepped)
    failed = m.step(s, ("write_fails", action))
    assert isinstance(failed, Rejected)
    assert failed.kind == rj.PERSISTENCE_FAILED
    assert action[0] in failed.detail


def test_write_failure_variant_of_a_call_that_writes_nothing_behaves_normally() -> None:
    m = machine()
    s = m.initial_state()
    assert m.step(s, ("write_fails", ("terminate_owner", "shutdown"))) == m.step(s, ("terminate_owner", "shutdown"))
    assert m.step(s, ("write_fails", ("collect_completed",))) == m.step(s, ("collect_completed",))


def test_write_failure_variant_reports_the_inner_rejection_first() -> None:
    m = machine()
    result = m.step(m.initial_state(), ("write_fails", ("complete_operation", 0, "r1")))
    assert isinstance(result, Rejected) and result.kind == rj.NOT_FOUND


def test_non_terminal_steps_are_not_written() -> None:
    m = machine()
    s = running(m, 0)
    assert s.disk == ()
    s = run(m, ("complete_operation", 0, "r1"), state=s)
    assert s.disk != ()
    disk = s.disk
    s = running(m, 1, state=s)
    assert s.disk is disk
