"""A ``queued`` column left stale by a release that does not know it, on a real PostgreSQL server.

An older release (PostgreSQL schema 3) rewrites an input row's payload, checksum and the columns
it knows, never ``queued``; the row is simulated here by exactly that statement. The store ignores
a column not bound to the row's current checksum: the row is recovered from its verified payload
and runs once (a finished row left with its column is not run again).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import decode_record, encode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.tables import INPUTS

from tests.postgres.helpers import admin, open_store

RT = "rt:session:s"


def _row(dsn: str, schema: str, input_id: str) -> tuple[bytes, bytes | None, str, float | None]:
    with admin(dsn) as conn:
        found = conn.execute(
            f"SELECT payload, queued, idempotency_key, finished_at FROM {schema}.{INPUTS} "
            "WHERE runtime_id = %s AND input_id = %s",
            (RT, input_id),
        ).fetchone()
    assert found is not None
    payload, queued, key, finished_at = found
    return bytes(payload), None if queued is None else bytes(queued), str(key), finished_at


def _old_release_writes(dsn: str, schema: str, input_id: str, payload: bytes, finished_at: float | None) -> None:
    """The older release's upsert of an existing row: ``queued`` is not among its columns."""
    _, before, key, _ = _row(dsn, schema, input_id)
    seq = decode_record(payload).admission_seq
    with admin(dsn) as conn:
        conn.execute(
            f"INSERT INTO {schema}.{INPUTS} (runtime_id, input_id, payload, checksum, finished_at, idempotency_key, "
            "admission_seq) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (runtime_id, input_id) DO UPDATE SET "
            "payload = excluded.payload, checksum = excluded.checksum, finished_at = excluded.finished_at, "
            "idempotency_key = excluded.idempotency_key, admission_seq = excluded.admission_seq",
            (RT, input_id, payload, row_checksum(INPUTS, RT, input_id, payload), finished_at, key, seq),
        )
    assert before is not None and _row(dsn, schema, input_id)[1] == before


async def _accept(dsn: str, schema: str, *keys: str) -> None:
    async with MeerkatMachine.persistent(open_store(dsn, schema), close_store=True) as machine:
        await machine.register_session("s")
        for key in keys:
            assert (await machine.accept_input("s", prompt(key, idempotency_key=key, input_id=key))).is_accepted


async def _run_all(dsn: str, schema: str) -> tuple[list[str], dict[str, tuple[str, int]]]:
    executor = ScriptedExecutor()
    async with MeerkatMachine.persistent(open_store(dsn, schema), close_store=True) as machine:
        await machine.register_session_with_executor("s", executor)
        await machine.settle("s", timeout=10)
        assert await machine.last_error("s") is None
        states = {str(v.input_id): (v.current_state.value, v.attempts) for v in await machine.input_states("s")}
    return [str(i) for _, ids in executor.applied for i in ids], states


def test_rows_rewritten_by_an_older_release_are_recovered_from_their_payloads(pg_dsn: str, pg_schema: str) -> None:
    asyncio.run(_accept(pg_dsn, pg_schema, "kf", "kd", "k3"))
    # kf: the older release ran it, the run failed, it requeued it (attempts = 1)
    payload, _, _, _ = _row(pg_dsn, pg_schema, "kf")
    record = decode_record(payload)
    requeued = replace(record, attempts=1, updated_at=record.updated_at + 1.0)
    _old_release_writes(pg_dsn, pg_schema, "kf", encode_record(requeued), None)
    # kd: the older release ran it to completion (the finished row of a twin session)
    kd_payload = _row(pg_dsn, pg_schema, "kd")[0]
    twin = f"{pg_schema}_twin"
    try:
        asyncio.run(_accept(pg_dsn, twin, "kd"))
        asyncio.run(_run_all(pg_dsn, twin))
        done_payload, _, _, done_at = _row(pg_dsn, twin, "kd")
    finally:
        from meerkat_conformance.stores.postgres_backend import drop_schema

        drop_schema(pg_dsn, twin)
    assert done_at is not None and done_payload != kd_payload
    _old_release_writes(pg_dsn, pg_schema, "kd", done_payload, done_at)

    store = open_store(pg_dsn, pg_schema)
    try:
        rows = {r.input_id: r for r in store.load_active_input_states(RT)}
        assert sorted(rows) == ["k3", "kf"]
        assert rows["kf"].queued is None and rows["k3"].queued is not None
    finally:
        store.close()

    ran, states = asyncio.run(_run_all(pg_dsn, pg_schema))
    assert sorted(ran) == ["k3", "kf"]  # each once; kd not again
    assert states == {"kf": ("consumed", 2), "kd": ("consumed", 1), "k3": ("consumed", 1)}
