"""The verifier explores the session model to a fixed point with every invariant holding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.session import SessionMachine
from meerkat_model.session import admission as admission_module
from meerkat_model.session.actions import ExecutorFailed, StartRun
from meerkat_model.session.state import SessionState
from meerkat_model.session.symmetry import canonical, rename
from meerkat_model.verifier.explore import explore

from .helpers import accept, attached, machine, run
from .profiles import session_bounds


@pytest.mark.parametrize("profile", ["tiny_exploration", "ci_exploration"])
def test_profile_reaches_a_fixed_point_with_every_invariant_holding(
    profile: str, request: pytest.FixtureRequest
) -> None:
    exploration = request.getfixturevalue(profile)
    assert exploration.complete
    assert exploration.violations == []
    assert exploration.stuck == []
    assert set(exploration.invariant_results().values()) == {"held"}


def test_tiny_profile_is_small_enough_to_draw(tiny_exploration: Any) -> None:
    assert tiny_exploration.states <= 60


def test_ci_profile_fires_every_declared_transition(ci_exploration: Any) -> None:
    assert ci_exploration.coverage.dead == ()
    assert ci_exploration.coverage.undeclared == ()


def test_catalog_factory_builds_the_session_machine() -> None:
    exploration = explore(MACHINES["session"](session_bounds("tiny")))
    assert exploration.machine.name == "session"


def test_catalog_has_the_session_machine_in_every_profile() -> None:
    for profile in ("tiny", "ci", "deep"):
        assert isinstance(MACHINES["session"](PROFILES[profile]["session"]), SessionMachine)


def test_symmetry_reduction_agrees_with_the_full_exploration() -> None:
    bounds = Bounds(
        {
            "inputs": 2,
            "steer": 1,
            "idem_keys": 0,
            "super_keys": 1,
            "ephemeral": 0,
            "failures": 0,
            "control": 0,
            "unregister": 0,
            "write_failures": 0,
            "invalid": 0,
        }
    )
    m = SessionMachine(bounds)
    reduced = explore(m, symmetry=True)
    full = explore(m, symmetry=False)
    assert reduced.violations == full.violations == []
    assert reduced.states < full.states
    assert {canonical(s) for s in full.state_list} == set(reduced.state_list)


def test_canonical_form_ignores_renaming() -> None:
    m = machine(inputs=3)
    state = run(m, attached(m), accept(0, skey=0), accept(1, lane=1, idem=0), accept(2, skey=0), StartRun())
    for p in ([1, 0, 2], [2, 1, 0], [1, 2, 0]):
        renamed = rename(state, p)
        assert renamed != state
        assert canonical(renamed) == canonical(state)


def _forgets_to_store(state: SessionState, *args: object, **kwargs: object) -> object:
    """A planted bug: accept acknowledges the input without writing its row."""
    result = _real_accept(state, *args, **kwargs)  # type: ignore[arg-type]
    if isinstance(result, Stepped) and result.transition == "accept":
        return Stepped(result.state._replace(durable=state.durable), result.outputs, result.transition)
    return result


_real_accept = admission_module.accept


def test_a_planted_durability_bug_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission_module, "accept", _forgets_to_store)
    exploration = explore(SessionMachine(session_bounds("tiny")))
    violated = {v.invariant for v in exploration.violations}
    assert "accepted_inputs_are_stored" in violated
    assert "recovery_matches_memory" in violated


def test_observation_is_plain_data() -> None:
    m = machine()
    state = run(m, attached(m), accept(0, idem=0), accept(1, lane=1), StartRun(), ExecutorFailed())
    view = m.observe(state)
    json.dumps(view)
    assert view["registration"] == "active"
    assert view["runtime_state"] == "attached"
    assert view["steer"] == [1]
    assert view["inputs"][1] == {"phase": "queued", "attempts": 1, "outcome": None, "lane": "steer"}
    assert view["waiters"] == {0: "pending", 1: "pending"}
    assert view["stored"]["record"] == "idle"
