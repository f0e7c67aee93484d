"""Reading event logs: JSON Lines files written by ``meerkat_runtime.events.jsonl.EventLog``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from meerkat_runtime.events.event import LifecycleEvent


@dataclass(frozen=True, slots=True)
class Located:
    """An event and where it was read: ``file:line``."""

    event: LifecycleEvent
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


class TraceFormatError(ValueError):
    """A line that is not an event; the message names the file, the line and the field."""


class NoEventFiles(ValueError):
    """A directory argument holds no event log file (nothing would be checked)."""


@dataclass(slots=True)
class Read:
    """What :func:`read_log` found: the events in file order, the files read, and notes on what
    was read but not checked (a torn last line)."""

    events: list[Located] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_events(paths: list[Path]) -> list[Located]:
    """Every event of ``paths`` in file order (see :func:`read_log`)."""
    return read_log(paths).events


def read_log(paths: list[Path]) -> Read:
    """Every event of ``paths`` in file order (:func:`expand`). Blank lines are skipped. A line
    that is not an event raises :class:`TraceFormatError`, except the last line of a file when it
    does not end with a newline: the writer ends every line with one, so that line is one a crash
    cut short while it was written; it is left out and named in ``notes``."""
    out = Read(files=expand(paths))
    for path in out.files:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                doc = json.loads(text)
                if not isinstance(doc, dict):
                    raise ValueError("a line must be a JSON object")
                event = LifecycleEvent.from_dict(doc)
            except ValueError as exc:
                if number == len(lines) and not text.endswith("\n"):
                    out.notes.append(
                        f"{path}:{number}: the last line is cut short (no newline at its end: a crash while it "
                        f"was written); not checked ({exc})"
                    )
                    continue
                raise TraceFormatError(f"{path}:{number}: not an event: {exc}") from None
            out.events.append(Located(event, str(path), number))
    return out


def expand(paths: list[Path]) -> list[Path]:
    """Files to read: each file given, and a directory's ``*.jsonl`` files and their rotated
    ``*.jsonl.N`` predecessors (its subdirectories are not read). Every file is read once, the
    files of a rotated set oldest first (``x.jsonl.2``, ``x.jsonl.1``, ``x.jsonl``) whatever the
    order they were given in. :class:`NoEventFiles` for a directory without such a file."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.iterdir() if p.is_file() and _is_log(p)]
            if not found:
                folders = sorted(str(p) for p in path.iterdir() if p.is_dir())
                sub = f" (subdirectories are not read; name them: {' '.join(folders)})" if folders else ""
                raise NoEventFiles(f"no event log files (*.jsonl, *.jsonl.N) in {path}{sub}")
            files.extend(found)
        else:
            files.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    by_name = {p.resolve(): p for p in files}
    return [by_name[p] for p in sorted(unique, key=_rotation_order)]


def _is_log(path: Path) -> bool:
    _, dot, suffix = path.name.rpartition(".jsonl")
    return bool(dot) and (suffix == "" or (suffix[:1] == "." and suffix[1:].isdigit()))


def _rotation_order(path: Path) -> tuple[str, str, int]:
    """``x.jsonl.3`` before ``x.jsonl.2`` before ``x.jsonl.1`` before ``x.jsonl``."""
    stem, dot, suffix = path.name.rpartition(".jsonl")
    if not dot:
        return str(path.parent), path.name, 0
    rotation = int(suffix[1:]) if suffix[1:].isdigit() else 0
    return str(path.parent), stem, -rotation
