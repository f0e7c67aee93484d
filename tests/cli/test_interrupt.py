"""Ctrl-C (SIGINT) during a long run: the partial report, exit status 130, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.commands import command, interrupt_when

pytestmark = pytest.mark.slow


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_verify_prints_what_finished_and_exits_130(workers: str) -> None:
    # ops (tiny) finishes at once; the deep session search runs for minutes and is interrupted.
    done = interrupt_when(
        [
            *command("meerkat-verify"),
            "--profile",
            "deep",
            "--machine",
            "ops",
            "--machine",
            "session",
            "--set",
            "ops.ids=1",
            "--workers",
            workers,
            "--progress",
            "--json",
        ],
        marker="session: ",
    )
    assert done.returncode == 130, done.stderr[-3000:]
    _no_traceback(done.stderr)
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["interrupted"] == "exploring session"
    assert [m["machine"] for m in report["machines"]] == ["ops"] and report["machines"][0]["ok"]
    assert report["proofs"] is None
    assert "interrupted while exploring session" in done.stderr


def test_verify_text_report_names_the_interruption() -> None:
    done = interrupt_when(
        [*command("meerkat-verify"), "--profile", "deep", "--machine", "session", "--workers", "1", "--progress"],
        marker="session: ",
    )
    assert done.returncode == 130
    _no_traceback(done.stderr)
    assert done.stdout.rstrip().endswith(
        "verify: INTERRUPTED while exploring session (the report above covers what finished)"
    )


def test_conformance_prints_the_partial_report_and_exits_130() -> None:
    done = interrupt_when(
        [
            *command("meerkat-conformance"),
            "--profile",
            "deep",
            "--machine",
            "session",
            "--replay-profile",
            "none",
            "--progress-every",
            "0.2",
        ],
        marker="[session search]",
        settle=1.0,
    )
    assert done.returncode == 130, done.stderr[-3000:]
    _no_traceback(done.stderr)
    assert "conformance report: INTERRUPTED during the session search (partial)" in done.stdout
    assert "machine session:" in done.stdout and "examples (search)" in done.stdout
    assert "interrupted during the session search" in done.stderr


def test_soak_summarises_the_verified_kills_and_exits_130(tmp_path: Path) -> None:
    done = interrupt_when(
        [*command("scripts/store_soak.py"), "--kills", "100000", "--dir", str(tmp_path)],
        marker="soak:",
        settle=1.0,
    )
    assert done.returncode == 130, done.stderr[-3000:]
    _no_traceback(done.stderr)
    assert "INTERRUPTED:" in done.stdout and "acknowledged commits all present" in done.stdout
    assert list(tmp_path.iterdir()) == []  # its temporary files are removed


def test_store_suite_prints_the_checks_that_finished_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The suite takes about a second, too short to interrupt reliably from outside: Ctrl-C is
    # simulated as the third check starts.
    from meerkat_conformance.stores import suite

    real = suite.run_check
    started: list[str] = []

    def run_check(check: suite.StoreCheck, factory: suite.StoreFactory) -> suite.CheckResult:
        started.append(check.name)
        if len(started) == 3:
            raise KeyboardInterrupt
        return real(check, factory)

    monkeypatch.setattr(suite, "run_check", run_check)
    assert suite.main(["memory", "sqlite"]) == 130
    out, err = capsys.readouterr()
    assert "store conformance: memory" in out and "sqlite" not in out
    assert out.count("  passed ") == 2
    assert f"interrupted during memory: 2 of {len(suite.CHECKS)} checks finished" in out
    assert "interrupted" in err


def test_a_benchmark_keeps_its_figures_and_exits_130(tmp_path: Path) -> None:
    done = interrupt_when(
        [*command("benchmarks/bench_stores.py"), "--dir", str(tmp_path)], marker="== ", settle=0.5, timeout=300
    )
    assert done.returncode == 130, done.stderr[-3000:]
    _no_traceback(done.stderr)
    assert "\n== " in done.stdout  # the figures measured before Ctrl-C
    assert done.stderr.splitlines()[-1] == "bench_stores.py: interrupted (what is printed above was measured before)"


@pytest.mark.parametrize("as_json", [False, True])
def test_proofs_keep_the_finished_machines_and_exit_130(as_json: bool) -> None:
    # ops's proofs finish first; Ctrl-C lands in session's.
    done = interrupt_when(
        [
            *command("-m meerkat_model.proofs"),
            "--machine",
            "ops",
            "--machine",
            "session",
            "--no-reachability",
            "--progress",
            *(["--json"] if as_json else []),
        ],
        marker="proofs: session",
    )
    assert done.returncode == 130, done.stderr[-3000:]
    _no_traceback(done.stderr)
    assert done.stderr.splitlines()[-1] == (
        "python -m meerkat_model.proofs: interrupted (what is printed above was measured before)"
    )
    if as_json:
        report = json.loads(done.stdout)
        assert report["interrupted"] is True and report["ok"] is False
        assert {r["machine"] for r in report["results"]} == {"ops"}
        assert all(r["status"] == "proved" for r in report["results"])
    else:
        assert " ops " in done.stdout and " session " not in done.stdout
