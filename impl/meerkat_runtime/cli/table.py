"""Plain-text tables and times for the ``meerkat-runtime`` commands."""

from __future__ import annotations

import datetime
from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is not padded."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def when(seconds: float | None) -> str:
    """A store time (seconds since the epoch) in UTC, to the second; ``-`` for none."""
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def clip(text: str, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def id_cell(text: str) -> str:
    """An id as a table cell or a list shows it: as it is, or its ``repr`` when it holds a
    character that would break the line (a session an earlier release registered under an id
    with a control character, such as a newline)."""
    return text if text.isprintable() else repr(text)
