"""``meerkat-runtime check`` on a real file whose recovery fields beside a queued row are damaged:
a warning naming the session and the input (recovery decodes that row in full instead), not a
problem; the session still recovers, and its registration writes the fields back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.packed_record import QUEUED_FIELDS_SIZE, queued_problem
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.cli.commands import command, run
from tests.runtime_session.helpers import registered_queue

PROG = "meerkat-runtime"
RT = canonical_runtime_id("s")


async def _accept(path: Path, count: int) -> None:
    machine = MeerkatMachine.persistent(path)
    await machine.register_session("s")
    for i in range(count):
        assert (await machine.accept_input("s", prompt(f"input {i}", input_id=f"in-{i}"))).is_accepted
    await machine.close()


def _fields(path: Path, input_id: str) -> bytes:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        (value,) = raw.execute(
            f"SELECT queued FROM {INPUTS} WHERE runtime_id = ? AND input_id = ?", (RT, input_id)
        ).fetchone()
        return bytes(value)
    finally:
        raw.close()


def _set_fields(path: Path, input_id: str, value: bytes) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute(f"UPDATE {INPUTS} SET queued = ? WHERE runtime_id = ? AND input_id = ?", (value, RT, input_id))
    finally:
        raw.close()


def test_check_warns_of_recovery_fields_that_fail_their_check_naming_session_and_input(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_accept(path, 3))
    good = _fields(path, "in-1")
    damaged = bytearray(good)
    damaged[10] ^= 0x01  # one bit of the attempts count: the CRC no longer matches
    _set_fields(path, "in-1", bytes(damaged))

    done = run([*command(PROG), "check", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr  # a warning is not damage recovery cannot handle
    lines = done.stdout.splitlines()
    warnings = [line for line in lines if line.startswith("  WARNING: ")]
    assert warnings == [
        "  WARNING: session 's': input 'in-1': its recovery fields fail their check value (CRC-32 over them, "
        "the input id and the idempotency key) (recovery decodes the row in full)"
    ]
    assert lines[-1] == "OK: no damage found (1 warning(s))"
    report = json.loads(run([*command(PROG), "check", "--json", str(path)]).stdout)
    assert report["ok"] is True and report["problems"] == []
    assert len(report["warnings"]) == 1 and "session 's'" in report["warnings"][0] and "'in-1'" in report["warnings"][0]

    assert asyncio.run(registered_queue(path, "s")) == ["in-0", "in-1", "in-2"]  # decoded in full: its true position
    assert _fields(path, "in-1") == good  # the registration wrote the fields back
    done = run([*command(PROG), "check", str(path)])
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "OK: no damage found"


def test_what_the_fields_check_says_of_each_kind_of_damage() -> None:
    assert queued_problem("in-1", None, b"\x00" * (QUEUED_FIELDS_SIZE - 1)) == (
        f"its recovery fields are {QUEUED_FIELDS_SIZE - 1} bytes, not {QUEUED_FIELDS_SIZE}"
    )
    bad = queued_problem("in-1", None, b"\x00" * QUEUED_FIELDS_SIZE)
    assert bad is not None and "check value" in bad
