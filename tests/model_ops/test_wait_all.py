"""wait_all: immediate resolution, barrier satisfaction inside the terminal step, cancel by
drop, check order, and barrier members pinned against retention (seed 001 wait_all tests)."""

from __future__ import annotations

from meerkat_model.ops.actions import (
    CancelOperation,
    CollectCompleted,
    CompleteOperation,
    DropWait,
    FailOperation,
    WaitAll,
)
from meerkat_model.vocab import rejections as rj

from tests.model_ops.helpers import machine, ok, outputs_named, rejected, run, running


def test_wait_all_returns_all_outcomes_in_request_order_when_already_terminal() -> None:
    m = machine(max_completed=2)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = run(m, CompleteOperation(0, "r1"), FailOperation(1, "e1"), state=s)
    result = ok(m, s, WaitAll((1, 0)))
    assert result.transition == "wait_all_immediate"
    assert result.state == s
    assert result.outputs == (("wait_all_satisfied", ((1, ("failed", "e1")), (0, ("completed", "r1")))),)


def test_empty_wait_all_resolves_at_once() -> None:
    m = machine()
    result = ok(m, m.initial_state(), WaitAll(()))
    assert result.outputs == (("wait_all_satisfied", ()),)
    assert not m.observe(result.state)["wait_active"]


def test_pending_wait_is_satisfied_by_the_last_terminal_step() -> None:
    m = machine()
    s = running(m, 0)
    s = running(m, 1, state=s)
    begin = ok(m, s, WaitAll((0, 1)))
    assert begin.transition == "wait_all_begin"
    assert m.observe(begin.state)["wait_operation_ids"] == [0, 1]
    first = ok(m, begin.state, CompleteOperation(1, "r1"))
    assert outputs_named(first, "wait_all_satisfied") == []
    last = ok(m, first.state, CancelOperation(0, None))
    assert outputs_named(last, "wait_all_satisfied") == [
        ("wait_all_satisfied", ((0, ("cancelled", None)), (1, ("completed", "r1"))))
    ]
    view = m.observe(last.state)
    assert not view["wait_active"] and view["wait_operation_ids"] == []


def test_dropping_a_pending_wait_clears_the_barrier() -> None:
    m = machine()
    s = running(m, 0)
    s = run(m, WaitAll((0,)), state=s)
    assert m.observe(s)["wait_active"]
    dropped = ok(m, s, DropWait())
    assert not m.observe(dropped.state)["wait_active"]
    # a new wait may start once the old one is gone
    ok(m, dropped.state, WaitAll((0,)))


def test_wait_all_check_order() -> None:
    m = machine()
    s = running(m, 0)
    s = run(m, WaitAll((0,)), state=s)
    # duplicate first, even with a barrier active and an unknown id
    assert rejected(m, s, WaitAll((1, 1))).kind == rj.DUPLICATE_WAIT_OPERATION
    # then an active barrier, even with an unknown id
    assert rejected(m, s, WaitAll((1,))).kind == rj.WAIT_ALREADY_ACTIVE
    s = run(m, DropWait(), state=s)
    assert rejected(m, s, WaitAll((0, 1))).kind == rj.NOT_FOUND


def test_barrier_members_are_pinned_against_retention_until_the_barrier_ends() -> None:
    m = machine(ids=3, max_completed=1)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = running(m, 2, state=s)
    s = run(m, WaitAll((0, 2)), CompleteOperation(0, "r1"), CompleteOperation(1, "r1"), state=s)
    view = m.observe(s)
    assert 0 in view["ops"], "a barrier member must not be evicted while the barrier waits"
    # the oldest unpinned id is evicted instead
    assert 1 not in view["ops"] and view["completed_order"] == [0]
    last = ok(m, s, CompleteOperation(2, "r1"))
    assert outputs_named(last, "wait_all_satisfied")[0][1][0] == (0, ("completed", "r1"))
    after = m.observe(last.state)
    assert after["completed_order"] == [2] and sorted(after["ops"]) == [2]


def test_collect_completed_keeps_barrier_members() -> None:
    m = machine(ids=3, max_completed=3)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = running(m, 2, state=s)
    s = run(m, WaitAll((0, 1)), CompleteOperation(0, "r1"), CompleteOperation(2, "r1"), state=s)
    result = ok(m, s, CollectCompleted())
    assert result.outputs[0] == ("returned", ((2, ("completed", "r1")),))
    assert m.observe(result.state)["completed_order"] == [0]


def test_dropping_the_barrier_reapplies_retention() -> None:
    m = machine(ids=3, max_completed=1)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = running(m, 2, state=s)
    s = run(m, WaitAll((0, 1, 2)), CompleteOperation(0, "r1"), CompleteOperation(1, "r1"), state=s)
    assert m.observe(s)["completed_order"] == [0, 1]
    s = run(m, DropWait(), state=s)
    assert m.observe(s)["completed_order"] == [1]
