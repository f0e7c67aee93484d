"""The path an SQLite store opens, checked (and its folder created) at construction.

Refused with ``InvalidSetting`` naming the path and the reason: a value that is not a path, an
empty path (SQLite would open a private temporary database that vanishes on close, losing
every "durable" write), a path with a NUL character, a folder or another non-regular file, a
path under a regular file, and a folder that cannot be created. ``":memory:"`` is the in-memory
database.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from meerkat_runtime.vocab.errors import InvalidSetting

MEMORY = ":memory:"


def checked_path(path: object, *, create_folder: bool = True) -> str:
    """``path`` as a string, its parent folder created (unless ``create_folder`` is false);
    ``InvalidSetting`` if it is unusable."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidSetting(f"path must be a string or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidSetting(f"path must be a text path, got {text!r}")
    if text == MEMORY:
        return text
    if not text:
        raise InvalidSetting(
            "path must not be empty: SQLite would open a temporary database that vanishes on close; "
            "use ':memory:' for an in-memory store"
        )
    if "\x00" in text:
        raise InvalidSetting(f"path {text!r} contains a NUL character")
    try:
        mode = os.stat(text).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        raise InvalidSetting(f"path {text!r} is unusable: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise InvalidSetting(f"path {text!r} is {what}; give the path of a database file")
    parent = Path(text).parent
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise InvalidSetting(f"path {text!r} is unusable: {str(ancestor)!r} is a regular file, not a folder")
    if not create_folder:
        return text
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidSetting(f"path {text!r} is unusable: cannot create folder {str(parent)!r}: {exc}") from None
    return text


_SQLITE_READONLY = 8
"""SQLite's primary result code for a write to a file it opened read-only (the low byte of
the extended codes ``SQLITE_READONLY_DIRECTORY`` and the like)."""


def _can_write(path: str) -> bool:
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def _refusal(path: str, detail: str) -> str:
    return f"cannot open {path!r} for writing: permission denied ({detail}; open it with read_only=True to read it)"


def unwritable_reason(path: str) -> str | None:
    """Why this process cannot open the database file at ``path`` for writing, or ``None``.

    SQLite opens a file it may not write read-only without saying so: every write would then
    fail later, and in a writable folder it would leave ``-wal`` and ``-shm`` files behind. A
    store opened for writing also needs its folder writable to create those two files (unless
    both exist and are writable) and, for a new file, the file itself.
    """
    folder = os.path.dirname(path) or "."
    if not os.path.exists(path):
        if _can_write(folder):
            return None
        return f"cannot create {path!r}: permission denied (its folder {folder!r} is read-only)"
    if not _can_write(path):
        return _refusal(path, "the file is read-only")
    companions = (path + "-wal", path + "-shm")
    if all(os.path.exists(name) and _can_write(name) for name in companions) or _can_write(folder):
        return None
    return _refusal(path, f"its folder {folder!r} is read-only, so SQLite cannot create its -wal and -shm files")


def read_only_refusal(path: str, exc: BaseException | None) -> str | None:
    """The message for a file SQLite refused to write (``exc``, an ``SQLITE_READONLY`` error
    met while the store opened it for writing), or ``None`` for any other failure."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int) or code & 0xFF != _SQLITE_READONLY:
        return None
    return _refusal(path, "the file or its folder is read-only")
