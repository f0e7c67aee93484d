"""The diagram set generated from the model catalog: one lifecycle per declared entity of every
machine, the reachable-state graph of each machine under a small profile, and on request a
counterexample (or deepest-state) trace.

Everything here is computed from the machines (``transitions()``, ``describe()``) and their
exploration, never written by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_model.diagrams.diagram import Diagram, Table
from meerkat_model.diagrams.dot import to_dot
from meerkat_model.diagrams.errors import DiagramError, NoCounterexampleError
from meerkat_model.diagrams.explored import ExploredGraph, Explorer, deepest_state
from meerkat_model.diagrams.label_nodes import labels_as_nodes
from meerkat_model.diagrams.lifecycle import build_lifecycle, entities, lifecycle_graph
from meerkat_model.diagrams.reachable import DEFAULT_NODE_LIMIT, reachable_diagram, state_order
from meerkat_model.diagrams.runtime_statuses import EntityCorrespondence, correspondence
from meerkat_model.diagrams.trace import TraceFrame, trace_graph
from meerkat_model.diagrams.values import changed_lines, describe_lines, format_value
from meerkat_model.machine import Bounds

AnyMachine = Any

DEFAULT_PROFILE = "tiny"
TRACE_TARGETS = ("violation", "deepest")

ENTITY_TITLES = {
    "operation": "Operation lifecycle",
    "registry": "Operation registry (wait barrier)",
    "input": "Input lifecycle",
    "runtime": "Runtime control",
    "registration": "Registration phase",
}


def _first_word(field: str) -> Callable[[Mapping[str, Any]], str]:
    """The phase is the first word of a described field (``"running (kind) ..."`` -> ``running``)."""

    def phase(description: Mapping[str, Any]) -> str:
        return str(description[field]).split(" ", 1)[0] if field in description else "(unknown)"

    return phase


def _field(field: str, unset: str) -> Callable[[Mapping[str, Any]], str]:
    """The phase is a described field's value (``unset`` when it is ``None`` or missing)."""

    def phase(description: Mapping[str, Any]) -> str:
        value = description.get(field)
        return unset if value is None else format_value(value)

    return phase


# How the reachable graph of each machine is coloured: (what the colour means, the phase of a
# description). Machines not listed are coloured by a guessed ``*phase*``/``*status*`` field.
PHASES: dict[str, tuple[str, Callable[[Mapping[str, Any]], str]]] = {
    "ops": ("status of operation 0 (op[0])", _first_word("op[0]")),
    "session": ("runtime phase (runtime; none = session not registered)", _field("runtime", "none")),
}
# Bounds narrowed so the drawn reachable graph stays readable (a few dozen states): applied on
# top of the profile, only to keys the profile sets. ops under "tiny" has ~1,300 states; with one
# operation kind, no progress/watcher counters, no probes and one completion sequence it has ~20
# and still covers registration, every terminal status, the wait barrier, collection and crashes.
DRAWING_OVERRIDES: dict[str, dict[str, int]] = {
    "ops": {"kinds": 1, "progress": 0, "watchers": 0, "probes": 0, "sequences": 1},
}


def entity_title(entity: str) -> str:
    return ENTITY_TITLES.get(entity, f"{entity.replace('_', ' ').capitalize()} lifecycle")


def initial_status(machine: AnyMachine, entity: str, graph: Any = None) -> str | None:
    """The first status ``entity`` has, when ``describe`` shows it under a field named like the
    entity (``registration: unregistered``): in the initial state, or else (given the reachable
    ``graph``) in the shallowest state where the field is set. ``None`` when never shown."""
    states = [machine.initial_state()] if graph is None else state_order(graph)
    for state in states:
        for key, value in machine.describe(state).items():
            if key.lower() == entity.lower() and value is not None:
                return format_value(value)
    return None


def lifecycle_diagrams(
    machines: Sequence[tuple[str, AnyMachine]], *, graphs: Mapping[str, Any] | None = None
) -> list[Diagram]:
    """One lifecycle diagram per (machine, entity), in catalog then declaration order. The file
    name is ``<entity>-lifecycle``, prefixed by the machine key when two machines share an entity.
    ``graphs`` (machine key -> reachable graph) lets an entity's entry status be found in the first
    state that shows it."""
    graphs = graphs or {}
    pairs = [(key, machine, entity) for key, machine in machines for entity in entities(machine.transitions())]
    shared = {e for _, _, e in pairs if sum(1 for _, _, other in pairs if other == e) > 1}
    diagrams = []
    for key, machine, entity in pairs:
        initial = initial_status(machine, entity, graphs.get(key))
        lifecycle = build_lifecycle(key, machine.transitions(), entity, initial=initial)
        title = f"{entity_title(entity)} ({key} model)"
        runtime = correspondence(key, entity)
        dot = to_dot(labels_as_nodes(lifecycle_graph(lifecycle, title=title, runtime=runtime)))
        rows = tuple(
            (
                decl.name,
                ", ".join(decl.sources) or "(new)",
                decl.target if decl.target is not None else "(unchanged)",
                decl.guard or "-",
                "yes" if decl.terminal_target else "",
            )
            for decl in lifecycle.transitions
        )
        table = Table(f"Declared transitions of {entity!r}", ("transition", "from", "to", "guard", "terminal"), rows)
        tables = (table,) if runtime is None else (table, runtime_table(entity, lifecycle.statuses, runtime))
        caption = (
            f"Statuses of one {entity} and the {len(rows)} transitions the {key!r} model declares for it. "
            "Thick border: entry status; double border: terminal status; a dot: a transition allowed from several "
            "statuses; grey text in a box: transitions that keep the status (those allowed in many statuses are "
            "listed under the title)."
        )
        if runtime is not None:
            caption += runtime_caption(runtime)
        slug = f"{key}-{entity}-lifecycle" if entity in shared else f"{entity}-lifecycle"
        diagrams.append(Diagram(slug, "lifecycle", title, caption, dot, tables))
    return diagrams


def runtime_table(entity: str, statuses: Sequence[str], runtime: EntityCorrespondence) -> Table:
    """The declared runtime statuses of each model status of ``entity`` (then those not modelled)."""
    rows = []
    for status in statuses:
        mapped = runtime.of(status)
        if mapped is None:
            rows.append((status, "(not declared)", ""))
        else:
            rows.append((status, ", ".join(mapped.runtime) or "(no record)", mapped.why))
    rows.extend(("(not modelled)", name, why) for name, why in runtime.not_modelled)
    return Table(
        f"Runtime statuses ({runtime.runtime_enum}) each model status of {entity!r} stands for",
        ("model status", "runtime statuses", "why"),
        tuple(rows),
    )


def runtime_caption(runtime: EntityCorrespondence) -> str:
    """What the caption says about the runtime statuses (blue text in a box)."""
    merged = [s for s in runtime.statuses if not s.is_plain]
    count = len(set(runtime.runtime_statuses))
    text = f" The runtime has {count} statuses ({runtime.runtime_enum.rsplit('.', 1)[-1]})"
    if not merged and not runtime.not_modelled:
        return text + ", one per model status of the same name."
    if merged:
        text += "; blue text in a box: the runtime statuses a model status stands for"
    if runtime.not_modelled:
        text += "; not modelled: " + ", ".join(name for name, _ in runtime.not_modelled)
    return text + " (table below)."


def reachable_diagram_of(
    key: str,
    machine: AnyMachine,
    explored: ExploredGraph,
    *,
    profile: str,
    node_limit: int = DEFAULT_NODE_LIMIT,
    force: bool = False,
    narrowed: Mapping[str, int] | None = None,
) -> Diagram:
    """The reachable-state diagram of one machine (raises ``GraphTooLargeError`` above the limit);
    ``narrowed`` names the bounds changed for drawing, stated in the caption."""
    result = reachable_diagram(
        explored.graph,
        machine=key,
        profile=profile,
        describe=machine.describe,
        violations=explored.violations,
        phase_field=PHASES[key][0] if key in PHASES else None,
        phase_of=PHASES[key][1] if key in PHASES else None,
        node_limit=node_limit,
        force=force,
    )
    legend = Table(
        f"Fill colour = {result.phase_field or 'none'}",
        ("phase", "colour", "states"),
        tuple((p.phase, p.colour, str(p.states)) for p in result.legend),
        colour_column=1,
    )
    fired = dict(result.transition_counts)
    declared = sorted({decl.name for decl in machine.transitions()} | set(fired))
    coverage = Table(
        "Drawn edges per transition (0: declared but not reachable under this profile)",
        ("transition", "edges"),
        tuple((name, str(fired.get(name, 0))) for name in declared),
    )
    tables = [legend, coverage]
    if result.violations:
        tables.append(
            Table(
                "Invariant violations",
                ("state", "violated invariants"),
                tuple((state, "; ".join(msgs)) for state, msgs in result.violations),
            )
        )
    under = f"profile {profile!r}"
    if narrowed:
        under += " narrowed for drawing (" + ", ".join(f"{k}={v}" for k, v in sorted(narrowed.items())) + ")"
    caption = (
        f"Every reachable state of the {key!r} model under {under} (states equal up to renaming "
        f"of ids drawn once): {result.states} states, {result.edges} transitions, depth {result.depth}. "
        + (
            f"{len(result.violations)} state(s) violate an invariant (red). "
            if result.violations
            else "No state violates an invariant. "
        )
        + "Hover a state for its fields, an edge for its action."
    )
    title = f"Reachable states: {key} model, profile {profile}"
    alerts = tuple(
        f"state {state} violates {'; '.join(msgs)} (draw the counterexample with --trace {key})"
        for state, msgs in result.violations
    )
    return Diagram(
        f"{key}-reachable-{profile}", "reachable", title, caption, to_dot(result.graph), tuple(tables), alerts
    )


def trace_diagram_of(key: str, machine: AnyMachine, explored: ExploredGraph, *, profile: str, to: str) -> Diagram:
    """A shortest trace from the initial state to the first violating state (``to="violation"``,
    raises :class:`NoCounterexampleError` when there is none) or to a deepest state."""
    if to not in TRACE_TARGETS:
        raise DiagramError(f"unknown trace target {to!r} (choose one of {', '.join(TRACE_TARGETS)})")
    graph = explored.graph
    violation: Sequence[str] = ()
    if to == "violation":
        if not explored.violations:
            raise NoCounterexampleError(key, profile)
        target: Hashable = min(explored.violations, key=lambda s: (int(graph.nodes[s].get("depth", 0)), repr(s)))
        violation = explored.violations[target]
        title = f"Counterexample: {key} model, profile {profile}"
    else:
        target = deepest_state(graph)
        title = f"Path to a deepest state: {key} model, profile {profile}"
    frames = explored.frames_to(target)
    dot = to_dot(trace_graph(frames, machine=key, title=title, describe=machine.describe, violation=violation))
    descriptions: list[Mapping[str, Any]] = [machine.describe(frame.state) for frame in frames]
    rows = [("0", "(initial)", "", "; ".join(describe_lines(descriptions[0], width=10_000)))]
    for index in range(1, len(frames)):
        changes = changed_lines(descriptions[index - 1], descriptions[index], width=10_000)
        rows.append((str(index), frames[index].action or "", frames[index].transition or "", "; ".join(changes)))
    table = Table("Steps", ("step", "action", "transition", "changed fields"), tuple(rows))
    caption = f"A shortest path of {len(frames) - 1} step(s) from the initial state" + (
        f" to a state violating: {'; '.join(violation)}." if violation else " to a state of greatest depth."
    )
    return Diagram(f"trace-{key}-{profile}", "trace", title, caption, dot, (table,))


def explore_with_verifier(machine: AnyMachine, *, symmetry: bool = True) -> ExploredGraph:
    """Explore ``machine`` with ``meerkat_model.verifier``: its graph, the state of each reported
    violation, and traces replayed on concrete states by ``shortest_trace``."""
    from meerkat_model.verifier import explore, shortest_trace

    exploration = explore(machine, symmetry=symmetry)
    graph = exploration.graph()
    # The graph keeps one action per pair of states; record every transition between them.
    between: dict[tuple[int, int], set[str]] = {}
    for source, target, _action, transition in exploration.edge_list:
        between.setdefault((source, target), set()).add(transition)
    states = exploration.state_list
    for (source, target), names in between.items():
        graph.edges[states[source], states[target]]["transitions"] = tuple(sorted(names))
    violations: dict[Hashable, list[str]] = {}
    for violation in exploration.violations:
        state = exploration.state_list[violation.state_index]
        violations.setdefault(state, []).append(f"{violation.invariant}: {violation.message}")

    def trace_to(state: Hashable) -> list[TraceFrame]:
        steps = shortest_trace(exploration, state)
        return [TraceFrame(machine.initial_state())] + [TraceFrame(s.state, s.label, s.transition) for s in steps]

    return ExploredGraph(graph, violations, trace_to)


@dataclass(frozen=True, slots=True)
class MachineEntry:
    """One catalog machine: its key, its factory and its bounds under the chosen profile."""

    key: str
    factory: Callable[[Bounds], AnyMachine]
    bounds: Bounds

    def build(self) -> AnyMachine:
        return self.factory(self.bounds)


def catalog_entries(profile: str = DEFAULT_PROFILE) -> list[MachineEntry]:
    """Every machine of ``meerkat_model.catalog`` with its bounds under ``profile``."""
    from meerkat_model.catalog import MACHINES, PROFILES

    if profile not in PROFILES:
        raise DiagramError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    missing = [key for key in MACHINES if key not in PROFILES[profile]]
    if missing:
        raise DiagramError(f"profile {profile!r} has no bounds for machine(s) {', '.join(missing)}")
    return [MachineEntry(key, factory, PROFILES[profile][key]) for key, factory in MACHINES.items()]


def narrowed_for_drawing(entry: MachineEntry) -> tuple[Bounds, dict[str, int]]:
    """The bounds to draw ``entry``'s reachable graph with: its profile bounds with the
    :data:`DRAWING_OVERRIDES` of its machine applied to the keys the profile sets, and the
    changes made (empty when nothing needed narrowing)."""
    overrides = DRAWING_OVERRIDES.get(entry.key, {})
    values = dict(entry.bounds.values)
    changes = {k: v for k, v in sorted(overrides.items()) if k in values and values[k] != v}
    values.update(changes)
    return Bounds(values), changes


def standard_diagrams(
    profile: str = DEFAULT_PROFILE,
    *,
    entries: Sequence[MachineEntry] | None = None,
    explorer: Explorer | None = None,
    node_limit: int = DEFAULT_NODE_LIMIT,
    force: bool = False,
    narrow: bool = True,
) -> list[Diagram]:
    """The committed diagram set: every lifecycle, then every machine's reachable graph under
    ``profile`` (narrowed for drawing unless ``narrow`` is false). Entries default to the catalog,
    the explorer to the verifier."""
    entries = catalog_entries(profile) if entries is None else entries
    explore = explorer or explore_with_verifier
    reachable: list[Diagram] = []
    graphs: dict[str, Any] = {}
    for entry in entries:
        bounds, changes = narrowed_for_drawing(entry) if narrow else (entry.bounds, {})
        machine = entry.factory(bounds)
        explored = explore(machine)
        graphs[entry.key] = explored.graph
        reachable.append(
            reachable_diagram_of(
                entry.key, machine, explored, profile=profile, node_limit=node_limit, force=force, narrowed=changes
            )
        )
    return lifecycle_diagrams([(entry.key, entry.build()) for entry in entries], graphs=graphs) + reachable
