"""SQLite-specific behaviour: settings, connections, locking, damage variants, error mapping."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from meerkat_conformance.stores.childproc import child_env
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_connections import ConnectionPool
from meerkat_runtime.store.tables import INPUTS, RECEIPTS
from meerkat_runtime.vocab.errors import Corrupt, ReadFailed, WriteFailed

RT = "rt:session:sqlite-test"


def _receipt(run: str, seq: int) -> BoundaryReceipt:
    return BoundaryReceipt(run, seq, BoundaryKind.RUN_START, ("a",))


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_file_store_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path, synchronous: str, level: int) -> None:
    with SqliteRuntimeStore(tmp_path / "s.db", synchronous=synchronous, busy_timeout_ms=1234) as store:  # type: ignore[arg-type]
        settings = store.settings()
    assert settings == {
        "journal_mode": "wal",
        "synchronous": level,
        "busy_timeout": 1234,
        "schema_version": 7,
        "integrity_check": "quick",
        "wal_check": True,
    }


def test_default_is_full_synchronous_and_five_second_busy_timeout(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.db") as store:
        assert store.settings()["synchronous"] == 2
        assert store.settings()["busy_timeout"] == 5000
        assert store.connection_mode == "per_thread"


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("x", b"1"))
    assert path.exists()


def test_memory_database_shares_one_connection_across_threads() -> None:
    store = SqliteRuntimeStore(":memory:")
    assert store.connection_mode == "shared"
    store.persist_input_state(RT, InputRow("main", b"1"))
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(len(store.load_input_states(RT))))
    worker.start()
    worker.join()
    assert seen == [1]
    assert store.connection_count() == 1
    store.close()
    assert store.connection_count() == 0


def test_one_connection_per_thread_and_dead_threads_connections_are_reclaimed(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(tmp_path / "s.db")
    barrier = threading.Barrier(4)

    def use() -> None:
        store.load_input_states(RT)
        barrier.wait()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.connection_count() == 5  # the constructor's thread plus four workers
    late = threading.Thread(target=lambda: store.load_input_states(RT))
    late.start()
    late.join()
    assert store.connection_count() == 2  # dead workers' connections closed when a new one opened
    store.close()
    assert store.connection_count() == 0


def test_a_thread_gets_the_same_connection_with_or_without_a_with_block(tmp_path: Path) -> None:
    """``own_connection`` (the group-commit writer's way) and ``connection`` hand a thread one
    connection, opened on its first use by either; a shared pool has no connection of its own."""
    opened: list[sqlite3.Connection] = []

    def opener() -> sqlite3.Connection:
        opened.append(sqlite3.connect(tmp_path / "p.db", check_same_thread=False))
        return opened[-1]

    pool = ConnectionPool(opener, per_thread=True)
    first = pool.own_connection()
    with pool.connection() as conn:
        assert conn is first
    assert pool.own_connection() is first and opened == [first]
    seen: list[sqlite3.Connection | None] = []

    def other_thread() -> None:
        with pool.connection() as conn:
            seen.append(conn)
        seen.append(pool.own_connection())

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen[0] is seen[1] and seen[0] is not first and len(opened) == 2
    pool.close_all()
    shared = ConnectionPool(opener, per_thread=False)
    assert shared.own_connection() is None
    with shared.connection() as conn:
        assert conn is opened[-1] and len(opened) == 3
    shared.close_all()


def test_busy_file_fails_the_write_after_the_timeout_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteRuntimeStore(path, busy_timeout_ms=50)
    holder = _raw(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WriteFailed, match="locked") as info:
            store.commit_machine_lifecycle(RT, b"life", [InputRow("x", b"1")])
        assert info.value.runtime_id == RT
        assert "commit_machine_lifecycle" in info.value.detail
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.load_machine_lifecycle(RT) is None
    assert store.load_input_states(RT) == []
    store.commit_machine_lifecycle(RT, b"life", [InputRow("x", b"1")])
    assert store.load_machine_lifecycle(RT) == b"life"
    store.close()


def test_sequence_is_stored_as_signed_64_bit_with_the_same_bits(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteRuntimeStore(path) as store:
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r", (1 << 64) - 1), rows=[])
    raw = _raw(path)
    assert raw.execute(f"SELECT sequence FROM {RECEIPTS}").fetchall() == [(-1,)]
    raw.close()


def test_last_row_wins_when_a_commit_names_an_input_twice(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.db") as store:
        store.commit_machine_lifecycle(RT, b"l", [InputRow("x", b"1"), InputRow("x", b"2")])
        assert store.load_input_states(RT) == [InputRow("x", b"2")]


def _stored(path: Path) -> sqlite3.Connection:
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("good", b"payload"))
        store.atomic_apply(RT, session_snapshot=b"s", receipt=_receipt("run-1", 1), rows=[])
    return _raw(path)


def test_damaged_checksum_column_fails_closed(tmp_path: Path) -> None:
    raw = _stored(tmp_path / "s.db")
    raw.execute(f"UPDATE {INPUTS} SET checksum = 'bogus'")
    raw.close()
    with SqliteRuntimeStore(tmp_path / "s.db") as store, pytest.raises(Corrupt) as info:
        store.load_input_states(RT)
    assert info.value.runtime_id == RT
    assert f"{INPUTS}[good]" in str(info.value)


def test_a_row_copied_under_another_key_fails_closed(tmp_path: Path) -> None:
    raw = _stored(tmp_path / "s.db")
    raw.execute(
        f"INSERT INTO {INPUTS} (runtime_id, input_id, payload, checksum) "
        f"SELECT runtime_id, 'forged', payload, checksum FROM {INPUTS}"
    )
    raw.close()
    with SqliteRuntimeStore(tmp_path / "s.db") as store, pytest.raises(Corrupt, match="forged"):
        store.load_input_states(RT)


def test_a_null_payload_fails_closed(tmp_path: Path) -> None:
    raw = _stored(tmp_path / "s.db")
    raw.execute(f"DROP TABLE {INPUTS}")
    raw.execute(
        f"CREATE TABLE {INPUTS} (runtime_id TEXT, input_id TEXT, payload BLOB, checksum TEXT, "
        "finished_at REAL, idempotency_key TEXT, admission_seq INTEGER, queued BLOB)"
    )
    raw.execute(f"INSERT INTO {INPUTS} (runtime_id, input_id, payload, checksum) VALUES (?, 'nul', NULL, 'x')", (RT,))
    raw.close()
    with SqliteRuntimeStore(tmp_path / "s.db") as store, pytest.raises(Corrupt, match="not bytes"):
        store.load_input_states(RT)


def test_receipt_with_valid_checksum_but_malformed_body_fails_closed(tmp_path: Path) -> None:
    raw = _stored(tmp_path / "s.db")
    body = b'{"run_id": "run-1", "sequence": "one"}'
    raw.execute(f"UPDATE {RECEIPTS} SET receipt = ?, checksum = ?", (body, row_checksum(RECEIPTS, RT, "run-1#1", body)))
    raw.close()
    with SqliteRuntimeStore(tmp_path / "s.db") as store, pytest.raises(Corrupt, match="not a valid receipt"):
        store.load_boundary_receipt(RT, "run-1", 1)


def test_receipt_body_for_another_key_fails_closed(tmp_path: Path) -> None:
    raw = _stored(tmp_path / "s.db")
    body = _receipt("run-9", 9).to_json()
    raw.execute(f"UPDATE {RECEIPTS} SET receipt = ?, checksum = ?", (body, row_checksum(RECEIPTS, RT, "run-1#1", body)))
    raw.close()
    with SqliteRuntimeStore(tmp_path / "s.db") as store, pytest.raises(Corrupt, match="another key"):
        store.load_boundary_receipt(RT, "run-1", 1)


def test_a_file_that_is_not_a_database_fails_closed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not an SQLite file, just text" * 100)
    with pytest.raises(Corrupt, match="damaged"):
        SqliteRuntimeStore(path)


@pytest.mark.parametrize(
    ("option", "value"),
    [("synchronous", "OFF"), ("connections", "pooled"), ("busy_timeout_ms", -1)],
)
def test_bad_options_are_refused(tmp_path: Path, option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        SqliteRuntimeStore(tmp_path / "s.db", **{option: value})  # type: ignore[arg-type]


def test_calls_after_close_name_the_method_and_runtime(tmp_path: Path) -> None:
    store = SqliteRuntimeStore(tmp_path / "s.db")
    store.close()
    with pytest.raises(ReadFailed, match="load_session_snapshot: store is closed") as info:
        store.load_session_snapshot(RT)
    assert info.value.kind == "store_read_failed"
    assert store.closed


def test_close_waits_for_a_call_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteRuntimeStore(path, busy_timeout_ms=10_000)
    holder = _raw(path)
    holder.execute("BEGIN IMMEDIATE")
    results: list[str] = []

    def write() -> None:
        store.persist_input_state(RT, InputRow("x", b"1"))
        results.append("written")

    writer = threading.Thread(target=write)
    writer.start()
    while store.connection_count() < 2:  # the writer has entered and opened its connection
        threading.Event().wait(0.001)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.05)
    assert closer.is_alive(), "close returned while a write was still in flight"
    holder.execute("ROLLBACK")
    holder.close()
    writer.join()
    closer.join()
    assert results == ["written"]
    with SqliteRuntimeStore(path) as reopened:
        assert reopened.load_input_states(RT) == [InputRow("x", b"1")]


def test_processes_creating_the_same_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    code = (
        "import sys\n"
        "from meerkat_runtime.store.sqlite import SqliteRuntimeStore\n"
        "from meerkat_runtime.store.records import InputRow\n"
        "with SqliteRuntimeStore(sys.argv[1]) as s:\n"
        "    s.persist_input_state(sys.argv[2], InputRow(sys.argv[3], b'x'))\n"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(path), RT, f"p{n}"], env=child_env(), stderr=subprocess.PIPE)
        for n in range(5)
    ]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
    with SqliteRuntimeStore(path) as store:
        assert [r.input_id for r in store.load_input_states(RT)] == [f"p{n}" for n in range(5)]
        assert store.settings()["journal_mode"] == "wal"
