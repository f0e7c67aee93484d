"""Schema versioning of the PostgreSQL store: creation, refusal of newer or broken version
tables (leaving them untouched), migrations that run once under concurrent opens, and a failing
migration that leaves nothing behind (DDL is transactional)."""

from __future__ import annotations

import threading

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION, check_schema_name
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import VersionMismatch, WriteFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.postgres.helpers import admin, open_store
from tests.runtime_session.helpers import make_prompt, run

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
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 6
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
        "runtime_high_water",
        "runtime_quarantine",
        "runtime_receipt_inputs",
    }


def test_reopening_keeps_rows_and_runs_no_migration(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    with open_store(pg_dsn, pg_schema) as store:
        assert store.load_input_states(RT) == [InputRow("a", b"1")]
        assert store.settings()["schema_version"] == SCHEMA_VERSION


def _back_to_version_3(dsn: str, schema: str) -> None:
    """Make ``schema`` what a version-3 release left: input rows without the ``queued`` column."""
    with admin(dsn) as conn:
        conn.execute(f"ALTER TABLE {schema}.runtime_input_states DROP COLUMN queued")
        conn.execute(f"DROP TABLE {schema}.runtime_receipt_inputs")  # the version-6 addition
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = 3")


def _back_to_version_2(dsn: str, schema: str) -> None:
    """Make ``schema`` what a version-2 release left: input rows without the finished-input
    columns (their partial indexes go with them)."""
    _back_to_version_3(dsn, schema)
    with admin(dsn) as conn:
        conn.execute(
            f"ALTER TABLE {schema}.runtime_input_states DROP COLUMN finished_at, DROP COLUMN idempotency_key, "
            "DROP COLUMN admission_seq"
        )
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = 2")


def _back_to_version_1(dsn: str, schema: str) -> None:
    """Make ``schema`` what a version-1 release left: no mark or quarantine tables."""
    _back_to_version_2(dsn, schema)
    with admin(dsn) as conn:
        conn.execute(f"DROP TABLE {schema}.runtime_high_water")
        conn.execute(f"DROP TABLE {schema}.runtime_quarantine")
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = 1")


def test_a_version_1_schema_gets_marks_computed_from_its_rows(pg_dsn: str, pg_schema: str) -> None:
    other = "rt:session:schema-other"
    with open_store(pg_dsn, pg_schema) as store:
        store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"1"), InputRow("b", b"1")])
        receipt = BoundaryReceipt("run", 1, BoundaryKind.RUN_CHECKPOINT, ("a",))
        store.atomic_apply(RT, session_snapshot=b"snap", receipt=receipt, rows=[InputRow("c", b"1")])
        store.persist_ops_lifecycle(RT, b"ops")
        store.append_ops_record(RT, b"r1")
        store.append_ops_record(other, b"r1")
        store.append_ops_record(other, b"r2")
    _back_to_version_1(pg_dsn, pg_schema)
    assert _version(pg_dsn, pg_schema) == 1
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
        assert store.load_high_water(RT) == HighWater(
            RT, writes=0, inputs=3, receipts=1, session_snapshots=1, lifecycles=1, ops_snapshots=1, ops_records=1
        )
        assert store.load_high_water(other) == HighWater(other, writes=0, ops_records=2)
        assert store.load_high_water("rt:session:never") is None
        store.persist_input_state(RT, InputRow("d", b"1"))  # the migrated mark advances like any other
        assert store.load_high_water(RT) == HighWater(
            RT, writes=1, inputs=4, receipts=1, session_snapshots=1, lifecycles=1, ops_snapshots=1, ops_records=1
        )
        assert store.load_quarantined(RT) == []


async def _accept(dsn: str, schema: str, count: int) -> None:
    machine = MeerkatMachine.persistent(open_store(dsn, schema))
    await machine.register_session_with_executor("old", ScriptedExecutor())
    for n in range(count):
        await machine.accept_input("old", make_prompt(f"p{n}", idempotency_key=f"k{n}"))
    await machine.settle("old")
    await machine.close()


async def _recovered(dsn: str, schema: str) -> int:
    machine = MeerkatMachine.persistent(open_store(dsn, schema))
    await machine.register_session("old")  # recovery compares the migrated mark with the rows
    count = len(await machine.list_active_inputs("old"))
    await machine.close()
    return count


def test_a_session_written_by_version_1_recovers_after_the_upgrade(pg_dsn: str, pg_schema: str) -> None:
    run(_accept(pg_dsn, pg_schema, 3))
    _back_to_version_1(pg_dsn, pg_schema)
    assert run(_recovered(pg_dsn, pg_schema)) == 0  # every input ran before the upgrade; recovery accepted the mark
    rt = canonical_runtime_id("old")
    with open_store(pg_dsn, pg_schema) as store:
        mark = store.load_high_water(rt)
        assert mark is not None and mark.inputs == len(store.load_input_states(rt)) == 3


def test_a_version_2_schema_gains_the_finished_input_columns_and_recovery_fills_them(
    pg_dsn: str, pg_schema: str
) -> None:
    run(_accept(pg_dsn, pg_schema, 3))
    _back_to_version_2(pg_dsn, pg_schema)
    assert _version(pg_dsn, pg_schema) == 2
    rt = canonical_runtime_id("old")
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
        assert store.load_finished_inputs(rt) == [] and len(store.load_active_input_states(rt)) == 3
    assert run(_recovered(pg_dsn, pg_schema)) == 0  # the finished rows are written back with their columns
    with open_store(pg_dsn, pg_schema) as store:
        listed = store.load_finished_inputs(rt)
        assert sorted(f.idempotency_key or "" for f in listed) == ["k0", "k1", "k2"]
        assert store.load_active_input_states(rt) == []
        before = store.load_high_water(rt)
        assert before is not None and before.inputs == 3

    async def compacted() -> None:  # registration compacts beyond the horizon (fenced)
        machine = MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), retention=RetentionPolicy(keep_finished=1))
        await machine.register_session("old")
        await machine.close()

    run(compacted())
    with open_store(pg_dsn, pg_schema) as store:
        after = store.load_high_water(rt)
        assert after is not None and after.inputs == 1 == len(store.load_input_states(rt))
        assert after.writes > before.writes
    assert run(_recovered(pg_dsn, pg_schema)) == 0  # the mark agrees with the compacted rows


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
