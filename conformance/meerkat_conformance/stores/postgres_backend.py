"""The PostgreSQL backend of the store conformance suite (needs the ``postgres`` extra and a server).

Each backend is one fresh PostgreSQL schema (namespace) in the database named by a connection
string (``MEERKAT_PG_DSN`` for the built-in factory), created by the store's first open and
dropped by ``dispose``. Capabilities: ``damage`` (a payload is altered with a plain
``UPDATE``), ``processes`` (other processes open the same schema) and ``write_failure`` (a
trigger makes the server fail writes of one input row).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.tables import INPUTS, LIFECYCLES, OPS_RECORDS, OPS_SNAPSHOTS, RECEIPTS, SNAPSHOTS
from meerkat_runtime.store.validation import to_signed64
from psycopg import sql

from meerkat_conformance.stores.backend import CAP_DAMAGE, CAP_PROCESSES, CAP_WRITE_FAILURE, RowRef, spoil


def open_store(dsn: str, schema: str) -> RuntimeStore:
    """Open a store on ``schema`` (what another process of the suite calls)."""
    return PostgresRuntimeStore(dsn, schema=schema, max_connections=4)


def fresh_schema_name(prefix: str = "conformance") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class PostgresBackend:
    """``PostgresRuntimeStore`` handles on one fresh schema of a PostgreSQL database."""

    name = "postgres"
    capabilities = frozenset({CAP_DAMAGE, CAP_PROCESSES, CAP_WRITE_FAILURE})

    def __init__(self, dsn: str, **store_options: Any) -> None:
        self.dsn = dsn
        self.schema = fresh_schema_name()
        self.store_options = {"max_connections": 4, **store_options}

    def open(self) -> RuntimeStore:
        return PostgresRuntimeStore(self.dsn, schema=self.schema, **self.store_options)

    def _raw(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.dsn, autocommit=True)

    def damage(self, row: RowRef) -> None:
        rt, s = row.runtime_id, self.schema
        table, column = {
            "input": (INPUTS, "payload"),
            "receipt": (RECEIPTS, "receipt"),
            "session_snapshot": (SNAPSHOTS, "snapshot"),
            "machine_lifecycle": (LIFECYCLES, "lifecycle"),
            "ops_snapshot": (OPS_SNAPSHOTS, "snapshot"),
            "ops_record": (OPS_RECORDS, "record"),
        }[row.kind]
        with self._raw() as conn:
            where: tuple[str, tuple[Any, ...]]
            if row.kind == "input":
                where = ("runtime_id = %s AND input_id = %s", (rt, row.input_id))
            elif row.kind == "receipt":
                where = (
                    "runtime_id = %s AND run_id = %s AND sequence = %s",
                    (rt, row.run_id, to_signed64(row.sequence)),
                )
            elif row.kind == "ops_record":
                seqs = conn.execute(f"SELECT seq FROM {s}.{table} WHERE runtime_id = %s ORDER BY seq", (rt,)).fetchall()
                where = ("seq = %s", (seqs[row.position][0],))
            else:
                where = ("runtime_id = %s", (rt,))
            found = conn.execute(f"SELECT {column} FROM {s}.{table} WHERE {where[0]}", where[1]).fetchone()
            assert found is not None, f"no row to damage: {row}"
            conn.execute(f"UPDATE {s}.{table} SET {column} = %s WHERE {where[0]}", (spoil(bytes(found[0])), *where[1]))

    def process_opener(self) -> tuple[str, list[Any]]:
        return f"{__name__}:open_store", [self.dsn, self.schema]

    @contextlib.contextmanager
    def fail_writes_to(self, runtime_id: str, input_id: str) -> Iterator[None]:
        s = self.schema
        with self._raw() as conn:
            conn.execute(
                f"CREATE FUNCTION {s}.conformance_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.runtime_id = TG_ARGV[0] AND NEW.input_id = TG_ARGV[1] THEN "
                "RAISE EXCEPTION 'conformance: injected storage failure'; END IF; RETURN NEW; END $$"
            )
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER conformance_fail BEFORE INSERT OR UPDATE ON {}.{} FOR EACH ROW "
                    "EXECUTE FUNCTION {}.conformance_fail({}, {})"
                ).format(
                    sql.Identifier(s),
                    sql.Identifier(INPUTS),
                    sql.Identifier(s),
                    sql.Literal(runtime_id),
                    sql.Literal(input_id),
                )
            )
            try:
                yield
            finally:
                conn.execute(f"DROP TRIGGER IF EXISTS conformance_fail ON {s}.{INPUTS}")
                conn.execute(f"DROP FUNCTION IF EXISTS {s}.conformance_fail()")

    def dispose(self) -> None:
        drop_schema(self.dsn, self.schema)
