"""``compact_inputs`` finds the receipts it releases through the receipt index (SQLite version 7):
what it reads does not grow with the receipts of other runs, and a file upgraded from version 6
has the index filled from its stored receipts (the deletion rule itself is the store suite's
``compaction_releases_receipts``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION, stored_version
from meerkat_runtime.store.tables import RECEIPT_INPUTS, RECEIPTS

RT = "rt:session:lookup"


class _Counted(SqliteRuntimeStore):
    """Counts the virtual-machine steps (in tens) and records the statements its connections
    run while ``counting`` is set."""

    def __init__(self, path: Path) -> None:
        self.counting = False
        self.steps = 0
        self.statements: list[str] = []
        super().__init__(path)

    def _open_connection(self) -> sqlite3.Connection:
        conn = super()._open_connection()
        conn.set_progress_handler(self._step, 10)
        conn.set_trace_callback(self._statement)
        return conn

    def _step(self) -> int:
        if self.counting:
            self.steps += 1
        return 0

    def _statement(self, sql: str) -> None:
        if self.counting:
            self.statements.append(sql)


def _receipt(run_id: str, *inputs: str) -> BoundaryReceipt:
    return BoundaryReceipt(run_id, 0, BoundaryKind.RUN_CHECKPOINT, inputs, None, len(inputs))


def _runs(store: SqliteRuntimeStore, count: int, prefix: str = "") -> None:
    """``count`` runs, each with its receipt and its one finished row."""
    for n in range(count):
        row = InputRow(f"{prefix}i{n}", b"row", 1.0 + n, None, n)
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt(f"{prefix}r{n}", row.input_id), rows=[row])


def _compaction_steps(path: Path, other_runs: int) -> tuple[int, list[str]]:
    """The steps and statements of compacting one finished row (its receipt released) in a file
    holding ``other_runs`` other runs' receipts and rows."""
    store = _Counted(path)
    with store:
        _runs(store, other_runs, "other-")
        _runs(store, 1)
        store.counting = True
        assert store.compact_inputs(RT, ["i0"]) == 1
        store.counting = False
        assert store.load_boundary_receipt(RT, "r0", 0) is None
        assert store.load_boundary_receipt(RT, "other-r0", 0) is not None
        return store.steps, store.statements


def test_a_compaction_reads_only_the_receipts_naming_what_it_compacts(tmp_path: Path) -> None:
    few, _ = _compaction_steps(tmp_path / "few.db", 1)
    many, statements = _compaction_steps(tmp_path / "many.db", 3000)
    # reading 3000 receipts takes tens of thousands of steps; a keyed lookup the same few
    assert many <= few + 10, (few, many)
    touching = [s for s in statements if RECEIPTS in s]
    assert touching and all("run_id = " in s for s in touching), touching


def test_a_version_6_file_gets_the_index_of_its_stored_receipts(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    with SqliteRuntimeStore(path) as store:
        _runs(store, 3)
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-both", "i1", "i2"), rows=[])
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r-none"), rows=[])
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"DROP TABLE {RECEIPT_INPUTS}")  # what version 6 left: no index
    raw.execute("UPDATE meerkat_schema_version SET version = 6")
    raw.execute(f"UPDATE {RECEIPTS} SET receipt = x'7b' WHERE run_id = 'r2'")  # a receipt that does not parse
    raw.close()
    with SqliteRuntimeStore(path) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 7
        mark = store.load_high_water(RT)
        assert mark is not None and mark.receipts == 5
        assert store.compact_inputs(RT, ["i0", "i1", "i2"]) == 3
        after = store.load_high_water(RT)
        assert after is not None and after.receipts == 2  # r0, r1, r-both released
        for run in ("r0", "r1", "r-both"):
            assert store.load_boundary_receipt(RT, run, 0) is None, run
        assert store.load_boundary_receipt(RT, "r-none", 0) is not None
    raw = sqlite3.connect(path, isolation_level=None)
    assert stored_version(raw) == SCHEMA_VERSION
    assert raw.execute(f"SELECT run_id FROM {RECEIPTS} ORDER BY run_id").fetchall() == [("r-none",), ("r2",)]
    assert raw.execute(f"SELECT input_id, run_id FROM {RECEIPT_INPUTS}").fetchall() == []  # r2 had none
    raw.close()


def test_index_entries_damaged_into_other_types_are_skipped(tmp_path: Path) -> None:
    """The index has no checksum. An entry whose run id or sequence holds another type names no
    receipt this store wrote: the compaction skips it (the good entry beside it still releases
    its receipt) instead of failing on the mixed types."""
    path = tmp_path / "s.db"
    rt = "rt:session:d"
    with SqliteRuntimeStore(path) as store:
        for k in range(3):
            store.atomic_apply(
                rt,
                session_snapshot=None,
                receipt=BoundaryReceipt(f"r{k}", 0, BoundaryKind.RUN_CHECKPOINT, (f"i{k}",), None, 1),
                rows=[InputRow(f"i{k}", b"row", 1.0, None, k)],
            )
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"INSERT INTO {RECEIPT_INPUTS} VALUES (?, 'i1', 'r1', 'x')", (rt,))
    raw.execute(f"INSERT INTO {RECEIPT_INPUTS} VALUES (?, 'i1', x'7232', 0)", (rt,))
    raw.execute(f"UPDATE {RECEIPT_INPUTS} SET sequence = 0.5 WHERE input_id = 'i2'")
    raw.close()
    with SqliteRuntimeStore(path) as store:
        assert store.compact_inputs(rt, ["i1", "i2"]) == 2
        assert store.load_boundary_receipt(rt, "r1", 0) is None  # released through its good entry
        assert store.load_boundary_receipt(rt, "r2", 0) is not None  # its only entry is damaged: kept
        assert store.load_boundary_receipt(rt, "r0", 0) is not None
