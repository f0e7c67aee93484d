"""``meerkat-runtime migrate`` on real files: an older file (schema version 3, holding what a real
runtime wrote) is refused by the reading commands, left untouched by ``--dry-run``, upgraded in
one step saying what it did, and then read and checked; a current file is a no-op (not a byte,
not an mtime changed); a newer file, a non-store file, a missing file and a URL are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION
from meerkat_runtime.vocab.errors import VersionMismatch

from tests.cli.commands import assert_one_line_usage_error, rt, run
from tests.cli.runtime_files import Written, as_version_3, copy_file, schema_version

PROG = "meerkat-runtime"


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_an_older_file_is_upgraded_and_then_read(written: Written, tmp_path: Path) -> None:
    old = as_version_3(written, tmp_path / "old")
    before = _state(old.parent)
    refused = run(rt("sessions", str(old)))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "schema version 3" in refused.stderr and "meerkat-runtime migrate" in refused.stderr
    dry = run(rt("migrate", "--dry-run", str(old)))
    assert dry.returncode == 0 and f"would upgrade schema version 3 to {SCHEMA_VERSION}" in dry.stdout
    assert _state(old.parent) == before  # neither the reading command nor the dry run wrote

    done = run(rt("migrate", str(old)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{old}: upgraded schema version 3 to {SCHEMA_VERSION}, in one transaction:"
    assert "4: high-water marks" in done.stdout
    assert schema_version(old) == SCHEMA_VERSION
    listed = run(rt("sessions", "--json", str(old)))
    assert listed.returncode == 0, listed.stderr
    by_id = {s["session_id"]: s for s in json.loads(listed.stdout)["sessions"]}
    assert by_id["alpha"]["by_status"] == {"abandoned": 1, "consumed": 1, "queued": 1}
    checked = run(rt("check", str(old)))
    assert checked.returncode == 0, checked.stdout  # the marks computed by the upgrade agree with the rows


def test_a_current_file_is_left_exactly_as_it_is(written: Written, tmp_path: Path) -> None:
    copy = copy_file(written, tmp_path / "current")
    before = _state(copy.path.parent)
    done = run(rt("migrate", str(copy.path)))
    assert done.returncode == 0
    want = f"{copy.path}: already at schema version {SCHEMA_VERSION}; nothing to do (nothing was changed)"
    assert done.stdout.strip() == want
    assert _state(copy.path.parent) == before


def test_a_newer_file_and_a_foreign_file_are_refused_unchanged(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer, isolation_level=None)
    conn.execute("CREATE TABLE meerkat_schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO meerkat_schema_version VALUES (1, ?)", (SCHEMA_VERSION + 1,))
    conn.close()
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign, isolation_level=None)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 200)
    before = _state(tmp_path)
    for path, needle in (
        (newer, "newer release"),
        (foreign, "not a meerkat store: it holds other tables"),
        (junk, "cannot read"),
    ):
        done = run(rt("migrate", str(path)))
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
        assert needle in done.stderr and "Traceback" not in done.stderr
    assert _state(tmp_path) == before


def test_an_empty_file_gets_the_same_true_answer_from_every_command(tmp_path: Path) -> None:
    empty = tmp_path / "empty0.sqlite"
    empty.write_bytes(b"")
    said = (
        f"{str(empty)!r} is empty: not a meerkat store yet (the runtime creates the schema when it opens "
        "the file for writing)"
    )
    before = _state(tmp_path)
    for args, tail in ((("sessions",), ""), (("inputs",), ""), (("migrate",), "; nothing was changed")):
        done = run(rt(*args, str(empty), *(["s"] if args == ("inputs",) else [])))
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip() == f"{PROG} {args[0]}: error: {said}{tail}"
    assert _state(tmp_path) == before
    # What the message promises: opening the file for writing creates the schema.
    SqliteRuntimeStore(empty).close()
    assert schema_version(empty) == SCHEMA_VERSION


def test_usage_errors(tmp_path: Path) -> None:
    assert_one_line_usage_error(run(rt("migrate", str(tmp_path / "missing.db"))), "does not exist")
    assert_one_line_usage_error(run(rt("migrate", str(tmp_path))), "is not a file")
    assert_one_line_usage_error(run(rt("migrate", "postgresql://localhost/db")), "SQLite store files")
    assert_one_line_usage_error(run(rt("migrate")), "PATH")


def _file_at_version(path: Path, version: int) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meerkat_schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO meerkat_schema_version VALUES (1, ?)", (version,))
    conn.close()
    return path


def test_a_reading_command_gives_an_older_file_one_instruction(written: Written, tmp_path: Path) -> None:
    """The migrate command's, not also the read-only store's advice to open it read-write."""
    old = as_version_3(written, tmp_path / "old")
    refused = run(rt("sessions", str(old)))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.strip() == (
        f"{PROG} sessions: error: VersionMismatch for runtime '*': schema version 3 is older than this "
        f"release's ({SCHEMA_VERSION}); a read-only store does not migrate "
        "(upgrade it with: meerkat-runtime migrate STORE)"
    )


def test_a_reading_command_gives_a_newer_file_no_upgrade_advice(tmp_path: Path) -> None:
    """Nothing upgrades (or downgrades) a file written by a newer release: no instruction to."""
    newer = _file_at_version(tmp_path / "newer.db", SCHEMA_VERSION + 1)
    refused = run(rt("sessions", str(newer)))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.strip() == (
        f"{PROG} sessions: error: VersionMismatch for runtime '*': schema version {SCHEMA_VERSION + 1} is newer "
        f"than this release supports ({SCHEMA_VERSION}); it was written by a newer release"
    )


def test_the_read_only_store_says_how_to_upgrade_only_an_older_file(tmp_path: Path) -> None:
    older = _file_at_version(tmp_path / "older.db", SCHEMA_VERSION - 1)
    newer = _file_at_version(tmp_path / "newer.db", SCHEMA_VERSION + 1)
    with pytest.raises(VersionMismatch) as old_info:
        SqliteRuntimeStore(str(older), read_only=True)
    assert old_info.value.detail.endswith("(open it read-write once to upgrade it)")
    with pytest.raises(VersionMismatch) as new_info:
        SqliteRuntimeStore(str(newer), read_only=True)
    assert "upgrade" not in new_info.value.detail and "read-write" not in new_info.value.detail


def test_a_server_a_reading_command_cannot_reach_is_not_called_a_write_failure() -> None:
    pytest.importorskip("psycopg")
    refused = run(rt("sessions", "postgresql://127.0.0.1:1/x"))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    said = f"{PROG} sessions: error: ReadFailed for runtime '*': cannot connect to PostgreSQL"
    assert refused.stderr.startswith(said)
    assert "WriteFailed" not in refused.stderr
