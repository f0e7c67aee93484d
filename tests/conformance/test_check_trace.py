"""``check-trace`` proven both ways: traces recorded from real runs (a restarted session, killed
and taken-over worker processes, the lockstep conformance run) are explained by the model, and
hand-altered traces (a lost requeue, a reused sequence number, a run after destroy, an event
published before its commit) are each rejected at the event that gives them away."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from meerkat_conformance.cli.main import main
from meerkat_conformance.lockstep.profiles import get_profile
from meerkat_conformance.lockstep.runner import run_lockstep
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.session.stateful import SessionLockstepMachine
from meerkat_conformance.takeover.driver import run_takeovers
from meerkat_conformance.trace.check import check_trace
from meerkat_model.session.machine import SessionMachine
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.machine import EVENT_LOG_ENV, MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.session.testing import Fail, ScriptedExecutor
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec

from tests.runtime_session.helpers import make_prompt, persistent


def _record(directory: Path, *, retry: RetryPolicy | None = None, log: EventLog | None = None) -> None:
    """One session on a SQLite file: a failing run requeued twice, a duplicate, a crash (the
    process's memory dropped), a second worker registering it, control, destroy."""

    events = log

    async def body() -> None:
        path = directory.parent / f"{directory.name}.sqlite"
        store = SqliteRuntimeStore(path)
        log = EventLog(directory) if events is None else events
        first = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="w1"), retry=retry)
        first.events.subscribe(log)
        await first.register_session_with_executor("s", ScriptedExecutor(Fail("boom"), Fail("boom again")))
        await first.accept_input("s", make_prompt("a", idempotency_key="k", input_id="in-a"))
        await first.settle("s")
        await first.accept_input("s", make_prompt("a again", idempotency_key="k", input_id="in-a2"))
        await first.accept_input("s", make_prompt("b", input_id="in-b"))
        await first.settle("s")
        await first.halt()
        second = MeerkatMachine.persistent(store, ownership=OwnershipConfig(owner_id="w1"), retry=retry)
        second.events.subscribe(log)
        await second.register_session_with_executor("s", ScriptedExecutor())
        await second.accept_input("s", make_prompt("c", input_id="in-c"))
        await second.settle("s")
        await second.retire_runtime("s")
        await second.destroy_runtime("s")
        await second.close()
        log.close()
        store.close()

    asyncio.run(body())


def _lines(directory: Path) -> tuple[Path, list[dict[str, Any]]]:
    files = sorted(directory.glob("*.jsonl"))
    first = min(files, key=lambda p: json.loads(p.read_text().splitlines()[0])["time"])
    return first, [json.loads(line) for line in first.read_text().splitlines()]


def _write(path: Path, docs: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))


def _index(docs: list[dict[str, Any]], rule: str, nth: int = 0) -> int:
    found = [n for n, doc in enumerate(docs) if doc["rule"] == rule]
    return found[nth]


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    directory = tmp_path / "trace"
    _record(directory)
    return directory


def test_a_recorded_trace_with_a_crash_and_a_restart_is_explained(recorded: Path) -> None:
    verdict = check_trace([recorded])
    assert verdict.ok, verdict.rejection
    assert verdict.files == 2 and verdict.runtimes == 1
    assert {"register", "accept", "deduplicate", "start_run", "executor_failed", "executor_succeeded"} <= set(
        verdict.rules
    )
    assert verdict.rules["register"] == 2 and verdict.rules["destroy_with_loop"] == 1


def test_a_trace_under_another_attempt_limit_is_replayed_under_that_limit(tmp_path: Path) -> None:
    directory = tmp_path / "trace"
    _record(directory, retry=RetryPolicy(max_attempts=2))
    verdict = check_trace([directory])
    assert verdict.ok, verdict.rejection
    assert verdict.rules["executor_failed_exhausted"] == 1  # the second failure exhausts 2 attempts


def test_a_lost_requeue_is_rejected_at_the_next_run(recorded: Path) -> None:
    path, docs = _lines(recorded)
    lost = _index(docs, "executor_failed")
    next_start = _index(docs, "start_run", 1)
    del docs[lost]
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == next_start  # the line after the deleted one moved up by one
    assert verdict.rejection.at.event.rule == "start_run"
    assert "a run is already in flight" in verdict.rejection.reason
    assert "executor_failed" in verdict.rejection.enabled


def test_a_reused_sequence_number_is_rejected_at_the_second_use(recorded: Path) -> None:
    path, docs = _lines(recorded)
    n = _index(docs, "start_run")
    docs[n]["seq"] = docs[n - 1]["seq"]
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == n + 1
    assert f"reused sequence number {docs[n]['seq']}" in verdict.rejection.reason


def test_a_run_after_destroy_is_rejected_at_that_run(recorded: Path) -> None:
    files = sorted(recorded.glob("*.jsonl"))
    last = max(files, key=lambda p: json.loads(p.read_text().splitlines()[0])["time"])
    docs = [json.loads(line) for line in last.read_text().splitlines()]
    destroy = _index(docs, "destroy_with_loop")
    forged = dict(docs[_index(docs, "start_run")])
    forged["seq"] = docs[destroy]["seq"] + 1
    docs.insert(destroy + 1, forged)
    for later in docs[destroy + 2 :]:
        later["seq"] += 1
    _write(last, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == destroy + 2
    assert verdict.rejection.at.event.rule == "start_run"
    assert verdict.rejection.state["runtime"] == "destroyed"


def test_an_event_published_before_its_commit_is_rejected(recorded: Path) -> None:
    """The run of ``in-b`` published before the accept that queued it was committed: the two
    lines (and their numbers) swapped, so the sequence still grows — the model refuses the run."""
    path, docs = _lines(recorded)
    accept_b = next(n for n, doc in enumerate(docs) if doc["rule"] == "accept" and doc["details"]["input"] == "in-b")
    start_b = next(n for n, doc in enumerate(docs) if doc["rule"] == "start_run" and doc["details"]["input"] == "in-b")
    early = docs.pop(start_b)
    early["seq"], docs[accept_b]["seq"] = docs[accept_b]["seq"], early["seq"]
    docs.insert(accept_b, early)
    for n in range(accept_b + 1, start_b + 1):
        docs[n]["seq"] = docs[n - 1]["seq"] + 1
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == accept_b + 1
    assert verdict.rejection.at.event.rule == "start_run"
    assert "start_run" not in verdict.rejection.enabled


def test_the_command_accepts_rejects_and_refuses_bad_input(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-trace", str(recorded)]) == 0
    assert "OK: the model explains all" in capsys.readouterr().out
    path, docs = _lines(recorded)
    docs[3]["seq"] = docs[2]["seq"]
    _write(path, docs)
    assert main(["check-trace", "--json", str(recorded)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["rejection"]["line"] == 4
    assert main(["check-trace", str(recorded / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    path.write_text("not json\n")
    assert main(["check-trace", str(path)]) == 2
    assert "not an event" in capsys.readouterr().err


@pytest.mark.slow
def test_traces_of_killed_and_taken_over_worker_processes_are_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events"
    monkeypatch.setenv(EVENT_LOG_ENV, str(events))
    report = run_takeovers(tmp_path, takeovers=8, seed=7, lease_s=0.25, renew_every_s=0.08)
    assert report.ok, report.render()
    verdict = check_trace([events])
    assert verdict.ok, verdict.rejection
    assert verdict.files > 8  # one file per worker process
    assert verdict.rules["register"] > 8 and verdict.rules.get("executor_succeeded", 0) > 0


@pytest.mark.slow
def test_traces_of_the_lockstep_conformance_run_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "events"
    monkeypatch.setenv(EVENT_LOG_ENV, str(events))
    tally = fresh_tally(SessionMachine(SessionLockstepMachine.BOUNDS))
    run_lockstep(SessionLockstepMachine, get_profile("fast"), tally)
    assert tally.disagreements == 0 and tally.crashes > 0
    verdict = check_trace([events])
    assert verdict.ok, verdict.rejection
    assert verdict.runtimes > 10


def _drop_changes(doc: dict[str, Any]) -> None:
    del doc["changes"]


def _no_changes(doc: dict[str, Any]) -> None:
    doc["changes"] = []


def _runtime_change_only(doc: dict[str, Any]) -> None:
    doc["changes"] = [c for c in doc["changes"] if c[0] == "runtime"]


def _an_unmoved_input_listed(doc: dict[str, Any]) -> None:
    doc["changes"].append(["input", "in-a", "Consumed", "Consumed"])


def test_an_event_without_its_changes_field_is_a_malformed_line(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, docs = _lines(recorded)
    n = _index(docs, "executor_succeeded")
    _drop_changes(docs[n])
    _write(path, docs)
    assert main(["check-trace", str(recorded)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{n + 1}: not an event: field 'changes': missing" in err


@pytest.mark.parametrize(
    ("rule", "alter", "reason"),
    [
        ("accept", _no_changes, "the model moves input in-a Absent -> Queued: the event does not list it"),
        ("executor_succeeded", _no_changes, "the model moves runtime rt:session:s Running -> Attached; input in-a"),
        ("executor_succeeded", _runtime_change_only, "the model moves input in-a Staged -> Consumed: the event does"),
        (
            "deduplicate",
            _an_unmoved_input_listed,
            "the event moves input in-a Consumed -> Consumed; the model does not",
        ),
    ],
)
def test_an_event_that_does_not_list_exactly_what_the_model_moved_is_rejected(
    recorded: Path, rule: str, alter: Any, reason: str
) -> None:
    """The changes must be the entities the model's step moved, all of them, each the same way."""
    path, docs = _lines(recorded)
    n = _index(docs, rule)
    alter(docs[n])
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == n + 1 and verdict.rejection.at.event.rule == rule
    assert reason in verdict.rejection.reason


def test_a_run_end_whose_outcome_is_not_the_models_is_rejected(recorded: Path) -> None:
    path, docs = _lines(recorded)
    n = _index(docs, "executor_succeeded")
    assert docs[n]["details"]["outcome"] == "completed_without_result"
    docs[n]["details"]["outcome"] = "failed"
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None and verdict.rejection.at.line == n + 1
    assert "details.outcome is 'failed'; the model gives the input's waiters outcome 'completed_without_result'" in (
        verdict.rejection.reason
    )
    docs[n]["details"]["outcome"] = "completed"  # with_result false: the executor returned no result
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None and verdict.rejection.at.line == n + 1
    docs[n]["details"]["outcome"] = "completed_without_result"
    docs[_index(docs, "executor_failed")]["details"]["outcome"] = "abandoned"  # a requeue finishes nothing
    _write(path, docs)
    verdict = check_trace([recorded])
    assert verdict.rejection is not None and verdict.rejection.at.event.rule == "executor_failed"
    assert "the model gives the input's waiters no outcome" in verdict.rejection.reason


def _record_ops(directory: Path) -> Path:
    """One session's operation registry: two operations registered, one completed, the other
    terminated with its owner. Returns the log file."""

    async def body() -> None:
        machine, _ = persistent()
        log = EventLog(directory)
        machine.events.subscribe(log)
        await machine.register_session("s")
        registry = await machine.ops_lifecycle_registry("s")
        for name in ("op-1", "op-2"):
            registry.register_operation(OperationSpec(name, OperationKind.BACKGROUND_TOOL_OP, "s", "tool", "test"))
            registry.provisioning_succeeded(name)
        registry.complete_operation("op-1", OperationResult("op-1", "done", False, 1, 0))
        registry.terminate_owner("owner gone")
        await machine.close()
        log.close()

    asyncio.run(body())
    (path,) = directory.glob("*.jsonl")
    return path


def _ops_line(docs: list[dict[str, Any]], rule: str) -> int:
    return next(n for n, doc in enumerate(docs) if doc["machine"] == "ops" and doc["rule"] == rule)


@pytest.mark.parametrize(
    ("rule", "changes", "reason"),
    [
        ("complete_operation", [], "complete_operation moves one operation; the event's changes list 0"),
        ("terminate_owner", [], "terminate_owner moves every operation that is not terminal (['op-2'])"),
        ("collect_completed", [["operation", "op-1", "Completed", "Completed"]], "moves no operation"),
    ],
)
def test_an_operation_event_that_does_not_list_what_the_model_moved_is_rejected(
    tmp_path: Path, rule: str, changes: list[list[str]], reason: str
) -> None:
    path = _record_ops(tmp_path / "ops")
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert check_trace([path]).ok
    if rule == "collect_completed":  # not in the recording: a registry-wide call that moves nothing
        forged = dict(docs[_ops_line(docs, "terminate_owner")], rule=rule, before="Idle", after="Idle", details={})
        docs.append(dict(forged, seq=docs[-1]["seq"] + 1))
        n = len(docs) - 1
    else:
        n = _ops_line(docs, rule)
    docs[n]["changes"] = changes
    _write(path, docs)
    verdict = check_trace([path])
    assert verdict.rejection is not None
    assert verdict.rejection.at.line == n + 1 and verdict.rejection.at.event.rule == rule
    assert reason in verdict.rejection.reason


def test_nothing_to_check_is_an_error_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty directory, events one directory down (not read), an empty file: exit 2, never
    "OK ... all 0 events"."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check-trace", str(empty)]) == 2
    assert f"no event log files (*.jsonl, *.jsonl.N) in {empty}" in capsys.readouterr().err
    _record(tmp_path / "logs" / "events")
    assert main(["check-trace", str(tmp_path / "logs")]) == 2
    assert f"subdirectories are not read; name them: {tmp_path / 'logs' / 'events'}" in capsys.readouterr().err
    blank = tmp_path / "blank.jsonl"
    blank.write_text("")
    assert main(["check-trace", str(blank)]) == 2
    assert "nothing to check: no events in 1 file(s)" in capsys.readouterr().err
    assert not check_trace([blank]).ok
    assert main(["check-trace", str(tmp_path / "logs" / "events")]) == 0


def test_a_log_rotated_by_the_event_log_is_read_oldest_first(tmp_path: Path) -> None:
    directory = tmp_path / "trace"
    _record(directory, log=EventLog(directory, max_bytes=2000))
    rotated = sorted(p.name for p in directory.iterdir())
    assert sum(1 for name in rotated if not name.endswith(".jsonl")) >= 3  # .jsonl.1, .jsonl.2, ...
    verdict = check_trace([directory])
    assert verdict.ok, verdict.rejection
    assert verdict.files == len(rotated)
    newest_first = sorted(directory.iterdir(), key=lambda p: p.name)  # the shell's order: x.jsonl, x.jsonl.1, ...
    assert check_trace(newest_first).ok


def test_a_log_whose_start_was_rotated_away_is_incomplete_not_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "trace"
    _record(directory, log=EventLog(directory, max_bytes=2000, max_files=1))
    verdict = check_trace([directory])
    assert verdict.rejection is None and not verdict.ok
    (gap,) = verdict.incomplete
    assert gap.at.file.endswith(".jsonl.1") and gap.at.line == 1 and gap.at.event.seq > 1
    assert main(["check-trace", str(directory)]) == 3
    out = capsys.readouterr().out
    assert "check-trace: INCOMPLETE:" in out
    assert (
        f"the log of runtime rt:session:s (source {gap.at.event.source}) starts at seq {gap.at.event.seq}: "
        "earlier events were rotated away or are missing; it cannot be replayed from the start"
    ) in out
    assert "REJECTED" not in out


def test_a_torn_last_line_is_a_note_and_a_malformed_line_elsewhere_is_refused(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash while a line was written leaves it without its newline: reported, not checked."""
    path, docs = _lines(recorded)
    text = path.read_text()
    torn = text[: len(text) - 40]  # the last line cut short, no newline at its end
    path.write_text(torn)
    assert main(["check-trace", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert f"check-trace: note: {path}:{len(docs)}: the last line is cut short" in out
    verdict = check_trace([recorded])
    assert verdict.ok and len(verdict.notes) == 1
    assert verdict.events == sum(len(p.read_text().splitlines()) for p in recorded.glob("*.jsonl")) - 1
    path.write_text(torn + "\n")  # a whole line that is not an event: malformed
    assert main(["check-trace", str(recorded)]) == 2
    assert f"{path}:{len(docs)}: not an event" in capsys.readouterr().err
    lines = text.splitlines(keepends=True)
    path.write_text("".join([lines[0][:30], *lines[1:]]))  # a cut line that is not the last: malformed
    assert main(["check-trace", str(recorded)]) == 2
    assert f"{path}:1: not an event" in capsys.readouterr().err
