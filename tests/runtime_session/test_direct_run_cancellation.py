"""Cancelling the caller of ``accept_input_and_run``, and closing the machine under it.

The contract (docs/runtime-sessions.md, "Cancelling a caller never splits a durable step from its
in-memory publish"): whatever happens to the caller, each durable step of its run — the accept,
the boundary commit, the interrupt's lifecycle commit — completes in memory as on disk, so the
session is left as the store holds it and takes the next run. The caller gets
``CancelledError``. A call whose session the machine's ``close()`` unregistered raises
``MachineClosed``. Each test holds one store write open on a real SQLite file (the write waits
for an event the test sets) and cancels the caller while it is open.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.session.completion import Cancelled, Completed
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult, success_output
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import Block, ScriptedExecutor, Succeed
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import MachineClosed
from meerkat_runtime.vocab.ids import RunId
from meerkat_runtime.vocab.inputs import Abandoned, AbandonKind, AbandonReason, Consumed
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, logged, make_prompt, replays, run, view_of


class HeldWrite:
    """A SQLite store whose next ``method`` call, once :meth:`arm` ed, waits (in the worker thread
    that makes it) until :meth:`release`; :attr:`entered` is set when it starts waiting."""

    def __init__(self, path: Path, method: str) -> None:
        self.path = path
        self._inner = SqliteRuntimeStore(path)
        self._method = method
        self._armed = False
        self.entered = threading.Event()
        self._released = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def held(*args: Any, **kwargs: Any) -> Any:
            if self._armed:
                self._armed = False
                self.entered.set()
                self._released.wait(20)
            return attr(*args, **kwargs)

        return held

    def arm(self) -> None:
        self._armed = True

    def release(self) -> None:
        self._released.set()

    async def wait_entered(self) -> None:
        await asyncio.to_thread(self.entered.wait, 20)
        assert self.entered.is_set()


async def _op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
    return "value", success_output(primitive, RunResult("ok"))


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _cancelled_after_the_held_write(caller: asyncio.Task[Any], store: HeldWrite) -> None:
    """Cancel ``caller`` while ``store``'s write is held: the caller waits for that commit (it is
    not done while the write is held), then raises ``CancelledError`` once it is released."""
    caller.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not caller.done(), "the cancelled caller returned before the commit under way was over"
    store.release()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def _reopened_terminals(path: Path) -> dict[str, Any]:
    """The terminal outcome of each input of session ``s`` as a new machine on ``path`` recovers it."""
    machine = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
    async with machine:
        await machine.register_session("s")
        return {str(v.input_id): v.terminal_outcome for v in await machine.input_states("s")}


def _held(tmp_path: Path, method: str) -> tuple[HeldWrite, MeerkatMachine]:
    """A logged machine (events in ``tmp_path / "log"``) on a new file whose ``method`` writes can be held."""
    store = HeldWrite(tmp_path / "s.sqlite", method)
    m, _ = logged(store, tmp_path / "log")
    return store, m


async def _closed_and_reopened(m: MeerkatMachine, store: HeldWrite) -> dict[str, Any]:
    """Close ``m`` and ``store``, then :func:`_reopened_terminals` of the file."""
    await m.close()
    store.close()
    return await _reopened_terminals(store.path)


def test_cancelling_the_caller_during_the_boundary_commit_leaves_the_run_committed(tmp_path: Path) -> None:
    async def body() -> None:
        store, m = _held(tmp_path, "atomic_apply")
        await m.register_session("s")
        item = make_prompt("first", idempotency_key="k1")

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            store.arm()  # the boundary commit of this run waits
            return await _op(run_id, primitive)

        caller = asyncio.ensure_future(m.accept_input_and_run("s", item, op))
        await store.wait_entered()
        await _cancelled_after_the_held_write(caller, store)
        # memory is what the store holds: the input Consumed, the runtime Idle, no run in flight
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert (await m.session_view("s")).current_run_id is None
        assert (await view_of(m, item)).current_state is S.CONSUMED
        second = make_prompt("second", idempotency_key="k2")
        assert await m.accept_input_and_run("s", second, _op) == "value"
        terminals = await _closed_and_reopened(m, store)
        assert terminals == {str(item.header.id): Consumed(), str(second.header.id): Consumed()}
        replays(tmp_path / "log", "accept_and_run", "executor_succeeded_without_loop")

    run(body())


def test_cancelling_the_caller_during_the_accept_ends_the_run_as_cancelled(tmp_path: Path) -> None:
    async def body() -> None:
        store, m = _held(tmp_path, "persist_input_state")
        await m.register_session("s")
        item = make_prompt("first", idempotency_key="k1")
        called: list[str] = []

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            called.append(run_id)
            return await _op(run_id, primitive)

        store.arm()
        caller = asyncio.ensure_future(m.accept_input_and_run("s", item, op))
        await store.wait_entered()
        await _cancelled_after_the_held_write(caller, store)
        # the accept landed in memory as on disk; the run it started ends as cancelled, op never runs
        _, handle = await m.accept_input_with_completion("s", make_prompt("dup", idempotency_key="k1"))
        assert handle is not None and await handle.wait() == Cancelled()
        assert (await view_of(m, item)).current_state is S.ABANDONED
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert called == []
        second = make_prompt("second", idempotency_key="k2")
        assert await m.accept_input_and_run("s", second, op) == "value"
        terminals = await _closed_and_reopened(m, store)
        cancelled = Abandoned(AbandonReason(AbandonKind.CANCELLED))
        assert terminals == {str(item.header.id): cancelled, str(second.header.id): Consumed()}
        replays(tmp_path / "log", "accept_and_run", "interrupt_without_loop")

    run(body())


def test_cancelling_the_caller_again_during_the_interrupt_commit_leaves_it_committed(tmp_path: Path) -> None:
    async def body() -> None:
        store, m = _held(tmp_path, "commit_machine_lifecycle")
        await m.register_session("s")
        executor = ScriptedExecutor(default=Block())
        item = make_prompt("first", idempotency_key="k1")

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            return "value", await executor.apply(RunId(run_id), primitive)

        caller = asyncio.ensure_future(m.accept_input_and_run("s", item, op))
        await executor.wait_parked()
        store.arm()  # the interrupt's lifecycle commit waits
        caller.cancel()  # cancels op: the run ends as an interrupt
        await store.wait_entered()
        await _cancelled(caller)  # a second cancellation while that commit is open
        store.release()
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert (await view_of(m, item)).current_state is S.ABANDONED
        assert await m.accept_input_and_run("s", make_prompt("second"), _op) == "value"
        terminals = await _closed_and_reopened(m, store)
        assert terminals[str(item.header.id)] == Abandoned(AbandonReason(AbandonKind.CANCELLED))
        replays(tmp_path / "log", "accept_and_run", "interrupt_without_loop", "executor_succeeded_without_loop")

    run(body())


def test_a_retry_right_after_a_cancelled_call_finds_the_session_free(tmp_path: Path) -> None:
    """A timeout-and-retry loop: the cancelled call's run has ended (as an interrupt) by the time
    its caller sees ``CancelledError``, so the retry made at once is not refused as in flight."""

    async def body() -> None:
        path = tmp_path / "s.sqlite"
        m = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        await m.register_session("s")
        executor = ScriptedExecutor(default=Block())
        item = make_prompt("first", idempotency_key="k1")

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            return "value", await executor.apply(RunId(run_id), primitive)

        caller = asyncio.ensure_future(m.accept_input_and_run("s", item, op))
        await executor.wait_parked()
        await _cancelled(caller)
        assert await m.accept_input_and_run("s", make_prompt("retry", idempotency_key="k2"), _op) == "value"
        assert (await view_of(m, item)).current_state is S.ABANDONED
        await m.close()
        terminals = await _reopened_terminals(path)
        assert terminals[str(item.header.id)] == Abandoned(AbandonReason(AbandonKind.CANCELLED))

    run(body())


def test_closing_the_machine_under_a_direct_run_raises_machine_closed_in_its_caller(tmp_path: Path) -> None:
    async def body() -> None:
        path = tmp_path / "s.sqlite"
        m = MeerkatMachine.persistent(path, ownership=SAME_WORKER)
        await m.register_session("s")
        executor = ScriptedExecutor(default=Block())
        item = make_prompt("first")

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            return "value", await executor.apply(RunId(run_id), primitive)

        caller = asyncio.ensure_future(m.accept_input_and_run("s", item, op))
        await executor.wait_parked()
        await m.close()
        with pytest.raises(MachineClosed):
            await caller
        terminals = await _reopened_terminals(path)
        assert terminals == {str(item.header.id): None}  # the store keeps the row as accepted

    run(body())


def test_unregistering_during_a_loop_runs_boundary_commit_waits_for_the_commit(tmp_path: Path) -> None:
    """The loop's run end holds the session gate through its commit, and unregistering takes the
    gate before it stops the loop: the boundary lands in memory and on disk before the session
    goes (guards the loop's side of the same contract)."""

    async def body() -> None:
        store, m = _held(tmp_path, "atomic_apply")
        executor = ScriptedExecutor(default=Block())
        await m.register_session_with_executor("s", executor)
        item = make_prompt("first")
        _, handle = await m.accept_input_with_completion("s", item)
        await executor.wait_parked()
        store.arm()
        executor.release(Succeed(RunResult("done")))
        await store.wait_entered()
        leaving = asyncio.ensure_future(m.unregister_session("s"))
        await _cancelled(leaving)  # the unregistration goes on by itself
        store.release()
        assert handle is not None and await handle.wait() == Completed(RunResult("done"))
        assert await _closed_and_reopened(m, store) == {str(item.header.id): Consumed()}
        replays(tmp_path / "log", "executor_succeeded", "unregister")

    run(body())
