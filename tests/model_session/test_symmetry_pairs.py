"""The two-input fast path of the session representative agrees with the general search."""

from __future__ import annotations

from typing import Any

from meerkat_model.session.state import SessionState
from meerkat_model.session.symmetry import canonical, rename, searched, signature


def _pairs(states: list[SessionState]) -> list[SessionState]:
    """Every state with two accepted inputs, as stored and with its two ids swapped."""
    two = [s for s in states if sum(a is not None for a in s.attrs) == 2]
    return [*two, *(rename(s, (1, 0)) for s in two)]


def test_the_fast_path_gives_the_general_representative_on_every_ci_state(ci_exploration: Any) -> None:
    pairs = _pairs(list(ci_exploration.state_list))
    assert len(pairs) > 1000
    assert all(canonical(s) == searched(s, 2) for s in pairs)


def test_fast_paths_that_never_rename_or_order_the_wrong_way_are_caught(ci_exploration: Any) -> None:
    pairs = _pairs(list(ci_exploration.state_list))

    def never_renames(s: SessionState) -> SessionState:
        return s

    def larger_signature_first(s: SessionState) -> SessionState:
        first, second = signature(s, 0), signature(s, 1)
        return s if first >= second else rename(s, (1, 0))

    for wrong in (never_renames, larger_signature_first):
        assert any(wrong(s) != searched(s, 2) for s in pairs), wrong.__name__


def test_equal_signatures_mean_the_swap_is_the_same_state(ci_exploration: Any) -> None:
    """Why the fast path needs no tie-break: on every reachable pair whose two inputs have equal
    signatures, swapping them gives the same state (so no choice of order can differ)."""
    pairs = _pairs(list(ci_exploration.state_list))
    ties = [s for s in pairs if signature(s, 0) == signature(s, 1)]
    assert len(ties) > 100
    assert all(rename(s, (1, 0)) == s for s in ties)
