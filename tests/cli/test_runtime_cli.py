"""``meerkat-runtime check`` and ``quarantine`` on real store files: ``check`` never writes (not
even a crashed file set's log and wal-index) and lists every problem; ``quarantine`` moves a bad
row so the session recovers every other input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import NoReturn

import pytest
from meerkat_runtime.cli import quarantine as quarantine_command
from meerkat_runtime.cli.main import main as cli_main
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import RowNotStored, WriteRefused
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.cli.commands import command, run
from tests.runtime_session.helpers import registered_input_count
from tests.stores.damage import damage_payload
from tests.stores.wal_files import copy_set, flip, write_log_set

PROG = "meerkat-runtime"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


async def _session(path: Path, session: str, count: int) -> list[str]:
    store = SqliteRuntimeStore(path)
    machine = MeerkatMachine.persistent(store)
    await machine.register_session(session)
    ids = []
    for n in range(count):
        outcome = await machine.accept_input(session, prompt(f"input {n}"))
        assert isinstance(outcome, Accepted)
        ids.append(outcome.input_id)
    await machine.close()
    store.close()
    return ids


def test_check_never_writes_a_crashed_file_set(tmp_path: Path) -> None:
    log = write_log_set(tmp_path, 10)
    before = _files(log.db.parent)
    assert set(before) == {"s.db", "s.db-wal", "s.db-shm"}
    done = run([*command(PROG), "check", str(log.db)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "OK: no damage found"
    assert _files(log.db.parent) == before  # not the database, not the log, not the wal-index
    wal_only = copy_set(log, tmp_path, "no-shm")
    wal_only.shm.unlink()
    before = _files(wal_only.db.parent)
    assert run([*command(PROG), "check", "--json", str(wal_only.db)]).returncode == 0
    assert _files(wal_only.db.parent) == before  # no -shm was created


def test_check_lists_log_damage_and_exits_one(tmp_path: Path) -> None:
    log = write_log_set(tmp_path, 10)
    flip(log.wal, log.frame_offset(log.commit_frames()[2]) + 200)
    before = _files(log.db.parent)
    done = run([*command(PROG), "check", "--json", str(log.db)])
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert not report["ok"] and report["wal"]["lost_commit_frames"]
    assert any("would be dropped by SQLite" in p for p in report["problems"])
    assert _files(log.db.parent) == before


def test_check_names_bad_rows_and_quarantine_lets_the_session_recover(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    ids = asyncio.run(_session(path, "s", 6))
    asyncio.run(_session(path, "other", 2))
    damage_payload(path, canonical_runtime_id("s"), ids[4])
    done = run([*command(PROG), "check", str(path)])
    assert done.returncode == 1
    assert f"session 's': input '{ids[4]}': failed its integrity check" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("DAMAGED: ")

    moved = run([*command(PROG), "quarantine", "--json", str(path), "s", ids[4], "--reason", "bit rot"])
    assert moved.returncode == 0, moved.stderr
    doc = json.loads(moved.stdout)
    assert (doc["input_id"], doc["intact"], doc["reason"]) == (ids[4], False, "bit rot")
    again = run([*command(PROG), "quarantine", str(path), "s", ids[4]])
    assert again.returncode == 1 and len(again.stderr.splitlines()) == 1
    assert again.stderr.strip() == (
        f"{PROG} quarantine: error: input '{ids[4]}' of session 's' is already quarantined (reason: 'bit rot'); "
        "nothing was moved"
    )
    assert run([*command(PROG), "check", str(path)]).returncode == 0
    assert asyncio.run(registered_input_count(SqliteRuntimeStore(path), "s")) == 5
    assert asyncio.run(registered_input_count(SqliteRuntimeStore(path), "other")) == 2


def test_quarantine_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    ids = asyncio.run(_session(path, "s", 2))
    for session, input_id, said in (
        ("nobody", ids[0], "the store holds no session 'nobody' (1 session(s) stored)"),
        ("s", "no-such-input", "session 's' holds no input 'no-such-input'; nothing was moved"),
    ):
        done = run([*command(PROG), "quarantine", str(path), session, input_id])
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip() == f"{PROG} quarantine: error: {said}"
    assert sorted(_files(tmp_path)) == ["store.db"]
    assert asyncio.run(_count_rows(path)) == 2


def test_quarantine_refuses_a_session_a_live_worker_holds(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    ids = asyncio.run(_session(path, "s", 2))
    store = SqliteRuntimeStore(path)
    try:
        store.claim_lease(canonical_runtime_id("s"), "live-worker", 60.0)
    finally:
        store.close()
    done = run([*command(PROG), "quarantine", str(path), "s", ids[0]])
    assert done.returncode == 1 and "live-worker" in done.stderr and len(done.stderr.splitlines()) == 1
    assert asyncio.run(_count_rows(path)) == 2


async def _count_rows(path: Path) -> int:
    with SqliteRuntimeStore(path) as store:
        return len(store.load_input_states(canonical_runtime_id("s")))


def test_quarantine_reports_a_damaged_file_in_one_line(tmp_path: Path) -> None:
    log = write_log_set(tmp_path, 10)
    flip(log.wal, log.frame_offset(log.commit_frames()[2]) + 200)
    done = run([*command(PROG), "quarantine", str(log.db), "s", "x"])
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "write-ahead log" in done.stderr and "Traceback" not in done.stderr


def test_quarantine_reports_a_refusal_of_another_kind_in_the_stores_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the store's refusal for a row it does not hold reads "holds no input" (or "already
    quarantined"); any other ``WriteRefused`` is reported with the store's own message."""
    path = tmp_path / "store.db"
    ids = asyncio.run(_session(path, "s", 2))
    detail = f"quarantine_row: input row {ids[0]!r} is pinned by a retention hold; nothing was moved"

    def refuse(store: object, session_id: str, input_id: str, reason: str) -> NoReturn:
        raise WriteRefused(canonical_runtime_id(session_id), detail)

    monkeypatch.setattr(quarantine_command, "quarantine_input", refuse)
    assert cli_main(["quarantine", str(path), "s", ids[0]]) == 1
    said = capsys.readouterr().err.strip()
    assert said == f"{PROG} quarantine: error: WriteRefused for runtime 'rt:session:s': {detail}"
    assert asyncio.run(_count_rows(path)) == 2


def test_every_store_refuses_a_missing_row_with_the_class_quarantine_reads(tmp_path: Path) -> None:
    """The refusal ``quarantine`` turns into "holds no input" is recognised by its class,
    ``RowNotStored`` (a ``WriteRefused``), which the in-memory and SQLite stores both raise."""
    for store in (InMemoryRuntimeStore(), SqliteRuntimeStore(tmp_path / "words.db")):
        with pytest.raises(RowNotStored) as info:
            store.quarantine_row(canonical_runtime_id("s"), "missing", "why")
        assert isinstance(info.value, WriteRefused) and "no input row 'missing'" in info.value.detail
        store.close()
