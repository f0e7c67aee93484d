"""Opening an SQLite database without writing anything: not the database, not its log, not
its wal-index, not even creating a missing ``-wal`` or ``-shm`` file.

SQLite needs a wal-index to read a write-ahead log, and creates the missing files even for a
read-only connection, so the way in depends on what exists (see :func:`read_only_target`):

* no ``-wal`` (or an empty one): the database file holds every commit; it is opened
  ``immutable`` (no locks, no log, nothing created);
* a ``-wal`` and a ``-shm``: opened ``mode=ro`` with ``readonly_shm=1``; SQLite maps the
  wal-index read-only (the live one of a running writer, or its own private copy in memory
  when no process has the database open) and reads the log;
* a ``-wal`` without a ``-shm``: the database and its log are copied into a private temporary
  folder and the copy is opened (the copy is removed when the store closes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from meerkat_runtime.store.sqlite_files import shm_path, wal_path


@dataclass(frozen=True, slots=True)
class ReadOnlyTarget:
    """What a read-only connection opens: ``uri`` (for ``sqlite3.connect(uri, uri=True)``)
    and the private copy folder to remove afterwards, if one was made."""

    uri: str
    copy_dir: str | None = None
    how: str = ""
    """``"immutable"``, ``"readonly_shm"`` or ``"copy"``."""


def _uri(path: str, query: str) -> str:
    return f"{Path(path).resolve().as_uri()}?{query}"


def read_only_target(path: str) -> ReadOnlyTarget:
    """How to open ``path`` read-only (copying it first if it must)."""
    wal = wal_path(path)
    has_wal = os.path.exists(wal) and os.path.getsize(wal) > 0
    if not has_wal:
        return ReadOnlyTarget(_uri(path, "immutable=1"), how="immutable")
    if os.path.exists(shm_path(path)):
        return ReadOnlyTarget(_uri(path, "mode=ro&readonly_shm=1"), how="readonly_shm")
    folder = tempfile.mkdtemp(prefix="meerkat-readonly-")
    try:
        copy = os.path.join(folder, os.path.basename(path))
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, wal_path(copy))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ReadOnlyTarget(_uri(copy, "mode=ro"), folder, how="copy")


def discard(target: ReadOnlyTarget) -> None:
    """Remove the private copy of ``target``, if it has one."""
    if target.copy_dir is not None:
        shutil.rmtree(target.copy_dir, ignore_errors=True)
