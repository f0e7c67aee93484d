"""Shared pieces of the ownership model tests."""

from __future__ import annotations

from typing import Any

from meerkat_model.machine import Stepped
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import OwnershipState


def steps(machine: OwnershipMachine, *actions: Any) -> OwnershipState:
    """The state ``machine`` reaches from its initial state by ``actions``, each of which must be
    taken (not rejected)."""
    state = machine.initial_state()
    for action in actions:
        result = machine.step(state, action)
        assert isinstance(result, Stepped), (action, result)
        state = result.state
    return state
