"""The run loop: consuming inputs, failures, retries, completions, attachment and interrupts."""

from __future__ import annotations

import asyncio

from meerkat_runtime.session.completion import (
    Abandoned,
    Cancelled,
    Completed,
    CompletedWithoutResult,
)
from meerkat_runtime.session.executor import (
    CoreApplyOutput,
    ReceiptDraft,
    RunControlCommand,
    RunPrimitive,
    RunResult,
    StopRuntimeExecutor,
)
from meerkat_runtime.session.inputs import HandlingMode
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import Block, Cancel, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Abandoned as AbandonedTerminal
from meerkat_runtime.vocab.inputs import AbandonKind, AbandonReason
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import (
    SAME_WORKER,
    S,
    make_prompt,
    persistent,
    queue_behind_run,
    run,
    settled_view,
    stored_rows,
    view_of,
)


def test_attached_executor_consumes_accepted_input() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor()
        assert await m.register_session_with_executor("s", ex)
        assert await m.registration_phase("s") is RegistrationPhase.ACTIVE
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        assert [ids for _, ids in ex.applied] == [(item.header.id,)]
        assert await m.list_active_inputs("s") == []
        view = await view_of(m, item)
        assert view.current_state is S.CONSUMED
        assert view.last_boundary_sequence == 0 and view.last_run_id == ex.applied[0][0]
        assert await m.runtime_state("s") is RuntimeState.ATTACHED

    run(body())


def test_successful_run_makes_exactly_one_durable_write_with_the_receipt() -> None:
    async def body() -> None:
        from meerkat_runtime.store.faults import FaultInjectingStore

        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store)
        ex = ScriptedExecutor(Succeed(RunResult("ok"), session_snapshot=b"snap"))
        await m.register_session_with_executor("s", ex)
        before = store.call_counts()
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        after = store.call_counts()
        assert after.get("atomic_apply", 0) - before.get("atomic_apply", 0) == 1
        assert after.get("commit_machine_lifecycle", 0) == before.get("commit_machine_lifecycle", 0)
        run_id = ex.applied[0][0]
        rt = canonical_runtime_id("s")
        receipt = store.load_boundary_receipt(rt, run_id, 0)
        assert receipt is not None and receipt.contributing_input_ids == (item.header.id,)
        assert store.load_session_snapshot(rt) == b"snap"
        assert decode_record(stored_rows(store, "s")[0].payload).phase is S.CONSUMED

    run(body())


def test_failed_executor_requeues_input_and_the_loop_retries_it_without_a_wake() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Fail("LLM error"), Block(), default=Fail("LLM error"))
        await m.register_session_with_executor("s", ex)
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        await ex.wait_parked()  # the retry started on its own, no wake needed
        await m.settle("s")
        assert [ids for _, ids in ex.applied] == [(item.header.id,), (item.header.id,)]
        view = await view_of(m, item)
        assert view.current_state is S.STAGED and view.attempts == 2
        assert handle is not None and not handle.done()
        ex.release(Fail("LLM error again"))
        await m.settle("s")
        view = await view_of(m, item)
        assert view.current_state is S.ABANDONED and view.attempts == 3
        assert len(ex.applied) == 3
        assert await m.runtime_state("s") is RuntimeState.ATTACHED

    run(body())


def test_a_failing_executor_tries_a_lone_input_three_times_then_abandons_it() -> None:
    async def body() -> None:
        m, store = persistent()
        ex = ScriptedExecutor(default=Fail("always"))
        await m.register_session_with_executor("s", ex)
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        assert handle is not None
        assert await handle.wait() == Abandoned("max_attempts_exhausted")
        await m.settle("s")
        assert [ids for _, ids in ex.applied] == [(item.header.id,)] * 3  # bounded: no hot loop
        view = await view_of(m, item)
        assert view.current_state is S.ABANDONED and view.attempts == 3
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        assert await m.registration_phase("s") is RegistrationPhase.ACTIVE
        stored = decode_record(stored_rows(store, "s")[0].payload)
        assert stored.phase is S.ABANDONED and stored.attempts == 3

    run(body())


def test_a_failed_input_goes_behind_the_backlog_and_is_retried_in_the_same_drain() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block(), Fail(), default=Succeed())
        await m.register_session_with_executor("s", ex)
        a, b, c = make_prompt("a"), make_prompt("b"), make_prompt("c")
        await queue_behind_run(m, ex, a, b)
        await m.accept_input("s", c)
        ex.release(Fail())  # a fails (back of the lane), then b fails, c succeeds, a, b retried
        await m.settle("s")
        order = [ids[0] for _, ids in ex.applied]
        assert order == [a.header.id, b.header.id, c.header.id, a.header.id, b.header.id]
        assert await m.list_active_inputs("s") == []
        for item, attempts in ((a, 2), (b, 2), (c, 1)):
            view = await view_of(m, item)
            assert view.current_state is S.CONSUMED and view.attempts == attempts

    run(body())


def test_failed_executor_keeps_draining_the_backlog() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block(), default=Succeed())
        await m.register_session_with_executor("s", ex)
        first, second = make_prompt("first"), make_prompt("second")
        await queue_behind_run(m, ex, first, second)
        ex.release(Fail("first run fails"))
        await m.settle("s")
        second_view = await view_of(m, second)
        first_view = await view_of(m, first)
        assert second_view.current_state is S.CONSUMED
        assert first_view.current_state is S.CONSUMED and first_view.attempts == 2
        assert [ids[0] for _, ids in ex.applied] == [first.header.id, second.header.id, first.header.id]

    run(body())


def test_third_failure_abandons_the_input_and_resolves_its_waiter() -> None:
    async def body() -> None:
        m, store = persistent()
        ex = ScriptedExecutor(default=Fail())
        await m.register_session_with_executor("s", ex)
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        await m.settle("s")
        assert len(ex.applied) == 3
        view = await view_of(m, item)
        assert view.current_state is S.ABANDONED
        assert view.terminal_outcome == AbandonedTerminal(AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, 3))
        assert handle is not None and await handle.wait() == Abandoned("max_attempts_exhausted")
        assert decode_record(stored_rows(store, "s")[0].payload).phase is S.ABANDONED

    run(body())


def test_steer_lane_runs_before_the_queue_lane() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        q1, q2 = make_prompt("q1"), make_prompt("q2")
        st = make_prompt("steer", handling_mode=HandlingMode.STEER)
        for item in (q1, q2, st):
            await m.accept_input("s", item)
        ex = ScriptedExecutor()
        await m.ensure_session_with_executor("s", ex)
        await m.settle("s")
        assert [ids[0] for _, ids in ex.applied] == [st.header.id, q1.header.id, q2.header.id]

    run(body())


def test_completion_outcomes_with_and_without_result() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Succeed(RunResult("done")), Succeed())
        await m.register_session_with_executor("s", ex)
        _, h1 = await m.accept_input_with_completion("s", make_prompt("a"))
        _, h2 = await m.accept_input_with_completion("s", make_prompt("b"))
        assert h1 is not None and h2 is not None
        assert await h1.wait() == Completed(RunResult("done"))
        assert await h2.wait() == CompletedWithoutResult()

    run(body())


def test_dedup_against_terminal_input_gives_a_handle_resolved_with_its_outcome() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("done"))))
        _, h1 = await m.accept_input_with_completion("s", make_prompt("first", idempotency_key="gate-a2"))
        assert h1 is not None and isinstance(await h1.wait(), Completed)
        outcome, h2 = await m.accept_input_with_completion("s", make_prompt("dup", idempotency_key="gate-a2"))
        assert isinstance(outcome, Deduplicated) and outcome.outcome == Completed(RunResult("done"))
        assert h2 is not None and h2.done() and h2.outcome() == Completed(RunResult("done"))
        assert await h2.wait() == Completed(RunResult("done"))

    run(body())


def test_dedup_against_in_flight_input_resolves_with_the_same_result() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        _, h1 = await m.accept_input_with_completion("s", make_prompt("original", idempotency_key="gate-a3"))
        await ex.wait_parked()
        outcome, h2 = await m.accept_input_with_completion("s", make_prompt("dup", idempotency_key="gate-a3"))
        assert isinstance(outcome, Deduplicated) and h2 is not None
        ex.release(Succeed(RunResult("slow done")))
        assert h1 is not None
        assert await h1.wait() == Completed(RunResult("slow done"))
        assert await h2.wait() == Completed(RunResult("slow done"))

    run(body())


def test_waiter_is_not_resolved_while_its_input_will_be_retried() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Fail(), Block())
        await m.register_session_with_executor("s", ex)
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        await ex.wait_parked()  # the retry is in flight; the failed attempt resolved nothing
        assert handle is not None and not handle.done()
        ex.release(Succeed(RunResult("second try")))
        assert await handle.wait() == Completed(RunResult("second try"))

    run(body())


def test_ensure_session_with_executor_upgrades_a_registered_session() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        item = make_prompt("upgrade me")
        await m.accept_input("s", item)
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        ex = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", ex)
        await m.settle("s")
        view = await view_of(m, item)
        assert view.current_state is S.CONSUMED

    run(body())


def test_concurrent_ensure_calls_attach_exactly_one_loop() -> None:
    async def body() -> None:
        m, _ = persistent()
        executors = [ScriptedExecutor() for _ in range(5)]
        results = await asyncio.gather(*(m.ensure_session_with_executor("s", ex) for ex in executors))
        assert sorted(results) == [False, False, False, False, True]
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        assert sum(len(ex.applied) for ex in executors) == 1

    run(body())


class _SlowRecoverStore(InMemoryRuntimeStore):
    def load_input_states(self, runtime_id: str) -> list:  # type: ignore[type-arg]
        import time

        time.sleep(0.05)
        return super().load_input_states(runtime_id)


def test_ensure_survives_a_racy_registration() -> None:
    async def body() -> None:
        m = MeerkatMachine.persistent(_SlowRecoverStore(), ownership=SAME_WORKER)
        ex = ScriptedExecutor()
        ensure = asyncio.create_task(m.ensure_session_with_executor("s", ex))
        await asyncio.sleep(0.01)
        await m.register_session("s")
        assert await ensure
        item = make_prompt("race upgrade")
        view = await settled_view(m, item)
        assert view.current_state is S.CONSUMED

    run(body())


def test_interrupt_cancels_the_running_input() -> None:
    async def body() -> None:
        m, store = persistent()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        await ex.wait_parked()
        assert await m.runtime_state("s") is RuntimeState.RUNNING
        report = await m.interrupt_current_run("s")
        assert report.cancelled_input_ids == (item.header.id,)
        assert handle is not None and await handle.wait() == Cancelled()
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        stored = decode_record(stored_rows(store, "s")[0].payload)
        assert stored.phase is S.ABANDONED
        assert stored.terminal == AbandonedTerminal(AbandonReason(AbandonKind.CANCELLED))
        await m.settle("s")
        assert (await m.interrupt_current_run("s")).cancelled_input_ids == ()

    run(body())


def test_executor_cancellation_abandons_with_cancelled() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", ScriptedExecutor(Cancel()))
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        assert handle is not None and await handle.wait() == Cancelled()
        view = await view_of(m, item)
        assert view.current_state is S.ABANDONED

    run(body())


class _WrongReceiptExecutor:
    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        return CoreApplyOutput(ReceiptDraft(()))

    async def control(self, command: RunControlCommand) -> None:
        return None


def test_a_receipt_naming_other_inputs_fails_the_run() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", _WrongReceiptExecutor())
        item = make_prompt()
        view = await settled_view(m, item)
        assert view.current_state is S.ABANDONED and view.attempts == 3

    run(body())


def test_retire_with_a_loop_drains_the_queue_once_without_stopping() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        a, b = make_prompt("a"), make_prompt("b")
        await queue_behind_run(m, ex, a, b)
        report = await m.retire_runtime("s")
        assert (report.inputs_abandoned, report.inputs_pending_drain) == (0, 1)
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        ex.release()
        await m.settle("s")
        assert await m.list_active_inputs("s") == []
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert [ids[0] for _, ids in ex.applied] == [a.header.id, b.header.id]
        assert not ex.stopped

    run(body())


def test_boundary_commit_failure_requeues_goes_idle_and_stops_the_executor() -> None:
    async def body() -> None:
        from meerkat_runtime.store.faults import FaultInjectingStore

        store = FaultInjectingStore(InMemoryRuntimeStore())
        store.fail_always("atomic_apply")
        m, _ = persistent(store, reattach=False)  # the application attaches the loop again
        ex = ScriptedExecutor()
        await m.register_session_with_executor("s", ex)
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        await m.settle("s")
        assert any(isinstance(c, StopRuntimeExecutor) for c in ex.commands)
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED and view.attempts == 0
        assert (await m.session_view("s")).queue == (item.header.id,)
        assert handle is not None and not handle.done()
        assert decode_record(stored_rows(store, "s")[0].payload).phase is S.QUEUED
        store.clear()
        replacement = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", replacement)
        assert isinstance(await handle.wait(), CompletedWithoutResult)

    run(body())


class _UnregisteringExecutor(ScriptedExecutor):
    def __init__(self, machine: MeerkatMachine) -> None:
        super().__init__(default=Fail())
        self.machine = machine

    async def control(self, command: RunControlCommand) -> None:
        await super().control(command)
        if isinstance(command, StopRuntimeExecutor):
            await self.machine.unregister_session("s")


def test_terminal_snapshot_failure_unregisters_the_session() -> None:
    async def body() -> None:
        from meerkat_runtime.store.faults import FaultInjectingStore

        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store)
        ex = _UnregisteringExecutor(m)
        await m.register_session_with_executor("s", ex)
        store.fail_always("commit_machine_lifecycle")
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        assert handle is not None
        outcome = await handle.wait()
        assert outcome.kind == "runtime_terminated"
        assert not await m.contains_session("s")
        assert ex.stopped
        assert decode_record(stored_rows(store, "s")[0].payload).phase is S.QUEUED

    run(body())


def test_executor_raising_a_plain_exception_counts_as_failure() -> None:
    class Boom:
        async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
            raise RuntimeError("boom")

        async def control(self, command: RunControlCommand) -> None:
            return None

    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", Boom())
        item = make_prompt()
        view = await settled_view(m, item)
        assert view.current_state is S.ABANDONED and view.attempts == 3
        assert view.terminal_outcome == AbandonedTerminal(AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, 3))

    run(body())


def test_executor_readiness() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        assert not await m.executor_ready("unknown")
        await m.register_session("s")
        assert not await m.executor_ready("s")
        await m.ensure_session_with_executor("s", ScriptedExecutor())
        assert await m.executor_ready("s")
        await m.stop_runtime("s")
        assert not await m.executor_ready("s")

    run(body())


def test_boundary_commit_failure_while_draining_a_retired_runtime_stays_retired() -> None:
    async def body() -> None:
        from meerkat_runtime.store.faults import FaultInjectingStore

        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store, reattach=False)  # the loop stays detached (no re-attach)
        ex = ScriptedExecutor(default=Block())
        await m.register_session_with_executor("s", ex)
        await queue_behind_run(m, ex, make_prompt("a"), make_prompt("b"))
        await m.retire_runtime("s")
        ex.release()
        await m.settle("s")  # "b" now runs from Retired (pre-run phase Retired)
        assert ex.parked()
        store.fail_next("atomic_apply")
        ex.release()
        await m.settle("s")
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING

    run(body())


def test_ensure_repairs_a_dead_loop() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session_with_executor("s", ScriptedExecutor())
        loop_task = m._sessions[canonical_runtime_id("s")].loop_task  # simulate a loop that died underneath
        assert loop_task is not None
        loop_task.cancel()
        await asyncio.wait({loop_task})
        assert not await m.executor_ready("s")
        replacement = ScriptedExecutor()
        assert await m.ensure_session_with_executor("s", replacement)
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        assert [ids for _, ids in replacement.applied] == [(item.header.id,)]

    run(body())


def test_cancel_after_boundary_is_forwarded_to_the_executor() -> None:
    async def body() -> None:
        from meerkat_runtime.session.executor import CancelAfterBoundary

        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        assert not await m.cancel_after_boundary("s")
        ex = ScriptedExecutor()
        await m.ensure_session_with_executor("s", ex)
        assert await m.cancel_after_boundary("s", "enough")
        assert ex.commands == [CancelAfterBoundary("enough")]

    run(body())


def test_a_second_input_starts_after_an_interrupt_even_when_the_executor_ignores_the_command() -> None:
    """The rule: ``interrupt`` ends the run in flight whatever the executor does with
    ``CancelCurrentRun``; the loop cancels the run's apply and goes on to the next input."""

    async def body() -> None:
        m, _ = persistent()
        ex = ScriptedExecutor(default=Block(), ignore_cancel=True)
        await m.register_session_with_executor("s", ex)
        first, second = make_prompt("first"), make_prompt("second")
        await queue_behind_run(m, ex, first, second)
        await m.interrupt_current_run("s")
        assert any(type(c).__name__ == "CancelCurrentRun" for c in ex.commands)
        await m.settle("s")
        assert [ids for _, ids in ex.applied] == [(first.header.id,), (second.header.id,)]
        assert ex.parked()
        assert (await view_of(m, second)).current_state is S.STAGED
        assert (await view_of(m, first)).current_state is S.ABANDONED

    run(body())
