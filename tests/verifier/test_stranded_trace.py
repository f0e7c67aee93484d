"""``meerkat-verify --trace-dot`` / ``--trace-json`` without a violation: the trace goes to the
shallowest stranded state (else to the shallowest state stranded without give-ups); a violation
of any machine still comes first, and a stranded state before one stranded only without
give-ups."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from meerkat_model import catalog
from meerkat_model.cli import verify
from meerkat_model.machine import Bounds, Machine

from tests.verifier.toys import SMALL_OPS, DrainIsDropping, LeakyCancel, Livelock


@pytest.fixture(autouse=True)
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """``livelock`` (stranded), ``dropping`` (stranded only without its give-up ``drain``) and
    ``leaky`` (an invariant violation) in the catalog, under every profile."""
    machines: dict[str, tuple[Callable[[Bounds], Machine[Any, Any]], Bounds]] = {
        "livelock": (Livelock, Bounds({"drain": 0})),
        "dropping": (DrainIsDropping, Bounds({"drain": 1})),
        "leaky": (LeakyCancel, SMALL_OPS),
    }
    for name, (machine, bounds) in machines.items():
        monkeypatch.setitem(catalog.MACHINES, name, machine)
        for profile in catalog.PROFILES:
            monkeypatch.setitem(catalog.PROFILES[profile], name, bounds)


def traced(tmp_path: Path, *machines: str) -> tuple[dict[str, Any], str]:
    """Run the CLI on ``machines`` with both trace files (it fails); their JSON document and DOT text."""
    dot, doc = tmp_path / "t.dot", tmp_path / "t.json"
    argv = [a for m in machines for a in ("--machine", m)]
    assert verify.main([*argv, "--no-prove", "--workers", "1", "--trace-dot", str(dot), "--trace-json", str(doc)]) == 1
    document: dict[str, Any] = json.loads(doc.read_text())
    return document, dot.read_text()


def test_the_trace_goes_to_the_shallowest_stranded_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc, dot = traced(tmp_path, "livelock")
    err = capsys.readouterr().err
    assert f"trace written to {tmp_path / 't.json'} (livelock: stranded)" in err
    assert f"trace written to {tmp_path / 't.dot'} (livelock: stranded)" in err
    assert doc["machine"] == "livelock"
    assert doc["violation"] == {
        "invariant": "stranded",
        "description": "from every reachable state some sequence of steps reaches a state without obligations",
        "message": "obligations no sequence of steps can clear: queued job must be drained",
        "depth": 1,
    }
    steps = doc["steps"]
    assert [s["transition"] for s in steps] == [None, "queue"]
    assert steps[-1]["state"] == {"job": "queued"}
    assert dot.startswith('digraph "livelock: stranded"') and 's0 -> s1 [label="queue"]' in dot


def test_without_stranded_states_it_goes_to_one_stranded_without_give_ups(tmp_path: Path) -> None:
    doc, dot = traced(tmp_path, "dropping")
    violation = doc["violation"]
    assert violation["invariant"] == "stranded without give-ups" and violation["depth"] == 1
    assert violation["message"] == "obligations only a give-up can clear: queued job must be drained"
    assert "gives no work up" in violation["description"]
    assert 'digraph "dropping: stranded without give-ups"' in dot


def test_a_violation_comes_first_then_a_stranded_state(tmp_path: Path) -> None:
    doc, _ = traced(tmp_path, "livelock", "leaky")
    assert doc["machine"] == "leaky" and doc["violation"]["invariant"] == "active_count_matches"
    doc, _ = traced(tmp_path, "dropping", "livelock")
    assert doc["machine"] == "livelock" and doc["violation"]["invariant"] == "stranded"
