"""Every field an operation-registry call is handed is checked at the door: a wrong one is an
``InvalidField`` (kind ``validation_failed``) naming it, the registry is unchanged and what it
stores stays recoverable."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import InvalidField
from meerkat_runtime.vocab.operation import OperationPeerHandle, OperationResult, OperationStatus

from tests.runtime_ops.helpers import bg_spec, child_spec, result, running

RT = "rt:session:fields"


def _spec(**changes: Any) -> Any:
    return dataclasses.replace(bg_spec("x"), **changes)


SPECS: dict[str, tuple[Any, str]] = {
    "integer id": (_spec(id=5), "id"),
    "empty id": (_spec(id=""), "id"),
    "string kind": (_spec(kind="background_tool_op"), "kind"),
    "owner None": (_spec(owner_session_id=None), "owner_session_id"),
    "display name integer": (_spec(display_name=3), "display_name"),
    "source label None": (_spec(source_label=None), "source_label"),
    "child session integer": (_spec(child_session_id=7), "child_session_id"),
    "string flag": (_spec(expect_peer_channel="yes"), "expect_peer_channel"),
    "surrogate name": (_spec(display_name="\udcff"), "display_name"),
    "not a spec": ({"id": "x"}, "spec"),
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_a_malformed_spec_is_refused_naming_its_field(case: str) -> None:
    spec, field = SPECS[case]
    reg = OpsLifecycleRegistry()
    with pytest.raises(InvalidField) as err:
        reg.register_operation(spec)
    assert err.value.field == field and err.value.kind == "validation_failed"
    assert reg.view().operation_ids == ()


CALLS: dict[str, tuple[Callable[[OpsLifecycleRegistry, str], None], str]] = {
    "result content integer": (lambda r, o: r.complete_operation(o, OperationResult(o, 5)), "content"),  # type: ignore[arg-type]
    "negative duration": (lambda r, o: r.complete_operation(o, OperationResult(o, "c", duration_ms=-1)), "duration_ms"),
    "boolean tokens": (lambda r, o: r.complete_operation(o, OperationResult(o, "c", tokens_used=True)), "tokens_used"),
    "string is_error": (lambda r, o: r.complete_operation(o, OperationResult(o, "c", is_error="no")), "is_error"),  # type: ignore[arg-type]
    "result of the wrong type": (lambda r, o: r.complete_operation(o, "done"), "result"),  # type: ignore[arg-type]
    "error None": (lambda r, o: r.fail_operation(o, None), "error"),  # type: ignore[arg-type]
    "provisioning error dict": (lambda r, o: r.provisioning_failed(o, {"e": 1}), "error"),  # type: ignore[arg-type]
    "cancel reason integer": (lambda r, o: r.cancel_operation(o, 4), "reason"),  # type: ignore[arg-type]
    "abort reason list": (lambda r, o: r.abort_provisioning(o, ["r"]), "reason"),  # type: ignore[arg-type]
    "terminate reason None": (lambda r, o: r.terminate_owner(None), "reason"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_malformed_argument_leaves_a_durable_registry_unchanged_and_recoverable(case: str) -> None:
    call, field = CALLS[case]
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT)
    oid = running(ops.registry, bg_spec("op"))
    before = ops.registry.view()
    with pytest.raises(InvalidField) as err:
        call(ops.registry, oid)
    assert err.value.field == field
    assert ops.registry.view() == before
    ops.registry.complete_operation(oid, result(oid))
    persisted = load_persisted_ops(store, RT)
    assert persisted is not None
    back = OpsLifecycleRegistry.from_recovered(persisted)
    assert back.snapshot(oid).status is OperationStatus.COMPLETED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "handle, field",
    [
        (OperationPeerHandle(5, "inproc://p"), "peer_name"),  # type: ignore[arg-type]
        (OperationPeerHandle("p", None), "address"),  # type: ignore[arg-type]
        (OperationPeerHandle("p", "inproc://p", 9), "peer_id"),  # type: ignore[arg-type]
        ("inproc://p", "handle"),
    ],
)
def test_a_malformed_peer_handle_is_refused(handle: Any, field: str) -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, child_spec())
    with pytest.raises(InvalidField) as err:
        reg.peer_ready(oid, handle)
    assert err.value.field == field
    assert not reg.snapshot(oid).peer_ready  # type: ignore[union-attr]
