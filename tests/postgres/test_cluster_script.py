"""``scripts/pg_cluster.sh``: one command gives a throwaway server to any command and removes it
afterwards, keeping the command's exit status; a durable configuration."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.postgres.server import CLUSTER_SCRIPT


def _binaries_or_skip() -> None:
    done = subprocess.run(["bash", "-c", "ls /usr/lib/postgresql/*/bin/initdb || command -v initdb"], check=False,
                          capture_output=True)  # fmt: skip
    if done.returncode != 0 and shutil.which("apt-get") is None:
        pytest.skip("PostgreSQL test NOT RUN: no PostgreSQL binaries and no apt-get to install them")


@pytest.mark.slow
def test_run_gives_the_command_a_durable_server_and_removes_it_keeping_the_exit_status() -> None:
    _binaries_or_skip()
    probe = (
        'psql -X -At "$MEERKAT_PG_DSN" -c "SHOW fsync" -c "SHOW synchronous_commit" -c "SHOW max_connections"; '
        'echo "cluster=$MEERKAT_PG_CLUSTER"; exit 7'
    )
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "run", "--", "bash", "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 7, done.stderr
    lines = done.stdout.split()
    assert lines[:3] == ["on", "on", "200"]
    cluster = lines[3].removeprefix("cluster=")
    assert cluster.startswith("/tmp/meerkat-pg.")
    assert subprocess.run(["test", "-e", cluster], check=False).returncode == 1  # removed afterwards


def test_unknown_commands_are_usage_errors() -> None:
    done = subprocess.run(["bash", str(CLUSTER_SCRIPT), "launch"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "unknown command 'launch'" in done.stderr
