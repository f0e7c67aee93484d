"""``SessionGate``: ``free()`` is true only when an ``acquire`` made now would not suspend,
including the moment after a release that woke a waiter which has not yet run."""

from __future__ import annotations

import asyncio

from meerkat_runtime.session.gate import SessionGate

from tests.runtime_session.helpers import run


def test_a_released_gate_with_a_woken_waiter_is_not_free_until_the_waiter_has_it() -> None:
    async def body() -> None:
        gate = SessionGate()
        assert gate.free()
        await gate.acquire()
        assert not gate.free() and gate.queued == 0
        waiter = asyncio.get_running_loop().create_task(gate.acquire())
        await asyncio.sleep(0)
        assert gate.queued == 1
        gate.release()
        assert not gate.locked()  # released, but the woken waiter has not run yet
        assert not gate.free()  # so a new caller would suspend behind it
        await waiter
        assert gate.locked() and gate.queued == 0 and not gate.free()
        gate.release()
        assert gate.free()

    run(body())


def test_a_cancelled_waiter_leaves_the_count_and_the_gate_free() -> None:
    async def body() -> None:
        gate = SessionGate()
        async with gate:
            waiter = asyncio.get_running_loop().create_task(gate.acquire())
            await asyncio.sleep(0)
            assert gate.queued == 1
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            assert gate.queued == 0
        assert gate.free()

    run(body())


def test_async_with_counts_through_acquire() -> None:
    async def body() -> None:
        gate = SessionGate()
        order: list[str] = []

        async def holder(name: str) -> None:
            async with gate:
                order.append(name)
                await asyncio.sleep(0)

        await asyncio.gather(holder("a"), holder("b"), holder("c"))
        assert order == ["a", "b", "c"]
        assert gate.free()

    run(body())
