"""``meerkat-runtime check`` on a file of another release: an older file (schema version 3,
holding what a real runtime wrote) gets the file checks but its sessions are not diagnosed,
which the report says plainly (``INCOMPLETE``, exit status 3, never ``OK``); a newer file is
refused as written by a newer release (exit status 1, one line on stderr), not called damaged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION

from tests.cli.commands import command, run
from tests.cli.runtime_files import Written, as_version_3, copy_file, write_sessions


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return write_sessions(tmp_path_factory.mktemp("store") / "store.db")


def check(*args: str) -> list[str]:
    return [*command("meerkat-runtime"), "check", *args]


def test_an_older_file_says_its_sessions_were_not_diagnosed(written: Written, tmp_path: Path) -> None:
    old = as_version_3(written, tmp_path / "old")
    done = run(check(str(old)))
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "INCOMPLETE: no damage found in the file, but its sessions were not diagnosed"
    assert "OK" not in done.stdout
    assert any(
        "sessions not diagnosed: schema version 3" in line and "meerkat-runtime migrate" in line for line in lines
    )
    as_json = run(check("--json", str(old)))
    assert as_json.returncode == 3
    document = json.loads(as_json.stdout)
    assert document["ok"] is False and document["complete"] is False and "migrate" in document["incomplete"]


def test_a_current_file_is_complete(written: Written, tmp_path: Path) -> None:
    current = copy_file(written, tmp_path / "current")
    done = run(check("--json", str(current.path)))
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    assert document["ok"] is True and document["complete"] is True and document["incomplete"] is None


def test_a_newer_file_is_refused_not_called_damaged(written: Written, tmp_path: Path) -> None:
    newer = copy_file(written, tmp_path / "newer").path
    conn = sqlite3.connect(newer, isolation_level=None)
    try:
        conn.execute("UPDATE meerkat_schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    finally:
        conn.close()
    done = run(check(str(newer)))
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert f"schema version {SCHEMA_VERSION + 1}, written by a newer release" in done.stderr
    assert "DAMAGED" not in done.stderr and "PROBLEM" not in done.stderr
