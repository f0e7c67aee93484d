"""Every command refuses a bad command line with one line on stderr and exit status 2, before
any long work (each case below would otherwise search, render or soak for a long time)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.cli.commands import assert_one_line_usage_error, command, run

# A file that exists in every checkout: a path "under" it cannot be a folder.
A_FILE = "README.md"


@pytest.mark.parametrize(
    ("prog", "args", "needles"),
    [
        ("meerkat-conformance", ["--max-examples", "0"], ["--max-examples", "at least 1"]),
        ("meerkat-conformance", ["--steps", "0"], ["--steps", "at least 1"]),
        ("meerkat-conformance", ["--progress-every", "0"], ["--progress-every", "at least 0.1"]),
        ("meerkat-conformance", ["--progress-every", "nan"], ["--progress-every"]),
        ("meerkat-conformance", ["--seed", "-1"], ["--seed", "at least 0"]),
        ("meerkat-conformance", ["--replay-profile", "enormous"], ["unknown model profile 'enormous'"]),
        ("meerkat-conformance", ["--example-db", A_FILE], ["--example-db", "not a directory"]),
        ("meerkat-conformance", ["--machine", "nope"], ["--machine", "invalid choice"]),
        ("meerkat-render", ["--out", f"{A_FILE}/diagrams"], ["--out", "is a file, not a directory"]),
        ("meerkat-render", ["--out", A_FILE], ["--out", "is a file, not a directory"]),
        ("meerkat-render", ["--bogus"], ["unrecognized arguments: --bogus"]),
        ("meerkat-render", ["--renderer", "/nonexistent/dot"], ["--renderer /nonexistent/dot: no such file"]),
        ("meerkat-render", ["--renderer", "/bin/false"], ["--renderer /bin/false: does not render DOT to SVG"]),
        ("meerkat-render", ["--check", "--explore", "tiny"], ["--check", "--explore"]),
        ("meerkat-render", ["--check", "--out", A_FILE], ["--out", "is a file, not a directory"]),
        ("meerkat-render", ["--explore", "tiny", "--trace", "ops"], ["--trace does not apply to --explore"]),
        ("meerkat-render", ["--trace-to", "deepest"], ["--trace-to needs --trace"]),
        ("meerkat-render", ["--node-limit", "-1"], ["--node-limit", "at least 1"]),
        ("meerkat-render", ["--trace", "ownership"], ["unknown machine 'ownership'", "verified but not drawn"]),
        ("meerkat-verify", ["--trace-dot", "no-such-folder/trace.dot"], ["--trace-dot", "does not exist"]),
        ("meerkat-verify", ["--trace-dot", f"{A_FILE}/trace.dot"], ["--trace-dot", "is a file, not a directory"]),
        ("meerkat-verify", ["--trace-dot", "docs"], ["--trace-dot", "is a directory"]),
        ("meerkat-verify", ["--profile", "huge"], ["--profile", "invalid choice"]),
        ("meerkat-verify", ["--set", "ids=x"], ["not an integer"]),
        ("meerkat-verify", ["--workers", "0"], ["--workers", "at least 1"]),
        ("-m meerkat_conformance.stores.suite", ["nope"], ["unknown backend(s) nope"]),
        ("-m meerkat_model.proofs", ["--ids", "0"], ["--ids", "at least 1"]),
        ("-m meerkat_model.proofs", ["--depth", "-1", "--machine", "ops"], ["--depth", "at least 0"]),
        ("-m meerkat_model.proofs", ["--timeout-ms", "0", "--scale", "2"], ["--timeout-ms", "at least 1"]),
        ("-m meerkat_model.proofs", ["--stride", "0", "--differential", "tiny"], ["--stride", "at least 1"]),
        ("-m meerkat_model.proofs", ["--differential", "huge"], ["--differential", "invalid choice"]),
        ("-m meerkat_model.proofs", ["--scale", "0,2"], ["--scale", "id counts must be positive"]),
        (
            "meerkat-verify",
            ["--trace-dot", "t.out", "--trace-json", "./t.out"],
            ["--trace-dot", "--trace-json", "same"],
        ),
        ("meerkat-verify", ["--set", "ids=-1", "--machine", "ops"], ["ops bound ids=-1 is outside"]),
        ("meerkat-verify", ["--set", "nope.ids=1"], ["unknown machine 'nope'", "known: ops"]),
        ("meerkat-verify", ["--machine", "ops", "--set", "session.inputs=1"], ["'session' is not selected"]),
        ("scripts/planted_model_bugs.py", ["--only", "nope"], ["--only", "unknown bug 'nope'", "known:"]),
        ("scripts/planted_model_bugs.py", ["--show", "nope"], ["--show", "unknown bug 'nope'", "known:"]),
        ("scripts/planted_model_bugs.py", ["--replay-seconds", "0"], ["--replay-seconds", "at least"]),
        ("-m meerkat_conformance.stores.suite", ["--check", "nope"], ["--check", "invalid choice"]),
        ("scripts/store_soak.py", ["--kills", "0"], ["--kills", "at least 1"]),
        ("scripts/damage_sweep.py", ["--wal-flips", "-1"], ["--wal-flips", "at least 0"]),
        ("scripts/damage_sweep.py", ["--dir", "no-such-folder"], ["--dir", "not an existing directory"]),
        ("meerkat-runtime", [], ["required: COMMAND"]),
        ("meerkat-runtime", ["bogus"], ["invalid choice: 'bogus'"]),
        ("meerkat-runtime", ["check", "no-such.db"], ["'no-such.db' does not exist"]),
        ("meerkat-runtime", ["check", "postgresql://h/db"], ["works on SQLite store files only"]),
        ("meerkat-runtime", ["quarantine", "postgres://h/db", "s", "i"], ["works on SQLite store files only"]),
        ("meerkat-runtime", ["check", "docs"], ["'docs' is not a file"]),
        ("meerkat-runtime", ["check", A_FILE, "--integrity", "slow"], ["--integrity", "invalid choice"]),
        ("meerkat-runtime", ["quarantine", A_FILE, "s"], ["required: INPUT_ID"]),
        ("meerkat-runtime", ["quarantine", A_FILE, "s", ""], ["INPUT_ID must not be empty"]),
        ("meerkat-runtime", ["quarantine", A_FILE, "s", "i", "--reason", " "], ["--reason must not be empty"]),
        ("scripts/store_soak.py", ["--rotate", "0"], ["--rotate", "at least 1"]),
        ("scripts/store_soak.py", ["--dir", "no-such-folder"], ["--dir", "not an existing directory"]),
        ("scripts/ownership_soak.py", ["--takeovers", "0"], ["--takeovers", "at least 1"]),
        ("scripts/ownership_soak.py", ["--rotate", "x"], ["--rotate", "not an integer"]),
        ("scripts/ownership_soak.py", ["--lease-ms", "0"], ["--lease-ms", "above 0"]),
        ("scripts/ownership_soak.py", ["--renew-ms", "300"], ["--renew-ms (300) must be shorter", "(250)"]),
        ("scripts/ownership_soak.py", ["--synchronous", "OFF"], ["--synchronous", "invalid choice"]),
        ("scripts/ownership_soak.py", ["--dir", "no-such-folder"], ["--dir", "not an existing directory"]),
        ("scripts/postgres_soak.py", ["--cycles", "0"], ["--cycles", "at least 1"]),
        ("scripts/postgres_soak.py", ["--workers", "1"], ["--workers", "at least 2"]),
        ("scripts/postgres_soak.py", ["--kill-share", "1.5"], ["--kill-share", "between 0 and 1"]),
        ("scripts/postgres_soak.py", ["--lease-ms", "nan"], ["--lease-ms", "above 0"]),
        ("scripts/postgres_soak.py", ["--dir", "no-such-folder"], ["--dir", "not an existing directory"]),
        ("meerkat-runtime", ["sessions"], ["required: STORE"]),
        ("meerkat-runtime", ["inputs", A_FILE], ["required: SESSION"]),
        ("meerkat-runtime", ["inputs", A_FILE, "s", "--status", "lost"], ["--status", "invalid choice"]),
        ("meerkat-runtime", ["ops", "no-such.db", "s"], ["'no-such.db' does not exist"]),
        ("meerkat-runtime", ["show", "docs", "x"], ["'docs' is not a file"]),
        ("meerkat-runtime", ["migrate", "--bogus", A_FILE], ["unrecognized arguments: --bogus"]),
        ("benchmarks/bench_accept_checks.py", ["--rounds", "0"], ["--rounds", "at least 1"]),
        ("benchmarks/bench_durable_accept.py", ["--inputs", "3"], ["--inputs", "at least 10"]),
        ("benchmarks/bench_events.py", ["--inputs", "0"], ["--inputs", "at least 1"]),
        ("benchmarks/bench_ops_registry.py", ["--bogus"], ["unrecognized arguments: --bogus"]),
        ("benchmarks/bench_sessions.py", ["--inputs", "x"], ["--inputs"]),
        ("benchmarks/bench_stores.py", ["--bogus"], ["unrecognized arguments: --bogus"]),
        ("benchmarks/bench_verifier.py", ["--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_a_usage_error_is_one_line_and_exit_two(prog: str, args: list[str], needles: list[str]) -> None:
    # The default profiles run for minutes: a usage error must stop them in well under that.
    started = time.monotonic()
    done = run([*command(prog), *args], timeout=60)
    assert_one_line_usage_error(done, *needles)
    assert time.monotonic() - started < 30
    assert done.stdout == ""


def test_verify_refuses_an_unwritable_trace_path_before_the_search(tmp_path: Path) -> None:
    # The deep profile searches for minutes; the path is refused first, and nothing is created.
    target = tmp_path / "missing" / "trace.dot"
    done = run([*command("meerkat-verify"), "--profile", "deep", "--json", "--trace-dot", str(target)], timeout=30)
    assert_one_line_usage_error(done, "--trace-dot", "does not exist")
    assert not target.parent.exists()


def test_render_refuses_out_under_a_regular_file_and_writes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = run([*command("meerkat-render"), "--out", str(blocker / "sub" / "diagrams")], timeout=60)
    assert_one_line_usage_error(done, "--out", "is a file, not a directory")
    assert blocker.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [blocker]


def test_render_refuses_an_unusable_meerkat_dot_before_any_work(tmp_path: Path) -> None:
    env = {**os.environ, "MEERKAT_DOT": "/nonexistent"}
    done = run([*command("meerkat-render"), "--out", str(tmp_path / "d")], timeout=60, env=env)
    assert_one_line_usage_error(done, "MEERKAT_DOT=/nonexistent: no such file")
    assert list(tmp_path.iterdir()) == []


def test_the_store_suite_has_a_real_help() -> None:
    done = run([*command("-m meerkat_conformance.stores.suite"), "--help"], timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m meerkat_conformance.stores.suite")
    for needle in ("BACKEND", "memory, sqlite", "--check", "concurrent_processes", "exit status", "default"):
        assert needle in done.stdout


def test_the_postgres_soak_without_a_server_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MEERKAT_PG_DSN"}
    done = run([*command("scripts/postgres_soak.py"), "--cycles", "1"], timeout=60, env=env)
    assert_one_line_usage_error(done, "set MEERKAT_PG_DSN")


def test_the_command_exits_at_once_with_its_whole_report_and_status() -> None:
    """``meerkat-verify`` ends without tearing its explorations down: the report (text or JSON,
    through a pipe) is complete and the exit status is the run's."""
    base = [*command("meerkat-verify"), "--profile", "tiny", "--machine", "ops", "--no-prove"]
    done = run([*base, "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["machines"][0]["states"] > 0
    done = run([*base, "--workers", "2"])
    assert done.returncode == 0 and done.stdout.rstrip().endswith("verify: OK"), done.stderr
    done = run([*base, "--max-states", "10"])
    assert done.returncode == 1 and done.stdout.rstrip().endswith("verify: FAILED"), done.stderr
    done = run([*command("-m meerkat_model.cli.verify"), "--profile", "tiny", "--machine", "ops", "--no-prove"])
    assert done.returncode == 0 and done.stdout.rstrip().endswith("verify: OK"), done.stderr


def test_the_command_under_a_profiler_still_lets_it_write_its_profile(tmp_path: Path) -> None:
    """Under ``python -m cProfile`` the early exit gives way to a normal one, so the profile is
    written (an ``os._exit`` would end the process before the profiler saves)."""
    out = tmp_path / "verify.prof"
    argv = ["-m", "meerkat_model.cli.verify", "--profile", "tiny", "--machine", "ops", "--no-prove"]
    done = run([*command("-m cProfile"), "-o", str(out), *argv])
    assert done.returncode == 0 and done.stdout.rstrip().endswith("verify: OK"), done.stderr
    assert out.is_file() and out.stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["sessions"], ["STORE is an SQLite store file or a postgresql:// URL", "postgresql://U@H:P/D"]),
        (["inputs", "--json"], ["STORE is an SQLite store file or a postgresql:// URL"]),
        (["check"], ["works on SQLite store files only", "take a postgresql:// URL"]),
        (["migrate"], ["works on SQLite store files only"]),
    ],
)
def test_a_key_value_connection_string_is_named_and_not_repeated(args: list[str], needles: list[str]) -> None:
    """The form of PostgresRuntimeStore's examples (``host=... dbname=...``) is not taken for a
    missing file: the line says what STORE may be, and does not repeat the string (a password)."""
    conninfo = "host=db.internal port=5432 dbname=meerkat user=reader password=s3cret"
    command_args = [args[0], conninfo, *(["s"] if args[0] == "inputs" else []), *args[1:]]
    line = assert_one_line_usage_error(
        run([*command("meerkat-runtime"), *command_args]), "key=value connection string", *needles
    )
    assert "does not exist" not in line and "s3cret" not in line and "db.internal" not in line


def test_a_missing_store_says_what_store_may_be() -> None:
    done = run([*command("meerkat-runtime"), "sessions", "no-such.db"])
    assert_one_line_usage_error(
        done, "'no-such.db' does not exist", "(STORE is an SQLite store file or a postgresql:// URL)"
    )
