"""Runs ``accept_input_and_run`` starts (the caller drives the run, no loop needed): what retiring,
interrupting, stopping, destroying and unregistering do to them, and a loop attached meanwhile.

The rules (docs/semantics.md, "Run loop"; the model's ``accept_and_run`` and the run ends named
``*_without_loop``): retiring without a loop abandons the queued inputs but not the run's input,
which ends Consumed with the runtime Retired; interrupt, stop, destroy and unregister cancel the
caller's run (the call raises ``InvalidRuntimeTransition``) and nothing it does afterwards
reaches the store.
"""

from __future__ import annotations

import asyncio

import pytest
from meerkat_runtime.session.completion import Cancelled, Completed, RuntimeTerminated
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult, success_output
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import Block, ScriptedExecutor, Succeed
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, NotReady
from meerkat_runtime.vocab.ids import RunId
from meerkat_runtime.vocab.inputs import Abandoned, AbandonKind, AbandonReason, Consumed
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import S, make_prompt, persistent, run, stored_rows, view_of


class _Caller:
    """A caller of ``accept_input_and_run`` whose run parks in a scripted executor."""

    def __init__(self, m: MeerkatMachine, item: Input) -> None:
        self.executor = ScriptedExecutor(default=Block())
        self.item = item

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            return "value", await self.executor.apply(RunId(run_id), primitive)

        self.task = asyncio.ensure_future(m.accept_input_and_run("s", item, op))

    async def parked(self) -> None:
        await self.executor.wait_parked()


async def _direct(m: MeerkatMachine, text: str = "direct") -> _Caller:
    caller = _Caller(m, make_prompt(text, idempotency_key=f"key-{text}"))
    await caller.parked()
    return caller


def test_retiring_without_a_loop_lets_the_run_end_consumed_and_the_runtime_retired() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        # A duplicate of the running input gets a handle on the same run.
        _, handle = await m.accept_input_with_completion("s", make_prompt("dup", idempotency_key="key-direct"))
        queued = make_prompt("queued behind the run")
        _, queued_handle = await m.accept_input_with_completion("s", queued)
        report = await m.retire_runtime("s")
        assert report.inputs_abandoned == 1  # the queued input, not the run's
        assert (await view_of(m, caller.item)).current_state is S.STAGED
        assert queued_handle is not None and await queued_handle.wait() == RuntimeTerminated(
            "retired without runtime loop"
        )
        caller.executor.release(Succeed(RunResult("done")))
        assert await caller.task == "value"
        assert (await view_of(m, caller.item)).current_state is S.CONSUMED
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert handle is not None and await handle.wait() == Completed(RunResult("done"))
        stored = {decode_record(r.payload).input_id: decode_record(r.payload) for r in stored_rows(store, "s")}
        assert stored[caller.item.header.id].terminal == Consumed()
        assert stored[queued.header.id].terminal == Abandoned(AbandonReason(AbandonKind.RETIRED))

    run(body())


def test_interrupting_a_direct_run_cancels_the_callers_run_even_if_the_executor_ignores_the_command() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        caller.executor.ignore_cancel = True
        _, handle = await m.accept_input_with_completion("s", make_prompt("dup", idempotency_key="key-direct"))
        report = await m.interrupt_current_run("s")
        assert report.cancelled_input_ids == (caller.item.header.id,)
        with pytest.raises(InvalidRuntimeTransition):
            await caller.task
        assert handle is not None and await handle.wait() == Cancelled()
        assert await m.runtime_state("s") is RuntimeState.IDLE
        stored = decode_record(stored_rows(store, "s")[0].payload)
        assert stored.terminal == Abandoned(AbandonReason(AbandonKind.CANCELLED))
        second = await _direct(m, "second")  # nothing is left in flight: a new run starts
        second.executor.release(Succeed())
        assert await second.task == "value"

    run(body())


@pytest.mark.parametrize("operation", ["stop_runtime", "destroy_runtime", "unregister_session"])
def test_stopping_destroying_or_unregistering_cancels_the_direct_run(operation: str) -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        await getattr(m, operation)("s")
        with pytest.raises(InvalidRuntimeTransition):
            await caller.task
        assert not caller.executor.parked()
        stored = decode_record(stored_rows(store, "s")[0].payload)
        if operation == "unregister_session":  # the store keeps the row as accepted (Queued)
            assert stored.phase is S.QUEUED
        else:
            assert stored.phase is S.ABANDONED

    run(body())


def test_a_halted_process_writes_nothing_for_its_direct_run() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        before = [r.payload for r in stored_rows(store, "s")]
        await m.halt()
        with pytest.raises(InvalidRuntimeTransition):
            await caller.task
        assert [r.payload for r in stored_rows(store, "s")] == before

    run(body())


def test_a_loop_attached_during_a_direct_run_drains_what_was_queued_once_the_run_ends() -> None:
    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        loop_executor = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", loop_executor)
        assert await m.registration_phase("s") is RegistrationPhase.ACTIVE
        queued = make_prompt("queued during the run")
        await m.accept_input("s", queued)
        await m.settle("s")
        assert loop_executor.applied == []  # one run at a time
        caller.executor.release(Succeed())
        assert await caller.task == "value"
        await m.settle("s")
        assert [ids for _, ids in loop_executor.applied] == [(queued.header.id,)]
        assert (await view_of(m, queued)).current_state is S.CONSUMED
        assert await m.runtime_state("s") is RuntimeState.ATTACHED

    run(body())


def test_a_direct_run_ending_without_a_loop_is_named_without_loop() -> None:
    core = SessionCore("rt:session:s")
    core.apply(core.register())
    item = make_prompt()
    accepted = core.accept(item, 0.0)
    assert isinstance(accepted, Plan)
    core.apply(accepted)
    start = core.start_run(RunId("run-1"), item.header.id, 0.0)
    core.apply(start)
    assert core.executor_failed(RunId("run-1"), 0.0).rule == "executor_failed_without_loop"
    assert core.interrupt(0.0).rule == "interrupt_without_loop"
    succeeded = core.executor_succeeded(RunId("run-1"), success_output(start_primitive(item)), 0.0)
    assert succeeded.rule == "executor_succeeded_without_loop"
    assert succeeded.phase is RuntimeState.IDLE


def start_primitive(item: Input) -> RunPrimitive:
    return RunPrimitive(RunId("run-1"), (item,))


def test_a_refused_direct_run_names_what_stands_in_the_way() -> None:
    """The phase alone would say "it is idle", the one state a direct run requires."""

    async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
        raise AssertionError("not run")

    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        await m.accept_input("s", make_prompt("queued, no loop"))
        with pytest.raises(NotReady) as queued:
            await m.accept_input_and_run("s", make_prompt("direct"), op)
        assert queued.value.state == "idle" and "it is idle" not in str(queued.value)
        assert "1 queued input would run first" in str(queued.value)
        await m.close()

        m, _ = persistent()
        await m.register_session("s")
        caller = await _direct(m)
        with pytest.raises(NotReady) as in_flight:
            await m.accept_input_and_run("s", make_prompt("second"), op)
        assert "is in flight" in str(in_flight.value)
        caller.executor.release(Succeed(RunResult("done")))
        assert await caller.task == "value"
        await m.register_session_with_executor("s", ScriptedExecutor())
        with pytest.raises(NotReady) as attached:
            await m.accept_input_and_run("s", make_prompt("third"), op)
        assert "a run loop is attached" in str(attached.value)
        await m.close()

    run(body())
