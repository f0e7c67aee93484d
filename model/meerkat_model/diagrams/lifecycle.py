"""Per-entity lifecycle diagrams built from a machine's declared transitions.

A lifecycle is the status graph of one entity (``operation``, ``input``, ``runtime``,
``registration``, ...): one node per status named in a :class:`TransitionDecl`; one edge per
(sources, target) pair carrying every transition between them; a junction dot where a transition
may fire from several statuses; a transition that leaves the status unchanged (``target is
None``) is listed inside the box of each status it is allowed in (a loop with a label beside the
box would collide with the edges leaving it), or noted under the title when it is allowed in many
statuses; terminal statuses (targets of transitions with ``terminal_target``) with a double
border; and a start point leading to the entry statuses. When the runtime's statuses for the
entity are declared (:mod:`~meerkat_model.diagrams.runtime_statuses`), a box whose model status
stands for other or several runtime statuses names them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meerkat_model.diagrams.dot import DotEdge, DotGraph, DotNode, HtmlLabel, html_text
from meerkat_model.diagrams.errors import UnknownEntityError
from meerkat_model.diagrams.runtime_statuses import EntityCorrespondence, StatusCorrespondence
from meerkat_model.diagrams.style import FONT, GUARD_WRAP, LIFECYCLE_COLOURS
from meerkat_model.machine import TransitionDecl

START_NODE = "__start__"
# A status-keeping transition allowed in at least this many statuses is noted, not looped.
NOTE_MIN_SOURCES = 3
NOTE_WRAP = 90
JUNCTION_PREFIX = "__junction_"


@dataclass(frozen=True, slots=True)
class LifecycleEdge:
    """Every declared transition from the status set ``sources`` to ``target``: no source is a
    creating transition (drawn from the start point), one source a plain edge (a loop when it
    equals ``target``: status unchanged), several sources a junction they all lead into."""

    sources: tuple[str, ...]
    target: str
    transitions: tuple[TransitionDecl, ...]

    @property
    def label(self) -> str:
        return edge_label(self.transitions)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The status graph of one entity of one machine, in a deterministic order.

    ``widely_kept`` holds the status-keeping transitions allowed in many statuses; they are noted
    once under the title instead of drawn as a loop on each of those statuses."""

    machine: str
    entity: str
    statuses: tuple[str, ...]
    entry: tuple[str, ...]
    terminal: tuple[str, ...]
    edges: tuple[LifecycleEdge, ...]
    transitions: tuple[TransitionDecl, ...]
    widely_kept: tuple[TransitionDecl, ...] = ()


def transition_label(decl: TransitionDecl) -> str:
    """The edge text of one transition: its name, then its guard in brackets (wrapped)."""
    if not decl.guard:
        return decl.name
    guard = textwrap.wrap(f"[{decl.guard}]", GUARD_WRAP, break_long_words=False, break_on_hyphens=False)
    return "\n".join([decl.name, *guard])


def edge_label(decls: Sequence[TransitionDecl]) -> str:
    """The text of an edge carrying ``decls``: transitions sharing a guard are listed together
    above it, each name once."""
    by_guard: dict[str, list[str]] = {}
    for decl in decls:
        names = by_guard.setdefault(decl.guard, [])
        if decl.name not in names:
            names.append(decl.name)
    lines: list[str] = []
    for guard, names in by_guard.items():
        lines.extend(textwrap.wrap(", ".join(names), GUARD_WRAP, break_long_words=False, break_on_hyphens=False))
        if guard:
            lines.extend(textwrap.wrap(f"[{guard}]", GUARD_WRAP, break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines)


def entities(transitions: Iterable[TransitionDecl]) -> list[str]:
    """The entities that have declared transitions, in order of first declaration."""
    seen: dict[str, None] = {}
    for decl in transitions:
        seen.setdefault(decl.entity, None)
    return list(seen)


def _entry_statuses(decls: Sequence[TransitionDecl], statuses: set[str], initial: str | None) -> set[str]:
    """Statuses an entity starts in: never entered by a declared transition, entered by a
    creating transition (no source), or named (ignoring case) as ``initial`` by the caller."""
    targeted = {d.target for d in decls if d.target is not None and d.target not in d.sources}
    created = {d.target for d in decls if not d.sources and d.target is not None}
    entry = (statuses - targeted) | created
    if initial is not None:
        entry.update(s for s in statuses if s.lower() == initial.lower())
    return entry


def _flow_order(statuses: set[str], entry: set[str], decls: Sequence[TransitionDecl]) -> list[str]:
    """Breadth-first order from the entry statuses, neighbours by name (independent of the
    declaration order); statuses not reached come last, by name."""
    successors: dict[str, set[str]] = {status: set() for status in statuses}
    for decl in decls:
        if decl.target is not None:
            for source in decl.sources:
                successors[source].add(decl.target)
    order: list[str] = []
    frontier = sorted(entry)
    seen = set(frontier)
    while frontier:
        order.extend(frontier)
        following: list[str] = []
        for status in frontier:
            for nxt in sorted(successors[status] - seen):
                seen.add(nxt)
                following.append(nxt)
        frontier = following
    order.extend(sorted(statuses - seen))
    return order


def build_lifecycle(
    machine: str, transitions: Sequence[TransitionDecl], entity: str, *, initial: str | None = None
) -> Lifecycle:
    """The lifecycle of ``entity`` from ``transitions`` (raises :class:`UnknownEntityError`).
    ``initial`` names the status the entity has in the machine's initial state, when known."""
    decls = [decl for decl in transitions if decl.entity == entity]
    if not decls:
        raise UnknownEntityError(entity, entities(transitions))
    statuses: set[str] = set()
    for decl in decls:
        statuses.update(decl.sources)
        if decl.target is not None:
            statuses.add(decl.target)
    entry = _entry_statuses(decls, statuses, initial)
    order = _flow_order(statuses, entry, decls)
    rank = {status: index for index, status in enumerate(order)}
    terminal = {d.target for d in decls if d.terminal_target and d.target is not None}

    widely_kept = [d for d in decls if d.target is None and len(d.sources) >= NOTE_MIN_SOURCES]
    grouped: dict[tuple[tuple[str, ...], str], list[TransitionDecl]] = {}
    for decl in decls:
        sources = tuple(sorted(decl.sources, key=rank.__getitem__))
        if decl in widely_kept:
            continue
        if decl.target is None:
            for source in sources:
                grouped.setdefault(((source,), source), []).append(decl)
        else:
            grouped.setdefault((sources, decl.target), []).append(decl)
    edges = [
        LifecycleEdge(sources, target, tuple(sorted(members, key=lambda d: d.name)))
        for (sources, target), members in grouped.items()
    ]
    edges.sort(key=lambda e: ([rank[s] for s in e.sources], rank[e.target], e.label))
    return Lifecycle(
        machine=machine,
        entity=entity,
        statuses=tuple(order),
        entry=tuple(s for s in order if s in entry),
        terminal=tuple(s for s in order if s in terminal),
        edges=tuple(edges),
        transitions=tuple(sorted(decls, key=lambda d: d.name)),
        widely_kept=tuple(sorted(widely_kept, key=lambda d: d.name)),
    )


@dataclass(frozen=True, slots=True)
class Wording:
    """How a diagram names its boxes (``noun``) and a transition that stays in its box (``kept``)."""

    noun: str = "status"
    kept: str = "keeps the status"


STATUS_WORDS = Wording()
KEPT_HEADING = f"{STATUS_WORDS.kept}:"
RUNTIME_PREFIX = "runtime: "
SMALL_FONT = "9"


def _small_lines(lines: Sequence[str], colour: str) -> str:
    """Left-aligned small text lines of an HTML-like label."""
    body = "".join(f'{html_text(line)}<BR ALIGN="LEFT"/>' for line in lines)
    return f'<TD ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="{SMALL_FONT}" COLOR="{colour}">{body}</FONT></TD>'


def status_box(
    status: str,
    kept: Sequence[TransitionDecl] = (),
    runtime: StatusCorrespondence | None = None,
    *,
    kept_heading: str = KEPT_HEADING,
) -> tuple[str, str]:
    """The label and the plain-text tooltip of a status box: the status, then (small, grey) the
    transitions that keep it, then (small, blue) the runtime statuses it stands for unless it is
    exactly one runtime status of the same name."""
    kept_lines = edge_label(kept).split("\n") if kept else []
    runtime_lines: list[str] = []
    if runtime is not None and not runtime.is_plain:
        named = ", ".join(runtime.runtime) if runtime.runtime else "(no record)"
        runtime_lines = textwrap.wrap(
            RUNTIME_PREFIX + named, GUARD_WRAP, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
    if not kept_lines and not runtime_lines:
        return status, status
    rows = [f"<TR><TD>{html_text(status)}</TD></TR>"]
    if runtime_lines:
        rows.append(f"<TR>{_small_lines(runtime_lines, LIFECYCLE_COLOURS['runtime'])}</TR>")
    if kept_lines:
        rows.append(f"<TR>{_small_lines([kept_heading, *kept_lines], LIFECYCLE_COLOURS['self_loop'])}</TR>")
    table = f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{"".join(rows)}</TABLE>'
    tooltip = "\n".join([status, *runtime_lines, *([kept_heading, *kept_lines] if kept_lines else [])])
    return HtmlLabel(table), tooltip


def widespread(sources: Sequence[str], statuses: Sequence[str]) -> bool:
    """True when ``sources`` are every status, or all but one or two of many: a note can name
    them shortly ("every status but X")."""
    missing = [s for s in statuses if s not in sources]
    return not missing or (len(missing) <= 2 and 2 * len(missing) < len(sources))


def lifecycle_graph(
    lifecycle: Lifecycle,
    *,
    title: str,
    runtime: EntityCorrespondence | None = None,
    words: Wording = STATUS_WORDS,
    fills: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> DotGraph:
    """The DOT graph of ``lifecycle``: entry statuses with a thick border, terminal ones with a
    double border, transitions from several statuses merged at a junction dot, status-keeping
    transitions inside the box; ``runtime`` (optional) names the runtime statuses of each box,
    ``words`` how boxes and staying are called, ``fills`` (optional) a fill colour per status,
    ``notes`` more lines under the title."""
    colours = LIFECYCLE_COLOURS
    nodes = [DotNode(START_NODE, {"shape": "point", "width": "0.18", "label": ""})] if lifecycle.entry else []
    kept: dict[str, list[TransitionDecl]] = {}
    for edge in lifecycle.edges:
        if len(edge.sources) == 1 and edge.sources[0] == edge.target:
            kept.setdefault(edge.target, []).extend(edge.transitions)
    for decls in kept.values():
        decls.sort(key=lambda d: d.name)
    for status in lifecycle.statuses:
        label, tooltip = status_box(
            status, kept.get(status, ()), runtime.of(status) if runtime else None, kept_heading=f"{words.kept}:"
        )
        attrs = {"label": label, "fillcolor": (fills or {}).get(status, colours["active"])}
        if tooltip != status:
            attrs["tooltip"] = tooltip
        if status in lifecycle.terminal:
            attrs.update({"fillcolor": colours["terminal"], "peripheries": "2"})
        if status in lifecycle.entry:
            attrs.update({"penwidth": "2"})
        nodes.append(DotNode(status, attrs))
    created = {e.target for e in lifecycle.edges if not e.sources}
    edges = [DotEdge(START_NODE, status, {"style": "bold"}) for status in lifecycle.entry if status not in created]
    junctions: dict[tuple[str, ...], str] = {}
    for edge in lifecycle.edges:
        attrs = {"label": edge.label}
        if not edge.sources:
            edges.append(DotEdge(START_NODE, edge.target, {**attrs, "style": "bold"}))
            continue
        if len(edge.sources) == 1:
            source = edge.sources[0]
            if source == edge.target:
                continue  # listed inside the box
        else:
            if edge.sources not in junctions:
                junction = junctions[edge.sources] = f"{JUNCTION_PREFIX}{len(junctions)}"
                nodes.append(
                    DotNode(
                        junction,
                        {
                            "shape": "point",
                            "width": "0.1",
                            "label": "",
                            "tooltip": "from any of: " + ", ".join(edge.sources),
                        },
                    )
                )
                edges.extend(DotEdge(s, junction, {"arrowhead": "none"}) for s in edge.sources)
            source = junctions[edge.sources]
        if edge.target in lifecycle.terminal:
            attrs["color"] = colours["to_terminal"]
        edges.append(DotEdge(source, edge.target, attrs))
    label = title
    kept_notes: dict[str, list[str]] = {}  # where -> transitions, one line per where
    for decl in lifecycle.widely_kept:
        missing = [s for s in lifecycle.statuses if s not in decl.sources]
        if not missing:
            where = f"every {words.noun}"
        elif len(missing) <= 2 and 2 * len(missing) < len(decl.sources):
            where = f"every {words.noun} but " + " and ".join(missing)
        else:
            where = ", ".join(s for s in lifecycle.statuses if s in decl.sources)
        guard = f" [{decl.guard}]" if decl.guard else ""
        kept_notes.setdefault(where, []).append(f"{decl.name}{guard}")
    lines = [f"{words.kept} in {where}: {', '.join(names)}" for where, names in kept_notes.items()]
    for note in [*lines, *notes]:
        label += "\n" + "\n".join(textwrap.wrap(note, NOTE_WRAP, subsequent_indent="  ", break_on_hyphens=False))
    return DotGraph(
        name=f"{lifecycle.machine}_{lifecycle.entity}",
        comment=f"{lifecycle.entity} lifecycle of the {lifecycle.machine!r} model",
        graph_attrs={
            "label": label,
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "16",
            "rankdir": "TB",
            "nodesep": "0.5",
            "ranksep": "0.55",
            "bgcolor": "white",
        },
        node_defaults={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "12"},
        edge_defaults={"fontname": FONT, "fontsize": "10"},
        nodes=tuple(nodes),
        edges=tuple(edges),
        rank_groups=(("source", (START_NODE,) if lifecycle.entry else ()), ("sink", lifecycle.terminal)),
    )
