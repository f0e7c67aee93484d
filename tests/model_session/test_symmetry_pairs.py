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


def test_fast_paths_that_never_rename_or_break_ties_the_wrong_way_are_caught(ci_exploration: Any) -> None:
    pairs = _pairs(list(ci_exploration.state_list))

    def never_renames(s: SessionState) -> SessionState:
        return s

    def larger_repr_on_ties(s: SessionState) -> SessionState:
        first, second = signature(s, 0), signature(s, 1)
        swapped = rename(s, (1, 0))
        if first != second:
            return s if first < second else swapped
        return swapped if repr(swapped) > repr(s) else s

    for wrong in (never_renames, larger_repr_on_ties):
        assert any(wrong(s) != searched(s, 2) for s in pairs), wrong.__name__
