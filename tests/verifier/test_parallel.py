"""The parallel (forked, hash-partitioned) explorer agrees exactly with the sequential one and
leaves no worker process behind."""

from __future__ import annotations

import gc
import os
import signal
from collections import Counter as Multiset
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Rejected, Stepped
from meerkat_model.verifier import Exploration, explore, shortest_trace
from meerkat_model.verifier.parallel import WorkerError
from meerkat_model.verifier.trace import violation_trace

from tests.verifier.toys import SMALL_OPS, Counter, LeakyCancel
from tests.verifier.traces import replayed_violation_trace

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel explorer forks")


def child_pids() -> list[int]:
    import multiprocessing

    return [p.pid for p in multiprocessing.active_children() if p.pid is not None]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def no_orphans() -> Iterator[list[int]]:
    """Collects worker pids seen during a test; afterwards every one of them is gone."""
    seen: list[int] = []
    yield seen
    assert seen, "no worker process was observed"
    assert all(gone(pid) for pid in seen), f"worker processes left behind: {[p for p in seen if not gone(p)]}"
    assert child_pids() == []


def assert_agree(seq: Exploration, par: Exploration) -> None:
    gc.disable()  # the comparison builds large acyclic structures
    try:
        compare(seq, par)
    finally:
        gc.enable()


def compare(seq: Exploration, par: Exploration) -> None:
    states = seq.state_list
    assert par.states == seq.states and set(par.state_list) == set(states)
    assert par.state_list[0] == states[0] and par.parents[0] == -1
    assert par.edges == seq.edges
    assert dict(zip(par.state_list, par.depths, strict=True)) == dict(zip(states, seq.depths, strict=True))
    assert par.depths == sorted(par.depths)  # indexes stay in breadth-first order
    assert [(v.invariant, v.depth) for v in par.violations] == [(v.invariant, v.depth) for v in seq.violations]
    assert par.invariant_results() == seq.invariant_results()
    assert par.coverage == seq.coverage
    assert {par.state_list[i] for i in par.stuck} == {states[i] for i in seq.stuck}
    assert par.stranded is not None and seq.stranded is not None
    assert {par.state_list[i] for i in par.stranded} == {states[i] for i in seq.stranded}
    assert par.stranded_without_give_ups is not None and seq.stranded_without_give_ups is not None
    assert {par.state_list[i] for i in par.stranded_without_give_ups} == {
        states[i] for i in seq.stranded_without_give_ups
    }
    assert par.complete and seq.complete

    to_seq = [seq.index_of(s) for s in par.state_list]
    assert Multiset((to_seq[a], to_seq[b], action, t) for a, b, action, t in par.edge_list) == Multiset(seq.edge_list)
    # the edges of each source come in the sequential order, sources in index order
    assert [a for a, _, _, _ in par.edge_list] == sorted(a for a, _, _, _ in par.edge_list)
    # every parent is one level up and has an edge to its child: parent chains are shortest paths
    has_edge = {(a, b) for a, b, _, _ in par.edge_list}
    for i in range(1, par.states):
        p = par.parents[i]
        assert par.depths[p] == par.depths[i] - 1 and (p, i) in has_edge


CASES = [
    ("ops", "ci", True),
    ("ops", "ci", False),
    ("session", "tiny", True),
    ("session", "tiny", False),
    ("session", "ci", True),
]


@pytest.mark.parametrize(("name", "profile", "symmetry"), CASES)
def test_parallel_agrees_with_sequential(name: str, profile: str, symmetry: bool, no_orphans: list[int]) -> None:
    machine = MACHINES[name](PROFILES[profile][name])
    seq = explore(machine, symmetry=symmetry)
    par = explore(machine, symmetry=symmetry, workers=2, progress=lambda *_: no_orphans.extend(child_pids()))
    assert_agree(seq, par)


def test_three_workers_agree(no_orphans: list[int]) -> None:
    machine = MACHINES["ops"](PROFILES["tiny"]["ops"])
    par = explore(machine, workers=3, progress=lambda *_: no_orphans.extend(child_pids()))
    assert_agree(explore(machine), par)


@pytest.mark.parametrize("symmetry", [True, False])
def test_planted_violation_has_a_shortest_trace_of_the_same_length(symmetry: bool, no_orphans: list[int]) -> None:
    machine = LeakyCancel(SMALL_OPS)
    seq = explore(machine, symmetry=symmetry)
    par = explore(machine, symmetry=symmetry, workers=2, progress=lambda *_: no_orphans.extend(child_pids()))
    assert_agree(seq, par)
    assert (
        len(replayed_violation_trace(machine, par, "active_count_matches"))
        == len(replayed_violation_trace(machine, seq, "active_count_matches"))
        == 2
    )
    counter = Counter(limit=9, bad=4)
    par = explore(counter, workers=2)
    assert [(v.invariant, v.depth) for v in par.violations] == [("below_bad", 4)]
    assert [st.label for st in shortest_trace(par, 4)] == ["inc"] * 4
    assert 5 not in par.state_list


def test_progress_is_reported_and_ends_with_the_total() -> None:
    calls: list[tuple[int, int, float]] = []
    e = explore(Counter(limit=9), workers=2, progress=lambda s, f, t: calls.append((s, f, t)))
    assert len(calls) >= e.depth
    assert [s for s, _, _ in calls] == sorted(s for s, _, _ in calls)
    assert calls[-1][:2] == (e.states, 0)


def test_max_states_stops_early_and_marks_incomplete() -> None:
    e = explore(Counter(limit=50), max_states=10, workers=2)
    assert not e.complete and e.states >= 10
    assert child_pids() == []


class Exploding(Counter):
    """Raises while stepping out of ``boom`` (owned by either worker, depending on ``boom``)."""

    def __init__(self, boom: int) -> None:
        super().__init__(limit=20)
        self.boom = boom

    def step(self, state: int, action: Sequence[Any]) -> Stepped[int] | Rejected:
        if state == self.boom:
            raise ValueError(f"boom at {state}")
        return super().step(state, tuple(action))


@pytest.mark.parametrize("boom", [6, 7])
def test_a_step_that_raises_in_any_worker_is_a_violation_with_its_trace(boom: int, no_orphans: list[int]) -> None:
    e = explore(Exploding(boom), workers=2, progress=lambda *_: no_orphans.extend(child_pids()))
    seq = explore(Exploding(boom))
    (v,) = e.violations
    assert v.invariant == "steps_raise_nothing" and v.step and f"boom at {boom}" in v.message
    assert v.depth == boom + 1 and e.state_list[v.state_index] == boom
    assert [(w.invariant, w.depth, w.message) for w in seq.violations] == [(v.invariant, v.depth, v.message)]
    trace = violation_trace(e, v)
    assert [st.label for st in trace] == ["inc"] * boom + ["inc"]
    assert trace[-1].outputs == (("raised", f"ValueError: boom at {boom}"),)


class Unpicklable(Counter):
    """States from 5 on cannot cross a pipe: an error outside the search core, raised as ``WorkerError``."""

    def initial_state(self) -> Any:
        return _Opaque(0)

    def step(self, state: Any, action: Sequence[Any]) -> Stepped[Any] | Rejected:
        result = super().step(state.value, tuple(action))
        return Stepped(_Opaque(result.state), (), result.transition) if isinstance(result, Stepped) else result


class _Opaque:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and other.value == self.value

    def __hash__(self) -> int:
        return self.value

    def __reduce__(self) -> Any:
        if self.value >= 5:
            raise TypeError("boom: this state cannot be pickled")
        return (_Opaque, (self.value,))


def test_an_error_in_any_worker_is_raised_and_no_worker_remains(no_orphans: list[int]) -> None:
    with pytest.raises((TypeError, WorkerError), match="boom"):
        explore(Unpicklable(limit=20), workers=2, progress=lambda *_: no_orphans.extend(child_pids()))


def test_a_killed_worker_is_reported(no_orphans: list[int]) -> None:
    def kill(*_: object) -> None:
        pids = child_pids()
        no_orphans.extend(pids)
        os.kill(pids[0], signal.SIGKILL)

    with pytest.raises(WorkerError):
        explore(Counter(limit=20), workers=2, progress=kill)


def test_keyboard_interrupt_stops_the_workers(no_orphans: list[int]) -> None:
    def interrupt(*_: object) -> None:
        no_orphans.extend(child_pids())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explore(Counter(limit=20), workers=2, progress=interrupt)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        explore(Counter(limit=3), workers=0)


def test_cli_workers_option(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from meerkat_model.cli import verify

    reports = []
    for workers in ("1", "2", "auto"):
        assert verify.main(["--profile", "tiny", "--machine", "ops", "--no-prove", "--json", "--workers", workers]) == 0
        (report,) = json.loads(capsys.readouterr().out)["machines"]
        reports.append({k: report[k] for k in ("states", "edges", "depth", "invariants", "coverage", "stuck_count")})
    assert reports[0] == reports[1] == reports[2]
    for bad in ("0", "two"):
        assert verify.main(["--machine", "ops", "--no-prove", "--workers", bad]) == 2
        assert "--workers" in capsys.readouterr().err
    assert child_pids() == []
