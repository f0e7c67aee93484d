"""Shared helpers: run a script of actions on the ops model and fail loudly on surprises."""

from __future__ import annotations

from typing import Any

from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ops import OpsMachine
from meerkat_model.ops.actions import OpsAction, ProvisioningSucceeded, RegisterOperation
from meerkat_model.ops.state import RegistryState
from meerkat_model.vocab.statuses import OpKind

BG = int(OpKind.BACKGROUND_TOOL_OP)
MOB = int(OpKind.MOB_MEMBER_CHILD)


def machine(**bounds: int) -> OpsMachine:
    return OpsMachine(Bounds(bounds))


def ok(m: OpsMachine, state: RegistryState, action: OpsAction) -> Stepped[RegistryState]:
    result = m.step(state, action)
    assert isinstance(result, Stepped), f"{action} was rejected: {result}"
    return result


def run(m: OpsMachine, *actions: OpsAction, state: RegistryState | None = None) -> RegistryState:
    """Apply ``actions`` in order (each must succeed) and return the final state."""
    s = m.initial_state() if state is None else state
    for action in actions:
        s = ok(m, s, action).state
    return s


def rejected(m: OpsMachine, state: RegistryState, action: OpsAction) -> Rejected:
    result = m.step(state, action)
    assert isinstance(result, Rejected), f"{action} unexpectedly succeeded"
    return result


def running(m: OpsMachine, op: int, kind: int = BG, state: RegistryState | None = None) -> RegistryState:
    """Register ``op`` and move it to Running."""
    return run(m, RegisterOperation(op, kind), ProvisioningSucceeded(op), state=state)


def outputs_named(result: Stepped[RegistryState], name: str) -> list[tuple[Any, ...]]:
    return [o for o in result.outputs if o[0] == name]
