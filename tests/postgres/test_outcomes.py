"""How a failed write is classified: refused or failed before COMMIT (known not to have happened),
COMMIT refused by the server (rolled back), the connection lost while COMMIT was in flight
(outcome unknown); connections killed while idle or mid-transaction are replaced transparently."""

from __future__ import annotations

import psycopg
import pytest
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.postgres_transactions import ATTEMPTS, commit_refused
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import WriteFailed, WriteOutcomeUnknown

from tests.postgres.helpers import admin, named, open_store, terminate, terminator

RT = "rt:session:outcomes"


def _trigger(dsn: str, schema: str, *, when: str, action: str) -> None:
    """A row trigger on the input table: ``when`` is ``before`` (runs inside the statement) or
    ``commit`` (a deferred constraint trigger: runs inside COMMIT)."""
    with admin(dsn) as conn:
        conn.execute(
            f"CREATE FUNCTION {schema}.test_hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {action}; "
            "RETURN NEW; END $$"
        )
        if when == "commit":
            conn.execute(
                f"CREATE CONSTRAINT TRIGGER test_hook AFTER INSERT OR UPDATE ON {schema}.runtime_input_states "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.test_hook()"
            )
        else:
            conn.execute(
                f"CREATE TRIGGER test_hook BEFORE INSERT OR UPDATE ON {schema}.runtime_input_states "
                f"FOR EACH ROW EXECUTE FUNCTION {schema}.test_hook()"
            )


def _drop_trigger(dsn: str, schema: str) -> None:
    with admin(dsn) as conn:
        conn.execute(f"DROP TRIGGER test_hook ON {schema}.runtime_input_states")


def _victim(pg_dsn: str, pg_schema: str) -> tuple[PostgresRuntimeStore, str]:
    name = f"victim-{pg_schema}"
    return open_store(named(pg_dsn, name), pg_schema, max_connections=2), name


def test_connection_lost_while_commit_is_in_flight_is_outcome_unknown(pg_dsn: str, pg_schema: str) -> None:
    store, name = _victim(pg_dsn, pg_schema)
    with store:
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(30)")
        with terminator(pg_dsn, name, times=1) as killed, pytest.raises(WriteOutcomeUnknown) as info:
            store.persist_input_state(RT, InputRow("a", b"1"))
        assert killed[0] == 1
        err = info.value
        assert err.outcome_unknown and err.kind == "store_write_outcome_unknown"
        assert "COMMIT was in flight" in str(err) and RT in str(err)
        _drop_trigger(pg_dsn, pg_schema)
        store.persist_input_state(RT, InputRow("b", b"2"))  # the pool replaced the dead connection
        assert [r.input_id for r in store.load_input_states(RT)] == ["b"]  # here the server had not committed


def test_commit_refused_by_a_connected_server_is_a_plain_write_failure(pg_dsn: str, pg_schema: str) -> None:
    store, _ = _victim(pg_dsn, pg_schema)
    with store:
        _trigger(pg_dsn, pg_schema, when="commit", action="RAISE EXCEPTION 'deferred check failed'")
        with pytest.raises(WriteFailed) as info:
            store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"1")])
        assert not info.value.outcome_unknown and type(info.value) is WriteFailed
        assert "COMMIT was refused" in str(info.value) and "deferred check failed" in str(info.value)
        assert store.load_machine_lifecycle(RT) is None and store.load_input_states(RT) == []


def test_a_connection_lost_before_commit_is_retried_and_the_write_lands_once(pg_dsn: str, pg_schema: str) -> None:
    store, name = _victim(pg_dsn, pg_schema)
    with store:
        _trigger(pg_dsn, pg_schema, when="before", action="PERFORM pg_sleep(0.5)")
        with terminator(pg_dsn, name, times=1) as killed:
            store.append_ops_record(RT, b"before")
            store.persist_input_state(RT, InputRow("a", b"1"))
        assert killed[0] == 1
        assert [r.input_id for r in store.load_input_states(RT)] == ["a"]
        loaded = store.load_ops_lifecycle(RT)
        assert loaded is not None and loaded.appended == (b"before",)


def test_a_connection_lost_before_commit_every_time_fails_and_writes_nothing(pg_dsn: str, pg_schema: str) -> None:
    store, name = _victim(pg_dsn, pg_schema)
    with store:
        _trigger(pg_dsn, pg_schema, when="before", action="PERFORM pg_sleep(30)")
        with terminator(pg_dsn, name, times=ATTEMPTS) as killed, pytest.raises(WriteFailed) as info:
            store.atomic_apply(RT, session_snapshot=b"snap", receipt=_receipt(), rows=[InputRow("a", b"1")], fence=None)
        assert killed[0] == ATTEMPTS
        assert type(info.value) is WriteFailed and not info.value.outcome_unknown
        assert "before COMMIT" in str(info.value) and "nothing was written" in str(info.value)
        _drop_trigger(pg_dsn, pg_schema)
        assert store.load_session_snapshot(RT) is None and store.load_boundary_receipt(RT, "run", 1) is None


def test_idle_connections_killed_by_the_server_are_replaced(pg_dsn: str, pg_schema: str) -> None:
    store, name = _victim(pg_dsn, pg_schema)
    with store:
        store.persist_input_state(RT, InputRow("a", b"1"))
        assert terminate(pg_dsn, name) >= 1
        store.persist_input_state(RT, InputRow("b", b"2"))
        assert terminate(pg_dsn, name) >= 1
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        lease = store.claim_lease(RT, "worker", 30)
        assert terminate(pg_dsn, name) >= 1
        assert store.renew_lease(lease.fence, RT, 30).token == lease.token


def test_a_server_that_cannot_be_reached_is_a_write_failure_naming_it(pg_dsn: str) -> None:
    bad = named(pg_dsn, "unreachable") + " port=1"
    with pytest.raises(WriteFailed, match="cannot connect to PostgreSQL") as info:
        PostgresRuntimeStore(bad, timeout_s=2)
    assert info.value.runtime_id == "*"


def _receipt() -> BoundaryReceipt:
    return BoundaryReceipt("run", 1, BoundaryKind.RUN_START, ("a",))


def test_a_commit_ended_by_a_fatal_error_counts_as_unknown_even_on_a_live_connection(pg_dsn: str) -> None:
    # pg_terminate_backend can end a session with FATAL 57P01 just after its commit record was
    # flushed, before libpq has noticed the closed socket: that must never read as "refused".
    with admin(pg_dsn) as conn:
        fatal = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
        assert not commit_refused(conn, fatal)
        conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.DivisionByZero) as info:
            conn.execute("SELECT 1 / 0")
        conn.execute("ROLLBACK")
        assert info.value.diag.severity_nonlocalized == "ERROR"
        assert commit_refused(conn, info.value)  # an ERROR on a session that still answers: rolled back
