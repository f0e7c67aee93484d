"""Crash recovery at registration: normalisation, corruption, canonical ids, epoch and ops."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.completion import CompletedWithoutResult
from meerkat_runtime.session.core.ledger import InputRecord, Lane
from meerkat_runtime.session.inputs import HandlingMode
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.row_codec import (
    LifecycleRecord,
    decode_record,
    encode_lifecycle,
    encode_record,
)
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import RecoveryCorruption, RuntimeDestroyed, SnapshotFormatError
from meerkat_runtime.vocab.ids import OperationId, RunId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec, OperationStatus
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, queue_behind_run, run, stored_rows

RT = canonical_runtime_id("s")


def _restart(storage: MemoryStorage) -> tuple[MeerkatMachine, InMemoryRuntimeStore]:
    store = InMemoryRuntimeStore(storage)
    return MeerkatMachine.persistent(store, ownership=SAME_WORKER), store


def _row(
    phase: S,
    *,
    attempts: int = 0,
    run_id: str | None = None,
    seq: int | None = None,
    admission: int = 1,
    durability: Durability = Durability.DURABLE,
    key: str | None = None,
) -> InputRecord:
    item = make_prompt(f"{phase.value}", durability=durability, idempotency_key=key)
    return InputRecord(
        input=item,
        phase=phase,
        lane=Lane.QUEUE,
        admission_seq=admission,
        created_at=1.0,
        updated_at=1.0,
        attempts=attempts,
        last_run_id=RunId(run_id) if run_id else None,
        last_boundary_sequence=seq,
    )


def _put(store: InMemoryRuntimeStore, *records: InputRecord) -> None:
    for rec in records:
        store.persist_input_state(RT, InputRow(rec.input_id, encode_record(rec)))


def test_recovered_queued_input_is_processed_after_restart() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        await first.register_session("s")
        item = make_prompt()
        await first.accept_input("s", item)
        second, _ = _restart(storage)
        await second.register_session("s")
        assert await second.list_active_inputs("s") == [item.header.id]
        view = await second.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.QUEUED
        await second.ensure_session_with_executor("s", ScriptedExecutor())
        await second.settle("s")
        view = await second.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.CONSUMED

    run(body())


def test_idempotency_keys_survive_a_restart() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        await first.register_session("s")
        finished = make_prompt(idempotency_key="finished")
        waiting = make_prompt(idempotency_key="waiting")
        await first.accept_input("s", finished)
        await first.ensure_session_with_executor("s", ScriptedExecutor())
        await first.settle("s")
        await first.unregister_session("s")
        await first.register_session("s")
        await first.accept_input("s", waiting)
        second, _ = _restart(storage)
        await second.register_session("s")
        for original in (finished, waiting):
            dup = make_prompt("again", idempotency_key=original.header.idempotency_key)
            outcome, handle = await second.accept_input_with_completion("s", dup)
            assert outcome == Deduplicated(dup.header.id, original.header.id)
            assert handle is not None
            # a finished input's stored outcome answers the duplicate, after the restart too
            assert handle.done() == (original is finished)
            if original is finished:
                assert isinstance(outcome, Deduplicated) and outcome.outcome == CompletedWithoutResult()
                assert handle.outcome() == CompletedWithoutResult()
            else:
                assert isinstance(outcome, Deduplicated) and outcome.outcome is None

    run(body())


def test_ephemeral_inputs_are_dropped_at_recovery() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        await first.register_session("s")
        await first.accept_input("s", make_prompt(durability=Durability.EPHEMERAL))
        kept = make_prompt()
        await first.accept_input("s", kept)
        second, _ = _restart(storage)
        await second.register_session("s")
        assert await second.list_active_inputs("s") == [kept.header.id]

    run(body())


def test_applied_rows_with_a_stored_receipt_become_consumed_without_replay() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        committed = _row(S.APPLIED_PENDING_CONSUMPTION, attempts=1, run_id="run-1", seq=0, admission=1)
        missing = _row(S.APPLIED, attempts=1, run_id="run-2", seq=0, admission=2)
        staged = _row(S.STAGED, attempts=2, run_id="run-3", admission=3)
        accepted = _row(S.ACCEPTED, admission=4)
        _put(store, committed, missing, staged, accepted)
        receipt = BoundaryReceipt("run-1", 0, BoundaryKind.RUN_START, (committed.input_id,))
        store.atomic_apply(RT, session_snapshot=None, receipt=receipt, rows=[])
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await m.register_session("s")
        views = {v.input_id: v for v in await m.input_states("s")}
        assert views[committed.input_id].current_state is S.CONSUMED
        assert views[missing.input_id].current_state is S.QUEUED
        assert views[missing.input_id].attempts == 0
        assert views[staged.input_id].current_state is S.QUEUED and views[staged.input_id].attempts == 1
        assert views[accepted.input_id].current_state is S.QUEUED
        assert (await m.session_view("s")).queue == (missing.input_id, staged.input_id, accepted.input_id)
        written = {r.input_id: decode_record(r.payload).phase for r in stored_rows(store, "s")}
        assert written == {
            committed.input_id: S.CONSUMED,
            missing.input_id: S.QUEUED,
            staged.input_id: S.QUEUED,
            accepted.input_id: S.QUEUED,
        }

    run(body())


def test_destroyed_runtime_cannot_be_registered_again_and_is_not_rewritten() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, store = _restart(storage)
        await first.register_session("s")
        await first.destroy_runtime("s")
        lifecycle = store.load_machine_lifecycle(RT)
        second, store2 = _restart(storage)
        with pytest.raises(RuntimeDestroyed):
            await second.register_session("s")
        assert not await second.contains_session("s")
        assert store2.load_machine_lifecycle(RT) == lifecycle

    run(body())


def test_active_rows_under_a_stopped_record_are_corruption_naming_the_row() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        bad = _row(S.QUEUED)
        store.commit_machine_lifecycle(
            RT,
            encode_lifecycle(LifecycleRecord(RuntimeState.STOPPED, None)),
            [InputRow(bad.input_id, encode_record(bad))],
        )
        before = stored_rows(store, "s")
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        with pytest.raises(RecoveryCorruption) as err:
            await m.register_session("s")
        assert bad.input_id in str(err.value) and err.value.kind == "recovery_corruption"
        assert not await m.contains_session("s")
        assert stored_rows(store, "s") == before

    run(body())


@pytest.mark.parametrize(
    "payload, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b'{"row_version": 99}', "unsupported row_version 99"),
        (b"[]", "must be a JSON object"),
    ],
)
def test_unreadable_rows_fail_recovery_naming_the_row(payload: bytes, fragment: str) -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        store.persist_input_state(RT, InputRow("row-x", payload))
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        with pytest.raises(RecoveryCorruption) as err:
            await m.register_session("s")
        assert "row-x" in str(err.value) and fragment in str(err.value)

    run(body())


def test_contradicting_rows_fail_recovery() -> None:
    async def body() -> None:
        for rows in (
            [_row(S.QUEUED, key="k", admission=1), _row(S.QUEUED, key="k", admission=2)],
            [_row(S.QUEUED, admission=5), _row(S.QUEUED, admission=5)],
            [_row(S.QUEUED, attempts=4)],
        ):
            store = InMemoryRuntimeStore()
            _put(store, *rows)
            m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
            with pytest.raises(RecoveryCorruption) as err:
                await m.register_session("s")
            assert rows[-1].input_id in str(err.value)

    run(body())


def test_legacy_alias_rows_are_never_read() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        store.persist_input_state("s", InputRow("legacy", b"garbage that would fail recovery"))
        store.commit_machine_lifecycle("s", b"garbage", [])
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await m.register_session("s")
        assert await m.list_active_inputs("s") == []
        assert await m.runtime_state("s") is RuntimeState.IDLE

    run(body())


def test_retired_and_stopped_survive_re_registration() -> None:
    async def body() -> None:
        for op, phase in (("retire_runtime", RuntimeState.RETIRED), ("stop_runtime", RuntimeState.STOPPED)):
            storage = MemoryStorage()
            first, _ = _restart(storage)
            await first.register_session("s")
            await getattr(first, op)("s")
            second, _ = _restart(storage)
            await second.register_session("s")
            assert await second.runtime_state("s") is phase

    run(body())


def test_missing_receipt_replays_each_contributor_once_in_order() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        await first.register_session("s")
        items = [make_prompt(f"p{i}") for i in range(3)]
        for item in items:
            await first.accept_input("s", item)
        second, _ = _restart(storage)
        ex = ScriptedExecutor()
        await second.register_session_with_executor("s", ex)
        await second.settle("s")
        assert [ids[0] for _, ids in ex.applied] == [i.header.id for i in items]

    run(body())


def test_requeue_order_after_a_failure_survives_a_restart() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        ex = ScriptedExecutor(Fail(), Block())
        await first.register_session_with_executor("s", ex)
        a, b = make_prompt("a"), make_prompt("b")
        await first.accept_input("s", a)
        await ex.wait_parked()  # the retry is in flight; unregistering leaves the row as stored
        await first.unregister_session("s")
        await first.register_session("s")
        await first.accept_input("s", b)
        second, _ = _restart(storage)
        await second.register_session("s")
        assert (await second.session_view("s")).queue == (a.header.id, b.header.id)
        view = await second.input_state("s", a.header.id)
        assert view is not None and view.attempts == 1

    run(body())


def _spec(op_id: str) -> OperationSpec:
    return OperationSpec(OperationId(op_id), OperationKind.BACKGROUND_TOOL_OP, "s", "tool")


def test_bindings_share_one_registry_and_keep_epoch_and_ops_across_restart() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        bindings = await first.prepare_bindings("s")
        assert bindings.session_id == "s" and bindings.runtime_id == RT
        assert await first.ops_lifecycle_registry("s") is bindings.ops_registry
        other = await first.prepare_bindings("t")
        assert other.epoch_id != bindings.epoch_id
        assert (await first.prepare_bindings("s")).epoch_id == bindings.epoch_id
        registry = bindings.ops_registry
        registry.register_operation(_spec("op-done"))
        registry.provisioning_succeeded("op-done")
        registry.complete_operation("op-done", OperationResult("op-done", "ok"))
        registry.register_operation(_spec("op-live"))
        bindings.cursors.advance_runtime_observed(1)
        registry.register_operation(_spec("op-late"))
        registry.cancel_operation("op-late")
        second, _ = _restart(storage)
        recovered = await second.prepare_bindings("s")
        assert recovered.epoch_id == bindings.epoch_id
        assert recovered.ops_registry is not registry
        done = recovered.ops_registry.snapshot("op-done")
        assert done is not None and done.status is OperationStatus.COMPLETED
        assert recovered.ops_registry.snapshot("op-live") is None
        assert recovered.cursors.runtime_observed == 1

    run(body())


def test_epoch_is_kept_across_restart_without_any_operation() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        first, _ = _restart(storage)
        epoch = (await first.prepare_bindings("s")).epoch_id
        second, _ = _restart(storage)
        assert (await second.prepare_bindings("s")).epoch_id == epoch

    run(body())


def test_unreadable_canonical_ops_state_fails_registration() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        store.persist_ops_lifecycle(RT, b'{"garbage": true}')
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        with pytest.raises(SnapshotFormatError):
            await m.prepare_bindings("s")
        assert not await m.contains_session("s")

    run(body())


def test_recycled_waiters_complete_after_restartless_attach() -> None:
    async def body() -> None:
        m = MeerkatMachine.persistent(InMemoryRuntimeStore(), ownership=SAME_WORKER)
        await m.register_session("s")
        _, handle = await m.accept_input_with_completion("s", make_prompt(handling_mode=HandlingMode.STEER))
        await m.recycle_runtime("s")
        await m.ensure_session_with_executor("s", ScriptedExecutor())
        assert handle is not None and await handle.wait() == CompletedWithoutResult()

    run(body())


def test_superseding_accept_during_a_run_stores_the_pre_run_phase() -> None:
    async def body() -> None:
        from meerkat_runtime.session.inputs import external_event
        from meerkat_runtime.session.row_codec import decode_lifecycle
        from meerkat_runtime.session.testing import Block

        storage = MemoryStorage()
        first, store = _restart(storage)
        ex = ScriptedExecutor(Block())
        await first.register_session_with_executor("s", ex)
        await queue_behind_run(first, ex, make_prompt("running"), external_event("tick", "1", supersession_key="k"))
        await first.accept_input("s", external_event("tick", "2", supersession_key="k"))
        lifecycle = store.load_machine_lifecycle(RT)
        assert lifecycle is not None and decode_lifecycle(lifecycle).runtime_state is RuntimeState.IDLE
        second, _ = _restart(storage)
        await second.register_session("s")
        assert len(await second.list_active_inputs("s")) == 2
        await first.close()

    run(body())


def test_halt_writes_nothing_and_recovery_replays_the_run_in_flight() -> None:
    async def body() -> None:
        from meerkat_runtime.session.testing import Block

        storage = MemoryStorage()
        first, store = _restart(storage)
        ex = ScriptedExecutor(Block())
        await first.register_session_with_executor("s", ex)
        _, handle = await first.accept_input_with_completion("s", make_prompt())
        await ex.wait_parked()
        rows_before = stored_rows(store, "s")
        await first.halt()
        assert not await first.contains_session("s")
        assert handle is not None and not handle.done()
        assert not ex.stopped
        assert stored_rows(store, "s") == rows_before
        second, _ = _restart(storage)
        again = ScriptedExecutor()
        await second.register_session_with_executor("s", again)
        await second.settle("s")
        assert len(again.applied) == 1
        view = (await second.input_states("s"))[0]
        assert view.current_state is S.CONSUMED and view.attempts == 1

    run(body())
