"""peer_ready check order, watchers and progress (seed 001: peer_ready_requires_peer_expectation,
late_watchers_resolve_immediately, multi_listener_completion)."""

from __future__ import annotations

from meerkat_model.ops.actions import (
    CompleteOperation,
    Crash,
    Detach,
    DropWatcher,
    PeerReady,
    ProvisioningSucceeded,
    RegisterOperation,
    RegisterWatcher,
    ReportProgress,
    WaitAll,
)
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import BG, MOB, machine, ok, outputs_named, rejected, run, running


def test_peer_ready_requires_peer_expectation() -> None:
    m = machine()
    s = running(m, 0, BG)
    assert rejected(m, s, PeerReady(0)).kind == rj.PEER_NOT_EXPECTED


def test_peer_ready_check_order() -> None:
    m = machine()
    assert rejected(m, m.initial_state(), PeerReady(0)).kind == rj.NOT_FOUND
    # a background op in Provisioning: kind is checked before status
    s = run(m, RegisterOperation(0, BG))
    assert rejected(m, s, PeerReady(0)).kind == rj.PEER_NOT_EXPECTED
    # a mob child in Provisioning: status is checked last
    s = run(m, RegisterOperation(1, MOB), state=s)
    assert rejected(m, s, PeerReady(1)).kind == rj.INVALID_TRANSITION
    # once ready, a second report is already_peer_ready, even after the op ended
    s = run(m, ProvisioningSucceeded(1), PeerReady(1), state=s)
    assert m.observe(s)["ops"][1]["peer_ready"] is True
    assert rejected(m, s, PeerReady(1)).kind == rj.ALREADY_PEER_READY
    s = run(m, CompleteOperation(1, "r1"), state=s)
    assert rejected(m, s, PeerReady(1)).kind == rj.ALREADY_PEER_READY


def test_late_watchers_resolve_immediately() -> None:
    m = machine()
    s = run(m, RegisterOperation(0, BG), ProvisioningSucceeded(0), CompleteOperation(0, "r1"))
    result = ok(m, s, RegisterWatcher(0))
    assert result.state == s
    assert outputs_named(result, "watcher_resolved") == [("watcher_resolved", 0, ("completed", "r1"))]


def test_every_pending_watcher_resolves_once_on_completion() -> None:
    m = machine(watchers=3)
    s = run(
        m,
        RegisterOperation(0, BG),
        ProvisioningSucceeded(0),
        RegisterWatcher(0),
        RegisterWatcher(0),
        RegisterWatcher(0),
    )
    assert m.observe(s)["ops"][0]["watcher_count"] == 3
    result = ok(m, s, CompleteOperation(0, "r1"))
    assert outputs_named(result, "watchers_resolved") == [("watchers_resolved", 0, 3, ("completed", "r1"))]
    assert m.observe(result.state)["ops"][0]["watcher_count"] == 0


def test_progress_counts_only_while_live() -> None:
    m = machine()
    s = run(m, RegisterOperation(0, BG))
    assert rejected(m, s, ReportProgress(0)).kind == rj.INVALID_TRANSITION
    s = run(m, ProvisioningSucceeded(0), ReportProgress(0), ReportProgress(0), state=s)
    assert m.observe(s)["ops"][0]["progress_count"] == 2


def test_watcher_on_unknown_id_is_not_found() -> None:
    m = machine()
    assert rejected(m, m.initial_state(), RegisterWatcher(0)).kind == rj.NOT_FOUND


def test_detach_releases_pending_watchers_and_the_wait_then_recovers_as_a_crash() -> None:
    m = machine()
    s = running(m, 0, BG)
    s = run(m, RegisterWatcher(0), WaitAll((0,)), state=s)
    detached = ok(m, s, Detach())
    assert sorted(detached.outputs) == [("wait_all_released",), ("watchers_released", 0, 1)]
    crashed = ok(m, s, Crash())
    assert detached.state == crashed.state and detached.transition == crashed.transition == "crash_recover"
    assert m.obligations(detached.state) == []
    assert ok(m, crashed.state, Detach()).outputs == ()  # nothing pending: nothing released


def test_a_dropped_watch_releases_one_pending_watcher_of_an_active_operation() -> None:
    m = machine(watchers=2)
    s = run(m, RegisterOperation(0, BG), RegisterWatcher(0), RegisterWatcher(0))
    assert DropWatcher(0) in m.actions(s)
    dropped = ok(m, s, DropWatcher(0))
    assert dropped.outputs == (("watcher_dropped", 0, 1),) and dropped.transition == "drop_watcher"
    assert m.observe(dropped.state)["ops"][0]["watcher_count"] == 1
    assert dropped.state._replace(ops=s.ops) == s  # nothing else changes
    s = run(m, DropWatcher(0), ProvisioningSucceeded(0), state=dropped.state)
    assert DropWatcher(0) not in m.actions(s) and DropWatcher(0) not in m.probe_actions(s)
    assert rejected(m, s, DropWatcher(0)).kind == rj.INVALID_TRANSITION  # no watcher left
    assert rejected(m, m.initial_state(), DropWatcher(0)).kind == rj.NOT_FOUND


def test_after_the_outcome_there_is_no_watcher_to_drop() -> None:
    m = machine()
    s = run(m, RegisterWatcher(0), CompleteOperation(0, "r1"), state=running(m, 0, BG))
    assert m.observe(s)["ops"][0]["watcher_count"] == 0
    assert DropWatcher(0) not in m.actions(s)
    assert rejected(m, s, DropWatcher(0)).kind == rj.INVALID_TRANSITION
