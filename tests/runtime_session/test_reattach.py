"""After a run's boundary commit failed, the machine attaches the session's executor again by itself
(``reattach``, on by default; :mod:`meerkat_runtime.session.reattach`): inputs queued before and
after the failure run without the application calling ``ensure_session_with_executor`` again.
With ``reattach=False`` the loop stays detached until the application attaches one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from meerkat_conformance.trace.check import check_trace
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session import machine as machine_module
from meerkat_runtime.session import reattach
from meerkat_runtime.session.completion import Completed, CompletionHandle
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult, StopRuntimeExecutor
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store.faults import READ_METHODS, FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import ExecutorStartFailed, InvalidSetting, ReadFailed
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.runtime import RegistrationPhase

from tests.ownership.helpers import two_workers
from tests.runtime_session.helpers import S, make_prompt, persistent, run, view_of

ANSWER = Succeed(RunResult("answer"))


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tries a millisecond apart (at most ten): the tests wait for events, never for time."""
    monkeypatch.setattr(reattach, "FIRST_DELAY_S", 0.001)
    monkeypatch.setattr(reattach, "MAX_DELAY_S", 0.01)


async def _resolved(handle: CompletionHandle | None) -> object:
    assert handle is not None
    async with asyncio.timeout(10):  # a guard against a hang, not a timing check
        return await handle.wait()


async def _until(predicate: object, what: str) -> None:
    """Yield to the event loop until ``predicate()`` holds (guarded against a hang)."""
    assert callable(predicate)
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0.001)


async def _attached(**settings: Any) -> tuple[FaultInjectingStore, MeerkatMachine, ScriptedExecutor]:
    """A persistent machine on a fault-injecting in-memory store, with session ``s``'s loop
    attached to a scripted executor."""
    store = FaultInjectingStore(InMemoryRuntimeStore())
    m, _ = persistent(store, offload_store_calls=False, **settings)
    ex = ScriptedExecutor(default=ANSWER)
    await m.register_session_with_executor("s", ex)
    return store, m, ex


def _fail_reads(store: FaultInjectingStore) -> None:
    for method in READ_METHODS:
        store.fail_always(method)


@pytest.mark.parametrize("outcome", ["not_written", "in_doubt"])
def test_after_a_failed_boundary_commit_the_executor_is_attached_again_and_inputs_run(outcome: str) -> None:
    """``not_written``: the store refused the boundary commit (nothing written), the input runs
    again; ``in_doubt``: the commit landed but could not be read back, so the session is in
    doubt until the re-attach reconciles (the input is not run twice)."""

    async def body() -> None:
        store, m, ex = await _attached()
        if outcome == "not_written":
            store.fail_next("atomic_apply")
        else:
            store.fail_next("atomic_apply", after_write=True)
            store.fail_next("load_input_state")  # the read-back: the outcome stays unknown
        first = make_prompt("first")
        _, first_handle = await m.accept_input_with_completion("s", first)
        assert await _resolved(first_handle) == Completed(RunResult("answer"))
        error = await m.last_error("s")
        assert isinstance(error, BoundaryCommitFailed) and error.outcome_unknown == (outcome == "in_doubt")
        assert any(isinstance(c, StopRuntimeExecutor) for c in ex.commands)  # told to stop, then started again
        assert ex.starts == 2
        later = make_prompt("later")
        _, later_handle = await m.accept_input_with_completion("s", later)
        assert await _resolved(later_handle) == Completed(RunResult("answer"))
        assert await m.executor_ready("s")
        assert (await view_of(m, first)).current_state is S.CONSUMED
        assert (await view_of(m, later)).current_state is S.CONSUMED
        runs_of_first = [ids for _, ids in ex.applied if ids == (first.header.id,)]
        assert len(runs_of_first) == (2 if outcome == "not_written" else 1)
        await m.close()

    run(body())


def test_the_re_attach_retries_while_the_store_cannot_be_read_and_attaches_once_it_can() -> None:
    async def body() -> None:
        store, m, ex = await _attached()
        store.fail_next("atomic_apply", after_write=True)
        _fail_reads(store)  # the store went away: the read-back fails too (in doubt)
        item = make_prompt("q")
        _, handle = await m.accept_input_with_completion("s", item)
        await _until(lambda: store.injected("load_high_water") >= 5, "five failed tries")
        assert isinstance(await m.last_error("s"), ReadFailed)  # each failed try's error is kept
        assert not m.settled_now("s")  # a pending re-attach is work still to do
        assert not await m.executor_ready("s") and handle is not None and not handle.done()
        assert ex.starts == 1  # nothing attached while the store cannot be read
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        store.clear()  # the store answers again
        assert await _resolved(handle) == Completed(RunResult("answer"))  # the boundary had landed
        async with asyncio.timeout(10):  # the attach awaits start() in a task of its own; a hang guard
            while not await m.executor_ready("s"):
                await asyncio.sleep(0.001)
        await _until(lambda: m.settled_now("s"), "settled")
        assert await m.executor_ready("s")
        assert ex.starts == 2 and len(ex.applied) == 1  # started again, the input run once
        await m.close()

    run(body())


class _NoRestart(ScriptedExecutor):
    """An executor whose ``start()`` raises once it was stopped (it cannot be restarted)."""

    async def start(self) -> None:
        await super().start()
        if self.starts > 1:
            raise RuntimeError("cannot restart after stop")


def test_a_start_that_keeps_failing_is_tried_a_few_times_then_the_session_stays_queuing() -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store, offload_store_calls=False)
        ex = _NoRestart(default=ANSWER)
        await m.register_session_with_executor("s", ex)
        session = m._sessions[canonical_runtime_id("s")]
        store.fail_next("atomic_apply")
        _, handle = await m.accept_input_with_completion("s", make_prompt("q"))
        await _until(lambda: ex.stopped, "the executor told to stop")
        # given up: a failed start recorded (so the re-attach ran) and its task over
        await _until(
            lambda: (
                isinstance(session.last_error, ExecutorStartFailed)
                and (session.reattach_task is None or session.reattach_task.done())
            ),
            "the re-attach gave up",
        )
        assert ex.starts == 1 + reattach.MAX_FAILED_STARTS
        error = await m.last_error("s")
        assert isinstance(error, ExecutorStartFailed) and "cannot restart" in str(error.cause)
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert not await m.executor_ready("s") and handle is not None and not handle.done()
        assert m.settled_now("s")
        assert await m.ensure_session_with_executor("s", ScriptedExecutor(default=ANSWER))  # the application's
        assert await _resolved(handle) == Completed(RunResult("answer"))
        await m.close()

    run(body())


def test_the_re_attach_attaches_the_executor_detached_last_not_one_the_application_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A's boundary commit fails and its re-attach waits; the application attaches B; B's
    boundary commit fails before the re-attach wakes: the re-attach attaches B, not A."""
    held = asyncio.Event()
    held.set()

    async def gated_sleep(delay: float, result: Any = None) -> Any:
        task = asyncio.current_task()
        if task is not None and getattr(task.get_coro(), "__name__", "") == "_reattach_loop":
            await held.wait()  # a re-attach's wait: until released
        return await asyncio.sleep(delay, result)

    class _Asyncio:
        def __getattr__(self, name: str) -> Any:
            return gated_sleep if name == "sleep" else getattr(asyncio, name)

    monkeypatch.setattr(machine_module, "asyncio", _Asyncio())

    async def body() -> None:
        store, m, a = await _attached()
        session = m._sessions[canonical_runtime_id("s")]
        held.clear()
        store.fail_next("atomic_apply")
        _, first = await m.accept_input_with_completion("s", make_prompt("first"))
        await _until(lambda: session.reattach_task is not None, "A's re-attach waiting")
        waiting = session.reattach_task
        assert waiting is not None
        b = ScriptedExecutor(default=Succeed(RunResult("b")))
        assert await m.ensure_session_with_executor("s", b)
        store.fail_next("atomic_apply")
        _, second = await m.accept_input_with_completion("s", make_prompt("second"))
        await _until(lambda: b.stopped, "B told to stop")
        assert session.reattach_task is waiting and not waiting.done()  # A's re-attach still waits
        held.set()
        assert await _resolved(first) == Completed(RunResult("b"))
        assert await _resolved(second) == Completed(RunResult("b"))
        assert session.executor is b and b.starts == 2
        assert a.starts == 1
        await m.close()

    run(body())


def test_a_loop_detached_by_a_direct_run_s_failed_boundary_commit_is_attached_again() -> None:
    """``accept_input_and_run``'s boundary commit fails while a loop attached during its run: the
    loop is detached, and the machine attaches it again."""

    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store, offload_store_calls=False)
        await m.register_session("s")
        session = m._sessions[canonical_runtime_id("s")]
        direct = ScriptedExecutor(default=Succeed(RunResult("direct")))
        go = asyncio.Event()

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[str, CoreApplyOutput]:
            await go.wait()
            return "value", await direct.apply(RunId(run_id), primitive)

        task = asyncio.create_task(m.accept_input_and_run("s", make_prompt("direct"), op))
        await _until(lambda: session.apply_task is not None, "the direct run started")
        loop_ex = ScriptedExecutor(default=ANSWER)
        assert await m.ensure_session_with_executor("s", loop_ex)
        store.fail_next("atomic_apply")
        go.set()
        with pytest.raises(BoundaryCommitFailed):
            await task
        assert loop_ex.stopped
        await _until(lambda: session.executor is loop_ex and session.loop_task is not None, "attached again")
        assert loop_ex.starts == 2
        _, later = await m.accept_input_with_completion("s", make_prompt("later"))
        assert await _resolved(later) == Completed(RunResult("answer"))
        await m.close()

    run(body())


def test_with_reattach_off_the_loop_stays_detached_until_the_application_attaches_one() -> None:
    async def body() -> None:
        store, m, ex = await _attached(reattach=False)
        store.fail_next("atomic_apply")
        item = make_prompt("q")
        _, handle = await m.accept_input_with_completion("s", item)
        await _until(lambda: ex.stopped, "the executor told to stop")
        await asyncio.sleep(0.05)  # many times the (shortened) backoff: a re-attach would have run
        assert not await m.executor_ready("s") and handle is not None and not handle.done()
        assert ex.starts == 1
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert await m.ensure_session_with_executor("s", ex)  # the application's own re-attach
        assert await _resolved(handle) == Completed(RunResult("answer"))
        await m.close()

    run(body())


@pytest.mark.parametrize("value", [None, 1, "yes"])
def test_reattach_must_be_a_bool(value: object) -> None:
    with pytest.raises(InvalidSetting, match="reattach"):
        MeerkatMachine.persistent(InMemoryRuntimeStore(), reattach=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidSetting, match="reattach"):
        MeerkatMachine.ephemeral(reattach=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("ending", ["close", "unregister", "halt"])
def test_ending_the_session_during_a_pending_re_attach_ends_it_cleanly(ending: str) -> None:
    async def body() -> None:
        store, m, ex = await _attached()
        store.fail_next("atomic_apply", after_write=True)
        _fail_reads(store)
        session = m._sessions[canonical_runtime_id("s")]
        await m.accept_input("s", make_prompt("q"))
        await _until(lambda: store.injected("load_high_water") >= 2, "two failed tries")
        task = session.reattach_task
        assert task is not None and not task.done()
        if ending == "close":
            await m.close()
        elif ending == "unregister":
            await m.unregister_session("s")
        else:
            await m.halt()
        assert task.done()
        store.clear()
        await asyncio.sleep(0.05)  # a re-attach still alive would attach now
        assert ex.starts == 1
        assert not await m.executor_ready("s")
        if ending != "close":
            await m.close()
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == []  # nothing of the machine outlives its close

    run(body())


@pytest.mark.parametrize("control", ["stop_runtime", "destroy_runtime"])
def test_stopping_or_destroying_the_runtime_ends_a_pending_re_attach(control: str) -> None:
    async def body() -> None:
        store, m, ex = await _attached()
        store.fail_next("atomic_apply")  # refused, nothing written: the session is not in doubt
        store.fail_always("load_high_water")  # the re-attach's probe keeps failing
        session = m._sessions[canonical_runtime_id("s")]
        await m.accept_input("s", make_prompt("q"))
        await _until(lambda: store.injected("load_high_water") >= 2, "two failed tries")
        task = session.reattach_task
        assert task is not None and not task.done()
        await getattr(m, control)("s")
        async with asyncio.timeout(10):
            await asyncio.wait({task})
        store.clear()
        assert ex.starts == 1 and not await m.executor_ready("s")
        await m.close()

    run(body())


def test_losing_the_lease_to_another_worker_ends_a_pending_re_attach() -> None:
    async def body() -> None:
        w = two_workers()
        ex = ScriptedExecutor(default=ANSWER)
        await w.a.register_session_with_executor("s", ex)
        w.store_a.fail_next("atomic_apply")
        w.store_a.fail_always("load_high_water")
        session = w.a._sessions[canonical_runtime_id("s")]
        item = make_prompt("q")
        await w.a.accept_input("s", item)
        await _until(lambda: w.store_a.injected("load_high_water") >= 2, "two failed tries")
        task = session.reattach_task
        assert task is not None and not task.done()
        w.expire()
        other = ScriptedExecutor(default=ANSWER)
        assert await w.b.ensure_session_with_executor("s", other)  # B takes the session over
        await w.a.renew_leases_now()  # A learns it lost the lease
        async with asyncio.timeout(10):
            await asyncio.wait({task})
        w.store_a.clear()
        assert ex.starts == 1  # never attached again on A
        await w.b.settle("s")
        assert [ids for _, ids in other.applied] == [(item.header.id,)]  # B runs the input
        await w.a.close()
        await w.b.close()

    run(body())


def test_a_boundary_commit_failure_and_the_re_attach_replay_through_the_model(tmp_path: Path) -> None:
    """The event log (``boundary_commit_failed``, then the machine's ``begin_attach`` /
    ``finish_attach`` and the runs after it) is a history the session model explains."""

    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store, offload_store_calls=False)
        log = EventLog(tmp_path)
        m.events.subscribe(log)
        await m.register_session_with_executor("s", ScriptedExecutor(default=ANSWER))
        store.fail_next("atomic_apply")
        _, handle = await m.accept_input_with_completion("s", make_prompt("q"))
        assert await _resolved(handle) == Completed(RunResult("answer"))
        _, handle = await m.accept_input_with_completion("s", make_prompt("after"))
        assert await _resolved(handle) == Completed(RunResult("answer"))
        await m.close()
        log.close()

    run(body())
    verdict = check_trace([tmp_path])
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    assert verdict.ok
    assert verdict.rules["boundary_commit_failed"] == 1
    assert verdict.rules["begin_attach"] == 2 and verdict.rules["finish_attach"] == 2
    assert verdict.rules["executor_succeeded"] == 2
