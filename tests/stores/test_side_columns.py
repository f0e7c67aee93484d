"""The columns an input row stores beside its payload (``idempotency_key``, ``admission_seq``,
``finished_at``) are not covered by the row checksum: changed behind the store's back, they
must never make the runtime answer with another input's result. A finished row whose columns
disagree with its payload fails closed (``RecoveryCorruption`` naming it) where the runtime reads
it — at registration for the recent rows it reads back, at the duplicate accept for an older
one — and ``diagnose_session`` names it for quarantine (real SQLite files)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime import RunResult, ScriptedExecutor
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.repair.quarantine import quarantine_input
from meerkat_runtime.session import retention
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated
from meerkat_runtime.session.testing import Succeed
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import RecoveryCorruption

RT = "rt:session:s"


async def _write(path: Path) -> list[str]:
    """Three finished inputs (the first with key ``k-old``) of session ``s``."""
    executor = ScriptedExecutor(*(Succeed(RunResult(f"result {n}")) for n in range(3)))
    ids: list[str] = []
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session_with_executor("s", executor)
        for n in range(3):
            key = "k-old" if n == 0 else None
            _, handle = await machine.accept_input_with_completion("s", prompt(f"input {n}", idempotency_key=key))
            assert handle is not None
            await handle.wait()
            ids.append(handle.input_id)
    return ids


def _set(path: Path, input_id: str, column: str, value: object) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute(f"UPDATE {INPUTS} SET {column} = ? WHERE runtime_id = ? AND input_id = ?", (value, RT, input_id))
    finally:
        raw.close()


async def _accept(path: Path, key: str) -> tuple[object, str | None]:
    """Register ``s`` and accept a new input with ``key``: the outcome, and the result the
    returned handle resolves with."""
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session("s")
        outcome, handle = await machine.accept_input_with_completion(
            "s", prompt("a brand new request", idempotency_key=key)
        )
        done = None if handle is None or not handle.done() else await handle.wait()
        return outcome, None if done is None else repr(done)


@pytest.mark.parametrize(("column", "value"), [("idempotency_key", "k-new"), ("idempotency_key", None)])
def test_a_key_column_changed_by_sql_never_deduplicates_into_another_input(
    tmp_path: Path, column: str, value: object
) -> None:
    path = tmp_path / "s.db"
    ids = asyncio.run(_write(path))
    target = ids[1] if value is not None else ids[0]
    _set(path, target, column, value)
    with pytest.raises(RecoveryCorruption) as caught:
        asyncio.run(_accept(path, "k-new"))  # the recent rows are read back at registration
    assert caught.value.input_id == target and "idempotency_key column" in str(caught.value)

    store = SqliteRuntimeStore(path)
    try:
        found = diagnose_session(store, "s")
        assert [(b.input_id, b.intact) for b in found.bad_rows] == [(target, True)]
        assert "disagrees with the key in its payload" in found.bad_rows[0].problem
        quarantine_input(store, "s", target, found.bad_rows[0].problem)
    finally:
        store.close()
    outcome, _ = asyncio.run(_accept(path, "k-new"))
    assert isinstance(outcome, Accepted)  # a new input: nothing else holds the key


def test_an_older_finished_row_fails_closed_at_the_duplicate_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row not read back at registration (beyond the resident ones) is read at the first
    duplicate of the key its columns list: the accept fails, naming the row, instead of
    answering with that row's result."""
    monkeypatch.setattr(retention, "RESIDENT_FINISHED", 0)
    path = tmp_path / "s.db"
    ids = asyncio.run(_write(path))
    _set(path, ids[1], "idempotency_key", "k-new")
    with pytest.raises(RecoveryCorruption) as caught:
        asyncio.run(_accept(path, "k-new"))
    assert caught.value.input_id == ids[1]
    outcome, result = asyncio.run(_accept(path, "k-old"))  # the true key still deduplicates
    assert isinstance(outcome, Deduplicated) and outcome.existing_id == ids[0]
    assert result is not None and "result 0" in result


def test_an_admission_column_changed_by_sql_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    ids = asyncio.run(_write(path))
    _set(path, ids[2], "admission_seq", 77)
    with pytest.raises(RecoveryCorruption) as caught:
        asyncio.run(_accept(path, "k-new"))
    assert caught.value.input_id == ids[2] and "admission_seq column (77)" in str(caught.value)
    store = SqliteRuntimeStore(path)
    try:
        assert [b.input_id for b in diagnose_session(store, "s").bad_rows] == [ids[2]]
    finally:
        store.close()
