"""Explorations shared by the diagrams of one run: each machine under given bounds is explored
once with ``meerkat_model.verifier.explore`` (sequential search, symmetry reduction), whatever
number of pictures and pages need it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ExplorationCache:
    """Explorations by (machine key, bounds)."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, tuple[tuple[str, int], ...]], Any] = {}

    def explore(self, key: str, machine: Any, bounds: Mapping[str, int]) -> Any:
        """The exploration of ``machine`` (catalog machine ``key`` built with ``bounds``)."""
        from meerkat_model.verifier import explore

        ident = (key, tuple(sorted(bounds.items())))
        if ident not in self._done:
            self._done[ident] = explore(machine)
        return self._done[ident]
