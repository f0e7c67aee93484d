"""An input row's write stores the same values, of the same types, whichever of its optional
columns are empty, and the high-water mark's checksum on the write path is the one a read
verifies: the write path binds its arguments and formats the mark's counters its own way
(``bytearray`` for the BLOBs, ``NULL`` written into the statement, the counters formatted at
once), and these tests pin that it stores what the plain statement and
:func:`~meerkat_runtime.store.high_water.counters_payload` would."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store.high_water import HIGH_WATER_FIELDS, MarkStep, advance_counters
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_marks import _advanced_checksum, _counters_checksum, stored_mark
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS

_COLUMNS = ("payload", "checksum", "finished_at", "idempotency_key", "admission_seq", "queued")
_TYPED = ", ".join(f"{column}, typeof({column})" for column in _COLUMNS)

_OPTIONAL = {
    "finished_at": 1765000000.25,
    "idempotency_key": "key-\u00e9",
    "admission_seq": 7,
    "queued": b"\x00queued\xff",
}


def _rows() -> list[InputRow]:
    """One row per combination of empty optional columns (a finished row carries no ``queued``)."""
    rows: list[InputRow] = []
    for index, empty in enumerate(itertools.product((False, True), repeat=len(_OPTIONAL))):
        fields = {name: None if blank else value for (name, value), blank in zip(_OPTIONAL.items(), empty, strict=True)}
        if fields["finished_at"] is not None:
            fields["queued"] = None
        rows.append(InputRow(f"input-{index}", b'{"row":' + str(index).encode() + b"}", **fields))  # type: ignore[arg-type]
    return rows


def _stored(path: Path, rt: str) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(f"SELECT input_id, {_TYPED} FROM {INPUTS} WHERE runtime_id = ?", (rt,)).fetchall()
    finally:
        conn.close()
    return {row[0]: tuple(row[1:]) for row in found}


@pytest.mark.parametrize("fenced", [False, True])
def test_every_combination_of_empty_columns_stores_what_the_plain_statement_stores(
    tmp_path: Path, fenced: bool
) -> None:
    path = tmp_path / "store.sqlite3"
    store = SqliteRuntimeStore(str(path))
    rt = "runtime:rows"
    fence: Fence | None = None
    try:
        if fenced:
            lease = store.claim_lease(rt, "worker-1", 60.0)
            fence = Fence(lease.owner, lease.token)
        rows = _rows()
        for row in rows:
            store.persist_input_state(rt, row, fence=fence)
    finally:
        store.close()
    plain = sqlite3.connect(":memory:")
    plain.execute(f"CREATE TABLE t (input_id TEXT, {', '.join(_COLUMNS)})")
    for row in rows:
        params = SqliteRuntimeStore._input_param(rt, row)
        plain.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", params[1:])
    expected = {r[0]: tuple(r[1:]) for r in plain.execute(f"SELECT input_id, {_TYPED} FROM t").fetchall()}
    assert _stored(path, rt) == expected
    assert len(expected) == 2 ** len(_OPTIONAL)
    types = {column: {row[2 * i + 1] for row in expected.values()} for i, column in enumerate(_COLUMNS)}
    assert types["payload"] == {"blob"} and types["queued"] == {"blob", "null"}
    assert types["finished_at"] == {"real", "null"} and types["idempotency_key"] == {"text", "null"}


@pytest.mark.parametrize(
    "counters",
    [
        (0,) * len(HIGH_WATER_FIELDS),
        (1, 1, 0, 0, 1, 0, 0, 0),
        (2**63 - 1, 12345, 678, 1, 0, 1, 99, 3),
        (10**30, 0, 0, 0, 0, 0, 10**19, 0),
    ],
)
def test_the_write_paths_mark_checksum_is_the_general_one(counters: tuple[int, ...]) -> None:
    for rt in ("runtime:a", "runtime:\u00e9\u4e2d", "runtime:a"):  # the memo's second use too
        assert _advanced_checksum(rt, counters) == _counters_checksum(rt, counters)
        stepped = advance_counters(counters, MarkStep(inputs_added=1, session_snapshot=True), rt)
        assert _advanced_checksum(rt, stepped) == _counters_checksum(rt, stepped)


def test_marks_written_on_the_fast_path_read_back_verified(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = SqliteRuntimeStore(str(path))
    rt = "runtime:marks"
    try:
        for index in range(5):  # the first write reads and upserts the mark; the rest compare-and-set
            store.persist_input_state(rt, InputRow(f"i{index}", b"{}", admission_seq=index, queued=b"q"))
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        mark = stored_mark(conn, rt)  # Corrupt if the stored checksum did not match the counters
        (rows,) = conn.execute(f"SELECT count(*) FROM {HIGH_WATER} WHERE runtime_id = ?", (rt,)).fetchone()
    finally:
        conn.close()
    assert rows == 1
    assert mark is not None and (mark.writes, mark.inputs) == (5, 5)
