"""SQLite's own page-level check, run when a store opens a file.

``"quick"`` runs ``PRAGMA quick_check`` (every page and b-tree is well formed; O(file size)),
``"full"`` runs ``PRAGMA integrity_check`` (also that every index matches its table; slower),
``"off"`` runs nothing. A file that fails is refused with ``Corrupt`` naming SQLite's findings
and, where SQLite names a page, the table or index that page belongs to.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Literal

from meerkat_runtime.vocab.errors import Corrupt

IntegrityCheck = Literal["quick", "full", "off"]
INTEGRITY_CHECKS: tuple[IntegrityCheck, ...] = ("quick", "full", "off")
MAX_FINDINGS = 20
"""How many findings SQLite is asked for (and an error quotes)."""

_PAGE = re.compile(r"\b(?:[Pp]age|Tree) (\d+)")


def findings(conn: sqlite3.Connection, mode: IntegrityCheck) -> list[str]:
    """SQLite's findings (empty when the file is sound or ``mode`` is ``"off"``)."""
    if mode == "off":
        return []
    pragma = "quick_check" if mode == "quick" else "integrity_check"
    rows = conn.execute(f"PRAGMA {pragma}({MAX_FINDINGS})").fetchall()
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else [line for text in found for line in text.splitlines() if line.strip()]


def _owners(conn: sqlite3.Connection, pages: set[int]) -> dict[int, str]:
    """Which table or index each page belongs to, where SQLite can still say (``dbstat``)."""
    if not pages:
        return {}
    marks = ",".join("?" * len(pages))
    try:
        rows = conn.execute(f"SELECT pageno, name FROM dbstat WHERE pageno IN ({marks})", sorted(pages)).fetchall()
    except sqlite3.Error:
        try:
            rows = conn.execute(
                f"SELECT rootpage, name FROM sqlite_master WHERE rootpage IN ({marks})", sorted(pages)
            ).fetchall()
        except sqlite3.Error:
            return {}
    return {int(page): str(name) for page, name in rows}


def describe(conn: sqlite3.Connection, found: list[str]) -> str:
    """The findings, each page named with its table or index where known."""
    pages = {int(m) for line in found for m in _PAGE.findall(line)}
    owners = _owners(conn, pages)

    def named(line: str) -> str:
        return _PAGE.sub(
            lambda m: f"{m.group(0)} ({owners[int(m.group(1))]})" if int(m.group(1)) in owners else m.group(0), line
        )

    lines = [named(line) for line in found if not line.startswith("*** in database")]
    return "; ".join(lines)


def check_integrity(conn: sqlite3.Connection, mode: IntegrityCheck, scope: str) -> None:
    """Raise ``Corrupt`` (runtime id ``scope``) if SQLite's check of ``mode`` finds anything."""
    found = findings(conn, mode)
    if found:
        pragma = "quick_check" if mode == "quick" else "integrity_check"
        raise Corrupt(scope, f"the database file failed PRAGMA {pragma}: {describe(conn, found)}")
