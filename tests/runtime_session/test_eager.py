"""``run_shielded_eagerly``: a coroutine that never waits runs without a task; one that waits
runs in its caller's task while nobody cancels it, and finishes although its caller is
cancelled (in a task of its own, resumed exactly where it stopped, what it awaited untouched)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from meerkat_runtime.session import eager
from meerkat_runtime.session.eager import run_shielded_eagerly

from tests.runtime_session.helpers import run


def test_a_coroutine_that_never_waits_runs_without_a_task_and_the_caller_still_yields_once() -> None:
    async def body() -> None:
        seen: list[str] = []
        tasks_inside: list[int] = []

        async def work() -> int:
            tasks_inside.append(len(asyncio.all_tasks()))
            seen.append("work")
            return 7

        asyncio.get_running_loop().call_soon(seen.append, "callback")
        assert await run_shielded_eagerly(work()) == 7
        assert tasks_inside == [1]  # only the caller's task: none was made for the work
        assert seen == ["work", "callback"]  # the work ran first, the loop had its turn before the return

    run(body())


@pytest.mark.parametrize("bound, yields", [(0.0, 5), (3600.0, 1)])
def test_calls_that_never_wait_yield_to_the_loop_once_the_bound_passed(
    monkeypatch: pytest.MonkeyPatch, bound: float, yields: int
) -> None:
    """Back-to-back calls: with no time allowed without a turn every call yields; with an hour
    allowed only the first (the loop had no turn through them before)."""
    monkeypatch.setattr(eager, "MAX_RUN_WITHOUT_TURN_S", bound)
    monkeypatch.setattr(eager, "_turns", threading.local())  # no yield remembered from another loop

    async def body() -> None:
        loop = asyncio.get_running_loop()
        turns: list[int] = []

        def tick() -> None:  # counts the loop's turns while the calls run
            turns.append(1)
            if len(turns) < 100:
                loop.call_soon(tick)

        async def work() -> None:
            return None

        loop.call_soon(tick)
        for _ in range(5):
            await run_shielded_eagerly(work())
        assert len(turns) == yields

    run(body())


def test_an_error_before_any_wait_propagates() -> None:
    async def body() -> None:
        async def fails() -> None:
            raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):
            await run_shielded_eagerly(fails())

    run(body())


def test_a_coroutine_that_waits_is_resumed_where_it_stopped_with_what_it_awaited() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        first: asyncio.Future[str] = loop.create_future()
        second: asyncio.Future[str] = loop.create_future()
        steps: list[str] = []

        async def work() -> str:
            steps.append(await first)
            try:
                await second
            except ValueError as exc:
                steps.append(f"caught {exc}")
            await asyncio.sleep(0)
            return "done"

        loop.call_soon(first.set_result, "a")
        loop.call_later(0.01, second.set_exception, ValueError("b"))
        assert await run_shielded_eagerly(work()) == "done"
        assert steps == ["a", "caught b"]

    run(body())


def test_cancelling_the_caller_after_the_work_waited_does_not_interrupt_it() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[None] = loop.create_future()
        finished = asyncio.Event()
        steps: list[str] = []

        async def work() -> None:
            steps.append("started")
            await gate
            steps.append("after the wait")
            finished.set()

        caller = asyncio.ensure_future(run_shielded_eagerly(work()))
        await asyncio.sleep(0)
        assert steps == ["started"]
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        gate.set_result(None)
        await asyncio.wait_for(finished.wait(), 1)
        assert steps == ["started", "after the wait"]

    run(body())


def test_cancelling_the_caller_of_work_that_never_waits_lets_the_work_finish() -> None:
    async def body() -> None:
        steps: list[str] = []

        async def work() -> None:
            steps.append("done")

        async def caller() -> None:
            asyncio.current_task().cancel()  # type: ignore[union-attr]  # pending when the work starts
            await run_shielded_eagerly(work())

        with pytest.raises(asyncio.CancelledError):
            await asyncio.ensure_future(caller())
        assert steps == ["done"]

    run(body())


def test_a_coroutine_that_waits_runs_in_the_callers_task_while_nobody_cancels_it() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        tasks_inside: list[int] = []

        async def work() -> str:
            await asyncio.sleep(0)
            tasks_inside.append(len(asyncio.all_tasks()))
            gate: asyncio.Future[str] = loop.create_future()
            loop.call_soon(gate.set_result, "x")
            value = await gate
            tasks_inside.append(len(asyncio.all_tasks()))
            return value

        assert await run_shielded_eagerly(work()) == "x"
        assert tasks_inside == [1, 1]  # only the caller's task, after each wait

    run(body())


def test_cancelling_the_caller_during_a_turn_of_the_loop_does_not_interrupt_the_work() -> None:
    async def body() -> None:
        steps: list[str] = []
        finished = asyncio.Event()

        async def work() -> None:
            steps.append("started")
            await asyncio.sleep(0)
            steps.append("after the turn")
            finished.set()

        caller = asyncio.ensure_future(run_shielded_eagerly(work()))
        await asyncio.sleep(0)  # the caller ran the work up to its bare yield
        assert steps == ["started"]
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.wait_for(finished.wait(), 1)
        assert steps == ["started", "after the turn"]

    run(body())
