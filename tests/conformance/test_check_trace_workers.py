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
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.ownership.adapter import OwnershipAdapter
from meerkat_conformance.ownership.walk import WALK_BOUNDS
from meerkat_conformance.trace.check import TraceVerdict, check_trace
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


def test_a_reconcile_keeps_the_operation_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _record(
        tmp_path,
        monkeypatch,
        [ClaimRegister(0), RegisterOp(0, 1), Ambiguous(0, Stop(), 0), Reconcile(0), FinishOp(0, 1, 0)],
    )
    verdict = check_trace([events])
    _explained(verdict)
    assert verdict.rules["reconcile"] == 1 and verdict.rules["complete_operation"] == 1


def _lines(events: Path, worker: str) -> tuple[Path, list[dict[str, object]]]:
    (path,) = sorted(events.glob(f"*.{worker}-*.jsonl"))
    return path, [json.loads(line) for line in path.read_text().splitlines()]


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
