"""A queued row damaged behind the store's back, recovered without being read (its payload
checked only when the loop first takes it), on a real SQLite file: an event subscriber changes
nothing. Registration succeeds with or without one, its ``register`` event describes the row from
what recovery read beside it (no ``kind`` nor ``supersession_key``) without decoding it, the loop
stops before staging it, ``settle`` returns once that loop has ended, and the event log replays
through the model."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from meerkat_conformance.trace.check import check_trace
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import PackedRecord
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import CorruptInputRow
from meerkat_runtime.vocab.ids import InputId, canonical_runtime_id

from tests.runtime_session.helpers import make_prompt

RT = canonical_runtime_id("s")
IDS = ["in-0", "in-1", "in-2"]
DAMAGED = "in-1"


def _stored(path: Path, log_dir: Path | None) -> None:
    """Three queued inputs stored through the runtime (the events logged to ``log_dir``), then
    the payload of ``DAMAGED`` changed in the file, its checksum and recovery fields kept."""

    async def body() -> None:
        machine = MeerkatMachine.persistent(path)
        log = None if log_dir is None else EventLog(log_dir)
        if log is not None:
            machine.events.subscribe(log)
        await machine.register_session("s")
        for i, input_id in enumerate(IDS):
            item = make_prompt(f"pending {i}", idempotency_key=f"k{i}", input_id=input_id)
            assert (await machine.accept_input("s", item)).is_accepted
        await machine.close()
        if log is not None:
            log.close()

    asyncio.run(body())
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        (payload,) = raw.execute(
            f"SELECT payload FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (RT, DAMAGED)
        ).fetchone()
        damaged = bytes(payload).replace(b"pending 1", b"pending X")
        assert damaged != payload
        raw.execute(f"UPDATE {INPUTS} SET payload = ? WHERE runtime_id = ? AND input_id = ?", (damaged, RT, DAMAGED))
    finally:
        raw.close()


def _writes(path: Path) -> int:
    store = SqliteRuntimeStore(path, read_only=True)
    try:
        mark = store.load_high_water(RT)
        assert mark is not None
        return mark.writes
    finally:
        store.close()


async def _register(path: Path, subscriber: Any) -> tuple[bool, Any]:
    """Register ``s`` on ``path`` (with ``subscriber`` when given); whether it is registered
    afterwards and the damaged input's record as memory holds it."""
    machine = MeerkatMachine.persistent(path)
    try:
        if subscriber is not None:
            machine.events.subscribe(subscriber)
        await machine.register_session("s")
        record = machine._sessions[RT].core.ledger.records[InputId(DAMAGED)]
        return await machine.contains_session("s"), record
    finally:
        await machine.close()


@pytest.mark.parametrize("subscribed", [False, True], ids=["no-subscriber", "subscriber"])
def test_a_subscriber_does_not_make_registration_read_a_damaged_row(tmp_path: Path, subscribed: bool) -> None:
    path = tmp_path / "damaged.sqlite"
    _stored(path, None)
    before = _writes(path)
    seen: list[LifecycleEvent] = []
    registered, record = asyncio.run(_register(path, seen.append if subscribed else None))
    assert registered
    assert isinstance(record, PackedRecord) and record.packed is not None  # nothing decoded it
    assert _writes(path) == before + 1  # the registration's one write-back, and no other
    if subscribed:
        (register,) = [e for e in seen if e.rule == "register"]
        assert register.details["active"] == {i: "Queued" for i in IDS}
        assert register.details["attrs"][DAMAGED] == {
            "input": DAMAGED,
            "lane": "queue",
            "idempotency_key": "k1",
            "ephemeral": False,
        }


async def _run_until_settled(path: Path, log_dir: Path | None) -> tuple[int, BaseException | None, bool]:
    """Register ``s`` on ``path`` with an executor (its events logged to ``log_dir``) and
    settle it: how many runs the executor got, the loop's last error, ``settled_now``."""
    machine = MeerkatMachine.persistent(path)
    log = None if log_dir is None else EventLog(log_dir)
    if log is not None:
        machine.events.subscribe(log)
    executor = ScriptedExecutor()
    try:
        await machine.register_session_with_executor("s", executor)
        await machine.settle("s", timeout=10.0)  # the loop ran in-0, then stopped before in-1
        return len(executor.applied), await machine.last_error("s"), machine.settled_now("s")
    finally:
        await machine.close()
        if log is not None:
            log.close()


def test_settle_returns_once_the_loop_stopped_on_a_damaged_row(tmp_path: Path) -> None:
    path = tmp_path / "damaged.sqlite"
    _stored(path, None)
    applied, error, settled = asyncio.run(_run_until_settled(path, None))
    assert isinstance(error, CorruptInputRow) and DAMAGED in str(error)
    assert settled
    assert applied == 1  # in-0 only: the damaged input was never staged


def test_the_event_log_of_a_session_stopped_on_a_damaged_row_replays(tmp_path: Path) -> None:
    path = tmp_path / "damaged.sqlite"
    log_dir = tmp_path / "events"
    _stored(path, log_dir)
    applied, error, _ = asyncio.run(_run_until_settled(path, log_dir))
    assert isinstance(error, CorruptInputRow) and applied == 1
    verdict = check_trace([log_dir])
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    assert verdict.ok and verdict.rules.get("register", 0) == 2 and verdict.rules.get("start_run", 0) == 1
