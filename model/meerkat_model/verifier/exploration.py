"""The result of an exploration: a compact record of the reachable graph plus findings.

States are numbered in discovery (breadth-first) order; ``parents[i]`` is the index of the
state ``i`` was first reached from (``-1`` for the initial state), so the path through
parents is a shortest path. ``edges`` holds ``(source, target, action, transition)`` index
records (built on first use after a search: ``meerkat_model.verifier.edges``);
:meth:`Exploration.graph` builds the networkx graph from them on demand.

With symmetry reduction the stored states are canonical forms; an edge's action applies to
its (canonical) source state and its target is the canonical form of the successor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meerkat_model.machine import Machine, TransitionDecl
from meerkat_model.verifier.edges import Edge

__all__ = ["Coverage", "Edge", "Exploration", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """The first (shallowest) violation of one check. A state invariant is violated by the
    state at ``state_index``; a step check (``step``: a declaration, a step rule, a step that
    raised) by the step ``action`` from that state, so its trace is the shortest trace to the
    state followed by that step, and ``depth`` counts that step."""

    invariant: str
    message: str
    state_index: int
    depth: int
    action: Any = None
    step: bool = False


@dataclass(frozen=True, slots=True)
class Coverage:
    """Declared transitions fired / declared; ``dead`` were never fired, ``undeclared`` fired
    without a declaration."""

    declared: tuple[str, ...]
    fired: tuple[str, ...]
    dead: tuple[str, ...]
    undeclared: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return (len(self.declared) - len(self.dead)) / len(self.declared) if self.declared else 1.0


@dataclass(slots=True)
class Exploration:
    """Everything one breadth-first exploration found (see the module doc)."""

    machine: Machine[Any, Any]
    symmetry: bool
    state_list: list[Any]
    depths: list[int]
    parents: list[int]
    edge_list: Sequence[Edge]  # a list, or the search's lazily built Edges
    violations: list[Violation]
    stuck: list[int]
    coverage: Coverage
    elapsed: float
    complete: bool = True
    invariant_names: tuple[str, ...] = field(default=())
    stranded: list[int] | None = None
    """Indexes (ascending, so shallowest first) of the stranded states: reachable states from
    which no state without obligations can be reached (:mod:`meerkat_model.verifier.liveness`);
    stuck states are among them. ``None`` when not checked: an incomplete exploration (a state
    limit cut it) has states it never expanded, so it gives no verdict."""
    stranded_without_give_ups: list[int] | None = None
    """Indexes (ascending) of the states stranded when the machine's give-ups
    (``Machine.give_ups``) are left out: reachable states with obligations from which no state
    without obligations can be reached by the other steps (work that can only be dropped, never
    finished). Every stranded state is among them; the same as ``stranded`` when the machine
    declares no give-up. ``None`` when not checked (as ``stranded``)."""
    liveness_seconds: float = 0.0
    """Time spent finding the stranded states, with and without give-ups (included in
    ``elapsed``)."""
    _index: dict[Any, int] | None = None

    @property
    def states(self) -> int:
        """Number of distinct (canonical when reduced) reachable states."""
        return len(self.state_list)

    @property
    def edges(self) -> int:
        return len(self.edge_list)

    @property
    def depth(self) -> int:
        """Length of the longest shortest path from the initial state."""
        return max(self.depths) if self.depths else 0

    @property
    def rate(self) -> float:
        """States per second."""
        return self.states / self.elapsed if self.elapsed > 0 else float("inf")

    @property
    def ok(self) -> bool:
        """No check was violated and no state is stranded, with or without give-ups."""
        return not self.violations and not self.stranded and not self.stranded_without_give_ups

    def invariant_results(self) -> dict[str, str]:
        """Invariant name -> ``"held"`` or ``"violated"``."""
        bad = {v.invariant for v in self.violations}
        return {name: "violated" if name in bad else "held" for name in self.invariant_names}

    def index_of(self, state: Any) -> int:
        """Index of ``state`` (canonicalised first when the exploration was reduced)."""
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self.state_list)}
        key = self.machine.canonical(state) if self.symmetry else state
        index = self._index.get(key, -1)
        if not 0 <= index < len(self.state_list):  # -1: not reached
            raise KeyError(f"state was not reached by this exploration: {state!r}")
        return index

    def graph(self) -> Any:
        """A ``networkx.DiGraph``: nodes are the stored states (attrs ``depth``, ``initial``),
        edges carry ``action`` (label), ``transition`` and ``action_obj``. Parallel edges
        between the same two states keep the first action found (breadth-first order)."""
        import networkx as nx

        g = nx.DiGraph()
        states = self.state_list
        for i, s in enumerate(states):
            g.add_node(s, depth=self.depths[i], initial=(i == 0))
        label = self.machine.action_label
        for src, dst, action, transition in self.edge_list:
            u, v = states[src], states[dst]
            if not g.has_edge(u, v):
                g.add_edge(u, v, action=label(action), transition=transition, action_obj=action)
        return g

    def declared(self) -> tuple[TransitionDecl, ...]:
        return tuple(self.machine.transitions())
