"""The steps the model allows while a session's registration is Attaching do not wait for an
executor ``start()`` that an attach awaits under the session gate (and that may never return):
an accept writes its row and queues it (the loop drains it once attached), retire, reset,
recycle, recover and interrupt take effect as without a loop; ``accept_input_and_run``, which the
model refuses while Attaching, is refused at once with ``NotReady`` naming the pending start. Each
event log replays through the model (``begin_attach``, the step, then ``finish_attach`` or
``attach_failed``). ``run_bounded`` only guards against a hang: the base code, where these calls
wait for the start, fails there instead of hanging; no test asserts how long anything took."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import NotReady, SessionNotFound
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import S, logged, make_prompt, persistent, replays, run, stored_rows, view_of
from tests.runtime_session.test_hanging_executor_start import NeverStarts

T = TypeVar("T")


async def run_bounded(call: Awaitable[T], stuck: NeverStarts) -> T:
    """Await ``call`` with a guard against a hang (not a timing check); on a hang the stuck start
    is let go so the event loop can shut down, and the test fails."""
    try:
        return await asyncio.wait_for(call, 10)
    except TimeoutError:
        stuck.let_go.set()
        raise


async def _attaching(
    m: MeerkatMachine, *queued: Input, session_id: str = "s"
) -> tuple[NeverStarts, asyncio.Task[bool]]:
    """Register ``session_id``, queue ``queued`` (no loop), then start an attach whose ``start()``
    hangs; returns the executor and the attach's task once the start is pending."""
    await m.register_session(session_id)
    for item in queued:
        await m.accept_input(session_id, item)
    stuck = NeverStarts()
    attaching = asyncio.create_task(m.register_session_with_executor(session_id, stuck))
    await stuck.hanging.wait()
    return stuck, attaching


@pytest.mark.parametrize("with_completion", [False, True])
def test_an_accept_does_not_wait_for_a_pending_start(with_completion: bool, tmp_path: Path) -> None:
    """The accept returns while the start is pending: its row is in the store, the input Queued;
    once the start returns the loop is attached and runs it."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, log = logged(store, tmp_path)
        stuck, attaching = await _attaching(m)
        item = make_prompt("during the start")
        if with_completion:
            outcome, handle = await run_bounded(m.accept_input_with_completion("s", item), stuck)
            assert handle is not None and not handle.done()
        else:
            outcome = await run_bounded(m.accept_input("s", item), stuck)
        assert isinstance(outcome, Accepted)
        assert [row.input_id for row in stored_rows(store, "s")] == [item.header.id]  # durable
        assert (await view_of(m, item)).current_state is S.QUEUED
        assert await m.registration_phase("s") is RegistrationPhase.ATTACHING
        assert not attaching.done() and stuck.applied == []
        stuck.let_go.set()
        assert await attaching
        await m.settle("s")
        assert [ids for _, ids in stuck.applied] == [(item.header.id,)]  # the attached loop drained it
        assert (await view_of(m, item)).current_state is S.CONSUMED
        await m.close()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "accept", "finish_attach", "start_run", "executor_succeeded")


def test_an_input_accepted_during_a_pending_start_survives_a_stop_and_a_crash(tmp_path: Path) -> None:
    """Accepted while the start is pending, then the runtime is stopped (the start given up) or the
    machine halts: the input is Abandoned(stopped) — or, after a crash, recovered Queued from the
    store; nothing is half-applied."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, log = logged(store, tmp_path)
        stuck, attaching = await _attaching(m)
        kept = make_prompt("kept")
        await run_bounded(m.accept_input("s", kept), stuck)
        await m.halt()  # a crash: the start is given up, nothing attached
        with pytest.raises(SessionNotFound):  # nothing attached
            await attaching
        m2, _ = persistent(store)
        m2.events.subscribe(log)
        await m2.register_session("s")
        assert (await view_of(m2, kept)).current_state is S.QUEUED  # the accept was durable
        stuck2, attaching2 = await _attaching(m2)
        dropped = make_prompt("dropped")
        await run_bounded(m2.accept_input("s", dropped), stuck2)
        await run_bounded(m2.stop_runtime("s"), stuck2)
        with pytest.raises(NotReady):
            await attaching2
        for item in (kept, dropped):
            view = await view_of(m2, item)
            assert view.current_state is S.ABANDONED
        assert await m2.runtime_state("s") is RuntimeState.STOPPED
        await m2.close()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "accept", "attach_failed", "stop")


def test_accept_and_run_during_a_pending_start_is_not_ready() -> None:
    """The model refuses ``accept_input_and_run`` while Attaching: the call is refused at once
    (``NotReady`` naming the pending start), nothing is written, the attach goes on."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, _ = persistent(store)
        stuck, attaching = await _attaching(m)
        item = make_prompt("direct")

        async def op(run_id: str, primitive: RunPrimitive) -> tuple[None, CoreApplyOutput]:
            raise AssertionError("not run")

        with pytest.raises(NotReady) as refused:
            await run_bounded(m.accept_input_and_run("s", item, op), stuck)
        assert "start() is pending" in str(refused.value)
        assert stored_rows(store, "s") == [] and await m.input_state("s", item.header.id) is None
        stuck.let_go.set()
        assert await attaching
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        await m.close()

    run(body())


@pytest.mark.parametrize(
    ("control", "rule", "phase", "queued_after"),
    [
        ("retire", "retire_without_loop", RuntimeState.RETIRED, S.ABANDONED),
        ("reset", "reset", RuntimeState.ATTACHED, S.ABANDONED),
        ("recycle", "recycle", RuntimeState.ATTACHED, S.CONSUMED),
        ("recover", "recover_noop", RuntimeState.ATTACHED, S.CONSUMED),
        ("interrupt", "interrupt_noop", RuntimeState.ATTACHED, S.CONSUMED),
    ],
)
def test_a_control_does_not_wait_for_a_pending_start(
    control: str, rule: str, phase: RuntimeState, queued_after: S, tmp_path: Path
) -> None:
    """Retire, reset, recycle, recover and interrupt take effect while the start is pending, as
    the model says for a session without a loop (retire and reset abandon the queued input,
    recycle, recover and interrupt keep it); once the start returns the loop is attached and
    drains what is still queued."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, log = logged(store, tmp_path)
        item = make_prompt("queued")
        stuck, attaching = await _attaching(m, item)
        calls = {
            "retire": m.retire_runtime,
            "reset": m.reset_runtime,
            "recycle": m.recycle_runtime,
            "recover": m.recover_session,
            "interrupt": m.interrupt_current_run,
        }
        await run_bounded(calls[control]("s"), stuck)
        assert await m.registration_phase("s") is RegistrationPhase.ATTACHING
        assert not attaching.done() and stuck.applied == []
        stuck.let_go.set()
        assert await attaching
        await m.settle("s")
        assert await m.runtime_state("s") is phase
        assert (await view_of(m, item)).current_state is queued_after
        ran = [(item.header.id,)] if queued_after is S.CONSUMED else []
        assert [ids for _, ids in stuck.applied] == ran
        await m.close()
        log.close()

    run(body())
    finished = "finish_attach_keep_phase" if phase is RuntimeState.RETIRED else "finish_attach"
    replays(tmp_path, "begin_attach", rule, finished)


def test_calls_sharing_the_gate_go_one_at_a_time_and_the_attach_waits_for_them(tmp_path: Path) -> None:
    """Several accepts and reads while the start is pending all return; the start returning
    meanwhile does not let the attach go on before they are over: every accepted input is drained
    by the attached loop, in order."""

    async def body() -> None:
        store = InMemoryRuntimeStore()
        m, log = logged(store, tmp_path)
        stuck, attaching = await _attaching(m)
        items = [make_prompt(f"item {n}") for n in range(4)]
        calls = [asyncio.create_task(m.accept_input("s", item)) for item in items]
        reads = [asyncio.create_task(m.list_active_inputs("s")) for _ in range(2)]
        await asyncio.sleep(0)
        stuck.let_go.set()  # the start returns while the accepts are still queued for their turn
        outcomes = await run_bounded(asyncio.gather(*calls), stuck)
        assert all(isinstance(o, Accepted) for o in outcomes)
        await asyncio.gather(*reads)
        assert await attaching
        await m.settle("s")
        assert [ids for _, ids in stuck.applied] == [(item.header.id,) for item in items]
        await m.close()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "accept", "finish_attach")


class SlowAccepts(InMemoryRuntimeStore):
    """``persist_input_state`` (an accept's write, in a worker thread) waits for ``release`` once
    ``blocking`` is set, and sets ``entered`` when it starts waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.blocking = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        if self.blocking:
            self.entered.set()
            self.release.wait(10)
        super().persist_input_state(runtime_id, row, fence=fence)


def test_a_cancelled_attach_waits_for_an_accept_sharing_the_gate(tmp_path: Path) -> None:
    """The attach's caller is cancelled while an accept that shares the gate is writing its row:
    the attach records ``attach_failed`` only once the accept is over (never while a write is in
    flight), the accept is acknowledged, the input stays Queued and the log replays."""

    async def body() -> None:
        store = SlowAccepts()
        m, log = logged(store, tmp_path)
        stuck, attaching = await _attaching(m)
        store.blocking = True
        item = make_prompt("slow write")
        accepting = asyncio.create_task(m.accept_input("s", item))
        try:
            async with asyncio.timeout(10):  # a guard against a hang, not a timing check
                while not store.entered.is_set():
                    await asyncio.sleep(0.001)
        except TimeoutError:
            stuck.let_go.set()
            raise
        attaching.cancel()
        await asyncio.sleep(0.01)
        assert not attaching.done()  # waits for the accept's write, which is in flight
        assert await m.registration_phase("s") is RegistrationPhase.ATTACHING
        store.release.set()
        assert isinstance(await accepting, Accepted)
        with pytest.raises(asyncio.CancelledError):
            await attaching
        assert stuck.start_cancelled
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert (await view_of(m, item)).current_state is S.QUEUED
        fresh = NeverStarts(hang_from=2)  # attaches at once
        assert await m.register_session_with_executor("s", fresh)
        await m.settle("s")
        assert [ids for _, ids in fresh.applied] == [(item.header.id,)]
        await m.close()
        log.close()

    run(body())
    replays(tmp_path, "begin_attach", "accept", "attach_failed", "finish_attach")
