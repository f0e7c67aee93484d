"""A durable write whose outcome the store left unknown (``WriteOutcomeUnknown``: the write
landed, or may have) never lets disk run ahead of memory into a duplicate admission position,
a second row for one idempotency key, a resurrected lifecycle or a lost acknowledgement.

Each scenario runs on SQLite and on the in-memory store; ``FaultInjectingStore(after_write=True)``
lets the write land and then raises. Memory is restored, the store is read back (at once, or —
when reads fail too — before the session's next step), and memory becomes what the store holds.
The ``protection off`` tests show the scenarios fail when an unknown outcome is treated as a
write that did not happen (the behaviour before)."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_runtime.session import commit as commit_module
from meerkat_runtime.session.completion import Completed, RuntimeTerminated
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.row_codec import decode_lifecycle, decode_record
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.vocab.errors import (
    DurableWriteFailed,
    NotReady,
    RecoveryCorruption,
    RuntimeDestroyed,
)
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.disks import Disk, NotWrittenButUnknown
from tests.runtime_session.helpers import S, make_prompt, run


def _lifecycle(disk: Disk) -> RuntimeState | None:
    raw = disk.open().load_machine_lifecycle(canonical_runtime_id("s"))
    return None if raw is None else decode_lifecycle(raw).runtime_state


# --- row: an accept whose write reached the store but reported an error, then a retry ------------


def test_accept_with_an_after_write_error_is_acknowledged_and_its_retry_deduplicated(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        first = make_prompt("first", idempotency_key="k")
        store.fail_next("persist_input_state", after_write=True)
        assert await m.accept_input("s", first) == Accepted(first.header.id, S.QUEUED)  # read back: it landed
        assert store.injected("persist_input_state") == 1
        retry = make_prompt("retry", idempotency_key="k")
        assert await m.accept_input("s", retry) == Deduplicated(retry.header.id, first.header.id)
        following = make_prompt("following")
        await m.accept_input("s", following)
        views = await m.input_states("s")
        assert [(v.input_id, v.admission_seq) for v in views] == [(first.header.id, 1), (following.header.id, 2)]
        await m.close()
        assert len(disk.rows()) == 2
        again, _ = disk.machine()
        await again.register_session("s")  # no recovery_corruption: one row per position and key
        assert await again.list_active_inputs("s") == [first.header.id, following.header.id]
        await again.close()

    run(body())


def test_accept_whose_outcome_cannot_be_read_back_reconciles_before_the_next_accept(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        first = make_prompt("first", idempotency_key="k")
        store.fail_next("persist_input_state", after_write=True)
        store.fail_next("load_input_state")  # the read-back fails too
        with pytest.raises(DurableWriteFailed) as err:
            await m.accept_input("s", first)
        assert err.value.outcome_unknown and "may or may not" in str(err.value)
        assert await m.list_active_inputs("s") == []  # memory never ahead of disk
        retry = make_prompt("retry", idempotency_key="k")
        outcome, handle = await m.accept_input_with_completion("s", retry)  # reconciles first
        assert outcome == Deduplicated(retry.header.id, first.header.id)
        assert handle is not None and not handle.done()  # the first input is queued: its waiter waits
        following = make_prompt("following")
        await m.accept_input("s", following)
        assert [v.admission_seq for v in await m.input_states("s")] == [1, 2]
        await m.close()
        again, _ = disk.machine()
        await again.register_session("s")
        assert await again.list_active_inputs("s") == [first.header.id, following.header.id]
        await again.close()

    run(body())


def test_an_in_doubt_session_refuses_every_step_until_the_store_can_be_read(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        store.fail_next("persist_input_state", after_write=True)
        unreadable = [store.fail_always("load_input_state"), store.fail_always("load_active_input_states")]
        with pytest.raises(DurableWriteFailed):
            await m.accept_input("s", make_prompt("first"))
        for step in (m.accept_input("s", make_prompt("second")), m.retire_runtime("s"), m.stop_runtime("s")):
            with pytest.raises(DurableWriteFailed) as err:
                await step
            assert err.value.outcome_unknown and "cannot read the store back" in str(err.value)
        assert await m.runtime_state("s") is RuntimeState.IDLE  # observation still works
        writes = store.calls("persist_input_state") + store.calls("commit_machine_lifecycle")
        for rule in unreadable:
            store.remove(rule)
        await m.accept_input("s", make_prompt("third"))
        assert len(await m.list_active_inputs("s")) == 2  # the first (it landed) and the third
        assert store.calls("persist_input_state") + store.calls("commit_machine_lifecycle") == writes + 1
        await m.close()

    run(body())


def test_an_ambiguous_failure_that_did_not_land_is_a_clean_failure(disk: Disk) -> None:
    async def body() -> None:
        inner = disk.open()
        m, _ = disk.machine(NotWrittenButUnknown(inner, "persist_input_state"))
        await m.register_session("s")
        first = make_prompt("first", idempotency_key="k")
        with pytest.raises(DurableWriteFailed) as err:
            await m.accept_input("s", first)
        assert err.value.read_back and not err.value.outcome_unknown and "no trace" in str(err.value)
        assert await m.list_active_inputs("s") == [] and disk.rows() == []
        assert await m.accept_input("s", first) == Accepted(first.header.id, S.QUEUED)  # the retry is a new accept
        assert [decode_record(r.payload).admission_seq for r in disk.rows()] == [1]
        await m.close()

    run(body())


def test_protection_off_an_unknown_outcome_taken_as_not_written_strands_the_session(
    disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's row as it was: memory forgets the first accept, the retry with the same key
    is accepted as a new input at the same admission position, and the next start fails."""
    monkeypatch.setattr(commit_module, "write_outcome_unknown", lambda error: False)

    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        store.fail_next("persist_input_state", after_write=True)
        with pytest.raises(DurableWriteFailed):
            await m.accept_input("s", make_prompt("first", idempotency_key="k"))
        assert (await m.accept_input("s", make_prompt("retry", idempotency_key="k"))).is_accepted
        await m.close()
        again, _ = disk.machine()
        with pytest.raises(RecoveryCorruption, match=r"admission position|idempotency key"):
            await again.register_session("s")
        await again.close()

    run(body())


# --- row: the same after-write error on stop or destroy ---------------------------------------


@pytest.mark.parametrize("op", ["stop", "destroy"])
def test_stop_or_destroy_with_an_after_write_error_takes_effect(disk: Disk, op: str) -> None:
    async def body() -> None:
        m, store = disk.machine()
        ex = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", ex)
        _, running = await m.accept_input_with_completion("s", make_prompt("running"))
        await ex.wait_parked()
        _, queued = await m.accept_input_with_completion("s", make_prompt("queued"))
        store.fail_next("commit_machine_lifecycle", after_write=True)
        await (m.stop_runtime("s") if op == "stop" else m.destroy_runtime("s"))
        phase = RuntimeState.STOPPED if op == "stop" else RuntimeState.DESTROYED
        assert await m.runtime_state("s") is phase
        for handle in (running, queued):
            assert handle is not None and await handle.wait() == RuntimeTerminated(f"runtime {phase.value}")
        assert ex.stopped and not await m.executor_ready("s")
        with pytest.raises(NotReady if op == "stop" else RuntimeDestroyed):
            await m.accept_input("s", make_prompt("late"))
        await m.close()
        assert _lifecycle(disk) is phase
        assert all(decode_record(r.payload).phase is S.ABANDONED for r in disk.rows())
        again, _ = disk.machine()
        if op == "destroy":
            with pytest.raises(RuntimeDestroyed):
                await again.register_session("s")
        else:
            await again.register_session("s")
            assert await again.runtime_state("s") is RuntimeState.STOPPED
            assert await again.list_active_inputs("s") == []
        await again.close()

    run(body())


@pytest.mark.parametrize("op", ["stop", "destroy"])
def test_stop_or_destroy_whose_outcome_cannot_be_read_back_takes_effect_at_the_next_step(disk: Disk, op: str) -> None:
    async def body() -> None:
        m, store = disk.machine()
        ex = ScriptedExecutor(Succeed(), Block())
        await m.register_session_with_executor("s", ex)
        _, done = await m.accept_input_with_completion("s", make_prompt("done"))
        await m.settle("s")
        _, waiting = await m.accept_input_with_completion("s", make_prompt("waiting"))
        await ex.wait_parked()
        store.fail_next("commit_machine_lifecycle", after_write=True)
        store.fail_next("load_input_state")
        with pytest.raises(DurableWriteFailed) as err:
            await (m.stop_runtime("s") if op == "stop" else m.destroy_runtime("s"))
        assert err.value.outcome_unknown
        assert await m.runtime_state("s") is not RuntimeState.STOPPED  # memory not ahead of disk
        with pytest.raises(NotReady if op == "stop" else RuntimeDestroyed):  # reconciled: never acknowledged
            await m.accept_input("s", make_prompt("late"))
        phase = RuntimeState.STOPPED if op == "stop" else RuntimeState.DESTROYED
        assert await m.runtime_state("s") is phase
        assert waiting is not None and await waiting.wait() == RuntimeTerminated(f"runtime {phase.value}")
        assert done is not None and done.done()
        await m.settle("s")
        assert not await m.executor_ready("s")
        await m.close()
        assert ex.stopped
        assert _lifecycle(disk) is phase
        assert len(disk.rows()) == 2

    run(body())


def test_protection_off_acks_after_an_ambiguous_stop_are_lost(disk: Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_module, "write_outcome_unknown", lambda error: False)

    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        store.fail_next("commit_machine_lifecycle", after_write=True)
        with pytest.raises(DurableWriteFailed):
            await m.stop_runtime("s")
        assert await m.runtime_state("s") is RuntimeState.IDLE  # disk says Stopped
        assert (await m.accept_input("s", make_prompt("acknowledged"))).is_accepted
        await m.close()
        again, _ = disk.machine()
        with pytest.raises(RecoveryCorruption, match="under a Stopped runtime"):
            await again.register_session("s")
        await again.close()

    run(body())


# --- the other durable writes of a session -------------------------------------------------------


def test_boundary_commit_with_an_after_write_error_completes_the_run_once(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        ex = ScriptedExecutor(default=Succeed(RunResult("answer")))
        store.fail_next("atomic_apply", after_write=True)
        await m.register_session_with_executor("s", ex)
        item = make_prompt("q")
        _, handle = await m.accept_input_with_completion("s", item)
        assert handle is not None and await handle.wait() == Completed(RunResult("answer"))
        await m.settle("s")
        assert (await m.input_state("s", item.header.id)).current_state is S.CONSUMED  # type: ignore[union-attr]
        assert len(ex.applied) == 1 and await m.executor_ready("s")
        await m.close()

    run(body())


def test_boundary_commit_whose_outcome_cannot_be_read_back_is_not_run_again(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine(reattach=False)  # the application attaches the loop again
        ex = ScriptedExecutor(default=Succeed(RunResult("answer")))
        await m.register_session_with_executor("s", ex)
        store.fail_next("atomic_apply", after_write=True)
        store.fail_next("load_input_state")
        item = make_prompt("q")
        _, handle = await m.accept_input_with_completion("s", item)
        await m.settle("s")
        error = await m.last_error("s")
        assert isinstance(error, BoundaryCommitFailed) and error.outcome_unknown
        assert not await m.executor_ready("s") and handle is not None and not handle.done()
        await m.ensure_session_with_executor("s", ex)  # reconciles: the boundary landed
        assert await handle.wait() == Completed(RunResult("answer"))
        await m.settle("s")
        assert (await m.input_state("s", item.header.id)).current_state is S.CONSUMED  # type: ignore[union-attr]
        assert len(ex.applied) == 1
        await m.close()

    run(body())


def test_failure_commit_with_an_after_write_error_records_the_failure_once(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        ex = ScriptedExecutor(Fail("model timed out"), Block())
        store.fail_next("commit_machine_lifecycle", after_write=True)
        await m.register_session_with_executor("s", ex)
        item = make_prompt("q")
        await m.accept_input("s", item)
        await ex.wait_parked()  # the failure was committed (read back) and the input retried
        view = await m.input_state("s", item.header.id)
        assert view is not None and view.attempts == 2 and await m.last_error("s") is None
        assert view.last_error is not None and view.last_error.message == "model timed out"
        ex.release(Succeed())
        await m.settle("s")
        await m.close()

    run(body())


@pytest.mark.parametrize("op", ["retire", "reset", "recycle"])
def test_control_with_an_after_write_error_takes_effect(disk: Disk, op: str) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        await m.accept_input("s", make_prompt("a"))
        if op == "recycle":
            await m.retire_runtime("s")
        store.fail_next("commit_machine_lifecycle", after_write=True)
        await getattr(m, f"{op}_runtime")("s")
        expected = {"retire": RuntimeState.RETIRED, "reset": RuntimeState.IDLE, "recycle": RuntimeState.IDLE}[op]
        assert await m.runtime_state("s") is expected
        assert _lifecycle(disk) is expected
        assert await m.list_active_inputs("s") == []  # retired or reset without a loop: abandoned
        await m.close()

    run(body())


def _views_without_times(views: list[Any]) -> list[tuple[Any, ...]]:
    return [(v.input_id, v.current_state, v.lane, v.attempts, v.admission_seq) for v in views]


def test_reconciliation_after_a_lost_read_back_matches_the_store_exactly(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        for i in range(3):
            await m.accept_input("s", make_prompt(f"p{i}", idempotency_key=f"k{i}"))
        store.fail_next("commit_machine_lifecycle", after_write=True)
        store.fail_next("load_input_state")
        with pytest.raises(DurableWriteFailed):
            await m.reset_runtime("s")
        await m.accept_input("s", make_prompt("after"))
        mine = _views_without_times(await m.input_states("s"))
        await m.close()
        again, _ = disk.machine()
        await again.register_session("s")
        assert _views_without_times(await again.input_states("s")) == mine
        assert [v[1] for v in mine] == [S.ABANDONED] * 3 + [S.QUEUED]
        await again.close()

    run(body())
