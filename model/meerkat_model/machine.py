"""The contract every modelled machine fulfils, and what one step returns.

The verifier, the z3 prover, the diagram renderer and the conformance harness only talk to
machines through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S", bound=Hashable)
A = TypeVar("A", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Stepped(Generic[S]):
    """A step that happened: the new state, what an observer sees, and which declared
    transition fired (its ``TransitionDecl.name``)."""

    state: S
    outputs: tuple[Any, ...]
    transition: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A step that was refused; the state is unchanged. ``kind`` equals the runtime's
    error kind for the same case."""

    kind: str
    detail: str


StepResult = Stepped[S] | Rejected


@dataclass(frozen=True, slots=True)
class Invariant(Generic[S]):
    """A named property checked on every reachable state. ``check`` returns ``None`` when
    it holds, otherwise a message saying what is wrong."""

    name: str
    description: str
    check: Callable[[S], str | None]


@dataclass(frozen=True, slots=True)
class TransitionDecl:
    """One declared transition of one entity's lifecycle (used for coverage, dead-transition
    checks, z3 cross-checks and diagrams).

    ``entity`` is the lifecycle it belongs to (``operation``, ``input``, ``runtime``,
    ``registration``, ``registry``); ``sources`` the statuses it may fire from; ``target``
    the status it leads to (``None``: unchanged); ``guard`` a human-readable guard.
    """

    name: str
    entity: str
    sources: tuple[str, ...]
    target: str | None
    guard: str = ""
    terminal_target: bool = False


@dataclass(frozen=True, slots=True)
class StepCheck(Generic[S, A]):
    """A named property of one step (an order or retention rule no state predicate can see),
    checked on every step whose transition is in ``transitions``. ``check(before, action,
    stepped)`` returns ``None`` when the step keeps the rule, otherwise a message. A violation
    is reported with the shortest trace to ``before`` followed by the step."""

    name: str
    description: str
    transitions: frozenset[str]
    check: Callable[[S, A, Stepped[S]], str | None]
    when: Callable[[S], bool] | None = None
    """A cheap precondition on the state before: the rule runs on a step only when it holds
    there (a quick test that spares the rule on most steps). ``None``: always."""


Statuses = tuple[tuple[str, "str | tuple[str | None, ...] | None"], ...]
"""The status of every entity of a state, as ``((entity, status), ...)``: a single entity's
status is a string, a per-id entity's a tuple with one status per id; ``None`` where the
entity is not observable in the state (a session not in memory)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Bounds of an exploration. Machines read the fields they understand."""

    values: Mapping[str, int] = field(default_factory=dict)

    def get(self, key: str, default: int) -> int:
        return int(self.values.get(key, default))


class Machine(Protocol[S, A]):
    """A finite-state machine under bounds, with pure steps over hashable states.

    The required core is ``name``, ``initial_state``, ``actions``, ``step`` and
    ``invariants``. The other members are optional capabilities with defaults: a machine
    that subclasses ``Machine`` explicitly inherits them (no symmetry, no obligations, no
    declared transitions, a ``repr`` view of states and actions) and overrides the ones it
    has. Actions are hashable values; the lifecycle models use the records of
    :mod:`meerkat_model.action_record`.
    """

    name: str

    def initial_state(self) -> S: ...

    def actions(self, state: S) -> Iterable[A]:
        """Candidate actions in ``state`` (may include ones ``step`` rejects)."""
        ...

    def step(self, state: S, action: A) -> Stepped[S] | Rejected: ...

    def invariants(self) -> Sequence[Invariant[S]]: ...

    # --- optional capabilities (defaults) -------------------------------------------------

    def canonical(self, state: S) -> S:
        """Representative of ``state`` under renaming of interchangeable ids (symmetry
        reduction). Default: ``state`` itself (no symmetry)."""
        return state

    def search_actions(self, state: S) -> Iterable[A]:
        """The actions the verifier's search steps in ``state``: ``actions(state)`` in its order,
        less actions the machine knows ``step`` refuses there (a refusal is no edge, so the
        search finds the same steps). Default: ``actions(state)``."""
        return self.actions(state)

    def obligations(self, state: S) -> Sequence[str]:
        """Pending obligations in ``state`` (a waiting barrier, queued work that should be
        processed). A state with obligations and no enabled action is stuck. Default: none."""
        return ()

    def give_ups(self) -> Mapping[str, str]:
        """The transitions that discharge obligations by giving work up rather than finishing it
        (a crash dropping handles, a stop abandoning queued input), by name, each with a one-line
        reason. The verifier checks that every state with obligations can also reach a state
        without them by the other steps alone ("stranded without give-ups"). A failure the
        system recovers from (a failed write, a failed attach) is no give-up: recovery from it
        must be possible by those steps. Default: none."""
        return {}

    def transitions(self) -> Sequence[TransitionDecl]:
        """The declared transitions (coverage, dead-transition checks, diagrams). Default:
        none declared, so every fired transition is reported as undeclared."""
        return ()

    def describe(self, state: S) -> Mapping[str, Any]:
        """A readable field -> value view of ``state`` for traces and diffs. Default: one
        field, ``state``."""
        return {"state": state}

    def action_label(self, action: A) -> str:
        """How traces, graphs and diagrams show ``action``. Default: ``str(action)``."""
        return str(action)

    def statuses(self, state: S) -> Statuses:
        """The status of every entity in ``state``, named as the declarations name them (see
        :data:`Statuses`). With it the verifier checks every fired transition against its
        declarations. Default: none (no declaration check)."""
        return ()

    def subjects(self, action: A) -> Sequence[tuple[str, int]]:
        """The per-id entity instances ``(entity, id)`` ``action`` acts on: their status must
        be a source of the fired transition's declaration even when it does not change.
        Default: none."""
        return ()

    def side_effects(self) -> Sequence[TransitionDecl]:
        """Moves a step may make besides the ones its transition declares (a record forgotten by
        retention, a barrier satisfied by a terminal step), as declarations named after the
        transition that may make them, or ``"*"`` for any. Never subjects' moves. Default: none."""
        return ()

    def step_checks(self) -> Sequence[StepCheck[S, A]]:
        """Rules about single steps the verifier checks on every step of the named transitions
        (see :class:`StepCheck`). Default: none."""
        return ()

    def partition_key(self, state: S) -> Hashable:
        """What decides which worker of the parallel search owns the (canonical) ``state``: the
        owner is ``hash(partition_key(state)) % workers``, so states with equal keys are
        expanded and checked by one worker. A machine that remembers work per part of a state
        (step results, invariant results) returns that part, so that every state sharing it
        lands in the one worker that remembers it. It must be a function of the state alone
        (every worker computes it); it changes no result, only the division of the work.
        Default: the state itself."""
        return state
