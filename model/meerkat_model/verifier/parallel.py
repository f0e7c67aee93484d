"""Parallel breadth-first enumeration: level-synchronous, hash-partitioned, forked workers.

``explore(machine, workers=N)`` with ``N > 1`` lands here. The calling process is worker 0
and the hub; it forks ``N - 1`` more workers (``multiprocessing`` with the ``fork`` start
method, so the machine object is inherited and only states and actions cross a pipe).

* **Ownership.** A (canonical) state belongs to worker ``hash(state) % N``. All workers are
  forked from one interpreter, so ``hash`` agrees between them (string hashing included).
* **Levels.** Every worker expands its own frontier of depth ``L``, exactly like the
  sequential loop, with one dict ``known`` that maps a canonical state either to its local
  index (owned here) or to a negative *remote reference* (owned elsewhere, already sent).
  A new successor owned by another worker is queued for its owner once, with the global id
  of its parent; later hits of the same state by the same sender are plain dict hits, so
  each state crosses a pipe at most once per sender.
* **Exchange.** At the end of a level every child sends its queued states (one pickled
  batch per destination) to the hub, which forwards the bytes unopened; each owner adds
  the states it did not know at depth ``L + 1`` (the parent sent along is at depth ``L``, so
  the parent chain stays a shortest path) and records, per sender, which local index each
  sent slot became. Then the next level starts; the search stops when no worker has a
  frontier and nothing was sent.
* **Assembly.** Each child sends its states, depths, parent ids, per-sender slot tables and
  its edges as flat integer arrays (actions and transition names interned per worker). The
  hub numbers the states level by level (worker by worker inside a level), so indexes stay
  in breadth-first order with the initial state at 0, and rebuilds ``parents`` and the
  ``(source, target, action, transition)`` edge records with global indexes, in order of
  source index (each source's edges in ``machine.actions`` order, as sequentially).

The result has the same state set, edges, depths, invariant results, coverage and stuck
states as the sequential search; within a level the numbering (and so which of several
equally shallow violating states is reported) may differ.

Workers ignore SIGINT; the hub terminates (then kills) them on any error or interrupt, and
notices a worker that died through its process sentinel. The cyclic garbage collector is
paused during the search (states are acyclic tuples) and restored afterwards.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import operator
import pickle
import signal
import time
import traceback
from array import array
from bisect import bisect_left
from collections.abc import Callable
from itertools import chain, repeat
from multiprocessing.connection import Connection, wait
from typing import Any

from meerkat_model.machine import Machine, Stepped
from meerkat_model.verifier.exploration import Coverage, Edge, Exploration, Violation

ProgressFn = Callable[[int, int, float], None]

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
POLL_SECONDS = 1.0
"""How often the hub, waiting for a worker, checks that every worker is still alive."""
JOIN_SECONDS = 5.0
"""How long a finished (or terminated) worker is given to exit before it is killed."""

_ARRAYS = ("depths", "parents")
_LISTS = ("state_list", "edst", "eact", "etr", "expanded", "ends", "inbox")


class WorkerError(RuntimeError):
    """A worker process raised (its traceback is in the message) or died."""


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _Partition:
    """The part of the search one worker owns (see the module doc)."""

    def __init__(self, machine: Machine[Any, Any], symmetry: bool, me: int, n: int, max_states: int | None) -> None:
        self.machine = machine
        self.canon = machine.canonical if symmetry else None
        self.me, self.n = me, n
        self.max_states = max_states
        self.checks = [(inv.name, inv.check) for inv in machine.invariants()]
        self.known: dict[Any, int] = {}
        self.states: list[Any] = []
        self.depths = array("q")
        self.parents = array("q")  # global ids (local * n + owner) of the parents; -1: initial
        self.frontier: list[int] = []
        self.next_frontier: list[int] = []
        self.out_states: list[list[Any]] = [[] for _ in range(n)]
        self.out_parents: list[array[int]] = [array("q") for _ in range(n)]
        self.sent = [0] * n  # slots used so far per destination
        self.inbox: list[array[int]] = [array("q") for _ in range(n)]  # per sender: slot -> local index
        # edges, column-wise: target reference, action, transition; the source of each run of
        # edges is in ``expanded`` and the run ends (exclusive) in ``ends``
        self.edst: list[int] = []
        self.eact: list[Any] = []
        self.etr: list[str] = []
        self.expanded: list[int] = []
        self.ends: list[int] = []
        self.level_starts: list[int] = []  # len(expanded) at the start of each level
        self.violations: dict[str, tuple[str, int, int]] = {}  # name -> (message, local index, depth)
        self.stuck: list[int] = []
        self.stopped = False
        self.level = 0
        self.before = (0, 0)
        init = machine.initial_state()
        if self.canon is not None:
            init = self.canon(init)
        if hash(init) % n == me:
            self._add(init, -1)
            self.frontier, self.next_frontier = self.next_frontier, []

    def _add(self, state: Any, parent: int) -> int:
        """Store a new owned state at depth ``level + 1`` (0 for the initial state)."""
        i = len(self.states)
        self.known[state] = i
        self.states.append(state)
        depth = self.level + 1 if parent >= 0 else 0
        self.depths.append(depth)
        self.parents.append(parent)
        ok = True
        for name, holds in self.checks:
            message = holds(state)
            if message is not None:
                ok = False
                if name not in self.violations:
                    self.violations[name] = (message, i, depth)
        if ok:
            self.next_frontier.append(i)
        return i

    def expand(self) -> None:
        """Expand the frontier of the current level (the sequential loop, partitioned)."""
        machine, canon, me, n = self.machine, self.canon, self.me, self.n
        step, actions, obligations = machine.step, machine.actions, machine.obligations
        known, states, add = self.known, self.states, self._add
        out_states, out_parents, sent = self.out_states, self.out_parents, self.sent
        edst_list = self.edst
        edst, eact, etr = edst_list.append, self.eact.append, self.etr.append
        expanded, ends = self.expanded.append, self.ends.append
        limit = self.max_states
        self.level_starts.append(len(self.expanded))
        self.before = (len(states), len(self.frontier))
        for src in self.frontier:
            state = states[src]
            moved = False
            for action in actions(state):
                result = step(state, action)
                if not isinstance(result, Stepped):
                    continue
                succ = result.state
                if not moved and succ != state:
                    moved = True
                dst = known.get(succ)
                if dst is None and canon is not None:
                    representative = canon(succ)
                    if representative is not succ:
                        succ = representative
                        dst = known.get(succ)
                if dst is None:
                    owner = hash(succ) % n
                    if owner == me:
                        dst = add(succ, src * n + me)
                    else:
                        slot = sent[owner]
                        sent[owner] = slot + 1
                        dst = -1 - (slot * n + owner)
                        known[succ] = dst
                        out_states[owner].append(succ)
                        out_parents[owner].append(src * n + me)
                edst(dst)
                eact(action)
                etr(result.transition)
            expanded(src)
            ends(len(edst_list))
            if not moved and obligations(state):
                self.stuck.append(src)
            if limit is not None and len(states) + sum(sent) >= limit:
                self.stopped = True
                break

    def outgoing(self) -> list[tuple[int, bytes]]:
        """This level's batches for the other workers, pickled; the queues are emptied."""
        out = []
        for dest in range(self.n):
            if self.out_states[dest]:
                out.append((dest, pickle.dumps((self.out_states[dest], self.out_parents[dest]), PICKLE_PROTOCOL)))
                self.out_states[dest] = []
                self.out_parents[dest] = array("q")
        return out

    def receive(self, sender: int, payload: bytes) -> None:
        batch_states, batch_parents = pickle.loads(payload)
        known, add, slots = self.known, self._add, self.inbox[sender].append
        for state, parent in zip(batch_states, batch_parents, strict=True):
            i = known.get(state)
            if i is None:
                i = add(state, parent)
            slots(i)

    def finish_level(self) -> None:
        self.frontier, self.next_frontier = self.next_frontier, []
        self.level += 1

    def final_lists(self) -> tuple[Any, ...]:
        """The bulky results, in ``_LISTS`` order."""
        return (self.states, self.edst, self.eact, self.etr, self.expanded, self.ends, self.inbox)

    def report(self) -> tuple[int, int, int, bool]:
        """States known when this level started, the frontier it expanded, the states
        discovered locally since, and whether ``max_states`` stopped the expansion."""
        states, frontier = self.before
        return states, frontier, len(self.next_frontier), self.stopped

    def final_header(self) -> dict[str, Any]:
        return {
            "states": len(self.states),
            "violations": self.violations,
            "stuck": self.stuck,
            "level_starts": self.level_starts,
            "stopped": self.stopped,
        }


def _child_main(part: _Partition, conn: Connection, inherited: list[Connection]) -> None:
    """A forked worker: expand, exchange, repeat; then send the results to the hub."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    for other in inherited:
        other.close()
    try:
        while True:
            part.expand()
            out = part.outgoing()
            conn.send(("level", part.report(), [dest for dest, _ in out]))
            for _, payload in out:
                conn.send_bytes(payload)
            stop, senders = conn.recv()
            for sender in senders:
                part.receive(sender, conn.recv_bytes())
            part.finish_level()
            if stop:
                break
        conn.send(("final", part.final_header()))
        conn.send_bytes(pickle.dumps(part.final_lists(), PICKLE_PROTOCOL))
        for name in _ARRAYS:
            conn.send_bytes(getattr(part, name))
    except (EOFError, BrokenPipeError):  # the hub is gone: nothing to report to
        pass
    except BaseException:  # reported to the hub, which raises it
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Child:
    def __init__(self, index: int, process: Any, conn: Connection) -> None:
        self.index, self.process, self.conn = index, process, conn

    def _wait(self) -> None:
        while True:
            ready = wait([self.conn, self.process.sentinel], POLL_SECONDS)
            if self.conn in ready:
                return
            if ready:
                raise WorkerError(f"worker {self.index} exited unexpectedly (exit code {self.process.exitcode})")

    def recv(self) -> Any:
        self._wait()
        try:
            message = self.conn.recv()
        except EOFError:
            raise WorkerError(f"worker {self.index} closed its pipe unexpectedly") from None
        if isinstance(message, tuple) and message and message[0] == "error":
            raise WorkerError(f"worker {self.index} failed:\n{message[1]}")
        return message

    def recv_bytes(self) -> bytes:
        self._wait()
        try:
            return self.conn.recv_bytes()
        except EOFError:
            raise WorkerError(f"worker {self.index} closed its pipe unexpectedly") from None


def _shutdown(children: list[_Child], *, graceful: bool) -> None:
    """Make sure no worker outlives the call: join finished ones, terminate then kill the rest."""
    for child in children:
        child.conn.close()
    if graceful:
        for child in children:
            child.process.join(JOIN_SECONDS)
    for child in children:
        if child.process.is_alive():
            child.process.terminate()
    for child in children:
        child.process.join(JOIN_SECONDS)
        if child.process.is_alive():
            child.process.kill()
            child.process.join(JOIN_SECONDS)


def explore_parallel(
    machine: Machine[Any, Any],
    *,
    workers: int,
    symmetry: bool,
    progress: ProgressFn | None,
    max_states: int | None,
) -> Exploration:
    """``explore`` with ``workers`` processes (see the module doc)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the search builds millions of acyclic tuples; collecting them is wasted work
    try:
        exploration = _run(machine, workers, symmetry, progress, max_states)
    finally:
        if gc_was_enabled:
            gc.enable()
    if progress is not None:
        progress(exploration.states, 0, exploration.elapsed)
    return exploration


def _run(
    machine: Machine[Any, Any], n: int, symmetry: bool, progress: ProgressFn | None, max_states: int | None
) -> Exploration:
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    children: list[_Child] = []
    graceful = False
    try:
        hub = _Partition(machine, symmetry, 0, n, max_states)
        parent_ends: list[Connection] = []
        for w in range(1, n):
            part = _Partition(machine, symmetry, w, n, max_states)
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(
                target=_child_main,
                args=(part, child_end, [*parent_ends, parent_end]),
                name=f"meerkat-explore-{w}",
                daemon=True,
            )
            process.start()
            child_end.close()
            parent_ends.append(parent_end)
            children.append(_Child(w, process, parent_end))

        while True:
            hub.expand()
            inbound: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
            for dest, payload in hub.outgoing():
                inbound[dest].append((0, payload))
            reports = [hub.report()]
            for child in children:
                _, report, dests = child.recv()
                reports.append(report)
                for dest in dests:
                    inbound[dest].append((child.index, child.recv_bytes()))
            states, frontier, found = (sum(r[k] for r in reports) for k in range(3))
            stopped = any(r[3] for r in reports)
            stop = (
                (not any(inbound) and found == 0)
                or stopped
                or (max_states is not None and states + found >= max_states)
            )
            for child in children:
                batches = inbound[child.index]
                child.conn.send((stop, [sender for sender, _ in batches]))
                for _, payload in batches:
                    child.conn.send_bytes(payload)
            for sender, payload in inbound[0]:
                hub.receive(sender, payload)
            hub.finish_level()
            if progress is not None:  # exact figures as of the start of the level just expanded
                progress(states, frontier, time.perf_counter() - started)
            if stop:
                break

        parts: list[dict[str, Any]] = [_hub_result(hub)]
        for child in children:
            tag, header = child.recv()
            if tag != "final":
                raise WorkerError(f"worker {child.index}: unexpected message {tag!r}")
            header.update(zip(_LISTS, pickle.loads(child.recv_bytes()), strict=True))
            for name in _ARRAYS:
                header[name] = _int_array(child.recv_bytes())
            parts.append(header)
        graceful = True
    except (ConnectionError, EOFError) as exc:
        raise WorkerError(f"lost contact with a worker: {exc!r}") from exc
    finally:
        _shutdown(children, graceful=graceful)
    return _assemble(machine, symmetry, n, parts, started, max_states)


def _int_array(data: bytes) -> array[int]:
    out = array("q")
    out.frombytes(data)
    return out


def _hub_result(hub: _Partition) -> dict[str, Any]:
    header = hub.final_header()
    header.update(zip(_LISTS, hub.final_lists(), strict=True))
    for name in _ARRAYS:
        header[name] = getattr(hub, name)
    return header


def _assemble(
    machine: Machine[Any, Any],
    symmetry: bool,
    n: int,
    parts: list[dict[str, Any]],
    started: float,
    max_states: int | None,
) -> Exploration:
    """Number the states of every worker level by level and rebuild the global records."""
    levels = 1 + max((p["depths"][-1] for p in parts if p["states"]), default=0)
    # final index of each worker's local states, and where each worker's levels start
    finals: list[list[int]] = [[] for _ in parts]
    bounds: list[list[int]] = []
    for p in parts:
        depths = p["depths"]
        bounds.append([bisect_left(depths, d) for d in range(levels + 1)])
    state_list: list[Any] = []
    depths_out: list[int] = []
    for d in range(levels):
        for w, p in enumerate(parts):
            lo, hi = bounds[w][d], bounds[w][d + 1]
            if hi > lo:
                finals[w].extend(range(len(state_list), len(state_list) + hi - lo))
                state_list.extend(p["state_list"][lo:hi])
                depths_out.extend([d] * (hi - lo))
    # global id (local * n + owner) -> final index; the extra last entry maps -1 to -1
    size = max(p["states"] for p in parts)
    by_gid = [-1] * (n * size + 1)
    for w, fin in enumerate(finals):
        by_gid[w : w + n * len(fin) : n] = fin
    parents_out = [0] * len(state_list)
    for w, p in enumerate(parts):
        for local, parent in zip(finals[w], map(by_gid.__getitem__, p["parents"]), strict=True):
            parents_out[local] = parent
    # edges: a local target is its local index, a remote one is -1 - (slot * n + owner);
    # one lookup table per worker answers both (negative indexes count from the end)
    tables: list[list[int]] = []
    for w in range(n):
        remote = [-1] * (n * max(1, max(len(q["inbox"][w]) for q in parts)))
        for owner, q in enumerate(parts):
            if owner != w:
                slots = q["inbox"][w]
                remote[owner : owner + n * len(slots) : n] = [finals[owner][i] for i in slots]
        remote.reverse()
        tables.append(finals[w] + remote)
    # every worker expands level by level, so taking each level's runs worker by worker
    # yields the edges in order of (final) source index
    edges: list[Edge] = []
    for level in range(max(len(p["level_starts"]) for p in parts)):
        for w, p in enumerate(parts):
            starts, expanded, ends = p["level_starts"], p["expanded"], p["ends"]
            if level >= len(starts):
                continue
            first = starts[level]
            last = starts[level + 1] if level + 1 < len(starts) else len(expanded)
            if last <= first:
                continue
            lo, hi = (ends[first - 1] if first else 0), ends[last - 1]
            runs = map(operator.sub, ends[first:last], [lo, *ends[first : last - 1]])
            sources = chain.from_iterable(map(repeat, map(finals[w].__getitem__, expanded[first:last]), runs))
            targets = map(tables[w].__getitem__, p["edst"][lo:hi])
            edges.extend(zip(sources, targets, p["eact"][lo:hi], p["etr"][lo:hi], strict=True))
    invariant_names = tuple(inv.name for inv in machine.invariants())
    firsts: dict[str, tuple[int, int, str]] = {}
    for w, p in enumerate(parts):
        for name, (message, local, depth) in p["violations"].items():
            candidate = (depth, finals[w][local], message)
            if name not in firsts or candidate < firsts[name]:
                firsts[name] = candidate
    order = {name: k for k, name in enumerate(invariant_names)}
    violations = [
        Violation(name, message, index, depth)
        for name, (depth, index, message) in sorted(firsts.items(), key=lambda kv: (kv[1][1], order[kv[0]]))
    ]
    stuck = sorted(finals[w][i] for w, p in enumerate(parts) for i in p["stuck"])
    fired = set().union(*(p["etr"] for p in parts))
    declared = tuple(dict.fromkeys(t.name for t in machine.transitions()))
    coverage = Coverage(
        declared=declared,
        fired=tuple(sorted(fired)),
        dead=tuple(x for x in declared if x not in fired),
        undeclared=tuple(sorted(fired - set(declared))),
    )
    complete = not any(p["stopped"] for p in parts) and not (max_states is not None and len(state_list) >= max_states)
    return Exploration(
        machine=machine,
        symmetry=symmetry,
        state_list=state_list,
        depths=depths_out,
        parents=parents_out,
        edge_list=edges,
        violations=violations,
        stuck=stuck,
        coverage=coverage,
        elapsed=time.perf_counter() - started,
        complete=complete,
        invariant_names=invariant_names,
    )
