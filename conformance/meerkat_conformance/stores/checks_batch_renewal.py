"""The optional batched renewal: ``renew_leases`` gives, for every ``(fence, runtime_id)``
pair, what ``renew_lease`` alone would give (``docs/stores.md``; the rules are in
``meerkat_runtime.store.lease``). A store without it is renewed one lease at a time and the
check does not apply."""

from __future__ import annotations

import time

from meerkat_runtime.store.lease import RENEW_BATCH_MAX, Fence, Lease, RenewalOutcome
from meerkat_runtime.store.protocol import RenewsLeases, RuntimeStore
from meerkat_runtime.vocab.errors import OwnershipLost, StoreError, WriteFailed, WriteRefused

from meerkat_conformance.stores.backend import StoreFactory
from meerkat_conformance.stores.failure import NotApplicable, StoreConformanceFailure, expect
from meerkat_conformance.stores.fixtures import fresh, opened

A, B = "owner-a", "owner-b"
LONG = 60.0
SHORT = 0.2


def _rt(name: str) -> str:
    return f"rt:session:batch-{name}"


def _claim(store: RuntimeStore, rt: str, owner: str, duration: float) -> Lease:
    try:
        return store.claim_lease(rt, owner, duration)
    except StoreError as exc:
        raise StoreConformanceFailure(f"claim {rt}", f"refused: {exc}") from exc


def _renew_many(store: RenewsLeases, step: str, pairs: list[tuple[Fence, str]]) -> list[RenewalOutcome]:
    try:
        outcomes = store.renew_leases(pairs, LONG)
    except StoreError as exc:
        raise StoreConformanceFailure(step, f"renew_leases raised instead of returning each outcome: {exc}") from exc
    expect(
        isinstance(outcomes, list) and len(outcomes) == len(pairs),
        step,
        f"renew_leases returned {len(outcomes) if isinstance(outcomes, list) else type(outcomes).__name__} "
        f"outcomes for {len(pairs)} leases",
    )
    return outcomes


def _renewed(step: str, outcome: RenewalOutcome, before: Lease, stored: Lease | None) -> None:
    expect(isinstance(outcome, Lease), step, f"a lease its fence still holds was not renewed: {outcome!r}")
    assert isinstance(outcome, Lease)
    expect(
        (outcome.runtime_id, outcome.owner, outcome.token) == (before.runtime_id, before.owner, before.token),
        step,
        f"the renewal changed the lease's identity or token: {before!r} -> {outcome!r}",
    )
    expect(outcome.expires_at > before.expires_at, step, "the renewal did not extend the expiry")
    expect(stored == outcome, step, f"load_lease reads {stored!r}, not the renewed lease {outcome!r}")


def _refused(step: str, outcome: RenewalOutcome, kind: type[StoreError], rt: str) -> None:
    expect(isinstance(outcome, kind), step, f"expected {kind.__name__} for this lease, got {outcome!r}")
    assert isinstance(outcome, StoreError)
    expect(rt in str(outcome), step, f"the refusal {outcome!r} does not name {rt!r}")
    expect(not outcome.outcome_unknown, step, "a refused renewal must not be an unknown outcome")


def check_lease_batch_renewal(factory: StoreFactory) -> None:
    """``renew_leases`` renews every lease its fence still holds (token kept, expiry extended,
    also an expired lease nobody took) and returns, in order, ``OwnershipLost`` for a stale,
    foreign or unclaimed fence and ``WriteFailed`` for a malformed pair, leaving those leases
    unchanged and the others renewed; each outcome is the one ``renew_lease`` gives for the
    same pair; ``RENEW_BATCH_MAX`` leases renew in one call."""
    with fresh(factory) as backend, opened(backend) as store:
        if not isinstance(store, RenewsLeases):
            raise NotApplicable("the store has no renew_leases (it is renewed one lease at a time)")
        late = _claim(store, _rt("late"), A, SHORT)
        _claim(store, _rt("kept"), A, SHORT)
        stale = _claim(store, _rt("stale"), A, LONG)
        current = _claim(store, _rt("stale"), A, LONG)  # same owner, new token: ``stale`` is stale
        foreign = _claim(store, _rt("foreign"), B, LONG)
        time.sleep(SHORT + 0.05)  # ``late`` and ``kept`` expire; nobody takes them
        kept_again = _claim(store, _rt("kept"), A, SHORT)  # renewable afresh, token moved
        before = {rt: store.load_lease(rt) for rt in map(_rt, ("late", "kept", "stale", "foreign", "never"))}
        pairs: list[tuple[Fence, str]] = [
            (late.fence, _rt("late")),
            (stale.fence, _rt("stale")),
            (kept_again.fence, _rt("kept")),
            (Fence(A, foreign.token), _rt("foreign")),
            (Fence(A, 1), _rt("never")),
            (None, _rt("malformed")),  # type: ignore[list-item]  # a malformed pair, refused alone
        ]
        outcomes = _renew_many(store, "batch", pairs)
        _renewed("expired lease nobody took", outcomes[0], late, store.load_lease(_rt("late")))
        _refused("stale fence", outcomes[1], OwnershipLost, _rt("stale"))
        _renewed("lease after a stale one", outcomes[2], kept_again, store.load_lease(_rt("kept")))
        _refused("foreign fence", outcomes[3], OwnershipLost, _rt("foreign"))
        _refused("never claimed", outcomes[4], OwnershipLost, _rt("never"))
        _refused("malformed pair", outcomes[5], WriteFailed, _rt("malformed"))
        for n in (1, 3, 4):
            expect(isinstance(outcomes[n], WriteRefused), f"refusal {n}", "OwnershipLost must be a WriteRefused")
        for rt in (_rt("stale"), _rt("foreign"), _rt("never")):
            expect(store.load_lease(rt) == before[rt], f"refused {rt}", "a refused renewal changed the lease")
        expect(store.load_lease(_rt("stale")) == current, "stale fence", "the current lease changed")
        for n, (fence, rt) in enumerate(pairs[:5]):
            try:
                single: RenewalOutcome = store.renew_lease(fence, rt, LONG)
            except StoreError as exc:
                single = exc
            step = f"renew_lease alone ({rt})"
            expect(type(single) is type(outcomes[n]), step, f"renew_lease gives {single!r}, the batch {outcomes[n]!r}")
            batched = outcomes[n]
            if isinstance(single, Lease) and isinstance(batched, Lease):
                expect(single.fence == batched.fence, step, "renew_lease and the batch disagree on the fence")
        many = [_claim(store, _rt(f"many-{n}"), A, LONG) for n in range(RENEW_BATCH_MAX)]
        full = _renew_many(store, f"{RENEW_BATCH_MAX} leases", [(lease.fence, lease.runtime_id) for lease in many])
        for lease, outcome in zip(many, full, strict=True):
            _renewed(f"{RENEW_BATCH_MAX} leases", outcome, lease, store.load_lease(lease.runtime_id))
