"""How the command's report words a run that stopped at a disagreement: the coverage floor is
not assessed (not "MISSED"), the disagreement count is the failing example (the search's
shrinking re-runs counted apart), and the trace prints every column in full."""

from __future__ import annotations

import pytest
from meerkat_conformance.cli.main import main
from meerkat_conformance.cli.report import format_report
from meerkat_conformance.lockstep.outcome import Err, Ok
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.lockstep.trace import Trace
from meerkat_runtime.store import lease, sqlite
from meerkat_runtime.store.lease import Lease


def test_a_stopped_machine_s_floor_is_not_assessed_and_its_shrinking_runs_are_counted_apart() -> None:
    tally = MachineTally("toy", ("a", "b"), reachable=("a", "b"), disagreements=37)
    tally.covered.add("a")
    text = format_report([tally], stopped={"toy": "at a disagreement"})
    assert "MISSED" not in text
    assert "coverage floor        not assessed (the run stopped early: at a disagreement)" in text
    assert "disagreements         1 (the minimal example above; 36 more failing runs while shrinking it)" in text
    assert "MISSED: b" in format_report([tally])  # a run that did not stop early still misses its floor


def test_one_failing_run_is_one_disagreement() -> None:
    assert "disagreements         1\n" in format_report([MachineTally("toy", disagreements=1)]) + "\n"


def test_the_trace_prints_every_column_in_full() -> None:
    trace = Trace("toy")
    label = "register() + begin_attach() + finish_attach() + a label longer than any column"
    model = Err("durable_write_failed", "a detail").brief() + " and more words than a column holds"
    trace.record(label, Err("durable_write_failed", "x"), Ok(()), False)
    trace.record("short()", Ok(()), Ok(()), True)
    text = trace.render()
    assert label in text and "..." not in text
    lines = text.splitlines()
    assert lines[1].rindex("ok ()") == lines[2].rindex("ok ()") == lines[0].index("runtime")
    trace.record("x", Err(model, ""), Ok(()), True)
    assert model in trace.render()


def test_the_command_says_the_floor_was_not_assessed_when_a_machine_stops_early(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = lease.claim_outcome

    def planted(runtime_id: str, current: Lease | None, owner: str, duration_s: float, now: float) -> Lease:
        if current is not None and current.owner != owner and not current.expired(now):
            return Lease(runtime_id, owner, current.token + 1, now + duration_s)
        return original(runtime_id, current, owner, duration_s, now)

    monkeypatch.setattr(f"{sqlite.__name__}.claim_outcome", planted)
    assert main(["--profile", "fast", "--machine", "ownership", "--max-examples", "1"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED on ownership" in out and "MISSED" not in out + err
    assert "disagreements         1\n" in out
