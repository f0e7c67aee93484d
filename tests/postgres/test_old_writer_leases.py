"""An upgrade introducing the high-water marks refuses while a worker of the older release (one
that writes no marks) holds a live lease in the schema, on a real server."""

from __future__ import annotations

import asyncio
import time

import pytest
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.migration_leases import MigrationRefused
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION, migrate
from meerkat_runtime.store.sql_rows import lease_params
from meerkat_runtime.vocab.errors import Corrupt

from tests.postgres.helpers import admin, open_store

RT = "rt:session:w"
OWNER = "old-worker-7"


def _version_1_with_lease(dsn: str, schema: str, expires_at: float) -> None:
    """A schema as a version-1 release leaves it while one of its workers owns session ``w``."""
    with admin(dsn) as conn, conn.transaction():
        migrate(conn, schema, target=1)
        conn.execute(
            f"INSERT INTO {schema}.runtime_leases (runtime_id, owner, token, expires_at, checksum) "
            "VALUES (%s, %s, %s, %s, %s)",
            lease_params(Lease(RT, OWNER, 3, expires_at)),
        )


def _version(dsn: str, schema: str) -> object:
    with admin(dsn) as conn:
        row = conn.execute(f"SELECT version FROM {schema}.meerkat_schema_version").fetchone()
    return None if row is None else row[0]


def test_a_live_lease_of_a_version_1_worker_refuses_the_upgrade(pg_dsn: str, pg_schema: str) -> None:
    expires_at = time.time() + 3600
    _version_1_with_lease(pg_dsn, pg_schema, expires_at)
    with pytest.raises(MigrationRefused) as refused:
        open_store(pg_dsn, pg_schema)
    assert OWNER in str(refused.value) and f"{expires_at:.3f}" in str(refused.value)
    assert "schema version 1" in str(refused.value) and "Stop every worker of the older release" in str(refused.value)
    assert refused.value.owner == OWNER
    assert _version(pg_dsn, pg_schema) == 1  # nothing was changed


def test_once_the_lease_has_expired_the_upgrade_runs(pg_dsn: str, pg_schema: str) -> None:
    _version_1_with_lease(pg_dsn, pg_schema, time.time() + 3600)
    with open_store(pg_dsn, pg_schema, clock=lambda: time.time() + 7200) as store:  # the lease has expired
        assert store.settings()["schema_version"] == SCHEMA_VERSION
    assert _version(pg_dsn, pg_schema) == SCHEMA_VERSION


def test_a_mark_counting_fewer_rows_names_an_older_writer_and_postgres_advice(pg_dsn: str, pg_schema: str) -> None:
    """The refusal of a session whose schema holds a row its mark does not count (what a
    version-1 worker writing after the upgrade leaves) names that cause and, for this store,
    ``diagnose_session``: ``meerkat-runtime check`` reads SQLite files only."""

    async def accept() -> None:
        with open_store(pg_dsn, pg_schema) as store:
            async with MeerkatMachine.persistent(store) as machine:
                await machine.register_session("w")
                await machine.accept_input("w", prompt("p0", idempotency_key="k0"))

    async def register() -> None:
        with open_store(pg_dsn, pg_schema) as store:
            async with MeerkatMachine.persistent(store) as machine:
                await machine.register_session("w")

    asyncio.run(accept())
    with admin(pg_dsn) as conn:  # the row a version-1 worker inserts: payload and checksum, no mark
        conn.execute(
            f"INSERT INTO {pg_schema}.runtime_input_states (runtime_id, input_id, payload, checksum) "
            "VALUES (%s, %s, %s, %s)",
            (RT, "late", b"{}", row_checksum("runtime_input_states", RT, "late", b"{}")),
        )
    with pytest.raises(Corrupt) as refused:
        asyncio.run(register())
    said = str(refused.value)
    assert "the mark says 1, the store returned 2" in said and "older release" in said
    assert "diagnose_session(store, SESSION)" in said and "reads SQLite files only" in said
