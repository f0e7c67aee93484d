"""Symmetry reduction: operation ids are interchangeable, so renaming them maps reachable
states to reachable states with the same behaviour (every order-dependent behaviour follows
registration, completion or request order, which are renamed along with the ids).

The canonical form is the smallest renaming of a state over all permutations of the ids.
"""

from __future__ import annotations

from itertools import permutations, product

from meerkat_model.ops.state import DurableImage, RegistryState


def rename(state: RegistryState, perm: tuple[int, ...], inverse: tuple[int, ...]) -> RegistryState:
    """``state`` with id ``i`` renamed to ``perm[i]`` (``inverse`` is the inverse permutation).
    Parts the durable image shares with memory (same objects) are renamed once."""
    ops, feed, completed = state.ops, state.feed, state.completed
    new_feed = tuple([(s, perm[i], k, o, p) for (s, i, k, o, p) in feed])
    new_completed = tuple([perm[i] for i in completed])
    disk = state.disk
    if disk:
        disk = DurableImage(
            tuple([disk.ops[j] for j in inverse]),
            new_completed if disk.completed is completed else tuple([perm[i] for i in disk.completed]),
            new_feed if disk.feed is feed else tuple([(s, perm[i], k, o, p) for (s, i, k, o, p) in disk.feed]),
            disk.watermark,
            disk.next_seq,
        )
    return RegistryState(
        tuple([ops[j] for j in inverse]),
        tuple([perm[i] for i in state.active_order]),
        state.active_count,
        new_completed,
        tuple([perm[i] for i in state.barrier]),
        new_feed,
        state.watermark,
        state.next_seq,
        disk,
    )


_SWAP = (1, 0)


class Canonicalizer:
    """Canonical forms for a fixed number of ids.

    The candidates are the renamings that put the operation slots in sorted order; the
    canonical form is the smallest candidate. That candidate set is the same for every member
    of an orbit, so the result is a true orbit representative. When all slots differ there is
    exactly one candidate (often the identity, which costs nothing).
    """

    def __init__(self, ids: int) -> None:
        self.ids = ids

    def canonical(self, state: RegistryState) -> RegistryState:
        ops = state.ops
        if self.ids == 2:  # the common case, without the general machinery
            a, b = ops
            if a < b:
                return state
            swapped = rename(state, _SWAP, _SWAP)
            return swapped if a > b or swapped < state else state
        order = sorted(range(self.ids), key=ops.__getitem__)
        groups: list[list[int]] = []
        for old in order:
            if groups and ops[groups[-1][0]] == ops[old]:
                groups[-1].append(old)
            else:
                groups.append([old])
        best: RegistryState | None = None
        for arrangement in product(*(permutations(g) for g in groups)):
            inverse = tuple(old for group in arrangement for old in group)  # new id -> old id
            if best is None and inverse == tuple(range(self.ids)) and len(groups) == self.ids:
                return state
            perm = [0] * self.ids
            for new, old in enumerate(inverse):
                perm[old] = new
            candidate = rename(state, tuple(perm), inverse)
            if best is None or candidate < best:
                best = candidate
        assert best is not None
        return best
