"""A finished input's outcome — its run's result, or its failure (error type and message) — is
stored with its terminal commit: after a restart (or a killed process) a duplicate of its
idempotency key returns the stored outcome (``Deduplicated.outcome``) and a handle resolved with
it. Rows of the previous format (version 1, no outcome) still load."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from meerkat_runtime.session.completion import (
    Abandoned,
    Cancelled,
    Completed,
    CompletedWithoutResult,
    CompletionOutcome,
    RunFailure,
    RuntimeTerminated,
)
from meerkat_runtime.session.core.ledger import InputRecord, Lane
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import external_event
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.row_codec import RowFormatError, decode_record, encode_record
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.disks import Disk
from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run
from tests.runtime_session.killed_child import first_line_then_kill


async def _duplicate_after_restart(disk: Disk, key: str) -> tuple[Deduplicated, CompletionOutcome | None]:
    m, _ = disk.machine()
    await m.register_session("s")
    outcome, handle = await m.accept_input_with_completion("s", make_prompt("again", idempotency_key=key))
    assert isinstance(outcome, Deduplicated)
    resolved = None if handle is None else handle.outcome()
    assert handle is None or handle.done()
    await m.close()
    return outcome, resolved


def test_a_result_survives_a_restart(disk: Disk) -> None:
    async def body() -> None:
        m, _ = disk.machine()
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("42", 2, 1, 77))))
        _, handle = await m.accept_input_with_completion("s", make_prompt("answer?", idempotency_key="q"))
        assert handle is not None and await handle.wait() == Completed(RunResult("42", 2, 1, 77))
        await m.settle("s")
        await m.halt()  # a crash: nothing more is written
        outcome, resolved = await _duplicate_after_restart(disk, "q")
        assert outcome.outcome == Completed(RunResult("42", 2, 1, 77)) == resolved

    run(body())


def test_a_failure_survives_a_restart_with_its_error(disk: Disk) -> None:
    async def body() -> None:
        m, _ = disk.machine()
        ex = ScriptedExecutor(Fail("first"), Fail("second"), Fail("rate limited (429)"))
        await m.register_session_with_executor("s", ex)
        _, handle = await m.accept_input_with_completion("s", make_prompt("q", idempotency_key="f"))
        assert handle is not None
        abandoned = await handle.wait()
        assert abandoned == Abandoned("max_attempts_exhausted")
        assert isinstance(abandoned, Abandoned) and abandoned.error == RunFailure("ExecutorError", "rate limited (429)")
        await m.halt()
        outcome, resolved = await _duplicate_after_restart(disk, "f")
        for stored in (outcome.outcome, resolved):
            assert isinstance(stored, Abandoned) and stored.reason == "max_attempts_exhausted"
            assert stored.error == RunFailure("ExecutorError", "rate limited (429)")

    run(body())


def test_every_kind_of_finished_input_answers_its_duplicates_after_a_restart(disk: Disk) -> None:
    async def body() -> None:
        m, _ = disk.machine()
        ex = ScriptedExecutor(Succeed(), Block())
        await m.register_session_with_executor("s", ex)
        await m.accept_input("s", make_prompt("plain", idempotency_key="plain"))
        await m.settle("s")
        await m.accept_input("s", make_prompt("cancelled", idempotency_key="cancelled"))
        await ex.wait_parked()
        await m.accept_input("s", external_event("tick", "1", supersession_key="clock", idempotency_key="old"))
        await m.accept_input("s", external_event("tick", "2", supersession_key="clock"))
        await m.interrupt_current_run("s")
        await m.settle("s")
        await m.close()
        expected = {
            "plain": CompletedWithoutResult(),
            "cancelled": Cancelled(),
            "old": Abandoned("superseded"),
        }
        for key, stored in expected.items():
            outcome, resolved = await _duplicate_after_restart(disk, key)
            assert outcome.outcome == stored == resolved, key

    run(body())


def test_an_input_abandoned_by_a_reset_answers_with_runtime_terminated(disk: Disk) -> None:
    async def body() -> None:
        m, _ = disk.machine()
        await m.register_session("s")
        await m.accept_input("s", make_prompt("queued", idempotency_key="r"))
        await m.reset_runtime("s")
        await m.close()
        outcome, resolved = await _duplicate_after_restart(disk, "r")
        assert outcome.outcome == RuntimeTerminated("runtime reset") == resolved

    run(body())


def _as_version_1(payload: bytes) -> bytes:
    doc = json.loads(payload)
    doc["row_version"] = 1
    doc.pop("outcome", None)  # the compact form leaves null fields out
    doc.pop("last_error", None)
    return json.dumps(doc).encode()


def test_rows_of_the_previous_format_still_load(disk: Disk) -> None:
    async def body() -> None:
        m, store = disk.machine()
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("r"))))
        await m.accept_input("s", make_prompt("done", idempotency_key="done"))
        await m.settle("s")
        await m.unregister_session("s")
        await m.register_session("s")  # no loop: the rest stays queued
        await m.accept_input("s", external_event("t", "1", supersession_key="k", idempotency_key="old"))
        await m.accept_input("s", make_prompt("waiting", idempotency_key="waiting"))
        await m.close()
        rt = canonical_runtime_id("s")
        rows = [InputRow(r.input_id, _as_version_1(r.payload)) for r in store.load_input_states(rt)]
        assert all(json.loads(r.payload)["row_version"] == 1 for r in rows)
        rewrite, _ = disk.machine()
        await rewrite.register_session("s")  # claims the lease, so the rewrite below is fenced
        fence = rewrite.session_claim_handle().get(rt).fence  # type: ignore[union-attr]
        lifecycle = disk.open().load_machine_lifecycle(rt)
        assert lifecycle is not None
        disk.open().commit_machine_lifecycle(rt, lifecycle, rows, fence=fence)
        await rewrite.halt()
        again, _ = disk.machine()
        await again.register_session("s")
        assert [v.current_state for v in await again.input_states("s")] == [S.CONSUMED, S.QUEUED, S.QUEUED]
        done, handle = await again.accept_input_with_completion("s", make_prompt("x", idempotency_key="done"))
        assert isinstance(done, Deduplicated) and done.outcome is None and handle is None  # its result was not stored
        await again.close()

    run(body())


def test_an_outcome_on_an_active_row_or_of_an_unknown_kind_is_refused() -> None:
    item = make_prompt("x")
    record = InputRecord(item, S.QUEUED, Lane.QUEUE, 1, 1.0, 1.0)
    doc = json.loads(encode_record(record))
    doc["outcome"] = {"kind": "cancelled"}
    with pytest.raises(RowFormatError, match="non-terminal phase queued carries a completion outcome"):
        decode_record(json.dumps(doc).encode())
    doc.update(phase="abandoned", terminal={"outcome_type": "abandoned", "reason": "cancelled", "attempts": None})
    doc["outcome"] = {"kind": "vanished"}
    with pytest.raises(RowFormatError, match="unknown outcome kind 'vanished'"):
        decode_record(json.dumps(doc).encode())
    doc["outcome"] = {"kind": "completed", "result": {"text": "t", "turns": -1, "tool_calls": 0, "tokens_used": 0}}
    with pytest.raises(RowFormatError, match="turns"):
        decode_record(json.dumps(doc).encode())


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from meerkat_runtime.session.executor import RunResult, success_output
    from meerkat_runtime.session.inputs import prompt
    from meerkat_runtime.session.machine import MeerkatMachine
    from meerkat_runtime.session.ownership import OwnershipConfig
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore

    class Answers:
        async def apply(self, run_id, primitive):
            return success_output(primitive, RunResult("the answer for " + primitive.inputs[0].text, 3))

        async def control(self, command):
            return None

    async def main(path):
        machine = MeerkatMachine.persistent(SqliteRuntimeStore(path), ownership=OwnershipConfig(owner_id="worker-1"))
        await machine.register_session_with_executor("s", Answers())
        outcome, handle = await machine.accept_input_with_completion("s", prompt("q1", idempotency_key="k1"))
        await handle.wait()
        sys.stdout.write("CONSUMED\\n")
        sys.stdout.flush()
        await asyncio.sleep(60)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_killed_process_leaves_the_result_for_the_retry(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    assert first_line_then_kill(CHILD, path).strip() == "CONSUMED"

    async def body() -> None:
        store = SqliteRuntimeStore(path)
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await m.register_session("s")
        outcome, handle = await m.accept_input_with_completion("s", make_prompt("q1", idempotency_key="k1"))
        assert isinstance(outcome, Deduplicated) and outcome.outcome == Completed(RunResult("the answer for q1", 3))
        assert handle is not None and await handle.wait() == Completed(RunResult("the answer for q1", 3))
        await m.close()
        store.close()

    run(body())
