"""The base of the Hypothesis lockstep state machines.

A subclass builds its :class:`~meerkat_conformance.lockstep.driver.Lockstep` in ``make_lockstep``
and defines rules that call :meth:`LockstepStateMachine.act`. The base adds one generic rule,
``enabled_action``, which applies any action the model accepts in the current state. After every
rule the ``observations_agree`` invariant compares both sides (unless nothing was applied since
they last agreed). A class-level
:class:`~meerkat_conformance.lockstep.tally.MachineTally` (``TALLY``) accumulates the counts over all
examples of a run, and an optional :class:`~meerkat_conformance.cli.progress.ProgressLine`
prints them while a long run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from meerkat_model.action_record import record_name
from meerkat_model.cli.interrupts import raise_if_interrupted
from meerkat_model.machine import Bounds, Rejected, Stepped

from meerkat_conformance.cli.progress import ProgressLine
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.tally import MachineTally

A = TypeVar("A", bound=Hashable)


def with_failing_write(action: A, write_fails: bool, failing: Callable[[A], Hashable]) -> Hashable:
    """``action``, or ``failing(action)`` (the model's "store write fails" record) when its
    store write is to fail."""
    return failing(action) if write_fails else action


class LockstepStateMachine(RuleBasedStateMachine):
    """Model and runtime in lockstep; subclasses add rules."""

    EXAMPLES_FACTOR: ClassVar[int] = 1
    """Profiles' example counts are multiplied by this (cheap machines get more examples)."""
    BOUNDS: ClassVar[Bounds] = Bounds()
    """Bounds of the model this machine runs (subclasses set their own)."""
    GUIDED_EXCLUDE: ClassVar[frozenset[type]] = frozenset()
    """Action record classes ``enabled_action`` leaves to the dedicated rules (crashes,
    faults, steps the runtime takes on its own)."""
    GUIDED_LAST: ClassVar[tuple[type, ...]] = ()
    """Action record classes ``enabled_action`` offers after all others (Hypothesis favours
    the first choices, so always-enabled registry-wide calls go last)."""
    TALLY: ClassVar[MachineTally | None] = None
    PROGRESS: ClassVar[ProgressLine | None] = None

    def __init__(self) -> None:
        raise_if_interrupted()
        super().__init__()
        self.lock = self.make_lockstep()
        tally = type(self).TALLY
        if tally is not None:
            tally.examples += 1
            self.lock.tally = tally
        else:
            self.lock.tally.examples += 1
        progress = type(self).PROGRESS
        if progress is not None:
            progress.tick(self.lock.tally)

    def make_lockstep(self) -> Lockstep:
        raise NotImplementedError

    @property
    def model_state(self) -> Any:
        return self.lock.state

    def act(self, action: Hashable) -> Stepped[Any] | Rejected:
        """Apply ``action`` to model and runtime (raises ``Disagreement`` on a difference)."""
        return self.lock.apply(action)

    @rule(data=st.data())
    def enabled_action(self, data: st.DataObject) -> None:
        """Any action the model accepts in the current state, the kind of action chosen first
        so that kinds with many argument variants do not crowd out the others (keeps the
        search moving through deep states; the other rules also try refused calls)."""
        machine, state = self.lock.machine, self.lock.state
        by_kind: dict[type, list[Hashable]] = {}
        exclude = type(self).GUIDED_EXCLUDE
        for action in machine.actions(state):
            if type(action) not in exclude and isinstance(machine.step(state, action), Stepped):
                by_kind.setdefault(type(action), []).append(action)
        if by_kind:
            last = type(self).GUIDED_LAST
            names = {record_name(kind): kind for kind in by_kind}
            order = sorted(names, key=lambda n: (last.index(names[n]) if names[n] in last else -1, n))
            name = data.draw(st.sampled_from(order), label="name")
            self.act(data.draw(st.sampled_from(by_kind[names[name]]), label="action"))

    @invariant()
    def observations_agree(self) -> None:
        raise_if_interrupted()
        self.lock.check_if_changed()

    def teardown(self) -> None:
        self.lock.close()


def fresh_tally(machine: Any) -> MachineTally:
    """An empty tally for ``machine`` listing its declared transitions."""
    return MachineTally(machine.name, tuple(dict.fromkeys(t.name for t in machine.transitions())))
