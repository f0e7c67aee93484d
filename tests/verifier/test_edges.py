"""The lazily built edge records of an exploration."""

from __future__ import annotations

import copy
import pickle

import pytest
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.verifier.edges import Edges
from meerkat_model.verifier.explore import explore


def test_count_known_before_the_records_are_built() -> None:
    calls: list[int] = []

    def build() -> list[tuple[int, int, object, str]]:
        calls.append(1)
        return [(0, 1, "a", "t"), (1, 0, "b", "u")]

    edges = Edges(2, build)
    assert len(edges) == 2 and not edges.built and not calls
    assert edges[1] == (1, 0, "b", "u")
    assert list(edges) == [(0, 1, "a", "t"), (1, 0, "b", "u")]
    assert edges == [(0, 1, "a", "t"), (1, 0, "b", "u")] and edges != [(0, 1, "a", "t")]
    assert edges == Edges(2, build) and calls == [1, 1]


def test_pickled_as_the_list_of_its_records() -> None:
    edges = Edges(1, lambda: [(0, 0, "a", "t")])
    assert pickle.loads(pickle.dumps(edges)) == [(0, 0, "a", "t")]
    assert copy.deepcopy(edges) == [(0, 0, "a", "t")]


def test_a_wrong_count_is_reported() -> None:
    with pytest.raises(AssertionError, match="expected 3"):
        Edges(3, lambda: []).records()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_search_counts_edges_without_building_them(workers: int) -> None:
    machine = MACHINES["session"](PROFILES["tiny"]["session"])
    exploration = explore(machine, workers=workers)
    edges = exploration.edge_list
    assert isinstance(edges, Edges) and not edges.built
    count = exploration.edges
    assert count == len(list(edges)) > 0 and edges.built
