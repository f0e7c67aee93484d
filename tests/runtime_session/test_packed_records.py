"""Queued rows recovered without decoding them: the same recovery, decoded on first use, and a
row that only fails its full decode is reported by id (the loop stops, the diagnosis names it)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.core.recovery import recover_session
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import PackedRecord, peek_queued
from meerkat_runtime.session.persistence import encode_row
from meerkat_runtime.session.row_codec import LifecycleRecord, encode_lifecycle
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import RecoveryCorruption
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import S, make_prompt, run

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
