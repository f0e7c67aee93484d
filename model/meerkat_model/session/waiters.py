"""Completion handles: each resolves exactly once; a resolved handle never changes again."""

from __future__ import annotations

from collections.abc import Sequence

from meerkat_model.session.state import TERMINATED_BY, Row, Waiter
from meerkat_model.vocab.statuses import AbandonKind, InputPhase


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
    if not ids:
        return ()
    name = _LOWER_NAMES.get(outcome) or outcome.name.lower()
    return tuple([("resolved", i, name) for i in ids])


_LOWER_NAMES = {w: w.name.lower() for w in Waiter}


def stored_outcome(phase: InputPhase, reason: int) -> Waiter:
    """What a pending handle of an input the store shows finished (``phase``, abandon
    ``reason``) resolves with."""
    if phase is InputPhase.CONSUMED:
        return Waiter.COMPLETED
    if phase is InputPhase.SUPERSEDED:
        return Waiter.ABANDONED_SUPERSEDED
    if phase is InputPhase.COALESCED:
        return Waiter.ABANDONED_COALESCED
    if reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
        return Waiter.ABANDONED_MAX_ATTEMPTS
    if reason == AbandonKind.CANCELLED:
        return Waiter.CANCELLED
    return TERMINATED_BY[AbandonKind(reason)]


def resolve_from_store(
    waiters: tuple[Waiter, ...], rows: Sequence[Row | None], halted_as: Waiter | None = None
) -> tuple[tuple[Waiter, ...], tuple[tuple[str, int, str], ...]]:
    """Resolve the pending handles after memory was rebuilt from the store's ``rows``: an input
    the store does not hold is ``terminated_unregistered``, a finished one its stored outcome, and,
    with ``halted_as`` (the store says Stopped or Destroyed), every other one ``halted_as``.
    Returns the new handles and one ``("resolved", id, outcome)`` per handle resolved now."""
    out = list(waiters)
    outputs: list[tuple[str, int, str]] = []
    for i, waiter in enumerate(waiters):
        if waiter is not Waiter.PENDING:
            continue
        row = rows[i]
        if row is None:
            out[i] = Waiter.TERMINATED_UNREGISTERED
        elif row.phase.is_terminal:
            out[i] = stored_outcome(row.phase, row.reason)
        elif halted_as is not None:
            out[i] = halted_as
        else:
            continue
        outputs.append(("resolved", i, out[i].name.lower()))
    return tuple(out), tuple(outputs)
