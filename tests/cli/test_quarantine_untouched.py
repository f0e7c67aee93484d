"""``meerkat-runtime quarantine`` that moves nothing leaves the file as it was (its bytes, its
modification time, no ``-wal`` or ``-shm`` beside it), whatever stops it before the move: a file
at an older schema version (refused with the ``migrate`` instruction the reading commands give,
never upgraded behind the older release's workers), a newer one, an empty file (called not a
store yet, as every command calls it), another application's database, an unknown session or
input id, a session a live worker holds. Real files, the real command in a subprocess."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.cli.commands import rt, run
from tests.cli.runtime_files import Written, as_version_3, copy_file, schema_version

PROG = "meerkat-runtime quarantine"


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _refused(path: Path, session: str, input_id: str) -> str:
    """Run the command on ``path``; assert it moved nothing and changed nothing in the folder;
    return its one line on stderr."""
    before = _state(path.parent)
    done = run(rt("quarantine", str(path), session, input_id))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert _state(path.parent) == before
    return done.stderr.strip()


def test_an_older_file_is_refused_with_the_migrate_instruction_and_not_upgraded(
    written: Written, tmp_path: Path
) -> None:
    old = as_version_3(written, tmp_path / "old")
    for session, input_id in (("alhpa", "some-input"), ("alpha", written.queued)):
        said = _refused(old, session, input_id)
        assert said.startswith(f"{PROG}: error: ") and "schema version 3 is older" in said, said
        assert said.endswith("(upgrade it with: meerkat-runtime migrate STORE)"), said
        assert schema_version(old) == 3


def test_an_empty_file_is_not_a_store_yet_and_stays_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    said = _refused(empty, "some-session", "some-input")
    assert said == (
        f"{PROG}: error: {str(empty)!r} is empty: not a meerkat store yet (the runtime creates the schema "
        "when it opens the file for writing)"
    )
    assert empty.stat().st_size == 0


def test_a_newer_file_and_a_foreign_file_are_refused_unchanged(tmp_path: Path) -> None:
    newer = tmp_path / "newer" / "newer.db"
    newer.parent.mkdir()
    conn = sqlite3.connect(newer, isolation_level=None)
    conn.execute("CREATE TABLE meerkat_schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO meerkat_schema_version VALUES (1, ?)", (SCHEMA_VERSION + 1,))
    conn.close()
    foreign = tmp_path / "foreign" / "foreign.db"
    foreign.parent.mkdir()
    conn = sqlite3.connect(foreign, isolation_level=None)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    assert "newer release" in _refused(newer, "s", "x")
    assert "not a meerkat store: it holds other tables" in _refused(foreign, "s", "x")


def test_an_unknown_session_or_input_leaves_a_current_file_untouched(written: Written, tmp_path: Path) -> None:
    copy = copy_file(written, tmp_path / "current")
    said = _refused(copy.path, "alhpa", "some-input")
    assert said == f"{PROG}: error: the store holds no session 'alhpa' (2 session(s) stored)"
    said = _refused(copy.path, "alpha", "no-such-input")
    assert said == f"{PROG}: error: session 'alpha' holds no input 'no-such-input'; nothing was moved"


def test_a_session_a_live_worker_holds_leaves_the_file_untouched(written: Written, tmp_path: Path) -> None:
    copy = copy_file(written, tmp_path / "held")
    store = SqliteRuntimeStore(copy.path)
    try:
        store.claim_lease(canonical_runtime_id("alpha"), "live-worker", 600.0)
    finally:
        store.close()
    said = _refused(copy.path, "alpha", copy.queued)
    assert "LeaseHeld" in said and "live-worker" in said, said


def test_a_move_still_happens_after_the_checks(written: Written, tmp_path: Path) -> None:
    copy = copy_file(written, tmp_path / "moved")
    done = run(rt("quarantine", str(copy.path), "alpha", copy.queued))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"moved input {copy.queued!r} of session 'alpha' into the quarantine")
