"""A group-commit batch of input rows keeps no undo records: no temporary file per transaction.

Inside a savepoint SQLite keeps the original of every page the transaction changes until the
savepoint ends (its statement journal), and past 64 KiB it moves them to a temporary file. A
batch run inside one savepoint that writes to many sessions' rows passes that: each such
transaction created, wrote and deleted a file of page copies, thrown away at the ``COMMIT``.
A batch of input rows runs without a savepoint; the same batch with the savepoint put back
shows the file appearing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store import sqlite as sqlite_store
from meerkat_runtime.store.group_commit import PendingWrite
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

RUNTIMES = [f"rt:session:s{i}" for i in range(40)]
PAYLOAD = b"p" * 900

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


def _temporary_files() -> list[str]:
    """The files this process holds open that SQLite created as temporary files."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "etilqs_" in target:  # SQLite's prefix for its temporary files
            found.append(target)
    return found


def _files_during_a_batch(path: Path, monkeypatch: pytest.MonkeyPatch, *, savepoint: bool = False) -> list[str]:
    """Write one batch of one row per runtime over rows already stored, and list the
    temporary files open once the batch's writes ran, before its ``COMMIT`` (``savepoint``: the
    batch run inside one savepoint, as it once was)."""
    store = SqliteRuntimeStore(path, group_commit_max_batch=len(RUNTIMES), group_commit_max_wait_ms=1000)
    try:
        for n in range(12):  # existing pages: the batch changes pages of every runtime
            for rt in RUNTIMES:
                store.persist_input_state(rt, InputRow(f"old-{n:03d}", PAYLOAD))
        seen: list[list[str]] = []
        run_batch = sqlite_store._first_run

        def watched(conn: sqlite3.Connection, batch: list[PendingWrite]) -> bool:
            if savepoint:
                conn.execute("SAVEPOINT batch")
            ok = run_batch(conn, batch)
            seen.append(_temporary_files())
            return ok

        monkeypatch.setattr(sqlite_store, "_first_run", watched)
        futures = [
            store.submit_write(lambda rt=rt: store.persist_input_state(rt, InputRow("new", PAYLOAD)))  # type: ignore[misc]
            for rt in RUNTIMES
        ]
        assert [f.exception(timeout=30) for f in futures] == [None] * len(RUNTIMES)
        assert store.group_commit_batch_sizes().get(len(RUNTIMES)) == 1, "the writes were not one batch"
        assert len(seen) == 1
        for rt in RUNTIMES:
            assert "new" in {r.input_id for r in store.load_input_states(rt)}
        return seen[0]
    finally:
        store.close()


def test_a_batch_over_many_sessions_opens_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _files_during_a_batch(tmp_path / "s.db", monkeypatch) == []


def test_the_same_batch_in_one_savepoint_spills_its_undo_records_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario above is one where a savepoint would cost a file."""
    assert _files_during_a_batch(tmp_path / "s.db", monkeypatch, savepoint=True) != []
