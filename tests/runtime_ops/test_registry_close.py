"""Closing a registry (its session went away): every waiter is released with the closing
error, every later change is refused with it, nothing durable changes, reads still answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.errors import SessionNotFound
from meerkat_runtime.vocab.operation import Completed

from tests.runtime_ops.helpers import RecordingSink, bg_spec, handle, result, running


def gone() -> SessionNotFound:
    return SessionNotFound("session-1")


def test_close_releases_watchers_wait_all_and_feed_waits_from_loops_and_threads() -> None:
    reg = OpsLifecycleRegistry()
    done, a, b = (running(reg, bg_spec(n)) for n in ("done", "a", "b"))
    reg.complete_operation(done, result(done))
    watch = reg.register_watcher(a)
    blocked: list[BaseException] = []

    def block() -> None:
        try:
            watch.result(5)
        except BaseException as exc:
            blocked.append(exc)

    def block_feed() -> None:
        try:
            reg.completion_feed().wait_for_advance_blocking(1, 5)
        except BaseException as exc:
            blocked.append(exc)

    async def main() -> list[BaseException | object]:
        wait = reg.wait_all([a, b])
        tasks = [
            asyncio.ensure_future(watch.wait()),
            asyncio.ensure_future(wait.wait()),
            asyncio.ensure_future(reg.completion_feed().wait_for_advance(1)),
        ]
        threads = [threading.Thread(target=block), threading.Thread(target=block_feed)]
        for thread in threads:
            thread.start()
        await asyncio.sleep(0)
        assert not any(t.done() for t in tasks)
        assert reg.close(gone)
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        for thread in threads:
            thread.join(5)
        return list(outcomes)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, SessionNotFound) for o in outcomes), outcomes
    assert len(blocked) == 2 and all(isinstance(e, SessionNotFound) for e in blocked), blocked
    assert reg.closed
    view = reg.snapshot(a)
    assert view is not None and view.status.value == "running" and view.watcher_count == 0
    assert reg.view().wait_request_id is None
    assert {s.id for s in reg.list_operations()} == {done, a, b}
    assert reg.completion_feed().watermark() == 1  # the feed keeps its entries
    assert reg.completion_feed().list_since(0).entries[0].operation_id == done


def test_a_feed_wait_after_close_raises_unless_the_watermark_already_passed() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    reg.complete_operation(oid, result(oid))
    reg.close(gone)
    feed = reg.completion_feed()

    async def main() -> int:
        with pytest.raises(SessionNotFound):
            await feed.wait_for_advance(1)
        return await feed.wait_for_advance(0)

    assert asyncio.run(main()) == 1
    with pytest.raises(SessionNotFound):
        feed.wait_for_advance_blocking(1, 5)
    assert feed.wait_for_advance_blocking(0, 0) == 1


CALLS: dict[str, Callable[[OpsLifecycleRegistry, str], object]] = {
    "register_operation": lambda r, o: r.register_operation(bg_spec("new")),
    "provisioning_succeeded": lambda r, o: r.provisioning_succeeded(o),
    "peer_ready": lambda r, o: r.peer_ready(o, handle()),
    "register_watcher": lambda r, o: r.register_watcher(o),
    "report_progress": lambda r, o: r.report_progress(o),
    "request_retire": lambda r, o: r.request_retire(o),
    "provisioning_failed": lambda r, o: r.provisioning_failed(o, "e"),
    "abort_provisioning": lambda r, o: r.abort_provisioning(o),
    "complete_operation": lambda r, o: r.complete_operation(o, result(o)),
    "fail_operation": lambda r, o: r.fail_operation(o, "e"),
    "cancel_operation": lambda r, o: r.cancel_operation(o),
    "mark_retired": lambda r, o: r.mark_retired(o),
    "terminate_owner": lambda r, o: r.terminate_owner("bye"),
    "collect_completed": lambda r, o: r.collect_completed(),
    "wait_all": lambda r, o: r.wait_all([o]),
    "cancel_wait_all": lambda r, o: r.cancel_wait_all(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_change_of_a_closed_registry_raises_the_closing_error_and_writes_nothing(call: str) -> None:
    reg = OpsLifecycleRegistry(session_id="session-1")
    sink = RecordingSink()
    reg.attach_persistence(sink, "epoch-1", EpochCursorState())
    oid = running(reg, bg_spec("x"))
    done = running(reg, bg_spec("done"))
    reg.complete_operation(done, result(done))
    writes = sink.calls
    before = reg.view()
    reg.close(gone)
    with pytest.raises(SessionNotFound):
        CALLS[call](reg, oid)
    assert sink.calls == writes  # the close wrote nothing, the refused call neither
    assert reg.view() == before
    assert reg.snapshot(oid) is not None


def test_close_twice_keeps_the_first_error() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    assert reg.close(gone)
    assert not reg.close(lambda: RuntimeError("second"))
    with pytest.raises(SessionNotFound):
        reg.register_watcher(oid)


def test_close_without_releasing_waiters_refuses_changes_and_leaves_waiters_pending() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)
    wait = reg.wait_all([oid])
    assert reg.close(gone, release_waiters=False)
    assert not watch.done() and not wait.done()
    with pytest.raises(SessionNotFound):
        reg.complete_operation(oid, result(oid))
    assert not watch.done()


def test_a_watch_resolved_before_the_close_keeps_its_outcome() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)
    reg.complete_operation(oid, result(oid))
    reg.close(gone)
    assert watch.result(0) == Completed(result(oid))
