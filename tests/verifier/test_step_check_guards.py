"""A step check's ``when`` precondition is asked once per state and check, whatever the number
of steps from that state; a precondition that raises is still a violation of each step."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import pytest
from meerkat_model.machine import StepCheck, Stepped
from meerkat_model.verifier import explore
from meerkat_model.verifier.search import STEP_RAISES

from tests.verifier.toys import Action, Counter


class GuardedCounter(Counter):
    """The counter with one step check on ``inc`` and ``reset`` (two steps from most states);
    its precondition counts the states it is asked about, and raises at ``raise_at``."""

    def __init__(self, raise_at: int | None = None) -> None:
        super().__init__(limit=5)
        self.asked: Tally[int] = Tally()
        self.raise_at = raise_at

    def when(self, state: int) -> bool:
        self.asked[state] += 1
        if state == self.raise_at:
            raise RuntimeError("precondition broke")
        return state % 2 == 0

    def step_checks(self) -> Sequence[StepCheck[int, Action]]:
        def never_above_four(before: int, action: Any, stepped: Stepped[int]) -> str | None:
            return "went above 4" if stepped.state > 4 else None

        return [StepCheck("never_above_four", "", frozenset({"inc", "reset"}), never_above_four, self.when)]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_precondition_is_asked_once_per_state(workers: int) -> None:
    machine = GuardedCounter()
    e = explore(machine, workers=workers)
    assert e.states == 6
    if workers == 1:  # the parallel workers count in their own processes
        assert machine.asked == Tally(range(6))
    # 4 -> 5 is an ``inc`` from an even state: the rule runs there and fails
    (violation,) = [v for v in e.violations if v.invariant == "never_above_four"]
    assert violation.action == ("inc",)


def test_a_precondition_that_raises_is_a_violation_of_the_step() -> None:
    machine = GuardedCounter(raise_at=3)
    e = explore(machine)
    (violation,) = [v for v in e.violations if v.invariant == STEP_RAISES]
    assert "precondition broke" in violation.message
    assert machine.asked[3] == 2  # asked again for the second step: a raise is not remembered
