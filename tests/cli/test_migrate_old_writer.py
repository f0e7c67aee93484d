"""An upgrade of a schema-3 file (written by a release that writes no high-water marks) refuses
while a worker of that release holds a live lease in it: both ``meerkat-runtime migrate`` (a real
child process) and a store opening the file change nothing and name the holder and its expiry.
Rows that worker wrote after an upgrade would not be counted by the marks the upgrade
introduces, and this release would refuse its sessions as damaged."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.migration_leases import MigrationRefused
from meerkat_runtime.store.sql_rows import lease_params
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.cli.commands import command, run
from tests.cli.runtime_files import Written, as_version_3, schema_version, write_sessions

OWNER = "old-worker-7"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return write_sessions(tmp_path_factory.mktemp("store") / "store.db")


def _lease(path: Path, expires_at: float) -> None:
    """Session ``alpha``'s lease row as a schema-3 worker writes it when it claims the session."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "INSERT OR REPLACE INTO runtime_leases (runtime_id, owner, token, expires_at, checksum) "
            "VALUES (?, ?, ?, ?, ?)",
            lease_params(Lease(canonical_runtime_id("alpha"), OWNER, 9, expires_at)),
        )
    finally:
        conn.close()


def test_migrate_refuses_while_an_older_worker_holds_a_live_lease(written: Written, tmp_path: Path) -> None:
    old = as_version_3(written, tmp_path / "old")
    expires_at = time.time() + 3600
    _lease(old, expires_at)
    refused = run([*command("meerkat-runtime"), "migrate", str(old)])
    assert refused.returncode == 1, refused.stdout
    assert OWNER in refused.stderr and f"{expires_at:.3f}" in refused.stderr
    assert "Stop every worker of the older release" in refused.stderr and "nothing was changed" in refused.stderr
    assert schema_version(old) == 3

    _lease(old, time.time() - 1)  # the older worker released its lease (stopped)
    done = run([*command("meerkat-runtime"), "migrate", str(old)])
    assert done.returncode == 0, done.stderr
    assert schema_version(old) == SCHEMA_VERSION


def test_opening_the_file_refuses_while_an_older_worker_holds_a_live_lease(written: Written, tmp_path: Path) -> None:
    old = as_version_3(written, tmp_path / "old")
    expires_at = time.time() + 3600
    _lease(old, expires_at)
    with pytest.raises(MigrationRefused) as refused:
        SqliteRuntimeStore(old)
    assert refused.value.owner == OWNER and refused.value.expires_at == expires_at
    assert "schema version 3" in str(refused.value)
    assert schema_version(old) == 3
    store = SqliteRuntimeStore(old, clock=lambda: expires_at)  # at its expiry the lease no longer holds
    try:
        assert store.settings()["schema_version"] == SCHEMA_VERSION
    finally:
        store.close()
