"""``meerkat-verify --trace-json``: the first violation's trace as a ``meerkat.trace`` document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meerkat_model.cli import verify
from meerkat_model.verifier import explore
from meerkat_model.verifier.report import plain

from tests.verifier.toys import SMALL_OPS, LeakyCancel


def test_the_trace_is_written_with_every_field_of_every_step(
    buggy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.json"
    assert verify.main(["--machine", buggy, "--no-prove", "--trace-json", str(path)]) == 1
    assert f"trace written to {path}" in capsys.readouterr().err
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"], doc["machine"], doc["profile"]) == ("meerkat.trace", 1, buggy, "ci")
    assert doc["bounds"] == dict(SMALL_OPS.values) and doc["symmetry"] is True
    assert doc["violation"]["invariant"] == "active_count_matches"
    assert doc["violation"]["description"] and doc["violation"]["depth"] == 2
    steps = doc["steps"]
    assert [s["index"] for s in steps] == [0, 1, 2]
    assert [s["transition"] for s in steps] == [None, "register_operation", "cancel_operation"]
    assert steps[1]["action"] == "register_operation(0, 1)"
    assert steps[0]["changed"] == {} and steps[1]["changed"]["active_count"] == [0, 1]
    assert set(steps[0]["state"]) == set(steps[2]["state"])  # every field, not only the changed ones
    assert steps[2]["state"]["active_count"] == 1 and steps[2]["state"]["op[0]"].startswith("cancelled")


def test_every_step_is_found_in_the_reduced_graph_by_its_canonical_fields(buggy: str, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    verify.main(["--machine", buggy, "--no-prove", "--trace-json", str(path)])
    doc = json.loads(path.read_text())
    machine = LeakyCancel(SMALL_OPS)
    exploration = explore(machine)
    described = [plain(dict(machine.describe(s))) for s in exploration.state_list]
    for step in doc["steps"]:
        assert step["canonical"] in described


def test_no_violation_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.json"
    assert verify.main(["--profile", "tiny", "--machine", "ops", "--no-prove", "--trace-json", str(path)]) == 0
    assert not path.exists()
    assert "no violation and no stranded state, no trace written to --trace-json" in capsys.readouterr().err
