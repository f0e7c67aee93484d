"""Store faults: a failed durable write restores memory exactly; a retry succeeds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from meerkat_runtime.session.completion import Completed, CompletedWithoutResult
from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorError, RunPrimitive, RunResult, success_output
from meerkat_runtime.session.inputs import external_event
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.session.testing import Block, ScriptedExecutor, Succeed
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.vocab.errors import DurableWriteFailed, ReadFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, persistent, run, stored_rows, view_of


def _faulty() -> tuple[MeerkatMachine, FaultInjectingStore]:
    store = FaultInjectingStore(InMemoryRuntimeStore())
    machine, _ = persistent(store)
    return machine, store


def test_failed_accept_write_restores_memory_and_a_retry_succeeds() -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        await m.accept_input("s", make_prompt("before", idempotency_key="k0"))
        before = await m.session_view("s")
        store.fail_next("persist_input_state")
        item = make_prompt("fails once", idempotency_key="k1")
        with pytest.raises(DurableWriteFailed) as err:
            await m.accept_input("s", item)
        assert err.value.kind == "durable_write_failed" and "injected fault" in str(err.value)
        assert await m.session_view("s") == before
        assert len(stored_rows(store, "s")) == 1
        assert (await m.accept_input("s", item)).is_accepted
        assert len(stored_rows(store, "s")) == 2

    run(body())


def test_failed_superseding_accept_leaves_the_old_input_queued() -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        old = external_event("tick", "1", supersession_key="clock")
        await m.accept_input("s", old)
        before = await m.session_view("s")
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed):
            await m.accept_input("s", external_event("tick", "2", supersession_key="clock"))
        assert await m.session_view("s") == before

    run(body())


Op = Callable[[MeerkatMachine], Awaitable[Any]]

CONTROL_OPS: dict[str, Op] = {
    "retire": lambda m: m.retire_runtime("s"),
    "reset": lambda m: m.reset_runtime("s"),
    "recycle": lambda m: m.recycle_runtime("s"),
    "stop": lambda m: m.stop_runtime("s"),
    "destroy": lambda m: m.destroy_runtime("s"),
}


@pytest.mark.parametrize("name", sorted(CONTROL_OPS))
def test_failed_control_commit_restores_memory_and_waiters(name: str) -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        _, handle = await m.accept_input_with_completion("s", make_prompt("a"))
        await m.accept_input("s", make_prompt("b"))
        before = await m.session_view("s")
        lifecycle_before = store.load_machine_lifecycle(canonical_runtime_id("s"))
        rows_before = stored_rows(store, "s")
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed) as err:
            await CONTROL_OPS[name](m)
        assert err.value.operation.endswith("_runtime")
        assert await m.session_view("s") == before
        assert handle is not None and not handle.done()
        assert store.load_machine_lifecycle(canonical_runtime_id("s")) == lifecycle_before
        assert stored_rows(store, "s") == rows_before
        await CONTROL_OPS[name](m)  # the retry succeeds

    run(body())


def test_failed_destroy_commit_shows_no_destroyed_state_and_keeps_the_loop() -> None:
    async def body() -> None:
        m, store = _faulty()
        ex = ScriptedExecutor()
        await m.register_session_with_executor("s", ex)
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed):
            await m.destroy_runtime("s")
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        assert not ex.stopped
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        assert handle is not None and await handle.wait() == CompletedWithoutResult()

    run(body())


def test_failed_interrupt_commit_leaves_the_run_going() -> None:
    async def body() -> None:
        m, store = _faulty()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        await ex.wait_parked()
        before = await m.session_view("s")
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed):
            await m.interrupt_current_run("s")
        assert await m.session_view("s") == before
        ex.release(Succeed(RunResult("finished anyway")))
        assert handle is not None and await handle.wait() == Completed(RunResult("finished anyway"))

    run(body())


def test_recovery_write_back_failure_leaves_no_entry() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = persistent(InMemoryRuntimeStore(storage))
        await first.register_session("s")
        await first.accept_input("s", make_prompt())
        store = FaultInjectingStore(InMemoryRuntimeStore(storage))
        second, _ = persistent(store)
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed):
            await second.register_session("s")
        assert not await second.contains_session("s")
        await second.register_session("s")
        assert len(await second.list_active_inputs("s")) == 1

    run(body())


@pytest.mark.parametrize(
    "method", ["load_machine_lifecycle", "load_active_input_states", "load_finished_inputs", "load_ops_lifecycle"]
)
def test_load_failure_fails_registration_and_leaves_no_entry(method: str) -> None:
    async def body() -> None:
        m, store = _faulty()
        store.fail_next(method)
        with pytest.raises(ReadFailed):
            await m.register_session("s")
        assert not await m.contains_session("s")
        with pytest.raises(ReadFailed):
            store.fail_next(method)
            await m.prepare_bindings("s")
        assert not await m.contains_session("s")
        await m.register_session("s")
        assert await m.contains_session("s")

    run(body())


# --- the synchronous accept-and-run path ------------------------------------------------------


async def _ok(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
    return "value", success_output(primitive, RunResult("done"))


async def _boom(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
    raise ExecutorError("turn failed")


def test_accept_input_and_run_commits_and_returns_the_value() -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        item = make_prompt()
        assert await m.accept_input_and_run("s", item, _ok) == "value"
        view = await view_of(m, item)
        assert view.current_state is S.CONSUMED
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert store.calls("atomic_apply") == 1

    run(body())


def test_accept_input_and_run_boundary_failure_unwinds_to_idle_and_queued() -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        store.fail_next("atomic_apply")
        item = make_prompt("sync boundary failure")
        with pytest.raises(BoundaryCommitFailed) as err:
            await m.accept_input_and_run("s", item, _ok)
        assert "runtime boundary commit" in str(err.value)
        assert await m.runtime_state("s") is RuntimeState.IDLE
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED

    run(body())


def test_accept_input_and_run_failure_requeues_and_reraises() -> None:
    async def body() -> None:
        m, _ = _faulty()
        await m.register_session("s")
        item = make_prompt()
        with pytest.raises(ExecutorError):
            await m.accept_input_and_run("s", item, _boom)
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED and view.attempts == 1
        with pytest.raises(Exception) as busy:
            await m.accept_input_and_run("s", make_prompt(), _ok)
        assert getattr(busy.value, "kind", None) == "not_ready"

    run(body())


def test_accept_input_and_run_terminal_snapshot_failure_unregisters() -> None:
    async def body() -> None:
        m, store = _faulty()
        await m.register_session("s")
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed) as err:
            await m.accept_input_and_run("s", make_prompt(), _boom)
        assert "terminal snapshot" in str(err.value)
        assert not await m.contains_session("s")

    run(body())


class _SlowWriteStore(InMemoryRuntimeStore):
    def persist_input_state(self, runtime_id: str, row: Any, *, fence: Any = None) -> None:
        import time

        time.sleep(0.05)
        super().persist_input_state(runtime_id, row, fence=fence)


def test_cancelling_a_durable_accept_never_leaves_disk_ahead_of_memory() -> None:
    async def body() -> None:
        import asyncio

        store = _SlowWriteStore()
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await m.register_session("s")
        item = make_prompt(idempotency_key="k")
        task = asyncio.create_task(m.accept_input("s", item))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        retry = make_prompt(idempotency_key="k")
        outcome = await m.accept_input("s", retry)  # waits for the shielded accept to finish
        assert outcome.is_accepted is False and getattr(outcome, "existing_id", None) == item.header.id
        assert [r.input_id for r in stored_rows(store, "s")] == [item.header.id]

    run(body())


@pytest.mark.parametrize("name", ["destroy", "reset"])
def test_row_snapshot_failure_before_the_write_restores_the_checkpoint(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        from meerkat_runtime.session import persistence

        m, store = _faulty()
        await m.register_session("s")
        item = make_prompt("pending work")
        await m.accept_input("s", item)
        before = await m.session_view("s")

        def broken(record: object) -> object:
            raise ValueError("forced row snapshot failure")

        with monkeypatch.context() as patch:
            patch.setattr(persistence, "encode_row", broken)
            with pytest.raises(DurableWriteFailed) as err:
                await CONTROL_OPS[name](m)
        assert "forced row snapshot failure" in str(err.value)
        assert await m.session_view("s") == before
        assert await m.list_active_inputs("s") == [item.header.id]
        assert store.calls("commit_machine_lifecycle") == 1  # only the registration write-back

    run(body())
