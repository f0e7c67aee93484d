"""``run_proofs`` (the API the verify CLI calls), the report and the command line."""

from __future__ import annotations

import json

import pytest
from meerkat_model.proofs import ProofReport, ProofResult, run_proofs
from meerkat_model.proofs.__main__ import main


@pytest.fixture(scope="module")
def report() -> ProofReport:
    return run_proofs(8)


def test_run_proofs_proves_every_invariant_and_finds_no_failure(report: ProofReport) -> None:
    assert report.ids == 8
    assert {r.machine for r in report.results} == {"ops", "session", "ownership"}
    assert [r.name for r in report.results if r.status == "failed"] == []
    categories = {r.name.split(":")[0] for r in report.results}
    assert categories == {"inductive", "step", "enabled", "table", "drift", "total"}
    for r in report.results:
        if r.name.startswith(("inductive:", "step:", "enabled:")):
            assert r.status == "proved", r.name
    assert next(r for r in report.results if r.name == "drift:ops").status == "proved"
    assert next(r for r in report.results if r.name == "drift:session").status == "proved"
    assert next(r for r in report.results if r.name == "table:session").status == "proved"
    assert next(r for r in report.results if r.name == "total:ops").status == "proved"
    assert next(r for r in report.results if r.name == "total:session").status == "proved"
    assert next(r for r in report.results if r.name == "total:ownership").status == "proved"
    assert not any(r.name in ("table:ownership", "drift:ownership") for r in report.results)
    assert not any(r.assumes for r in report.results)
    assert report.ok


def test_report_json_and_render_agree_with_results(report: ProofReport) -> None:
    data = report.to_json()
    assert data["ids"] == 8
    assert data["ok"] == report.ok
    assert len(data["results"]) == len(report.results)
    json.dumps(data)  # plain data only
    text = report.render()
    assert "inductive:op.terminal_outcome" in text
    assert f"{len(report.by_status('proved'))}/{len(report.results)} proved" in text


def test_report_ok_requires_every_result_proved() -> None:
    good = ProofResult("inductive:x", "ops", "proved", 0.1)
    bad = ProofResult(
        "inductive:y",
        "ops",
        "failed",
        0.1,
        {"kind": "counterexample to induction", "invariant": "y", "transition": "t", "pre": {"a": 1}, "post": {"a": 2}},
    )
    assert ProofReport(2, [good]).ok
    mixed = ProofReport(2, [good, bad])
    assert not mixed.ok
    text = mixed.render()
    assert "counterexample for ops/inductive:y" in text
    assert "transition: t" in text and "a = 2" in text


def test_run_proofs_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_proofs(0)
    with pytest.raises(ValueError, match="unknown machine"):
        run_proofs(2, machines=("nope",))
    with pytest.raises(ValueError, match="depth must be at least 0, got -1"):
        run_proofs(2, machines=("ops",), depth=-1)


def test_cli_json_for_one_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--ids", "3", "--machine", "ops", "--no-reachability", "--no-tables", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["ok"] is True
    assert {r["machine"] for r in data["results"]} == {"ops"}
    assert all(r["name"].startswith("inductive:") for r in data["results"])


def test_cli_scaling_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--scale", "2,3", "--machine", "session"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["machine", "ids", "seconds"]
    assert [line.split()[1] for line in lines[1:]] == ["2", "3"]


def test_cli_rejects_bad_ids(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--ids", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--scale", "x"])
    assert exc.value.code == 2
