"""A new SQLite file's switch to write-ahead logging while another process holds its write lock.

SQLite refuses that switch at once, without its busy handler, while another connection holds the
write lock of a file still in rollback mode: two workers started together on a new file used to
leave one of them unable to open it ("database is locked"). The store retries the switch within
its busy timeout. The other process here is a real one (``WriteLockHolder``); it lets go of the
lock as the store's second try of the switch starts (SQLite's statement trace), so the outcome
does not depend on timing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_journal import LONGEST_PAUSE_S, enter_wal
from meerkat_runtime.vocab.errors import StoreError

from tests.stores.write_lock import WriteLockHolder

SWITCH = "PRAGMA journal_mode = WAL"


@contextmanager
def _switches_seen(monkeypatch: pytest.MonkeyPatch, on_try: Callable[[int], None]) -> Iterator[list[int]]:
    """Connections opened inside the block call ``on_try(n)`` as their ``n``-th (from 1) try of
    the switch to WAL starts; the list holds how many tries were made."""
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect
    tries = [0]

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)

        def statement(sql: str) -> None:
            if sql == SWITCH:
                tries[0] += 1
                on_try(tries[0])

        conn.set_trace_callback(statement)
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced)
        yield tries


def test_a_new_file_whose_write_lock_another_process_holds_opens_once_the_lock_is_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    with WriteLockHolder(path) as holder:  # creates the file, in rollback mode, and locks it

        def on_try(n: int) -> None:
            if n == 2:
                holder.release()

        with _switches_seen(monkeypatch, on_try) as tries:
            store = SqliteRuntimeStore(path, group_commit=False)
    try:
        assert tries[0] >= 2, "the first switch met no lock: the test did not set up the race"
        assert store.settings()["journal_mode"] == "wal"
        store.persist_input_state("rt-1", InputRow("in-1", b"x"))
    finally:
        store.close()
    with SqliteRuntimeStore(path) as again:
        assert [r.input_id for r in again.load_input_states("rt-1")] == ["in-1"]


def test_a_write_lock_held_past_the_busy_timeout_fails_the_open_naming_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    with WriteLockHolder(path), _switches_seen(monkeypatch, lambda n: None) as tries:
        with pytest.raises(StoreError, match="database is locked"):
            SqliteRuntimeStore(path, busy_timeout_ms=200, group_commit=False)
        assert tries[0] >= 2, "the switch was not retried within the busy timeout"
    with SqliteRuntimeStore(path) as store:  # the lock gone, the same file opens
        assert store.settings()["journal_mode"] == "wal"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class _BusyThenWal:
    """A connection whose switch is refused as busy ``busy`` times, then succeeds."""

    def __init__(self, busy: int, error: sqlite3.OperationalError) -> None:
        self.busy = busy
        self.error = error
        self.tries = 0

    def execute(self, sql: str) -> _BusyThenWal:
        assert sql == SWITCH
        self.tries += 1
        if self.tries <= self.busy:
            raise self.error
        return self

    def fetchone(self) -> tuple[str]:
        return ("wal",)


def _busy_error() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = 5
    return error


def test_the_switch_backs_off_doubling_and_gives_up_at_the_timeout() -> None:
    clock = _Clock()
    conn = _BusyThenWal(3, _busy_error())
    assert enter_wal(conn, 1.0, clock=clock.time, sleep=clock.sleep) == "wal"  # type: ignore[arg-type]
    assert clock.pauses == [0.001, 0.002, 0.004]
    clock = _Clock()
    never = _BusyThenWal(10**6, _busy_error())
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enter_wal(never, 0.5, clock=clock.time, sleep=clock.sleep)  # type: ignore[arg-type]
    assert max(clock.pauses) == LONGEST_PAUSE_S
    assert clock.now == pytest.approx(0.5)


def test_an_error_other_than_busy_is_raised_at_once() -> None:
    clock = _Clock()
    other = sqlite3.OperationalError("disk I/O error")
    other.sqlite_errorcode = 10
    conn = _BusyThenWal(1, other)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        enter_wal(conn, 1.0, clock=clock.time, sleep=clock.sleep)  # type: ignore[arg-type]
    assert conn.tries == 1 and clock.pauses == []
