"""The lockstep harness on the PostgreSQL store: model and runtime agree through the search
(with crash and store-fault steps) and the replay of the tiny session graph, on a real server."""

from __future__ import annotations

import re

import pytest
from meerkat_conformance.cli.main import main

from tests.postgres.server import DSN_ENV


def _conformance(args: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["--profile", "fast", *args.split()])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "conformance report: passed" in out
    return out


def _count(out: str, machine: str, what: str) -> int:
    section = out[out.index(f"machine {machine}:") :]
    found = re.search(rf"{what}\s+(\d+)", section)
    assert found is not None, section
    return int(found.group(1))


@pytest.mark.slow
def test_session_search_and_replay_on_postgres(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    out = _conformance(
        "--machine session --max-examples 12 --steps 30 --seed 11 --replay-profile tiny --disk postgres "
        "--search-disk postgres",
        capsys,
    )
    assert _count(out, "session", "crashes injected") > 0
    assert _count(out, "session", "faults injected") > 0
    assert _count(out, "session", "disagreements") == 0


@pytest.mark.slow
def test_ops_search_on_postgres(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    out = _conformance(
        "--machine ops --max-examples 8 --steps 40 --seed 5 --replay-profile none --search-disk postgres",
        capsys,
    )
    assert _count(out, "ops", "crashes injected") > 0
    assert _count(out, "ops", "faults injected") > 0


def test_the_postgres_disk_without_a_server_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    assert main(["--profile", "fast", "--disk", "postgres"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and DSN_ENV in err[0]
