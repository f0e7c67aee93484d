"""Counters a conformance run accumulates: transitions covered, examples, steps, crashes, faults."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class MachineTally:
    """What was exercised on one machine. ``transitions`` are the declared transition names."""

    machine: str
    transitions: tuple[str, ...] = ()
    covered: set[str] = field(default_factory=set)
    examples: int = 0
    walks: int = 0
    steps: int = 0
    rejections: int = 0
    crashes: int = 0
    faults: int = 0
    edges_total: int = 0
    edges_covered: int = 0
    disagreements: int = 0

    @property
    def uncovered(self) -> list[str]:
        return [name for name in self.transitions if name not in self.covered]

    @property
    def covered_declared(self) -> int:
        return sum(1 for name in self.transitions if name in self.covered)

    def merge(self, other: MachineTally) -> None:
        """Add ``other``'s counts into this tally (same machine)."""
        if other.machine != self.machine:
            raise ValueError(f"cannot merge tally of {other.machine!r} into {self.machine!r}")
        if not self.transitions:
            self.transitions = other.transitions
        self.covered |= other.covered
        self.examples += other.examples
        self.walks += other.walks
        self.steps += other.steps
        self.rejections += other.rejections
        self.crashes += other.crashes
        self.faults += other.faults
        self.edges_total = max(self.edges_total, other.edges_total)
        self.edges_covered = max(self.edges_covered, other.edges_covered)
        self.disagreements += other.disagreements
