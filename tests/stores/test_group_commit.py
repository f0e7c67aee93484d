"""Group commit in the SQLite store: writes pending together share one transaction; a write
refused inside the batch is refused alone; a failed COMMIT fails every write of the batch
(outcome unknown when it may have landed); the settings are checked; off means one
transaction per write."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.store.group_commit import EARLY_HAND_OVER
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import (
    InvalidSetting,
    OwnershipLost,
    WriteFailed,
    WriteOutcomeUnknown,
)

A, B, C = "rt:session:a", "rt:session:b", "rt:session:c"


def _batched(path: Path, size: int) -> SqliteRuntimeStore:
    """A store whose writer waits (up to 1 s) until ``size`` writes are pending: the writes
    submitted next form one batch, whatever the timing."""
    return SqliteRuntimeStore(path, group_commit_max_batch=size, group_commit_max_wait_ms=1000)


def _outcome(future: Future[None]) -> BaseException | None:
    return future.exception(timeout=30)


def test_writes_pending_together_share_one_transaction(tmp_path: Path) -> None:
    with _batched(tmp_path / "s.sqlite3", 16) as store:
        before = store.commit_count
        futures = [
            store.submit_write(lambda i=i: store.persist_input_state(A if i % 2 else B, InputRow(f"in-{i}", b"x")))
            for i in range(16)
        ]
        assert [_outcome(f) for f in futures] == [None] * 16
        assert store.commit_count - before == 1
        assert store.group_commit_stats()[2] == 16
        assert len(store.load_input_states(A)) == len(store.load_input_states(B)) == 8
        mark = store.load_high_water(A)
        assert mark is not None and (mark.writes, mark.inputs) == (8, 8)


def test_a_stale_fence_refuses_only_its_own_write(tmp_path: Path) -> None:
    with _batched(tmp_path / "s.sqlite3", 3) as store:
        stale = store.claim_lease(B, "old", 60).fence
        store.claim_lease(B, "old", 60)  # the token moved: ``stale`` no longer matches
        before_b = store.load_high_water(B)
        futures = [
            store.submit_write(lambda: store.persist_input_state(A, InputRow("a", b"1"))),
            store.submit_write(lambda: store.persist_input_state(B, InputRow("b", b"1"), fence=stale)),
            store.submit_write(lambda: store.persist_input_state(C, InputRow("c", b"1"))),
        ]
        errors = [_outcome(f) for f in futures]
        assert errors[0] is None and errors[2] is None
        assert isinstance(errors[1], OwnershipLost) and not errors[1].outcome_unknown
        assert [r.input_id for r in store.load_input_states(A)] == ["a"]
        assert store.load_input_states(B) == []
        assert [r.input_id for r in store.load_input_states(C)] == ["c"]
        assert store.load_high_water(B) == before_b


def test_a_duplicate_receipt_fails_alone_and_leaves_its_rows_unwritten(tmp_path: Path) -> None:
    receipt = BoundaryReceipt("run", 1, BoundaryKind.RUN_CHECKPOINT, ("a",))
    with _batched(tmp_path / "s.sqlite3", 3) as store:
        futures = [
            store.submit_write(
                lambda: store.atomic_apply(A, session_snapshot=b"s1", receipt=receipt, rows=[InputRow("a", b"1")])
            ),
            store.submit_write(
                lambda: store.atomic_apply(A, session_snapshot=b"s2", receipt=receipt, rows=[InputRow("z", b"2")])
            ),
            store.submit_write(lambda: store.persist_input_state(A, InputRow("b", b"1"))),
        ]
        errors = [_outcome(f) for f in futures]
        assert errors[0] is None and errors[2] is None
        assert isinstance(errors[1], WriteFailed) and not errors[1].outcome_unknown
        assert {r.input_id for r in store.load_input_states(A)} == {"a", "b"}
        assert store.load_session_snapshot(A) == b"s1"
        mark = store.load_high_water(A)
        assert mark is not None and (mark.writes, mark.inputs, mark.receipts) == (2, 2, 1)


class _CommitFails(sqlite3.Connection):
    """The writer's connection: its next COMMIT reports an I/O error, after taking effect
    (``after``) or before (the transaction stays open)."""

    after = True
    armed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and _CommitFails.armed:
            _CommitFails.armed = False
            if _CommitFails.after:
                super().execute(sql)
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


@pytest.mark.parametrize("landed", [True, False])
def test_a_failed_commit_fails_every_write_of_the_batch(tmp_path: Path, landed: bool) -> None:
    path = tmp_path / "s.sqlite3"
    store = _batched(path, 3)
    conn = sqlite3.connect(path, factory=_CommitFails, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    store._pool._opener = lambda: conn  # the writer thread's connection, opened with its first batch
    _CommitFails.after, _CommitFails.armed = landed, True
    futures = [
        store.submit_write(lambda i=i, rt=rt: store.persist_input_state(rt, InputRow(f"in-{i}", b"x")))
        for i, rt in enumerate((A, B, C))
    ]
    errors = [_outcome(f) for f in futures]
    expected = WriteOutcomeUnknown if landed else WriteFailed
    assert all(type(e) is expected and e.outcome_unknown is landed for e in errors), errors
    stored = [len(store.load_input_states(rt)) for rt in (A, B, C)]
    assert stored == ([1, 1, 1] if landed else [0, 0, 0])
    store.close()
    conn.close()


def test_many_threads_writing_at_once_lose_nothing_and_share_transactions(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.sqlite3", group_commit_max_wait_ms=2) as store:
        start = threading.Barrier(8)

        def writer(t: int) -> None:
            start.wait()
            for k in range(25):
                store.persist_input_state(f"rt:session:t{t}", InputRow(f"in-{k}", b"x"))

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(len(store.load_input_states(f"rt:session:t{t}")) == 25 for t in range(8))
        before = store.commit_count - store.group_commit_stats()[0]  # the schema migration's
        batches, writes, largest = store.group_commit_stats()
        assert writes == 200 and largest > 1 and batches < 200
        assert store.commit_count == before + batches


def test_without_group_commit_every_write_is_its_own_transaction(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.sqlite3", group_commit=False) as store:
        assert not store.group_commit
        before = store.commit_count
        future = store.submit_write(lambda: store.persist_input_state(A, InputRow("a", b"1")))
        assert future.done() and future.exception() is None
        for i in range(5):
            store.persist_input_state(A, InputRow(f"in-{i}", b"x"))
        assert store.commit_count - before == 6
        assert store.group_commit_stats() == (0, 0, 0)


def test_a_bad_argument_fails_the_submitted_write_before_anything_is_queued(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.sqlite3") as store:
        future = store.submit_write(lambda: store.persist_input_state("", InputRow("a", b"1")))
        assert isinstance(future.exception(timeout=5), WriteFailed)
        assert store.group_commit_stats()[1] == 0


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("group_commit", 1),
        ("group_commit_max_batch", 0),
        ("group_commit_max_batch", 65537),
        ("group_commit_max_batch", True),
        ("group_commit_max_wait_ms", -1),
        ("group_commit_max_wait_ms", 1001),
        ("group_commit_max_wait_ms", float("nan")),
    ],
)
def test_group_commit_settings_are_checked(tmp_path: Path, setting: str, value: object) -> None:
    with pytest.raises(InvalidSetting, match=setting):
        SqliteRuntimeStore(tmp_path / "s.sqlite3", **{setting: value})  # type: ignore[arg-type]


def test_closing_waits_for_submitted_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path, group_commit_max_batch=4, group_commit_max_wait_ms=200)
    futures = [
        store.submit_write(lambda i=i: store.persist_input_state(A, InputRow(f"in-{i}", b"x"))) for i in range(3)
    ]
    store.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with SqliteRuntimeStore(path) as again:
        assert len(again.load_input_states(A)) == 3
    with pytest.raises(WriteFailed, match="closed"):
        store.persist_input_state(A, InputRow("late", b"x"))


def test_writes_submitted_from_a_loop_complete_on_it_with_one_call_per_batch(tmp_path: Path) -> None:
    """``submit_write_on``: each write's asyncio future holds its own outcome (a stale fence
    fails only its write), and the writer completes the whole batch with one call onto the loop."""

    async def scenario() -> tuple[list[BaseException | None], int, int]:
        loop = asyncio.get_running_loop()
        calls_from_writer = 0
        plain = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any, context: Any = None) -> Any:
            nonlocal calls_from_writer
            if threading.current_thread() is not threading.main_thread():
                calls_from_writer += 1
            return plain(callback, *args, context=context)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        with _batched(tmp_path / "s.sqlite3", 8) as store:
            stale = store.claim_lease(B, "old", 60).fence
            store.claim_lease(B, "old", 60)
            futures = [
                store.submit_write_on(
                    loop,
                    lambda i=i: store.persist_input_state(
                        B if i == 3 else A, InputRow(f"in-{i}", b"x"), fence=stale if i == 3 else None
                    ),
                )
                for i in range(8)
            ]
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            return (
                [o if isinstance(o, BaseException) else None for o in outcomes],
                calls_from_writer,
                len(store.load_input_states(A)),
            )

    errors, calls, stored = asyncio.run(scenario())
    assert [e is None for e in errors] == [True, True, True, False, True, True, True, True]
    assert isinstance(errors[3], OwnershipLost)
    assert stored == 7
    assert calls == 1


def test_a_bad_argument_fails_the_loop_bound_future_before_anything_is_queued(tmp_path: Path) -> None:
    async def scenario() -> BaseException | None:
        with SqliteRuntimeStore(tmp_path / "s.sqlite3") as store:
            future = store.submit_write_on(
                asyncio.get_running_loop(),
                lambda: store.persist_input_state("", InputRow("a", b"x")),
            )
            assert future.done() and store.group_commit_stats()[1] == 0
            return future.exception()

    assert isinstance(asyncio.run(scenario()), WriteFailed)


def _submit_rows(store: SqliteRuntimeStore, loop: asyncio.AbstractEventLoop, count: int) -> list[asyncio.Future[None]]:
    """Submit ``count`` writes of rows ``in-0``, ``in-1``, ... for ``loop`` (on its thread)."""
    return [
        store.submit_write_on(loop, lambda i=i: store.persist_input_state(A, InputRow(f"in-{i}", b"x")))
        for i in range(count)
    ]


def test_writes_submitted_on_a_loop_in_one_turn_form_one_batch(tmp_path: Path) -> None:
    """Without any wait for more writes (``group_commit_max_wait_ms`` 0), the writes submitted
    on a loop during one turn (fewer than ``EARLY_HAND_OVER``) reach the writer together at its
    end: one transaction."""
    count = EARLY_HAND_OVER - 1

    async def scenario() -> tuple[int, int, list[BaseException | None]]:
        loop = asyncio.get_running_loop()
        with SqliteRuntimeStore(tmp_path / "s.sqlite3") as store:
            before = store.commit_count
            futures = _submit_rows(store, loop, count)
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            return store.commit_count - before, len(store.load_input_states(A)), list(outcomes)

    commits, stored, outcomes = asyncio.run(scenario())
    assert outcomes == [None] * count
    assert (commits, stored) == (1, count)


def test_an_idle_writer_gets_early_hand_over_writes_before_the_turn_ends(tmp_path: Path) -> None:
    """Once ``EARLY_HAND_OVER`` writes are staged while the writer is idle, it commits them
    while the turn that submitted them is still running (here: blocked until they commit)."""

    async def scenario() -> tuple[bool, list[BaseException | None]]:
        loop = asyncio.get_running_loop()
        with SqliteRuntimeStore(tmp_path / "s.sqlite3") as store:
            before = store.commit_count
            futures = _submit_rows(store, loop, EARLY_HAND_OVER)
            deadline = time.monotonic() + 30
            while store.commit_count == before and time.monotonic() < deadline:
                time.sleep(0.001)  # the loop's turn does not end meanwhile
            committed_within_the_turn = store.commit_count > before
            return committed_within_the_turn, list(await asyncio.gather(*futures, return_exceptions=True))

    committed, outcomes = asyncio.run(scenario())
    assert committed
    assert outcomes == [None] * EARLY_HAND_OVER


def test_closing_on_the_loop_thread_commits_writes_waiting_for_the_turn(tmp_path: Path) -> None:
    """A close made on the loop's own thread, in the turn that submitted writes, does not wait for
    that turn to end (it cannot): the writes are committed before the store closes."""
    path = tmp_path / "s.sqlite3"

    async def scenario() -> list[BaseException | None]:
        loop = asyncio.get_running_loop()
        store = SqliteRuntimeStore(path)
        futures = _submit_rows(store, loop, 3)
        store.close()
        return list(await asyncio.gather(*futures, return_exceptions=True))

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [None] * 3
    with SqliteRuntimeStore(path) as again:
        assert len(again.load_input_states(A)) == 3
