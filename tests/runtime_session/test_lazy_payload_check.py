"""A queued row's payload checked when the row is first decoded, not when a restart reads it: on
a real SQLite file, a payload damaged behind the store's back (its recovery fields beside it
still valid) is refused before the run loop stages it, naming the input; the repair tooling and
``meerkat-runtime check`` find it without starting the session; and without the deferred check
the damaged input would run and be acknowledged."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import PackedRecord, queued_problem
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.integrity import DeferredCheck
from meerkat_runtime.store.sql_rows import unbound_queued
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import Corrupt, CorruptInputRow, RecoveryCorruption
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.cli.commands import command
from tests.cli.commands import run as run_command
from tests.runtime_session.helpers import run

RT = canonical_runtime_id("s")
IDS = ["in-0", "in-1", "in-2"]
DAMAGED = "in-1"


async def _accept_three(path: Path) -> None:
    machine = MeerkatMachine.persistent(path)
    await machine.register_session("s")
    for i, input_id in enumerate(IDS):
        item = prompt(f"pending {i}", idempotency_key=f"k{i}", input_id=input_id)
        assert (await machine.accept_input("s", item)).is_accepted
    await machine.close()


def _damaged_file(path: Path) -> bytes:
    """Three queued inputs stored through the runtime; then one payload changed in the file
    (same length, still a valid row that agrees with its recovery fields), its checksum and
    fields left as they were. Returns the damaged payload."""
    asyncio.run(_accept_three(path))
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        (payload, key, column, checksum) = raw.execute(
            f"SELECT payload, idempotency_key, queued, checksum FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?",
            (RT, DAMAGED),
        ).fetchone()
        fields = unbound_queued(column, checksum)  # bound to the checksum column, which stays
        assert fields is not None
        damaged = payload.replace(b"pending 1", b"pending X")
        assert damaged != payload and len(damaged) == len(payload)
        assert queued_problem(DAMAGED, key, fields) is None  # the fields beside it still check out
        raw.execute(f"UPDATE {INPUTS} SET payload = ? WHERE runtime_id = ? AND input_id = ?", (damaged, RT, DAMAGED))
    finally:
        raw.close()
    return bytes(damaged)


async def _restart_and_run(path: Path) -> tuple[list[str], BaseException | None]:
    """Reopen the file, register the session, attach a loop; wait until it ran what it could.
    Returns the inputs it ran and the loop's last error."""
    machine = MeerkatMachine.persistent(path)
    await machine.register_session("s")  # the rows are read from their fields, not decoded
    session = machine._sessions[RT]
    assert all(isinstance(r, PackedRecord) and r.packed is not None for r in session.core.ledger.records.values())
    executor = ScriptedExecutor()
    await machine.register_session_with_executor("s", executor)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        error = await machine.last_error("s")
        if error is not None or len(executor.applied) == len(IDS):
            break
        await asyncio.sleep(0.02)
    error = await machine.last_error("s")
    await machine.close()
    return [ids[0] for _, ids in executor.applied], error


def test_a_damaged_payload_beside_valid_fields_is_refused_before_staging_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    damaged = _damaged_file(path)
    ran, error = run(_restart_and_run(path))
    assert ran == ["in-0"]  # the loop stopped at the damaged input, before staging it
    assert isinstance(error, CorruptInputRow) and error.input_id == DAMAGED
    assert isinstance(error, Corrupt) and isinstance(error, RecoveryCorruption)  # what a read would have raised
    assert "checksum mismatch" in str(error)
    with SqliteRuntimeStore(path) as store:
        assert [f.input_id for f in store.load_finished_inputs(RT)] == ["in-0"]
        scanned = {r.input_id: r for r in store.scan_input_states(RT)}
        assert scanned[DAMAGED].payload == damaged and not scanned[DAMAGED].intact  # never staged nor rewritten
        with pytest.raises(Corrupt, match=DAMAGED):  # a plain read of the row still fails closed
            store.load_input_state(RT, DAMAGED)


def test_without_the_deferred_check_the_damaged_input_would_run_and_be_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    _damaged_file(path)
    monkeypatch.setattr(DeferredCheck, "__call__", lambda self, input_id, payload, checksum: None)
    ran, error = run(_restart_and_run(path))
    assert error is None and ran == IDS  # the damaged text reached the executor
    with SqliteRuntimeStore(path) as store:
        row = store.load_finished_inputs(RT)
    assert [f.input_id for f in row] == IDS  # and its completion was committed


def test_the_repair_tooling_and_check_find_the_damaged_payload_without_starting_the_session(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _damaged_file(path)
    with SqliteRuntimeStore(path, read_only=True) as reader:
        found = diagnose_session(reader, "s")
    assert [(b.input_id, b.intact) for b in found.bad_rows] == [(DAMAGED, False)]
    done = run_command([*command("meerkat-runtime"), "check", "--json", str(path)])
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["damaged_rows"] == 1 and any(DAMAGED in p for p in report["problems"])
    assert report["warnings"] == []  # the fields beside it are intact


def test_registration_does_not_verify_a_payload_it_does_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _damaged_file(path)

    async def register_only() -> InputLifecycleState:
        machine = MeerkatMachine.persistent(path)
        await machine.register_session("s")
        assert (await machine.accept_input("s", prompt("after the restart"))).is_accepted
        view = await machine.input_state("s", "in-2")
        with pytest.raises(CorruptInputRow, match=DAMAGED):  # reading the damaged one refuses it
            await machine.input_state("s", DAMAGED)
        await machine.close()
        assert view is not None
        return view.current_state

    assert run(register_only()) is InputLifecycleState.QUEUED
