"""Switching an SQLite file to write-ahead logging while other processes open it too.

On a file still in rollback mode (a new file), ``PRAGMA journal_mode = WAL`` needs the file's
exclusive lock. When another connection holds the write lock, SQLite answers ``SQLITE_BUSY`` at
once, without calling its busy handler (waiting could deadlock; see ``sqlite3_busy_handler``), so
the busy timeout does not apply: of two workers started together on a new file, one converted it
and the other failed to open. :func:`enter_wal` retries the switch until the busy timeout has
passed. On a file already in WAL mode the pragma changes nothing and needs no such lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

SQLITE_BUSY = 5
"""SQLite's primary result code for a lock another connection holds."""

FIRST_PAUSE_S = 0.001
LONGEST_PAUSE_S = 0.05


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite gave up on a lock another connection holds (``SQLITE_BUSY``, any extended
    code: "database is locked")."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == SQLITE_BUSY


def enter_wal(
    conn: sqlite3.Connection,
    busy_timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Set ``conn``'s file to WAL mode and return the journal mode SQLite reports. A busy answer
    is retried (pauses from 1 ms doubling to 50 ms) until ``busy_timeout_s`` has passed since the
    first try; then, and for any other error, the ``sqlite3.Error`` is raised."""
    deadline = clock() + busy_timeout_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            left = deadline - clock()
            if not is_busy(exc) or left <= 0:
                raise
        sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_PAUSE_S)
