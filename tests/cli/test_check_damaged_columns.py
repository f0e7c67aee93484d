"""``meerkat-runtime check`` and ``quarantine`` (real subprocesses) on store files damaged by
SQL beside the row checksums: columns of the wrong type, a lease or schema version row changed,
a high-water mark deleted. ``check`` names each as a ``PROBLEM`` (never a traceback, never
"OK"), and ``quarantine`` either repairs the session or refuses, writing nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS, LEASES, OPS_SNAPSHOTS
from meerkat_runtime.vocab.errors import MeerkatError

from tests.cli.commands import command, run
from tests.cli.runtime_files import Written, copy_file
from tests.stores.damage import write_sql

PROG = "meerkat-runtime"
ALPHA = "rt:session:alpha"


@pytest.fixture
def copy(written: Written, tmp_path: Path) -> Written:
    return copy_file(written, tmp_path)


def _contents(path: Path) -> list[str]:
    """Everything the database holds, as SQL (a store that opens the file rewrites its header)."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        return list(raw.iterdump())
    finally:
        raw.close()


def _check(path: Path) -> tuple[int, list[str]]:
    """The exit status and the PROBLEM lines; the report must end in its verdict, no traceback."""
    done = run([*command(PROG), "check", str(path)])
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stdout.splitlines()
    problems = [line.strip() for line in lines if line.strip().startswith("PROBLEM: ")]
    verdict = f"DAMAGED: {len(problems)} problem(s)" if problems else "OK: no damage found"
    assert lines[-1] == verdict, done.stdout
    return done.returncode, problems


async def _register(path: Path, session: str) -> str | None:
    """``None`` if ``session`` registers, else the error it fails with."""
    store = SqliteRuntimeStore(path)
    machine = MeerkatMachine.persistent(store)
    try:
        await machine.register_session(session)
        return None
    except MeerkatError as exc:
        return str(exc)
    finally:
        await machine.close()
        store.close()


def _quarantine(path: Path, session: str, input_id: str) -> tuple[int, str]:
    done = run([*command(PROG), "quarantine", str(path), session, input_id])
    return done.returncode, done.stderr.strip()


# --- a missing or disagreeing high-water mark: quarantine refuses, the finding stays --------


def test_quarantine_without_a_mark_refuses_and_leaves_the_finding_as_it_was(copy: Written) -> None:
    path = copy.path
    write_sql(path, f"DELETE FROM {HIGH_WATER} WHERE runtime_id = ?", (ALPHA,))
    status, before = _check(path)
    assert status == 1 and any("rows are stored but there is no high-water mark" in p for p in before)
    files = _contents(path)
    status, said = _quarantine(path, "alpha", copy.queued)
    assert status == 1 and len(said.splitlines()) == 1, said
    assert "has no high-water mark although 3 input row(s) are stored" in said
    assert "nothing was moved" in said and "restore the file from a backup" in said
    assert _contents(path) == files  # nothing written: no mark of -1, no quarantined row
    assert _check(path) == (1, before)  # the original finding, not a mark the store rejects
    assert _quarantine(path, "alpha", copy.done)[0] == 1  # and again: still refused


def test_quarantine_of_a_row_moved_to_another_runtime_id_refuses(copy: Written) -> None:
    path = copy.path
    write_sql(path, f"UPDATE {INPUTS} SET runtime_id = 'rt:session:Alpha' WHERE input_id = ?", (copy.queued,))
    files = _contents(path)
    status, said = _quarantine(path, "Alpha", copy.queued)
    assert status == 1 and "has no high-water mark although 1 input row(s) are stored" in said, said
    status, said = _quarantine(path, "alpha", copy.done)
    assert status == 1 and "its high-water mark counts 3 input row(s) but 2 are stored" in said, said
    assert _contents(path) == files
    status, problems = _check(path)
    assert status == 1 and not any("must be a non-negative integer" in p for p in problems), problems


# --- side columns of the wrong type: named for quarantine, which repairs the session --------


@pytest.mark.parametrize(
    ("which", "column", "value"),
    [
        ("queued", "admission_seq", "abc"),
        ("done", "admission_seq", "abc"),
        ("done", "finished_at", "yesterday"),
        ("queued", "finished_at", 1.0),
        ("done", "idempotency_key", 5),
    ],
    ids=["admission_text", "admission_text_finished", "finished_text", "finished_on_queued", "key_int"],
)
def test_check_names_a_row_with_a_bad_side_column_and_quarantine_repairs(
    copy: Written, which: str, column: str, value: object
) -> None:
    path = copy.path
    input_id = getattr(copy, which)
    write_sql(path, f"UPDATE {INPUTS} SET {column} = ? WHERE runtime_id = ? AND input_id = ?", (value, ALPHA, input_id))
    assert asyncio.run(_register(path, "alpha")) is not None  # recovery refuses the row
    status, problems = _check(path)
    assert status == 1, problems
    assert any(p.startswith(f"PROBLEM: session 'alpha': input '{input_id}': ") for p in problems), problems
    assert _quarantine(path, "alpha", input_id)[0] == 0
    assert _check(path) == (0, [])
    assert asyncio.run(_register(path, "alpha")) is None


# --- rows check used to crash on ---------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "needle"),
    [
        (f"UPDATE {LEASES} SET token = 'two'", f"{LEASES}[{ALPHA}]"),
        (f"UPDATE {LEASES} SET expires_at = 'never'", f"{LEASES}[{ALPHA}]"),
        ("UPDATE meerkat_schema_version SET version = 'six'", "schema version"),
        ("DELETE FROM meerkat_schema_version", "schema version"),
    ],
    ids=["lease_token_text", "lease_expiry_text", "version_text", "version_deleted"],
)
def test_check_reports_damage_it_used_to_crash_on(copy: Written, statement: str, needle: str) -> None:
    path = copy.path
    store = SqliteRuntimeStore(path)
    try:
        store.claim_lease(ALPHA, "worker", 60.0)
    finally:
        store.close()
    write_sql(path, statement)
    status, problems = _check(path)
    assert status == 1 and problems, problems
    done = run([*command(PROG), "check", str(path)])
    assert needle in done.stdout, done.stdout


# --- rows keyed by their runtime alone are named by it -------------------------------------


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [(HIGH_WATER, "inputs", "five"), (OPS_SNAPSHOTS, "checksum", "0" * 32), (LEASES, "token", "two")],
)
def test_a_row_keyed_by_its_runtime_is_named_with_it(copy: Written, table: str, column: str, value: str) -> None:
    path = copy.path
    if table == LEASES:
        store = SqliteRuntimeStore(path)
        try:
            store.claim_lease(ALPHA, "worker", 60.0)
        finally:
            store.close()
    write_sql(path, f"UPDATE {table} SET {column} = ? WHERE runtime_id = ?", (value, ALPHA))
    done = run([*command(PROG), "check", str(path)])
    assert done.returncode == 1
    assert f"{table}[]" not in done.stdout and f"{table}[{ALPHA}]" in done.stdout, done.stdout
    said = asyncio.run(_register(path, "alpha"))
    assert said is not None and f"row {table}[{ALPHA}]" in said, said
