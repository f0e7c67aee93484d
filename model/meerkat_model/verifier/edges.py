"""The edge records of an exploration, built on first use.

Rebuilding the ``(source, target, action, transition)`` records from a search's columns takes a
tuple per edge (millions for a deep profile: seconds and hundreds of megabytes), and a
verification run only counts them. :class:`Edges` knows the count at once and builds the
records the first time they are read (iterated, indexed or compared); afterwards it is a
plain list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

Edge = tuple[int, int, Any, str]


class Edges(Sequence[Edge]):
    """``count`` edge records, made by ``build`` (called at most once, when first read)."""

    __slots__ = ("_build", "_count", "_list")

    def __init__(self, count: int, build: Callable[[], list[Edge]]) -> None:
        self._count = count
        self._build: Callable[[], list[Edge]] | None = build
        self._list: list[Edge] | None = None

    def records(self) -> list[Edge]:
        """The records as a list (built now if not yet)."""
        if self._list is None:
            assert self._build is not None
            built = self._build()
            if len(built) != self._count:
                raise AssertionError(f"built {len(built)} edge records, expected {self._count}")
            self._list, self._build = built, None
        return self._list

    @property
    def built(self) -> bool:
        """Whether the records have been built."""
        return self._list is not None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Edge: ...

    @overload
    def __getitem__(self, index: slice) -> list[Edge]: ...

    def __getitem__(self, index: int | slice) -> Edge | list[Edge]:
        return self.records()[index]

    def __iter__(self) -> Iterator[Edge]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Edges):
            return self.records() == other.records()
        if isinstance(other, list):
            return self.records() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking like a list: unhashable

    def __reduce__(self) -> tuple[type[list[Edge]], tuple[list[Edge]]]:
        """Pickled (and copied) as the plain list of its records."""
        return (list, (self.records(),))

    def __repr__(self) -> str:
        return f"Edges({self._count} records{'' if self.built else ', not built yet'})"
