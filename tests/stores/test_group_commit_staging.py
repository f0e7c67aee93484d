"""Writes staged for the end of a loop's turn keep submission order: with blocking writes of
the same thread, with a loop that stops before that turn ends, with writes submitted for a
loop from another thread or for a closed loop."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

A = "rt:session:a"


def test_a_write_submitted_in_the_last_turn_of_a_loop_commits_before_later_writes(tmp_path: Path) -> None:
    """A loop stopped (and closed) in the turn that submitted a write: a write made afterwards
    on another thread commits after it (submission order), and nothing older overwrites it."""
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path)
    loop = asyncio.new_event_loop()
    submitted: list[asyncio.Future[None]] = []

    def submit_then_stop() -> None:
        submitted.append(store.submit_write_on(loop, lambda: store.persist_input_state(A, InputRow("in", b"old"))))
        loop.stop()

    loop.call_soon(submit_then_stop)
    loop.run_forever()
    loop.close()
    store.persist_input_state(A, InputRow("in", b"new"))  # acknowledged: committed
    assert [r.payload for r in store.load_input_states(A)] == [b"new"]
    store.close()
    with SqliteRuntimeStore(path) as again:
        assert [r.payload for r in again.load_input_states(A)] == [b"new"]


def test_a_write_submitted_for_a_closed_loop_is_committed_and_the_store_closes(tmp_path: Path) -> None:
    """``submit_write_on`` for a loop that is closed (no turn of it will come): the write is
    committed like any other, and closing the store does not wait for that loop."""
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path)
    loop = asyncio.new_event_loop()
    loop.close()
    store.submit_write_on(loop, lambda: store.persist_input_state(A, InputRow("in", b"x")))
    store.persist_input_state(A, InputRow("other", b"y"))  # returns once committed, after it
    assert sorted(r.input_id for r in store.load_input_states(A)) == ["in", "other"]
    closing: Future[None] = Future()

    def close() -> None:
        store.close()
        closing.set_result(None)

    threading.Thread(target=close, daemon=True).start()
    closing.result(timeout=30)


def test_a_blocking_write_made_after_a_submit_on_the_same_thread_commits_after_it(tmp_path: Path) -> None:
    """On the loop's thread, a write submitted (not yet committed) and then a blocking write of
    the same row in the same turn: they commit in that order, the blocking one last."""
    path = tmp_path / "s.sqlite3"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with SqliteRuntimeStore(path) as store:
            first = store.submit_write_on(loop, lambda: store.persist_input_state(A, InputRow("in", b"first")))
            store.persist_input_state(A, InputRow("in", b"second"))  # returns once committed
            await first

    asyncio.run(scenario())
    with SqliteRuntimeStore(path) as again:
        assert [r.payload for r in again.load_input_states(A)] == [b"second"]


def test_a_write_left_staged_by_a_stopped_loop_commits_before_a_later_loops_writes(tmp_path: Path) -> None:
    """A loop stopped (and closed) in the turn that submitted a write; a later loop writes the
    same row: the later write is the one the store keeps."""
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path)
    first = asyncio.new_event_loop()

    def submit_then_stop() -> None:
        store.submit_write_on(first, lambda: store.persist_input_state(A, InputRow("in", b"old")))
        first.stop()

    first.call_soon(submit_then_stop)
    first.run_forever()
    first.close()

    async def later() -> None:
        loop = asyncio.get_running_loop()
        await store.submit_write_on(loop, lambda: store.persist_input_state(A, InputRow("in", b"new")))

    asyncio.run(later())
    store.close()
    with SqliteRuntimeStore(path) as again:
        assert [r.payload for r in again.load_input_states(A)] == [b"new"]


def test_a_write_submitted_for_a_loop_from_another_thread_commits_while_the_loop_sleeps(tmp_path: Path) -> None:
    """``submit_write_on`` called off the loop's thread (the loop idle, waiting for nothing in
    particular): the write still reaches the writer and commits."""
    path = tmp_path / "s.sqlite3"
    store = SqliteRuntimeStore(path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        before = store.commit_count
        store.submit_write_on(loop, lambda: store.persist_input_state(A, InputRow("in", b"x")))
        deadline = time.monotonic() + 5
        while store.commit_count == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.commit_count > before
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        store.close()
