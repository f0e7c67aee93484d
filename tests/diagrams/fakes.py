"""A small purpose-built machine (a door with a lock) and a breadth-first explorer producing the
verifier's graph format, so the diagram code is tested independently of the real models."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import networkx as nx
from meerkat_model.diagrams import ExploredGraph
from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Stepped, TransitionDecl

DoorState = tuple[str, int, bool]  # (status, times opened, key inserted)
DoorAction = tuple[str, ...]

DOOR_TRANSITIONS: tuple[TransitionDecl, ...] = (
    TransitionDecl("install", "door", (), "Closed", "frame ready"),
    TransitionDecl("open", "door", ("Closed",), "Open", "not locked"),
    TransitionDecl("close", "door", ("Open",), "Closed"),
    TransitionDecl("slam", "door", ("Open",), "Closed", "windy"),
    TransitionDecl("lock", "door", ("Closed",), "Locked", "key inserted"),
    TransitionDecl("unlock", "door", ("Locked",), "Closed", "key inserted"),
    TransitionDecl("knock", "door", ("Closed", "Open", "Locked", "Broken", "Removed"), None),
    TransitionDecl("break", "door", ("Closed", "Open", "Locked"), "Broken", "", True),
    TransitionDecl("remove", "door", ("Closed", "Open", "Locked"), "Removed", "", True),
    TransitionDecl("insert_key", "key", ("Out",), "In"),
    TransitionDecl("pull_key", "key", ("In",), "Out"),
)


class DoorMachine(Machine[DoorState, DoorAction]):
    """Statuses Closed/Open/Locked, terminal Broken/Removed; a key (entity ``key``) that is In or
    Out. ``max_opens`` bounds the counter; with ``buggy`` the invariant ``opens <= 1`` is
    checked although two opens are reachable. No symmetry, no obligations (the defaults)."""

    name = "door"

    def __init__(self, bounds: Bounds | None = None) -> None:
        bounds = bounds or Bounds()
        self.max_opens = bounds.get("max_opens", 2)
        self.buggy = bounds.get("buggy", 0) == 1

    def initial_state(self) -> DoorState:
        return ("Closed", 0, False)

    def actions(self, state: DoorState) -> Iterable[DoorAction]:
        return [
            ("open",),
            ("close",),
            ("slam",),
            ("lock",),
            ("unlock",),
            ("knock",),
            ("break",),
            ("remove",),
            ("insert_key",),
            ("pull_key",),
        ]

    def step(self, state: DoorState, action: DoorAction) -> Stepped[DoorState] | Rejected:
        status, opens, key = state
        name = action[0]
        if status in ("Broken", "Removed") and name != "knock":
            return Rejected("invalid_transition", f"{name} from {status}")
        if name == "open" and status == "Closed" and opens < self.max_opens:
            return Stepped(("Open", opens + 1, key), (), "open")
        if name in ("close", "slam") and status == "Open":
            return Stepped(("Closed", opens, key), (), name)
        if name == "lock" and status == "Closed" and key:
            return Stepped(("Locked", opens, key), (), "lock")
        if name == "unlock" and status == "Locked" and key:
            return Stepped(("Closed", opens, key), (), "unlock")
        if name == "knock":
            return Stepped(state, (), "knock")
        if name == "break":
            return Stepped(("Broken", opens, key), (), "break")
        if name == "remove":
            return Stepped(("Removed", opens, key), (), "remove")
        if name == "insert_key" and not key:
            return Stepped((status, opens, True), (), "insert_key")
        if name == "pull_key" and key and status != "Locked":
            return Stepped((status, opens, False), (), "pull_key")
        return Rejected("invalid_transition", f"{name} from {status}")

    def invariants(self) -> Sequence[Invariant[DoorState]]:
        def bounded(state: DoorState) -> str | None:
            limit = 1 if self.buggy else self.max_opens
            return None if state[1] <= limit else f"opened {state[1]} times, limit {limit}"

        return [Invariant("opens_bounded", "the door is opened at most the limit", bounded)]

    def transitions(self) -> Sequence[TransitionDecl]:
        return DOOR_TRANSITIONS

    def describe(self, state: DoorState) -> Mapping[str, Any]:
        return {"door_status": state[0], "opens": state[1], "key": "in" if state[2] else "out"}

    def action_label(self, action: DoorAction) -> str:
        return action[0]


def explore_fake(machine: Any, *, symmetry: bool = True) -> ExploredGraph:
    """Breadth-first exploration into the verifier's graph format (node attributes depth/initial,
    edge attributes action/transition/action_obj) with violations by state."""
    graph = nx.DiGraph()
    start = machine.canonical(machine.initial_state())
    graph.add_node(start, depth=0, initial=True)
    violations: dict[Hashable, list[str]] = {}
    frontier = [start]
    depth = 0
    while frontier:
        depth += 1
        following = []
        for state in frontier:
            for action in machine.actions(state):
                result = machine.step(state, action)
                if not isinstance(result, Stepped):
                    continue
                nxt = machine.canonical(result.state)
                if nxt not in graph:
                    graph.add_node(nxt, depth=depth, initial=False)
                    following.append(nxt)
                if not graph.has_edge(state, nxt):  # like the verifier: the first action found is kept
                    graph.add_edge(
                        state, nxt, action=machine.action_label(action), transition=result.transition, action_obj=action
                    )
        frontier = following
    for state in graph.nodes:
        for invariant in machine.invariants():
            message = invariant.check(state)
            if message is not None:
                violations.setdefault(state, []).append(f"{invariant.name}: {message}")
    return ExploredGraph(graph, violations)
