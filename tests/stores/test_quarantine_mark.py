"""Quarantine under a high-water mark that disagrees with the rows: the move is refused in one
piece (nothing written, the mark included), and no store ever writes a mark it would refuse to
read (a counter below zero), whatever the caller did first."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from meerkat_runtime.store.high_water import HighWater, MarkStep, advance
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_marks import store_mark
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS
from meerkat_runtime.vocab.errors import Corrupt

from tests.stores.damage import write_sql

RT = "rt:session:marked"
OTHER = "rt:session:Marked"


def _dump(path: Path) -> list[tuple[object, ...]]:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        rows: list[tuple[object, ...]] = []
        for table in (INPUTS, HIGH_WATER, "runtime_quarantine"):
            rows += [(table, *r) for r in raw.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        return rows
    finally:
        raw.close()


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "q.db"
    store = SqliteRuntimeStore(path)
    store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"one"), InputRow("b", b"two")])
    store.close()
    yield path


def _refused(path: Path, runtime_id: str, input_id: str, *needles: str) -> None:
    before = _dump(path)
    store = SqliteRuntimeStore(path)
    try:
        with pytest.raises(Corrupt) as caught:
            store.quarantine_row(runtime_id, input_id, "bad row")
    finally:
        store.close()
    for needle in ("quarantine_row", "nothing was moved", "restore the file from a backup", *needles):
        assert needle in caught.value.detail, caught.value.detail
    assert _dump(path) == before  # not the row, not the quarantine, not the mark


def test_a_missing_mark_refuses_the_move_and_writes_nothing(stored: Path) -> None:
    write_sql(stored, f"DELETE FROM {HIGH_WATER} WHERE runtime_id = ?", (RT,))
    _refused(stored, RT, "a", "no high-water mark although 2 input row(s) are stored")


def test_a_mark_counting_other_rows_refuses_the_move(stored: Path) -> None:
    write_sql(stored, f"DELETE FROM {INPUTS} WHERE runtime_id = ? AND input_id = 'b'", (RT,))  # a lost row
    _refused(stored, RT, "a", "counts 2 input row(s) but 1 are stored")


def test_a_row_moved_to_another_spelling_of_the_runtime_is_refused_on_both_sides(stored: Path) -> None:
    write_sql(stored, f"UPDATE {INPUTS} SET runtime_id = ? WHERE runtime_id = ? AND input_id = 'b'", (OTHER, RT))
    _refused(stored, OTHER, "b", "no high-water mark although 1 input row(s) are stored")
    _refused(stored, RT, "a", "counts 2 input row(s) but 1 are stored")


def test_an_agreeing_mark_still_moves_the_row(stored: Path) -> None:
    store = SqliteRuntimeStore(stored)
    try:
        store.quarantine_row(RT, "a", "bad row")
        mark = store.load_high_water(RT)
        assert mark is not None and (mark.inputs, mark.quarantined) == (1, 1)
    finally:
        store.close()


def test_the_memory_store_refuses_the_same_way() -> None:
    store = InMemoryRuntimeStore()
    store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"one")])
    del store.storage.marks[RT]
    with pytest.raises(Corrupt, match="no high-water mark"):
        store.quarantine_row(RT, "a", "bad row")
    assert store.load_input_states(RT) == [InputRow("a", b"one")] and store.load_quarantined(RT) == []
    assert RT not in store.storage.marks


def test_advance_never_makes_a_counter_negative() -> None:
    with pytest.raises(Corrupt, match="removes 1 input row"):
        advance(None, RT, MarkStep(inputs_removed=1, quarantined_added=1))
    with pytest.raises(Corrupt, match="counts 2"):
        advance(HighWater(RT, writes=3, inputs=2), RT, MarkStep(inputs_removed=3))
    assert advance(HighWater(RT, writes=3, inputs=2), RT, MarkStep(inputs_removed=2)).inputs == 0


def test_a_compaction_beyond_the_mark_is_refused_by_the_store(tmp_path: Path) -> None:
    """The second line of defence, in the store's own write path: a (well-formed, checksummed)
    mark that counts fewer rows than a write removes makes the write fail, rolled back."""
    path = tmp_path / "c.db"
    store = SqliteRuntimeStore(path)
    try:
        store.persist_input_state(RT, InputRow("a", b"one", 1.0))
        store.persist_input_state(RT, InputRow("b", b"two", 2.0))
        raw = sqlite3.connect(path, isolation_level=None)
        try:  # the mark of a runtime holding one row (the other added behind the store's back)
            store_mark(raw, HighWater(RT, writes=1, inputs=1))
        finally:
            raw.close()
        with pytest.raises(Corrupt, match="removes 2 input row"):
            store.compact_inputs(RT, ["a", "b"])
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b"]
        assert store.load_high_water(RT) == HighWater(RT, writes=1, inputs=1)
    finally:
        store.close()
