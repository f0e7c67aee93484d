"""``recover_session``: a live session re-reads its rows from the store and adopts them in place
(the model's ``recover`` / ``recover_noop``)."""

from __future__ import annotations

import dataclasses

import pytest
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.reports import RecoveryReport
from meerkat_runtime.session.routed import RoutedInput
from meerkat_runtime.session.row_codec import decode_record, encode_record
from meerkat_runtime.session.testing import Block, ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import InvalidRuntimeTransition, RuntimeDestroyed, SessionNotFound
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import S, make_prompt, persistent, run, stored_rows

RT = canonical_runtime_id("s")


def _stage_behind_the_session(m: MeerkatMachine, store: InMemoryRuntimeStore, input_id: str) -> None:
    """Write the row of ``input_id`` back Staged with one attempt (under the session's own
    fence), as a lifecycle commit during a run leaves it when the run's boundary commit then
    fails."""
    (row,) = [r for r in stored_rows(store, "s") if r.input_id == input_id]
    record = decode_record(row.payload)
    record.phase = S.STAGED
    record.attempts = 1
    claim = m.session_claim_handle().get(RT)
    assert claim is not None
    store.persist_input_state(RT, InputRow(input_id, encode_record(record)), fence=claim.fence)


def test_nothing_to_recover_writes_nothing_and_changes_nothing() -> None:
    async def body() -> None:
        m, store = persistent()
        events: list[LifecycleEvent] = []
        m.events.subscribe(events.append)
        await m.register_session("s")
        item = make_prompt()
        await m.accept_input("s", item)
        before = stored_rows(store, "s")
        report = await m.recover_session("s")
        assert report == RecoveryReport(inputs_recovered=1, inputs_requeued=0, inputs_consumed=0, rows_written=0)
        assert stored_rows(store, "s") == before
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert await m.list_active_inputs("s") == [item.header.id]
        assert events[-1].rule == "recover_noop"

    run(body())


def test_a_row_recovery_normalises_is_written_back_and_memory_adopts_it() -> None:
    async def body() -> None:
        m, store = persistent()
        events: list[LifecycleEvent] = []
        m.events.subscribe(events.append)
        await m.register_session("s")
        item = make_prompt()
        await m.accept_input("s", item)
        _stage_behind_the_session(m, store, item.header.id)
        report = await m.recover_session("s")
        assert report == RecoveryReport(inputs_recovered=1, inputs_requeued=1, inputs_consumed=0, rows_written=1)
        (row,) = stored_rows(store, "s")
        stored = decode_record(row.payload)
        assert stored.phase is S.QUEUED and stored.attempts == 0 and stored.recovery_count == 1
        view = await m.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.QUEUED and view.attempts == 0
        assert events[-1].rule == "recover"
        # now memory is what the store recovers to
        assert (await m.recover_session("s")).rows_written == 0
        assert events[-1].rule == "recover_noop"

    run(body())


def test_an_attached_loop_stays_attached_and_keeps_draining_after_recover() -> None:
    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        await m.ensure_session_with_executor("s", ScriptedExecutor())
        await m.recover_session("s")
        assert await m.runtime_state("s") is RuntimeState.ATTACHED
        assert await m.registration_phase("s") is RegistrationPhase.ACTIVE
        item = make_prompt()
        await m.accept_input("s", item)
        await m.settle("s")
        view = await m.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.CONSUMED

    run(body())


def test_recover_is_refused_during_a_run_when_destroyed_and_when_not_registered() -> None:
    async def body() -> None:
        m, store = persistent()
        with pytest.raises(SessionNotFound):
            await m.recover_session("s")
        await m.register_session("s")
        executor = ScriptedExecutor(Block())
        await m.ensure_session_with_executor("s", executor)
        item = make_prompt()
        await m.accept_input("s", item)
        await executor.wait_parked()
        before = stored_rows(store, "s")
        with pytest.raises(InvalidRuntimeTransition):
            await m.recover_session("s")
        assert stored_rows(store, "s") == before
        await m.destroy_runtime("s")
        with pytest.raises(RuntimeDestroyed):
            await m.recover_session("s")

    run(body())


def test_recover_is_allowed_when_stopped_and_keeps_the_phase() -> None:
    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        await m.accept_input("s", make_prompt())
        await m.stop_runtime("s")
        report = await m.recover_session("s")
        assert report == RecoveryReport(0, 0, 0, 0)
        assert await m.runtime_state("s") is RuntimeState.STOPPED

    run(body())


def test_recover_can_be_routed_in() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        item = make_prompt()
        await m.accept_input("s", item)
        _stage_behind_the_session(m, store, item.header.id)
        report = await m.apply_routed_meerkat_input("s", RoutedInput("recover"))
        assert isinstance(report, RecoveryReport) and report.rows_written == 1
        assert dataclasses.asdict(report)["inputs_requeued"] == 1

    run(body())
