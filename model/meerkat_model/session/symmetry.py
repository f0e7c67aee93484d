"""Symmetry reduction: accepted input ids are interchangeable.

Nothing in the model depends on the value of an input id: runs take lane heads, supersession
takes the first queued input in lane order, recovery follows the stored admission order, and new
ids are taken lowest-unused-first from a prefix that only grows. So renaming the accepted ids by
any permutation (everywhere: attributes, rows, lanes and their order, the current run, references
to a superseding input, stored rows, receipts, handles) gives an equivalent state.

The representative: sort the accepted ids by a signature that renaming cannot change (their
attributes, phases, attempts, handles, and *positions* in every lane and stored lane); among ids
with equal signatures try every order and keep the smallest ``repr``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeVar

from meerkat_model.session.state import NO_ID, Durable, Memory, Row, SessionState

T = TypeVar("T")


def _position(order: tuple[int, ...], i: int) -> int:
    return order.index(i) if i in order else -1


def _row_sig(row: Row | None) -> tuple[int, ...]:
    if row is None:
        return (-2,)
    return (int(row.phase), row.attempts, row.reason, 0 if row.ref == NO_ID else 1)


def signature(s: SessionState, i: int) -> tuple[object, ...]:
    """What renaming cannot change about accepted input ``i`` of ``s``."""
    attr = s.attrs[i]
    assert attr is not None
    d = s.durable
    sig: tuple[object, ...] = (
        tuple(attr),
        _row_sig(d.rows[i]),
        _position(d.queue, i),
        _position(d.steer, i),
        d.receipts[i],
        int(s.waiters[i]),
    )
    m = s.memory
    if m is not None:
        sig += (_row_sig(m.rows[i]), _position(m.queue, i), _position(m.steer, i), m.run == i)
    return sig


def _rename_row(row: Row | None, p: Sequence[int]) -> Row | None:
    if row is None or row.ref == NO_ID:
        return row
    return row._replace(ref=p[row.ref])


def _permute(values: tuple[T, ...], p: Sequence[int], n: int) -> tuple[T, ...]:
    out = list(values)
    for i in range(n):
        out[p[i]] = values[i]
    return tuple(out)


def rename(s: SessionState, p: Sequence[int]) -> SessionState:
    """``s`` with accepted id ``i`` renamed ``p[i]`` (``p`` permutes ``range(len(p))``)."""
    n = len(p)

    def ids(order: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(p[i] for i in order)

    def rows(values: tuple[Row | None, ...]) -> tuple[Row | None, ...]:
        renamed = tuple(_rename_row(r, p) if k < n else r for k, r in enumerate(values))
        return _permute(renamed, p, n)

    d = s.durable
    durable = Durable(d.record, rows(d.rows), ids(d.queue), ids(d.steer), _permute(d.receipts, p, n))
    m = s.memory
    memory = None
    if m is not None:
        run = p[m.run] if m.run != NO_ID else NO_ID
        memory = Memory(m.registration, m.phase, run, m.pre_run, ids(m.queue), ids(m.steer), rows(m.rows))
    return SessionState(
        _permute(s.attrs, p, n),
        durable,
        memory,
        _permute(s.waiters, p, n),
        s.destroyed,
    )


_SWAP = (1, 0)


def canonical(s: SessionState) -> SessionState:
    """The representative of ``s`` (module docstring); ``s`` itself when it is one."""
    n = sum(1 for a in s.attrs if a is not None)
    if n < 2:
        return s
    if n == 2:  # the common case, without the general search below (same representative)
        first, second = signature(s, 0), signature(s, 1)
        if first < second:
            return s
        swapped = rename(s, _SWAP)
        if second < first or repr(swapped) < repr(s):
            return swapped
        return s
    return searched(s, n)


def searched(s: SessionState, n: int) -> SessionState:
    """The representative of ``s`` (with ``n`` accepted ids) by the general search: signatures
    sorted, every order of equal signatures tried."""
    sigs = [(signature(s, i), i) for i in range(n)]
    sigs.sort()
    groups: list[list[int]] = []
    for k, (sig, i) in enumerate(sigs):
        if k and sig == sigs[k - 1][0]:
            groups[-1].append(i)
        else:
            groups.append([i])
    best: SessionState | None = None
    best_key = ""
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [i for group in choice for i in group]  # order[new] = old
        p = [0] * n
        for new, old in enumerate(order):
            p[old] = new
        if len(groups) == n:
            return s if p == sorted(p) else rename(s, p)
        candidate = rename(s, p)
        key = repr(candidate)
        if best is None or key < best_key:
            best, best_key = candidate, key
    assert best is not None
    return best
