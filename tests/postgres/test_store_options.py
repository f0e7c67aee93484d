"""Construction options of the PostgreSQL store: connection string or pool, the server clock
(or an injected one), what ``settings`` reports, threads sharing the pool, ids PostgreSQL text
cannot hold."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import psycopg_pool
import pytest
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import LeaseHeld, ReadFailed, WriteFailed

from tests.postgres.helpers import admin, open_store

RT = "rt:session:options"


def test_exactly_one_of_a_connection_string_or_a_pool(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PostgresRuntimeStore()
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=1, open=False)
    with pytest.raises(ValueError, match="exactly one"):
        PostgresRuntimeStore(pg_dsn, pool=pool)
    with pytest.raises(ValueError, match="max_connections"):
        PostgresRuntimeStore(pg_dsn, max_connections=0)


def test_settings_report_the_durability_the_server_promises(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        got = store.settings()
    assert got["synchronous_commit"] == "on" and got["fsync"] == "on"
    assert got["isolation"] == "read committed" and got["schema"] == pg_schema
    assert str(got["server_version"])[:2].isdigit()


def test_lease_expiry_is_in_the_server_clock(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store, admin(pg_dsn) as conn:
        lease = store.claim_lease(RT, "a", 30.0)
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        assert row is not None
        server_now = float(row[0])
        assert server_now - 5 < lease.expires_at - 30.0 <= server_now  # claimed just now, by the server's clock


def test_an_injected_clock_decides_expiry_instead(pg_dsn: str, pg_schema: str) -> None:
    clock = ManualClock(5_000.0)
    with open_store(pg_dsn, pg_schema, clock=clock) as store:
        lease = store.claim_lease(RT, "a", 10.0)
        assert lease.expires_at == 5_010.0
        with pytest.raises(LeaseHeld):
            store.claim_lease(RT, "b", 10.0)
        clock.advance(10.0)
        taken = store.claim_lease(RT, "b", 10.0)
        assert (taken.owner, taken.token, taken.expires_at) == ("b", 2, 5_020.0)


def test_a_pool_passed_in_is_used_and_left_open(pg_dsn: str, pg_schema: str) -> None:
    pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=2, open=True)
    try:
        store = PostgresRuntimeStore(pool=pool, schema=pg_schema)
        store.persist_input_state(RT, InputRow("a", b"1"))
        assert store.pool is pool
        store.close()
        with pool.connection() as conn:
            assert conn.autocommit is False  # the pool's own setting is restored after each call
            row = conn.execute(f"SELECT count(*) FROM {pg_schema}.runtime_input_states").fetchone()
            assert row == (1,)
    finally:
        pool.close()


def test_many_threads_share_a_small_pool(pg_dsn: str, pg_schema: str) -> None:
    errors: list[BaseException] = []
    with open_store(pg_dsn, pg_schema, max_connections=3) as store:

        def writer(n: int) -> None:
            try:
                for i in range(15):
                    store.persist_input_state(RT, InputRow(f"t{n:02}-{i:02}", b"x"))
                    store.load_input_states(RT)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(store.load_input_states(RT)) == 12 * 15


def test_an_id_with_a_nul_character_is_refused_and_nothing_is_written(pg_dsn: str, pg_schema: str) -> None:
    with open_store(pg_dsn, pg_schema) as store:
        with pytest.raises(WriteFailed, match="persist_input_state failed"):
            store.persist_input_state(RT, InputRow("a\x00b", b"1"))
        with pytest.raises(ReadFailed):
            store.load_input_states("rt:\x00")
        assert store.load_input_states(RT) == []


def test_close_waits_and_then_refuses(pg_dsn: str, pg_schema: str) -> None:
    store = open_store(pg_dsn, pg_schema)
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(WriteFailed, match="closed"):
        store.persist_input_state(RT, InputRow("a", b"1"))
    with pytest.raises(psycopg.Error), store.pool.connection(timeout=0.5):  # its own pool is closed with it
        pass
