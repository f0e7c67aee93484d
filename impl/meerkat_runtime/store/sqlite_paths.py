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
