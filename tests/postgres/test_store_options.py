"""Construction options of the PostgreSQL store: connection string or pool, the server clock
(or an injected one), what ``settings`` reports, threads sharing the pool, ids PostgreSQL text
cannot hold."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.postgres import PostgresRuntimeStore, StoreConnection
from meerkat_runtime.store.postgres_deadline import tcp_options
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import InvalidSetting, LeaseHeld, ReadFailed, WriteFailed
from psycopg.conninfo import make_conninfo

from tests.postgres.helpers import admin, open_store
from tests.postgres.relay import CuttableProxy

RT = "rt:session:options"


def _pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("meerkat-")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"conninfo": 123}, "conninfo must be a str .* got a int"),
        ({"conninfo": b"dbname=x"}, "conninfo must be a str .* got a bytes"),
        ({"conninfo": "nonsense"}, "conninfo is not a valid connection string"),
        ({"timeout_s": float("inf")}, r"timeout_s must be a number of seconds > 0 .* got inf"),
        ({"timeout_s": float("nan")}, "timeout_s .* got nan"),
        ({"timeout_s": True}, "timeout_s .* got True"),
        ({"timeout_s": 0}, "timeout_s .* got 0"),
        ({"max_connections": True}, "max_connections must be an integer .* got True"),
        ({"max_connections": 2.0}, "max_connections must be an integer .* got 2.0"),
        ({"min_connections": "1"}, "min_connections must be an integer in 0..8, got '1'"),
        ({"min_connections": 9}, "min_connections must be an integer in 0..8, got 9"),
        ({"min_connections": False}, "min_connections .* got False"),
        ({"read_only": 1}, "read_only must be True or False"),
    ],
)
def test_bad_settings_are_refused_at_once_with_invalid_setting(
    pg_dsn: str, options: dict[str, Any], message: str
) -> None:
    before = _pool_threads()
    arguments: dict[str, Any] = {"conninfo": pg_dsn, "timeout_s": 1, **options}
    with pytest.raises(InvalidSetting, match=message):
        PostgresRuntimeStore(arguments.pop("conninfo"), **arguments)
    assert _pool_threads() == before


def test_a_failure_while_the_pool_opens_closes_the_pool(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = psycopg_pool.ConnectionPool.open
    pools: list[psycopg_pool.ConnectionPool] = []

    def open_then_fail(pool: psycopg_pool.ConnectionPool, *args: Any, **kwargs: Any) -> None:
        opened(pool, *args, **kwargs)
        pools.append(pool)
        raise OverflowError("timestamp too large")

    monkeypatch.setattr(psycopg_pool.ConnectionPool, "open", open_then_fail)
    with pytest.raises(OverflowError):
        open_store(pg_dsn, pg_schema, timeout_s=2)
    (pool,) = pools
    assert pool.closed


def test_a_server_that_refuses_is_reported_at_once_with_its_cause(pg_dsn: str) -> None:
    missing = make_conninfo(pg_dsn, dbname="meerkat_no_such_database")
    for min_connections in (0, 1):
        with pytest.raises(WriteFailed, match='database "meerkat_no_such_database" does not exist'):
            PostgresRuntimeStore(missing, min_connections=min_connections, timeout_s=2)


def test_exactly_one_of_a_connection_string_or_a_pool(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PostgresRuntimeStore()
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=1, open=False)
    with pytest.raises(ValueError, match="exactly one"):
        PostgresRuntimeStore(pg_dsn, pool=pool)
    with pytest.raises(ValueError, match="max_connections"):
        PostgresRuntimeStore(pg_dsn, max_connections=0)


def test_a_pool_passed_in_must_bound_its_waits(pg_dsn: str) -> None:
    """A pool of plain connections would let a call wait for a silent server without limit."""
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=1, max_size=1, open=False)
    with pytest.raises(ValueError, match="connection_class=StoreConnection"):
        PostgresRuntimeStore(pool=pool)


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
    pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
        pg_dsn, connection_class=StoreConnection, min_size=1, max_size=2, open=True
    )
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


def _documented_grants(schema: str, role: str) -> list[str]:
    """The ``GRANT`` statements docs/postgres.md gives a worker's role, for ``schema`` and ``role``."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "postgres.md").read_text(encoding="utf-8")
    grants = [line.strip() for line in text.splitlines() if line.strip().startswith("GRANT ")]
    assert grants, "docs/postgres.md lists no GRANT statements"
    return [
        g.rstrip(";").replace("SCHEMA meerkat", f"SCHEMA {schema}").replace(" TO worker", f" TO {role}") for g in grants
    ]


def test_a_role_with_the_documented_grants_can_run_a_worker(pg_dsn: str, pg_schema: str) -> None:
    open_store(pg_dsn, pg_schema).close()  # the schema's owner creates it
    role = f"{pg_schema}_worker"
    with admin(pg_dsn) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        for grant in _documented_grants(pg_schema, role):
            conn.execute(grant)
    try:
        with open_store(make_conninfo(pg_dsn, user=role), pg_schema) as store:
            lease = store.claim_lease(RT, "worker", 30.0)
            fence = Fence(lease.owner, lease.token)
            store.persist_input_state(RT, InputRow("a", b"1"), fence=fence)
            store.append_ops_record(RT, b"record", fence=fence)  # runtime_ops_records_seq
            store.quarantine_row(RT, "a", "test", fence=fence)  # runtime_quarantine_seq
            assert [row.input_id for row in store.load_quarantined(RT)] == ["a"]
            store.release_lease(fence, RT)
            assert store.list_runtimes() == [RT]
    finally:
        with admin(pg_dsn) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_no_connection_names_its_cause(pg_dsn: str, pg_schema: str) -> None:
    proxy = CuttableProxy(pg_dsn)
    store = open_store(proxy.dsn, pg_schema, min_connections=1, max_connections=1, timeout_s=1)
    try:
        busy = "the server answers, but all 1 connections of the pool were in use"
        with store.pool.connection(), pytest.raises(ReadFailed, match=busy):  # its only connection is taken
            store.load_lease(RT)
        proxy.close()  # the server can no longer be reached
        with pytest.raises(ReadFailed, match=r"the server cannot be reached: .*[Cc]onnection refused"):
            store.load_lease(RT)
    finally:
        store.close()
        proxy.close()


def test_tcp_options_come_from_timeout_s_unless_the_connection_string_sets_them(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    assert tcp_options("host=db keepalives_idle=5 tcp_user_timeout=0", 3.0) == {
        "connect_timeout": 3,
        "keepalives": 1,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "7")
    assert "connect_timeout" not in tcp_options("host=db", 3.0)
    monkeypatch.delenv("PGCONNECT_TIMEOUT")
    with open_store(pg_dsn, pg_schema, timeout_s=4) as store:
        kwargs = store.pool.kwargs
        assert (
            isinstance(kwargs, dict) and kwargs["tcp_user_timeout"] == 8000 and kwargs["keepalives_idle"] == 4
        )  # the store's own pool
        with store.pool.connection() as conn:
            assert isinstance(conn, StoreConnection) and conn.reply_s == 8.0  # bounded from its creation
