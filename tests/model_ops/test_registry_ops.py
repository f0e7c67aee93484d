"""Registry-wide behaviour: terminate_owner, collect_completed, FIFO retention and the
completion feed (seed 001: terminate_owner_only_targets_non_terminal_operations,
collect_completed_drains_terminal_operations, bounded_completed_retention_evicts_oldest)."""

from __future__ import annotations

from meerkat_model.machine import Stepped
from meerkat_model.ops.actions import (
    CancelOperation,
    CollectCompleted,
    CompleteOperation,
    Crash,
    FailOperation,
    MarkRetired,
    ProvisioningFailed,
    RegisterOperation,
    RequestRetire,
    TerminateOwner,
)

from tests.model_ops.helpers import BG, MOB, machine, ok, outputs_named, run, running


def test_terminate_owner_only_targets_non_terminal_operations() -> None:
    m = machine(max_completed=4)
    s = running(m, 0)
    s = running(m, 1, state=s)
    s = run(m, CompleteOperation(1, "r1"), state=s)
    result = ok(m, s, TerminateOwner("shutdown"))
    assert result.outputs[0] == ("returned", 1)
    view = m.observe(result.state)
    assert view["ops"][0]["status"] == "terminated"
    assert view["ops"][0]["terminal_outcome"] == ("terminated", "shutdown")
    assert view["ops"][1]["status"] == "completed"
    assert view["active_count"] == 0


def test_terminate_owner_follows_registration_order_not_id_order() -> None:
    m = machine(ids=3, max_completed=4)
    s = run(m, RegisterOperation(2, BG), RegisterOperation(0, MOB), RegisterOperation(1, BG))
    result = ok(m, s, TerminateOwner("shutdown"))
    feed = outputs_named(result, "feed")
    assert [(seq, op) for _, seq, op, _ in feed] == [(1, 2), (2, 0), (3, 1)]
    assert m.observe(result.state)["completed_order"] == [2, 0, 1]


def test_terminate_owner_with_nothing_active_returns_zero_and_writes_nothing() -> None:
    m = machine()
    s = m.initial_state()
    result = ok(m, s, TerminateOwner("shutdown"))
    assert result.outputs == (("returned", 0),)
    assert result.state == s


def test_collect_completed_drains_terminal_operations() -> None:
    m = machine()
    s = running(m, 0)
    s = run(m, CompleteOperation(0, "r1"), RegisterOperation(1, BG), state=s)
    result = ok(m, s, CollectCompleted())
    assert result.outputs == (("returned", ((0, ("completed", "r1")),)),)
    view = m.observe(result.state)
    assert 0 not in view["ops"] and 1 in view["ops"]
    again = ok(m, result.state, CollectCompleted())
    assert again.outputs == (("returned", ()),)


def test_collect_completed_returns_completion_order() -> None:
    m = machine(max_completed=2)
    s = running(m, 1)
    s = running(m, 0, state=s)
    s = run(m, CompleteOperation(1, "r1"), FailOperation(0, "e1"), state=s)
    result = ok(m, s, CollectCompleted())
    assert result.outputs[0][1] == ((1, ("completed", "r1")), (0, ("failed", "e1")))


def test_bounded_completed_retention_evicts_oldest() -> None:
    m = machine(ids=5, max_completed=3, sequences=5)
    s = m.initial_state()
    for op in range(5):
        s = running(m, op, state=s)
        s = run(m, CompleteOperation(op, "r1"), state=s)
    view = m.observe(s)
    assert sorted(view["ops"]) == [2, 3, 4]
    assert view["completed_order"] == [2, 3, 4]
    # the feed keeps entries of evicted operations
    assert [e[1] for e in view["feed"]] == [0, 1, 2, 3, 4]


def test_sequence_numbers_start_at_one_and_are_never_reused() -> None:
    m = machine(max_completed=1, sequences=5)
    s = running(m, 0)
    first = ok(m, s, CancelOperation(0, None))
    assert outputs_named(first, "feed") == [("feed", 1, 0, ("cancelled", None))]
    s = run(m, CollectCompleted(), state=first.state)
    s = running(m, 0, state=s)
    second = ok(m, s, CompleteOperation(0, "r1"))
    assert outputs_named(second, "feed")[0][1] == 2
    s = run(m, Crash(), state=second.state)
    s = running(m, 1, state=s)
    third = ok(m, s, MarkRetired(1))
    assert outputs_named(third, "feed")[0][1] == 3
    view = m.observe(third.state)
    assert [e[0] for e in view["feed"]] == [1, 2, 3]
    assert view["watermark"] == 3 and view["next_seq"] == 4


def test_every_terminal_kind_pushes_a_feed_entry() -> None:
    m = machine(ids=6, max_completed=6, sequences=6)
    s = m.initial_state()
    for op in range(6):
        s = running(m, op, state=s)
    s = run(m, RequestRetire(5), state=s)
    steps: list[tuple[object, ...]] = [
        CompleteOperation(0, "r1"),
        FailOperation(1, "e1"),
        ProvisioningFailed(2, "e1"),
        CancelOperation(3, None),
        MarkRetired(4),
        TerminateOwner("shutdown"),
    ]
    kinds: list[str] = []
    for action in steps:
        result = m.step(s, action)
        assert isinstance(result, Stepped)
        kinds.extend(o[3][0] for o in outputs_named(result, "feed"))
        s = result.state
    assert kinds == ["completed", "failed", "failed", "cancelled", "retired", "terminated"]
    assert m.observe(s)["watermark"] == 6
