"""Another process holding an SQLite file's write lock: a child that runs ``BEGIN IMMEDIATE``
(and optionally writes a row inside it) and keeps its transaction open until told to end it.
The stand-in for a worker frozen inside a write transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

_HOLD = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"
    "conn.execute('ROLLBACK')\n"
    "conn.close()\n"
)


class WriteLockHolder:
    """A child process that holds ``path``'s write lock from entering the context until
    :meth:`release` (or leaving the context). Nothing it does is ever committed."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.child: subprocess.Popen[str] | None = None

    def __enter__(self) -> WriteLockHolder:
        self.child = subprocess.Popen(
            [sys.executable, "-c", _HOLD, self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        line = self.child.stdout.readline().strip()
        if line != "locked":
            self.release()
            raise AssertionError(f"the child did not take the write lock: {line!r}")
        return self

    def release(self) -> None:
        """End the child's transaction (rolled back) and wait for it to exit."""
        child, self.child = self.child, None
        if child is None:
            return
        assert child.stdin is not None
        try:
            child.stdin.write("\n")
            child.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
