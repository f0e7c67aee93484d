"""A throttled one-line progress reporter for long conformance runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from meerkat_conformance.lockstep.tally import MachineTally


class ProgressLine:
    """Prints ``tally`` at most every ``every`` seconds to ``stream`` (stderr by default)."""

    def __init__(
        self, label: str, every: float = 2.0, stream: TextIO | None = None, *, target: int | None = None
    ) -> None:
        self.label = label
        self.target = target
        """The run's example budget (``max_examples``; Hypothesis may run a few more while shrinking)."""
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.last = self.started

    def line(self, tally: MachineTally) -> str:
        elapsed = time.perf_counter() - self.started
        examples = f"{tally.examples}" if self.target is None else f"{tally.examples} (budget {self.target})"
        return (
            f"[{self.label}] {elapsed:7.1f}s  examples {examples}  steps {tally.steps}  "
            f"transitions {tally.covered_declared}/{len(tally.transitions)}  "
            f"crashes {tally.crashes}  faults {tally.faults}"
        )

    def tick(self, tally: MachineTally, *, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.last = now
            print(self.line(tally), file=self.stream, flush=True)
