"""Schema versioning of the PostgreSQL store: creation, refusal of newer or broken version
tables (leaving them untouched), migrations that run once under concurrent opens, and a failing
migration that leaves nothing behind (DDL is transactional)."""

from __future__ import annotations

import threading

import pytest
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION, check_schema_name
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import VersionMismatch, WriteFailed

from tests.postgres.helpers import admin, open_store

RT = "rt:session:schema"


def _tables(dsn: str, schema: str) -> set[str]:
    with admin(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {r[0] for r in rows}


def _version(dsn: str, schema: str) -> object:
    with admin(dsn) as conn:
        row = conn.execute(f"SELECT version FROM {schema}.meerkat_schema_version").fetchone()
    return None if row is None else row[0]


def test_a_new_schema_gets_the_current_version_and_every_table(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 2
    assert _version(pg_dsn, pg_schema) == SCHEMA_VERSION
    assert _tables(pg_dsn, pg_schema) == {
        "meerkat_schema_version",
        "runtime_input_states",
        "runtime_boundary_receipts",
        "runtime_session_snapshots",
        "runtime_states",
        "runtime_ops_lifecycle",
        "runtime_ops_records",
        "runtime_leases",
    }


def test_reopening_keeps_rows_and_runs_no_migration(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    with open_store(pg_dsn, pg_schema) as store:
        assert store.load_input_states(RT) == [InputRow("a", b"1")]
        assert store.settings()["schema_version"] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_and_left_untouched(pg_dsn: str, pg_schema: str) -> None:
    with admin(pg_dsn) as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"CREATE TABLE {pg_schema}.meerkat_schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
        conn.execute(f"INSERT INTO {pg_schema}.meerkat_schema_version VALUES (1, 99)")
    with pytest.raises(VersionMismatch, match="version 99, newer than this release") as info:
        open_store(pg_dsn, pg_schema)
    assert info.value.kind == "store_version_mismatch" and info.value.runtime_id == "*"
    assert _version(pg_dsn, pg_schema) == 99
    assert _tables(pg_dsn, pg_schema) == {"meerkat_schema_version"}


def test_a_version_table_without_a_valid_version_is_refused(pg_dsn: str, pg_schema: str) -> None:
    with admin(pg_dsn) as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"CREATE TABLE {pg_schema}.meerkat_schema_version (id INTEGER PRIMARY KEY, version TEXT)")
        conn.execute(f"INSERT INTO {pg_schema}.meerkat_schema_version VALUES (1, 'two')")
    with pytest.raises(VersionMismatch, match="no valid version"):
        open_store(pg_dsn, pg_schema)


def test_a_failing_migration_leaves_nothing_behind(pg_dsn: str, pg_schema: str) -> None:
    with admin(pg_dsn) as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"CREATE TABLE {pg_schema}.runtime_leases (unrelated INTEGER)")  # in the way of step 1
    with pytest.raises(WriteFailed, match=r"schema migration failed.*runtime_leases"):
        open_store(pg_dsn, pg_schema)
    assert _tables(pg_dsn, pg_schema) == {"runtime_leases"}  # the version table of step 1 was rolled back too


def test_stores_opened_at_once_on_an_empty_schema_migrate_it_once(pg_dsn: str, pg_schema: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def opener(n: int) -> None:
        barrier.wait()
        try:
            with open_store(pg_dsn, pg_schema, max_connections=1) as store:
                store.persist_input_state(RT, InputRow(f"from-{n}", b"x"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _version(pg_dsn, pg_schema) == SCHEMA_VERSION
    with open_store(pg_dsn, pg_schema) as store:
        assert len(store.load_input_states(RT)) == 6


@pytest.mark.parametrize("bad", ["", "Upper", "1st", "pg_catalog", "a-b", "x" * 64, "a;drop", None])
def test_schema_names_that_would_need_quoting_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="schema must be"):
        check_schema_name(bad)
