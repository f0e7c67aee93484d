"""Fixtures of the PostgreSQL store tests: the server and a fresh schema per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres.server import postgres_server


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A libpq connection string of a running PostgreSQL server (one per test process)."""
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema name no other test uses; dropped (with everything in it) after the test."""
    from meerkat_conformance.stores.postgres_backend import drop_schema, fresh_schema_name

    schema = fresh_schema_name("test")
    yield schema
    drop_schema(pg_dsn, schema)
