"""Plain-text tables and times for the ``meerkat-runtime`` commands."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Sequence

from meerkat_runtime.vocab.ids import unambiguous


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
    """An id as a table cell or a list shows it: as it is, or quoted when it would be mistaken
    for another (a session an earlier release registered under an id the rules of new ids
    refuse): its ``repr`` when it holds a character that would break the line (a control
    character, such as a newline) or has whitespace at either end (``' x'``, ``'x '``), and its
    ``ascii`` form when it is not in Unicode NFC form (``'e\\u0301'``, beside ``é``)."""
    if unambiguous(text):
        return text
    if text.isprintable() and not unicodedata.is_normalized("NFC", text):
        return ascii(text)
    return repr(text)
