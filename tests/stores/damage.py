"""Damaging a stored row by hand, as a bad disk or a stray write would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meerkat_runtime.store.tables import INPUTS


def write_sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    """Run ``statement`` on the SQLite file at ``path`` on a connection of its own, in autocommit
    (beside any store, as a stray write would)."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute(statement, params)
    finally:
        raw.close()


def damage_payload(path: Path, runtime_id: str, input_id: str) -> None:
    """Append one byte to the stored payload of ``input_id`` in the SQLite file at ``path``,
    leaving its checksum as it was (so the row no longer matches it)."""
    write_sql(
        path,
        f"UPDATE {INPUTS} SET payload = CAST(payload || x'00' AS BLOB) WHERE runtime_id = ? AND input_id = ?",
        (runtime_id, input_id),
    )
