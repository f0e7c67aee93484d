"""Reading event logs: JSON Lines files written by ``meerkat_runtime.events.jsonl.EventLog``."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def read_events(paths: list[Path]) -> list[Located]:
    """Every event of ``paths`` in file order (files in the order given); a directory stands for
    every ``*.jsonl*`` file in it, sorted. Blank lines are skipped."""
    out: list[Located] = []
    for path in expand(paths):
        with open(path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    doc = json.loads(text)
                    if not isinstance(doc, dict):
                        raise ValueError("a line must be a JSON object")
                    event = LifecycleEvent.from_dict(doc)
                except ValueError as exc:
                    raise TraceFormatError(f"{path}:{number}: not an event: {exc}") from None
                out.append(Located(event, str(path), number))
    return out


def expand(paths: list[Path]) -> list[Path]:
    """Files to read: each file as given; a directory's ``*.jsonl`` files and their rotated
    ``*.jsonl.N`` predecessors, oldest first."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.iterdir() if p.is_file() and ".jsonl" in p.name]
            files.extend(sorted(found, key=_rotation_order))
        else:
            files.append(path)
    return files


def _rotation_order(path: Path) -> tuple[str, int]:
    """``x.jsonl.3`` before ``x.jsonl.2`` before ``x.jsonl.1`` before ``x.jsonl``."""
    name = path.name
    stem, _, suffix = name.rpartition(".jsonl")
    rotation = int(suffix[1:]) if suffix[1:].isdigit() else 0
    return stem, -rotation
