"""Model and runtime speak one vocabulary: every model rejection kind is a runtime error kind,
the shared limits agree, and the status names of each lifecycle match."""

from __future__ import annotations

import enum

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.vocab import rejections
from meerkat_model.vocab import statuses as model
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.vocab import errors
from meerkat_runtime.vocab import inputs as runtime_inputs
from meerkat_runtime.vocab import operation as runtime_operation
from meerkat_runtime.vocab import runtime as runtime_control


def _runtime_error_kinds() -> set[str]:
    kinds: set[str] = set()
    pending: list[type[errors.MeerkatError]] = [errors.MeerkatError]
    while pending:
        cls = pending.pop()
        kinds.add(cls.kind)
        pending.extend(cls.__subclasses__())
    return kinds


def _model_rejection_kinds() -> dict[str, str]:
    return {name: value for name, value in vars(rejections).items() if name.isupper() and isinstance(value, str)}


def test_every_model_rejection_kind_is_a_runtime_error_kind() -> None:
    model_kinds = _model_rejection_kinds()
    assert len(model_kinds) >= 10
    missing = {name: kind for name, kind in model_kinds.items() if kind not in _runtime_error_kinds()}
    assert missing == {}


def test_the_shared_limits_agree() -> None:
    assert model.MAX_STAGE_ATTEMPTS == runtime_inputs.MAX_STAGE_ATTEMPTS
    for max_completed in (1, 2, 255, 256, 257, 1000):
        modelled = OpsBounds.from_bounds(Bounds({"max_completed": max_completed})).feed_capacity
        assert modelled == OpsLifecycleConfig(max_completed=max_completed).feed_capacity


def _names(members: type[enum.Enum]) -> set[str]:
    return {member.name for member in members}


PAIRS = [
    ("input", model.InputPhase, runtime_inputs.InputLifecycleState, set()),
    ("operation", model.OpStatus, runtime_operation.OperationStatus, {"ABSENT"}),
    ("operation kind", model.OpKind, runtime_operation.OperationKind, set()),
    ("runtime", model.RuntimePhase, runtime_control.RuntimeState, set()),
    ("registration", model.RegistrationPhase, runtime_control.RegistrationPhase, {"UNREGISTERED"}),
    ("abandon reason", model.AbandonKind, runtime_inputs.AbandonKind, set()),
]
"""(what, model enum, runtime enum, names only one side has and why: the runtime's ``ABSENT``
is "not tracked", which the model represents by an empty slot; the model's ``UNREGISTERED`` is a
session the runtime does not hold at all.)"""


@pytest.mark.parametrize(("what", "modelled", "runtime", "one_sided"), PAIRS, ids=[p[0] for p in PAIRS])
def test_status_names_match(
    what: str, modelled: type[enum.Enum], runtime: type[enum.Enum], one_sided: set[str]
) -> None:
    assert _names(modelled) ^ _names(runtime) == one_sided, what


def _camel(runtime_value: str) -> str:
    return "".join(part.capitalize() for part in runtime_value.split("_"))


ENTITY_STATUSES: dict[str, set[str]] = {
    "input": {_camel(s.value) for s in runtime_inputs.InputLifecycleState} | {"Absent"},
    "operation": {_camel(s.value) for s in runtime_operation.OperationStatus},
    "runtime": {_camel(s.value) for s in runtime_control.RuntimeState},
    "registration": {_camel(s.value) for s in runtime_control.RegistrationPhase} | {"Unregistered"},
}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_declared_status_is_a_runtime_status(machine: str) -> None:
    """The statuses the model's declarations move between are the runtime's, spelled as the
    diagrams spell them (``AppliedPendingConsumption`` for ``applied_pending_consumption``)."""
    for decl in MACHINES[machine](PROFILES["tiny"][machine]).transitions():
        if decl.entity not in ENTITY_STATUSES:
            continue  # the registry's barrier (Idle / Waiting) has no runtime enum
        known = ENTITY_STATUSES[decl.entity]
        for status in (*decl.sources, *((decl.target,) if decl.target else ())):
            assert status in known, f"{decl.name}: {decl.entity} status {status!r}"
