"""The auth lease handle and the OAuth login-flow authority a machine shares with every binding.

Two authorities, one per machine (``MeerkatMachine.auth_lease_handle()`` /
``oauth_flow_authority()``), handed to every session's bindings (``SessionBindings.auth_lease``,
``.oauth_flows``) so that all runtime-backed traffic and every public auth surface see one
state:

* :class:`RuntimeAuthLeaseHandle` — credential leases per auth binding (a provider account):
  at most one live lease per binding (a refresh is single-flight), each with a fresh id and an
  expiry; a binding's credential ``generation`` grows each time a login flow completes for it,
  so a holder can tell that the credential it refreshed is stale.
* :class:`RuntimeOAuthFlowHandle` — login flows (``browser``: keyed by a minted ``state``
  token; ``device``: keyed by the provider's device code), admitted, verified and consumed once,
  within a time to live (default 10 minutes), each bound to the lease handle it was created
  with: consuming a flow advances that handle's generation for the flow's binding.

The seam (as upstream, never a hidden second authority): a persistent machine takes the pair
shared by every machine on the same store authority (:func:`shared_authorities`; a store with a
durable authority key shares it for the process lifetime, one without shares it while the store
object lives); an ephemeral machine has its own. Installing a custom (non-runtime) lease handle
with ``set_auth_lease_handle`` leaves no flow authority behind it: flows then fail with
:class:`OAuthFlowRejected` (:class:`UnavailableOAuthFlowAuthority`) until one is given explicitly
with ``set_auth_lease_handle_with_oauth_flow_authority``; installing a
:class:`RuntimeAuthLeaseHandle` creates the flow authority bound to it. Thread-safe.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import RuntimeDriverError, ValidationFailed

DEFAULT_LEASE_TTL = 60.0
DEFAULT_FLOW_TTL = 600.0
FLOW_KINDS = ("browser", "device")

Clock = Callable[[], float]


class AuthLeaseHeld(RuntimeDriverError):
    """The binding's credential is leased to another holder until ``expires_at``."""

    kind: ClassVar[str] = "auth_lease_held"

    def __init__(self, binding: str, holder: str, expires_at: float) -> None:
        super().__init__(f"auth binding {binding!r} is leased to {holder!r} until {expires_at:.3f}")
        self.binding = binding
        self.holder = holder
        self.expires_at = expires_at


class OAuthFlowRejected(RuntimeDriverError):
    """A login-flow operation was refused: ``operation`` names it, ``detail`` says why (unknown,
    expired, consumed, another provider, or no flow authority installed)."""

    kind: ClassVar[str] = "oauth_flow_rejected"

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation = operation
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AuthLease:
    """A live lease on ``binding``'s credential, taken at credential ``generation``."""

    lease_id: str
    binding: str
    holder: str
    generation: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class OAuthFlowRecord:
    """A login flow: its kind, provider, auth binding, key (state token or device code), expiry
    and whether it was consumed."""

    kind: str
    provider: str
    binding: str
    key: str
    expires_at: float
    consumed: bool = False


@runtime_checkable
class AuthLeaseHandle(Protocol):
    """What a credential lease handle provides (the runtime's, or an embedder's own)."""

    def acquire(self, binding: str, holder: str) -> AuthLease: ...

    def release(self, lease: AuthLease) -> bool: ...

    def current(self, binding: str) -> AuthLease | None: ...

    def generation(self, binding: str) -> int: ...


@runtime_checkable
class OAuthFlowAuthority(Protocol):
    """What a login-flow authority provides."""

    def admit(self, kind: str, provider: str, binding: str, key: str | None = None) -> str: ...

    def verify(self, kind: str, provider: str, key: str) -> OAuthFlowRecord: ...

    def consume(self, kind: str, provider: str, key: str) -> OAuthFlowRecord: ...


def _text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"{what} must be a non-empty string, got {value!r}")
    return value


class RuntimeAuthLeaseHandle:
    """The runtime's credential lease authority (module docstring)."""

    def __init__(self, *, ttl: float = DEFAULT_LEASE_TTL, clock: Clock = time.time) -> None:
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
            raise ValidationFailed(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, AuthLease] = {}
        self._generations: dict[str, int] = {}

    def acquire(self, binding: str, holder: str) -> AuthLease:
        """A new lease on ``binding`` for ``holder``; ``AuthLeaseHeld`` while another live lease
        exists (an expired one is taken over)."""
        binding, holder = _text("auth binding", binding), _text("lease holder", holder)
        now = self._clock()
        with self._lock:
            live = self._leases.get(binding)
            if live is not None and live.expires_at > now:
                raise AuthLeaseHeld(binding, live.holder, live.expires_at)
            lease = AuthLease(uuid.uuid4().hex, binding, holder, self._generations.get(binding, 0), now + self.ttl)
            self._leases[binding] = lease
            return lease

    def release(self, lease: AuthLease) -> bool:
        """End ``lease``; ``False`` when it is no longer the binding's live lease."""
        with self._lock:
            if self._leases.get(lease.binding) != lease:
                return False
            del self._leases[lease.binding]
            return True

    def current(self, binding: str) -> AuthLease | None:
        """The binding's live lease, if any."""
        with self._lock:
            lease = self._leases.get(binding)
        return lease if lease is not None and lease.expires_at > self._clock() else None

    def generation(self, binding: str) -> int:
        """How many logins completed for ``binding`` (its credential generation)."""
        with self._lock:
            return self._generations.get(binding, 0)

    def credential_replaced(self, binding: str) -> int:
        """A login completed for ``binding``: its generation grows; returns the new one."""
        with self._lock:
            generation = self._generations[binding] = self._generations.get(binding, 0) + 1
            return generation


class RuntimeOAuthFlowHandle:
    """The runtime's login-flow authority, bound to one :class:`RuntimeAuthLeaseHandle`."""

    def __init__(
        self, auth_lease: RuntimeAuthLeaseHandle, *, ttl: float = DEFAULT_FLOW_TTL, clock: Clock = time.time
    ) -> None:
        if not isinstance(auth_lease, RuntimeAuthLeaseHandle):
            raise ValidationFailed("a runtime OAuth flow authority needs a RuntimeAuthLeaseHandle")
        self.auth_lease = auth_lease
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._flows: dict[tuple[str, str], OAuthFlowRecord] = {}

    def admit(self, kind: str, provider: str, binding: str, key: str | None = None) -> str:
        """Admit a flow and return its key: a minted state token for ``browser`` (``key`` must
        be ``None``), the given device code for ``device``."""
        kind = self._kind("admit", kind)
        provider, binding = _text("provider", provider), _text("auth binding", binding)
        if kind == "browser":
            if key is not None:
                raise ValidationFailed("a browser flow's state token is minted by the authority")
            key = secrets.token_urlsafe(24)
        else:
            key = _text("device code", key)
        now = self._clock()
        with self._lock:
            self._expire(now)
            if (kind, key) in self._flows:
                raise OAuthFlowRejected(f"admit_{kind}_flow", f"flow {key!r} is already admitted")
            self._flows[(kind, key)] = OAuthFlowRecord(kind, provider, binding, key, now + self.ttl)
        return key

    def verify(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        """The live flow ``key`` of ``provider`` (not consumed, not expired)."""
        kind = self._kind("verify", kind)
        with self._lock:
            return self._live(f"verify_{kind}_flow", kind, provider, key)

    def consume(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        """Complete the flow once: it is consumed and the bound lease handle's generation for
        its binding grows."""
        kind = self._kind("consume", kind)
        with self._lock:
            record = self._live(f"consume_{kind}_flow", kind, provider, key)
            consumed = OAuthFlowRecord(
                record.kind, record.provider, record.binding, record.key, record.expires_at, True
            )
            self._flows[(kind, key)] = consumed
        self.auth_lease.credential_replaced(record.binding)
        return consumed

    def _kind(self, operation: str, kind: str) -> str:
        if kind not in FLOW_KINDS:
            raise ValidationFailed(f"{operation}: flow kind must be one of {', '.join(FLOW_KINDS)}, got {kind!r}")
        return kind

    def _live(self, operation: str, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        record = self._flows.get((kind, key))
        if record is None:
            raise OAuthFlowRejected(operation, f"no {kind} flow {key!r}")
        if record.provider != provider:
            raise OAuthFlowRejected(operation, f"flow {key!r} belongs to provider {record.provider!r}")
        if record.consumed:
            raise OAuthFlowRejected(operation, f"flow {key!r} was already consumed")
        if record.expires_at <= self._clock():
            raise OAuthFlowRejected(operation, f"flow {key!r} expired")
        return record

    def _expire(self, now: float) -> None:
        for flow_key in [k for k, r in self._flows.items() if r.expires_at <= now]:
            del self._flows[flow_key]


class UnavailableOAuthFlowAuthority:
    """What stands behind a custom lease handle installed without a flow authority: every
    operation is refused, never served by a hidden second authority."""

    DETAIL = "custom auth lease handle does not provide a runtime OAuth flow authority"

    def admit(self, kind: str, provider: str, binding: str, key: str | None = None) -> str:
        raise OAuthFlowRejected(f"admit_{kind}_flow", self.DETAIL)

    def verify(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        raise OAuthFlowRejected(f"verify_{kind}_flow", self.DETAIL)

    def consume(self, kind: str, provider: str, key: str) -> OAuthFlowRecord:
        raise OAuthFlowRejected(f"consume_{kind}_flow", self.DETAIL)


@dataclass
class AuthAuthorities:
    """A lease handle and the flow authority that goes with it."""

    auth_lease: AuthLeaseHandle
    oauth_flows: OAuthFlowAuthority


def runtime_authorities() -> AuthAuthorities:
    """A fresh runtime lease handle and the flow authority bound to it."""
    lease = RuntimeAuthLeaseHandle()
    return AuthAuthorities(lease, RuntimeOAuthFlowHandle(lease))


_SHARED_LOCK = threading.Lock()
_BY_KEY: dict[str, AuthAuthorities] = {}
_BY_STORE: weakref.WeakKeyDictionary[object, AuthAuthorities] = weakref.WeakKeyDictionary()
_PINNED: dict[int, tuple[object, AuthAuthorities]] = {}
"""Stores that cannot be weakly referenced: kept alive with their pair, so an id is never reused."""


def shared_authorities(store: RuntimeStore, key: str | None) -> AuthAuthorities:
    """The runtime authorities of ``store``'s durable authority (``key``, see
    :func:`~meerkat_runtime.session.authority.store_authority_key`): one pair per key for the
    process, or per store object (while it lives) when it has no key. A new pair each call is
    never made for the same authority."""
    with _SHARED_LOCK:
        if key is not None:
            found = _BY_KEY.get(key)
            if found is None:
                found = _BY_KEY[key] = runtime_authorities()
            return found
        try:
            found = _BY_STORE.get(store)
            if found is None:
                found = _BY_STORE[store] = runtime_authorities()
            return found
        except TypeError:  # cannot be weakly referenced
            pinned = _PINNED.get(id(store))
            if pinned is None:
                pinned = _PINNED[id(store)] = (store, runtime_authorities())
            return pinned[1]
