"""``meerkat-runtime`` reading a PostgreSQL store through a ``postgresql://`` URL: the same
listings as on SQLite, through read-only transactions (the server refuses any write)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from meerkat_runtime import MeerkatMachine, ScriptedExecutor, prompt
from meerkat_runtime.cli.store_arg import open_read_only
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import WriteFailed
from psycopg.conninfo import make_conninfo

from tests.cli.commands import command, run
from tests.postgres.helpers import admin, open_store
from tests.postgres.test_schema_v4 import _has_queued, _version, version_3_schema
from tests.runtime_session.helpers import run as run_async


def as_url(dsn: str) -> str:
    """A ``key=value`` libpq connection string as a ``postgresql://`` URL."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    pairs = dict(item.split("=", 1) for item in dsn.split())
    database = quote(pairs.pop("dbname", ""), safe="")
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs.items())
    return f"postgresql:///{database}?{query}"


def test_sessions_and_inputs_of_a_postgres_store(pg_dsn: str, pg_schema: str) -> None:
    async def write() -> str:
        async with MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), close_store=True) as machine:
            await machine.register_session_with_executor("alpha", ScriptedExecutor())
            _, handle = await machine.accept_input_with_completion("alpha", prompt("hello"))
            assert handle is not None
            await handle.wait()
            return handle.input_id

    input_id = run_async(write())
    url = as_url(pg_dsn)
    listed = run([*command("meerkat-runtime"), "sessions", "--json", "--schema", pg_schema, url])
    assert listed.returncode == 0, listed.stderr
    (alpha,) = json.loads(listed.stdout)["sessions"]
    assert (alpha["session_id"], alpha["state"], alpha["by_status"]) == ("alpha", "idle", {"consumed": 1})
    inputs = run([*command("meerkat-runtime"), "inputs", "--json", "--schema", pg_schema, url, "alpha"])
    assert inputs.returncode == 0, inputs.stderr
    assert [r["input_id"] for r in json.loads(inputs.stdout)["inputs"]] == [input_id]
    missing = run([*command("meerkat-runtime"), "inputs", "--schema", pg_schema, url, "nobody"])
    assert missing.returncode == 1 and "no session 'nobody'" in missing.stderr


def test_the_read_only_store_cannot_write(pg_dsn: str, pg_schema: str) -> None:
    open_store(pg_dsn, pg_schema).close()  # the schema exists, at the current version
    store = open_read_only(as_url(pg_dsn), pg_schema)
    try:
        assert store.list_runtimes() == []
        with pytest.raises(WriteFailed, match="read-only"):
            store.persist_input_state("rt:session:x", InputRow("i", b"1"))
    finally:
        store.close()
    with open_store(pg_dsn, pg_schema) as writable:
        assert writable.list_runtimes() == []


def _sessions(url: str, schema: str) -> tuple[int, str]:
    done = run([*command("meerkat-runtime"), "sessions", "--schema", schema, url])
    return done.returncode, done.stderr


def _set_version(dsn: str, schema: str, version: int) -> None:
    with admin(dsn) as conn:
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = %s", (version,))


def test_an_older_schema_is_reported_and_left_as_it_is(pg_dsn: str, pg_schema: str) -> None:
    version_3_schema(pg_dsn, pg_schema)
    status, stderr = _sessions(as_url(pg_dsn), pg_schema)
    assert status == 1, stderr
    (line,) = stderr.splitlines()
    assert f"schema version 3 is older than this release ({SCHEMA_VERSION})" in line
    assert "a worker upgrades it when it opens the store" in line
    assert "read-only transaction" not in line and "migrate STORE" not in line
    assert _version(pg_dsn, pg_schema) == 3 and not _has_queued(pg_dsn, pg_schema)


def test_a_newer_schema_is_refused_without_an_upgrade_hint(pg_dsn: str, pg_schema: str) -> None:
    open_store(pg_dsn, pg_schema).close()
    _set_version(pg_dsn, pg_schema, 99)
    status, stderr = _sessions(as_url(pg_dsn), pg_schema)
    assert status == 1, stderr
    (line,) = stderr.splitlines()
    assert f"version 99, newer than this release supports ({SCHEMA_VERSION})" in line and "migrate" not in line


def test_a_schema_without_a_store_is_reported_and_not_created(pg_dsn: str, pg_schema: str) -> None:
    status, stderr = _sessions(as_url(pg_dsn), pg_schema)
    assert status == 1, stderr
    (line,) = stderr.splitlines()
    assert f"schema '{pg_schema}' holds no meerkat store" in line and "CREATE SCHEMA" not in line
    with admin(pg_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,)).fetchone()
    assert row is not None and row[0] == 0


def test_a_database_that_does_not_exist_is_one_line_naming_it(pg_dsn: str) -> None:
    url = as_url(make_conninfo(pg_dsn, dbname="meerkat_no_such_database"))
    status, stderr = _sessions(url, "meerkat")
    assert status == 1, stderr
    (line,) = stderr.splitlines()
    assert 'database "meerkat_no_such_database" does not exist' in line
