"""The high-water mark: every data write advances it in its own transaction, exactly as
``high_water.advance`` says; a refused write does not; recovery compares it with what it loads
and a disagreement (rows lost behind the store's back) is a ``Corrupt`` naming the counts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from meerkat_conformance.stores.damage_sweep import MarkBlindStore
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.high_water import (
    HIGH_WATER_FIELDS,
    HighWater,
    MarkStep,
    advance,
    compare_ops,
    compare_session,
)
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS, LIFECYCLES
from meerkat_runtime.vocab.errors import Corrupt, OwnershipLost, WriteFailed
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_ops.helpers import completed
from tests.runtime_session.helpers import registered_input_count

RT = "rt:session:marks"
OTHER = "rt:session:marks-other"


def _receipt(run: str, seq: int) -> BoundaryReceipt:
    return BoundaryReceipt(run, seq, BoundaryKind.RUN_CHECKPOINT, ("a",))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeStore]:
    opened: RuntimeStore = (
        InMemoryRuntimeStore() if request.param == "memory" else SqliteRuntimeStore(tmp_path / "s.db")
    )
    yield opened
    opened.close()


def test_advance_counts_one_write_and_what_it_changed() -> None:
    first = advance(None, RT, MarkStep(inputs_added=2, receipts_added=1, session_snapshot=True))
    assert first == HighWater(RT, writes=1, inputs=2, receipts=1, session_snapshots=1)
    second = advance(first, RT, MarkStep(ops_records_added=1, lifecycle=True))
    third = advance(second, RT, MarkStep(ops_snapshot=True, ops_records_cleared=True, inputs_removed=1))
    assert third == HighWater(RT, writes=3, inputs=1, receipts=1, session_snapshots=1, lifecycles=1, ops_snapshots=1)
    assert advance(third, RT, MarkStep(ops_snapshot=False, ops_records_cleared=True)).ops_snapshots == 0


def test_every_write_method_advances_the_mark_as_the_rules_say(store: RuntimeStore) -> None:
    expected: HighWater | None = None
    steps: list[tuple[Callable[[], object], MarkStep]] = [
        (lambda: store.persist_input_state(RT, InputRow("a", b"1")), MarkStep(inputs_added=1)),
        (lambda: store.persist_input_state(RT, InputRow("a", b"2")), MarkStep()),  # an update adds no row
        (
            lambda: store.atomic_apply(
                RT, session_snapshot=b"s", receipt=_receipt("r", 1), rows=[InputRow("a", b"3"), InputRow("b", b"1")]
            ),
            MarkStep(inputs_added=1, receipts_added=1, session_snapshot=True),
        ),
        (
            lambda: store.atomic_apply(
                RT, session_snapshot=None, receipt=_receipt("r", 2), rows=[InputRow("c", b"1"), InputRow("c", b"2")]
            ),
            MarkStep(inputs_added=1, receipts_added=1),  # one id twice: one row
        ),
        (lambda: store.commit_machine_lifecycle(RT, b"life", [InputRow("d", b"1")]), MarkStep(1, lifecycle=True)),
        (lambda: store.append_ops_record(RT, b"r1"), MarkStep(ops_records_added=1)),
        (lambda: store.append_ops_record(RT, b"r2"), MarkStep(ops_records_added=1)),
        (lambda: store.persist_ops_lifecycle(RT, b"ops"), MarkStep(ops_snapshot=True, ops_records_cleared=True)),
        (lambda: store.append_ops_record(RT, b"r3"), MarkStep(ops_records_added=1)),
        (lambda: store.delete_ops_lifecycle(RT), MarkStep(ops_snapshot=False, ops_records_cleared=True)),
        (lambda: store.quarantine_row(RT, "b", "test"), MarkStep(inputs_removed=1, quarantined_added=1)),
    ]
    assert store.load_high_water(RT) is None
    for write, step in steps:
        write()
        expected = advance(expected, RT, step)
        assert store.load_high_water(RT) == expected
    assert expected == HighWater(RT, writes=11, inputs=3, receipts=2, session_snapshots=1, lifecycles=1, quarantined=1)
    assert len(store.load_input_states(RT)) == expected.inputs
    assert store.load_high_water(OTHER) is None  # runtimes are isolated


def test_a_refused_write_leaves_the_mark_alone(store: RuntimeStore) -> None:
    store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r", 1), rows=[InputRow("a", b"1")])
    before = store.load_high_water(RT)
    with pytest.raises(WriteFailed):
        store.atomic_apply(RT, session_snapshot=None, receipt=_receipt("r", 1), rows=[InputRow("b", b"1")])
    with pytest.raises(WriteFailed):
        store.quarantine_row(RT, "missing", "test")
    with pytest.raises(WriteFailed):
        store.commit_machine_lifecycle(RT, b"l", [InputRow("", b"bad")])
    lease = store.claim_lease(RT, "owner", 30.0)
    with pytest.raises(OwnershipLost):
        store.persist_input_state(RT, InputRow("c", b"1"), fence=Fence("owner", lease.token + 1))
    assert store.load_high_water(RT) == before
    store.persist_input_state(RT, InputRow("c", b"1"), fence=lease.fence)
    assert store.load_high_water(RT) == advance(before, RT, MarkStep(inputs_added=1))


def test_the_mark_survives_a_restart(tmp_path: Path) -> None:
    storage = MemoryStorage()
    for reopen in (lambda: InMemoryRuntimeStore(storage), lambda: SqliteRuntimeStore(tmp_path / "r.db")):
        with reopen() as first:
            first.persist_input_state(RT, InputRow("a", b"1"))
            mark = first.load_high_water(RT)
        with reopen() as second:
            assert second.load_high_water(RT) == mark


def test_a_damaged_mark_is_corrupt_for_reads_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"UPDATE {HIGH_WATER} SET inputs = 7 WHERE runtime_id = ?", (RT,))
    raw.close()
    with SqliteRuntimeStore(path) as store:
        with pytest.raises(Corrupt, match=HIGH_WATER):
            store.load_high_water(RT)
        with pytest.raises(Corrupt, match=HIGH_WATER):
            store.persist_input_state(RT, InputRow("b", b"1"))
        assert store.load_input_states(RT) == [InputRow("a", b"1")]  # the write changed nothing


def test_a_mark_another_writer_moved_is_read_not_overwritten_from_memory(tmp_path: Path) -> None:
    """The write path replaces the mark it last wrote with one compare-and-set statement; a row
    that differs (another process advanced it, or it was damaged) is read and checked instead."""
    path = tmp_path / "m.db"
    with SqliteRuntimeStore(path) as store:
        store.persist_input_state(RT, InputRow("a", b"1"))
        store.persist_input_state(RT, InputRow("b", b"1"))
        mine = store.load_high_water(RT)
        assert mine is not None and (mine.writes, mine.inputs) == (2, 2)
        # Another process advanced the mark (a valid row, its checksum right): counted from there.
        moved = HighWater(RT, writes=40, inputs=2, receipts=3)
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute(
            f"UPDATE {HIGH_WATER} SET writes = ?, receipts = ?, checksum = ? WHERE runtime_id = ?",
            (40, 3, row_checksum(HIGH_WATER, RT, "", moved.payload()), RT),
        )
        store.persist_input_state(RT, InputRow("c", b"1"))
        assert store.load_high_water(RT) == advance(moved, RT, MarkStep(inputs_added=1))
        # The counters this process last wrote, but a damaged checksum: refused, nothing written.
        raw.execute(f"UPDATE {HIGH_WATER} SET checksum = 'x' || checksum WHERE runtime_id = ?", (RT,))
        raw.close()
        with pytest.raises(Corrupt, match=HIGH_WATER):
            store.persist_input_state(RT, InputRow("d", b"1"))
        assert [r.input_id for r in store.load_input_states(RT)] == ["a", "b", "c"]


def test_compare_names_every_count_that_disagrees() -> None:
    mark = HighWater(RT, writes=9, inputs=120, lifecycles=1, ops_snapshots=1, ops_records=2)
    compare_session(RT, mark, lifecycle=True, inputs=120)
    compare_ops(RT, mark, snapshot=True, records=2)
    compare_session(RT, None, lifecycle=False, inputs=0)
    with pytest.raises(Corrupt) as info:
        compare_session(RT, mark, lifecycle=False, inputs=0)
    assert "inputs: the mark says 120, the store returned 0" in str(info.value)
    assert "lifecycles: the mark says 1, the store returned 0" in str(info.value)
    with pytest.raises(Corrupt, match="ops_records: the mark says 2, the store returned 1"):
        compare_ops(RT, mark, snapshot=True, records=1)
    with pytest.raises(Corrupt, match="no high-water mark is stored"):
        compare_session(RT, None, lifecycle=False, inputs=3)


async def _accepted(store: RuntimeStore, session: str, count: int) -> None:
    machine = MeerkatMachine.persistent(store, ownership=None)
    await machine.register_session(session)
    for n in range(count):
        await machine.accept_input(session, prompt(f"input {n}"))
    await machine.close()
    store.close()


def test_session_recovery_refuses_rows_lost_behind_the_stores_back() -> None:
    storage = MemoryStorage()
    asyncio.run(_accepted(InMemoryRuntimeStore(storage), "lost", 5))
    rt = canonical_runtime_id("lost")
    storage.inputs[rt].pop(sorted(storage.inputs[rt])[2])  # a row vanishes, checksums all fine
    with pytest.raises(Corrupt, match="inputs: the mark says 5, the store returned 4") as info:
        asyncio.run(registered_input_count(InMemoryRuntimeStore(storage), "lost", ownership=None))
    assert info.value.runtime_id == rt
    storage.lifecycles.pop(rt, None)
    storage.inputs.pop(rt)
    with pytest.raises(Corrupt, match="inputs: the mark says 5, the store returned 0"):
        asyncio.run(registered_input_count(InMemoryRuntimeStore(storage), "lost", ownership=None))


def _index_pages(path: Path) -> list[int]:
    raw = sqlite3.connect(path)
    try:
        return [
            int(p)
            for (p,) in raw.execute(
                "SELECT pageno FROM dbstat WHERE name = 'sqlite_autoindex_runtime_input_states_1' AND pagetype = 'leaf'"
            )
        ]
    finally:
        raw.close()


def test_a_damaged_index_page_is_refused_not_recovered_with_fewer_inputs(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    asyncio.run(_accepted(SqliteRuntimeStore(path), "idx", 120))
    page = _index_pages(path)[0]
    data = bytearray(path.read_bytes())
    key = canonical_runtime_id("idx").encode()
    start = data.index(key, (page - 1) * 4096)
    assert start < page * 4096
    data[start + len(key) - 1] ^= 0x01  # one flipped bit in one index entry's runtime id
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupt, match=r"inputs: the mark says 120, the store returned \d+\)"):
        asyncio.run(registered_input_count(SqliteRuntimeStore(path, integrity_check="off"), "idx", ownership=None))
    blind = MarkBlindStore(path, integrity_check="off")  # the protection off: the loss goes unnoticed
    assert asyncio.run(registered_input_count(blind, "idx", ownership=None)) < 120
    with pytest.raises(Corrupt):  # with the default page check on, it is refused too
        asyncio.run(registered_input_count(SqliteRuntimeStore(path), "idx", ownership=None))


def test_ops_recovery_refuses_a_journal_that_lost_records() -> None:
    storage = MemoryStorage()
    durable = open_durable_ops(InMemoryRuntimeStore(storage), RT)
    for n in range(3):
        completed(durable.registry, f"op{n}")
    assert storage.marks[RT].ops_records == 2  # the first write compacts, the next two append
    storage.ops_records[RT].pop()
    with pytest.raises(Corrupt, match="ops_records: the mark says 2, the store returned 1"):
        load_persisted_ops(InMemoryRuntimeStore(storage), RT)
    storage.ops_snapshots.pop(RT)
    with pytest.raises(Corrupt, match="ops_snapshots: the mark says 1, the store returned 0"):
        open_durable_ops(InMemoryRuntimeStore(storage), RT)


def test_a_lost_lifecycle_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "life.db"

    async def retire() -> None:
        store = SqliteRuntimeStore(path)
        machine = MeerkatMachine.persistent(store, ownership=None)
        await machine.register_session("life")
        await machine.accept_input("life", prompt("x"))
        await machine.retire_runtime("life")
        await machine.close()
        store.close()

    asyncio.run(retire())
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"DELETE FROM {LIFECYCLES}")
    raw.close()
    with pytest.raises(Corrupt, match="lifecycles: the mark says 1, the store returned 0"):
        asyncio.run(registered_input_count(SqliteRuntimeStore(path), "life", ownership=None))


def test_a_version_3_file_gets_marks_computed_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    asyncio.run(_accepted(SqliteRuntimeStore(path), "old", 4))
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("DROP TABLE runtime_high_water")
    raw.execute("DROP TABLE runtime_quarantine")
    raw.execute("DROP TABLE runtime_receipt_inputs")  # the version-7 addition
    for index in ("runtime_inputs_active", "runtime_inputs_finished"):  # the version-5 additions
        raw.execute(f"DROP INDEX {index}")
    for column in ("finished_at", "idempotency_key", "admission_seq", "queued"):  # the version-5 and -6 columns
        raw.execute(f"ALTER TABLE {INPUTS} DROP COLUMN {column}")
    raw.execute("UPDATE meerkat_schema_version SET version = 3")
    raw.close()
    with SqliteRuntimeStore(path) as store:
        rt = canonical_runtime_id("old")
        lifecycle = store.load_machine_lifecycle(rt)
        assert store.load_high_water(rt) == HighWater(rt, writes=0, inputs=4, lifecycles=int(lifecycle is not None))
    assert asyncio.run(registered_input_count(SqliteRuntimeStore(path), "old", ownership=None)) == 4
    raw = sqlite3.connect(path, isolation_level=None)
    assert raw.execute(f"SELECT count(*) FROM {INPUTS}").fetchone() == (4,)
    raw.close()


def test_counters_are_in_stored_order() -> None:
    mark = HighWater("rt", *range(1, len(HIGH_WATER_FIELDS) + 1))
    assert mark.counters() == tuple(getattr(mark, name) for name in HIGH_WATER_FIELDS) == tuple(range(1, 9))
    assert mark.payload() == b"1,2,3,4,5,6,7,8"


def test_a_fenced_row_rewritten_counts_once_whichever_statement_runs_first(tmp_path: Path) -> None:
    """``persist_input_state`` stores a row by the guarded insert (lease row known), or after the
    fence check by an update first (the guarded insert found the row) or an insert first (no
    lease row known yet): each path counts a new row once and a rewritten one not at all."""
    from meerkat_runtime.store import sqlite as sqlite_store

    store = SqliteRuntimeStore(tmp_path / "s.db")
    try:
        fence = store.claim_lease(RT, "owner", 30.0).fence
        writes = [  # (row, whether the lease row is known: else the fence check, then insert first)
            (InputRow("a", b"1"), False),  # new: insert first
            (InputRow("a", b"2"), True),  # stored: guarded insert, then update first
            (InputRow("a", b"3"), False),  # stored: insert first, then update
            (InputRow("b", b"1"), True),  # new: guarded insert
            (InputRow("c", b"1"), False),  # new: insert first
        ]
        for row, known in writes:
            if not known:
                sqlite_store._checked_leases.clear()
            store.persist_input_state(RT, row, fence=fence)
        mark = store.load_high_water(RT)
        assert mark is not None and (mark.writes, mark.inputs) == (5, 3)
        stored = {row.input_id: row.payload for row in store.load_active_input_states(RT)}
        assert stored == {"a": b"3", "b": b"1", "c": b"1"}
    finally:
        store.close()
