"""``scripts/accept_instructions.py`` when its measuring tool fails or writes nothing it can read:
exit status 1 and the reason on stderr, nothing on stdout (where the figures go). A stand-in
``valgrind`` on the path plays the tool."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .commands import command, run


def _run_with_valgrind(tmp_path: Path, body: str) -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "valgrind"
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = run([*command("scripts/accept_instructions.py"), "--mode", "inline"], env=env)
    return done.returncode, done.stdout, done.stderr


def test_a_failing_tool_is_reported_on_stderr(tmp_path: Path) -> None:
    code, stdout, stderr = _run_with_valgrind(tmp_path, "echo 'valgrind: cannot start' >&2\nexit 3\n")
    assert code == 1
    assert stdout == ""
    assert "valgrind failed (exit status 3)" in stderr and "cannot start" in stderr


def test_a_missing_per_thread_output_file_is_a_clear_error(tmp_path: Path) -> None:
    """The tool succeeds but writes one file for all threads (no ``-01`` per-thread file)."""
    body = 'for a in "$@"; do case "$a" in --callgrind-out-file=*) echo "totals: 5" > "${a#*=}";; esac; done\n'
    code, stdout, stderr = _run_with_valgrind(tmp_path, body)
    assert code == 1
    assert stdout == ""
    assert "callgrind wrote no per-thread output cg.out-01" in stderr
    assert "Traceback" not in stderr
