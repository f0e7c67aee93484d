"""A store opened for writing on a file this process may not write (the file read-only, or its
folder, where SQLite creates the ``-wal`` and ``-shm`` files) is refused at construction with
an ``InvalidSetting`` naming the path and the cause; nothing is left open or created."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.store import sqlite_paths
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting

READ_ONLY_DIRECTORY = 1544  # SQLITE_READONLY_DIRECTORY
ADVICE = "open it with read_only=True to read it"


def _store_file(folder: Path) -> Path:
    path = folder / "runtime.sqlite"
    SqliteRuntimeStore(path).close()
    return path


class _ReadOnlyFile(sqlite3.Connection):
    """A connection that fails as SQLite does on a file it opened read-only (a process that
    may not write the file or its folder): the first write, switching the log to WAL."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA journal_mode"):
            error = sqlite3.OperationalError("attempt to write a readonly database")
            error.sqlite_errorcode = READ_ONLY_DIRECTORY  # type: ignore[attr-defined]
            raise error
        return super().execute(sql, *args)


def test_sqlite_refusing_to_write_names_the_path_and_closes_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _store_file(tmp_path)
    before = sorted(os.listdir(tmp_path))
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def read_only_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, factory=_ReadOnlyFile, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", read_only_connect)
    with pytest.raises(InvalidSetting) as caught:
        SqliteRuntimeStore(path)
    message = str(caught.value)
    assert message == (
        f"cannot open {str(path)!r} for writing: permission denied (the file or its folder is read-only; {ADVICE})"
    )
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert opened, "the store never connected"
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    assert sorted(os.listdir(tmp_path)) == before
    # The file itself can still be opened, read-only or not, once SQLite may write it.
    monkeypatch.undo()
    SqliteRuntimeStore(path, read_only=True).close()
    SqliteRuntimeStore(path).close()


def test_a_file_the_process_may_not_write_is_refused_before_sqlite_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _store_file(tmp_path)
    before = sorted(os.listdir(tmp_path))
    monkeypatch.setattr(sqlite_paths, "_can_write", lambda name: name != str(path))
    with pytest.raises(InvalidSetting) as caught:
        SqliteRuntimeStore(path)
    assert str(caught.value) == (
        f"cannot open {str(path)!r} for writing: permission denied (the file is read-only; {ADVICE})"
    )
    assert sorted(os.listdir(tmp_path)) == before
    store = SqliteRuntimeStore(path, read_only=True)
    store.close()


NOBODY = 65534
"""The unprivileged user the test runs as when the tests run as root (file permissions do not
bind root)."""


def _read_only_refusals(folder: Path) -> None:
    """A read-only file, a read-only folder and a file a read-only folder cannot hold are each
    refused with the cause, nothing created; read-only opening still works."""
    path = _store_file(folder)
    try:
        os.chmod(path, 0o444)
        with pytest.raises(InvalidSetting, match=r"permission denied \(the file is read-only; open it with read_only"):
            SqliteRuntimeStore(path)
        assert sorted(os.listdir(folder)) == ["runtime.sqlite"]
        os.chmod(path, 0o644)
        os.chmod(folder, 0o555)
        with pytest.raises(InvalidSetting) as caught:
            SqliteRuntimeStore(path)
        assert str(folder) in str(caught.value)
        assert "is read-only, so SQLite cannot create its -wal and -shm files" in str(caught.value)
        with pytest.raises(InvalidSetting, match=r"cannot create .*new\.sqlite.*permission denied"):
            SqliteRuntimeStore(folder / "new.sqlite")
        assert sorted(os.listdir(folder)) == ["runtime.sqlite"]
        SqliteRuntimeStore(path, read_only=True).close()
    finally:
        os.chmod(folder, 0o755)
        os.chmod(path, 0o644)


def test_read_only_files_and_folders_are_refused_with_the_cause(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        folder = tmp_path / "stores"
        folder.mkdir()
        _read_only_refusals(folder)
        return
    # As root: a forked child drops to an unprivileged user, in a folder that user owns (the
    # pytest folders are root's, mode 0700).
    folder = Path(tempfile.mkdtemp(prefix="meerkat-unwritable-"))
    try:
        os.chown(folder, NOBODY, NOBODY)
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            status = 1
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                _read_only_refusals(folder)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        _, waited = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(waited) == 0, "the unprivileged child's checks failed (its traceback is above)"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
