"""Schema versioning of the SQLite store: forward migration, refusal of newer files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.records import InputRow, OpsLifecycleRecords
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, NotAMeerkatStore, migrate, stored_version
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import VersionMismatch, WriteFailed

RT = "rt:session:schema"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _v1_file(path: Path) -> None:
    conn = _raw(path)
    conn.execute("BEGIN")
    assert migrate(conn, target=1) == 0
    conn.execute(
        f"INSERT INTO {INPUTS} VALUES (?, 'kept', ?, ?)", (RT, b"old row", row_checksum(INPUTS, RT, "kept", b"old row"))
    )
    conn.execute("COMMIT")
    conn.close()


def test_a_new_file_gets_the_current_version(tmp_path: Path) -> None:
    SqliteRuntimeStore(tmp_path / "s.db").close()
    conn = _raw(tmp_path / "s.db")
    assert stored_version(conn) == SCHEMA_VERSION == 7
    assert {
        "meerkat_schema_version",
        "runtime_ops_records",
        "runtime_leases",
        "runtime_high_water",
        "runtime_quarantine",
        INPUTS,
    } <= _tables(conn)
    conn.close()


def test_an_older_file_is_migrated_forward_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _v1_file(path)
    conn = _raw(path)
    assert stored_version(conn) == 1 and "runtime_ops_records" not in _tables(conn)
    conn.close()
    with SqliteRuntimeStore(path) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
        assert store.load_input_states(RT) == [InputRow("kept", b"old row")]
        assert store.load_high_water(RT) == HighWater(RT, writes=0, inputs=1)  # computed from the rows
        store.append_ops_record(RT, b"new record")
        assert store.load_ops_lifecycle(RT) == OpsLifecycleRecords(None, (b"new record",))


def test_a_version_2_file_gains_the_lease_table_and_keeps_working_unfenced_until_claimed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = _raw(path)
    conn.execute("BEGIN")
    assert migrate(conn, target=2) == 0
    conn.execute("COMMIT")
    conn.close()
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    conn = _raw(path)
    assert stored_version(conn) == SCHEMA_VERSION and "runtime_leases" in _tables(conn)
    conn.close()
    with SqliteRuntimeStore(path) as store:
        assert store.load_lease(RT) is None
        store.persist_input_state(RT, InputRow("b", b"2"))  # never claimed: unfenced writes still work
        lease = store.claim_lease(RT, "worker", 5.0)
        assert (lease.owner, lease.token) == ("worker", 1)
        store.persist_input_state(RT, InputRow("c", b"3"), fence=lease.fence)
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b", "c"]


def test_reopening_a_current_file_runs_no_migration(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    with SqliteRuntimeStore(path) as store:
        assert store.load_input_states(RT) == [InputRow("a", b"1")]
        assert store.settings()["schema_version"] == SCHEMA_VERSION


def test_a_newer_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = _raw(path)
    conn.execute("CREATE TABLE meerkat_schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO meerkat_schema_version VALUES (1, 99)")
    conn.close()
    with pytest.raises(VersionMismatch, match="schema version 99 is newer") as info:
        SqliteRuntimeStore(path)
    assert info.value.kind == "store_version_mismatch"
    conn = _raw(path)
    assert stored_version(conn) == 99
    assert _tables(conn) == {"meerkat_schema_version"}
    conn.close()


def test_another_applications_database_is_refused_byte_for_byte_untouched(tmp_path: Path) -> None:
    """A file with tables but no meerkat schema version is not taken over: no journal mode
    switched to WAL, no meerkat tables added, no -wal or -shm file left."""
    path = tmp_path / "app.db"
    conn = _raw(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.execute("INSERT INTO orders (item) VALUES ('tea')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotAMeerkatStore, match="is not a meerkat store: it holds other tables"):
        SqliteRuntimeStore(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_version_table_without_a_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = _raw(path)
    conn.execute("CREATE TABLE meerkat_schema_version (id INTEGER PRIMARY KEY, version)")
    conn.execute("INSERT INTO meerkat_schema_version VALUES (1, 'two')")
    conn.close()
    with pytest.raises(VersionMismatch, match="no valid version"):
        SqliteRuntimeStore(path)


def test_a_failing_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _v1_file(path)
    conn = _raw(path)
    conn.execute("CREATE INDEX runtime_ops_records_by_runtime ON runtime_input_states (input_id)")
    conn.close()
    with pytest.raises(WriteFailed, match="schema migration failed"):
        SqliteRuntimeStore(path)
    conn = _raw(path)
    assert stored_version(conn) == 1
    assert "runtime_ops_records" not in _tables(conn)
    conn.close()
