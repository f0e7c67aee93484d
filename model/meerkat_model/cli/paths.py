"""Checks that an output path can be written, made before a command starts its long work.

Each raises :class:`~meerkat_model.cli.usage.UsageError` naming the option and what is wrong:
a missing folder, a regular file where a folder is needed (or the reverse), no write permission.
"""

from __future__ import annotations

import os
from pathlib import Path

from meerkat_model.cli.usage import UsageError


def _nearest_existing(path: Path) -> Path:
    current = path
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def check_output_file(path: Path, option: str) -> None:
    """``path`` can be created or overwritten as a regular file; its folder must already exist."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, not a file")
    folder = path.parent
    if not folder.is_dir():
        existing = _nearest_existing(folder)
        if existing.exists() and not existing.is_dir():
            raise UsageError(f"{option} {path}: {existing} is a file, not a directory")
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file is not writable")
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")


def check_output_dir(path: Path, option: str) -> None:
    """``path`` is a directory, or can be created (with its missing parents) and written into."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, not a directory")
    existing = _nearest_existing(path)
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a directory")
    if not existing.exists():
        raise UsageError(f"{option} {path}: {existing} is a broken link")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")


def check_input_dir(path: Path, option: str) -> None:
    """``path`` is an existing directory (to be read, e.g. compared with what would be written)."""
    if path.is_dir():
        return
    if path.exists():
        raise UsageError(f"{option} {path}: is a file, not a directory")
    existing = _nearest_existing(path)
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a directory")
    raise UsageError(f"{option} {path}: no such directory")
