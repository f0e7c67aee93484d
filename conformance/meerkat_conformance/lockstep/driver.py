"""Drive a model machine and a runtime adapter in lockstep, comparing after every step.

:class:`Lockstep` is used by the Hypothesis state machines and by the exhaustive replay
alike. Every :meth:`Lockstep.apply`:

1. steps the model through the model actions the harness action stands for (usually one;
   a runtime call that does several model steps at once, such as registering and attaching
   a loop, stands for a short sequence: the steps before a refused one stay applied, as they
   do in the runtime);
2. calls the runtime and compares the two outcomes (value, or error kind);
3. applies to the model whatever the runtime then did on its own (its run loop starting a
   run), each of which the model must allow, and checks that nothing the model considers
   due was left undone (the report of overdue work also lists where the observations
   differ);
4. compares the two observations.

The first difference raises :class:`~meerkat_conformance.lockstep.trace.Disagreement` with the trace;
so does a runtime that does not come to rest (the adapter raises
:class:`~meerkat_conformance.lockstep.adapter.RuntimeStuck`): the step is recorded with the
runtime's result ``stuck``. An exception raised by the model (a step, its observation) is
reported the same way, as a disagreement naming what raised, with the trace so far: the run
never ends in a bare traceback.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NoReturn

from meerkat_model.machine import Machine, Rejected, Stepped

from meerkat_conformance.lockstep.adapter import RuntimeAdapter, RuntimeStuck, StepKind
from meerkat_conformance.lockstep.diff import diff_values
from meerkat_conformance.lockstep.outcome import Err, Ok, outcomes_agree
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.lockstep.trace import Disagreement, Trace


class Lockstep:
    """One model state and one runtime, kept in step.

    ``tally`` (optional) receives the counts; the trace records every step.
    """

    def __init__(
        self,
        machine: Machine[Any, Any],
        adapter: RuntimeAdapter,
        tally: MachineTally | None = None,
        *,
        model_state: Any = None,
    ) -> None:
        self.machine = machine
        self.adapter = adapter
        self.state: Any = machine.initial_state() if model_state is None else model_state
        self.trace = Trace(machine.name)
        self.tally = (
            tally
            if tally is not None
            else MachineTally(machine.name, tuple(dict.fromkeys(t.name for t in machine.transitions())))
        )
        self.last_transitions: tuple[str, ...] = ()
        self.visited: list[Any] = [self.state]
        """Model states of the last ``apply``: the state before it, then the state after each
        model step it caused (its own, then the runtime's)."""
        self.unchecked = True
        """Whether anything may have changed since the last comparison of the observations."""

    def _step_plan(self, plan: Sequence[Hashable]) -> tuple[Stepped[Any] | Rejected, Any, tuple[str, ...]]:
        """Step through ``plan``; returns the result (the first rejection, or the combined
        step), the state reached by the steps that succeeded, and the transitions fired."""
        state = self.state
        outputs: list[Any] = []
        fired: list[str] = []
        self.visited = [state]
        for model_action in plan:
            result = self.model_step(state, model_action)
            if isinstance(result, Rejected):
                return result, state, tuple(fired)
            state = result.state
            self.visited.append(state)
            outputs.extend(result.outputs)
            fired.append(result.transition)
        return Stepped(state, tuple(outputs), fired[-1] if fired else ""), state, tuple(fired)

    def model_step(self, state: Any, action: Hashable) -> Stepped[Any] | Rejected:
        """The model's step, with an exception it raises turned into a ``Disagreement``."""
        try:
            return self.machine.step(state, action)
        except Exception as exc:
            self.tally.disagreements += 1
            label = _label(self.machine, action)
            raise Disagreement(self.trace, f"the model raised {type(exc).__name__}: {exc} stepping {label}") from exc

    def _model_view(self) -> Any:
        try:
            return self.adapter.model_view(self.state)
        except Exception as exc:
            self.tally.disagreements += 1
            raise Disagreement(self.trace, f"the model's observation raised {type(exc).__name__}: {exc}") from exc

    def apply(self, action: Hashable, *, compare: bool = True) -> Stepped[Any] | Rejected:
        """Apply ``action`` to both sides; raise ``Disagreement`` on the first difference.
        With ``compare`` false the observations are not compared after this step (the
        outcomes and the runtime's own steps still are): a caller applying a run of steps that
        should change nothing compares once after the last (``check_if_changed``)."""
        self.unchecked = True
        plan = tuple(self.adapter.model_actions(action, self.state))
        result, reached, fired = self._step_plan(plan)
        expected = self.adapter.expected(action, result)
        label = " + ".join(self.machine.action_label(a) for a in plan)
        try:
            runtime = self.adapter.execute(action)
        except RuntimeStuck as stuck:
            self.trace.record(label, expected, Err("stuck", str(stuck)), False, self.adapter.note(action))
            self._stuck(stuck)
        agree = outcomes_agree(expected, runtime)
        kind = self.adapter.step_kind(action)
        self.trace.record(label, expected, runtime, agree, self.adapter.note(action))
        self.tally.steps += 1
        if kind is StepKind.CRASH:
            self.tally.crashes += 1
        elif kind is StepKind.FAULT:
            self.tally.faults += 1
        if not agree:
            self.tally.disagreements += 1
            raise Disagreement(self.trace, f"step {len(self.trace.steps)} returned different results")
        self.state = reached
        self.tally.covered.update(fired)
        if isinstance(result, Rejected):
            self.tally.rejections += 1
        self.last_transitions = fired
        try:
            self._follow_runtime()
            if compare:
                self.check()
        except RuntimeStuck as stuck:
            self._stuck(stuck)
        return result

    def _stuck(self, stuck: RuntimeStuck) -> NoReturn:
        """Report a runtime that did not come to rest as a disagreement (with the trace)."""
        self.tally.disagreements += 1
        raise Disagreement(self.trace, f"the runtime did not come to rest: {stuck}") from None

    def _follow_runtime(self) -> None:
        """Apply to the model what the runtime did by itself, then look for overdue work."""
        for model_action in self.adapter.autonomous():
            result = self.model_step(self.state, model_action)
            label = self.machine.action_label(model_action)
            model = Ok(None) if isinstance(result, Stepped) else Err(result.kind, result.detail)
            agree = isinstance(result, Stepped)
            self.trace.record(label, model, Ok(None), agree, "done by the runtime on its own")
            if not isinstance(result, Stepped):
                self.tally.disagreements += 1
                raise Disagreement(self.trace, f"the runtime did {label} on its own; the model refuses it")
            self.state = result.state
            self.visited.append(self.state)
            self.tally.covered.add(result.transition)
            self.last_transitions = (*self.last_transitions, result.transition)
        overdue = self.adapter.overdue(self.state)
        if overdue is not None:
            self.tally.disagreements += 1
            # The observations usually show where the work went (an input missing from its
            # lane, a phase that does not drain); list them so the report names the fields.
            differences = diff_values(self._model_view(), self.adapter.observe())
            raise Disagreement(self.trace, overdue, differences)

    def check_if_changed(self) -> None:
        """:meth:`check`, unless nothing was applied since the last check (then both sides are
        as they were when they last agreed)."""
        if self.unchecked:
            self.check()

    def check(self) -> None:
        """Compare the two observations now; raise ``Disagreement`` if they differ."""
        try:
            observed = self.adapter.observe()
        except RuntimeStuck as stuck:
            self._stuck(stuck)
        differences = diff_values(self._model_view(), observed)
        self.unchecked = bool(differences)
        if differences:
            self.tally.disagreements += 1
            raise Disagreement(self.trace, "observable state differs", differences)

    def close(self) -> None:
        self.adapter.close()


def _label(machine: Machine[Any, Any], action: Hashable) -> str:
    try:
        return machine.action_label(action)
    except Exception:
        return repr(action)
