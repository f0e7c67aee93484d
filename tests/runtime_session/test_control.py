"""Lifecycle control: retire, reset, recycle, stop, destroy, unregister."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.completion import RuntimeTerminated
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import decode_lifecycle, decode_record
from meerkat_runtime.session.testing import Block, ScriptedExecutor
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, NotReady, RuntimeDestroyed
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import Abandoned as AbandonedTerminal
from meerkat_runtime.vocab.inputs import AbandonKind
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
)


def _reasons(store: object, session_id: str) -> dict[str, AbandonKind]:
    out: dict[str, AbandonKind] = {}
    for row in stored_rows(store, session_id):
        rec = decode_record(row.payload)
        if isinstance(rec.terminal, AbandonedTerminal):
            out[rec.input_id] = rec.terminal.reason.kind
    return out


def test_retire_without_loop_abandons_queued_work_and_terminates_waiters() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        _, h1 = await m.accept_input_with_completion("s", make_prompt("a"))
        await m.accept_input("s", make_prompt("b"))
        report = await m.retire_runtime("s")
        assert (report.inputs_abandoned, report.inputs_pending_drain) == (2, 0)
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert await m.list_active_inputs("s") == []
        assert h1 is not None and await h1.wait() == RuntimeTerminated("retired without runtime loop")
        assert set(_reasons(store, "s").values()) == {AbandonKind.RETIRED}
        lifecycle = store.load_machine_lifecycle(canonical_runtime_id("s"))
        assert decode_lifecycle(lifecycle).runtime_state is RuntimeState.RETIRED
        again = await m.retire_runtime("s")
        assert again.inputs_abandoned == 0

    run(body())


def test_reset_abandons_everything_and_resolves_waiters() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        _, handle = await m.accept_input_with_completion("s", make_prompt("pending"))
        report = await m.reset_runtime("s")
        assert report.inputs_abandoned == 1
        assert handle is not None and await handle.wait() == RuntimeTerminated("runtime reset")
        assert set(_reasons(store, "s").values()) == {AbandonKind.RESET}
        assert await m.runtime_state("s") is RuntimeState.IDLE

    run(body())


def test_reset_after_retire_returns_to_idle_and_accepts_input() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        await m.retire_runtime("s")
        await m.reset_runtime("s")
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert (await m.accept_input("s", make_prompt())).is_accepted

    run(body())


def test_reset_is_refused_while_a_run_is_in_flight() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        await m.accept_input("s", make_prompt())
        await ex.wait_parked()
        with pytest.raises(InvalidRuntimeTransition) as err:
            await m.reset_runtime("s")
        assert err.value.kind == "invalid_runtime_transition"
        with pytest.raises(InvalidRuntimeTransition):
            await m.recycle_runtime("s")
        ex.release()
        await m.settle("s")
        await m.reset_runtime("s")
        assert await m.runtime_state("s") is RuntimeState.ATTACHED

    run(body())


def test_destroy_is_terminal() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        await m.accept_input("s", make_prompt("a"))
        await m.accept_input("s", make_prompt("b"))
        report = await m.destroy_runtime("s")
        assert report.inputs_abandoned == 2
        assert await m.runtime_state("s") is RuntimeState.DESTROYED
        assert set(_reasons(store, "s").values()) == {AbandonKind.DESTROYED}
        for op in (m.retire_runtime, m.reset_runtime, m.recycle_runtime, m.stop_runtime, m.destroy_runtime):
            with pytest.raises(RuntimeDestroyed):
                await op("s")
        with pytest.raises(RuntimeDestroyed):
            await m.ensure_session_with_executor("s", ScriptedExecutor())

    run(body())


def test_destroy_after_retire_abandons_nothing_more() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        await m.accept_input("s", make_prompt())
        await m.retire_runtime("s")
        assert (await m.destroy_runtime("s")).inputs_abandoned == 0

    run(body())


def test_stop_abandons_work_with_a_terminal_outcome_and_stops_the_loop() -> None:
    async def body() -> None:
        m, store = persistent()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        running, queued = make_prompt("running"), make_prompt("queued")
        _, h_running = await m.accept_input_with_completion("s", running)
        await ex.wait_parked()
        _, h_queued = await m.accept_input_with_completion("s", queued)
        report = await m.stop_runtime("s")
        assert report.inputs_abandoned == 2
        assert await m.runtime_state("s") is RuntimeState.STOPPED
        assert await m.registration_phase("s") is RegistrationPhase.QUEUING
        assert ex.stopped
        for handle in (h_running, h_queued):
            assert handle is not None and await handle.wait() == RuntimeTerminated("runtime stopped")
        assert _reasons(store, "s") == {running.header.id: AbandonKind.STOPPED, queued.header.id: AbandonKind.STOPPED}
        with pytest.raises(NotReady):
            await m.accept_input("s", make_prompt())
        with pytest.raises(InvalidRuntimeTransition):
            await m.stop_runtime("s")
        with pytest.raises(NotReady):
            await m.ensure_session_with_executor("s", ScriptedExecutor())
        assert (await m.destroy_runtime("s")).inputs_abandoned == 0

    run(body())


def test_recycle_keeps_queued_work_and_waiters_until_an_executor_attaches() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        report = await m.recycle_runtime("s")
        assert report.inputs_transferred == 1
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert handle is not None and not handle.done()
        await m.ensure_session_with_executor("s", ScriptedExecutor())
        assert (await handle.wait()).kind == "completed_without_result"

    run(body())


def test_recycle_revives_a_retired_runtime_and_attached_recycle_wakes_the_work() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        await queue_behind_run(m, ex, make_prompt("a"), make_prompt("b"))
        await m.retire_runtime("s")
        ex.release()
        await m.settle("s")
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        await m.recycle_runtime("s")
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        item = make_prompt("after recycle")
        view = await settled_view(m, item)
        assert view.current_state is S.CONSUMED

    run(body())


def test_unregister_terminates_pending_waiters_and_keeps_durable_state() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        item = make_prompt()
        _, handle = await m.accept_input_with_completion("s", item)
        await m.unregister_session("s")
        assert handle is not None and await handle.wait() == RuntimeTerminated("runtime session unregistered")
        assert [r.input_id for r in stored_rows(store, "s")] == [item.header.id]
        await m.register_session("s")
        assert await m.list_active_inputs("s") == [item.header.id]

    run(body())


def test_unregister_with_a_run_in_flight_stops_the_executor() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        await ex.wait_parked()
        await m.unregister_session("s")
        assert handle is not None and (await handle.wait()).kind == "runtime_terminated"
        assert ex.stopped
        await m.unregister_session("s")  # unknown sessions are ignored

    run(body())


def test_stop_and_destroy_without_a_loop_commit_durably() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        _, handle = await m.accept_input_with_completion("s", make_prompt())
        await m.stop_runtime("s")
        assert handle is not None and await handle.wait() == RuntimeTerminated("runtime stopped")
        lifecycle = store.load_machine_lifecycle(canonical_runtime_id("s"))
        assert decode_lifecycle(lifecycle).runtime_state is RuntimeState.STOPPED
        await m.destroy_runtime("s")
        lifecycle = store.load_machine_lifecycle(canonical_runtime_id("s"))
        assert decode_lifecycle(lifecycle).runtime_state is RuntimeState.DESTROYED

    run(body())


class _SlowLifecycleStore:
    """Delays (and optionally fails) lifecycle commits of an in-memory store."""

    def __init__(self) -> None:
        from meerkat_runtime.store.memory import InMemoryRuntimeStore

        self.inner = InMemoryRuntimeStore()
        self.fail = False
        self.delay = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: object, *, fence: object = None
    ) -> None:
        import time

        from meerkat_runtime.vocab.errors import WriteFailed

        time.sleep(self.delay)
        if self.fail:
            raise WriteFailed(runtime_id, "slow failure")
        self.inner.commit_machine_lifecycle(runtime_id, lifecycle, rows, fence=fence)  # type: ignore[arg-type]


@pytest.mark.parametrize("fail", [False, True])
def test_destroyed_is_never_visible_while_its_commit_is_in_flight(fail: bool) -> None:
    async def body() -> None:
        import asyncio

        from meerkat_runtime.vocab.errors import DurableWriteFailed

        store = _SlowLifecycleStore()
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)  # type: ignore[arg-type]
        await m.register_session("s")
        store.delay, store.fail = 0.05, fail
        destroy = asyncio.create_task(m.destroy_runtime("s"))
        await asyncio.sleep(0.01)
        observed = await m.runtime_state("s")  # waits for the commit to settle
        assert observed is (RuntimeState.IDLE if fail else RuntimeState.DESTROYED)
        if fail:
            with pytest.raises(DurableWriteFailed):
                await destroy
        else:
            await destroy
            lifecycle = store.inner.load_machine_lifecycle(canonical_runtime_id("s"))
            assert lifecycle is not None and decode_lifecycle(lifecycle).runtime_state is RuntimeState.DESTROYED

    run(body())
