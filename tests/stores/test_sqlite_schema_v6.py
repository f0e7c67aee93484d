"""The SQLite store's version 6 (the recovery fields of queued inputs beside their rows) on real
files written at version 5: the upgrade keeps every row byte for byte, is done once, and a
process killed in the middle of it leaves a version-5 file that the next open upgrades; the
first registration writes the old queued rows back with their fields (payloads unchanged), so
the next restart reads them from the column."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import PackedRecord, queued_problem
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sql_rows import unbound_queued
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, stored_version
from meerkat_runtime.store.tables import INPUTS, RECEIPT_INPUTS
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import recover_and_run, registered_queue
from tests.runtime_session.killed_child import first_line_then_kill

RT = canonical_runtime_id("old")
MonkeyPatch = pytest.MonkeyPatch
PENDING = 6


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _columns(path: Path) -> list[str]:
    conn = _raw(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({INPUTS})")]
    finally:
        conn.close()


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = _raw(path)
    try:
        return conn.execute(
            f"SELECT input_id, payload, checksum, finished_at, idempotency_key, admission_seq FROM {INPUTS} "
            "ORDER BY input_id"
        ).fetchall()
    finally:
        conn.close()


async def _write_session(path: Path) -> None:
    """Two inputs run to completion, then PENDING accepted and left queued."""
    machine = MeerkatMachine.persistent(path)
    executor = ScriptedExecutor()
    await machine.register_session_with_executor("old", executor)
    for i in range(2):
        _, handle = await machine.accept_input_with_completion("old", prompt(f"done {i}", idempotency_key=f"d{i}"))
        assert handle is not None
        await handle.wait()
    await machine.unregister_session("old")
    await machine.register_session("old")
    for i in range(PENDING):
        assert (await machine.accept_input("old", prompt(f"pending {i}", idempotency_key=f"p{i}"))).is_accepted
    await machine.close()


def version_5_file(path: Path) -> None:
    """A real session file as version 5 left it: written through the runtime, then the version-6
    column and the version-7 table taken away (the rows, their checksums and the other columns
    are what version 5 wrote)."""
    asyncio.run(_write_session(path))
    conn = _raw(path)
    conn.execute(f"ALTER TABLE {INPUTS} DROP COLUMN queued")
    conn.execute(f"DROP TABLE {RECEIPT_INPUTS}")  # the version-7 addition
    conn.execute("UPDATE meerkat_schema_version SET version = 5")
    conn.close()
    assert "queued" not in _columns(path)


def test_a_version_5_file_is_upgraded_once_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    version_5_file(path)
    before = _rows(path)
    with SqliteRuntimeStore(path) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 7
        active = store.load_active_input_states(RT)
        assert len(active) == PENDING and all(row.queued is None for row in active)  # not written yet
    assert _rows(path) == before  # nothing else touched
    with SqliteRuntimeStore(path):  # idempotent: a second open finds version 7 and migrates nothing
        pass
    assert _rows(path) == before and _columns(path).count("queued") == 1
    queue, ran = asyncio.run(recover_and_run(path, "p3", "d1"))
    assert len(queue) == PENDING and ran == queue  # recovered from the payloads, run in admission order


def test_rows_written_after_the_upgrade_carry_the_fields_and_both_kinds_recover(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    version_5_file(path)
    old = {str(r[0]) for r in _rows(path) if r[3] is None}

    async def add() -> None:
        machine = MeerkatMachine.persistent(path)
        await machine.register_session("old")
        for i in range(3):
            assert (await machine.accept_input("old", prompt(f"new {i}", idempotency_key=f"n{i}"))).is_accepted
        await machine.close()

    asyncio.run(add())
    with SqliteRuntimeStore(path) as store:
        active = store.load_active_input_states(RT)
    # the new rows were written with their fields, the old ones written back with theirs by the registration
    assert all(row.queued is not None for row in active) and len(active) == PENDING + 3
    assert {row.input_id for row in active} > old
    queue, ran = asyncio.run(recover_and_run(path, "p3", "d1"))
    assert len(queue) == PENDING + 3 and ran == queue


def _fields_column(path: Path) -> dict[str, bytes | None]:
    conn = _raw(path)
    try:
        rows = conn.execute(f"SELECT input_id, queued, checksum FROM {INPUTS} WHERE finished_at IS NULL")
        # the runtime's bytes of each column bound to its row's payload (unbound: stale)
        return {str(i): q if q is None else unbound_queued(q, c) for i, q, c in rows}
    finally:
        conn.close()


def test_the_first_registration_writes_the_old_rows_back_with_their_fields_and_payloads_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v5.db"
    version_5_file(path)
    before = _rows(path)
    with SqliteRuntimeStore(path):  # the upgrade alone writes no fields (it does not read the rows)
        pass
    assert set(_fields_column(path).values()) == {None} and len(_fields_column(path)) == PENDING
    queue = asyncio.run(registered_queue(path, "old"))
    fields = _fields_column(path)
    assert len(fields) == PENDING and all(value is not None for value in fields.values())
    keys = {str(r[0]): r[4] for r in before}
    assert all(queued_problem(i, keys[i], value) is None for i, value in fields.items() if value is not None)
    assert _rows(path) == before  # payloads, checksums and the other columns as they were

    async def recovered_from_fields() -> list[str]:
        machine = MeerkatMachine.persistent(path)
        await machine.register_session("old")
        records = machine._sessions[RT].core.ledger.records
        packed = [r for r in records.values() if isinstance(r, PackedRecord) and r.packed is not None]
        assert len(packed) == PENDING and all(r.packed_fields is None for r in packed)  # read from the column
        queue = [str(i) for i in (await machine.session_view("old")).queue]
        await machine.close()
        return queue

    assert asyncio.run(recovered_from_fields()) == queue
    assert _fields_column(path) == fields and _rows(path) == before  # a second registration writes none of it
    again, ran = asyncio.run(recover_and_run(path, "p3", "d1"))
    assert again == queue and ran == queue


def test_without_the_write_back_the_old_rows_stay_without_fields(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    path = tmp_path / "v5.db"
    version_5_file(path)
    monkeypatch.setattr(PackedRecord, "add_fields", lambda self: False)
    asyncio.run(registered_queue(path, "old"))
    assert set(_fields_column(path).values()) == {None}


_MIGRATE_AND_HANG = """
import sys, time
from meerkat_runtime.store import sqlite_schema
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

def hang(conn):
    conn.execute("ALTER TABLE runtime_input_states ADD COLUMN queued BLOB")
    print("migrating", flush=True)
    time.sleep(60)

sqlite_schema.MIGRATIONS = tuple((v, hang if v == 6 else step) for v, step in sqlite_schema.MIGRATIONS)
SqliteRuntimeStore(sys.argv[1])
"""


def test_a_process_killed_during_the_upgrade_leaves_a_version_5_file_the_next_open_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    version_5_file(path)
    before = _rows(path)
    assert first_line_then_kill(_MIGRATE_AND_HANG, path) == "migrating\n"
    conn = _raw(path)
    assert stored_version(conn) == 5  # the step's transaction never committed
    conn.close()
    assert "queued" not in _columns(path) and _rows(path) == before
    queue, ran = asyncio.run(recover_and_run(path, "p3", "d1"))
    assert len(queue) == PENDING and ran == queue
    conn = _raw(path)
    assert stored_version(conn) == SCHEMA_VERSION
    conn.close()
