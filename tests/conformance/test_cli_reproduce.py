"""``meerkat-conformance`` runs are reproducible: ``--seed`` fixes the search, ``--example-db``
keeps failing examples, and a failure prints a one-line command that finds it again."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from meerkat_conformance.cli import main as cli
from meerkat_conformance.cli.suites import SUITES
from meerkat_conformance.ops.stateful import OpsLockstepMachine
from meerkat_runtime.ops.registry import OpsLifecycleRegistry

SMALL = ["--machine", "ops", "--max-examples", "12", "--steps", "8", "--replay-profile", "none"]


def _report(out: str) -> str:
    """The report without its run time."""
    return re.sub(r", [0-9.]+s\n", "\n", out[out.index("conformance report:") :])


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_same_seed_runs_the_same_search(capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(["--profile", "deep", "--seed", "20240611", *SMALL], capsys)
    second = _run(["--profile", "deep", "--seed", "20240611", *SMALL], capsys)
    assert first[0] == second[0] == 0
    assert "seed 20240611" in first[1] and "seed 20240611" in first[2]
    assert _report(first[1]) == _report(second[1])
    assert "steps" in _report(first[1])


def test_an_unseeded_deep_run_draws_and_prints_its_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["--profile", "deep", *SMALL], capsys)
    assert code == 0
    drawn = re.search(r"seed (\d+), replay none", err)
    assert drawn is not None and f"seed {drawn.group(1)}" in out
    again = _run(["--profile", "deep", "--seed", drawn.group(1), *SMALL], capsys)
    assert _report(again[1]) == _report(out)


class _ProgressNotCounted(OpsLifecycleRegistry):
    """Planted bug: progress reports are accepted but not counted."""

    def report_progress(self, operation_id: str, update: object = None) -> None:
        self.snapshot(operation_id)


class _Buggy(OpsLockstepMachine):
    REGISTRY_CLASS = _ProgressNotCounted


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUITES, "ops", dataclasses.replace(SUITES["ops"], load_lockstep=lambda: _Buggy))


@pytest.mark.usefixtures("planted")
def test_a_failure_prints_a_command_that_reproduces_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "examples"
    args = ["--profile", "deep", "--machine", "ops", "--max-examples", "200", "--replay-profile", "tiny"]
    code, out, _err = _run([*args, "--example-db", str(db)], capsys)
    assert code == 1
    assert "model and runtime disagree on the ops machine" in out
    lines = [line for line in out.splitlines() if line.startswith("reproduce with: ")]
    assert len(lines) == 2 and lines[0] == lines[1]  # after the trace, and again after the report
    command = shlex.split(lines[0].removeprefix("reproduce with: "))
    assert command[0] == "meerkat-conformance"
    seed = re.search(r"--seed (\d+)", lines[0])
    assert seed is not None
    assert f"--seed {seed.group(1)} --max-examples 200 --steps 60 --replay-profile tiny --disk memory" in lines[0]
    assert f"--example-db {db}" in lines[0]
    assert db.is_dir() and any(p.is_file() for p in db.rglob("*"))  # the failing example is kept

    trace = out[out.index("model and runtime disagree") : out.index("reproduce with:")]
    # The printed command finds the same minimal trace, with the example database or without it.
    for again in (command[1:], [a for a in command[1:] if a not in ("--example-db", str(db))]):
        code2, out2, _ = _run(again, capsys)
        assert code2 == 1
        assert out2[out2.index("model and runtime disagree") : out2.index("reproduce with:")] == trace


@pytest.mark.usefixtures("planted")
def test_a_derandomized_failure_reproduces_without_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(["--profile", "fast", "--machine", "ops", "--replay-profile", "none"], capsys)
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("reproduce with: "))
    assert "--seed" not in line and "--profile fast --machine ops --max-examples 40 --steps 25" in line
    code2, out2, _ = _run(shlex.split(line.removeprefix("reproduce with: "))[1:], capsys)
    assert code2 == 1
    assert out2[: out2.index("reproduce with:")] == out[: out.index("reproduce with:")]


def test_the_example_database_folder_is_created_on_a_passing_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new" / "examples"
    code, _out, _err = _run(["--profile", "deep", "--seed", "1", *SMALL, "--example-db", str(db)], capsys)
    assert code == 0
    assert db.is_dir()
