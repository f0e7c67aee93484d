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

    def obligations(self, state: S) -> Sequence[str]:
        """Pending obligations in ``state`` (a waiting barrier, queued work that should be
        processed). A state with obligations and no enabled action is stuck. Default: none."""
        return ()

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
