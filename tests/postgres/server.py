"""The PostgreSQL server of the tests: the one ``MEERKAT_PG_DSN`` names (``./run test`` starts a
throwaway cluster and sets it), else a private throwaway cluster started for this test process
with ``scripts/pg_cluster.sh`` and stopped at its end.

Where no server can be had (no PostgreSQL binaries and no way to install them) a test that needs
one is skipped with the reason, except under CI (``CI`` set), where it fails: CI always runs them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.diagrams.browser import under_ci

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "scripts" / "pg_cluster.sh"
DSN_ENV = "MEERKAT_PG_DSN"


def _unavailable(why: str) -> None:
    how = "run ./run test, or scripts/pg_cluster.sh run -- <pytest command>, or set MEERKAT_PG_DSN"
    if under_ci():
        raise AssertionError(f"a PostgreSQL server is required under CI for the PostgreSQL store tests: {why}")
    pytest.skip(f"PostgreSQL test NOT RUN: {why} ({how})")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The DSN of a PostgreSQL server for the tests (see the module docstring)."""
    try:
        import psycopg  # noqa: F401  (the postgres extra)
    except ImportError:
        _unavailable("the 'postgres' extra (psycopg, psycopg-pool) is not installed")
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        yield dsn
        return
    started = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "start", "--for-tests"], capture_output=True, text=True, check=False, timeout=600
    )
    assignments = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if "=" in line
    )
    if started.returncode != 0 or DSN_ENV not in assignments:
        _unavailable(f"no server could be started: {started.stderr.strip()[-500:]}")
    cluster = shlex.split(assignments["MEERKAT_PG_CLUSTER"])[0]
    try:
        yield shlex.split(assignments[DSN_ENV])[0]
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", cluster], check=False, timeout=120)
