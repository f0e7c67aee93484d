"""Exhaustive breadth-first verification of a :class:`~meerkat_model.machine.Machine`."""

from meerkat_model.verifier.exploration import Coverage, Exploration, Violation
from meerkat_model.verifier.explore import explore
from meerkat_model.verifier.report import summary, symmetry_comparison
from meerkat_model.verifier.trace import TraceStep, format_trace, shortest_trace

__all__ = [
    "Coverage",
    "Exploration",
    "TraceStep",
    "Violation",
    "explore",
    "format_trace",
    "shortest_trace",
    "summary",
    "symmetry_comparison",
]
