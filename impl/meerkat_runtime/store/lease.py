"""Ownership of a runtime in a store: leases, fences and the two rules every store applies.

A **lease** is one row per runtime id: ``(owner, token, expires_at)``. ``token`` is a positive
integer that grows by one with every successful claim (never on renew); ``expires_at`` is in the
store's clock. A **fence** ``(owner, token)`` is what a writer got from its claim; it travels with
every durable write and the store compares it with the lease row inside the write's own
transaction.

The rules (shared by the built-in stores; a third-party store implements the same):

* :func:`claim_outcome` — a claim succeeds when there is no lease row, the row has expired
  (``now >= expires_at``) or the row already belongs to the claiming owner; it then writes
  ``(owner, token + 1, now + duration)`` (token 1 for a new row). Otherwise ``LeaseHeld``.
* :func:`renewal_outcome` — a renewal keeps owner and token and writes ``now + duration`` iff
  the row still matches the fence; else ``OwnershipLost``. ``renew_leases`` applies it to up to
  :data:`RENEW_BATCH_MAX` leases in one transaction, each outcome on its own.
* :func:`fence_refusal` — a write with a fence is allowed only if the row exists with that owner
  and token; a write without a fence only while the runtime has no lease row at all. Expiry
  alone refuses nothing: a stale writer is refused once another owner has claimed (the token
  moved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meerkat_runtime.vocab.errors import InvalidSetting, LeaseHeld, OwnershipLost, StoreError


@dataclass(frozen=True, slots=True)
class Fence:
    """What a writer proves ownership with: the owner id and the token of its claim."""

    owner: str
    token: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A runtime's lease row. ``expires_at`` is in the store's clock."""

    runtime_id: str
    owner: str
    token: int
    expires_at: float

    @property
    def fence(self) -> Fence:
        return Fence(self.owner, self.token)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def payload(self) -> bytes:
        """The row's stored form, as its checksum covers it."""
        return f"{self.owner}\n{self.token}\n{self.expires_at!r}".encode("utf-8", "surrogatepass")


def _clock_reading(now: object, duration_s: float = 0.0) -> float:
    """``now``, a store clock's reading, if it and the expiry ``now + duration_s`` are finite
    numbers of seconds; else ``InvalidSetting`` naming the clock (a lease expiring at ``inf``
    would be held for ever; ``nan`` compares false with every time)."""
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now + duration_s):
        raise InvalidSetting(
            f"the store's clock must return a finite number of seconds, got {now!r}"
            + ("" if not isinstance(now, int | float) or not math.isfinite(now) else f" (expiry {now} + {duration_s})")
        )
    return float(now)


RENEW_BATCH_MAX = 256
"""The most leases one ``renew_leases`` call renews (one transaction), so a batch never holds
a store's write lock for long."""

RenewalOutcome = Lease | StoreError
"""One lease's outcome in ``renew_leases``: the renewed lease, or the error ``renew_lease``
would have raised for it alone (``OwnershipLost`` for a stale fence, ``WriteFailed`` for an
invalid argument, ``Corrupt`` for a damaged row)."""


def claim_outcome(runtime_id: str, current: Lease | None, owner: str, duration_s: float, now: float) -> Lease:
    """The lease a claim writes, or raise ``LeaseHeld`` naming the holder and its expiry
    (``InvalidSetting`` for a clock reading that is not a finite time)."""
    now = _clock_reading(now, duration_s)
    if current is not None and current.owner != owner and not current.expired(now):
        raise LeaseHeld(runtime_id, current.owner, current.expires_at, remaining_s=current.expires_at - now)
    token = 1 if current is None else current.token + 1
    return Lease(runtime_id, owner, token, now + duration_s)


def renewal_outcome(runtime_id: str, current: Lease | None, fence: Fence, duration_s: float, now: float) -> Lease:
    """The lease a renewal writes (same owner and token, ``now + duration``), or raise
    ``OwnershipLost`` when the row no longer matches ``fence``."""
    now = _clock_reading(now, duration_s)
    refusal = fence_refusal(runtime_id, current, fence, "renew_lease")
    if refusal is not None:
        raise refusal
    assert current is not None
    return Lease(runtime_id, current.owner, current.token, now + duration_s)


def released(current: Lease | None, fence: Fence, now: float) -> Lease | None:
    """The lease after a release: expired now, owner and token kept; ``None`` (nothing to do)
    when the row no longer matches ``fence``."""
    now = _clock_reading(now)
    if current is None or current.owner != fence.owner or current.token != fence.token:
        return None
    return Lease(current.runtime_id, current.owner, current.token, min(now, current.expires_at))


def fence_refusal(runtime_id: str, current: Lease | None, fence: Fence | None, what: str) -> OwnershipLost | None:
    """Why a write carrying ``fence`` must be refused (an ``OwnershipLost`` to raise), or
    ``None`` when it may proceed."""
    if fence is None:
        if current is None:
            return None
        return OwnershipLost(
            runtime_id,
            f"{what} without a fence refused: the runtime is leased (owner {current.owner!r}, token {current.token})",
        )
    if current is None:
        return OwnershipLost(runtime_id, f"{what} refused: the runtime has no lease (fence token {fence.token})")
    if current.owner != fence.owner or current.token != fence.token:
        return OwnershipLost(
            runtime_id,
            f"{what} refused: fence (owner {fence.owner!r}, token {fence.token}) is stale; the lease is now "
            f"owner {current.owner!r}, token {current.token}",
        )
    return None
