"""Quarantine: a row recovery refuses is named with its bytes, moved aside in one transaction,
and the session then registers and recovers every other input (end to end on a real damaged
SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.repair.quarantine import REPAIR_OWNER, quarantine_input
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import InputRow, ScannedRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import (
    Corrupt,
    LeaseHeld,
    OwnershipLost,
    RecoveryCorruption,
    ValidationFailed,
    WriteFailed,
    WriteRefused,
)
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.stores.damage import damage_payload

RT = "rt:session:quarantine"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeStore]:
    opened: RuntimeStore = (
        InMemoryRuntimeStore(clock=ManualClock())
        if request.param == "memory"
        else SqliteRuntimeStore(tmp_path / "q.db", clock=ManualClock())
    )
    yield opened
    opened.close()


def test_quarantine_moves_one_row_and_keeps_its_bytes(store: RuntimeStore) -> None:
    store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"one"), InputRow("b", b"two")])
    moved = store.quarantine_row(RT, "a", "does not decode")
    assert (moved.input_id, moved.payload, moved.intact, moved.reason) == ("a", b"one", True, "does not decode")
    assert moved.quarantined_at == 1000.0  # the store's clock
    assert store.load_input_states(RT) == [InputRow("b", b"two")]
    assert store.load_quarantined(RT) == [moved]
    assert store.load_quarantined("rt:session:other") == []
    mark = store.load_high_water(RT)
    assert mark is not None and (mark.inputs, mark.quarantined) == (1, 1)
    store.persist_input_state(RT, InputRow("a", b"again"))  # the id may be written again
    second = store.quarantine_row(RT, "a", "second time")
    assert [q.payload for q in store.load_quarantined(RT)] == [b"one", b"again"] and second.reason == "second time"


def test_quarantine_refuses_a_missing_row_bad_arguments_and_a_stale_fence(store: RuntimeStore) -> None:
    store.persist_input_state(RT, InputRow("a", b"one"))
    before = store.load_high_water(RT)
    with pytest.raises(WriteRefused, match="no input row 'nope'"):
        store.quarantine_row(RT, "nope", "why")
    for bad_id, bad_reason in (("", "why"), ("a", ""), ("a", "x" * 5000)):
        with pytest.raises(WriteFailed):
            store.quarantine_row(RT, bad_id, bad_reason)
    lease = store.claim_lease(RT, "worker", 30.0)
    with pytest.raises(OwnershipLost):
        store.quarantine_row(RT, "a", "why")  # unfenced on a leased runtime
    with pytest.raises(OwnershipLost):
        store.quarantine_row(RT, "a", "why", fence=Fence("worker", lease.token + 1))
    assert store.load_input_states(RT) == [InputRow("a", b"one")] and store.load_quarantined(RT) == []
    assert store.load_high_water(RT) == before
    store.quarantine_row(RT, "a", "why", fence=lease.fence)
    assert store.load_input_states(RT) == []


def test_scan_reports_a_damaged_row_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "scan.db"
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"one"), InputRow("b", b"two")])
    damage_payload(path, RT, "a")
    with SqliteRuntimeStore(path) as store:
        with pytest.raises(Corrupt, match="a"):
            store.load_input_states(RT)
        assert store.scan_input_states(RT) == [ScannedRow("a", b"one\x00", False), ScannedRow("b", b"two", True)]
        moved = store.quarantine_row(RT, "a", "checksum")
        assert (moved.payload, moved.intact) == (b"one\x00", False)
        assert store.load_input_states(RT) == [InputRow("b", b"two")]
    storage = MemoryStorage()
    memory = InMemoryRuntimeStore(storage)
    memory.persist_input_state(RT, InputRow("a", b"one"))
    storage.inputs[RT]["a"] = (b"oNe", storage.inputs[RT]["a"][1])
    assert memory.scan_input_states(RT) == [ScannedRow("a", b"oNe", False)]


# --- a session with bad rows, end to end ----------------------------------------------------


async def _session_with_inputs(store: RuntimeStore, session: str, count: int, *, close_store: bool = True) -> list[str]:
    machine = MeerkatMachine.persistent(store, ownership=None)
    await machine.register_session(session)
    ids: list[str] = []
    for n in range(count):
        outcome = await machine.accept_input(session, prompt(f"input {n}"))
        assert isinstance(outcome, Accepted)
        ids.append(outcome.input_id)
    await machine.close()
    if close_store:
        store.close()
    return ids


async def _recovered_ids(store: RuntimeStore, session: str) -> list[str]:
    machine = MeerkatMachine.persistent(store, ownership=None)
    try:
        await machine.register_session(session)
        return sorted(v.input_id for v in await machine.input_states(session))
    finally:
        await machine.close()
        store.close()


def test_a_real_damaged_file_recovers_every_other_input_after_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "session.db"
    ids = asyncio.run(_session_with_inputs(SqliteRuntimeStore(path), "s", 8))
    rt = canonical_runtime_id("s")
    damage_payload(path, rt, ids[2])  # checksum no longer matches
    undecodable = b'{"row_version": 1, "record": "not an object"}'
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(
        f"UPDATE {INPUTS} SET payload = ?, checksum = ? WHERE runtime_id = ? AND input_id = ?",
        (undecodable, row_checksum(INPUTS, rt, ids[5], undecodable), rt, ids[5]),
    )
    raw.close()
    # ids[5]'s queued column is not bound to its rewritten payload: the payload is decoded (and
    # refused) while the session registers; ids[2]'s would fail its check when first decoded
    with pytest.raises(RecoveryCorruption, match=ids[5]):
        asyncio.run(_recovered_ids(SqliteRuntimeStore(path), "s"))

    with SqliteRuntimeStore(path, read_only=True) as reader:
        found = diagnose_session(reader, "s")
    assert [(b.input_id, b.intact) for b in found.bad_rows] == sorted([(ids[2], False), (ids[5], True)])
    assert {b.input_id: b.payload for b in found.bad_rows}[ids[5]] == undecodable
    assert not found.mark_problems and not found.other_problems and not found.healthy

    with SqliteRuntimeStore(path) as writer:
        quarantine_input(writer, "s", ids[2], "checksum mismatch")
        with pytest.raises(RecoveryCorruption) as info:  # the other bad row is still there, named
            asyncio.run(_recovered_ids(SqliteRuntimeStore(path), "s"))
        assert info.value.input_id == ids[5]
        quarantine_input(writer, "s", ids[5], "does not decode")
        assert [q.input_id for q in writer.load_quarantined(rt)] == [ids[2], ids[5]]
    recovered = asyncio.run(_recovered_ids(SqliteRuntimeStore(path), "s"))
    assert recovered == sorted(i for n, i in enumerate(ids) if n not in (2, 5))
    with SqliteRuntimeStore(path) as reader:
        assert diagnose_session(reader, "s").healthy
        assert reader.load_high_water(rt) == HighWater(
            rt,
            writes=reader.load_high_water(rt).writes,
            inputs=6,  # type: ignore[union-attr]
            lifecycles=1,
            quarantined=2,
        )


def test_diagnosis_reports_rows_that_contradict_each_other_and_lost_rows() -> None:
    storage = MemoryStorage()
    ids = asyncio.run(_session_with_inputs(InMemoryRuntimeStore(storage), "d", 4))
    rt = canonical_runtime_id("d")
    first, second = storage.inputs[rt][ids[0]], storage.inputs[rt][ids[1]]
    storage.inputs[rt][ids[1]] = (first[0], second[1])  # row 1 now holds input 0: checksum fails
    found = diagnose_session(InMemoryRuntimeStore(storage), "d")
    assert [b.input_id for b in found.bad_rows] == [ids[1]] and not found.bad_rows[0].intact
    storage.inputs[rt].pop(ids[3])
    found = diagnose_session(InMemoryRuntimeStore(storage), "d")
    assert found.mark_problems == ("inputs: the mark says 4, the store returned 3",)
    with pytest.raises(ValidationFailed):
        diagnose_session(InMemoryRuntimeStore(storage), "rt:session:d")


def test_quarantine_takes_the_lease_when_the_session_has_one() -> None:
    clock = ManualClock()
    storage = MemoryStorage()
    store = InMemoryRuntimeStore(storage, clock=clock)
    rt = canonical_runtime_id("leased")
    lease = store.claim_lease(rt, "worker-1", 10.0)
    store.persist_input_state(rt, InputRow("a", b"1"), fence=lease.fence)
    store.persist_input_state(rt, InputRow("b", b"1"), fence=lease.fence)
    with pytest.raises(LeaseHeld, match="worker-1"):
        quarantine_input(store, "leased", "a", "bad")
    assert [r.input_id for r in store.load_input_states(rt)] == ["a", "b"]
    clock.advance(11.0)  # the worker died; its lease expired
    moved = quarantine_input(store, "leased", "a", "bad")
    assert moved.input_id == "a"
    after = store.load_lease(rt)
    assert after is not None and after.owner == REPAIR_OWNER and after.token == lease.token + 1
    assert after.expires_at <= clock()  # released again
    with pytest.raises(OwnershipLost):  # the dead worker's fence is stale now
        store.persist_input_state(rt, InputRow("c", b"1"), fence=lease.fence)
