"""Compaction deletes the boundary receipts of the finished inputs it deletes, so the receipts
stay bounded by the rows kept however many runs a session makes; a receipt that can still be
read back (an in-doubt boundary commit's, a kept row's) is never deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from meerkat_runtime.session.completion import Completed
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.run_end import BoundaryCommitFailed
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.disks import Disk
from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run

RT = canonical_runtime_id("s")
KEEP = 4
HORIZON = KEEP + RetentionPolicy(keep_finished=KEEP).count_slack  # rows kept at most between compactions


def _receipts_of_rows(store: Any) -> tuple[int, int, int]:
    """(input rows, receipts the mark counts, rows whose run's receipt can be read back)."""
    rows = store.load_input_states(RT)
    readable = 0
    for row in rows:
        record = decode_record(row.payload)
        assert record.last_run_id is not None and record.last_boundary_sequence is not None
        if store.load_boundary_receipt(RT, record.last_run_id, record.last_boundary_sequence) is not None:
            readable += 1
    mark = store.load_high_water(RT)
    assert mark is not None
    return len(rows), mark.receipts, readable


async def _runs(m: MeerkatMachine, count: int, prefix: str = "q") -> None:
    for i in range(count):
        _, handle = await m.accept_input_with_completion("s", make_prompt(f"{prefix}{i}"))
        assert handle is not None and await handle.wait() == Completed(RunResult("ok"))


def test_receipts_stay_bounded_over_many_runs_on_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"

    async def body() -> None:
        store = SqliteRuntimeStore(path)
        m = MeerkatMachine.persistent(store, retention=RetentionPolicy(keep_finished=KEEP), ownership=SAME_WORKER)
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok"))))
        for _ in range(4):
            await _runs(m, 40)
            rows, receipts, readable = _receipts_of_rows(store)
            assert rows <= HORIZON
            assert receipts == rows == readable  # one receipt per kept row, none for compacted ones
        await m.close()
        store.close()

    run(body())
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT count(*) FROM runtime_boundary_receipts").fetchone()[0]
        inputs = conn.execute("SELECT count(*) FROM runtime_input_states").fetchone()[0]
    assert stored == inputs <= HORIZON


def test_receipts_stay_bounded_and_readable_in_each_store(disk: Disk) -> None:
    async def body() -> None:
        store = disk.open()
        m, _ = disk.machine(store, retention=RetentionPolicy(keep_finished=KEEP))
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok"))))
        await _runs(m, 60)
        rows, receipts, readable = _receipts_of_rows(store)
        assert rows <= HORIZON and receipts == rows == readable
        await m.close()

    run(body())


def test_an_in_doubt_boundary_commit_is_read_back_after_compactions(disk: Disk) -> None:
    async def body() -> None:
        store = disk.open()
        m, _ = disk.machine(store, reattach=False, retention=RetentionPolicy(keep_finished=KEEP))
        ex = ScriptedExecutor(default=Succeed(RunResult("ok")))
        await m.register_session_with_executor("s", ex)
        await _runs(m, HORIZON + 5)  # compacted at least once
        applied = len(ex.applied)
        store.fail_next("atomic_apply", after_write=True)
        store.fail_next("load_input_state")  # the read-back fails too: the session is in doubt
        item = make_prompt("in doubt")
        _, handle = await m.accept_input_with_completion("s", item)
        await m.settle("s")
        error = await m.last_error("s")
        assert isinstance(error, BoundaryCommitFailed) and error.outcome_unknown
        await m.ensure_session_with_executor("s", ex)  # reconciles: the boundary's receipt is read back
        assert handle is not None and await handle.wait() == Completed(RunResult("ok"))
        assert len(ex.applied) == applied + 1  # not run again
        await _runs(m, HORIZON + 5, "after")  # compacts again, the in-doubt input included
        view = await m.input_state("s", item.header.id)
        assert view is None or view.current_state is S.CONSUMED
        rows, receipts, readable = _receipts_of_rows(store)
        assert rows <= HORIZON and receipts == rows == readable
        await m.close()

    run(body())
