"""``check-trace`` on the event logs of two runtime workers sharing one SQLite file with ownership
on (the ownership lockstep's workers, :class:`~meerkat_conformance.ownership.adapter.OwnershipAdapter`):
takeovers, writes whose outcome is unknown and reconciliation. Every history here is one the
ownership model takes step by step (the lockstep compares every step), so check-trace must
explain each log; and a log altered so the model cannot explain it is still rejected."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest
from meerkat_conformance.cli.main import main
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.ownership.adapter import OwnershipAdapter
from meerkat_conformance.ownership.walk import WALK_BOUNDS, walk
from meerkat_conformance.trace.check import TraceVerdict, check_trace
from meerkat_conformance.trace.order import by_runtime, late_reads
from meerkat_conformance.trace.reader import read_log
from meerkat_model.ownership.actions import (
    Ambiguous,
    ClaimRegister,
    Expire,
    FinishOp,
    On,
    Reconcile,
    RegisterOp,
    Release,
)
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.session.actions import Accept, BeginAttach, Destroy, ExecutorSucceeded, Retire, Stop
from meerkat_runtime.session.machine import EVENT_LOG_ENV


def _accept(i: int) -> Accept:
    return Accept(i, 0, -1, -1, 0, 0)


def _record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, actions: Sequence[Hashable]) -> Path:
    """The event logs of the two workers driven through ``actions`` in lockstep with the model."""
    events = tmp_path / "events"
    monkeypatch.setenv(EVENT_LOG_ENV, str(events))
    machine = OwnershipMachine(WALK_BOUNDS)
    lock = Lockstep(machine, OwnershipAdapter(machine))
    try:
        for action in actions:
            lock.apply(action)
    finally:
        lock.close()
    return events


def _lines(events: Path, worker: str) -> tuple[Path, list[dict[str, object]]]:
    (path,) = sorted(events.glob(f"*.{worker}-*.jsonl"))
    return path, [json.loads(line) for line in path.read_text().splitlines()]


def _explained(verdict: TraceVerdict) -> None:
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    assert verdict.ok


def test_a_takeover_by_another_worker_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _record(
        tmp_path, monkeypatch, [ClaimRegister(0), On(0, _accept(0)), Expire(), ClaimRegister(1), On(1, Stop())]
    )
    verdict = check_trace([events])
    _explained(verdict)
    assert verdict.files == 2 and verdict.runtimes == 1  # one file per worker, one history
    assert verdict.rules["register"] == 2 and verdict.rules["stop"] == 1
    path, docs = _lines(events, "w1")
    (n,) = [n for n, doc in enumerate(docs) if doc["rule"] == "stop"]
    docs[n]["after"] = "Retired"  # the new worker's stop, altered: not interleaved, rejected
    docs[n]["changes"] = [["runtime", docs[n]["runtime"], "Idle", "Retired"]]
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    altered = check_trace([events])
    assert altered.rejection is not None and altered.rejection.at.line == n + 1 and not altered.interleaved


def test_a_reconcile_keeps_the_operation_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _record(
        tmp_path,
        monkeypatch,
        [ClaimRegister(0), RegisterOp(0, 1), Ambiguous(0, Stop(), 0), Reconcile(0), FinishOp(0, 1, 0)],
    )
    verdict = check_trace([events])
    _explained(verdict)
    assert verdict.rules["reconcile"] == 1 and verdict.rules["complete_operation"] == 1


def test_a_reconcile_that_adopts_a_destroyed_record_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(tmp_path, monkeypatch, [ClaimRegister(0), Ambiguous(0, Destroy(), 1), Reconcile(0)])
    verdict = check_trace([events])
    _explained(verdict)
    path, docs = _lines(events, "w0")
    (n,) = [n for n, doc in enumerate(docs) if doc["rule"] == "reconcile"]
    assert docs[n]["after"] == "Destroyed" and docs[n - 1]["rule"] == "destroy"  # the landed write, adopted
    docs[n]["after"] = "Stopped"  # a reconcile that brings a destroyed session back
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    rejected = check_trace([events]).rejection
    assert rejected is not None and rejected.at.line == n + 1
    assert "the store recovers phase Destroyed, the event adopted Stopped" in rejected.reason


@pytest.mark.parametrize(
    "actions",
    [
        pytest.param(
            [ClaimRegister(1), Ambiguous(1, Retire(), 1), Release(1), ClaimRegister(0)],
            id="a retire that landed, released in doubt, then claimed by the other worker",
        ),
        pytest.param(
            [
                ClaimRegister(0),
                On(0, _accept(0)),
                On(0, BeginAttach()),
                On(0, _accept(1)),
                Ambiguous(0, ExecutorSucceeded(1), 1),
                Expire(),
                ClaimRegister(1),
            ],
            id="a run's boundary commit that landed, in doubt, then a takeover",
        ),
    ],
)
def test_a_write_that_landed_while_its_worker_was_in_doubt_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, actions: list[Hashable]
) -> None:
    """The worker never learnt the write's outcome, so never published it; the next registration
    recovers it from the store."""
    events = _record(tmp_path, monkeypatch, actions)
    _explained(check_trace([events]))
    marked = [
        (doc["rule"], source)
        for source in ("w0", "w1")
        for doc in (_lines(events, source)[1] if list(events.glob(f"*.{source}-*.jsonl")) else [])
        if doc["details"].get("outcome_unknown") is True  # type: ignore[union-attr]
    ]
    assert marked in ([("unregister", "w1")], [("boundary_commit_failed", "w0")])


def test_a_write_lost_in_doubt_is_allowed_only_after_the_marked_unregister(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's unregister says it was in doubt (``details.outcome_unknown``); without that
    marker the retire it never published is not absorbed by the next registration."""
    events = _record(tmp_path, monkeypatch, [ClaimRegister(1), Ambiguous(1, Retire(), 1), Release(1), ClaimRegister(0)])
    path, docs = _lines(events, "w1")
    (unregister,) = [doc for doc in docs if doc["rule"] == "unregister"]
    del unregister["details"]["outcome_unknown"]  # type: ignore[attr-defined]
    _write(path, docs)
    rejected = check_trace([events]).rejection
    assert rejected is not None and rejected.at.event.rule == "register" and rejected.at.event.source.startswith("w0-")


_ADOPTED_RUN_END = [
    ClaimRegister(0),
    On(0, _accept(0)),
    On(0, BeginAttach()),
    Ambiguous(0, ExecutorSucceeded(1), 1),
    Reconcile(0),
]
"""A run's boundary commit lands with its outcome unknown, then the worker reconciles."""


def test_a_step_missing_from_a_clean_worker_s_log_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker, no failure: it stops the session and unregisters; its next registration
    recovers Stopped. With the stop deleted from the log (the unregister then from Idle) nothing
    explains the Stopped record: the unregister was not in doubt, so no lost write is allowed."""
    events = _record(
        tmp_path, monkeypatch, [ClaimRegister(0), On(0, _accept(0)), On(0, Stop()), Release(0), ClaimRegister(0)]
    )
    _explained(check_trace([events]))
    path, docs = _lines(events, "w0")
    assert [doc["rule"] for doc in docs].count("register") == 2
    kept = [doc for doc in docs if doc["rule"] != "stop"]
    (unregister,) = [doc for doc in kept if doc["rule"] == "unregister"]
    assert unregister["before"] == "Stopped" and "outcome_unknown" not in unregister["details"]  # type: ignore[operator]
    unregister["before"] = "Idle"
    _write(path, kept)
    rejected = check_trace([events]).rejection
    assert rejected is not None and rejected.at.event.rule == "register" and rejected.at.event.seq == len(kept)


def test_a_boundary_commit_found_in_the_store_when_reconciling_is_published_as_the_run_s_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's boundary commit landed but its outcome was unknown: memory requeued the input
    (``boundary_commit_failed``); reconciling finds the commit in the store and publishes it as
    adopted — the run's end from the run in flight (Running, the input Staged), the transition
    the store took, not from the requeued memory."""
    events = _record(
        tmp_path,
        monkeypatch,
        _ADOPTED_RUN_END,
    )
    _, docs = _lines(events, "w0")
    rules = [doc["rule"] for doc in docs]
    n = rules.index("boundary_commit_failed")
    assert rules[n + 1 : n + 3] == ["executor_succeeded", "reconcile"] and docs[n + 1]["details"]["adopted"]
    assert docs[n + 1]["before"] == "Running" and docs[n + 1]["after"] == "Attached"
    assert ["input", "input-0", "Staged", "Consumed"] in docs[n + 1]["changes"]
    _explained(check_trace([events]))
    path, docs = _lines(events, "w0")
    assert docs[n]["details"]["outcome_unknown"] is True  # type: ignore[index]
    del docs[n]["details"]["outcome_unknown"]  # type: ignore[attr-defined]
    _write(path, docs)  # a log written before the marker existed: the adopted flag says enough
    _explained(check_trace([events]))


def _write(path: Path, docs: list[dict[str, object]]) -> None:
    for seq, doc in enumerate(docs, 1):
        doc["seq"] = seq
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))


def test_an_adopted_run_end_must_be_followed_by_its_reconcile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adopted run end and the reconcile after it are one unit: memory becomes the store's
    only at the reconcile. A log whose adopted run end is followed by anything else (here the
    reconcile dropped and the same input attached, staged and consumed again, as if memory had
    kept it queued) is rejected at the event after the adopted one."""
    events = _record(
        tmp_path,
        monkeypatch,
        _ADOPTED_RUN_END,
    )
    path, docs = _lines(events, "w0")
    rules = [doc["rule"] for doc in docs]
    n = rules.index("executor_succeeded")
    assert docs[n]["details"]["adopted"] and rules[n + 1] == "reconcile"
    again = [dict(docs[rules.index(rule)]) for rule in ("begin_attach", "finish_attach", "start_run")]
    end = {**docs[n], "details": {**docs[n]["details"]}}  # type: ignore[dict-item]
    del end["details"]["adopted"]  # type: ignore[attr-defined]
    _write(path, [*docs[: n + 1], *again, end])
    verdict = check_trace([events])
    assert verdict.rejection is not None and not verdict.interleaved
    assert verdict.rejection.at.event.seq == n + 2 and verdict.rejection.at.event.rule == "begin_attach"
    assert "reconcile" in verdict.rejection.reason


def test_a_superseded_worker_reconciling_after_a_takeover_is_interleaved_not_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Worker 1 is in doubt when worker 0 takes the session over and destroys it; worker 1 then
    reconciles (a read, not fenced) and adopts the destroyed record under its old fence. In fence
    order that reconcile comes before worker 0's registration, where the model cannot explain it:
    the log is reported as interleaved (exit status 4), neither explained nor rejected."""
    events = _record(
        tmp_path,
        monkeypatch,
        [ClaimRegister(1), Ambiguous(1, Stop(), 1), Expire(), ClaimRegister(0), On(0, Destroy()), Reconcile(1)],
    )
    verdict = check_trace([events])
    assert verdict.rejection is None and not verdict.ok
    (mixed,) = verdict.interleaved
    assert mixed.at.event.rule == "reconcile" and mixed.at.event.source.startswith("w1-")
    assert mixed.earlier[0].startswith("w1-") and mixed.later[0].startswith("w0-")
    assert mixed.earlier[1] is not None and mixed.later[1] is not None and mixed.earlier[1] < mixed.later[1]
    assert "come from several workers whose histories overlap" in mixed.reason
    assert main(["check-trace", str(events)]) == 4
    assert "check-trace: INTERLEAVED:" in capsys.readouterr().out
    assert main(["check-trace", "--json", str(events)]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and "rejection" not in doc and doc["interleaved"][0]["line"] == mixed.at.line


def _interleaving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _record(
        tmp_path,
        monkeypatch,
        [ClaimRegister(1), Ambiguous(1, Stop(), 1), Expire(), ClaimRegister(0), On(0, Destroy()), Reconcile(1)],
    )


def test_a_bad_event_of_the_newer_worker_in_an_overlap_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the superseded worker's reconcile may be unexplained in an overlap: the replay goes on
    past it (the newer worker's registration recovers the store), so a bad event of the newer
    worker — its destroy altered to Stopped -> Retired — is rejected, not hidden as interleaved."""
    events = _interleaving(tmp_path, monkeypatch)
    path, docs = _lines(events, "w0")
    (n,) = [n for n, doc in enumerate(docs) if doc["rule"] == "destroy"]
    docs[n]["after"] = "Retired"
    docs[n]["changes"] = [["runtime", docs[n]["runtime"], "Stopped", "Retired"]]
    _write(path, docs)
    verdict = check_trace([events])
    assert verdict.rejection is not None and verdict.rejection.at.event.rule == "destroy"
    assert verdict.rejection.at.event.source.startswith("w0-")


def test_a_bad_registration_of_the_superseded_worker_before_the_overlap_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexplained event that is not a reconcile of the earlier worker after the newer one
    registered — here the earlier worker's first registration, altered to recover Retired — is
    rejected although the two workers' histories overlap later."""
    events = _interleaving(tmp_path, monkeypatch)
    path, docs = _lines(events, "w1")
    assert docs[0]["rule"] == "register"
    docs[0]["after"] = "Retired"
    docs[0]["changes"] = [
        ["registration", docs[0]["runtime"], "Unregistered", "Queuing"],
        ["runtime", docs[0]["runtime"], "Unregistered", "Retired"],
    ]
    _write(path, docs)
    verdict = check_trace([events])
    assert verdict.rejection is not None and not verdict.interleaved
    assert verdict.rejection.at.event.rule == "register" and verdict.rejection.at.event.source.startswith("w1-")


def test_a_superseded_read_explained_by_coincidence_is_interleaved_and_the_rest_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 0's stop is in doubt (it did not land) when worker 1 takes over and stops the
    session (in doubt, landed); worker 0 then reconciles and publishes the stop it finds in the
    store as its own, adopted. In fence order that adopted stop is explained, but worker 1's
    registration (Idle) then is not: the log is interleaved at worker 0's adopted stop, and
    worker 1's events are still checked — altered, they are rejected."""
    actions = [
        ClaimRegister(0),
        Ambiguous(0, Stop(), 0),
        Expire(),
        ClaimRegister(1),
        Ambiguous(1, Stop(), 1),
        Reconcile(0),
        Reconcile(1),
    ]
    events = _record(tmp_path, monkeypatch, actions)
    verdict = check_trace([events])
    assert verdict.rejection is None and not verdict.ok, verdict.rejection
    (mixed,) = verdict.interleaved
    assert mixed.at.event.source.startswith("w0-") and mixed.at.event.details.get("adopted") is True
    path, docs = _lines(events, "w1")
    (n,) = [n for n, doc in enumerate(docs) if doc["rule"] == "reconcile"]
    docs[n]["details"]["attached"] = True  # type: ignore[index]
    _write(path, docs)
    rejected = check_trace([events]).rejection
    assert rejected is not None and rejected.at.event.source.startswith("w1-") and rejected.at.line == n + 1


def test_the_ownership_walk_s_logs_are_explained_or_interleaved_never_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logs of the two-worker ownership walks (the lockstep found no difference with the
    model at any step): every runtime is explained, or reported interleaved — and then only at a
    superseded worker's reconcile (or its adopted write) published at or after the newer
    worker's first event; none is rejected."""
    events = tmp_path / "events"
    monkeypatch.setenv(EVENT_LOG_ENV, str(events))
    for seed in (1, 2, 3):
        tally = walk(seed, 200)
        assert tally.disagreements == 0
    verdict = check_trace([events])
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    # 23 runtimes, 385 events today (probe steps count in the walks' 200 steps: fewer fresh files)
    assert verdict.runtimes >= 20 and verdict.events > 350 and not verdict.incomplete
    runtimes = by_runtime(read_log([events]).events)
    for mixed in verdict.interleaved:  # only a superseded worker's reconcile after the takeover
        at = mixed.at.event
        assert at.rule == "reconcile" or at.details.get("adopted") is True, mixed.reason
        assert at.source == mixed.earlier[0]
        late = [
            (read.event.source, read.event.seq, later.events[0].event.time)
            for read, _, later in late_reads(runtimes[(at.store, at.runtime_id)])
        ]
        assert any((source, seq) == (at.source, at.seq) and time <= at.time for source, seq, time in late)
    assert verdict.rules["reconcile"] > 10 and verdict.rules["register"] > 50
