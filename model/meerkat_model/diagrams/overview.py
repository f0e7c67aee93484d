"""A reachable graph small enough to read, in which every transition that fires appears.

Thousands of states cannot be drawn, but they can be grouped: :func:`overview_lifecycle` puts
every reachable state in the group a :class:`Grouping` names from its ``describe()`` fields (the
session: its runtime phase) and turns the reachable graph into a lifecycle of groups, drawn like
the declared lifecycles: a box per group; an arrow from group A to group B labelled with every
transition that leads from a state of A to a state of B (through a junction dot when it does so
from several groups); transitions between two states of the same group listed inside the box
(or under the title when they stay in many groups). Every transition that fires anywhere in the
graph is therefore written at least once in the picture. Two rules keep the picture light: a
transition that stays in a few groups is listed in each of their boxes (a note under the title
only says "every group" or "every group but X"), and transitions that lead from every other
group to one group are noted under the title instead of drawn as an arrow from each.
:func:`overview_diagram_of` makes the diagram of one exploration.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from meerkat_model.diagrams.diagram import Diagram, Table
from meerkat_model.diagrams.dot import to_dot
from meerkat_model.diagrams.groupings import Grouping, grouping_for
from meerkat_model.diagrams.label_nodes import labels_as_nodes
from meerkat_model.diagrams.lifecycle import (
    Lifecycle,
    LifecycleEdge,
    Wording,
    build_lifecycle,
    lifecycle_graph,
    widespread,
)
from meerkat_model.machine import TransitionDecl

Describe = Callable[[Any], Mapping[str, Any]]
GROUP_ENTITY = "group"
GROUP_WORDS = Wording(noun="group", kept="stays in the group")


@dataclass(frozen=True, slots=True)
class Overview:
    """The lifecycle of groups and the facts shown with it: states per group, the name of every
    transition the grouped graph shows (between groups or within one), and the lines written
    under the title for transitions from every other group."""

    lifecycle: Lifecycle
    states: int
    per_group: Mapping[str, int]
    shown: frozenset[str]
    notes: tuple[str, ...] = ()


def compact(lifecycle: Lifecycle, *, min_sources: int = 3) -> tuple[Lifecycle, tuple[str, ...]]:
    """``lifecycle`` with the status-keeping transitions that are not widespread moved into the
    boxes, and the edges from every other status into one status (``min_sources`` or more)
    taken out; the second value notes those edges in words."""
    statuses = lifecycle.statuses
    edges = list(lifecycle.edges)
    kept_wide = []
    for decl in lifecycle.widely_kept:
        if widespread(decl.sources, statuses):
            kept_wide.append(decl)
        else:
            edges.extend(LifecycleEdge((source,), source, (decl,)) for source in decl.sources)
    notes = []
    remaining = []
    for edge in edges:
        others = [s for s in statuses if s != edge.target]
        if (
            edge.target not in edge.sources
            and len(edge.sources) >= min_sources
            and sorted(edge.sources) == sorted(others)
        ):
            names = ", ".join(dict.fromkeys(d.name for d in edge.transitions))
            notes.append(f"from every other group to {edge.target}: {names}")
        else:
            remaining.append(edge)
    return replace(lifecycle, edges=tuple(remaining), widely_kept=tuple(kept_wide)), tuple(notes)


def overview_lifecycle(
    key: str,
    states: Sequence[Hashable],
    *,
    initial: Hashable,
    edges: Iterable[tuple[Hashable, Hashable, str]],
    describe: Describe,
    grouping: Grouping,
) -> Overview:
    """The lifecycle of groups of the reachable ``states`` (``initial`` among them) whose every
    edge is listed in ``edges`` as (source, target, transition name)."""
    group_of = {state: grouping.of(describe(state)) for state in states}
    per_group: dict[str, int] = {}
    for group in group_of.values():
        per_group[group] = per_group.get(group, 0) + 1
    moves: dict[tuple[str, str | None], set[str]] = {}  # (transition, target group or None: stays) -> sources
    for source, target, transition in edges:
        a, b = group_of[source], group_of[target]
        moves.setdefault((transition, None if a == b else b), set()).add(a)
    decls = [
        TransitionDecl(name, GROUP_ENTITY, tuple(sorted(sources)), target)
        for (name, target), sources in sorted(moves.items(), key=lambda item: (item[0][0], item[0][1] or ""))
    ]
    lifecycle, notes = compact(build_lifecycle(key, decls, GROUP_ENTITY, initial=group_of[initial]))
    return Overview(lifecycle, len(states), per_group, frozenset(name for name, _ in moves), notes)


def overview_diagram_of(key: str, exploration: Any, *, profile: str, narrowed: Mapping[str, int]) -> Diagram:
    """The overview of one machine's exploration (``meerkat_model.verifier.explore``): its states
    grouped (:mod:`~meerkat_model.diagrams.groupings`) and drawn as a lifecycle of groups."""
    machine = exploration.machine
    states = exploration.state_list
    initial = machine.canonical(machine.initial_state()) if exploration.symmetry else machine.initial_state()
    grouping = grouping_for(key, machine.describe(initial))
    overview = overview_lifecycle(
        key,
        states,
        initial=initial,
        edges=((states[source], states[target], transition) for source, target, _, transition in exploration.edge_list),
        describe=machine.describe,
        grouping=grouping,
    )
    declared = list(dict.fromkeys(decl.name for decl in machine.transitions()))
    missing = [name for name in declared if name not in overview.shown]
    under = f"profile {profile!r}" + (
        " narrowed (" + ", ".join(f"{k}={v}" for k, v in sorted(narrowed.items())) + ")" if narrowed else ""
    )
    title = (
        f"Reachable states of the {key!r} model, {under}: {overview.states:,} states in "
        f"{len(overview.lifecycle.statuses)} groups\ngroup = {grouping.meaning}"
    )
    graph = lifecycle_graph(overview.lifecycle, title=title, words=GROUP_WORDS, notes=overview.notes)
    coverage = (
        f"All {len(declared)} declared transitions appear."
        if not missing
        else f"{len(declared) - len(missing)} of {len(declared)} declared transitions fire; not reachable under "
        f"these bounds: {', '.join(missing)}."
    )
    caption = (
        f"Every reachable state of the {key!r} model under {under} ({overview.states:,} states, states equal up to "
        f"renaming of ids counted once), grouped by {grouping.meaning}. An arrow from one group to another carries "
        "every transition that leads from a state of the first to a state of the second (through a dot when it "
        "does so from several groups); grey text in a box lists the transitions between states of the same group "
        f"(those that stay in many groups are listed under the title). {coverage}"
    )
    groups = Table(
        "States per group",
        ("group", "states"),
        tuple((group, f"{overview.per_group[group]:,}") for group in overview.lifecycle.statuses),
    )
    return Diagram(
        f"{key}-overview-{profile}",
        "overview",
        f"Overview: {key} model, profile {profile}",
        caption,
        to_dot(labels_as_nodes(graph)),
        (groups,),
    )
