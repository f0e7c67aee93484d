"""What a durable commit writes: the lifecycle record and every row that differs from the store
(no more, no fewer); a control operation that changes nothing writes nothing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import decode_lifecycle, decode_record
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.records import BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import DurableWriteFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, queue_behind_run, run, stored_rows

RT = canonical_runtime_id("s")


class RecordingStore(InMemoryRuntimeStore):
    """Remembers the input ids of the rows of every successful commit."""

    def __init__(self, storage: MemoryStorage | None = None) -> None:
        super().__init__(storage)
        self.commits: list[tuple[str, list[str]]] = []

    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        super().commit_machine_lifecycle(runtime_id, lifecycle, rows, fence=fence)
        self.commits.append(("lifecycle", [r.input_id for r in rows]))

    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        super().atomic_apply(runtime_id, session_snapshot=session_snapshot, receipt=receipt, rows=rows, fence=fence)
        self.commits.append(("boundary", [r.input_id for r in rows]))


def _machine(storage: MemoryStorage | None = None) -> tuple[MeerkatMachine, FaultInjectingStore, RecordingStore]:
    """A machine that leaves a loop a failed boundary commit detached as it is (``reattach``
    off): these tests look at the rows while it is, and attach a loop again themselves."""
    recording = RecordingStore(storage)
    store = FaultInjectingStore(recording)
    machine = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=SAME_WORKER, reattach=False)
    return machine, store, recording


def _stored(store: object, input_id: str) -> tuple[S, int]:
    for row in stored_rows(store, "s"):
        if row.input_id == input_id:
            rec = decode_record(row.payload)
            return rec.phase, rec.attempts
    raise AssertionError(f"no stored row for {input_id}")


def _stored_phase(store: FaultInjectingStore) -> RuntimeState:
    data = store.load_machine_lifecycle(RT)
    assert data is not None
    return decode_lifecycle(data).runtime_state


# --- a no-op writes nothing -----------------------------------------------------------------


@pytest.mark.parametrize("with_loop", [False, True])
def test_retiring_a_retired_runtime_writes_nothing_and_cannot_fail(with_loop: bool) -> None:
    async def body() -> None:
        m, store, _ = _machine()
        if with_loop:
            await m.register_session_with_executor("s", ScriptedExecutor())
        else:
            await m.register_session("s")
        await m.accept_input("s", make_prompt("queued"))
        await m.settle("s")
        await m.retire_runtime("s")
        before = await m.session_view("s")
        calls = store.call_counts()
        store.fail_always()  # every store call would fail now
        again = await m.retire_runtime("s")
        assert store.call_counts() == calls  # not even attempted
        assert await m.session_view("s") == before
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert (again.inputs_abandoned, again.inputs_pending_drain) == (0, 0)
        store.clear()

    run(body())


def test_interrupt_without_a_run_writes_nothing() -> None:
    async def body() -> None:
        m, store, _ = _machine()
        await m.register_session("s")
        calls = store.call_counts()
        store.fail_always()
        assert (await m.interrupt_current_run("s")).cancelled_input_ids == ()
        assert store.call_counts() == calls

    run(body())


# --- rows changed by a step that wrote nothing are written by the next commit ----------------


async def _staged_on_disk_queued_in_memory(m: MeerkatMachine, store: FaultInjectingStore) -> str:
    """A run in flight, a retire that writes its row as Staged, then a failed boundary commit
    that puts the row back to Queued in memory only. Returns the input id."""
    ex = ScriptedExecutor(Block())
    await m.register_session_with_executor("s", ex)
    item = make_prompt("a")
    await m.accept_input("s", item)
    await ex.wait_parked()
    await m.retire_runtime("s")
    input_id = item.header.id
    assert _stored(store, input_id) == (S.STAGED, 1)
    store.fail_next("atomic_apply")
    ex.release(Succeed())
    await m.settle("s")
    assert isinstance(await m.last_error("s"), BoundaryCommitFailed)
    view = await m.input_state("s", input_id)
    assert view is not None and (view.current_state, view.attempts) == (S.QUEUED, 0)
    assert _stored(store, input_id) == (S.STAGED, 1)  # the failed boundary wrote nothing
    assert await m.registration_phase("s") is RegistrationPhase.QUEUING
    assert await m.runtime_state("s") is RuntimeState.RETIRED
    return input_id


@pytest.mark.parametrize("control", ["recycle_runtime", "reset_runtime", "stop_runtime", "destroy_runtime"])
def test_a_control_commit_writes_a_row_restored_by_a_failed_boundary(control: str) -> None:
    async def body() -> None:
        m, store, recording = _machine()
        input_id = await _staged_on_disk_queued_in_memory(m, store)
        recording.commits.clear()
        await getattr(m, control)("s")
        assert recording.commits == [("lifecycle", [input_id])]
        view = await m.input_state("s", input_id)
        assert view is not None
        assert _stored(store, input_id) == (view.current_state, view.attempts)

    run(body())


def test_a_failed_control_commit_keeps_the_row_pending_for_the_next_commit() -> None:
    async def body() -> None:
        m, store, recording = _machine()
        input_id = await _staged_on_disk_queued_in_memory(m, store)
        before = await m.session_view("s")
        store.fail_next("commit_machine_lifecycle")
        with pytest.raises(DurableWriteFailed):
            await m.recycle_runtime("s")
        assert await m.session_view("s") == before
        assert _stored(store, input_id) == (S.STAGED, 1)
        assert _stored_phase(store) is RuntimeState.RETIRED
        recording.commits.clear()
        await m.recycle_runtime("s")
        assert recording.commits == [("lifecycle", [input_id])]
        assert _stored(store, input_id) == (S.QUEUED, 0)
        assert _stored_phase(store) is RuntimeState.IDLE
        recording.commits.clear()
        await m.recycle_runtime("s")  # nothing changed since: only the lifecycle record
        assert recording.commits == [("lifecycle", [])]

    run(body())


def test_a_run_failure_commit_writes_a_row_restored_by_a_failed_boundary() -> None:
    async def body() -> None:
        m, store, recording = _machine()
        input_id = await _staged_on_disk_queued_in_memory(m, store)
        await m.recycle_runtime("s")
        other = make_prompt("b")
        await m.accept_input("s", other)
        recording.commits.clear()
        ex = ScriptedExecutor(Fail(), Block())
        await m.ensure_session_with_executor("s", ex)
        await ex.wait_parked()
        # the failure commit wrote the failed row; the retried rows were not written (staging is not)
        assert recording.commits == [("lifecycle", [input_id])]
        assert _stored(store, input_id) == (S.QUEUED, 1)
        ex.release(Succeed())
        await m.settle("s")
        assert recording.commits[1] == ("boundary", [other.header.id])

    run(body())


def test_after_a_failed_boundary_and_a_crash_recovery_sees_the_row_as_in_memory() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        m, store, _ = _machine(storage)
        input_id = await _staged_on_disk_queued_in_memory(m, store)
        await m.recycle_runtime("s")
        await m.halt()
        second, _, recording = _machine(storage)
        await second.register_session("s")
        view = await second.input_state("s", input_id)
        assert view is not None and (view.current_state, view.attempts) == (S.QUEUED, 0)
        assert recording.commits == [("lifecycle", [])]  # the stored rows needed no normalising

    run(body())


# --- commits are O(changed rows) -------------------------------------------------------------


def test_commits_write_only_the_rows_that_changed() -> None:
    async def body() -> None:
        m, store, recording = _machine()
        await m.register_session("s")
        items = [make_prompt(f"item {n}") for n in range(20)]
        for item in items:
            await m.accept_input("s", item)
        recording.commits.clear()
        await m.recycle_runtime("s")
        assert recording.commits == [("lifecycle", [])]
        ex = ScriptedExecutor(Fail(), default=Block())
        await m.ensure_session_with_executor("s", ex)
        await ex.wait_parked()
        first = items[0].header.id
        assert recording.commits[-1] == ("lifecycle", [first])  # the failure commit: one row
        assert _stored(store, first) == (S.QUEUED, 1)
        ex.release(Succeed())
        await ex.wait_parked()
        assert recording.commits[-1] == ("boundary", [items[1].header.id])
        recording.commits.clear()
        await m.retire_runtime("s")  # with a loop: the phase and the staged row of the run in flight
        assert recording.commits == [("lifecycle", [items[2].header.id])]
        assert _stored(store, items[2].header.id) == (S.STAGED, 1)
        recording.commits.clear()
        await m.stop_runtime("s")  # every non-terminal input is abandoned: all those rows
        assert recording.commits[0][0] == "lifecycle"
        written = recording.commits[0][1]
        assert sorted(written) == sorted([first, *(i.header.id for i in items[2:])])
        assert all(_stored(store, i)[0] is S.ABANDONED for i in written)

    run(body())


def test_recovery_writes_back_only_the_rows_it_normalised() -> None:
    async def body() -> None:
        storage = MemoryStorage()
        m, _, _ = _machine(storage)
        ex = ScriptedExecutor(Succeed(), Block())
        await m.register_session_with_executor("s", ex)
        done, staged, waiting = make_prompt("done"), make_prompt("staged"), make_prompt("waiting")
        await m.accept_input("s", done)
        await queue_behind_run(m, ex, staged, waiting)
        await m.retire_runtime("s")  # writes the in-flight row as Staged
        await m.halt()
        second, store, recording = _machine(storage)
        await second.register_session("s")
        assert recording.commits == [("lifecycle", [staged.header.id])]
        assert _stored(store, staged.header.id) == (S.QUEUED, 0)
        recording.commits.clear()
        await second.recycle_runtime("s")
        assert recording.commits == [("lifecycle", [])]

    run(body())


def test_ephemeral_sessions_keep_no_dirty_rows_around() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor(Fail(), default=Succeed())
        await m.register_session_with_executor("s", ex)
        for n in range(5):
            await m.accept_input("s", make_prompt(f"item {n}"))
        await m.settle("s")
        assert await m.list_active_inputs("s") == []
        session = m._get("s")  # white-box: nothing is left waiting to be written
        assert session.core.ledger.dirty == set()

    run(body())
