"""Every field an operation-registry call is handed is checked at the door: a wrong one is an
``InvalidField`` (kind ``validation_failed``) naming it, the registry is unchanged and what it
stores stays recoverable."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from meerkat_runtime.ops.recovery import load_persisted_ops, open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import InvalidField, InvalidSetting
from meerkat_runtime.vocab.ids import MAX_OPERATION_ID_BYTES
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
    "NUL in id": (_spec(id="a\x00"), "id"),
    "newline in id": (_spec(id="a\nb"), "id"),
    "id over 1024 bytes": (_spec(id="x" * (MAX_OPERATION_ID_BYTES + 1)), "id"),
    "2 MiB id": (_spec(id="x" * (2 << 20)), "id"),
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
    "result of another operation": (lambda r, o: r.complete_operation(o, OperationResult("zzz", "c")), "id"),
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


def test_an_id_at_the_limit_is_taken_and_the_message_does_not_repeat_a_huge_id() -> None:
    reg = OpsLifecycleRegistry()
    reg.register_operation(_spec(id="é" * (MAX_OPERATION_ID_BYTES // 2)))
    with pytest.raises(InvalidField) as err:
        reg.register_operation(_spec(id="x" * (2 << 20)))
    assert "at most 1024 are allowed" in str(err.value) and len(str(err.value)) < 400
    with pytest.raises(InvalidField, match="control character"):
        reg.register_operation(_spec(id="a\x00"))


def test_a_result_naming_another_operation_is_refused() -> None:
    reg = OpsLifecycleRegistry()
    oid = running(reg, bg_spec("b"))
    with pytest.raises(InvalidField, match="must be the id of the operation it completes") as err:
        reg.complete_operation(oid, OperationResult("zzz", "c"))
    assert err.value.field == "id"
    assert reg.snapshot(oid).status is OperationStatus.RUNNING  # type: ignore[union-attr]


def _with_session_registry(
    session_id: str, store: InMemoryRuntimeStore | None, use: Callable[[OpsLifecycleRegistry], None]
) -> None:
    """Run ``use`` on the registry of session ``session_id`` while its machine is open (a
    closed machine's registries refuse every change)."""

    async def body() -> None:
        machine = MeerkatMachine(store)
        await machine.register_session(session_id)
        try:
            use(await machine.ops_lifecycle_registry(session_id))
        finally:
            await machine.close()

    asyncio.run(body())


@pytest.mark.parametrize("stored", [False, True])
@pytest.mark.parametrize("owner", ["other", "rt:session:s", "S", " s"])
def test_a_session_registry_takes_only_specs_owned_by_its_session_spelled_as_it_is(owner: str, stored: bool) -> None:
    def use(reg: OpsLifecycleRegistry) -> None:
        assert reg.session_id == "s"
        with pytest.raises(InvalidField, match="must be the id of the registry's session, 's'") as err:
            reg.register_operation(_spec(owner_session_id=owner))
        assert err.value.field == "owner_session_id"
        assert reg.view().operation_ids == ()
        reg.register_operation(_spec(owner_session_id="s"))

    _with_session_registry("s", InMemoryRuntimeStore() if stored else None, use)


def test_a_registry_bound_to_no_session_takes_any_owner() -> None:
    reg = OpsLifecycleRegistry()
    assert reg.session_id is None
    reg.register_operation(_spec(owner_session_id="anyone"))
    ops = open_durable_ops(InMemoryRuntimeStore(), RT)
    assert ops.registry.session_id is None
    ops.registry.register_operation(_spec(owner_session_id="anyone"))


def test_open_durable_ops_binds_the_registry_to_a_session_of_that_runtime_id() -> None:
    store = InMemoryRuntimeStore()
    ops = open_durable_ops(store, RT, session_id="fields")
    with pytest.raises(InvalidField):
        ops.registry.register_operation(_spec(owner_session_id="other"))
    completed = running(ops.registry, _spec(owner_session_id="fields"))
    ops.registry.complete_operation(completed, result(completed))
    assert open_durable_ops(store, RT, session_id="fields").registry.session_id == "fields"
    with pytest.raises(InvalidSetting, match="does not belong to runtime id"):
        open_durable_ops(store, RT, session_id="other")


def test_a_recovered_session_registry_is_still_bound_to_its_session() -> None:
    store = InMemoryRuntimeStore()

    async def body() -> OpsLifecycleRegistry:
        first = MeerkatMachine(store)
        await first.register_session("s")
        registry = await first.ops_lifecycle_registry("s")
        done = running(registry, _spec(owner_session_id="s"))
        registry.complete_operation(done, result(done))
        await first.close()
        second = MeerkatMachine(store)
        await second.register_session("s")
        recovered = await second.ops_lifecycle_registry("s")
        await second.close()
        return recovered

    recovered = asyncio.run(body())
    assert len(recovered.completion_feed().list_since(0).entries) == 1  # recovered from the store
    with pytest.raises(InvalidField) as err:
        recovered.register_operation(_spec(owner_session_id="rt:session:s"))
    assert err.value.field == "owner_session_id"
