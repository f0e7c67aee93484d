"""The high-water mark in SQLite: read, advance and count, inside the caller's transaction.

One row per runtime in ``runtime_high_water`` holding the counters of
:class:`~meerkat_runtime.store.high_water.HighWater` and a checksum over them, bound to the
runtime id like every row (a damaged mark is ``Corrupt``). A write advances it with one read
(primary-key lookup) and one upsert, after the write's own statements — or, when the row is the
one this process last wrote or verified for the runtime, with a single compare-and-set
``UPDATE`` whose ``WHERE`` names every counter and the checksum of that row: it changes the row
only if it still holds exactly those values (so its checksum is known to match), and a row that
differs (another process wrote, damage, a rolled-back write) falls back to the read and upsert.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import cast

from meerkat_runtime.store.high_water import (
    HIGH_WATER_FIELDS,
    HighWater,
    MarkStep,
    advance,
    advance_counters,
    counters_payload,
)
from meerkat_runtime.store.integrity import checksum_prefix, row_checksum, verified_payload
from meerkat_runtime.store.tables import HIGH_WATER, INPUTS
from meerkat_runtime.vocab.errors import Corrupt

_COLUMNS = ", ".join(HIGH_WATER_FIELDS)
_SELECT = f"SELECT {_COLUMNS}, checksum FROM {HIGH_WATER} WHERE runtime_id = ?"
_UPSERT = (
    f"INSERT INTO {HIGH_WATER} (runtime_id, {_COLUMNS}, checksum) "
    f"VALUES (?, {', '.join('?' * len(HIGH_WATER_FIELDS))}, ?) ON CONFLICT (runtime_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in (*HIGH_WATER_FIELDS, "checksum"))
)
_ADVANCE_IF_UNCHANGED = (
    f"UPDATE {HIGH_WATER} SET "
    + ", ".join(f"{name} = ?" for name in (*HIGH_WATER_FIELDS, "checksum"))
    + " WHERE runtime_id = ? AND "
    + " AND ".join(f"{name} = ?" for name in (*HIGH_WATER_FIELDS, "checksum"))
)
"""Replace a mark row that holds exactly the given counters and checksum (a compare-and-set);
the counters are INTEGER and the checksum TEXT, so a value of another type never compares equal."""
_IDS_PER_QUERY = 500
_CHECKED_LIMIT = 4096


def stored_mark(conn: sqlite3.Connection, runtime_id: str) -> HighWater | None:
    """The runtime's mark (checksum verified), or ``None``; ``Corrupt`` if it is damaged."""
    found = conn.execute(_SELECT, (runtime_id,)).fetchone()
    if found is None:
        return None
    *counters, checksum = found
    try:
        mark = HighWater.from_counters(runtime_id, tuple(counters))
    except ValueError as exc:
        raise Corrupt(runtime_id, f"row {HIGH_WATER}[{runtime_id}] is malformed: {exc}") from None
    verified_payload(HIGH_WATER, runtime_id, "", mark.payload(), checksum)
    return mark


def mark_checksum(mark: HighWater) -> str:
    """The checksum stored beside ``mark``'s counters (bound to its runtime id)."""
    return _counters_checksum(mark.runtime_id, mark.counters())


def _counters_checksum(runtime_id: str, counters: tuple[int, ...]) -> str:
    return row_checksum(HIGH_WATER, runtime_id, "", counters_payload(counters))


_COUNTERS_TEXT = ",".join(["%d"] * len(HIGH_WATER_FIELDS)).encode()
"""The stored form of a mark's counters as one formatting: for integers (never a bool) the bytes
:func:`~meerkat_runtime.store.high_water.counters_payload` builds, at a third of its cost."""
_keyless: dict[str, hashlib.blake2b] = {}
"""Per runtime id, the digest state of a mark row's checksum before its counters (the table
name, the runtime id and the empty row key): copied, never updated."""


def _advanced_checksum(runtime_id: str, counters: tuple[int, ...]) -> str:
    """:func:`_counters_checksum` of counters :func:`advance_counters` returned (integers, never
    bools: the same text), for the write path."""
    prefix = _keyless.get(runtime_id)
    if prefix is None:
        prefix = checksum_prefix(HIGH_WATER, runtime_id)
        prefix.update(bytes(8))  # the empty row key: its length (0, 8 bytes big-endian), no text
        if len(_keyless) >= _CHECKED_LIMIT:
            _keyless.clear()
        _keyless[runtime_id] = prefix
    h = prefix.copy()
    h.update(_COUNTERS_TEXT % counters)
    return h.hexdigest()


def store_mark(conn: sqlite3.Connection, mark: HighWater) -> str:
    """Write ``mark`` with its checksum in the caller's transaction; returns the checksum."""
    checksum = mark_checksum(mark)
    conn.execute(_UPSERT, (mark.runtime_id, *mark.counters(), checksum))
    return checksum


_ALL_INT = (int,) * len(HIGH_WATER_FIELDS)
_CHECKED_LIMIT = 4096
_checked: dict[str, tuple[object, ...]] = {}
"""Per runtime id, the last mark row (counters and checksum) this process wrote or verified: a
stored row equal to it (same values, all integers) has a matching checksum, so the write path
does not recompute it. A memo of checksums only, never of what a file holds."""


def advance_mark(conn: sqlite3.Connection, runtime_id: str, step: MarkStep) -> None:
    """Advance the runtime's mark by ``step`` in the caller's transaction."""
    known = _checked.get(runtime_id)
    if known is not None:
        counters = advance_counters(cast("tuple[int, ...]", known[:-1]), step, runtime_id)
        checksum = _advanced_checksum(runtime_id, counters)
        if conn.execute(_ADVANCE_IF_UNCHANGED, (*counters, checksum, runtime_id, *known)).rowcount == 1:
            _checked[runtime_id] = (*counters, checksum)
            return
    found = conn.execute(_SELECT, (runtime_id,)).fetchone()
    if found is None:
        current = None
    elif _checked.get(runtime_id) == found and tuple(map(type, found[:-1])) == _ALL_INT:
        current = HighWater(runtime_id, *found[:-1])
    else:
        current = stored_mark(conn, runtime_id)
    mark = advance(current, runtime_id, step)
    checksum = store_mark(conn, mark)
    if len(_checked) >= _CHECKED_LIMIT:
        _checked.clear()
    _checked[runtime_id] = (*mark.counters(), checksum)


def new_inputs(conn: sqlite3.Connection, runtime_id: str, input_ids: Iterable[str]) -> int:
    """How many of ``input_ids`` (duplicates counted once) have no row yet."""
    unique = list(dict.fromkeys(input_ids))
    stored = 0
    for start in range(0, len(unique), _IDS_PER_QUERY):
        chunk = unique[start : start + _IDS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        (count,) = conn.execute(
            f"SELECT count(*) FROM {INPUTS} WHERE runtime_id = ? AND input_id IN ({marks})", (runtime_id, *chunk)
        ).fetchone()
        stored += int(count)
    return len(unique) - stored
