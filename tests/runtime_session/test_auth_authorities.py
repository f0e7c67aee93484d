"""The auth lease handle and OAuth flow authority seam: one authority per store authority shared
by every binding, a custom handle only together with an explicit flow authority (never a hidden
second one), and the runtime authorities' own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from meerkat_runtime.session.auth import (
    AuthLease,
    AuthLeaseHeld,
    OAuthFlowRecord,
    OAuthFlowRejected,
    RuntimeAuthLeaseHandle,
    RuntimeOAuthFlowHandle,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import ValidationFailed

from tests.runtime_session.helpers import persistent, run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CustomLeases:
    """An embedder's own credential handle (not the runtime's)."""

    def acquire(self, binding: str, holder: str) -> AuthLease:
        return AuthLease("custom", binding, holder, 0, 1e12)

    def release(self, lease: AuthLease) -> bool:
        return True

    def current(self, binding: str) -> AuthLease | None:
        return None

    def generation(self, binding: str) -> int:
        return 0


class CustomFlows:
    def admit(self, kind: str, provider: str, binding: str, key: str | None = None) -> str:
        return "custom-flow"

    def verify(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        return OAuthFlowRecord(kind, provider, "b", key, 1e12)

    def consume(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        return OAuthFlowRecord(kind, provider, "b", key, 1e12, True)


def test_every_binding_shares_the_machines_one_authority() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        one, two = await m.prepare_bindings("a"), await m.prepare_bindings("b")
        assert one.auth_lease is two.auth_lease is m.auth_lease_handle()
        assert one.oauth_flows is two.oauth_flows is m.oauth_flow_authority()
        assert isinstance(m.auth_lease_handle(), RuntimeAuthLeaseHandle)
        flows = m.oauth_flow_authority()
        assert isinstance(flows, RuntimeOAuthFlowHandle) and flows.auth_lease is m.auth_lease_handle()
        other = MeerkatMachine.ephemeral()
        assert other.auth_lease_handle() is not m.auth_lease_handle()  # ephemeral machines share nothing
        await m.close()

    run(body())


def test_persistent_machines_on_one_store_authority_share_one_pair(tmp_path: Path) -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        first, _ = persistent(store)
        second, _ = persistent(FaultInjectingStore(store))  # a wrapper is its store's authority
        elsewhere, _ = persistent(InMemoryRuntimeStore())
        assert first.auth_lease_handle() is second.auth_lease_handle()
        assert first.oauth_flow_authority() is second.oauth_flow_authority()
        assert elsewhere.auth_lease_handle() is not first.auth_lease_handle()
        a, b = SqliteRuntimeStore(str(tmp_path / "rt.db")), SqliteRuntimeStore(str(tmp_path / "rt.db"))
        on_a, _ = persistent(a)
        on_b, _ = persistent(b)  # two handles on one file: one durable authority
        assert on_a.auth_lease_handle() is on_b.auth_lease_handle()
        lease = on_a.auth_lease_handle().acquire("acct", "worker-a")
        with pytest.raises(AuthLeaseHeld):
            on_b.auth_lease_handle().acquire("acct", "worker-b")
        assert on_b.auth_lease_handle().release(lease)
        for m in (first, second, elsewhere, on_a, on_b):
            await m.close()
        a.close()
        b.close()

    run(body())


def test_a_custom_handle_alone_leaves_no_hidden_flow_authority() -> None:
    m = MeerkatMachine.ephemeral()
    m.set_auth_lease_handle(CustomLeases())
    assert isinstance(m.auth_lease_handle(), CustomLeases)
    flows = m.oauth_flow_authority()
    assert not isinstance(flows, RuntimeOAuthFlowHandle)
    with pytest.raises(OAuthFlowRejected, match="does not provide a runtime OAuth flow authority") as caught:
        flows.admit("browser", "github", "acct")
    assert caught.value.operation == "admit_browser_flow"
    for call in (flows.verify, flows.consume):
        with pytest.raises(OAuthFlowRejected):
            call("device", "github", "code")
    custom_flows = CustomFlows()
    m.set_auth_lease_handle_with_oauth_flow_authority(CustomLeases(), custom_flows)
    assert m.oauth_flow_authority() is custom_flows
    with pytest.raises(ValidationFailed):
        m.set_auth_lease_handle_with_oauth_flow_authority(CustomLeases(), object())  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        m.set_auth_lease_handle(object())  # type: ignore[arg-type]


def test_a_runtime_handle_brings_the_flow_authority_bound_to_it() -> None:
    m = MeerkatMachine.ephemeral()
    m.set_auth_lease_handle(CustomLeases())
    handle = RuntimeAuthLeaseHandle()
    m.set_auth_lease_handle(handle)
    flows = m.oauth_flow_authority()
    assert m.auth_lease_handle() is handle
    assert isinstance(flows, RuntimeOAuthFlowHandle) and flows.auth_lease is handle
    state = flows.admit("browser", "github", "acct")
    flows.consume("browser", "github", state)
    assert handle.generation("acct") == 1


def test_leases_are_single_flight_expire_and_carry_the_credential_generation() -> None:
    clock = Clock()
    leases = RuntimeAuthLeaseHandle(ttl=30, clock=clock)
    first = leases.acquire("acct", "w1")
    with pytest.raises(AuthLeaseHeld) as held:
        leases.acquire("acct", "w2")
    assert held.value.holder == "w1" and held.value.expires_at == 1030.0
    assert leases.current("acct") == first
    clock.now += 31
    assert leases.current("acct") is None
    second = leases.acquire("acct", "w2")  # an expired lease is taken over
    assert second.lease_id != first.lease_id
    assert not leases.release(first) and leases.release(second)
    leases.credential_replaced("acct")
    assert leases.acquire("acct", "w3").generation == 1
    with pytest.raises(ValidationFailed):
        leases.acquire("", "w")
    with pytest.raises(ValidationFailed):
        RuntimeAuthLeaseHandle(ttl=0)


def test_flows_are_verified_and_consumed_once_within_their_time_to_live() -> None:
    clock = Clock()
    leases = RuntimeAuthLeaseHandle(clock=clock)
    flows = RuntimeOAuthFlowHandle(leases, ttl=600, clock=clock)
    state = flows.admit("browser", "github", "acct")
    assert len(state) >= 16 and flows.admit("browser", "github", "acct") != state
    assert flows.verify("browser", "github", state).binding == "acct"
    with pytest.raises(OAuthFlowRejected, match="belongs to provider 'github'"):
        flows.verify("browser", "gitlab", state)
    record = flows.consume("browser", "github", state)
    assert record.consumed and leases.generation("acct") == 1
    with pytest.raises(OAuthFlowRejected, match="already consumed"):
        flows.consume("browser", "github", state)
    code = flows.admit("device", "github", "acct", "DEV-1")
    assert code == "DEV-1"
    with pytest.raises(OAuthFlowRejected, match="already admitted"):
        flows.admit("device", "github", "acct", "DEV-1")
    clock.now += 601
    with pytest.raises(OAuthFlowRejected, match="expired"):
        flows.verify("device", "github", "DEV-1")
    with pytest.raises(OAuthFlowRejected, match="no browser flow"):
        flows.verify("browser", "github", "never")
    with pytest.raises(ValidationFailed):
        flows.admit("magic", "github", "acct")
    with pytest.raises(ValidationFailed):
        flows.admit("browser", "github", "acct", "chosen-state")
    assert leases.generation("acct") == 1
