"""Completion watchers: late watchers, several listeners, exactly-once, any loop or thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import Completed, Terminated

from tests.runtime_ops.helpers import bg_spec, result, running


def test_late_watchers_resolve_immediately() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("late"))
    reg.complete_operation(oid, result(oid, "done"))
    watch = reg.register_watcher(oid)
    assert watch.done()
    assert asyncio.run(watch.wait()) == Completed(result(oid, "done"))
    assert reg.snapshot(oid).watcher_count == 0  # type: ignore[union-attr]


def test_multi_listener_completion() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("multi"))
    watches = [reg.register_watcher(oid) for _ in range(3)]
    assert reg.snapshot(oid).watcher_count == 3  # type: ignore[union-attr]
    assert not any(w.done() for w in watches)

    async def main() -> list[object]:
        reg.complete_operation(oid, result(oid, "multi-done"))
        return list(await asyncio.gather(*(w.wait() for w in watches)))

    assert asyncio.run(main()) == [Completed(result(oid, "multi-done"))] * 3
    assert reg.snapshot(oid).watcher_count == 0  # type: ignore[union-attr]


def test_terminate_owner_resolves_every_watch_once() -> None:
    reg = OpsLifecycleRegistry()
    ids = [running(reg, bg_spec(str(i))) for i in range(3)]
    watches = [reg.register_watcher(i) for i in ids]
    reg.terminate_owner("owner stopped")
    assert [w.result(1) for w in watches] == [Terminated("owner stopped")] * 3


def test_watch_resolved_from_another_thread_wakes_awaiting_loop() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)

    async def main() -> object:
        waiter = asyncio.ensure_future(watch.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        worker = threading.Thread(target=reg.complete_operation, args=(oid, result(oid)))
        worker.start()
        outcome = await asyncio.wait_for(waiter, 5)
        worker.join()
        return outcome

    assert asyncio.run(main()) == Completed(result(oid))


def test_one_watch_awaited_from_two_event_loops_and_a_blocked_thread() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)
    seen: list[object] = []
    started = threading.Barrier(4)

    def in_own_loop() -> None:
        async def main() -> object:
            task = asyncio.ensure_future(watch.wait())
            await asyncio.sleep(0)
            started.wait()
            return await asyncio.wait_for(task, 5)

        seen.append(asyncio.run(main()))

    def blocking() -> None:
        started.wait()
        seen.append(watch.result(5))

    threads = [threading.Thread(target=in_own_loop) for _ in range(2)] + [threading.Thread(target=blocking)]
    for t in threads:
        t.start()
    started.wait()
    reg.complete_operation(oid, result(oid))
    for t in threads:
        t.join(10)
    assert seen == [Completed(result(oid))] * 3


def test_blocking_result_times_out_while_pending() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)
    with pytest.raises(TimeoutError):
        watch.result(0.01)
    assert watch.outcome() is None
    reg.cancel_operation(oid, "stop")
    assert watch.outcome() is not None


def test_one_shot_resolves_exactly_once() -> None:
    shot: OneShot[int] = OneShot()
    assert shot.set(1)
    assert not shot.set(2)
    assert not shot.set_exception(RuntimeError("late"))
    assert shot.result(0) == 1
    failing: OneShot[int] = OneShot()
    failing.set_exception(ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        failing.result(0)
    with pytest.raises(ValueError, match="bad"):
        asyncio.run(failing.wait())


def test_cancelled_awaiter_is_forgotten_and_others_still_resolve() -> None:
    shot: OneShot[str] = OneShot()

    async def main() -> str:
        first = asyncio.ensure_future(shot.wait())
        second = asyncio.ensure_future(shot.wait())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert len(shot._waiters) == 1
        shot.set("v")
        return await second

    assert asyncio.run(main()) == "v"


def test_resolving_after_the_awaiting_loop_closed_is_harmless() -> None:
    shot: OneShot[int] = OneShot()
    loop = asyncio.new_event_loop()
    shot._waiters.append((loop, loop.create_future()))  # a waiter whose loop then goes away
    loop.close()
    assert shot.set(5)
    assert shot.result(0) == 5


def test_a_dropped_pending_watch_is_released() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("long"))
    kept = reg.register_watcher(oid)
    reg.register_watcher(oid)  # dropped at once
    view = reg.snapshot(oid)
    assert view is not None and view.watcher_count == 1
    reg.complete_operation(oid, result(oid))
    assert kept.result(0) == Completed(result(oid))


def test_watches_polled_with_a_timeout_and_dropped_do_not_pile_up() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("long"))

    async def main() -> None:
        for _ in range(200):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reg.register_watcher(oid), 0)

    asyncio.run(main())
    view = reg.snapshot(oid)
    assert view is not None and view.watcher_count == 0


def test_a_kept_watch_whose_awaiter_timed_out_stays_pending_and_resolves_later() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("x"))
    watch = reg.register_watcher(oid)

    async def main() -> object:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(watch.wait(), 0)
        view = reg.snapshot(oid)
        assert view is not None and view.watcher_count == 1
        reg.complete_operation(oid, result(oid))
        return await watch

    assert asyncio.run(main()) == Completed(result(oid))
