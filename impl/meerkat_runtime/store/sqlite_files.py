"""The files of one SQLite database as the store sees them before it opens them.

:func:`read_file_set` reads the ``-wal`` and ``-shm`` files and the database's page size, but
only while **no other process has the database open** (then the log may be changing under the
reader, and SQLite will not run its own log recovery for this process anyway). It tells by
taking, for the duration of the read, the write lock SQLite's wal-index uses as its "in use"
switch (byte 128 of the ``-shm`` file, see SQLite's ``os_unix.c``): every process with the
database open holds a read lock there, and a process that opens it meanwhile waits for the lock
like for any other busy lock. POSIX only (``fcntl``); elsewhere nothing is read.

POSIX locks belong to the process and closing any descriptor of a file drops all of them, so
these files must not be opened while a connection of *this* process has the database open:
:class:`OpenFiles` counts the stores of this process per database file, and a store reads the
files only when it is the first (:meth:`OpenFiles.enter`). Open the store before opening other
connections to the same file in the same process (or turn the log check off).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

IN_USE_BYTE = 128
"""The wal-index byte every process with the database open holds a read lock on."""

DB_HEADER_BYTES = 100


@dataclass(frozen=True, slots=True)
class FileSet:
    """What :func:`read_file_set` found. ``in_use``: another process has the database open (the
    other fields are then unset); ``supported``: the platform lets us tell."""

    wal: bytes | None = None
    shm: bytes | None = None
    db_page_size: int | None = None
    in_use: bool = False
    supported: bool = True


def wal_path(path: str) -> str:
    return path + "-wal"


def shm_path(path: str) -> str:
    return path + "-shm"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _page_size(path: str) -> int | None:
    """The page size in the database header (bytes 16-17, big-endian; 1 means 65536)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(DB_HEADER_BYTES)
    except FileNotFoundError:
        return None
    if len(header) < DB_HEADER_BYTES or not header.startswith(b"SQLite format 3\x00"):
        return None
    size = int.from_bytes(header[16:18], "big")
    return 65536 if size == 1 else size


def read_file_set(path: str) -> FileSet:
    """The ``-wal``, ``-shm`` and page size of the database at ``path``, read while holding the
    wal-index's in-use lock; ``FileSet(in_use=True)`` if another process has it open."""
    if fcntl is None:
        return FileSet(supported=False)
    try:
        fd = os.open(shm_path(path), os.O_RDWR)
    except FileNotFoundError:
        fd = -1  # no wal-index: no process has the database open in WAL mode
    except OSError:
        return FileSet(supported=False)  # e.g. no write permission: the lock cannot be taken
    if fd < 0:
        return FileSet(_read(wal_path(path)), None, _page_size(path))
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, IN_USE_BYTE)
        except OSError:
            return FileSet(in_use=True)
        try:
            shm = os.pread(fd, os.fstat(fd).st_size, 0)
            return FileSet(_read(wal_path(path)), shm, _page_size(path))
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, IN_USE_BYTE)
    finally:
        os.close(fd)


class OpenFiles:
    """How many stores of this process have each database file open (by real path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def enter(self, path: str, first: Callable[[], None]) -> str:
        """Count one more store on ``path``; if it is the first, call ``first()`` before counting
        it (an exception from ``first`` leaves nothing counted). Returns the key for :meth:`leave`."""
        key = os.path.realpath(path)
        with self._lock:
            if not self._count.get(key):
                first()
            self._count[key] = self._count.get(key, 0) + 1
        return key

    def leave(self, key: str) -> None:
        with self._lock:
            left = self._count.get(key, 0) - 1
            if left > 0:
                self._count[key] = left
            else:
                self._count.pop(key, None)

    def count(self, path: str) -> int:
        with self._lock:
            return self._count.get(os.path.realpath(path), 0)


OPEN_FILES = OpenFiles()
"""The stores of this process, per database file."""


def _after_fork_in_child() -> None:
    """A forked child keeps the counts (its inherited connections still point at the files) but
    gets a fresh lock: another thread of the parent may have held it at the fork."""
    OPEN_FILES._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
