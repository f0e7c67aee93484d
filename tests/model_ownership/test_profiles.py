"""Every profile names bounds for every machine of the catalog (no machine is checked with its
defaults in silence), the ownership machines' bounds keep each profile's intent, and the
registry probes of ``probe`` find a registry call that changes what the model must refuse."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.catalog import MACHINES, PROFILES, profile_bounds
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.ownership import op_slots, op_steps
from meerkat_model.ownership.actions import FinishOp, RegisterOp
from meerkat_model.ownership.bounds import OwnershipBounds
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import with_worker
from meerkat_model.verifier.explore import explore


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_names_bounds_for_every_machine(profile: str) -> None:
    assert sorted(PROFILES[profile]) == sorted(MACHINES)
    for machine in MACHINES:
        assert profile_bounds(profile, machine) is PROFILES[profile][machine]


def test_a_pair_no_profile_holds_is_an_error_not_the_defaults() -> None:
    with pytest.raises(KeyError, match="profile 'ci' names no bounds for machine 'nonesuch'"):
        profile_bounds("ci", "nonesuch")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_registry_machine_steps_the_registry_under_every_profile(profile: str) -> None:
    ops = OwnershipBounds.from_bounds(PROFILES[profile]["ownership_ops"])
    plain = OwnershipBounds.from_bounds(PROFILES[profile]["ownership"])
    assert ops.ops >= 1 and not ops.accepts  # operations, without the input lane
    assert plain.ops == 0 and plain.accepts
    assert ops.workers >= 2 and ops.claims >= 2 and plain.workers >= 2 and plain.claims >= 2  # a takeover
    assert ops.fencing and plain.fencing


def test_small_is_smaller_than_ci_and_wide_wider() -> None:
    for machine in ("ownership", "ownership_ops"):
        small = OwnershipBounds.from_bounds(PROFILES["small"][machine])
        ci = OwnershipBounds.from_bounds(PROFILES["ci"][machine])
        wide = OwnershipBounds.from_bounds(PROFILES["wide"][machine])
        assert ci.ambiguous and not small.ambiguous
        assert (wide.workers, wide.claims, wide.ops) > (ci.workers, ci.claims, ci.ops)
    assert OwnershipBounds.from_bounds(PROFILES["probe"]["ownership_ops"]).probes


def test_probes_offer_the_refused_registry_calls_and_add_no_state() -> None:
    machine = OwnershipMachine(Bounds({**PROFILES["ci"]["ownership_ops"].values, "probes": 1}))
    state = machine.initial_state()
    offered = set(machine.actions(state))
    assert {RegisterOp(0, 0), FinishOp(0, 0, 0), FinishOp(0, 0, 1)} <= offered  # no session yet: refused
    assert all(not isinstance(machine.step(state, a), Stepped) for a in offered if isinstance(a, RegisterOp | FinishOp))
    plain = explore(OwnershipMachine(PROFILES["ci"]["ownership_ops"]))
    probed = explore(machine)
    assert probed.violations == [] and len(probed.state_list) == len(plain.state_list)


class _FinishesTwice(OwnershipMachine):
    """A planted bug: finishing an operation that is not running (already terminal) is not
    refused: the worker writes it terminal again."""

    def bind(self, action: Any) -> Any:
        if isinstance(action, FinishOp):
            w, op, outcome = action.w, action.op, action.outcome

            def step(state: Any) -> Any:
                worker = state.workers[w]
                if worker.memory is not None and not worker.in_doubt and op_slots.is_terminal(worker.ops[op]):
                    running = worker._replace(ops=(*worker.ops[:op], op_slots.RUNNING, *worker.ops[op + 1 :]))
                    state = with_worker(state, w, running)
                return op_steps.finish_op(state, w, op, outcome, self.bounds.fencing)

            return step
        return super().bind(action)


def test_only_the_probes_find_a_registry_call_that_changes_what_it_must_refuse() -> None:
    bounds = PROFILES["ci"]["ownership_ops"].values
    unprobed = explore(_FinishesTwice(Bounds({**bounds, "probes": 0})))
    assert unprobed.violations == []
    probed = explore(_FinishesTwice(Bounds({**bounds, "probes": 1})))
    assert "op_terminal_never_undone" in {v.invariant for v in probed.violations}
