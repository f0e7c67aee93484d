"""When the store holds more rows than the high-water mark counts, the refusal names the usual
cause (a worker of an older release that writes no marks kept writing after the upgrade) and
what to do, and not only disk damage; fewer rows keep the damage wording. Real SQLite files, a
real session: the extra row is inserted the way a schema-3 release writes an input row."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import Corrupt
from meerkat_runtime.vocab.ids import canonical_runtime_id

RT = canonical_runtime_id("w")


async def _accept(path: Path, count: int) -> None:
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session("w")
        for n in range(count):
            await machine.accept_input("w", prompt(f"p{n}", idempotency_key=f"k{n}"))


async def _register(path: Path) -> None:
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session("w")


def _refusal(path: Path) -> str:
    with pytest.raises(Corrupt) as refused:
        asyncio.run(_register(path))
    return str(refused.value)


def test_more_rows_than_the_mark_names_an_older_writer(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    asyncio.run(_accept(path, 2))
    conn = sqlite3.connect(path, isolation_level=None)
    try:  # an input row as a schema-3 worker inserts it: payload and checksum, no mark advanced
        payload = b"{}"
        conn.execute(
            f"INSERT INTO {INPUTS} (runtime_id, input_id, payload, checksum) VALUES (?, ?, ?, ?)",
            (RT, "late", payload, row_checksum(INPUTS, RT, "late", payload)),
        )
    finally:
        conn.close()
    said = _refusal(path)
    assert "the mark says 2, the store returned 3" in said
    assert "older release" in said and "kept writing after the store was upgraded" in said
    assert "restore the store from a backup" in said and "`meerkat-runtime check PATH`" in said


def test_fewer_rows_than_the_mark_keeps_the_damage_cause(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    asyncio.run(_accept(path, 2))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"DELETE FROM {INPUTS} WHERE rowid = (SELECT min(rowid) FROM {INPUTS})")
    finally:
        conn.close()
    said = _refusal(path)
    assert "the mark says 2, the store returned 1" in said
    assert "lost or added" in said and "older release" not in said


def test_the_store_level_check_gives_sqlite_advice(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    asyncio.run(_accept(path, 1))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            f"INSERT INTO {INPUTS} (runtime_id, input_id, payload, checksum) VALUES (?, ?, ?, ?)",
            (RT, "late", b"{}", row_checksum(INPUTS, RT, "late", b"{}")),
        )
    finally:
        conn.close()
    store = SqliteRuntimeStore(path)
    try:
        with pytest.raises(Corrupt) as refused:
            store.load_active_input_states(RT)
    finally:
        store.close()
    said = str(refused.value)
    assert "older release" in said and "`meerkat-runtime check PATH` lists what disagrees" in said
    assert "diagnose_session" not in said
