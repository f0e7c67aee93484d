"""The upgrade to version 6 fills the receipt index in chunks: each chunk of stored receipts is
read, parsed and its entries written before the next is read, all in the migration's one
transaction. So the client never parses every receipt between two statements (the server counted
that as idle in transaction and ended a large migration), and a failure part-way leaves nothing."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_runtime.store import postgres_schema
from meerkat_runtime.store.postgres_deadline import StoreConnection
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.store.receipt_retention import contributors

from tests.postgres.helpers import admin, open_store

CHUNK = 100
RECEIPTS = 1050  # ten full chunks and a partial one


def _version_5_with_receipts(dsn: str, schema: str) -> None:
    """A version-5 schema (no receipt index) holding ``RECEIPTS`` receipts over seven runtimes,
    three sequences per run, each naming one contributing input."""
    open_store(dsn, schema).close()
    receipt = (
        'convert_to(\'{"run_id":"run\' || (g / 3) || \'","sequence":\' || (g %% 3) || '
        '\',"boundary":"run_checkpoint","contributing_input_ids":["i\' || g || \'"],'
        '"conversation_digest":null,"message_count":1}\', \'UTF8\')'
    )
    with admin(dsn) as conn:
        conn.execute(f"DROP TABLE {schema}.runtime_receipt_inputs")
        conn.execute(f"UPDATE {schema}.meerkat_schema_version SET version = 5")
        conn.execute(
            f"INSERT INTO {schema}.runtime_boundary_receipts (runtime_id, run_id, sequence, receipt, checksum) "
            f"SELECT 'rt:session:m' || (g %% 7), 'run' || (g / 3), g %% 3, {receipt}, 'x' "
            "FROM generate_series(1, %s) AS g",
            (RECEIPTS,),
        )


def _trace(monkeypatch: pytest.MonkeyPatch, schema: str) -> list[str]:
    """Record, in order, the store's reads of the receipts (``read``), each receipt parsed
    (``parse``) and each write of index entries (``write``)."""
    trace: list[str] = []
    execute = StoreConnection.execute

    def recording_execute(self: StoreConnection, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = str(query)
        if text.startswith("SELECT") and f"FROM {schema}.runtime_boundary_receipts" in text:
            trace.append("read")
        elif text.startswith(f"INSERT INTO {schema}.runtime_receipt_inputs"):
            trace.append("write")
        return execute(self, query, *args, **kwargs)

    def recording_contributors(payload: object) -> frozenset[str] | None:
        trace.append("parse")
        return contributors(payload)

    monkeypatch.setattr(StoreConnection, "execute", recording_execute)
    monkeypatch.setattr(postgres_schema, "contributors", recording_contributors)
    return trace


def test_the_receipt_index_is_filled_chunk_by_chunk(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _version_5_with_receipts(pg_dsn, pg_schema)
    monkeypatch.setattr(postgres_schema, "INDEX_CHUNK", CHUNK, raising=False)
    trace = _trace(monkeypatch, pg_schema)
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION == 6
    full, rest = divmod(RECEIPTS, CHUNK)
    assert trace == (["read"] + ["parse"] * CHUNK + ["write"]) * full + ["read"] + ["parse"] * rest + ["write"]
    with admin(pg_dsn) as conn:
        entries = conn.execute(
            f"SELECT count(*), count(DISTINCT (runtime_id, run_id, sequence)) FROM {pg_schema}.runtime_receipt_inputs"
        ).fetchone()
        missing = conn.execute(
            f"SELECT count(*) FROM {pg_schema}.runtime_boundary_receipts AS r WHERE NOT EXISTS (SELECT 1 FROM "
            f"{pg_schema}.runtime_receipt_inputs AS e WHERE (e.runtime_id, e.run_id, e.sequence) = "
            "(r.runtime_id, r.run_id, r.sequence) "
            "AND e.input_id = convert_from(r.receipt, 'UTF8')::json->'contributing_input_ids'->>0)"
        ).fetchone()
    assert entries == (RECEIPTS, RECEIPTS) and missing == (0,)


def test_a_backfill_failing_part_way_leaves_the_schema_at_version_5(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in a later chunk rolls back the chunks already written and the whole step."""
    _version_5_with_receipts(pg_dsn, pg_schema)
    monkeypatch.setattr(postgres_schema, "INDEX_CHUNK", CHUNK, raising=False)
    parsed: list[object] = []

    def failing(payload: object) -> frozenset[str] | None:
        parsed.append(payload)
        if len(parsed) > 3 * CHUNK:
            raise RuntimeError("the backfill fails in its fourth chunk")
        return contributors(payload)

    monkeypatch.setattr(postgres_schema, "contributors", failing)
    with pytest.raises(RuntimeError, match="fourth chunk"):
        open_store(pg_dsn, pg_schema)
    with admin(pg_dsn) as conn:
        version = conn.execute(f"SELECT version FROM {pg_schema}.meerkat_schema_version").fetchone()
        index = conn.execute("SELECT to_regclass(%s)", (f"{pg_schema}.runtime_receipt_inputs",)).fetchone()
    assert version == (5,) and index == (None,)
