"""``meerkat-verify``: exit codes, human and JSON reports, bounds validation, traces."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from meerkat_model import catalog
from meerkat_model.cli import verify
from meerkat_model.machine import Bounds


def test_ok_run_exits_zero_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--profile", "tiny", "--machine", "ops", "--no-prove"]) == 0
    out = capsys.readouterr().out
    assert "== ops" in out and "states " in out and "states/s" in out
    assert "held      active_count_matches" in out
    assert "transition coverage 19/19" in out and "stuck states 0" in out
    assert out.rstrip().endswith("verify: OK")


def test_violation_exits_one_and_prints_the_trace(buggy: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--machine", buggy, "--no-prove"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED  active_count_matches" in out
    assert "1. register_operation(0, 1)" in out
    assert "2. cancel_operation(0, None)" in out
    assert "active_count: 0 -> 1" in out
    assert "verify: FAILED" in out


def test_json_report(buggy: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        verify.main(
            ["--machine", "ops", "--machine", buggy, "--profile", "tiny", "--no-prove", "--json", "--compare-symmetry"]
        )
        == 1
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["profile"] == "tiny" and doc["proofs"] is None
    ops, leaky = doc["machines"]
    assert ops["machine"] == "ops" and ops["ok"] and ops["states"] > 0 and ops["coverage"]["dead"] == []
    assert set(ops["invariants"].values()) == {"held"}
    assert ops["symmetry_comparison"]["invariants_agree"] is True
    assert leaky["invariants"]["active_count_matches"] == "violated"
    trace = leaky["violations"][0]["trace"]
    assert [step["transition"] for step in trace] == ["register_operation", "cancel_operation"]
    assert trace[0]["changed"]["active_count"] == [0, 1]
    assert "cancelled" in trace[-1]["changed"]["op[0]"][1]


def test_trace_dot_is_written(buggy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.dot"
    assert verify.main(["--machine", buggy, "--no-prove", "--trace-dot", str(path)]) == 1
    dot = path.read_text()
    assert dot.startswith("digraph") and "cancel_operation" in dot and "s1 -> s2" in dot
    assert "trace written" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "ids=x"], "not an integer"),
        (["--set", "ids"], "expected KEY=VALUE"),
        (["--set", "nope=1"], "no selected machine has a bound 'nope'"),
        (["--set", "ops.nope=1"], "ops has no bound 'nope'"),
        (["--set", "ids=0"], "outside"),
        (["--machine", "nope"], "unknown machine"),
        (["--max-states", "0"], "at least 1"),
    ],
)
def test_usage_errors_exit_two(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--machine", "ops", "--no-prove", *args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_profile_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        verify.main(["--profile", "huge"])
    assert exc.value.code == 2


def test_set_overrides_a_bound(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--profile", "tiny", "--machine", "ops", "--no-prove", "--json", "--set", "ops.progress=0"]
    assert verify.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["machines"][0]["bounds"]["progress"] == 0
    assert doc["machines"][0]["coverage"]["dead"] == ["report_progress"]


def test_set_accepts_every_documented_bound_the_profile_does_not_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert "max_attempts" not in catalog.PROFILES["tiny"]["session"].values
    args = ["--profile", "tiny", "--machine", "session", "--no-prove", "--json", "--set", "max_attempts=1"]
    assert verify.main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["machines"][0]["bounds"]["max_attempts"] == 1
    assert "executor_failed" in doc["machines"][0]["coverage"]["dead"]  # the first failure is the last
    overrides = verify.parse_overrides(["fatal_errors=1", "session.direct=1"], ["ops", "session"], "small")
    assert overrides == {"ops": {}, "session": {"fatal_errors": 1, "direct": 1}}
    assert verify.parse_overrides(["claims=2"], ["ownership"], "small") == {"ownership": {"claims": 2}}
    with pytest.raises(verify.UsageError, match="session has no bound 'nope'"):
        verify.parse_overrides(["session.nope=1"], ["session"], "tiny")
    with pytest.raises(verify.UsageError, match="no selected machine has a bound 'ids'"):
        verify.parse_overrides(["ids=2"], ["session"], "tiny")


def test_progress_lines_on_request(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    explore_module = importlib.import_module("meerkat_model.verifier.explore")

    monkeypatch.setattr(explore_module, "PROGRESS_EVERY", 64)
    assert verify.main(["--profile", "tiny", "--machine", "ops", "--no-prove", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "ops: " in err and "states/s" in err and "frontier" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_last_progress_line_shows_the_final_count(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    # tiny ops has 1,301 states: the throttled ticks never show the last of them.
    args = ["--profile", "tiny", "--machine", "ops", "--no-prove", "--progress", "--json", "--workers", workers]
    assert verify.main(args) == 0
    captured = capsys.readouterr()
    states = json.loads(captured.out)["machines"][0]["states"]
    assert captured.err.splitlines()[-1].startswith(f"ops: {states:,} states, search ended after ")


class _Terminal:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_on_a_terminal_the_rewritten_line_ends_at_the_final_count() -> None:
    terminal = _Terminal()
    progress = verify.Progress("ops", terminal)  # type: ignore[arg-type]
    progress(4_097, 871, 0.2)
    progress(6_000, 10, 0.25)  # throttled away
    progress.done(6_085, 0.5)
    assert terminal.text.endswith("\n") and terminal.text.count("\n") == 1
    shown = terminal.text.rstrip("\n").split("\r")[-1].removesuffix("\x1b[K")  # what the terminal shows
    assert shown == "ops: 6,085 states, search ended after 0.5s, 12,170 states/s"


def test_set_names_an_unknown_machine_and_says_a_bound_error_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--set", "nope.ids=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown machine 'nope'; known: " + ", ".join(catalog.MACHINES) in err
    assert verify.main(["--machine", "ops", "--set", "session.inputs=1"]) == 2
    assert "machine 'session' is not selected (selected: ops)" in capsys.readouterr().err
    assert verify.main(["--machine", "ops", "--set", "ids=-1"]) == 2
    err = capsys.readouterr().err
    assert "error: ops bound ids=-1 is outside" in err and "ops: ops" not in err


def test_one_path_for_both_trace_files_is_refused_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "trace.out"
    args = ["--profile", "deep", "--trace-dot", str(target), "--trace-json", str(tmp_path / "." / "trace.out")]
    assert verify.main(args) == 2
    err = capsys.readouterr().err
    assert "--trace-dot" in err and "--trace-json" in err and "are the same file" in err
    assert not target.exists()


def test_max_states_makes_the_run_fail(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main(["--profile", "tiny", "--machine", "ops", "--no-prove", "--max-states", "10"]) == 1
    assert "INCOMPLETE" in capsys.readouterr().out


class _FakeResult:
    def __init__(self, status: str) -> None:
        self.name, self.machine, self.status, self.seconds = f"fake:{status}", "ops", status, 0.01
        self.counterexample: Any = {"x": 1} if status == "failed" else None
        self.assumes: tuple[str, ...] = ()


class _FakeReport:
    def __init__(self, statuses: list[str]) -> None:
        self.results = [_FakeResult(s) for s in statuses]
        self.ok = all(s == "proved" for s in statuses)


@pytest.mark.parametrize(("statuses", "code"), [(["proved", "unknown"], 0), (["proved", "failed"], 1)])
def test_proofs_run_by_default_and_a_failed_proof_fails(
    statuses: list[str], code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import meerkat_model.proofs as proofs

    seen: list[tuple[int, tuple[str, ...] | None]] = []

    def fake_run_proofs(ids: int = 8, *, machines: tuple[str, ...] | None = None, **_: object) -> _FakeReport:
        seen.append((ids, machines))
        return _FakeReport(statuses)

    monkeypatch.setattr(proofs, "run_proofs", fake_run_proofs)
    assert verify.main(["--profile", "tiny", "--machine", "ops"]) == code
    out = capsys.readouterr().out
    assert seen == [(8, ("ops",))] and "== proofs (8 ids)" in out
    assert ("FAILED  ops fake:failed" in out) == (code == 1)


def test_help_mentions_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        verify.main(["--help"])
    out = capsys.readouterr().out
    for option in (
        "--profile",
        "--machine",
        "--set",
        "--no-symmetry",
        "--no-prove",
        "--json",
        "--trace-dot",
        "--progress",
        "--compare-symmetry",
        "exit status",
    ):
        assert option in out


def test_profile_bounds_are_plain_bounds() -> None:
    assert all(isinstance(b, Bounds) for p in catalog.PROFILES.values() for b in p.values())


def test_the_json_report_survives_a_trace_that_cannot_be_written(
    buggy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The path is checked before the search; should it still fail afterwards (its folder removed
    # meanwhile), the report is printed all the same and the error is one line.
    monkeypatch.setattr(verify, "check_output_file", lambda path, option: None)
    target = tmp_path / "gone" / "trace.dot"
    assert verify.main(["--machine", buggy, "--no-prove", "--json", "--trace-dot", str(target)]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and doc["machines"][0]["invariants"]["active_count_matches"] == "violated"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"meerkat-verify: error: could not write --trace-dot {target}: ")
    assert "No such file or directory" in err


def test_machine_limits_the_proofs_too() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "meerkat-verify"), "--profile", "tiny", "--machine", "ops", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [m["machine"] for m in doc["machines"]] == ["ops"]
    assert doc["proofs"]["machines"] == ["ops"]
    assert doc["proofs"]["results"] and {r["machine"] for r in doc["proofs"]["results"]} == {"ops"}


def test_proofs_are_skipped_when_no_selected_machine_has_an_encoding(
    buggy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify.main(["--profile", "tiny", "--machine", buggy]) == 1
    assert "== proofs: no z3 encoding for leaky; skipped" in capsys.readouterr().out
