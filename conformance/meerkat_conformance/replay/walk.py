"""Exhaustive replay: walk every edge of the model's reachable graph against the runtime.

The graph is the verifier's ``networkx.DiGraph`` (nodes: canonical states with attributes
``depth`` and ``initial``; edges: ``action``, ``transition``, ``action_obj``). The walker keeps
one concrete model state in lockstep with one live runtime. From the current node it takes
an uncovered out-edge when there is one, otherwise it moves to the nearest node that still
has one (a bounded breadth-first search), otherwise it restarts both sides from the initial
state and follows the breadth-first tree to such a node. Every edge is therefore exercised
at least once, each time compared step by step like any lockstep run.

Because nodes are canonical (symmetry-reduced) states, an edge ``u -> v`` is taken from the
concrete state ``c`` (with ``canonical(c) == u``) by any concrete action whose result is
canonically ``v`` and fires the edge's transition; the edge's own ``action_obj`` is tried first.

At each node visited for the first time the walker can also probe every candidate action
the model rejects, and every store-fault variant of the actions it accepts (the adapter's
``fault_variants``) that the model refuses: the runtime must refuse each with the same error
kind and change nothing. The candidates are the machine's ``probe_actions(state)`` when it has
that method (every call worth comparing, the refused ones included, whatever its bounds say:
the graph may be explored without them, which keeps it small), else its ``actions(state)``.
Probes are not edges: they leave the state where it was (each one's outcome is compared at
once, the observations once after a node's last probe).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from meerkat_model.machine import Machine, Stepped

from meerkat_conformance.lockstep.adapter import RuntimeAdapter
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.tally import MachineTally

Edge = tuple[Hashable, Hashable]
ProgressFn = Callable[["ReplayProgress"], None]
_LOCAL_SEARCH_LIMIT = 4000
_APPROACHES = 4


class ReplayError(Exception):
    """The graph and the model do not fit together (not a model/runtime disagreement)."""


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    edges_covered: int
    edges_total: int
    steps: int
    restarts: int
    elapsed: float


@dataclass(slots=True)
class ReplayResult:
    """What the replay exercised. ``transitions_in_graph`` are the transition names the graph
    holds; every one of them was fired at least once when the replay completes."""

    machine: str
    edges_total: int
    edges_covered: int
    nodes_total: int
    steps: int
    restarts: int
    probes: int
    elapsed: float
    transitions_in_graph: frozenset[str]
    tally: MachineTally
    uncovered_edges: list[Edge] = field(default_factory=list)
    unsteerable_nodes: int = 0
    """States the runtime never rests in (it acts on its own at once), so their remaining
    out-edges could not be driven."""

    @property
    def complete(self) -> bool:
        return self.edges_covered == self.edges_total


def _initial_node(graph: Any) -> Hashable:
    for node, data in graph.nodes(data=True):
        if data.get("initial"):
            return node  # type: ignore[no-any-return]
    raise ReplayError("the graph has no node marked initial=True")


def _tree_path(parents: dict[Hashable, Hashable | None], target: Hashable) -> list[Edge]:
    path: list[Edge] = []
    node = target
    while parents[node] is not None:
        parent = parents[node]
        path.append((parent, node))
        node = parent
    path.reverse()
    return path


def _identity(action: Hashable) -> Hashable | None:
    return action


class _Walker:
    def __init__(
        self,
        machine: Machine[Any, Any],
        graph: Any,
        make_adapter: Callable[[], RuntimeAdapter],
        steer: Callable[[Hashable], Hashable | None],
        probe_rejections: bool,
        progress: ProgressFn | None,
        progress_every: float,
        tally: MachineTally | None,
    ) -> None:
        self.machine = machine
        self.graph = graph
        self.make_adapter = make_adapter
        self.steer = steer
        self.probe_rejections = probe_rejections
        self.progress = progress
        self.progress_every = progress_every
        self.root = _initial_node(graph)
        self.drivable: set[Edge] = {
            (u, v) for u, v, a in graph.edges(data="action_obj") if a is None or steer(a) is not None
        }
        self.parents = self.bfs(self.root, None)[0]
        # Dicts, not sets: iteration follows the graph's (breadth-first) order, so a walk is
        # the same on every run whatever the hash seed.
        self.uncovered: dict[Hashable, dict[Hashable, None]] = {}
        for u, v in graph.edges():
            self.uncovered.setdefault(u, {})[v] = None
        self.pending_nodes: dict[Hashable, None] = {
            u: None
            for u, vs in self.uncovered.items()
            if u in self.parents and any((u, v) in self.drivable for v in vs)
        }
        self.attempts: dict[Hashable, int] = {}
        self.unsteerable: set[Hashable] = set()
        self.edges_total = graph.number_of_edges()
        self.edges_covered = 0
        self.tally = (
            tally
            if tally is not None
            else MachineTally(machine.name, tuple(dict.fromkeys(t.name for t in machine.transitions())))
        )
        self.tally.edges_total = self.edges_total
        self.probed: set[Hashable] = set()
        self.candidates: Callable[[Any], Iterable[Hashable]] = getattr(machine, "probe_actions", machine.actions)
        self.restarts = 0
        self.probes = 0
        self.started = time.perf_counter()
        self.last_report = self.started
        self.lockstep: Lockstep | None = None
        self.node: Hashable = self.root

    # --- graph searches ----------------------------------------------------------------------

    def bfs(self, start: Hashable, limit: int | None) -> tuple[dict[Hashable, Hashable | None], Hashable | None]:
        """Breadth-first parents from ``start``; stops at the first pending node when
        ``limit`` is set (returned second). Paths may use edges the runtime takes on its own:
        the walk expects it to take them."""
        parents: dict[Hashable, Hashable | None] = {start: None}
        queue: deque[Hashable] = deque([start])
        while queue and (limit is None or len(parents) < limit):
            node = queue.popleft()
            for succ in self.graph.successors(node):
                if succ in parents:
                    continue
                parents[succ] = node
                if limit is not None and succ in self.pending_nodes:
                    return parents, succ
                queue.append(succ)
        return parents, None

    def local_path(self) -> list[Edge] | None:
        """Shortest drivable path from the current node to a node with an uncovered edge."""
        if self.node in self.pending_nodes:
            return []
        parents, found = self.bfs(self.node, _LOCAL_SEARCH_LIMIT)
        return None if found is None else _tree_path(parents, found)

    # --- lifecycle ------------------------------------------------------------------------

    def restart(self) -> Lockstep:
        if self.lockstep is not None:
            self.lockstep.close()
        self.tally.walks += 1
        self.restarts += 1
        self.lockstep = Lockstep(self.machine, self.make_adapter(), self.tally)
        self.lockstep.check()
        if self.machine.canonical(self.lockstep.state) != self.root:
            raise ReplayError("the machine's initial state is not the graph's initial node")
        self.node = self.root
        self.visit()
        return self.lockstep

    def close(self) -> None:
        if self.lockstep is not None:
            self.lockstep.close()
            self.lockstep = None

    # --- walking --------------------------------------------------------------------------

    def visit(self) -> None:
        if not self.probe_rejections or self.node in self.probed:
            return
        self.probed.add(self.node)
        lockstep = self.lockstep
        assert lockstep is not None
        state = lockstep.state
        step = lockstep.model_step  # a model step that raises is a disagreement, not a crash
        refused: dict[Hashable, None] = {}  # in order, each once
        for action in self.candidates(state):
            steered = self.steer(action)
            if steered is None:
                continue
            if not isinstance(step(state, action), Stepped):
                refused[steered] = None
                continue
            for variant in lockstep.adapter.fault_variants(action):
                if not isinstance(step(state, variant), Stepped):
                    refused[variant] = None
        for probe in refused:  # each must change nothing: the observations are compared once, after the last
            lockstep.apply(probe, compare=False)
            self.probes += 1
        lockstep.check_if_changed()

    def concrete_action(self, u: Hashable, v: Hashable) -> Hashable:
        assert self.lockstep is not None
        state = self.lockstep.state
        data = self.graph.edges[u, v]
        wanted = data.get("transition")
        preferred = data.get("action_obj")
        candidates: Iterator[Hashable] = iter(self.machine.actions(state))
        if preferred is not None:
            candidates = _chain_first(preferred, candidates)
        for action in candidates:
            if self.steer(action) is None:
                continue
            result = self.machine.step(state, action)
            if (
                isinstance(result, Stepped)
                and (wanted is None or result.transition == wanted)
                and self.machine.canonical(result.state) == v
            ):
                return action
        raise ReplayError(
            f"no action of the model leads from the state of node depth "
            f"{self.graph.nodes[u].get('depth')} along edge {data.get('action')!r}"
        )

    def cover(self, u: Hashable, v: Hashable) -> None:
        remaining = self.uncovered.get(u)
        if remaining is None or v not in remaining:
            return
        del remaining[v]
        self.edges_covered += 1
        self.tally.edges_covered = self.edges_covered
        if not any((u, w) in self.drivable for w in remaining):
            self.pending_nodes.pop(u, None)

    def take(self, u: Hashable, v: Hashable) -> None:
        """Drive edge ``u -> v``; every model step it caused (the runtime may add its own)
        covers its edge."""
        lockstep = self.lockstep
        assert lockstep is not None
        action = self.steer(self.concrete_action(u, v))
        assert action is not None
        lockstep.apply(action)
        canonical = self.machine.canonical
        nodes = [canonical(s) for s in lockstep.visited]
        for a, b in pairwise(nodes):
            self.cover(a, b)
        self.node = nodes[-1]
        self.visit()
        self.report()

    def follow(self, path: list[Edge]) -> bool:
        """Walk ``path``, driving its drivable edges and expecting the runtime to take the
        others by itself. Returns whether the walk reached the end of the path."""
        for u, v in path:
            if self.node == v:
                continue  # the runtime already took this edge on its own
            if self.node != u or (u, v) not in self.drivable:
                return False
            self.take(u, v)
        return not path or self.node == path[-1][1]

    def give_up_on(self, target: Hashable) -> None:
        """Count one approach to ``target`` that the runtime diverted (it acted on its own on
        the way); after a few, the target's remaining edges are left uncovered."""
        self.attempts[target] = self.attempts.get(target, 0) + 1
        if self.attempts[target] >= _APPROACHES:
            self.pending_nodes.pop(target, None)
            self.unsteerable.add(target)

    def run(self) -> None:
        self.restart()
        while self.pending_nodes:
            path = self.local_path()
            if path is None:
                self.restart()
                target = next(iter(self.pending_nodes))
                path = _tree_path(self.parents, target)
            target = path[-1][1] if path else self.node
            if not self.follow(path):
                self.give_up_on(target)
                continue
            targets = self.uncovered.get(self.node)
            if targets and self.node in self.pending_nodes:
                self.take(self.node, self.pick(self.node, targets))
        self.report(force=True)

    def pick(self, node: Hashable, targets: dict[Hashable, None]) -> Hashable:
        """Which uncovered edge to take: a self-loop first (it keeps the walk in place), then
        one into a node that still has uncovered edges, then any (a likely dead end)."""
        drivable = [t for t in targets if (node, t) in self.drivable]
        if node in drivable:
            return node
        for target in drivable:
            if target in self.pending_nodes:
                return target
        return drivable[0]

    def report(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if force or now - self.last_report >= self.progress_every:
            self.last_report = now
            elapsed = now - self.started
            steps = self.tally.steps
            self.progress(ReplayProgress(self.edges_covered, self.edges_total, steps, self.restarts, elapsed))


def _chain_first(first: Hashable, rest: Iterator[Hashable]) -> Iterator[Hashable]:
    yield first
    yield from rest


def replay_graph(
    machine: Machine[Any, Any],
    graph: Any,
    make_adapter: Callable[[], RuntimeAdapter],
    *,
    probe_rejections: bool = True,
    progress: ProgressFn | None = None,
    progress_every: float = 1.0,
    steer: Callable[[Hashable], Hashable | None] = _identity,
    tally: MachineTally | None = None,
) -> ReplayResult:
    """Walk every edge of ``graph`` (reachable from its initial node) against fresh runtimes
    made by ``make_adapter``. Raises ``Disagreement`` at the first difference.

    ``steer`` maps a model action to the harness action that makes the runtime perform it,
    or ``None`` when the runtime only does it on its own (such edges are covered when the
    runtime takes them by itself). ``tally`` (optional) receives the counts as the walk goes,
    so they survive a disagreement."""
    walker = _Walker(machine, graph, make_adapter, steer, probe_rejections, progress, progress_every, tally)
    try:
        walker.run()
    finally:
        walker.close()
    uncovered = [(u, v) for u, vs in walker.uncovered.items() for v in vs]
    transitions = frozenset(str(t) for _, _, t in graph.edges(data="transition") if t is not None)
    return ReplayResult(
        machine=machine.name,
        edges_total=walker.edges_total,
        edges_covered=walker.edges_covered,
        nodes_total=graph.number_of_nodes(),
        steps=walker.tally.steps,
        restarts=walker.restarts,
        probes=walker.probes,
        elapsed=time.perf_counter() - walker.started,
        transitions_in_graph=transitions,
        tally=walker.tally,
        uncovered_edges=uncovered,
        unsteerable_nodes=len(walker.unsteerable),
    )
