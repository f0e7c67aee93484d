"""Two processes opening the same runtime's ops state in one PostgreSQL schema: the second is
refused (``LeaseHeld``) and every completion acknowledged to the first stays readable."""

from __future__ import annotations

from tests.postgres.helpers import open_store
from tests.runtime_ops.dual_writer import run_two_writers


def test_a_second_process_cannot_write_the_same_runtime(pg_dsn: str, pg_schema: str) -> None:
    open_store(pg_dsn, pg_schema).close()  # the schema exists before both writers start
    first, second = run_two_writers(["postgres", pg_dsn, pg_schema], lambda: open_store(pg_dsn, pg_schema))
    assert first["opened"] and len(first["acked"]) == 10  # type: ignore[arg-type]
    assert second == {"opened": False, "error": "lease_held", "type": "LeaseHeld", "acked": {}, "errors": []}
