"""Completion handles: each resolves exactly once; a resolved handle never changes again."""

from __future__ import annotations

from meerkat_model.session.state import Waiter


def resolve(
    waiters: tuple[Waiter, ...], ids: tuple[int, ...], outcome: Waiter
) -> tuple[tuple[Waiter, ...], tuple[int, ...]]:
    """Resolve the pending handles of ``ids`` with ``outcome``; returns the new handles and the ids
    whose handle was resolved now (handles already resolved, or never created, are left alone)."""
    resolved = tuple(i for i in ids if waiters[i] is Waiter.PENDING)
    if not resolved:
        return waiters, ()
    out = list(waiters)
    for i in resolved:
        out[i] = outcome
    return tuple(out), resolved


def resolve_all_pending(waiters: tuple[Waiter, ...], outcome: Waiter) -> tuple[tuple[Waiter, ...], tuple[int, ...]]:
    """Resolve every pending handle with ``outcome`` (the session went away)."""
    return resolve(waiters, tuple(range(len(waiters))), outcome)


def resolution_outputs(ids: tuple[int, ...], outcome: Waiter) -> tuple[tuple[str, int, str], ...]:
    """What the callers observe: one ``("resolved", id, outcome)`` per handle resolved now."""
    return tuple(("resolved", i, outcome.name.lower()) for i in ids)
