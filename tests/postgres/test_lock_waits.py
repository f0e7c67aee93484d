"""Lock waits of the PostgreSQL store are bounded by its ``timeout_s``.

A frozen owner — a stopped process, a host cut off in the middle of a transaction — leaves its
backend ``idle in transaction`` holding the session's advisory lock. Every call that needs that
lock gives up within the store's timeout with ``WriteFailed`` (nothing written), and the server
ends the store's own transactions that stay idle longer than that, so a frozen owner cannot hold
a session's lock for more than ``timeout_s``: the next worker claims the session and the frozen
worker's write, once it wakes up, is refused by the fence.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from meerkat_runtime import MeerkatMachine, OwnershipConfig
from meerkat_runtime.store.high_water import MarkStep
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.postgres import PostgresRuntimeStore, lock_key
from meerkat_runtime.store.postgres_schema import MIGRATION_LOCK, SCHEMA_VERSION, stored_version
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import OwnershipLost, WriteFailed

from tests.postgres.helpers import admin, open_store

RT = "rt:session:frozen"
WAIT_S = 20.0
"""How long a test waits for a call that should end within about a second (never reached when
the store behaves; the calls of an unbounded lock wait are still blocked then)."""


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as exc:  # the test inspects it
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _wait_until(condition: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_calls_waiting_for_a_lock_held_by_a_frozen_transaction_fail_within_the_timeout(
    pg_dsn: str, pg_schema: str
) -> None:
    holder = admin(pg_dsn)
    holder.execute("BEGIN")
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(pg_schema, RT),))  # then idle: frozen
    store = open_store(pg_dsn, pg_schema, timeout_s=1)
    try:
        calls = {
            "claim_lease": lambda: store.claim_lease(RT, "host-b", 5.0),
            "persist_input_state": lambda: store.persist_input_state(RT, InputRow("w", b"p")),
        }
        running = {name: _in_thread(call) for name, call in calls.items()}
        for thread, _ in running.values():
            thread.join(WAIT_S)
        assert [name for name, (thread, _) in running.items() if thread.is_alive()] == []
        for name, (_, result) in running.items():
            error = result.get("error")
            assert isinstance(error, WriteFailed), (name, result)
            assert "another connection held the lock" in str(error) and "nothing was written" in str(error)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert store.load_lease(RT) is None
        assert store.load_input_states(RT) == []
        assert store.load_high_water(RT) is None
    finally:
        store.close()


def test_a_frozen_owner_loses_its_lock_and_its_write_is_refused_by_the_fence(pg_dsn: str, pg_schema: str) -> None:
    frozen_store = open_store(pg_dsn, pg_schema, timeout_s=1)
    taker = open_store(pg_dsn, pg_schema, timeout_s=10)
    inside = threading.Event()
    wake = threading.Event()
    try:

        def body(conn: Any) -> MarkStep:
            # the owner stops inside its transaction (holding the session's lock), once
            if not inside.is_set():
                inside.set()
                wake.wait(WAIT_S)
            conn.execute(f"INSERT INTO {pg_schema}.runtime_states VALUES (%s, 'x', 'x')", (RT,))
            return MarkStep()

        writer, written = _in_thread(lambda: frozen_store._fenced_write(RT, "frozen write", None, body))
        assert inside.wait(WAIT_S)
        claim, claimed = _in_thread(lambda: taker.claim_lease(RT, "host-b", 30.0))
        claim.join(8.0)  # the frozen transaction ends after 1 s
        frozen_ended = not claim.is_alive()
        wake.set()
        writer.join(WAIT_S)
        claim.join(WAIT_S)
        assert frozen_ended, "the claim waited for the frozen owner's transaction"
        assert "error" not in claimed and claimed["value"].owner == "host-b"
        assert isinstance(written.get("error"), OwnershipLost), written
        assert taker.load_high_water(RT) is None
        with admin(pg_dsn) as conn:
            row = conn.execute(f"SELECT count(*) FROM {pg_schema}.runtime_states").fetchone()
        assert row is not None and row[0] == 0
    finally:
        wake.set()
        frozen_store.close()
        taker.close()


def _time_limits(pg_dsn: str, pg_schema: str, *, wait_for_locks: bool = False) -> object:
    """The lock and idle time limits a write transaction of a store with ``timeout_s=2.5`` runs under."""
    with open_store(pg_dsn, pg_schema, timeout_s=2.5) as store:
        return store._tx.write(
            RT,
            "settings",
            lambda conn: conn.execute(
                "SELECT current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')"
            ).fetchone(),
            wait_for_locks=wait_for_locks,
        )


def test_every_transaction_of_the_store_sets_its_time_limits(pg_dsn: str, pg_schema: str) -> None:
    assert _time_limits(pg_dsn, pg_schema) == ("2500ms", "2500ms")


def test_a_store_opening_during_a_long_migration_waits_for_it_past_the_timeout(pg_dsn: str, pg_schema: str) -> None:
    timeout_s = 1.0
    holder = admin(pg_dsn)  # a long migration in another process: it holds the migration lock
    holder.execute("BEGIN")
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    holder_pid = holder.info.backend_pid
    try:
        opening, opened = _in_thread(lambda: open_store(pg_dsn, pg_schema, timeout_s=timeout_s))
        with admin(pg_dsn) as conn:

            def blocked() -> bool:
                query = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
                row = conn.execute(query, (holder_pid,)).fetchone()
                return row is not None and row[0] == 1

            assert _wait_until(blocked, WAIT_S), opened
        opening.join(3 * timeout_s)  # the migration goes on well past the opener's timeout_s
        waited = opening.is_alive()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    opening.join(WAIT_S)
    store = opened.get("value")
    try:
        assert waited and "error" not in opened, opened
        assert isinstance(store, PostgresRuntimeStore)
        assert store.load_lease(RT) is None
        with admin(pg_dsn) as conn:
            assert stored_version(conn, pg_schema) == SCHEMA_VERSION
    finally:
        if isinstance(store, PostgresRuntimeStore):
            store.close()


def test_a_migration_waits_for_locks_without_limit_but_keeps_the_idle_limit(pg_dsn: str, pg_schema: str) -> None:
    assert _time_limits(pg_dsn, pg_schema, wait_for_locks=True) == ("0", "2500ms")


def test_a_registration_waiting_for_the_lease_waits_out_a_lock_held_past_the_timeout(
    pg_dsn: str, pg_schema: str
) -> None:
    # The session's lock is held by a transaction that outlives the store's timeout (1 s):
    # a registration with wait_for_lease tries its claim again instead of failing, and
    # claims the session once the lock is free.
    holder = admin(pg_dsn)
    holder.execute("BEGIN")
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(pg_schema, RT),))
    store = open_store(pg_dsn, pg_schema, timeout_s=1)
    ownership = OwnershipConfig(owner_id="host-b", wait_for_lease=WAIT_S, wait_poll_s=0.05)
    machine = MeerkatMachine.persistent(store, ownership=ownership)
    released = threading.Timer(2.5, lambda: holder.execute("ROLLBACK"))

    async def register() -> object:
        try:
            await machine.register_session("frozen")
            return store.load_lease(RT)
        finally:
            await machine.close()

    try:
        released.start()
        registered, result = _in_thread(lambda: asyncio.run(register()))
        registered.join(WAIT_S + 5)
        assert not registered.is_alive() and "error" not in result, result
        lease = result["value"]
        assert isinstance(lease, Lease) and lease.owner == "host-b"
    finally:
        released.join()
        holder.close()
        store.close()
