"""The reachable graph of one machine as compact, JSON-ready data for the state explorer page.

States are numbered by (depth, repr) so the data does not depend on the exploration order; each
state's parent is its predecessor one level up with the smallest number (a shortest path tree).
Field values are plain JSON (as ``meerkat-verify --trace-json`` writes them) interned in one
list; the per-state field table, depths, parents and the edge lists are packed integer arrays
(:func:`pack`: fixed-width base-64 digits, a few characters per number). Everything comes from
the verifier's exploration and the machine's API (``describe``, ``action_label``,
``transitions``, ``invariants``).

Format ``meerkat.explorer`` version 1, one object per machine::

    {"key", "profile", "bounds", "narrowed", "symmetry", "complete", "states", "edges", "depth",
     "fields": [{"name", "doc"}], "values": [json values],
     "rows": packed(states * fields; value index + 1, 0: field not described),
     "depths": packed, "parents": packed(parent + 1; 0: initial state),
     "phase": {"name", "values": [...], "of": packed},
     "labels": [action labels], "transitions": [names], "kinds": [[label, transition]],
     "out_start": packed(states + 1), "out_target": packed, "out_kind": packed,
     "declared": [{"name", "entity", "from", "to", "guard", "terminal"}],
     "invariants": [{"name", "description", "violated"}],
     "violations": [{"state", "invariant", "message"}], "stuck": [state], "stranded": [state],
     "needs_give_up": [state], "dead": [transition]}

``stranded`` lists the states from which no state without obligations is reachable;
``needs_give_up`` the states stranded without give-ups that are not stranded: only a step of one
of the machine's ``give_ups()`` (work given up, not finished) clears their obligations. Both are
empty when the exploration was incomplete and so not judged (``complete`` says which).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meerkat_model.diagrams.errors import DiagramError
from meerkat_model.diagrams.fields import field_doc
from meerkat_model.verifier.report import plain

EXPLORER_FORMAT = "meerkat.explorer"
EXPLORER_VERSION = 1
DEFAULT_STATE_LIMIT = 100_000
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"

PhaseOf = Callable[[Mapping[str, Any]], str]


class ExplorerTooLargeError(DiagramError):
    """A reachable graph has more states than the explorer page takes."""

    def __init__(self, machine: str, states: int, limit: int) -> None:
        self.machine = machine
        self.states = states
        self.limit = limit
        super().__init__(
            f"the reachable graph of {machine!r} has {states:,} states, above the explorer's limit of {limit:,} "
            "(the page would be too large to load quickly); use a smaller profile or raise --state-limit"
        )


def pack(numbers: Sequence[int]) -> dict[str, Any]:
    """Non-negative integers as ``{"w": width, "d": digits}``: each number as ``w`` base-64
    digits (:data:`DIGITS`), most significant first."""
    top = max(numbers, default=0)
    if min(numbers, default=0) < 0:
        raise ValueError("pack takes non-negative integers only")
    width = 1
    while top >= 64**width:
        width += 1
    out = []
    for number in numbers:
        digits = []
        for _ in range(width):
            number, digit = divmod(number, 64)
            digits.append(DIGITS[digit])
        out.append("".join(reversed(digits)))
    return {"w": width, "d": "".join(out)}


def unpack(packed: Mapping[str, Any]) -> list[int]:
    """The integers of :func:`pack`."""
    width, data = int(packed["w"]), str(packed["d"])
    value = {c: i for i, c in enumerate(DIGITS)}
    numbers = []
    for start in range(0, len(data), width):
        number = 0
        for char in data[start : start + width]:
            number = number * 64 + value[char]
        numbers.append(number)
    return numbers


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def explorer_graph(
    key: str,
    exploration: Any,
    *,
    profile: str,
    bounds: Mapping[str, int],
    narrowed: Mapping[str, int] | None = None,
    phase: tuple[str, PhaseOf] | None = None,
    state_limit: int = DEFAULT_STATE_LIMIT,
) -> dict[str, Any]:
    """The explorer data of one exploration (``meerkat_model.verifier.explore`` result) of the
    catalog machine ``key``; ``phase`` is (what it means, phase of a description) for colouring.
    Raises :class:`ExplorerTooLargeError` above ``state_limit`` states."""
    machine = exploration.machine
    states: list[Any] = exploration.state_list
    if len(states) > state_limit:
        raise ExplorerTooLargeError(key, len(states), state_limit)
    depths: list[int] = exploration.depths
    order = sorted(range(len(states)), key=lambda i: (depths[i], repr(states[i])))
    new = {old: index for index, old in enumerate(order)}

    descriptions = [dict(machine.describe(states[old])) for old in order]
    fields: dict[str, None] = {}
    for description in descriptions:
        fields.update(dict.fromkeys(description))
    names = list(fields)
    values: dict[str, int] = {}
    value_list: list[Any] = []
    rows: list[int] = []
    for description in descriptions:
        for name in names:
            if name not in description:
                rows.append(0)
                continue
            value = plain(description[name])
            index = values.setdefault(_key(value), len(value_list))
            if index == len(value_list):
                value_list.append(value)
            rows.append(index + 1)

    label = machine.action_label
    edges: set[tuple[int, str, str, int]] = set()
    for source, target, action, transition in exploration.edge_list:
        edges.add((new[source], label(action), transition, new[target]))
    kinds = sorted({(transition, text) for _, text, transition, _ in edges})
    labels = sorted({text for _, text in kinds})
    declared_names = list(dict.fromkeys(decl.name for decl in machine.transitions()))
    transitions = declared_names + sorted({t for t, _ in kinds} - set(declared_names))
    kind_index = {kind: i for i, kind in enumerate(kinds)}
    outgoing: list[list[tuple[str, str, int]]] = [[] for _ in states]
    parents = [-1] * len(states)
    for source, text, transition, target in edges:
        outgoing[source].append((text, transition, target))
        if depths[order[target]] == depths[order[source]] + 1 and (parents[target] < 0 or source < parents[target]):
            parents[target] = source
    out_start, out_target, out_kind = [0], [], []
    for edge_list in outgoing:
        for text, transition, target in sorted(edge_list):
            out_target.append(target)
            out_kind.append(kind_index[(transition, text)])
        out_start.append(len(out_target))

    invariants = list(machine.invariants())
    violations = []
    stranded = set(exploration.stranded or ())
    for index, old in enumerate(order):
        for invariant in invariants:
            message = invariant.check(states[old])
            if message is not None:
                violations.append({"state": index, "invariant": invariant.name, "message": message})
    violated = {v["invariant"] for v in violations}
    phase_data = None
    if phase is not None:
        meaning, phase_of = phase
        of = [phase_of(description) for description in descriptions]
        phase_values = sorted(set(of))
        position = {p: i for i, p in enumerate(phase_values)}
        phase_data = {"name": meaning, "values": phase_values, "of": pack([position[p] for p in of])}
    return {
        "key": key,
        "profile": profile,
        "bounds": dict(sorted(bounds.items())),
        "narrowed": dict(sorted((narrowed or {}).items())),
        "symmetry": bool(exploration.symmetry),
        "complete": bool(exploration.complete),
        "states": len(states),
        "edges": len(out_target),
        "depth": max(depths, default=0),
        "fields": [{"name": name, "doc": field_doc(key, name) or ""} for name in names],
        "values": value_list,
        "rows": pack(rows),
        "depths": pack([depths[old] for old in order]),
        "parents": pack([p + 1 for p in parents]),
        "phase": phase_data,
        "labels": labels,
        "transitions": transitions,
        "kinds": [[labels.index(text), transitions.index(transition)] for transition, text in kinds],
        "out_start": pack(out_start),
        "out_target": pack(out_target),
        "out_kind": pack(out_kind),
        "declared": [
            {
                "name": decl.name,
                "entity": decl.entity,
                "from": list(decl.sources),
                "to": decl.target,
                "guard": decl.guard,
                "terminal": decl.terminal_target,
            }
            for decl in machine.transitions()
        ],
        "invariants": [
            {"name": inv.name, "description": inv.description, "violated": inv.name in violated} for inv in invariants
        ],
        "violations": violations,
        "stuck": sorted(new[i] for i in exploration.stuck),
        "stranded": sorted(new[i] for i in exploration.stranded or ()),
        "needs_give_up": sorted(new[i] for i in set(exploration.stranded_without_give_ups or ()) - stranded),
        "dead": list(exploration.coverage.dead),
    }
