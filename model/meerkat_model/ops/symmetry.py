"""Symmetry reduction: operation ids are interchangeable, so renaming them maps reachable
states to reachable states with the same behaviour (every order-dependent behaviour follows
registration, completion or request order, which are renamed along with the ids).

The canonical form is the smallest renaming of a state over all permutations of the ids.
:func:`rename` is the plain definition; :class:`Canonicalizer` renames through
:class:`Renaming`, which remembers each renamed component (reachable states share few distinct
id orders, feeds and durable images, so most components are renamed once); tests check the two
agree on every state of a profile.
"""

from __future__ import annotations

from itertools import permutations, product

from meerkat_model.ops.state import DurableImage, FeedEntry, RegistryState

_new = tuple.__new__


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


class Renaming:
    """One renaming of the ids (``perm``, with its ``inverse``) that remembers the components it
    renamed: :meth:`state` equals ``rename(state, perm, inverse)``."""

    __slots__ = ("feeds", "images", "inverse", "orders", "perm")

    def __init__(self, perm: tuple[int, ...], inverse: tuple[int, ...]) -> None:
        self.perm, self.inverse = perm, inverse
        self.orders: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.feeds: dict[tuple[FeedEntry, ...], tuple[FeedEntry, ...]] = {}
        self.images: dict[DurableImage, DurableImage] = {}

    def order(self, ids: tuple[int, ...]) -> tuple[int, ...]:
        """A tuple of ids, each renamed."""
        got = self.orders.get(ids)
        if got is None:
            perm = self.perm
            got = self.orders[ids] = tuple([perm[i] for i in ids])
        return got

    def feed(self, feed: tuple[FeedEntry, ...]) -> tuple[FeedEntry, ...]:
        """Feed entries with their ids renamed."""
        got = self.feeds.get(feed)
        if got is None:
            perm = self.perm
            got = self.feeds[feed] = tuple([(s, perm[i], k, o, p) for (s, i, k, o, p) in feed])
        return got

    def image(self, disk: DurableImage) -> DurableImage:
        """A durable image with its slots permuted and its ids renamed."""
        got = self.images.get(disk)
        if got is None:
            ops = disk[0]
            got = self.images[disk] = _new(
                DurableImage,
                (tuple([ops[j] for j in self.inverse]), self.order(disk[1]), self.feed(disk[2]), disk[3], disk[4]),
            )
        return got

    def state(self, state: RegistryState) -> RegistryState:
        ops, active_order, active_count, completed, barrier, feed, watermark, next_seq, disk = state
        order = self.order
        return _new(
            RegistryState,
            (
                tuple([ops[j] for j in self.inverse]),
                order(active_order),
                active_count,
                order(completed),
                order(barrier),
                self.feed(feed),
                watermark,
                next_seq,
                self.image(disk) if disk else disk,
            ),
        )


class Canonicalizer:
    """Canonical forms for a fixed number of ids.

    The candidates are the renamings that put the operation slots in sorted order; the
    canonical form is the smallest candidate. That candidate set is the same for every member
    of an orbit, so the result is a true orbit representative. When all slots differ there is
    exactly one candidate (often the identity, which costs nothing).
    """

    def __init__(self, ids: int) -> None:
        self.ids = ids
        self.renamings: dict[tuple[int, ...], Renaming] = {}
        self.swap = self.renaming((1, 0)) if ids == 2 else None

    def renaming(self, inverse: tuple[int, ...]) -> Renaming:
        """The renaming that moves old id ``inverse[new]`` to ``new``."""
        got = self.renamings.get(inverse)
        if got is None:
            perm = [0] * len(inverse)
            for new, old in enumerate(inverse):
                perm[old] = new
            got = self.renamings[inverse] = Renaming(tuple(perm), inverse)
        return got

    def canonical(self, state: RegistryState) -> RegistryState:
        ops = state[0]
        if self.swap is not None:  # two ids, the common case, without the general machinery
            a, b = ops
            if a < b:
                return state
            swapped = self.swap.state(state)
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
            candidate = self.renaming(inverse).state(state)
            if best is None or candidate < best:
                best = candidate
        assert best is not None
        return best
