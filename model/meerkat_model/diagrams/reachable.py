"""The reachable-state graph of a (tiny) exploration as a diagram.

Input is the verifier's graph (``Exploration.graph()``: nodes are canonical states with the
attributes ``depth`` and ``initial``; edges carry ``action`` and ``transition``, and optionally
``transitions``: every declared transition between the two states). Nodes are
numbered by (depth, repr) so the output does not depend on exploration order, filled with one
colour per phase (a field of ``describe(state)``), the initial state has a thick dark border and
states violating an invariant are red, as are the edges into them.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_model.diagrams.dot import DotEdge, DotGraph, DotNode
from meerkat_model.diagrams.errors import GraphTooLargeError
from meerkat_model.diagrams.style import (
    FONT,
    INITIAL_BORDER,
    PHASE_PALETTE,
    VIOLATION_BORDER,
    VIOLATION_FILL,
)
from meerkat_model.diagrams.values import describe_lines, format_value

DEFAULT_NODE_LIMIT = 150
LEGEND_PREFIX = "legend_"
NO_PHASE = "(all states)"

Describe = Callable[[Any], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class PhaseColour:
    """One phase of the legend: its value, fill colour and how many states are in it."""

    phase: str
    colour: str
    states: int


@dataclass(frozen=True, slots=True)
class ReachableDiagram:
    """The DOT graph of a reachable-state graph and the facts shown next to it."""

    graph: DotGraph
    states: int
    edges: int
    depth: int
    phase_field: str | None
    legend: tuple[PhaseColour, ...]
    transition_counts: tuple[tuple[str, int], ...]
    violations: tuple[tuple[str, tuple[str, ...]], ...]


def guess_phase_field(description: Mapping[str, Any]) -> str | None:
    """The field to colour by when none is given: the first (sorted) field whose name contains
    ``phase``, else ``status``, else ``None`` (one colour for every state)."""
    for word in ("phase", "status"):
        for key in sorted(description):
            if word in key:
                return key
    return None


def state_order(graph: Any) -> list[Hashable]:
    """The states of ``graph`` by (depth, repr): the numbering used in every output."""
    return sorted(graph.nodes, key=lambda s: (int(graph.nodes[s].get("depth", 0)), repr(s)))


def reachable_diagram(
    graph: Any,
    *,
    machine: str,
    profile: str,
    describe: Describe,
    violations: Mapping[Hashable, Sequence[str]] | None = None,
    phase_field: str | None = None,
    phase_of: Callable[[Mapping[str, Any]], str] | None = None,
    node_limit: int = DEFAULT_NODE_LIMIT,
    force: bool = False,
    edge_labels: bool = True,
) -> ReachableDiagram:
    """Build the diagram of ``graph``; raises :class:`GraphTooLargeError` above ``node_limit``
    states unless ``force``. The phase of a state is ``phase_of(description)`` when given, else
    the value of ``phase_field`` (guessed when ``None``); ``phase_field`` names it in the title."""
    count = graph.number_of_nodes()
    if count > node_limit and not force:
        raise GraphTooLargeError(machine, count, node_limit)
    violations = violations or {}
    order = state_order(graph)
    ids = {state: f"s{index}" for index, state in enumerate(order)}
    descriptions = {state: describe(state) for state in order}
    if phase_field is None and phase_of is None and order:
        phase_field = guess_phase_field(descriptions[order[0]])
    if phase_of is None:
        field = phase_field

        def phase_of(desc: Mapping[str, Any]) -> str:
            return format_value(desc[field]) if field is not None and field in desc else NO_PHASE

    phases = {state: phase_of(desc) for state, desc in descriptions.items()}
    phase_counts = Counter(phases.values())
    palette = {phase: PHASE_PALETTE[i % len(PHASE_PALETTE)] for i, phase in enumerate(sorted(phase_counts))}

    nodes: list[DotNode] = []
    for state in order:
        attrs = {
            "label": ids[state].removeprefix("s"),
            "fillcolor": palette[phases[state]],
            "tooltip": "\n".join([ids[state], *describe_lines(descriptions[state])]),
        }
        if graph.nodes[state].get("initial", False):
            attrs.update({"shape": "doublecircle", "color": INITIAL_BORDER, "penwidth": "3"})
        if state in violations:
            attrs.update(
                {
                    "fillcolor": VIOLATION_FILL,
                    "color": VIOLATION_BORDER,
                    "penwidth": "3",
                    "fontcolor": "white",
                    "tooltip": attrs["tooltip"] + "\nVIOLATES: " + "; ".join(violations[state]),
                }
            )
        nodes.append(DotNode(ids[state], attrs))

    edges: list[DotEdge] = []
    transitions: Counter[str] = Counter()
    for source, target, data in graph.edges(data=True):
        names = tuple(data.get("transitions", ())) or (str(data.get("transition", data.get("action", ""))),)
        transitions.update(names)
        attrs = {"tooltip": str(data.get("action", names[0]))}
        if edge_labels:
            attrs["label"] = "\n".join(names)
        if target in violations:
            attrs.update({"color": VIOLATION_BORDER, "fontcolor": VIOLATION_BORDER, "penwidth": "2"})
        edges.append(DotEdge(ids[source], ids[target], attrs))
    edges.sort(key=lambda e: (int(e.source[1:]), int(e.target[1:]), e.attrs.get("label", ""), e.attrs["tooltip"]))
    drawn_edges = len(edges)

    # The legend: one box per phase in its colour, chained invisibly into a column beside the graph.
    legend_ids = [f"{LEGEND_PREFIX}{i}" for i in range(len(palette))]
    for legend_id, phase in zip(legend_ids, sorted(palette), strict=True):
        attrs = {
            "label": phase,
            "shape": "box",
            "fixedsize": "false",
            "fillcolor": palette[phase],
            "tooltip": f"{phase_field or 'phase'} = {phase}",
        }
        nodes.append(DotNode(legend_id, attrs))
    legend_edges = [DotEdge(a, b, {"style": "invis"}) for a, b in itertools.pairwise(legend_ids)]

    depth = max((int(graph.nodes[s].get("depth", 0)) for s in order), default=0)
    title = (
        f"Reachable states of the {machine!r} model, profile {profile!r}: {count} states, "
        f"{drawn_edges} arrows (state pairs joined by a step), depth {depth}\n"
        f"fill colour = {phase_field or 'none'}; thick dark border = initial state; red = invariant violated"
    )
    dot = DotGraph(
        name=f"{machine}_reachable_{profile}",
        comment=f"reachable-state graph of the {machine!r} model under profile {profile!r}",
        graph_attrs={
            "label": title,
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "14",
            "rankdir": "TB",
            "nodesep": "0.25",
            "ranksep": "0.6",
            "bgcolor": "white",
        },
        node_defaults={
            "shape": "circle",
            "style": "filled",
            "fontname": FONT,
            "fontsize": "10",
            "width": "0.4",
            "fixedsize": "true",
        },
        edge_defaults={"fontname": FONT, "fontsize": "7", "arrowsize": "0.6", "color": "#6b6b6b"},
        nodes=tuple(nodes),
        edges=tuple(edges + legend_edges),
        rank_groups=(("source", tuple(ids[s] for s in order if graph.nodes[s].get("initial", False))),),
    )
    legend = tuple(PhaseColour(phase, palette[phase], phase_counts[phase]) for phase in sorted(phase_counts))
    return ReachableDiagram(
        graph=dot,
        states=count,
        edges=drawn_edges,
        depth=depth,
        phase_field=phase_field,
        legend=legend,
        transition_counts=tuple(sorted(transitions.items())),
        violations=tuple((ids[s], tuple(violations[s])) for s in order if s in violations),
    )
