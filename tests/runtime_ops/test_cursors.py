"""Epoch cursors are forward-only: advancing backwards keeps the maximum."""

from __future__ import annotations

import threading

import pytest
from meerkat_runtime.ops.cursors import EpochCursorSnapshot, EpochCursorState


def test_cursors_start_at_zero_and_only_move_forward() -> None:
    state = EpochCursorState()
    assert state.snapshot() == EpochCursorSnapshot(0, 0, 0)
    assert state.advance_agent_applied(5) == 5
    assert state.advance_agent_applied(3) == 5
    assert state.advance_runtime_observed(2) == 2
    assert state.advance_runtime_injected(7) == 7
    assert state.advance_runtime_injected(1) == 7
    assert state.snapshot() == EpochCursorSnapshot(5, 2, 7)
    assert (state.agent_applied, state.runtime_observed, state.runtime_injected) == (5, 2, 7)


def test_from_recovered_values_and_merge() -> None:
    state = EpochCursorState.from_snapshot(EpochCursorSnapshot(5, 3, 2))
    assert state.snapshot() == EpochCursorSnapshot(5, 3, 2)
    assert EpochCursorSnapshot(1, 9, 2).merged(EpochCursorSnapshot(4, 3, 2)) == EpochCursorSnapshot(4, 9, 2)


def test_invalid_cursor_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="agent_applied"):
        EpochCursorSnapshot(-1, 0, 0)
    with pytest.raises(ValueError):
        EpochCursorState().advance_runtime_observed(-3)
    with pytest.raises(ValueError):
        EpochCursorState().advance_agent_applied(True)


def test_concurrent_advances_keep_the_maximum() -> None:
    state = EpochCursorState()
    threads = [
        threading.Thread(target=lambda k=k: [state.advance_agent_applied(v) for v in range(k, 2000, 7)])
        for k in range(7)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.agent_applied == 1999
