"""``./run``: unknown commands and benchmarks are refused in one line, before installing anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.commands import ROOT, assert_one_line_usage_error, run

RUN = str(ROOT / "run")


def _env(venv: Path) -> dict[str, str]:
    return {**os.environ, "MEERKAT_VENV": str(venv)}


def test_an_unknown_benchmark_lists_the_available_ones_and_installs_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run([RUN, "bench", "nope"], env=_env(venv), timeout=30)
    line = assert_one_line_usage_error(done, "unknown benchmark 'nope'")
    available = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert line.endswith(f"(available: {', '.join(available)})")
    assert not venv.exists()


def test_an_unknown_command_is_one_line_and_installs_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run([RUN, "frobnicate"], env=_env(venv), timeout=30)
    assert_one_line_usage_error(done, "unknown command 'frobnicate'", "verify, test")
    assert not venv.exists()


def test_help_lists_the_commands_and_the_environment(tmp_path: Path) -> None:
    done = run([RUN, "help"], env=_env(tmp_path / "venv"), timeout=30)
    assert done.returncode == 0
    for needle in ("./run verify", "./run test", "./run bench", "./run soak", "about 17 minutes", "Exit status"):
        assert needle in done.stdout
    assert "MEERKAT_INSTALL_BROWSER=0" in done.stdout
    assert "set -" not in done.stdout  # only the comment block


def test_soak_refuses_zero_kills() -> None:
    # Uses the project's environment: ./run checks its stamps (and installs only when stale,
    # saying so on lines of its own before the command's error line).
    done = run([RUN, "soak", "--kills", "0"], timeout=300)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("run: ")]
    assert errors == ["store_soak.py: error: argument --kills: '0': must be at least 1 (see store_soak.py --help)"]
    assert done.stdout == ""


@pytest.mark.slow
def test_each_command_installs_only_its_extras_once(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    first = run([RUN, "verify", "--help"], env=_env(venv), timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"run: installing meerkat-lifecycle[verify] into {venv}" in first.stderr
    assert "run:   Successfully installed" in first.stderr  # pip's progress, condensed
    listed = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], timeout=120).stdout.lower()
    assert "z3-solver==" in listed and "networkx==" in listed
    for tool in ("hypothesis", "pytest", "mypy", "ruff"):
        assert f"{tool}==" not in listed, tool
    assert sorted(p.name for p in venv.glob(".meerkat-installed-*")) == [
        ".meerkat-installed-project",
        ".meerkat-installed-verify",
    ]

    again = run([RUN, "verify", "--help"], env=_env(venv), timeout=120)
    assert again.returncode == 0 and "installing" not in again.stderr

    other = run([RUN, "conformance", "--help"], env=_env(venv), timeout=600)
    assert other.returncode == 0, other.stderr[-3000:]
    assert f"run: installing meerkat-lifecycle[conformance] into {venv}" in other.stderr
    assert (venv / ".meerkat-installed-conformance").is_file()
    assert "installing" not in run([RUN, "verify", "--help"], env=_env(venv), timeout=120).stderr

    # A changed pyproject.toml makes every stamp stale: the next command installs again.
    (venv / ".meerkat-installed-verify").write_text("an older pyproject.toml\n")
    stale = run([RUN, "verify", "--help"], env=_env(venv), timeout=600)
    assert stale.returncode == 0 and "run: installing meerkat-lifecycle[verify]" in stale.stderr
