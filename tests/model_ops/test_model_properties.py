"""Whole-model properties: invariants on every reachable state of a small profile, symmetry,
bounds validation, observation and probe actions."""

from __future__ import annotations

import itertools

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ops import OpsMachine
from meerkat_model.ops.actions import (
    CompleteOperation,
    DropWait,
    RegisterOperation,
    TerminateOwner,
    WaitAll,
    WriteFails,
)
from meerkat_model.ops.bounds import BoundsError
from meerkat_model.ops.symmetry import rename
from meerkat_model.verifier import explore

from tests.model_ops.helpers import BG, MOB, machine, run, running


def test_every_invariant_holds_on_every_state_of_the_tiny_profile() -> None:
    exploration = explore(MACHINES["ops"](PROFILES["tiny"]["ops"]))
    assert exploration.complete and exploration.states > 100
    assert exploration.violations == []
    assert exploration.coverage.dead == ()
    assert exploration.stuck == []


def test_catalog_profiles_construct() -> None:
    for profile in ("tiny", "ci", "deep"):
        m = MACHINES["ops"](PROFILES[profile]["ops"])
        assert m.name == "ops"


def _renamed(m: OpsMachine, state: object, perm: tuple[int, ...]) -> object:
    inverse = tuple(perm.index(i) for i in range(len(perm)))
    return rename(state, perm, inverse)  # type: ignore[arg-type]


def test_canonical_form_is_shared_by_every_renaming_and_idempotent() -> None:
    m = machine(ids=3, max_completed=2)
    s = running(m, 2, MOB)
    s = running(m, 0, state=s)
    s = run(m, CompleteOperation(2, "r1"), RegisterOperation(1, BG), WaitAll((1, 0)), state=s)
    canon = m.canonical(s)
    assert m.canonical(canon) == canon
    for perm in itertools.permutations(range(3)):
        assert m.canonical(_renamed(m, s, perm)) == canon  # type: ignore[arg-type]


def test_renaming_commutes_with_steps() -> None:
    m = machine(ids=3)
    s = running(m, 1)
    s = running(m, 2, MOB, state=s)
    perm = (2, 0, 1)
    r = _renamed(m, s, perm)
    for action, renamed_action in [
        (TerminateOwner("shutdown"), TerminateOwner("shutdown")),
        (CompleteOperation(1, "r1"), CompleteOperation(perm[1], "r1")),
        (WaitAll((2, 1)), WaitAll((perm[2], perm[1]))),
    ]:
        a, b = m.step(s, action), m.step(r, renamed_action)  # type: ignore[arg-type]
        assert isinstance(a, Stepped) and isinstance(b, Stepped)
        assert _renamed(m, a.state, perm) == b.state


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"nope": 1}, "unknown ops bound"),
        ({"ids": 0}, "outside"),
        ({"kinds": 3}, "outside"),
        ({"barrier": "1"}, "integer"),
    ],
)
def test_bad_bounds_are_named(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(BoundsError, match=fragment):
        OpsMachine(Bounds(values))  # type: ignore[arg-type]


def test_observe_lists_tracked_ops_and_registry_fields() -> None:
    m = machine()
    s = running(m, 1, MOB)
    view = m.observe(s)
    assert set(view) == {
        "ops",
        "completed_order",
        "active_count",
        "wait_active",
        "wait_operation_ids",
        "feed",
        "watermark",
        "next_seq",
    }
    assert view["ops"][1] == {
        "status": "running",
        "kind": "mob_member_child",
        "peer_ready": False,
        "progress_count": 0,
        "watcher_count": 0,
        "terminal_outcome": None,
        "completion_seq": None,
    }


def test_probe_actions_add_rejections_and_write_failures_but_no_states() -> None:
    bounds = dict(PROFILES["tiny"]["ops"].values)
    plain = explore(OpsMachine(Bounds({**bounds, "probes": 0})))
    probing_machine = OpsMachine(Bounds({**bounds, "probes": 1}))
    probing = explore(probing_machine)
    assert probing.states == plain.states
    s = plain.state_list[-1]
    results = [probing_machine.step(s, a) for a in probing_machine.actions(s)]
    assert any(isinstance(r, Rejected) for r in results)
    assert any(type(a) is WriteFails for a in probing_machine.actions(s)) or not s.active_count


def test_unknown_action_is_a_usage_error() -> None:
    m = machine()
    with pytest.raises(ValueError, match="unknown ops action"):
        m.step(m.initial_state(), ("explode",))
    with pytest.raises(ValueError, match="outside the modelled domain"):
        m.step(running(m, 0), CompleteOperation(0, "not-a-result"))


def test_enabled_actions_are_exactly_the_accepted_probes() -> None:
    m = OpsMachine(Bounds({**PROFILES["tiny"]["ops"].values, "probes": 0}))
    exploration = explore(m, symmetry=False)
    for state in exploration.state_list:
        enabled = list(m.actions(state))
        assert all(isinstance(m.step(state, a), Stepped) for a in enabled)
        probes = m.probe_actions(state)
        assert set(enabled) <= set(probes)
        accepted = {a for a in probes if isinstance(m.step(state, a), Stepped)}
        # the only accepted calls left out: no-op drops and write-failure variants that write nothing
        assert {a for a in accepted - set(enabled) if type(a) not in (DropWait, WriteFails)} == set()
