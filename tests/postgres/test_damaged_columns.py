"""The PostgreSQL store under damage made by SQL beside the row checksums: quarantine refuses a
session whose high-water mark is missing or counts other rows (nothing written, never a mark
below zero), and the columns beside an input row that disagree with its payload are named by
``diagnose_session`` and fail the runtime's read closed, as with SQLite."""

from __future__ import annotations

import asyncio

import pytest
from meerkat_runtime import RunResult, ScriptedExecutor
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.repair.quarantine import quarantine_input
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import Succeed
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS
from meerkat_runtime.vocab.errors import Corrupt, RecoveryCorruption

from tests.postgres.helpers import admin, open_store

RT = "rt:session:s"


def _sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> None:
    with admin(dsn) as conn:
        conn.execute(statement, params)


def test_quarantine_without_a_mark_is_refused_and_writes_nothing(pg_dsn: str, pg_schema: str) -> None:
    store = open_store(pg_dsn, pg_schema)
    try:
        store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"one"), InputRow("b", b"two")])
        _sql(pg_dsn, f"DELETE FROM {pg_schema}.{HIGH_WATER} WHERE runtime_id = %s", (RT,))
        with pytest.raises(Corrupt, match="no high-water mark although 2 input row"):
            store.quarantine_row(RT, "a", "bad row")
        with pytest.raises(Corrupt, match="no high-water mark although 2 input row"):
            quarantine_input(store, "s", "a", "bad row")
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        assert store.load_high_water(RT) is None and store.load_quarantined(RT) == []
        assert store.load_lease(RT) is None  # refused before a lease was claimed
    finally:
        store.close()


def test_a_write_removing_rows_the_mark_does_not_count_is_rolled_back(pg_dsn: str, pg_schema: str) -> None:
    store = open_store(pg_dsn, pg_schema)
    try:
        store.persist_input_state(RT, InputRow("a", b"one", 1.0))
        store.persist_input_state(RT, InputRow("b", b"two", 2.0))
        _sql(pg_dsn, f"UPDATE {pg_schema}.{HIGH_WATER} SET inputs = 1 WHERE runtime_id = %s", (RT,))
        with pytest.raises(Corrupt, match="removes 2 input row"):
            store.compact_inputs(RT, ["a", "b"])
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        assert store.load_high_water(RT) == HighWater(RT, writes=2, inputs=1)
    finally:
        store.close()


def test_a_key_column_changed_by_sql_is_named_and_fails_closed(pg_dsn: str, pg_schema: str) -> None:
    async def write() -> list[str]:
        executor = ScriptedExecutor(*(Succeed(RunResult(f"result {n}")) for n in range(2)))
        ids: list[str] = []
        async with MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), close_store=True) as machine:
            await machine.register_session_with_executor("s", executor)
            for n in range(2):
                _, handle = await machine.accept_input_with_completion("s", prompt(f"input {n}"))
                assert handle is not None
                await handle.wait()
                ids.append(handle.input_id)
        return ids

    async def register() -> None:
        async with MeerkatMachine.persistent(open_store(pg_dsn, pg_schema), close_store=True) as machine:
            await machine.register_session("s")

    ids = asyncio.run(write())
    _sql(
        pg_dsn,
        f"UPDATE {pg_schema}.{INPUTS} SET idempotency_key = 'k-new' WHERE runtime_id = %s AND input_id = %s",
        (RT, ids[0]),
    )
    with pytest.raises(RecoveryCorruption) as caught:
        asyncio.run(register())
    assert caught.value.input_id == ids[0]
    store = open_store(pg_dsn, pg_schema)
    try:
        found = diagnose_session(store, "s")
        assert [b.input_id for b in found.bad_rows] == [ids[0]]
        quarantine_input(store, "s", ids[0], found.bad_rows[0].problem)
    finally:
        store.close()
    asyncio.run(register())
