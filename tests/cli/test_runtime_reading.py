"""``meerkat-runtime sessions / inputs / ops / show`` on store files written by a real runtime:
what they print, that they never write (bytes, mtimes, no new files, no lease claimed), and
their answers to bad input (missing file, unknown session, malformed or unknown ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meerkat_runtime import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.cli.commands import assert_one_line_usage_error, rt, run
from tests.cli.runtime_files import ERROR, Written, copy_file
from tests.stores.damage import damage_payload


def ok_json(*args: str) -> object:
    done = run(rt(*args, "--json"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


def one_line_failure(done: object, *needles: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], lines[0]


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_sessions_lists_every_session_with_state_counts_and_lease(written: Written) -> None:
    doc = ok_json("sessions", str(written.path))
    assert isinstance(doc, dict)
    by_id = {s["session_id"]: s for s in doc["sessions"]}
    assert list(by_id) == ["alpha", "beta"]
    alpha = by_id["alpha"]
    assert (alpha["runtime_id"], alpha["state"], alpha["inputs"]) == (canonical_runtime_id("alpha"), "idle", 3)
    assert alpha["by_status"] == {"abandoned": 1, "consumed": 1, "queued": 1}
    assert alpha["lease"]["owner"] and alpha["lease"]["token"] == 2  # claimed twice, released
    assert by_id["beta"]["by_status"] == {"queued": 1} and by_id["beta"]["problems"] == []
    table = run(rt("sessions", str(written.path)))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SESSION", "STATE", "INPUTS", "BY", "STATUS", "QUARANTINED", "LEASE"]
    assert lines[1].split()[:5] == ["alpha", "idle", "3", "abandoned=1", "consumed=1"]
    assert lines[-1] == "2 session(s)"


def test_inputs_show_status_attempts_last_error_and_result(written: Written) -> None:
    doc = ok_json("inputs", str(written.path), "alpha")
    assert isinstance(doc, dict)
    rows = {r["input_id"]: r for r in doc["inputs"]}
    assert list(rows) == sorted([written.done, written.failed, written.queued])
    done, failed, queued = rows[written.done], rows[written.failed], rows[written.queued]
    assert (done["status"], done["attempts"], done["last_error"]) == ("consumed", 1, None)
    assert done["result"] == {
        "kind": "completed",
        "result": {"text": "the answer", "turns": 1, "tool_calls": 0, "tokens_used": 0},
    }
    assert (failed["status"], failed["attempts"]) == ("abandoned", 3)
    assert failed["last_error"] == {"type": "ExecutorError", "message": ERROR}
    assert failed["terminal"] == {"outcome_type": "abandoned", "reason": "max_attempts_exhausted", "attempts": 3}
    assert (queued["status"], queued["attempts"], queued["result"]) == ("queued", 0, None)
    only = ok_json("inputs", str(written.path), "alpha", "--status", "queued", "--status", "abandoned")
    assert isinstance(only, dict) and {r["input_id"] for r in only["inputs"]} == {written.queued, written.failed}
    table = run(rt("inputs", str(written.path), "alpha"))
    assert table.returncode == 0
    assert f"last error ExecutorError: {ERROR}" in table.stdout and "completed: 'the answer'" in table.stdout
    assert table.stdout.splitlines()[-1] == "3 input(s), 0 quarantined, in session 'alpha'"


def test_ops_lists_the_stored_operations(written: Written) -> None:
    doc = ok_json("ops", str(written.path), "alpha")
    assert isinstance(doc, dict)
    ops = doc["operations"]
    assert [(o["operation_id"], o["status"], o["completion_seq"]) for o in ops] == [
        ("op-0", "completed", 1),
        ("op-1", "completed", 2),
        ("op-2", "failed", 3),
    ]
    assert ops[2]["outcome"] == {"outcome_type": "failed", "error": "tool crashed"}
    assert doc["next_completion_seq"] == 4 and doc["mark_problem"] is None
    table = run(rt("ops", str(written.path), "alpha"))
    assert table.returncode == 0 and "failed: tool crashed" in table.stdout
    none = run(rt("ops", str(written.path), "beta"))
    assert none.returncode == 0 and none.stdout.strip() == "no operations stored for session 'beta'"


def test_show_prints_one_input_in_full_with_its_history(written: Written) -> None:
    doc = ok_json("show", str(written.path), written.failed)
    assert isinstance(doc, dict)
    assert (doc["session_id"], doc["status"], doc["intact"]) == ("alpha", "abandoned", True)
    history = doc["row"]["history"]
    assert [e["to"] for e in history] == ["accepted", "queued", *["staged", "queued"] * 2, "staged", "abandoned"]
    assert doc["row"]["input"]["text"] == "second"
    text = run(rt("show", str(written.path), written.failed, "--session", "alpha"))
    assert text.returncode == 0
    assert text.stdout.splitlines()[0] == f"input {written.failed} of session 'alpha'"
    assert "max attempts exhausted (3)" in text.stdout and ERROR in text.stdout


def test_reading_commands_never_write_nor_claim_a_lease(written: Written, tmp_path: Path) -> None:
    """A live worker holds alpha's lease: every reading command still works, and afterwards the
    folder (every byte and mtime, no new -wal or -shm file) and the lease are as they were."""
    copy = copy_file(written, tmp_path / "held")
    with SqliteRuntimeStore(copy.path) as store:
        held = store.claim_lease(canonical_runtime_id("alpha"), "live-worker", 600.0)
    before = _state(copy.path.parent)
    assert list(before) == ["store.db"]
    path = str(copy.path)
    for args in (
        ("sessions", path),
        ("inputs", path, "alpha"),
        ("ops", path, "alpha"),
        ("show", path, copy.failed),
        ("check", path),
    ):
        for extra in ((), ("--json",)):
            done = run(rt(*args, *extra))
            assert done.returncode == 0, (args, done.stderr)
    assert _state(copy.path.parent) == before
    with SqliteRuntimeStore(copy.path, read_only=True) as store:
        assert store.load_lease(canonical_runtime_id("alpha")) == held


def test_damaged_and_quarantined_rows_are_listed_not_raised(written: Written, tmp_path: Path) -> None:
    copy = copy_file(written, tmp_path / "damaged")
    damage_payload(copy.path, canonical_runtime_id("alpha"), copy.queued)
    doc = ok_json("sessions", str(copy.path))
    assert isinstance(doc, dict) and doc["sessions"][0]["by_status"]["damaged"] == 1
    shown = ok_json("show", str(copy.path), copy.queued)
    assert isinstance(shown, dict) and (shown["status"], shown["intact"]) == ("damaged", False)
    moved = run(rt("quarantine", str(copy.path), "alpha", copy.queued, "--reason", "bit rot"))
    assert moved.returncode == 0, moved.stderr
    listed = ok_json("inputs", str(copy.path), "alpha")
    assert isinstance(listed, dict) and [q["input_id"] for q in listed["quarantined"]] == [copy.queued]
    assert listed["quarantined"][0]["reason"] == "bit rot"
    assert copy.queued not in {r["input_id"] for r in listed["inputs"]}
    shown = ok_json("show", str(copy.path), copy.queued)
    assert isinstance(shown, dict) and (shown["status"], shown["reason"]) == ("quarantined", "bit rot")


@pytest.mark.parametrize("sub", ["sessions", "inputs", "ops", "show"])
def test_a_missing_file_is_a_one_line_usage_error(sub: str, tmp_path: Path) -> None:
    extra = {"sessions": [], "inputs": ["alpha"], "ops": ["alpha"], "show": ["some-id"]}[sub]
    done = run(rt(sub, str(tmp_path / "missing.db"), *extra))
    assert_one_line_usage_error(done, "missing.db", "does not exist")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("sub", ["inputs", "ops"])
def test_unknown_and_malformed_sessions(sub: str, written: Written) -> None:
    one_line_failure(run(rt(sub, str(written.path), "nobody")), "no session 'nobody'")
    assert_one_line_usage_error(run(rt(sub, str(written.path), "rt:session:alpha")), "runtime-id prefix")
    assert_one_line_usage_error(run(rt(sub, str(written.path), "")), "must not be empty")


def test_show_answers_unknown_empty_and_misplaced_ids(written: Written) -> None:
    path = str(written.path)
    one_line_failure(run(rt("show", path, "no-such-input")), "no input 'no-such-input'", "any of 2 session(s)")
    one_line_failure(run(rt("show", path, written.beta, "--session", "alpha")), f"no input '{written.beta}'")
    one_line_failure(run(rt("show", path, written.done, "--session", "nobody")), "no session 'nobody'")
    assert_one_line_usage_error(run(rt("show", path, "  ")), "INPUT must not be empty")


def test_a_file_that_is_not_a_store_is_one_line_exit_one(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database, just some text " * 100)
    for sub, extra in (("sessions", []), ("inputs", ["alpha"])):
        one_line_failure(run(rt(sub, str(junk), *extra)), "error")
    assert junk.read_bytes() == b"this is not an SQLite database, just some text " * 100


def test_an_unsupported_store_url_option_is_a_usage_error(written: Written) -> None:
    done = run(rt("sessions", "postgresql://localhost/db?options=-c%20x%3Dy"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("sub", "needles"),
    [
        (
            "sessions",
            ["--json", "nothing written", "read-only", "exit status: 0", "1 the store", "2 usage error", "130"],
        ),
        ("inputs", ["default: every status", "exit status: 0", "1 the store holds no such session", "130"]),
        ("ops", ["(default: meerkat)", "exit status: 0", "2 usage error", "130"]),
        ("show", ["(default: every session", "exit status: 0", "--session", "130"]),
        ("migrate", ["schema version 7", "--dry-run", "exit status: 0", "1 nothing changed", "130"]),
    ],
)
def test_help_states_defaults_and_exit_statuses(sub: str, needles: list[str]) -> None:
    done = run(rt(sub, "--help"))
    assert done.returncode == 0 and done.stderr == ""
    text = " ".join(done.stdout.split())
    for needle in needles:
        assert needle in text, needle
