"""The differential check: every encoding does what its executable model does, state by state
and action by action; drift either way is caught and named.

It runs exhaustively on every ci state of every encoded machine (the same check as ``python -m
meerkat_model.proofs --differential ci``, split into disjoint parts that pytest-xdist runs in
parallel; timings in docs/proofs.md), on every tiny state, and on an evenly spread sample of the
ci states; planted drifts on either side fail that very ci run."""

from __future__ import annotations

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.ops.actions import CompleteOperation, RegisterOperation
from meerkat_model.proofs.abstractions import ABSTRACTIONS
from meerkat_model.proofs.differential import compare, reachable_states, run_differential
from meerkat_model.proofs.ops_encoding import build_ops_machine, ops_transitions
from meerkat_model.proofs.runner import ENCODINGS
from meerkat_model.proofs.symbolic import SymbolicMachine
from meerkat_model.session.actions import Register
from meerkat_model.verifier import explore

from tests.proofs.model_bugs import CompleteFromProvisioning
from tests.proofs.variants import register_ignoring_limit, replace

CI_STRIDE = {"ops": 60, "session": 400, "ownership": 300}
"""Every N-th ci state: about 100 states of each machine, a few seconds."""
TINY_STRIDE = {"ownership": 100}
"""The ownership model's tiny profile has 31,304 states (a minute exhaustively, measured in
docs/proofs.md): every 100th here."""


def test_every_encoding_has_an_abstraction() -> None:
    assert set(ABSTRACTIONS) == set(ENCODINGS)


@pytest.mark.parametrize("machine", sorted(ENCODINGS))
def test_the_encoding_agrees_with_the_model_on_every_tiny_state(machine: str) -> None:
    stride = TINY_STRIDE.get(machine, 1)
    (report,) = run_differential("tiny", (machine,), stride=stride)
    assert report.ok, "\n".join(d.render() for d in report.drifts)
    assert report.states == len(explore(MACHINES[machine](PROFILES["tiny"][machine])).state_list[::stride])
    assert report.queries > 0 and report.skipped == 0


@pytest.mark.parametrize("machine", sorted(ENCODINGS))
def test_the_encoding_agrees_with_the_model_on_a_sample_of_ci(machine: str) -> None:
    (report,) = run_differential("ci", (machine,), stride=CI_STRIDE[machine])
    assert report.ok, "\n".join(d.render() for d in report.drifts)
    assert report.states >= 80


CI_PARTS = {"ops": 4, "session": 3, "ownership": 2}
"""The exhaustive ci run in parts of a few tens of seconds each (every part explores the model
once per test process, then compares its share of the states)."""


def test_every_encoded_machine_is_checked_on_ci() -> None:
    assert set(CI_PARTS) == set(ENCODINGS)


@pytest.mark.parametrize(("machine", "k"), [(m, k) for m in sorted(CI_PARTS) for k in range(CI_PARTS[m])])
def test_the_encoding_agrees_with_the_model_on_every_ci_state(machine: str, k: int) -> None:
    n = CI_PARTS[machine]
    (report,) = run_differential("ci", (machine,), part=(k, n))
    assert report.ok, "\n".join(d.render() for d in report.drifts)
    reachable = reachable_states(MACHINES[machine](PROFILES["ci"][machine]))
    assert report.states == len(range(k, len(reachable), n))
    assert report.queries > 0 and report.skipped == 0


def test_a_planted_drift_fails_the_ci_run() -> None:
    """Both directions, through the entry point the exhaustive ci tests call."""
    part = (0, CI_PARTS["ops"])
    (model_side,) = run_differential("ci", ("ops",), part=part, limit=1, models={"ops": CompleteFromProvisioning})
    (drift,) = model_side.drifts
    assert drift.action.startswith("complete_operation(") and "refused by every candidate" in drift.encoding

    def drifted(ids: int) -> SymbolicMachine:
        return build_ops_machine(ids, replace(ops_transitions(), register_ignoring_limit()))

    (encoding_side,) = run_differential("ci", ("ops",), part=part, limit=1, encodings={"ops": drifted})
    (drift,) = encoding_side.drifts
    assert drift.action.startswith("register_operation(")
    assert drift.model.startswith("refused (max_concurrent_exceeded")
    assert drift.encoding.startswith("register_operation stepped")


def test_parts_must_be_in_range() -> None:
    with pytest.raises(ValueError, match="part must be"):
        run_differential("tiny", ("ops",), part=(2, 2))


def test_a_model_step_not_mirrored_in_the_encoding_is_named() -> None:
    model = CompleteFromProvisioning(PROFILES["tiny"]["ops"])
    abstraction = ABSTRACTIONS["ops"]()
    encoding = ENCODINGS["ops"](abstraction.ids(model))
    report = compare(model, encoding, abstraction, explore(model).state_list, limit=1)
    (drift,) = report.drifts
    assert drift.action.startswith("complete_operation(0")
    assert "status=1" in drift.state  # the operation is Provisioning
    assert drift.model.startswith("complete_operation to ")
    assert "refused by every candidate" in drift.encoding


def test_an_encoding_change_not_mirrored_in_the_model_is_named() -> None:
    model = MACHINES["ops"](Bounds({**PROFILES["tiny"]["ops"].values, "ids": 2}))  # max_concurrent=1
    abstraction = ABSTRACTIONS["ops"]()
    encoding = build_ops_machine(2, replace(ops_transitions(), register_ignoring_limit()))
    report = compare(model, encoding, abstraction, explore(model).state_list, limit=1)
    (drift,) = report.drifts
    assert drift.action.startswith("register_operation(")
    assert drift.model.startswith("refused (max_concurrent_exceeded")
    assert drift.encoding.startswith("register_operation stepped")


def test_an_action_the_abstraction_does_not_know_fails_loudly() -> None:
    ops, session = ABSTRACTIONS["ops"](), ABSTRACTIONS["session"]()
    state = MACHINES["ops"](Bounds()).initial_state()
    with pytest.raises(ValueError, match="does not know the action"):
        ops.action(Register(), state)
    with pytest.raises(ValueError, match="does not know the action"):
        session.action(RegisterOperation(0, 1), MACHINES["session"](Bounds()).initial_state())
    assert ops.action(CompleteOperation(0, "r1"), state).candidates[0].transition == "complete_operation"


def test_a_malformed_successor_or_an_unknown_action_is_a_drift_not_an_abort() -> None:
    from meerkat_model.ops.actions import Crash

    from tests.proofs.model_bugs import PeerReadyUnknownKind

    model = PeerReadyUnknownKind(PROFILES["tiny"]["ops"])
    abstraction = ABSTRACTIONS["ops"]()
    encoding = ENCODINGS["ops"](1)
    report = compare(model, encoding, abstraction, explore(model).state_list, limit=1)
    (drift,) = report.drifts
    assert drift.action == "peer_ready(0)" and "'kind': [2]" in drift.model

    session = MACHINES["session"](PROFILES["tiny"]["session"])
    stray = compare(
        session,
        ENCODINGS["session"](1),
        ABSTRACTIONS["session"](),
        [session.initial_state()],
        actions=lambda state: [Crash()],
        limit=1,
    )
    (unknown,) = stray.drifts
    assert "does not know the action" in unknown.model
