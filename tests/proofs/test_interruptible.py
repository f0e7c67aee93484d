"""Ctrl-C during a solver query: it stops the query and reaches Python as KeyboardInterrupt
(z3 left alone swallows it and reports the query ``unknown``)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import z3

from tests.cli.commands import command, interrupt_when

pytestmark = pytest.mark.slow

# A query z3 cannot finish in minutes (12 pigeons, 11 holes), run inside interruptible_queries.
_CHILD = """
import sys
import z3
from meerkat_model.proofs import interruptible

interruptible.WATCH = sys.argv[1] == "on"
holes = 11
p = [[z3.Bool(f"p{i}_{j}") for j in range(holes)] for i in range(holes + 1)]
s = z3.Solver()
for row in p:
    s.add(z3.Or(row))
for j in range(holes):
    for i in range(holes + 1):
        for k in range(i + 1, holes + 1):
            s.add(z3.Not(z3.And(p[i][j], p[k][j])))
with interruptible.interruptible_queries():
    try:
        print("checking", flush=True)
        result = s.check()
        print("returned", result, s.reason_unknown(), flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(130)
"""


def _query(watch: str) -> tuple[int, str]:
    done = interrupt_when([sys.executable, "-c", _CHILD, watch], marker="checking", settle=0.5, timeout=180)
    return done.returncode, done.stdout


def test_ctrl_c_interrupts_a_running_query() -> None:
    returncode, stdout = _query("on")
    assert returncode == 130 and stdout.splitlines()[-1] == "KeyboardInterrupt", stdout


def test_without_the_watcher_z3_swallows_ctrl_c() -> None:
    # The failure mode the watcher removes: the query comes back unknown and the program goes on.
    returncode, stdout = _query("off")
    assert returncode == 0, stdout
    assert stdout.splitlines()[-1] == "returned unknown interrupted from keyboard", stdout


def test_verify_interrupted_in_the_proofs_exits_130() -> None:
    done = interrupt_when(
        [*command("meerkat-verify"), "--profile", "tiny", "--machine", "ops", "--progress"],
        marker="proofs: ops",
        settle=0.5,
    )
    assert done.returncode == 130, (done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.rstrip().endswith(
        "verify: INTERRUPTED while running the proofs (the report above covers what finished)"
    )


def test_verify_json_interrupted_in_the_proofs_keeps_the_finished_machines() -> None:
    # ops's proofs finish; Ctrl-C lands in session's: the JSON keeps ops's results.
    done = interrupt_when(
        [
            *command("meerkat-verify"),
            "--profile",
            "tiny",
            "--machine",
            "ops",
            "--machine",
            "session",
            "--workers",
            "1",
            "--progress",
            "--json",
        ],
        marker="proofs: session",
        settle=0.5,
    )
    assert done.returncode == 130, (done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["interrupted"] == "running the proofs"
    proofs = report["proofs"]
    assert proofs is not None and proofs["interrupted"] is True and proofs["machines"] == ["ops"]
    assert proofs["results"] and {r["machine"] for r in proofs["results"]} == {"ops"}
    assert proofs["failed"] == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_lost_in_a_finalizer_stops_the_run_before_the_next_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python raises the KeyboardInterrupt inside a finalizer, which ignores it, while no query
    # runs: nothing reaches the solver or the run. The checkpoint between queries stops it.
    import os
    import signal
    import time

    from meerkat_model.proofs import runner
    from meerkat_model.proofs.report import ProofResult
    from meerkat_model.proofs.symbolic import SymbolicMachine

    class FreedWhileCtrlC:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs here; its KeyboardInterrupt is ignored

    real = runner.prove_invariants  # type: ignore[attr-defined]

    def prove(machine: SymbolicMachine) -> list[ProofResult]:
        if machine.name == "ops":
            FreedWhileCtrlC()  # freed at once
        result: list[ProofResult] = real(machine)
        return result

    monkeypatch.setattr(runner, "prove_invariants", prove)
    started: list[str] = []
    finished: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        runner.run_proofs(
            1,
            machines=("ops", "session"),
            reachability=False,
            tables=False,
            progress=started.append,
            finished=lambda name, _results: finished.append(name),
        )
    assert finished == [] and started == ["proofs: ops (1 ids)"]
    # and the solver works again in this process (z3 would otherwise keep the interrupt)
    solver = z3.Solver()
    solver.push()
    assert solver.check() == z3.sat


def test_a_z3_object_left_half_built_by_the_interrupt_is_freed_without_a_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C inside a z3 constructor leaves the object without its context; freeing it later
    # (often as the process exits) made z3's finalizer print "Exception ignored ... AttributeError"
    # after the run had reported its interruption.
    import os
    import signal
    import time

    from meerkat_model.proofs import interruptible

    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    with pytest.raises(KeyboardInterrupt), interruptible.interruptible_queries():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    half_built = z3.BoolSortRef.__new__(z3.BoolSortRef)
    del half_built
    assert reported == []

    class Other:
        def __del__(self) -> None:
            raise AttributeError("not z3's")

    Other()  # other finalizers' errors are still reported
    assert [str(e) for e in reported] == ["not z3's"]


def test_the_solver_works_after_an_interrupt_the_watcher_handles_late(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python raises KeyboardInterrupt at once; the watcher thread may interrupt the solver only
    # afterwards (a loaded machine). That interrupt must be cleared too, or every later push in
    # the process fails with "push canceled".
    import os
    import signal
    import time

    from meerkat_model.proofs import interruptible

    real_watch = interruptible._watch

    def slow_watch(*args: Any) -> None:
        time.sleep(0.5)
        real_watch(*args)

    monkeypatch.setattr(interruptible, "_watch", slow_watch)
    with pytest.raises(KeyboardInterrupt), interruptible.interruptible_queries():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    solver = z3.Solver()
    solver.push()
    assert solver.check() == z3.sat
