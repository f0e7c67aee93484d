"""The SQLite store while another process holds the file's write lock (a worker frozen inside a
write transaction): a write that waited out the busy timeout is ``LockWaitTimedOut`` and wrote
nothing; opening a file whose schema is current takes no write lock; a claim of a lease another
owner holds is refused from a read, so it does not wait for the lock; a migration blocked by the
lock says so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, migrate, stored_version
from meerkat_runtime.vocab.errors import LeaseHeld, LockWaitTimedOut, WriteFailed

from tests.stores.write_lock import WriteLockHolder

RT = "rt-1"
SHORT_MS = 50
"""Busy timeout of the stores under test: the lock stays held far longer."""


def _current_file(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    SqliteRuntimeStore(path).close()
    return path


@pytest.mark.parametrize("group_commit", [True, False])
def test_a_write_that_waited_out_the_busy_timeout_is_lock_wait_timed_out_and_writes_nothing(
    tmp_path: Path, group_commit: bool
) -> None:
    path = _current_file(tmp_path)
    with SqliteRuntimeStore(path, busy_timeout_ms=SHORT_MS, group_commit=group_commit) as store:
        with WriteLockHolder(path):
            with pytest.raises(LockWaitTimedOut, match="write lock") as caught:
                store.persist_input_state(RT, InputRow("i1", b"x"))
            assert isinstance(caught.value, WriteFailed) and not caught.value.outcome_unknown
        assert store.load_input_states(RT) == []
        store.persist_input_state(RT, InputRow("i1", b"x"))  # the lock is gone: the same write succeeds
        assert [row.input_id for row in store.load_input_states(RT)] == ["i1"]


def test_opening_a_current_file_takes_no_write_lock(tmp_path: Path) -> None:
    path = _current_file(tmp_path)
    with WriteLockHolder(path):
        store = SqliteRuntimeStore(path, busy_timeout_ms=SHORT_MS)
        try:
            assert store.settings()["schema_version"] == SCHEMA_VERSION
            assert store.load_input_states(RT) == []
            assert store.commit_count == 0
        finally:
            store.close()


def test_a_claim_of_a_lease_another_owner_holds_is_refused_without_the_write_lock(tmp_path: Path) -> None:
    path = _current_file(tmp_path)
    with SqliteRuntimeStore(path, busy_timeout_ms=SHORT_MS) as store:
        held = store.claim_lease(RT, "owner-a", 3600.0)
        with WriteLockHolder(path), pytest.raises(LeaseHeld) as caught:
            store.claim_lease(RT, "owner-b", 10.0)
        assert caught.value.owner == "owner-a"
        assert caught.value.expires_at == held.expires_at
        assert caught.value.remaining_s is not None and 0 < caught.value.remaining_s <= 3600.0
        assert store.load_lease(RT) == held


def test_a_claim_that_could_succeed_waits_for_the_lock_and_is_lock_wait_timed_out(tmp_path: Path) -> None:
    path = _current_file(tmp_path)
    with SqliteRuntimeStore(path, busy_timeout_ms=SHORT_MS) as store:
        with WriteLockHolder(path), pytest.raises(LockWaitTimedOut):
            store.claim_lease(RT, "owner-b", 10.0)
        assert store.load_lease(RT) is None
        assert store.claim_lease(RT, "owner-b", 10.0).token == 1


def test_a_migration_blocked_by_the_write_lock_says_another_process_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    migrate(conn, SCHEMA_VERSION - 1)
    conn.execute("COMMIT")
    conn.close()
    with WriteLockHolder(path):
        with pytest.raises(LockWaitTimedOut, match="schema migration failed: another process") as caught:
            SqliteRuntimeStore(path, busy_timeout_ms=SHORT_MS)
        assert "nothing was written" in str(caught.value)
    conn = sqlite3.connect(path)
    assert stored_version(conn) == SCHEMA_VERSION - 1
    conn.close()
    with SqliteRuntimeStore(path) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
