"""The PostgreSQL store passes every check of the store conformance suite, including the
ownership checks and the claim race across processes, on a real server."""

from __future__ import annotations

import os

import pytest
from meerkat_conformance.stores.backend import PG_DSN_ENV, StoreBackend
from meerkat_conformance.stores.suite import CHECKS, StoreCheck, run_store_conformance

from tests.postgres.server import DSN_ENV


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_postgres_store_passes(check: StoreCheck, pg_dsn: str) -> None:
    from meerkat_conformance.stores.postgres_backend import PostgresBackend

    check.run(lambda: PostgresBackend(pg_dsn))


def test_the_backend_has_every_capability_so_no_check_is_left_out(pg_dsn: str) -> None:
    from meerkat_conformance.stores.postgres_backend import PostgresBackend

    backend = PostgresBackend(pg_dsn)
    try:
        assert all(check.requires <= backend.capabilities for check in CHECKS)
    finally:
        backend.dispose()


def test_the_built_in_factory_and_command_line_use_the_configured_server(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meerkat_conformance.stores import backend as backends
    from meerkat_conformance.stores.suite import main

    assert DSN_ENV == PG_DSN_ENV
    monkeypatch.setenv(PG_DSN_ENV, pg_dsn)
    monkeypatch.setitem(backends.BUILT_IN_FACTORIES, "postgres", backends.postgres_factory)
    made: StoreBackend = backends.postgres_factory()
    made.dispose()
    assert made.name == "postgres"
    report = run_store_conformance(backends.postgres_factory, only=["lease_token_grows", "ordering"])
    assert report.ok and report.backend == "postgres", report.render()
    assert main(["postgres", "--check", "two_handles"]) == 0
    assert "OK: 1 passed" in capsys.readouterr().out


def test_without_a_configured_server_the_command_line_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meerkat_conformance.stores import backend as backends
    from meerkat_conformance.stores.suite import main

    monkeypatch.delenv(PG_DSN_ENV, raising=False)
    monkeypatch.delitem(backends.BUILT_IN_FACTORIES, "postgres", raising=False)
    assert main(["postgres"]) == 2
    err = capsys.readouterr().err
    assert "postgres" in err and PG_DSN_ENV in err
    assert os.environ.get(PG_DSN_ENV) is None


def test_the_batched_lease_renewal_check_applies_and_passes(pg_dsn: str) -> None:
    from meerkat_conformance.stores.postgres_backend import PostgresBackend

    report = run_store_conformance(lambda: PostgresBackend(pg_dsn), only=["lease_batch_renewal"])
    assert [(r.name, r.status) for r in report.results] == [("lease_batch_renewal", "passed")], report.render()
