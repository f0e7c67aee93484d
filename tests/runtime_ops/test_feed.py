"""Completion feed: sequence numbers, watermark, list_since, waiting without lost wake-ups, capacity."""

from __future__ import annotations

import asyncio
import threading

import pytest
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.feed import CompletionEntry, CompletionFeed
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.operation import Completed, OperationKind, OperationResult, Retired

from tests.runtime_ops.helpers import bg_spec, child_spec, completed, result, running


def entry(seq: int) -> CompletionEntry:
    return CompletionEntry(seq, f"op-{seq}", OperationKind.BACKGROUND_TOOL_OP, "n", Retired(), None)


def test_every_terminal_kind_gets_the_next_sequence_number() -> None:
    reg = OpsLifecycleRegistry()
    feed = reg.completion_feed()
    assert feed.watermark() == 0 and feed.list_since(0).entries == ()
    a = running(reg, bg_spec("a"))
    b = running(reg, child_spec("b"))
    c = bg_spec("c")
    reg.register_operation(c)
    reg.complete_operation(a, result(a))
    reg.mark_retired(b)
    reg.abort_provisioning(c.id)
    reg.register_operation(bg_spec("d"))
    reg.terminate_owner("bye")
    batch = feed.list_since(0)
    assert [e.seq for e in batch.entries] == [1, 2, 3, 4]
    assert batch.watermark == 4 == feed.watermark()
    assert [e.kind for e in batch.entries][:2] == [OperationKind.BACKGROUND_TOOL_OP, OperationKind.MOB_MEMBER_CHILD]
    assert batch.entries[0].terminal_outcome == Completed(result(a))
    assert batch.entries[0].display_name == "a" and batch.entries[0].completed_at_ms is not None


def test_list_since_returns_only_newer_entries() -> None:
    reg = OpsLifecycleRegistry()
    for i in range(5):
        completed(reg, str(i))
    feed = reg.completion_feed()
    assert [e.seq for e in feed.list_since(3).entries] == [4, 5]
    assert feed.list_since(5).entries == () and feed.list_since(5).watermark == 5
    assert feed.list_since(99).entries == ()


def test_sequence_numbers_are_not_reused_after_eviction_or_collection() -> None:
    reg = OpsLifecycleRegistry.with_config(max_completed=1)
    completed(reg, "x0")
    completed(reg, "x1")  # evicts x0
    assert reg.completion_feed().watermark() == 2
    assert [oid for oid, _ in reg.collect_completed()] != []
    again = completed(reg, "again")
    assert reg.snapshot(again).completion_seq == 3  # type: ignore[union-attr]
    assert [e.seq for e in reg.completion_feed().list_since(0).entries] == [1, 2, 3]
    assert reg.view().next_completion_seq == 4


def test_feed_is_bounded_by_capacity_independently_of_retention() -> None:
    config = OpsLifecycleConfig(max_completed=2)
    assert config.feed_capacity == 1024
    assert OpsLifecycleConfig(max_completed=300).feed_capacity == 1200
    feed = CompletionFeed(3)
    feed.publish(entry(i) for i in range(1, 6))
    assert [e.seq for e in feed.entries()] == [3, 4, 5] and feed.watermark() == 5
    assert [e.seq for e in feed.list_since(0).entries] == [3, 4, 5]


def test_feed_rejects_non_increasing_sequence_numbers() -> None:
    feed = CompletionFeed(4)
    feed.publish([entry(1)])
    with pytest.raises(ValueError, match="not above the watermark"):
        feed.publish([entry(1)])
    with pytest.raises(ValueError):
        CompletionFeed(0)


def test_wait_for_advance_returns_at_once_when_already_past() -> None:
    reg = OpsLifecycleRegistry()
    completed(reg, "a")
    assert asyncio.run(reg.completion_feed().wait_for_advance(0)) == 1


def test_wait_for_advance_wakes_on_a_completion_from_another_thread() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("a"))
    feed = reg.completion_feed()

    async def main() -> int:
        waiter = asyncio.ensure_future(feed.wait_for_advance(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        threading.Thread(target=reg.complete_operation, args=(oid, result(oid))).start()
        return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(main()) == 1


def test_no_lost_wake_ups_under_a_racing_producer() -> None:
    """A consumer repeatedly waits past its cursor while another thread publishes; every wait
    must return (a lost wake-up would hang until the timeout and fail)."""
    feed = CompletionFeed(10_000)
    total = 300

    def produce() -> None:
        for seq in range(1, total + 1):
            feed.publish([entry(seq)])

    async def consume() -> int:
        cursor = 0
        while cursor < total:
            cursor = await asyncio.wait_for(feed.wait_for_advance(cursor), 5)
        return cursor

    async def main() -> int:
        producer = threading.Thread(target=produce)
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        producer.start()
        got = await task
        producer.join()
        return got

    assert asyncio.run(main()) == total


def test_blocking_wait_for_advance() -> None:
    feed = CompletionFeed(8)
    with pytest.raises(TimeoutError):
        feed.wait_for_advance_blocking(0, 0.01)
    timer = threading.Timer(0.01, feed.publish, args=([entry(1), entry(2)],))
    timer.start()
    assert feed.wait_for_advance_blocking(0, 5) == 2
    timer.join()


def test_cancelled_feed_waiter_is_removed() -> None:
    feed = CompletionFeed(8)

    async def main() -> None:
        task = asyncio.ensure_future(feed.wait_for_advance(0))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feed._waiters == []

    asyncio.run(main())


def test_entries_keep_the_result_payload() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("p"))
    reg.complete_operation(oid, OperationResult(oid, "payload", True, 7, 3))
    (only,) = reg.completion_feed().list_since(0).entries
    assert only.terminal_outcome == Completed(OperationResult(oid, "payload", True, 7, 3))
