"""A store opened while its connection breaks during the migration's COMMIT: the migration is
idempotent, so the store runs it again and opens (a worker started during a network cut keeps
going); with a single run the open fails."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_runtime.store import postgres
from meerkat_runtime.store.postgres_schema import SCHEMA_VERSION
from meerkat_runtime.store.postgres_transactions import Transactions
from meerkat_runtime.vocab.errors import WriteOutcomeUnknown

from tests.postgres.helpers import admin, open_store


def _lose_the_first_migration_ack(monkeypatch: pytest.MonkeyPatch, *, lands: bool) -> list[str]:
    """The first migration's acknowledgement is lost: its transaction committed (``lands``) or
    was rolled back, and the caller hears ``WriteOutcomeUnknown`` either way."""
    real = Transactions._write_once
    lost: list[str] = []

    def write_once(self: Transactions, conn: Any, runtime_id: str, what: str, body: Any, *rest: Any) -> Any:
        if what == "schema migration" and not lost:
            lost.append(what)
            if lands:
                real(self, conn, runtime_id, what, body, *rest)
            raise WriteOutcomeUnknown(runtime_id, f"{what}: the connection broke while COMMIT was in flight")
        return real(self, conn, runtime_id, what, body, *rest)

    monkeypatch.setattr(Transactions, "_write_once", write_once)
    return lost


def _version(dsn: str, schema: str) -> object:
    with admin(dsn) as conn:
        row = conn.execute(f"SELECT version FROM {schema}.meerkat_schema_version").fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("lands", [True, False], ids=["commit_lands", "commit_rolled_back"])
def test_a_migration_with_an_unknown_outcome_is_run_again(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch, lands: bool
) -> None:
    lost = _lose_the_first_migration_ack(monkeypatch, lands=lands)
    with open_store(pg_dsn, pg_schema) as store:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
    assert lost == ["schema migration"]
    assert _version(pg_dsn, pg_schema) == SCHEMA_VERSION


def test_with_one_run_the_open_fails_on_an_unknown_outcome(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "MIGRATION_ATTEMPTS", 1)
    _lose_the_first_migration_ack(monkeypatch, lands=False)
    with pytest.raises(WriteOutcomeUnknown, match="schema migration"):
        open_store(pg_dsn, pg_schema)
