"""A group-commit batch keeps its undo records in memory: no temporary file per transaction.

A batch of writes runs inside savepoints, so SQLite keeps the original of every page the batch
changes until its ``COMMIT`` (the statement journal). With SQLite's default ``temp_store`` that
journal moves to a temporary file once it passes 64 KiB, and a batch that writes to many
sessions' rows passes it: each such transaction created, wrote and deleted a file of page
copies, all thrown away at the commit. The store sets ``temp_store=MEMORY``; the same batch run
on connections set back to SQLite's default shows the file appearing."""

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


class _DefaultTempStore(SqliteRuntimeStore):
    """The protection switched off: connections back on SQLite's default ``temp_store``."""

    def _open_connection(self) -> sqlite3.Connection:
        conn = super()._open_connection()
        conn.execute("PRAGMA temp_store = DEFAULT")
        return conn


def _files_during_a_batch(
    path: Path, store_class: type[SqliteRuntimeStore], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Write one batch of one row per runtime over rows already stored, and list the
    temporary files open once the batch's writes ran, before its ``COMMIT``."""
    store = store_class(path, group_commit_max_batch=len(RUNTIMES), group_commit_max_wait_ms=1000)
    try:
        for n in range(12):  # existing pages: the batch changes pages of every runtime
            for rt in RUNTIMES:
                store.persist_input_state(rt, InputRow(f"old-{n:03d}", PAYLOAD))
        seen: list[list[str]] = []
        run_batch = sqlite_store._all_succeed

        def watched(conn: sqlite3.Connection, batch: list[PendingWrite]) -> bool:
            ok = run_batch(conn, batch)
            seen.append(_temporary_files())
            return ok

        monkeypatch.setattr(sqlite_store, "_all_succeed", watched)
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
    assert _files_during_a_batch(tmp_path / "s.db", SqliteRuntimeStore, monkeypatch) == []


def test_on_sqlites_default_the_same_batch_spills_its_undo_records_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario above is one that needs the protection."""
    assert _files_during_a_batch(tmp_path / "s.db", _DefaultTempStore, monkeypatch) != []


def test_every_connection_keeps_temporary_data_in_memory(tmp_path: Path) -> None:
    with SqliteRuntimeStore(tmp_path / "s.db") as store:
        assert store.settings()["temp_store"] == 2
