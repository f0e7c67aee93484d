"""Planted bugs in the session runtime are found by the harness and reported as short
side-by-side traces naming the differing fields; the unaltered runtime passes the same budget.

The bugs live in ``MeerkatMachine`` subclasses (``tests/conformance/session_bugs.py``):

* (a) ``FailedRunLosesInput`` — an executor failure leaves the input in no lane (lost);
  found by the Hypothesis lockstep search (shrunk trace) and by the tiny-graph replay;
* (b) ``AcceptBeforeWrite`` — a durable accept acknowledged in memory before its write and
  not undone when the write fails; found by the search and by the tiny-graph replay;
* (c) ``RecoveryCountsInterruptedRun`` — recovery charges the crash-interrupted run to the
  retry budget; a Staged row only reaches the store through a control commit (retire)
  during a run, and the ``tiny`` graph has no control operations, so it is found by
  replaying the tiny graph with control operations added;
* (d) ``BoundaryFailureChargesAttempt`` — a failed boundary commit keeps the attempt; found by
  the tiny-graph replay.

Everything is deterministic: the search is derandomized and the replay walks the graph in a
fixed order. Crashes survive on an in-memory disk (faster than SQLite; same semantics here).
"""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.profiles import get_profile
from meerkat_conformance.lockstep.runner import run_lockstep
from meerkat_conformance.lockstep.stateful import fresh_tally
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.replay.walk import replay_graph
from meerkat_conformance.session.adapter import SessionAdapter, harness_action
from meerkat_conformance.session.stateful import SessionLockstepMachine
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.session.machine import SessionMachine
from meerkat_model.verifier import explore
from meerkat_runtime.session.machine import MeerkatMachine

from tests.conformance.session_bugs import (
    AcceptBeforeWrite,
    BoundaryFailureChargesAttempt,
    FailedRunLosesInput,
    RecoveryCountsInterruptedRun,
)

SEARCH_EXAMPLES = 160
SEARCH_STEPS = 20
"""The Hypothesis budget (derandomized ``fast`` settings) every runtime here gets. The search
is one fixed sequence of examples: if a harness change makes it miss the planted bug, the
search got weaker for this bug (or its fixed sequence moved); look before raising it."""
MAX_TRACE = 8

Graph = tuple[SessionMachine, Any]


def _search(runtime_class: type[MeerkatMachine]) -> None:
    attrs = {"RUNTIME_CLASS": runtime_class, "DISK": "memory"}
    machine_class = type(f"Lockstep{runtime_class.__name__}", (SessionLockstepMachine,), attrs)
    tally = fresh_tally(SessionMachine(SessionLockstepMachine.BOUNDS))
    run_lockstep(machine_class, get_profile("fast"), tally, examples=SEARCH_EXAMPLES, steps=SEARCH_STEPS)
    assert tally.disagreements == 0


def _graph(bounds: Bounds) -> Graph:
    machine = MACHINES["session"](bounds)
    assert isinstance(machine, SessionMachine)
    return machine, explore(machine).graph()


@pytest.fixture(scope="module")
def tiny() -> Graph:
    return _graph(PROFILES["tiny"]["session"])


@pytest.fixture(scope="module")
def tiny_with_control() -> Graph:
    """The tiny graph plus retire / reset / recycle / stop / destroy."""
    return _graph(Bounds({**PROFILES["tiny"]["session"].values, "control": 1}))


def _replay(graph: Graph, runtime_class: type[MeerkatMachine]) -> None:
    machine, g = graph
    replay_graph(
        machine,
        g,
        lambda: SessionAdapter(machine, make_disk("memory"), runtime_class=runtime_class),
        steer=harness_action,
    )


def _paths(info: pytest.ExceptionInfo[Disagreement]) -> set[str]:
    return {d.path for d in info.value.differences}


def _assert_short(info: pytest.ExceptionInfo[Disagreement], *, last_action: str) -> str:
    """The trace is short, its last step is ``last_action``, and the message shows the
    differing fields after the table."""
    disagreement = info.value
    steps = disagreement.trace.steps
    assert 0 < len(steps) <= MAX_TRACE, str(disagreement)
    assert last_action in steps[-1].label, str(disagreement)
    text = str(disagreement)
    assert text.startswith("model and runtime disagree on the session machine")
    assert f"observation after step {len(steps)} (model | runtime):" in text
    return text


# --- the unaltered runtime --------------------------------------------------------------


def test_the_unaltered_runtime_passes_the_same_search_budget() -> None:
    _search(MeerkatMachine)


def test_the_unaltered_runtime_passes_both_replays(tiny: Graph, tiny_with_control: Graph) -> None:
    _replay(tiny, MeerkatMachine)
    _replay(tiny_with_control, MeerkatMachine)


# --- (a) an executor failure loses the input ---------------------------------------------


def test_search_finds_a_failed_run_that_loses_its_input() -> None:
    with pytest.raises(Disagreement) as info:
        _search(FailedRunLosesInput)
    text = _assert_short(info, last_action="executor_failed")
    assert "left the queued input waiting" in info.value.reason
    assert _paths(info) == {"queue"}, text
    assert "queue: model [0] | runtime []" in text
    assert "[done by the runtime on its own]" in text  # the run the runtime started by itself


def test_replay_finds_a_failed_run_that_loses_its_input(tiny: Graph) -> None:
    with pytest.raises(Disagreement) as info:
        _replay(tiny, FailedRunLosesInput)
    assert "executor_failed" in info.value.trace.steps[-1].label
    assert _paths(info) == {"queue"}, str(info.value)


# --- (b) a durable accept acknowledged before its write ---------------------------------


def test_search_finds_an_accept_kept_in_memory_after_its_write_failed() -> None:
    with pytest.raises(Disagreement) as info:
        _search(AcceptBeforeWrite)
    text = _assert_short(info, last_action="write_fails[accept(")
    assert info.value.reason == "observable state differs"
    assert {"inputs.0", "queue"} <= _paths(info), text


def test_replay_finds_an_accept_kept_in_memory_after_its_write_failed(tiny: Graph) -> None:
    with pytest.raises(Disagreement) as info:
        _replay(tiny, AcceptBeforeWrite)
    text = _assert_short(info, last_action="write_fails[accept(")
    last = info.value.trace.steps[-1]
    assert last.agree and last.note == "store write fails"  # both refuse the call ...
    assert {"inputs.0", "queue"} <= _paths(info), text  # ... but memory kept the input
    assert "inputs.0: model <absent> | runtime {'phase': 'queued'" in text


# --- (c) recovery charges the interrupted run to the retry budget -------------------------


def test_replay_finds_recovery_counting_the_interrupted_run(tiny_with_control: Graph) -> None:
    with pytest.raises(Disagreement) as info:
        _replay(tiny_with_control, RecoveryCountsInterruptedRun)
    text = _assert_short(info, last_action="register()")
    labels = [step.label for step in info.value.trace.steps]
    assert any("retire()" in label for label in labels), text  # the commit that stored Staged
    assert {"inputs.0.attempts", "stored.inputs.0.attempts"} <= _paths(info), text
    assert "inputs.0.attempts: model 0 | runtime 1" in text


# --- (d) a failed boundary commit keeps the attempt --------------------------------------


def test_replay_finds_a_failed_boundary_that_keeps_the_attempt(tiny: Graph) -> None:
    with pytest.raises(Disagreement) as info:
        _replay(tiny, BoundaryFailureChargesAttempt)
    text = _assert_short(info, last_action="boundary_commit_fails")
    assert "[atomic_apply fails]" in text
    assert _paths(info) == {"inputs.0.attempts"}, text
    assert "inputs.0.attempts: model 0 | runtime 1" in text
