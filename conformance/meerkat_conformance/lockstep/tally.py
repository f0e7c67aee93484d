"""Counters a conformance run accumulates: transitions covered, examples, steps, crashes, faults,
and the coverage floor (the transitions the run can reach, every one of which it must fire)."""

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
    scenarios: int = 0
    reachable: tuple[str, ...] = ()
    """The transitions this run can reach (found by the directed-scenario search): the floor."""

    @property
    def uncovered(self) -> list[str]:
        return [name for name in self.transitions if name not in self.covered]

    @property
    def below_floor(self) -> list[str]:
        """Reachable transitions the run did not fire (the floor is missed when non-empty)."""
        return [name for name in self.reachable if name not in self.covered]

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
        self.scenarios += other.scenarios
        self.reachable = tuple(dict.fromkeys((*self.reachable, *other.reachable)))
