"""The record of a lockstep run, and its side-by-side rendering.

A :class:`Trace` lists every step with what the model and the runtime returned. When the
two sides disagree the trace is attached to a :class:`Disagreement` whose message is the
whole story, readable without a debugger::

    step  action                        model                   runtime
       1  register_operation(0, bg)     ok                      ok
       2  complete_operation(0, 'r')    error invalid_transition  ok            <-- differs
    observation after step 2:
      ops.0.status: model 'running' | runtime 'completed'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meerkat_conformance.lockstep.diff import Difference
from meerkat_conformance.lockstep.outcome import Outcome

_ACTION_WIDTH = 44
_RESULT_WIDTH = 34
_GAP = 2


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One action applied to both sides, and what each returned."""

    index: int
    label: str
    model: Outcome
    runtime: Outcome
    agree: bool
    note: str = ""


@dataclass(slots=True)
class Trace:
    """The steps of one run so far (shrunk by Hypothesis to a minimal failing run)."""

    machine: str
    steps: list[TraceStep] = field(default_factory=list)

    def record(self, label: str, model: Outcome, runtime: Outcome, agree: bool, note: str = "") -> TraceStep:
        step = TraceStep(len(self.steps) + 1, label, model, runtime, agree, note)
        self.steps.append(step)
        return step

    def render(self) -> str:
        """The steps as a table: step number, action, model result, runtime result, each in
        full (a column is as wide as its longest entry, at least its usual width)."""
        action_width = max([_ACTION_WIDTH, *(len(s.label) + _GAP for s in self.steps)])
        model_width = max([_RESULT_WIDTH, *(len(s.model.brief()) + _GAP for s in self.steps)])
        lines = [f"{'step':>4}  {'action':<{action_width}}{'model':<{model_width}}runtime"]
        for step in self.steps:
            marker = "" if step.agree else "   <-- differs"
            note = f"   [{step.note}]" if step.note else ""
            lines.append(
                f"{step.index:>4}  {step.label:<{action_width}}{step.model.brief():<{model_width}}"
                f"{step.runtime.brief()}{marker}{note}"
            )
        return "\n".join(lines)


class Disagreement(AssertionError):
    """The runtime did something the model did not (or vice versa).

    ``reason`` says what differed; ``differences`` lists observation fields that differ;
    the message holds the full side-by-side trace.
    """

    def __init__(self, trace: Trace, reason: str, differences: list[Difference] | None = None) -> None:
        self.trace = trace
        self.reason = reason
        self.differences = list(differences or [])
        super().__init__(self.render())

    def render(self) -> str:
        parts = [
            f"model and runtime disagree on the {self.trace.machine} machine: {self.reason}",
            self.trace.render(),
        ]
        if self.differences:
            after = f"after step {len(self.trace.steps)}" if self.trace.steps else "initially"
            parts.append(f"observation {after} (model | runtime):")
            parts.extend("  " + d.render() for d in self.differences)
        return "\n".join(parts)
