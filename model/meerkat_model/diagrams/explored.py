"""What the diagrams need from an exploration: the reachable graph, its violations, and
shortest paths through it.

:class:`ExploredGraph` is the verifier's networkx graph plus the violated invariant messages by
state; :func:`explore_with_verifier` fills it from ``meerkat_model.verifier.explore``;
:func:`shortest_frames` reads a shortest path from an initial state out of the graph itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meerkat_model.diagrams.trace import TraceFrame


@dataclass(frozen=True, slots=True)
class ExploredGraph:
    """A reachable-state graph (networkx ``DiGraph``; node attributes ``depth``/``initial``, edge
    attributes ``action``/``transition``/``action_obj``) and the violated invariant messages of
    each violating state. ``trace_to(state)``, when given, returns the frames of a shortest path
    to ``state`` (the verifier replays it on concrete states); otherwise the path is read from
    the graph with :func:`shortest_frames`."""

    graph: Any
    violations: Mapping[Hashable, Sequence[str]] = field(default_factory=dict)
    trace_to: Callable[[Hashable], list[TraceFrame]] | None = None

    def frames_to(self, state: Hashable) -> list[TraceFrame]:
        return self.trace_to(state) if self.trace_to is not None else shortest_frames(self.graph, state)


Explorer = Callable[[Any], ExploredGraph]


def initial_states(graph: Any) -> list[Hashable]:
    """The nodes marked ``initial``, sorted by repr."""
    return sorted((n for n, data in graph.nodes(data=True) if data.get("initial", False)), key=repr)


def deepest_state(graph: Any) -> Hashable:
    """A state of greatest depth (the first by repr among them)."""
    if graph.number_of_nodes() == 0:
        raise ValueError("the graph has no state")
    deepest: Hashable = min(graph.nodes, key=lambda n: (-int(graph.nodes[n].get("depth", 0)), repr(n)))
    return deepest


def shortest_frames(graph: Any, target: Hashable) -> list[TraceFrame]:
    """The frames of a shortest path from an initial state to ``target`` (breadth-first,
    successors in repr order, so the path is the same on every run)."""
    starts = initial_states(graph)
    parent: dict[Hashable, Hashable | None] = {start: None for start in starts}
    frontier = list(starts)
    while frontier and target not in parent:
        following: list[Hashable] = []
        for node in frontier:
            for nxt in sorted(graph.successors(node), key=repr):
                if nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    if target not in parent:
        raise ValueError(f"state {target!r} is not reachable from an initial state of the graph")
    path = [target]
    while (previous := parent[path[-1]]) is not None:
        path.append(previous)
    path.reverse()
    frames = [TraceFrame(path[0])]
    for source, state in itertools.pairwise(path):
        data = graph.edges[source, state]
        frames.append(TraceFrame(state, str(data.get("action", "")), str(data.get("transition", "")) or None))
    return frames
