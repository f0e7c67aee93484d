"""A ``queued`` column left stale by a release that does not know it, on real SQLite files.

During a rolling upgrade a worker of an older release (schema 5) keeps writing a file the
current release migrated: its upsert rewrites an input row's payload, checksum and the other
columns it knows, and leaves ``queued`` as the current release wrote it. Such a row is
simulated here by exactly that statement. The column is bound to the payload it was written
with (its checksum), so the store ignores it once the payload changed: the row is recovered from
its verified payload, runs once, and ``meerkat-runtime check`` notes the stale column (not damage).
A row whose payload itself is damaged is still refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import queued_fields
from meerkat_runtime.session.row_codec import decode_record, encode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.integrity import row_checksum
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import canonical_runtime_id
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.cli.commands import command, run

RT = canonical_runtime_id("s")
OLD_RELEASE_UPDATE = (
    f"UPDATE {INPUTS} SET payload = ?, checksum = ?, finished_at = ?, idempotency_key = ?, admission_seq = ? "
    "WHERE runtime_id = ? AND input_id = ?"
)
"""The statement an older release (SQLite schema 5) rewrites an existing input row with."""


async def _accept(path: Path, *keys: str) -> None:
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session("s")
        for key in keys:
            assert (await machine.accept_input("s", prompt(key, idempotency_key=key, input_id=key))).is_accepted


def _row(path: Path, input_id: str) -> tuple[bytes, bytes | None, str]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        payload, queued, key = conn.execute(
            f"SELECT payload, queued, idempotency_key FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?",
            (RT, input_id),
        ).fetchone()
        return bytes(payload), queued, str(key)
    finally:
        conn.close()


def _old_release_writes(path: Path, input_id: str, payload: bytes, finished_at: float | None = None) -> None:
    """Write ``payload`` as the older release does: ``queued`` is not touched."""
    _, queued_before, key = _row(path, input_id)
    seq = decode_record(payload).admission_seq
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        checksum = row_checksum(INPUTS, RT, input_id, payload)
        conn.execute(OLD_RELEASE_UPDATE, (payload, checksum, finished_at, key, seq, RT, input_id))
    finally:
        conn.close()
    assert _row(path, input_id)[1] == queued_before is not None  # the column as the current release wrote it


def _requeued_after_a_failed_attempt(path: Path, input_id: str) -> None:
    """The older release ran the input, the run failed and it requeued it (attempts = 1)."""
    payload, _, _ = _row(path, input_id)
    record = decode_record(payload)
    assert record.phase is InputLifecycleState.QUEUED and record.attempts == 0
    requeued = replace(record, attempts=1, updated_at=record.updated_at + 1.0)
    _old_release_writes(path, input_id, encode_record(requeued))


async def _run_all(path: Path) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Register ``s`` with an executor that succeeds; wait until nothing is pending. Returns the
    inputs it ran and each input's ``(state, attempts)``."""
    executor = ScriptedExecutor()
    async with MeerkatMachine.persistent(path) as machine:
        await machine.register_session_with_executor("s", executor)
        await machine.settle("s", timeout=10)
        assert await machine.last_error("s") is None
        states = {str(v.input_id): (v.current_state.value, v.attempts) for v in await machine.input_states("s")}
    return [str(i) for _, ids in executor.applied for i in ids], states


def test_a_row_requeued_by_an_older_release_is_recovered_from_its_payload_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, "kf", "k2"))
    _requeued_after_a_failed_attempt(path, "kf")

    with SqliteRuntimeStore(path) as store:  # the store drops the stale column: the payload is read
        rows = {r.input_id: r for r in store.load_active_input_states(RT)}
        assert rows["kf"].queued is None and rows["kf"].check is None
        assert rows["k2"].queued is not None  # the other row's column still holds
        assert store.load_input_state(RT, "kf") == replace(rows["kf"])

    ran, states = asyncio.run(_run_all(path))
    assert sorted(ran) == ["k2", "kf"]  # each exactly once
    assert states == {"kf": ("consumed", 2), "k2": ("consumed", 1)}  # kf: the old attempt counted


def test_the_registration_writes_the_row_back_with_a_column_that_holds(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, "kf"))
    _requeued_after_a_failed_attempt(path, "kf")
    stale = _row(path, "kf")[1]

    async def register() -> list[int]:
        async with MeerkatMachine.persistent(path) as machine:
            await machine.register_session("s")
            return [v.attempts for v in await machine.input_states("s")]

    assert asyncio.run(register()) == [1]
    assert _row(path, "kf")[1] not in (None, stale)  # written back for the payload it now has
    with SqliteRuntimeStore(path) as store:
        (row,) = store.load_active_input_states(RT)
        assert row.queued is not None and row.check is not None  # recovered from it again
    assert asyncio.run(register()) == [1]


def test_check_notes_stale_columns_and_the_session_runs_what_is_pending_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, "kf", "kd"))
    _requeued_after_a_failed_attempt(path, "kf")
    # kd: the older release ran it to completion (finished row); its queued column stays
    _, kd_column, _ = _row(path, "kd")
    finished_twin = tmp_path / "twin.db"
    asyncio.run(_accept(finished_twin, "kd"))
    asyncio.run(_run_all(finished_twin))
    conn = sqlite3.connect(finished_twin, isolation_level=None)
    try:
        done_payload, done_at = conn.execute(
            f"SELECT payload, finished_at FROM {INPUTS} WHERE input_id = 'kd'"
        ).fetchone()
    finally:
        conn.close()
    _old_release_writes(path, "kd", bytes(done_payload), float(done_at))
    assert _row(path, "kd")[1] == kd_column

    done = run([*command("meerkat-runtime"), "check", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    notes = [line for line in lines if "queued column" in line]
    assert len(notes) == 2 and all(line.startswith("  note: session 's': input 'k") for line in notes)
    assert "input 'kd'" in notes[0] and "(the row is finished)" in notes[0]
    assert "input 'kf'" in notes[1] and "recovery ignores it and reads the row from its payload" in notes[1]
    assert lines[-1] == "OK: no damage found"

    ran, states = asyncio.run(_run_all(path))
    assert ran == ["kf"]  # kd is not run again
    assert states == {"kf": ("consumed", 2), "kd": ("consumed", 1)}


def test_a_payload_damaged_beside_a_column_that_was_bound_to_it_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, "kf"))
    payload, _, _ = _row(path, "kf")
    conn = sqlite3.connect(path, isolation_level=None)
    try:  # the payload changed without its checksum (damage, not a writer)
        damaged = payload.replace(b'"text":"kf"', b'"text":"kX"')
        assert damaged != payload
        conn.execute(f"UPDATE {INPUTS} SET payload = ? WHERE input_id = 'kf'", (damaged,))
    finally:
        conn.close()

    async def restart() -> tuple[list[str], BaseException | None]:
        executor = ScriptedExecutor()
        async with MeerkatMachine.persistent(path) as machine:
            await machine.register_session_with_executor("s", executor)
            for _ in range(200):
                if (error := await machine.last_error("s")) is not None:
                    break
                await asyncio.sleep(0.01)
            return [str(i) for _, ids in executor.applied for i in ids], error

    ran, error = asyncio.run(restart())
    assert ran == [] and isinstance(error, MeerkatError) and "integrity check" in str(error)
    done = run([*command("meerkat-runtime"), "check", str(path)])
    assert done.returncode == 1 and done.stdout.splitlines()[-1].startswith("DAMAGED")


def test_check_names_a_bound_column_whose_fields_the_payload_does_not_hold(tmp_path: Path) -> None:
    """Not a stale column: one bound to the row's current payload (as only the current release
    writes it) whose fields disagree with it. A restart recovers the row from it and then refuses
    it; ``check`` says so (a problem naming the input), consistently."""
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, "kf", "k2"))
    payload, _, key = _row(path, "kf")
    record = decode_record(payload)
    wrong = queued_fields(replace(record, attempts=1), key)
    assert wrong is not None
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        checksum = row_checksum(INPUTS, RT, "kf", payload)  # bound as the store binds it
        conn.execute(f"UPDATE {INPUTS} SET queued = ? WHERE input_id = 'kf'", (wrong + checksum.encode(),))
    finally:
        conn.close()

    done = run([*command("meerkat-runtime"), "check", str(path)])
    assert done.returncode == 1, done.stdout
    problems = [line for line in done.stdout.splitlines() if line.startswith("  PROBLEM: ")]
    assert len(problems) == 1 and "input 'kf'" in problems[0]
    assert "does not hold the fields it was recovered with" in problems[0]
