"""Restarts read the backlog, not history; retention compacts finished inputs beyond its horizon
while duplicates inside it keep their stored outcome (real SQLite files, separate processes)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from meerkat_runtime.session import packed_record as packed_module
from meerkat_runtime.session import retention as retention_module
from meerkat_runtime.session.completion import Completed
from meerkat_runtime.session.core import recovery as recovery_module
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.persistence import encode_row
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import Corrupt, InvalidSetting
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import Consumed
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import S, make_prompt, run

RT = canonical_runtime_id("s")

_FILL = textwrap.dedent(
    """
    import asyncio, sys
    from meerkat_runtime.session.executor import RunResult
    from meerkat_runtime.session.inputs import prompt
    from meerkat_runtime.session.machine import MeerkatMachine
    from meerkat_runtime.session.retention_policy import RetentionPolicy
    from meerkat_runtime.session.testing import ScriptedExecutor, Succeed

    async def main(path: str, count: int, keep: int) -> None:
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=keep))
        executor = ScriptedExecutor(default=Succeed(RunResult("done", 1, 0, 0)))
        await m.register_session_with_executor("s", executor)
        for i in range(count):
            _, handle = await m.accept_input_with_completion("s", prompt(f"p{i}", idempotency_key=f"k{i}"))
            assert handle is not None
            await handle.wait()
        await m.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


def _in_child(path: Path, count: int, keep: int) -> None:
    """Run ``count`` keyed inputs to completion in a separate process (retention ``keep``)."""
    done = subprocess.run([sys.executable, "-c", _FILL, str(path), str(count), str(keep)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def _row_count(path: Path) -> int:
    with SqliteRuntimeStore(path) as store:
        rows = store.load_input_states(RT)
        mark = store.load_high_water(RT)
        assert mark is not None and mark.inputs == len(rows)  # compaction keeps the mark consistent
        return len(rows)


def _finished_record(i: int, finished_at: float) -> InputRecord:
    item = make_prompt(f"old {i}", idempotency_key=f"old-{i}", input_id=f"old-{i}")
    record = InputRecord(item, S.QUEUED, Lane.QUEUE, i + 1, finished_at, finished_at)
    record.history.append(HistoryEntry(None, S.QUEUED, "queued", finished_at))
    record.move(S.CONSUMED, "consumed", finished_at)
    record.terminal = Consumed()
    record.outcome = Completed(RunResult(f"answer {i}", 1, 0, 0))
    return record


def _store_finished(path: Path, records: list[InputRecord], *, with_index: bool = True) -> None:
    lifecycle = encode_lifecycle(LifecycleRecord(RuntimeState.IDLE, "epoch"))
    rows = [encode_row(r) for r in records]
    if not with_index:
        rows = [InputRow(r.input_id, r.payload) for r in rows]
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(RT, lifecycle, rows)


def test_compaction_then_reopen_in_a_new_process_keeps_the_window(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _in_child(path, 12, keep=1000)  # nothing compacted yet
    assert _row_count(path) == 12
    _in_child(path, 0, keep=4)  # a new process registers with a 4-input horizon: compacted at once
    assert _row_count(path) == 4

    async def check() -> None:
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=4))
        await m.register_session("s")
        for i in range(8, 12):  # inside the window: deduplicated, with the stored outcome
            outcome, handle = await m.accept_input_with_completion("s", make_prompt("again", idempotency_key=f"k{i}"))
            assert isinstance(outcome, Deduplicated)
            assert outcome.outcome == Completed(RunResult("done", 1, 0, 0))
            assert handle is not None and handle.outcome() == outcome.outcome
        forgotten = await m.accept_input("s", make_prompt("again", idempotency_key="k0"))
        assert isinstance(forgotten, Accepted)  # beyond the window the key is free again
        assert len(await m.input_states("s")) == 5
        await m.close()

    run(check())
    assert _row_count(path) == 5


def test_live_compaction_in_batches_keeps_memory_and_the_store_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _in_child(path, 60, keep=10)  # compacts once 10 + 16 are exceeded
    rows = _row_count(path)
    assert 10 <= rows <= 10 + 16

    async def check() -> None:
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=10))
        await m.register_session("s")
        assert len(await m.input_states("s")) == 10
        await m.close()

    run(check())


def test_a_restart_decodes_only_the_backlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    _in_child(path, 20, keep=1000)
    decoded: list[bytes] = []
    real = recovery_module.decode_record

    def counting(data: bytes) -> InputRecord:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(recovery_module, "decode_record", counting)
    monkeypatch.setattr(packed_module, "decode_record", counting)
    monkeypatch.setattr(retention_module, "decode_record", counting)
    monkeypatch.setattr(retention_module, "RESIDENT_FINISHED", 5)

    async def check() -> None:
        m = MeerkatMachine.persistent(path)
        await m.register_session("s")
        await m.accept_input("s", make_prompt("pending"))
        assert len(decoded) == 5  # of 20 finished rows only the 5 most recent (kept resident)
        await m.close()
        decoded.clear()
        m2 = MeerkatMachine.persistent(path)
        await m2.register_session("s")
        assert len(decoded) == 5  # and the one pending row is Queued: read without decoding it
        outcome = await m2.accept_input("s", make_prompt("dup", idempotency_key="k3"))
        assert isinstance(outcome, Deduplicated) and outcome.outcome == Completed(RunResult("done", 1, 0, 0))
        assert len(decoded) == 6  # the duplicate's finished row, read for its stored outcome
        views = await m2.input_states("s")
        assert len(decoded) == 6 + 15 + 1  # the 15 finished rows not resident and the pending one
        assert len(views) == 21 and sum(v.current_state is S.CONSUMED for v in views) == 20
        await m2.close()

    run(check())


def test_rows_removed_behind_the_stores_back_are_still_damage(tmp_path: Path) -> None:
    """Finished rows are not decoded at a restart, but they are counted: a finished row lost
    behind the store's back (not compacted through it) disagrees with the mark."""
    path = tmp_path / "s.db"
    _in_child(path, 6, keep=1000)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("DELETE FROM runtime_input_states WHERE rowid = (SELECT max(rowid) FROM runtime_input_states)")
    raw.close()

    async def check() -> None:
        m = MeerkatMachine.persistent(path)
        with pytest.raises(Corrupt, match="inputs: the mark says 6, the store returned 5"):
            await m.register_session("s")
        await m.close()

    run(check())


def test_age_horizon_compacts_old_finished_inputs_at_registration(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    now = time.time()
    _store_finished(path, [_finished_record(0, now - 7200), _finished_record(1, now - 10)])

    async def check() -> None:
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=None, max_age_s=3600))
        await m.register_session("s")
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="old-0")), Accepted)
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="old-1")), Deduplicated)
        await m.close()

    run(check())
    with SqliteRuntimeStore(path) as store:
        assert [f.input_id for f in store.load_finished_inputs(RT)] == ["old-1"]


def test_admission_positions_continue_after_everything_finished_was_compacted(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _in_child(path, 5, keep=1000)

    async def check() -> None:
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=0))
        await m.register_session("s")
        await m.close()
        m = MeerkatMachine.persistent(path, retention=RetentionPolicy(keep_finished=0))
        await m.register_session("s")
        new = make_prompt("next")
        await m.accept_input("s", new)
        view = await m.input_state("s", new.header.id)
        assert view is not None and view.admission_seq == 6  # the highest position is kept
        await m.close()

    run(check())
    with SqliteRuntimeStore(path) as store:
        assert len(store.load_finished_inputs(RT)) == 1


def test_rows_of_an_older_release_are_listed_and_written_back_with_their_index(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store_finished(path, [_finished_record(i, time.time()) for i in range(3)], with_index=False)
    with SqliteRuntimeStore(path) as store:
        assert store.load_finished_inputs(RT) == [] and len(store.load_active_input_states(RT)) == 3

    async def check() -> None:
        m = MeerkatMachine.persistent(path)
        await m.register_session("s")
        outcome = await m.accept_input("s", make_prompt("x", idempotency_key="old-2"))
        assert isinstance(outcome, Deduplicated) and outcome.outcome == Completed(RunResult("answer 2", 1, 0, 0))
        await m.close()

    run(check())
    with SqliteRuntimeStore(path) as store:
        assert [f.idempotency_key for f in store.load_finished_inputs(RT)] == ["old-0", "old-1", "old-2"]
        assert store.load_active_input_states(RT) == []


def test_an_ephemeral_session_forgets_finished_inputs_beyond_the_horizon() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral(retention=RetentionPolicy(keep_finished=5))
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("r", 1, 0, 0))))
        for i in range(60):
            _, handle = await m.accept_input_with_completion("s", make_prompt(f"p{i}", idempotency_key=f"k{i}"))
            assert handle is not None
            await handle.wait()
        kept = len(await m.input_states("s"))
        assert 5 <= kept <= 5 + 16
        assert len(await m.completion_outcomes("s")) == kept  # delivered outcomes are compacted too
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="k59")), Deduplicated)
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="k0")), Accepted)
        await m.close()

    run(body())


@pytest.mark.parametrize(
    ("keep", "age"),
    [(-1, None), (True, None), (2**41, None), ("5", None), (None, 0), (None, -1.0), (None, float("inf")), (None, True)],
)
def test_bad_retention_settings_are_refused(keep: object, age: object) -> None:
    with pytest.raises(InvalidSetting, match="retention"):
        RetentionPolicy(keep, age)  # type: ignore[arg-type]


def test_a_retention_that_is_not_a_policy_is_refused() -> None:
    with pytest.raises(InvalidSetting, match="retention must be a RetentionPolicy"):
        MeerkatMachine.ephemeral(retention=10)  # type: ignore[arg-type]


def test_compaction_failure_changes_nothing_and_is_tried_again(tmp_path: Path) -> None:
    from meerkat_runtime.store.faults import FaultInjectingStore

    async def body() -> None:
        store = FaultInjectingStore(SqliteRuntimeStore(tmp_path / "s.db"))
        rule = store.fail_always("compact_inputs")
        m = MeerkatMachine.persistent(store, retention=RetentionPolicy(keep_finished=2), ownership=None)
        await m.register_session_with_executor("s", ScriptedExecutor())
        for i in range(25):
            _, handle = await m.accept_input_with_completion("s", make_prompt(f"p{i}", idempotency_key=f"k{i}"))
            assert handle is not None
            await handle.wait()
        assert store.calls("compact_inputs") >= 1
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="k0")), Deduplicated)
        store.remove(rule)
        _, handle = await m.accept_input_with_completion("s", make_prompt("last"))
        assert handle is not None
        await handle.wait()
        assert isinstance(await m.accept_input("s", make_prompt("x", idempotency_key="k0")), Accepted)
        await m.close()
        store.close()

    run(asyncio.wait_for(body(), 20))


def test_an_ephemeral_session_keeps_its_resident_list_within_the_horizon() -> None:
    async def body() -> tuple[list[int], bool]:
        m = MeerkatMachine.ephemeral(retention=RetentionPolicy(keep_finished=10, max_age_s=None))
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("r", 1, 0, 0))))
        ledger = m._sessions[RT].core.ledger
        sizes: list[int] = []
        for i in range(400):
            _, handle = await m.accept_input_with_completion("s", make_prompt(f"p{i}"))
            assert handle is not None
            await handle.wait()
            sizes.append(len(ledger.resident))
        only_kept = set(ledger.resident) <= set(ledger.finished)
        await m.close()
        return sizes, only_kept

    sizes, only_kept = run(body())
    assert max(sizes) <= 2 * (10 + 16) + 16  # the horizon plus its slack, pruned at twice that
    assert sizes[-1] <= 10 + 16
    assert only_kept
