"""The high-water mark in PostgreSQL: one statement per write, the server adds the counts.

One row per runtime in ``<schema>.runtime_high_water`` holding the counters of
:class:`~meerkat_runtime.store.high_water.HighWater`. Every data write ends with
:func:`advance_statement`, an ``INSERT … ON CONFLICT DO UPDATE`` that applies
:func:`~meerkat_runtime.store.high_water.advance` on the server: the conflicting row is always
the latest committed version and stays locked until the write commits, so the counts are exact
however many writers there are. The step comes from the write's own statements (the input upsert
reports how many of its rows were new with ``RETURNING (xmax = 0)``), so the mark costs one
statement and no read.

Unlike the data rows, the mark carries no row checksum: the server computes it, and a checksum
the client computes would need the new counters read back first (a second round trip). A
damaged mark still fails closed: recovery compares it with the rows it loads
(:func:`~meerkat_runtime.store.high_water.compare_session`), and a counter that is not a
non-negative integer is ``Corrupt`` when read.
"""

from __future__ import annotations

from collections.abc import Sequence

from meerkat_runtime.store.high_water import HIGH_WATER_FIELDS, HighWater, MarkStep
from meerkat_runtime.store.tables import HIGH_WATER
from meerkat_runtime.vocab.errors import Corrupt

_COLUMNS = ", ".join(HIGH_WATER_FIELDS)


def select_statement(schema: str) -> str:
    """The mark of one runtime (parameter: the runtime id)."""
    return f"SELECT {_COLUMNS} FROM {schema}.{HIGH_WATER} WHERE runtime_id = %s"


def advance_statement(schema: str) -> str:
    """``advance(mark, runtime_id, step)`` as one upsert (parameters: :func:`step_params`).

    A runtime without a mark starts from zero; a flag parameter that is ``NULL`` leaves the
    flag as it is (``0`` for a new mark)."""
    return (
        f"INSERT INTO {schema}.{HIGH_WATER} AS h (runtime_id, {_COLUMNS}) VALUES ("
        "%(rt)s, 1, %(inputs_added)s::bigint - %(inputs_removed)s::bigint, %(receipts_added)s::bigint, "
        "COALESCE(%(snapshot)s::integer, 0), COALESCE(%(lifecycle)s::integer, 0), "
        "COALESCE(%(ops_snapshot)s::integer, 0), %(records_added)s::bigint, %(quarantined_added)s::bigint) "
        "ON CONFLICT (runtime_id) DO UPDATE SET "
        "writes = h.writes + 1, "
        "inputs = h.inputs + excluded.inputs, "
        "receipts = h.receipts + excluded.receipts, "
        "session_snapshots = COALESCE(%(snapshot)s::integer, h.session_snapshots), "
        "lifecycles = COALESCE(%(lifecycle)s::integer, h.lifecycles), "
        "ops_snapshots = COALESCE(%(ops_snapshot)s::integer, h.ops_snapshots), "
        "ops_records = CASE WHEN %(records_cleared)s::boolean THEN 0 ELSE h.ops_records END + excluded.ops_records, "
        "quarantined = h.quarantined + excluded.quarantined"
    )


def step_params(runtime_id: str, step: MarkStep) -> dict[str, object]:
    """The parameters of :func:`advance_statement` for ``step``."""

    def flag(value: bool | None) -> int | None:
        return None if value is None else int(value)

    return {
        "rt": runtime_id,
        "inputs_added": step.inputs_added,
        "inputs_removed": step.inputs_removed,
        "receipts_added": step.receipts_added - step.receipts_removed,
        "snapshot": flag(step.session_snapshot),
        "lifecycle": flag(step.lifecycle),
        "ops_snapshot": flag(step.ops_snapshot),
        "records_added": step.ops_records_added,
        "records_cleared": step.ops_records_cleared,
        "quarantined_added": step.quarantined_added,
    }


def stored_mark(runtime_id: str, row: Sequence[object] | None) -> HighWater | None:
    """The mark in a row of :func:`select_statement`, or ``None``; ``Corrupt`` if a counter is
    not a non-negative integer."""
    if row is None:
        return None
    try:
        return HighWater.from_counters(runtime_id, tuple(row))
    except ValueError as exc:
        raise Corrupt(runtime_id, f"row {HIGH_WATER}[{runtime_id}] is malformed: {exc}") from None
