"""The ``meerkat-conformance`` command: report, progress line, exit codes."""

from __future__ import annotations

import pytest
from meerkat_conformance.cli.main import main


def test_a_short_run_prints_progress_and_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--profile",
            "fast",
            "--machine",
            "ops",
            "--max-examples",
            "5",
            "--steps",
            "8",
            "--replay-profile",
            "tiny",
            "--progress-every",
            "0.1",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "[ops search]" in err and "examples" in err
    assert "[ops replay]" in err and "edges" in err
    assert "machine ops:" in out
    assert "transitions covered" in out
    assert "replay edges covered" in out and "(100.0%)" in out
    assert "crashes injected" in out and "faults injected" in out


def test_an_unknown_replay_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--machine", "ops", "--replay-profile", "enormous", "--max-examples", "1"]) == 2
    assert "unknown model profile 'enormous'" in capsys.readouterr().err


def test_an_unknown_option_is_rejected() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--machine", "nonsense"])
    assert info.value.code == 2


def test_all_runs_ops_session_and_the_ownership_walks(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--profile", "fast", "--max-examples", "1", "--steps", "3", "--replay-profile", "none"]
    code = main([*argv, "--seed", "5"])  # --machine all is the default
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "machine(s) ops, session, ownership," in err and "ownership walks on sqlite" in err
    assert "[ops search]" in err and "[session search]" in err
    assert "[ownership walks]" in err and "walk 1/1 (seed 5)" in err
    assert "machine ops:" in out and "machine session:" in out and "machine ownership:" in out
