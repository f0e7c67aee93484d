"""``EventLog``: a JSON Lines event log, one file per runtime id, with rotation.

``EventLog(directory)`` subscribed to a bus appends each event as one line (its
:meth:`~meerkat_runtime.events.event.LifecycleEvent.to_dict` form) to
``<directory>/<runtime file name>.<source file name>.jsonl`` (:func:`file_stem`), one file per
runtime id and emitting machine (so several workers writing to one directory never share a
file). A runtime id ``rt:session:<id>`` whose session id holds only ``[A-Za-z0-9._-]`` is named
``rt_session_<id>``; any other runtime id (or one whose name would make the file name longer than
a file system allows, 255 bytes) is named by its readable part (unsafe characters replaced by
``_``, cut short) followed by ``~`` and a hash of the exact id, so distinct ids never share a
file. The runtime id and source are inside every line: ``meerkat-conformance check-trace`` reads
them from there, whatever the file is called. When a file would
grow beyond ``max_bytes`` it is closed and renamed ``... .jsonl.1`` (older ones shift to ``.2``,
``.3``, ...); at most ``max_files`` rotated files are kept per runtime (``None``: all of them,
which ``meerkat-conformance check-trace`` needs to check a whole history: it reports a runtime
whose first events were rotated away as incomplete, exit status 3).

Each line is written with one ``write`` call and flushed before the event's delivery returns;
``fsync`` every line with ``fsync=True`` (off by default: the event log is an observation, not
the source of truth). Thread-safe. :meth:`close` closes every file.

Open files are bounded: a session's file is closed once its ``unregister`` (or
``terminal_snapshot_failed``: both drop the session from memory) is written, and at most
``max_open`` files are kept open at once (the least recently written is closed first). A closed
file is reopened in append mode at its next event, so a session that comes back keeps writing
to the same file, after its earlier lines, and rotation goes by the file's size on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO

from meerkat_runtime.events.event import LifecycleEvent

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PLAIN_SESSION = re.compile(r"rt:session:[A-Za-z0-9._-]+")

STEM_BYTES = 236
"""The longest file stem: with ``.jsonl`` and a rotation suffix ``.N`` (up to 12 digits) the
file name stays within 255 bytes, the limit of common file systems."""

_SOURCE_BYTES = 80
"""The longest source part of a stem (an owner id may be long)."""

_HASH_CHARS = 16
"""Hex digits of the SHA-256 of the exact id that a shortened or altered name carries."""

_RELEASING_RULES = frozenset({"unregister", "terminal_snapshot_failed"})
"""Session rules after which the session is no longer in memory: its file is closed."""


def file_stem(runtime_id: str, source: str) -> str:
    """The file name (without ``.jsonl``) of ``runtime_id``'s events from ``source``: at most
    :data:`STEM_BYTES` ASCII bytes; distinct runtime ids get distinct names (module docstring).
    A plain name holds no ``~`` and an altered one always does, so the two never meet."""
    source_part = _UNSAFE.sub("_", source)
    if len(source_part) > _SOURCE_BYTES:  # sources differ by a random suffix: bounded, readable
        source_part = _hashed(source_part, source, _SOURCE_BYTES)
    room = STEM_BYTES - len(source_part) - 1
    if _PLAIN_SESSION.fullmatch(runtime_id) and len(runtime_id) <= room:
        runtime_part = "rt_session_" + runtime_id[len("rt:session:") :]
    else:
        runtime_part = _hashed(_UNSAFE.sub("_", runtime_id), runtime_id, room)
    return f"{runtime_part}.{source_part}"


def _hashed(readable: str, exact: str, limit: int) -> str:
    """``readable`` cut to fit ``limit`` with ``~`` and the hash of ``exact``."""
    digest = hashlib.sha256(exact.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{readable[: limit - _HASH_CHARS - 1]}~{digest}"


class EventLog:
    """A bus subscriber writing JSON Lines files (see the module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_files: int | None = None,
        fsync: bool = False,
        max_open: int = 64,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if max_files is not None and max_files < 0:
            raise ValueError(f"max_files must be >= 0 or None, got {max_files}")
        if max_open < 1:
            raise ValueError(f"max_open must be positive, got {max_open}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.fsync = fsync
        self.max_open = max_open
        self._lock = threading.Lock()
        self._files: OrderedDict[str, tuple[IO[bytes], int]] = OrderedDict()
        """Open files by file stem, least recently written first, with each file's size."""

    @property
    def open_files(self) -> int:
        """How many files are open now (at most ``max_open``)."""
        with self._lock:
            return len(self._files)

    def path(self, runtime_id: str, source: str) -> Path:
        """The current file of ``runtime_id``'s events from ``source``."""
        return self.directory / f"{file_stem(runtime_id, source)}.jsonl"

    def __call__(self, event: LifecycleEvent) -> None:
        line = (event.to_json() + "\n").encode("utf-8")
        key = file_stem(event.runtime_id, event.source)
        with self._lock:
            handle, size = self._open(key)
            if size and size + len(line) > self.max_bytes:
                del self._files[key]
                handle.close()
                self._rotate(key)
                handle, size = self._open(key)
            handle.write(line)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
            if event.machine == "session" and event.rule in _RELEASING_RULES:
                del self._files[key]
                handle.close()
            else:
                self._files[key] = (handle, size + len(line))

    def _open(self, key: str) -> tuple[IO[bytes], int]:
        """The open file of ``key`` (most recently used from now on), opened in append mode if
        it is not open; the least recently written files are closed to keep at most
        ``max_open`` open."""
        opened = self._files.get(key)
        if opened is not None:
            self._files.move_to_end(key)
            return opened
        while len(self._files) >= self.max_open:
            _, (oldest, _) = self._files.popitem(last=False)
            oldest.close()
        path = self.directory / f"{key}.jsonl"
        handle = open(path, "ab")  # noqa: SIM115 - kept open across calls, closed by close()
        opened = (handle, handle.seek(0, os.SEEK_END))
        self._files[key] = opened
        return opened

    def _rotate(self, key: str) -> None:
        base = self.directory / f"{key}.jsonl"
        rotated = sorted(
            (int(p.name.rsplit(".", 1)[1]) for p in self.directory.glob(f"{key}.jsonl.*") if p.suffix[1:].isdigit()),
            reverse=True,
        )
        for n in rotated:
            if self.max_files is not None and n >= self.max_files:
                (self.directory / f"{key}.jsonl.{n}").unlink()
            else:
                os.replace(self.directory / f"{key}.jsonl.{n}", self.directory / f"{key}.jsonl.{n + 1}")
        if self.max_files == 0:
            base.unlink()
        else:
            os.replace(base, self.directory / f"{key}.jsonl.1")

    def close(self) -> None:
        with self._lock:
            for handle, _ in self._files.values():
                handle.close()
            self._files.clear()
