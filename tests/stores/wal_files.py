"""Real write-ahead logs for the log-check tests: a store writes rows, its files are copied
while it is still open (as a crash would leave them: database, ``-wal``, ``-shm``), then
closed. Helpers to damage a copy and to walk its frames."""

from __future__ import annotations

import shutil
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_wal import FRAME_HEADER_BYTES, WAL_HEADER_BYTES

RT = "rt:store-test:wal"
"""Not a session id: the rows are plain bytes, not session input rows."""
SUFFIXES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class LogSet:
    """A copied file set and the rows its writer acknowledged (one commit each)."""

    db: Path
    rows: int

    @property
    def wal(self) -> Path:
        return self.db.with_name(self.db.name + "-wal")

    @property
    def shm(self) -> Path:
        return self.db.with_name(self.db.name + "-shm")

    def frame_offset(self, frame: int) -> int:
        return WAL_HEADER_BYTES + (frame - 1) * (FRAME_HEADER_BYTES + 4096)

    def frames(self) -> list[tuple[int, int]]:
        """``(page number, commit size)`` of every complete frame."""
        data = self.wal.read_bytes()
        size = FRAME_HEADER_BYTES + 4096
        return [
            struct.unpack_from(">2I", data, offset) for offset in range(WAL_HEADER_BYTES, len(data) - size + 1, size)
        ]

    def commit_frames(self) -> list[int]:
        return [n for n, (_, commit) in enumerate(self.frames(), start=1) if commit]


def row(n: int) -> InputRow:
    return InputRow(f"in-{n:04d}", f"payload {n} ".encode() * 20)


def write_log_set(directory: Path, rows: int, *, name: str = "set", before_copy: int = 0) -> LogSet:
    """A store that commits ``rows`` rows (one per commit), copied while open into
    ``directory/name``. With ``before_copy``, the log is checkpointed after that many commits,
    so the later ones overwrite it from its start (a new generation over the old frames)."""
    source = directory / f"{name}-source" / "s.db"
    store = SqliteRuntimeStore(source)
    try:
        for n in range(rows):
            store.persist_input_state(RT, row(n))
            if n + 1 == before_copy:
                raw = sqlite3.connect(source, isolation_level=None)
                raw.execute("PRAGMA wal_checkpoint(RESTART)")  # the next commit starts a new log generation
                raw.close()
        target = directory / name
        target.mkdir(parents=True, exist_ok=True)
        for suffix in SUFFIXES:
            shutil.copyfile(f"{source}{suffix}", target / f"s.db{suffix}")
    finally:
        store.close()
    return LogSet(target / "s.db", rows)


def copy_set(log: LogSet, directory: Path, name: str) -> LogSet:
    target = directory / name
    target.mkdir(parents=True, exist_ok=True)
    for suffix in SUFFIXES:
        source = Path(f"{log.db}{suffix}")
        if source.exists():
            shutil.copyfile(source, target / f"s.db{suffix}")
    return LogSet(target / "s.db", log.rows)


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def cut(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
