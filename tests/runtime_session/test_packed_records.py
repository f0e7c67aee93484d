"""Queued rows recovered without decoding them (from the fields stored beside them, or for an
older row from its payload's start): the same recovery, decoded on first use; damaged fields
fail their check value and the row is decoded instead; a row that only fails its full decode is
reported by id (the loop stops, the diagnosis names it)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from pathlib import Path

import pytest
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.session import packed_record
from meerkat_runtime.session.completion import RunFailure
from meerkat_runtime.session.core.ledger import HistoryEntry, InputLedger, InputRecord, Lane
from meerkat_runtime.session.core.recovery import recover_session
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.packed_record import QUEUED_FIELDS_SIZE, PackedRecord, peek_queued
from meerkat_runtime.session.persistence import encode_row
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import RecoveryCorruption
from meerkat_runtime.vocab.ids import InputId, RunId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run
from tests.runtime_session.killed_child import first_line_then_kill

MonkeyPatch = pytest.MonkeyPatch

RT = canonical_runtime_id("s")


def _queued(i: int, *, key: str | None = None, durability: Durability = Durability.DURABLE) -> InputRecord:
    item = make_prompt(f'text "{i}" ],"input":{{"kind":"x', idempotency_key=key, input_id=f"in-{i}")
    if durability is not Durability.DURABLE:
        item = dataclasses.replace(item, header=dataclasses.replace(item.header, durability=durability))
    record = InputRecord(item, S.QUEUED, Lane.STEER if i % 2 else Lane.QUEUE, i, 10.0 + i, 20.0 + i, attempts=i % 3)
    record.history.append(HistoryEntry(None, S.ACCEPTED, "accepted", 10.0 + i))
    record.history.append(HistoryEntry(S.ACCEPTED, S.QUEUED, "queued", 10.5 + i))
    return record


def test_a_packed_record_reads_the_fields_recovery_checks_and_decodes_the_rest_when_used() -> None:
    records = [_queued(i, key=f"k{i}" if i % 2 else None) for i in range(1, 7)]
    rows = [encode_row(r) for r in records]
    assert all(peek_queued(row.payload) is not None for row in rows)
    mark = HighWater(RT, inputs=len(rows))
    lazy = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark)
    eager = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark, lazy=False)
    got, want = lazy.core.ledger, eager.core.ledger
    assert all(isinstance(r, PackedRecord) and r.packed is not None for r in got.records.values())
    assert not any(isinstance(r, PackedRecord) for r in want.records.values())
    assert (list(got.queue), list(got.steer), got.keys, got.next_admission_seq) == (
        list(want.queue),
        list(want.steer),
        want.keys,
        want.next_admission_seq,
    )
    assert got.records == want.records  # decodes each (equal field by field)
    assert all(r.packed is None for r in got.records.values() if isinstance(r, PackedRecord))
    assert [r.copy() for r in got.records.values()] == list(want.records.values())


def test_rows_the_fast_path_does_not_recognise_are_decoded_in_full() -> None:
    staged = _queued(2)
    staged.phase = S.STAGED
    with_run = _queued(3)
    with_run.last_boundary_sequence = 4
    for record in (staged, with_run):
        assert peek_queued(encode_row(record).payload) is None
    row = encode_row(_queued(5))
    assert peek_queued(row.payload.replace(b'"row_version":2', b'"row_version":1')) is None


def test_recovery_checks_hold_for_packed_rows() -> None:
    a, b = _queued(1, key="same"), _queued(2, key="same")
    rows = [encode_row(a), encode_row(b)]
    mark = HighWater(RT, inputs=2)
    try:
        recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark)
    except RecoveryCorruption as exc:
        assert exc.input_id == "in-2" and "reuses idempotency key" in str(exc)
    else:
        raise AssertionError("a key claimed twice was recovered")
    c = _queued(3)
    c.attempts = 4
    try:
        recover_session(
            RT, None, [encode_row(c)], lambda run, seq: False, time.time(), high_water=HighWater(RT, inputs=1)
        )
    except RecoveryCorruption as exc:
        assert exc.input_id == "in-3" and "4 attempts" in str(exc)
    else:
        raise AssertionError("an active row with too many attempts was recovered")
    eph = _queued(4, durability=Durability.EPHEMERAL)
    result = recover_session(
        RT, None, [encode_row(eph)], lambda run, seq: False, time.time(), high_water=HighWater(RT, inputs=1)
    )
    assert result.dropped_ephemeral == 1 and not result.core.ledger.records


def _store_undecodable(path: Path) -> None:
    """One good Queued row and one whose fast fields read but whose full decode fails (an
    unknown origin), both with valid checksums."""
    good, bad = encode_row(_queued(1)), encode_row(_queued(2))
    broken = bad.payload.replace(b'"origin":"operator"', b'"origin":"nowhere"')
    assert broken != bad.payload and peek_queued(broken) is not None
    lifecycle = encode_lifecycle(LifecycleRecord(RuntimeState.IDLE, "epoch"))
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(RT, lifecycle, [good, InputRow(bad.input_id, broken, None, None, 2)])


def test_a_packed_row_that_does_not_decode_stops_the_loop_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store_undecodable(path)

    async def check() -> None:
        m = MeerkatMachine.persistent(path)
        await m.register_session("s")  # lazily read: registration does not decode it
        executor = ScriptedExecutor()
        await m.register_session_with_executor("s", executor)
        deadline = time.monotonic() + 10
        while not isinstance(await m.last_error("s"), RecoveryCorruption) and time.monotonic() < deadline:
            await _pause()
        error = await m.last_error("s")
        assert isinstance(error, RecoveryCorruption) and error.input_id == "in-2"
        try:
            await m.input_states("s")  # reading the record reports it too
        except RecoveryCorruption as exc:
            assert exc.input_id == "in-2"
        else:
            raise AssertionError("an undecodable row was shown")
        await m.close()

    run(check())
    with SqliteRuntimeStore(path) as store:
        done = store.load_input_state(RT, "in-1")  # the loop ran the good row first (its position)
        assert done is not None and done.finished_at is not None
        diagnosis = diagnose_session(store, "s")
    assert [bad.input_id for bad in diagnosis.bad_rows] == ["in-2"]


async def _pause() -> None:
    await asyncio.sleep(0.02)


def test_the_fields_stored_beside_a_queued_row_recover_it_as_its_payload_would() -> None:
    records = [_queued(i, key=f"k{i}" if i % 2 else None) for i in range(1, 7)]
    rows = [encode_row(r) for r in records]
    assert all(row.queued is not None and len(row.queued) == QUEUED_FIELDS_SIZE for row in rows)
    mark = HighWater(RT, inputs=len(rows))
    lazy = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark)
    eager = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark, lazy=False)
    got, want = lazy.core.ledger, eager.core.ledger
    assert all(isinstance(r, PackedRecord) and r.packed is not None for r in got.records.values())
    assert (list(got.queue), list(got.steer), got.keys, got.next_admission_seq) == (
        list(want.queue),
        list(want.steer),
        want.keys,
        want.next_admission_seq,
    )
    assert got.records == want.records


def test_only_a_queued_durable_row_with_nothing_but_its_input_gets_the_fields() -> None:
    staged = _queued(2)
    staged.phase = S.STAGED
    with_run = _queued(3)
    with_run.last_run_id = RunId("run-3")
    failed = _queued(4)
    failed.last_error = RunFailure("ExecutorError", "failed once")
    ephemeral = _queued(5, durability=Durability.EPHEMERAL)
    for record in (staged, with_run, failed, ephemeral):
        assert encode_row(record).queued is None


def test_a_queued_row_with_a_recorded_failure_keeps_it_across_a_restart() -> None:
    """Such a row ends like a compact Queued row (an object, then the row's end): the payload
    pattern must not take it, or the failure would be lost."""
    failed = _queued(4)
    failed.last_error = RunFailure("ExecutorError", "failed once")
    row = encode_row(failed)
    assert row.queued is None and peek_queued(row.payload) is None
    result = recover_session(RT, None, [row], lambda run, seq: False, time.time(), high_water=HighWater(RT, inputs=1))
    assert result.core.ledger.records[InputId("in-4")].last_error == RunFailure("ExecutorError", "failed once")


def _damaged_fields(row: InputRow) -> InputRow:
    """``row`` with its stored fields damaged: the lane byte says steer (the check value kept)."""
    assert row.queued is not None and row.queued[1] == 0
    damaged = row.queued[:1] + b"\x01" + row.queued[2:]
    return dataclasses.replace(row, queued=damaged)


def _recovered_lanes(rows: list[InputRow]) -> tuple[list[str], list[str]]:
    mark = HighWater(RT, inputs=len(rows))
    ledger = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark).core.ledger
    return list(ledger.queue), list(ledger.steer)


@pytest.mark.parametrize("lazy", [True, False])
def test_recovery_fills_every_lane_in_admission_order(lazy: bool, monkeypatch: MonkeyPatch) -> None:
    """Rows read in any order come back in their own lanes, oldest first; recovery goes through
    every lane the ledger has (``InputLedger.lane``), so none is left empty or merged."""
    filled: list[Lane] = []
    lane_of = InputLedger.lane

    def recording(ledger: InputLedger, lane: Lane) -> deque[InputId]:
        filled.append(lane)
        return lane_of(ledger, lane)

    monkeypatch.setattr(InputLedger, "lane", recording)
    rows = [encode_row(_queued(i)) for i in (6, 3, 1, 4, 5, 2)]  # odd: steer lane, even: queue lane
    mark = HighWater(RT, inputs=len(rows))
    ledger = recover_session(RT, None, rows, lambda run, seq: False, time.time(), high_water=mark, lazy=lazy)
    assert (list(ledger.core.ledger.queue), list(ledger.core.ledger.steer)) == (
        ["in-2", "in-4", "in-6"],
        ["in-1", "in-3", "in-5"],
    )
    assert filled == list(Lane)


def test_damaged_fields_beside_a_row_fail_their_check_and_the_row_is_decoded_instead() -> None:
    rows = [encode_row(_queued(i)) for i in (2, 4)]  # both in the queue lane
    want = _recovered_lanes(rows)
    assert want == (["in-2", "in-4"], [])
    damaged = [_damaged_fields(rows[0]), rows[1]]
    assert _recovered_lanes(damaged) == want  # the check value no longer matches: decoded in full


def test_with_the_check_value_switched_off_damaged_fields_reorder_the_backlog(monkeypatch: MonkeyPatch) -> None:
    """The protection off: a check value that checks nothing (a constant), written and read."""
    monkeypatch.setattr(packed_record, "crc32", lambda data, seed=0: 0)
    rows = [encode_row(_queued(i)) for i in (2, 4)]
    damaged = [_damaged_fields(rows[0]), rows[1]]
    assert _recovered_lanes(damaged) == (["in-4"], ["in-2"])  # in-2 would jump the queue
    mark = HighWater(RT, inputs=2)
    record = recover_session(RT, None, damaged, lambda run, seq: False, time.time(), high_water=mark)
    packed = record.core.ledger.records[InputId("in-2")]
    try:  # first use still finds the disagreement with the payload, naming the input
        assert packed.input is None
    except RecoveryCorruption as exc:
        assert exc.input_id == "in-2" and "fields it was recovered with" in str(exc)
    else:
        raise AssertionError("fields that disagree with the payload were used")


def test_a_row_with_its_fields_that_does_not_decode_stops_the_loop_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    good, bad = encode_row(_queued(1)), encode_row(_queued(2))
    broken = bad.payload.replace(b'"origin":"operator"', b'"origin":"nowhere"')
    assert broken != bad.payload and bad.queued is not None
    lifecycle = encode_lifecycle(LifecycleRecord(RuntimeState.IDLE, "epoch"))
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(RT, lifecycle, [good, dataclasses.replace(bad, payload=broken)])

    async def check() -> None:
        m = MeerkatMachine.persistent(path)
        await m.register_session("s")  # read from its fields: registration does not decode it
        await m.register_session_with_executor("s", ScriptedExecutor())
        deadline = time.monotonic() + 10
        while not isinstance(await m.last_error("s"), RecoveryCorruption) and time.monotonic() < deadline:
            await _pause()
        error = await m.last_error("s")
        assert isinstance(error, RecoveryCorruption) and error.input_id == "in-2"
        await m.close()

    run(check())
    with SqliteRuntimeStore(path) as store:
        done = store.load_input_state(RT, "in-1")
        assert done is not None and done.finished_at is not None
        staged = store.load_input_state(RT, "in-2")
        assert staged is not None and staged.payload == broken  # never staged, never rewritten
        diagnosis = diagnose_session(store, "s")
    assert [row.input_id for row in diagnosis.bad_rows] == ["in-2"]


_ACCEPT_THEN_HANG = """
import asyncio, sys, time
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig

async def main():
    machine = MeerkatMachine.persistent(sys.argv[1], ownership=OwnershipConfig(owner_id="worker-1"))
    await machine.register_session("s")
    for i in range(40):
        item = prompt(f"pending {i}", idempotency_key=f"key-{i}", input_id=f"in-{i:03d}")
        assert (await machine.accept_input("s", item)).is_accepted
    print("accepted", flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_queued_rows_of_a_killed_process_recover_from_their_fields_and_run_in_order(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    assert first_line_then_kill(_ACCEPT_THEN_HANG, path) == "accepted\n"
    with SqliteRuntimeStore(path) as store:
        rows = store.load_active_input_states(RT)
    assert len(rows) == 40 and all(row.queued is not None for row in rows)

    async def check() -> list[str]:
        m = MeerkatMachine.persistent(path, ownership=SAME_WORKER)  # the killed worker, restarted
        await m.register_session("s")
        session = m._sessions[RT]
        assert all(isinstance(r, PackedRecord) and r.packed is not None for r in session.core.ledger.records.values())
        assert isinstance(await m.accept_input("s", make_prompt("again", idempotency_key="key-7")), Deduplicated)
        executor = ScriptedExecutor()
        await m.register_session_with_executor("s", executor)
        await m.settle("s")
        states = {v.input_id: v.current_state for v in await m.input_states("s")}
        assert len(states) == 40 and all(state is S.CONSUMED for state in states.values())
        await m.close()
        return [ids[0] for _, ids in executor.applied]

    assert run(check()) == [f"in-{i:03d}" for i in range(40)]
