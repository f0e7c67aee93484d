"""The PostgreSQL store's version 4 (the recovery fields of queued inputs beside their rows) on a
real server, from a schema written at version 3: the upgrade keeps every row, is done once, and
a process killed in the middle of it leaves a version-3 schema that the next open upgrades."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.postgres.helpers import admin, named, open_store
from tests.runtime_session.helpers import make_prompt, recover_and_run, run

RT = canonical_runtime_id("old")
PENDING = 5
APP = "meerkat-test-migration-killed"


def _version(dsn: str, schema: str) -> object:
    with admin(dsn) as conn:
        row = conn.execute(f"SELECT version FROM {schema}.meerkat_schema_version").fetchone()
    return None if row is None else row[0]


def _has_queued(dsn: str, schema: str) -> bool:
    with admin(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'runtime_input_states' AND column_name = 'queued'",
            (schema,),
        ).fetchone()
    return row is not None and row[0] == 1


def _rows(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    with admin(dsn) as conn:
        return conn.execute(
            f"SELECT input_id, payload, checksum, finished_at, idempotency_key, admission_seq "
            f"FROM {schema}.runtime_input_states ORDER BY input_id"
        ).fetchall()


def version_3_schema(dsn: str, schema: str) -> None:
    """A session as version 3 left it: written through the runtime (one input run, PENDING left
    queued), then the version-4 column taken away."""

    async def write() -> None:
        machine = MeerkatMachine.persistent(open_store(dsn, schema), close_store=True)
        await machine.register_session_with_executor("old", ScriptedExecutor())
        _, handle = await machine.accept_input_with_completion("old", make_prompt("done", idempotency_key="d0"))
        assert handle is not None
        await handle.wait()
        await machine.unregister_session("old")
        await machine.register_session("old")
        for i in range(PENDING):
            assert (await machine.accept_input("old", make_prompt(f"p{i}", idempotency_key=f"p{i}"))).is_accepted
        await machine.close()

    run(write())
    with admin(dsn) as conn:
        conn.execute(f"ALTER TABLE {schema}.runtime_input_states DROP COLUMN queued")
        conn.execute(f"DROP TABLE {schema}.runtime_receipt_inputs")  # the version-6 addition
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = 3")
    assert not _has_queued(dsn, schema)


def test_a_version_3_schema_is_upgraded_once_keeping_every_row(pg_dsn: str, pg_schema: str) -> None:
    version_3_schema(pg_dsn, pg_schema)
    before = _rows(pg_dsn, pg_schema)
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 6
        active = store.load_active_input_states(RT)
        assert len(active) == PENDING and all(row.queued is None for row in active)
    assert _rows(pg_dsn, pg_schema) == before
    with open_store(pg_dsn, pg_schema):  # a second open migrates nothing
        pass
    assert _rows(pg_dsn, pg_schema) == before and _version(pg_dsn, pg_schema) == SCHEMA_VERSION
    queue, ran = run(recover_and_run(open_store(pg_dsn, pg_schema), "p2", "d0", close_store=True))
    assert len(queue) == PENDING and ran == queue


def test_rows_written_after_the_upgrade_carry_the_fields(pg_dsn: str, pg_schema: str) -> None:
    version_3_schema(pg_dsn, pg_schema)

    async def add() -> None:
        machine = MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), close_store=True)
        await machine.register_session("old")
        for i in range(2):
            assert (await machine.accept_input("old", make_prompt(f"n{i}", idempotency_key=f"n{i}"))).is_accepted
        await machine.close()

    run(add())
    with open_store(pg_dsn, pg_schema) as store:
        active = store.load_active_input_states(RT)
    # the new rows were written with their fields, the old ones written back with theirs by the registration
    assert all(row.queued is not None for row in active) and len(active) == PENDING + 2
    queue, ran = run(recover_and_run(open_store(pg_dsn, pg_schema), "p2", "d0", close_store=True))
    assert len(queue) == PENDING + 2 and ran == queue


_MIGRATE_AND_HANG = """
import sys, time
from meerkat_runtime.store import postgres_schema
from meerkat_runtime.store.postgres import PostgresRuntimeStore

def hang(s):
    print("migrating", flush=True)
    return (f"ALTER TABLE {s}.runtime_input_states ADD COLUMN queued BYTEA", "SELECT pg_sleep(2)")

postgres_schema.MIGRATIONS = tuple((4, hang) if v == 4 else (v, step) for v, step in postgres_schema.MIGRATIONS)
PostgresRuntimeStore(sys.argv[1], schema=sys.argv[2])
"""


def test_a_process_killed_during_the_upgrade_leaves_a_version_3_schema(pg_dsn: str, pg_schema: str) -> None:
    version_3_schema(pg_dsn, pg_schema)
    before = _rows(pg_dsn, pg_schema)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    dsn = named(pg_dsn, APP)
    child = subprocess.Popen(
        [sys.executable, "-c", _MIGRATE_AND_HANG, dsn, pg_schema], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "migrating\n"
        deadline_polls = 500
        while deadline_polls and not _sleeping(pg_dsn):  # the ALTER ran; the transaction is open
            deadline_polls -= 1
            subprocess.run(["sleep", "0.02"], check=True)
        assert deadline_polls, "the migration never reached its pause"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    _wait_gone(pg_dsn)
    assert _version(pg_dsn, pg_schema) == 3 and not _has_queued(pg_dsn, pg_schema)
    assert _rows(pg_dsn, pg_schema) == before
    queue, ran = run(recover_and_run(open_store(pg_dsn, pg_schema), "p2", "d0", close_store=True))
    assert len(queue) == PENDING and ran == queue
    assert _version(pg_dsn, pg_schema) == SCHEMA_VERSION


def _sleeping(dsn: str) -> bool:
    with admin(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'PgSleep'", (APP,)
        ).fetchone()
    return row is not None and row[0] > 0


def _wait_gone(dsn: str) -> None:
    """The killed client's backend finds its socket closed once its statement ends, and rolls
    its transaction back."""
    with admin(dsn) as conn:
        for _ in range(1000):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP,)).fetchone()
            if row is not None and row[0] == 0:
                return
            subprocess.run(["sleep", "0.02"], check=True)
    raise AssertionError("the killed client's backend did not end")
