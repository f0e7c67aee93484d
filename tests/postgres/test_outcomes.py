"""How a failed write is classified: refused or failed before COMMIT (known not to have happened),
COMMIT refused by the server (rolled back), the connection lost while COMMIT was in flight
(outcome unknown); connections killed while idle or mid-transaction are replaced transparently.
After an unknown outcome the store's reads are authoritative: a COMMIT that outlives its cut
connection is waited for, and reads fail while it cannot be."""

from __future__ import annotations

import psycopg
import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.postgres_transactions import ATTEMPTS, commit_refused
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import ReadFailed, WriteFailed, WriteOutcomeUnknown
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.postgres.helpers import (
    admin,
    cut_while_sleeping,
    named,
    open_store,
    terminate,
    terminator,
)
from tests.postgres.relay import CuttableProxy
from tests.runtime_session.helpers import make_prompt, run

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


def _behind_proxy(pg_dsn: str, pg_schema: str, **options: object) -> tuple[PostgresRuntimeStore, str, CuttableProxy]:
    name = f"cut-{pg_schema}"
    proxy = CuttableProxy(named(pg_dsn, name))
    return open_store(proxy.dsn, pg_schema, max_connections=2, **options), name, proxy


def test_a_commit_that_outlives_its_cut_connection_is_waited_for(pg_dsn: str, pg_schema: str) -> None:
    """The network fails while COMMIT is in flight; the server finishes the commit a moment
    later. The write is an unknown outcome, and a read right after it sees the write."""
    store, name, proxy = _behind_proxy(pg_dsn, pg_schema)
    with store:
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(1)")
        with cut_while_sleeping(pg_dsn, name, proxy) as cut, pytest.raises(WriteOutcomeUnknown):
            store.persist_input_state(RT, InputRow("a", b"1"))
        assert cut[0] >= 1
        assert store.load_input_states(RT) == [InputRow("a", b"1")]  # the commit had landed meanwhile
        mark = store.load_high_water(RT)
        assert mark is not None and (mark.writes, mark.inputs) == (1, 1)
    proxy.close()


def test_reads_fail_while_a_commit_of_a_cut_connection_may_still_be_running(pg_dsn: str, pg_schema: str) -> None:
    store, name, proxy = _behind_proxy(pg_dsn, pg_schema, timeout_s=1)
    with store:
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(60)")
        with cut_while_sleeping(pg_dsn, name, proxy), pytest.raises(WriteOutcomeUnknown):
            store.persist_input_state(RT, InputRow("a", b"1"))
        for read in (store.load_input_states, store.load_high_water, store.load_machine_lifecycle):
            with pytest.raises(ReadFailed, match="may still be committing") as info:
                read(RT)
            assert info.value.runtime_id == RT
        assert store.load_input_states("rt:session:elsewhere") == []  # other runtimes read as usual
        assert terminate(pg_dsn, name, waiting_on="PgSleep") == 1  # the server ends it: rolled back
        _drop_trigger(pg_dsn, pg_schema)
        assert store.load_input_states(RT) == [] and store.load_high_water(RT) is None
        store.persist_input_state(RT, InputRow("b", b"2"))
        assert [r.input_id for r in store.load_input_states(RT)] == ["b"]
    proxy.close()


def test_an_accept_whose_commit_outlives_its_connection_is_acknowledged_once(pg_dsn: str, pg_schema: str) -> None:
    """The runtime reads the store back after the unknown outcome: it finds the accept stored,
    acknowledges it, and a retry with the same idempotency key is deduplicated. (Were the read
    made before the server finished the commit, the accept would be reported as not stored and
    the retry would store the key a second time.)"""
    store, name, proxy = _behind_proxy(pg_dsn, pg_schema)
    first = make_prompt("one", idempotency_key="k")

    async def body() -> None:
        machine = MeerkatMachine.persistent(store)
        await machine.register_session("s")
        _trigger(pg_dsn, pg_schema, when="commit", action="PERFORM pg_sleep(1)")
        with cut_while_sleeping(pg_dsn, name, proxy) as cut:
            outcome = await machine.accept_input("s", first)
        assert cut[0] >= 1 and isinstance(outcome, Accepted)
        _drop_trigger(pg_dsn, pg_schema)
        again = await machine.accept_input("s", make_prompt("one again", idempotency_key="k"))
        assert isinstance(again, Deduplicated) and again.existing_id == first.header.id
        await machine.close()

    run(body())
    with open_store(pg_dsn, pg_schema) as check:
        keys = [
            decode_record(r.payload).input.header.idempotency_key
            for r in check.load_input_states(canonical_runtime_id("s"))
        ]
    assert keys == ["k"]
    proxy.close()


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


def test_a_write_retried_after_its_data_statement_ran_lands_once_with_an_exact_mark(
    pg_dsn: str, pg_schema: str
) -> None:
    """The connection breaks after the statement carrying the data (and taking the lock) ran, in
    the mark's statement: the retry runs the whole transaction again, and what it counts (new
    rows, the receipt) is that of the retry alone."""
    store, name = _victim(pg_dsn, pg_schema)
    with store:
        with admin(pg_dsn) as conn:
            conn.execute(
                f"CREATE FUNCTION {pg_schema}.mark_hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_sleep(0.5); RETURN NEW; END $$"
            )
            conn.execute(
                f"CREATE TRIGGER mark_hook BEFORE INSERT OR UPDATE ON {pg_schema}.runtime_high_water "
                f"FOR EACH ROW EXECUTE FUNCTION {pg_schema}.mark_hook()"
            )
        with terminator(pg_dsn, name, times=1) as killed:
            store.atomic_apply(RT, session_snapshot=b"snap", receipt=_receipt(), rows=[InputRow("a", b"1")], fence=None)
        assert killed[0] == 1
        with terminator(pg_dsn, name, times=1) as killed:
            store.commit_machine_lifecycle(RT, b"life", [InputRow("b", b"2")])
        assert killed[0] == 1
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        mark = store.load_high_water(RT)
        assert mark is not None and (mark.writes, mark.inputs, mark.receipts) == (2, 2, 1)
