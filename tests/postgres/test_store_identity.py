"""The PostgreSQL store's identity (its authority key): one per database and schema, whatever
connection string a process uses, kept in the schema's version row; so two workers' stores share
a store and their event logs are one history for ``check-trace``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest
from meerkat_conformance.trace.check import check_trace
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.authority import stores_share_authority
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.postgres import PostgresRuntimeStore, StoreConnection
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.store.records import InputRow
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.ownership.helpers import LEASE_S, config
from tests.postgres.helpers import admin, open_store
from tests.runtime_session.helpers import make_prompt, run


def _store_id(dsn: str, schema: str) -> object:
    with admin(dsn) as conn:
        row = conn.execute(f"SELECT store_id FROM {schema}.meerkat_schema_version").fetchone()
    assert row is not None
    return row[0]


def _url(dsn: str, **changes: str) -> str:
    """``dsn`` spelled as a ``postgresql://`` URL (its host, a socket directory or an address, as a
    query parameter), with ``changes`` applied."""
    parts = {**conninfo_to_dict(dsn), **changes}
    query = "&".join(f"{key}={value}" for key, value in sorted(parts.items()) if key not in ("user", "dbname"))
    return f"postgresql://{parts.get('user', '')}@/{parts.get('dbname', '')}?{query}"


@pytest.fixture
def other_user(pg_dsn: str, pg_schema: str) -> Iterator[str]:
    """``pg_dsn`` as another role, granted what a worker needs on ``pg_schema`` (created first)."""
    open_store(pg_dsn, pg_schema).close()
    role = f"{pg_schema}_worker"
    try:
        with admin(pg_dsn) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            conn.execute(f"GRANT USAGE ON SCHEMA {pg_schema} TO {role}")
            conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {pg_schema} TO {role}")
            conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {pg_schema} TO {role}")
    except psycopg.errors.InsufficientPrivilege:
        pytest.skip("the test server's user cannot create roles")
    try:
        yield make_conninfo(pg_dsn, user=role)
    finally:
        with admin(pg_dsn) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_every_spelling_of_the_server_opens_the_same_store(pg_dsn: str, pg_schema: str, other_user: str) -> None:
    """The socket, the TCP address, a host name, a URL, another user, other pool settings and a
    pool passed in: one key (the stored id), and the stores share their authority."""
    tcp = make_conninfo(pg_dsn, host="127.0.0.1")
    spellings: list[tuple[str, dict[str, Any]]] = [
        (pg_dsn, {}),
        (tcp, {"max_connections": 2, "min_connections": 0}),
        (_url(pg_dsn, application_name="worker-7"), {"timeout_s": 3.0}),
        (_url(tcp), {}),
        (make_conninfo(pg_dsn, host="localhost"), {}),
        (other_user, {}),
        (pg_dsn, {"read_only": True}),
    ]
    stores = [PostgresRuntimeStore(dsn, schema=pg_schema, **options) for dsn, options in spellings]
    pool = psycopg_pool.ConnectionPool(
        tcp, connection_class=StoreConnection, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
    )
    stores.append(PostgresRuntimeStore(pool=pool, schema=pg_schema))
    try:
        keys = {store.auth_authority_key() for store in stores}
        assert keys == {f"postgres:{_store_id(pg_dsn, pg_schema)}"}
        assert all(stores_share_authority(stores[0], store) for store in stores)
        first = MeerkatMachine.persistent(stores[0], offload_store_calls=False)
        second = MeerkatMachine.persistent(stores[3], offload_store_calls=False)
        assert first.shares_runtime_persistence_with(second)
        assert first.events.store == second.events.store == stores[0].auth_authority_key()
        run(first.close())
        run(second.close())
    finally:
        for store in stores:
            store.close()
        pool.close()


def test_another_schema_is_another_store(pg_dsn: str, pg_schema: str) -> None:
    other = f"{pg_schema}_b"
    try:
        with open_store(pg_dsn, pg_schema) as a, open_store(pg_dsn, other) as b:
            assert a.auth_authority_key() != b.auth_authority_key()
            assert not stores_share_authority(a, b)
    finally:
        with admin(pg_dsn) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")


def test_the_id_is_written_once_and_survives_reopening(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        key = store.auth_authority_key()
    stored = _store_id(pg_dsn, pg_schema)
    assert isinstance(stored, str) and key == f"postgres:{stored}"
    with open_store(pg_dsn, pg_schema) as store:
        assert store.auth_authority_key() == key
    assert _store_id(pg_dsn, pg_schema) == stored


def test_a_version_4_schema_gets_an_id_when_upgraded(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        store.persist_input_state("rt:session:s", _row())
    with admin(pg_dsn) as conn:  # what a version-4 release left
        conn.execute(f"ALTER TABLE {pg_schema}.meerkat_schema_version DROP COLUMN store_id")
        conn.execute(f"DROP TABLE {pg_schema}.runtime_receipt_inputs")  # the version-6 addition
        conn.execute(f"UPDATE {pg_schema}.meerkat_schema_version SET version = 4")
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 6
        assert store.auth_authority_key() == f"postgres:{_store_id(pg_dsn, pg_schema)}"
        assert store.load_input_states("rt:session:s") == [_row()]


def test_without_a_stored_id_a_read_only_open_derives_one_a_worker_writes_one(pg_dsn: str, pg_schema: str) -> None:
    open_store(pg_dsn, pg_schema).close()
    with admin(pg_dsn) as conn:
        conn.execute(f"UPDATE {pg_schema}.meerkat_schema_version SET store_id = NULL")
        row = conn.execute("SELECT system_identifier, current_database() FROM pg_control_system()").fetchone()
    assert row is not None
    derived = f"postgres:system={row[0]};database={row[1]};schema={pg_schema}"
    for dsn in (pg_dsn, make_conninfo(pg_dsn, host="127.0.0.1")):
        with open_store(dsn, pg_schema, read_only=True) as store:
            assert store.auth_authority_key() == derived
    assert _store_id(pg_dsn, pg_schema) is None  # a read-only open writes nothing
    with open_store(pg_dsn, pg_schema) as store:
        written = store.auth_authority_key()
    assert written == f"postgres:{_store_id(pg_dsn, pg_schema)}" != derived
    with open_store(pg_dsn, pg_schema, read_only=True) as store:
        assert store.auth_authority_key() == written


def _row() -> InputRow:
    return InputRow("a", b"1")


def test_a_takeover_on_another_host_is_one_history_for_check_trace(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    """Worker A (on the socket) accepts two inputs and dies; worker B (over TCP, as a URL) takes
    the session over and recovers them: the two workers' event logs are one runtime's history,
    which the model explains (each log alone was a history of its own, and B's recovery of
    inputs its runtime never accepted was rejected)."""
    clock = ManualClock()
    events = tmp_path / "events"

    def worker(owner: str, dsn: str) -> MeerkatMachine:
        store = open_store(dsn, pg_schema, clock=clock)
        machine = MeerkatMachine.persistent(
            store, offload_store_calls=False, ownership=config(owner, clock), close_store=True
        )
        machine.events.subscribe(EventLog(os.fspath(events)))
        return machine

    async def body() -> None:
        a = worker("A", pg_dsn)
        b = worker("B", _url(make_conninfo(pg_dsn, host="127.0.0.1")))
        await a.register_session("s")
        await a.accept_input("s", make_prompt("one"))
        await a.accept_input("s", make_prompt("two"))
        await a.halt()  # a crash: the lease is not released
        clock.advance(LEASE_S + 1)
        await b.register_session("s")
        assert len((await b.session_view("s")).queue) == 2
        await b.close()

    run(body())
    verdict = check_trace([events])
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    assert verdict.ok and verdict.files == 2 and verdict.runtimes == 1
    assert verdict.rules["register"] == 2 and verdict.rules["accept"] == 2
