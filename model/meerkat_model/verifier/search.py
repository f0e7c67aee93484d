"""The breadth-first search core shared by the sequential and the parallel explorer.

A :class:`Partition` is the part of the state space one worker owns: the (canonical) states
whose ``owner_function`` value is ``me`` (``hash(machine.partition_key(state)) % n``; the key
is the state itself unless the machine says otherwise). The sequential search is the single
partition of ``n == 1``; the parallel search (:mod:`meerkat_model.verifier.parallel`) runs
``n`` of them in forked processes and exchanges the states each discovers for the others
between levels. Either way the successors of a state are computed in one place,
:meth:`Partition.expand` (the only caller of ``search_actions``, ``step``, ``canonical`` and
``obligations``), and every new state is checked in one place, :meth:`Partition._store` (the
only caller of the invariants, through ``_record_checks`` when one fails).

* **Known states.** One dict ``known`` maps a canonical state either to its local index (owned
  here) or to a negative *remote reference* ``-1 - (slot * n + owner)`` (owned elsewhere, queued
  for its owner once; later hits are plain dict hits), and a successor that was renamed, under
  its concrete form, to an *alias* ``ALIAS + k`` (its target reference and status signature are
  ``alias_dst[k]`` and ``alias_after[k]``), so meeting it again needs no canonicalisation. A
  successor is looked up with one ``setdefault`` that enters it under the next local index: a
  new canonical state owned here is hashed once (its entry is already right), only a renamed
  one or one owned elsewhere has its entry rewritten (an entry is never left provisional: if
  anything raises before it is settled, it is removed). A canonical form that ``canonical``
  renames again (a non-idempotent ``canonical``) is a violation of the step that produced it.
* **Shortcuts.** A step returning its own state is a self-loop without a lookup; one returning
  the same object as the previous step from that state reuses its target. A step found to
  match its declarations is remembered by its statuses, transition and action
  (``DeclarationCheck.passed``), so the check is one lookup after that. A step check's precondition
  (``StepCheck.when``) is asked once per state and check, not once per step (an answer is
  remembered only when it did not raise). The status signature of a state owned by another
  worker is computed once per worker (``remote_sigs``; -1 when ``statuses`` raises on it, which
  its owner reports as the sequential search does). None of them changes a result.
* **Records.** States, depths, parents (as global ids ``local * n + owner``) and the edges,
  column-wise: target reference, action, transition, with the source of each run of edges in
  ``expanded`` and the run's end in ``ends``.
* **Assembly.** :func:`assemble` numbers the states of every partition level by level (partition
  by partition inside a level), so indexes are in breadth-first order with the initial state at
  0, and rebuilds ``parents`` and the ``(source, target, action, transition)`` edge records with
  these indexes, in order of source index (each source's edges in ``machine.actions`` order).
  Every expanded state's obligations are asked once (``owing``: the ones that owe work), and a
  complete search's stranded states are found from the integer edge columns
  (:mod:`meerkat_model.verifier.liveness`), without building the edge records.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import pickle
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate, chain, compress, repeat
from typing import Any

from meerkat_model.machine import Machine, Stepped
from meerkat_model.verifier.declarations import NAME as DECLARED
from meerkat_model.verifier.declarations import DeclarationCheck
from meerkat_model.verifier.edges import Edge, Edges
from meerkat_model.verifier.exploration import Coverage, Exploration, Violation
from meerkat_model.verifier.liveness import stranded_states

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL

Tick = Callable[[int, int], None]
"""Called as ``tick(states, frontier)`` every ``tick_every`` new states (sequential progress)."""

ARRAYS = ("depths", "parents")
"""The integer records of a partition, in the order ``final_arrays`` hands them over."""
LISTS = ("state_list", "edst", "eact", "etr", "expanded", "ends", "inbox")
"""The bulky records of a partition, in the order :meth:`Partition.final_lists` gives them."""

ALIAS = 1 << 62
"""``known`` values from here on are aliases (renamed successors; see the module doc): every
local index and remote reference is below it."""

STEP_RAISES = "steps_raise_nothing"
"""Built-in check: no step, candidate list, canonical form or obligation list raises."""
DESCRIBE = "describe_raises_nothing"
"""Built-in check (``check_describe``): ``describe`` does not raise on any reachable state."""
BUILT_IN_DESCRIPTIONS = {
    STEP_RAISES: "no step, candidate list, canonical form, status view or obligation list raises",
    DESCRIBE: "describe renders every reachable state without raising",
}


def _raised(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _describes(machine: Machine[Any, Any]) -> Callable[[Any], str | None]:
    def check(state: Any) -> str | None:
        machine.describe(state)
        return None

    return check


def check_names(machine: Machine[Any, Any], *, check_describe: bool = False) -> tuple[str, ...]:
    """Every check an exploration reports, in report order: the machine's invariants, its step
    checks, then the built-in checks."""
    names = [inv.name for inv in machine.invariants()]
    names += [sc.name for sc in machine.step_checks()]
    if check_describe:
        names.append(DESCRIBE)
    if DeclarationCheck(machine).active and machine.statuses(machine.initial_state()):
        names.append(DECLARED)
    names.append(STEP_RAISES)
    return tuple(dict.fromkeys(names))


Merged = tuple[Sequence[Sequence[int]], list[Any], list[int], list[int], Edges]
"""Final index of each partition's local states, and the global states, depths, parents and edges."""


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for a search (states are acyclic tuples; collecting
    the millions a search builds is wasted work), restoring it afterwards.

    Everything allocated meanwhile would sit in the youngest generation and be scanned by the
    first collection after the pause, and again on its way to the oldest; it lives as long as
    the exploration, so it is moved to the oldest generation unscanned (``freeze`` then
    ``unfreeze``), where a full collection still finds any cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def owner_function(machine: Machine[Any, Any], n: int) -> Callable[[Any], int]:
    """Which of ``n`` partitions owns a (canonical) state: ``hash(machine.partition_key(state))
    % n`` when the machine provides its own ``partition_key``, else ``hash(state) % n``. A key
    that raises (a malformed state) falls back to the state's own hash, so ownership stays a
    function of the state and the step is reported where the sequential search reports it."""
    own = getattr(type(machine), "partition_key", None)
    if own is None or own is Machine.partition_key:
        return lambda state: hash(state) % n
    key = machine.partition_key

    def owner(state: Any) -> int:
        try:
            return hash(key(state)) % n
        except Exception:
            return hash(state) % n

    return owner


class Partition:
    """The part of the search one worker owns (see the module doc); ``n == 1`` is the whole
    sequential search."""

    def __init__(
        self,
        machine: Machine[Any, Any],
        symmetry: bool,
        me: int,
        n: int,
        max_states: int | None,
        *,
        tick: Tick | None = None,
        tick_every: int = 0,
        check_describe: bool = False,
    ) -> None:
        self.machine = machine
        self.canon = machine.canonical if symmetry else None
        self.me, self.n = me, n
        self.owner = owner_function(machine, n)
        self.max_states = max_states
        self.tick, self.tick_every = tick, tick_every
        self.checks = [(inv.name, inv.check) for inv in machine.invariants()]
        if check_describe:
            self.checks.append((DESCRIBE, _describes(machine)))
        self.check_fns = tuple(check for _, check in self.checks)
        self.step_checks: dict[str, list[tuple[str, Any, Any]]] = {}
        for sc in machine.step_checks():
            for transition in sc.transitions:
                self.step_checks.setdefault(transition, []).append((sc.name, sc.check, sc.when))
        declarations = DeclarationCheck(machine)
        self.declaration_check = declarations  # its caches stay empty when inactive
        self.declarations = declarations if declarations.active and machine.statuses(machine.initial_state()) else None
        self.sigs: list[int] = []  # status signature of each owned state (with the declaration check)
        self.remote_sigs: dict[int, int] = {}  # remote reference -> status signature of that state
        self.known: dict[Any, int] = {}
        # alias k (``known`` value ALIAS + k, a renamed successor): what ``known`` holds for its
        # representative, and its own status signature (-1 without the declaration check)
        self.alias_dst: list[int] = []
        self.alias_after: list[int] = []
        self.states: list[Any] = []
        self.depths = array("q")
        self.parents = array("q")  # global ids (local * n + owner) of the parents; -1: initial
        self.frontier: list[int] = []
        self.next_frontier: list[int] = []
        self.out_states: list[list[Any]] = [[] for _ in range(n)]
        # per destination: slot -> state (kept by partition 0 only, which assembles the states)
        self.sent_states: list[list[Any]] = [[] for _ in range(n)]
        self.out_parents: list[array[int]] = [array("q") for _ in range(n)]
        self.sent = [0] * n  # slots used so far per destination
        self.inbox: list[array[int]] = [array("q") for _ in range(n)]  # per sender: slot -> local index
        self.edst: list[int] = []
        self.eact: list[Any] = []
        self.etr: list[str] = []
        self.expanded: list[int] = []
        self.ends: list[int] = []
        self.level_starts: list[int] = []  # len(expanded) at the start of each level
        # name -> (message, local index, depth, step?, action): the first violation per check;
        # a step violation is the step ``action`` from the state at the local index
        self.violations: dict[str, tuple[str, int, int, bool, Any]] = {}
        self.stuck: list[int] = []
        self.owing: list[int] = []  # expanded states with obligations
        self.stopped = False
        self.level = 0
        self.before = (0, 0)
        init = machine.initial_state()
        if self.canon is not None:
            init = self.canon(init)
        if n == 1 or self.owner(init) == me:
            self.known[init] = 0
            self._store(init, -1)
            self.frontier, self.next_frontier = self.next_frontier, []

    def _store(self, state: Any, parent: int) -> int:
        """Store a new owned ``state``, whose ``known`` entry already holds its local index (the
        next one), at depth ``level + 1`` (0 for the initial state, whose ``parent`` is -1) and
        check every invariant on it; a state that violates one (or on which a check raises) is
        recorded (the first per invariant) and not expanded. Returns its local index."""
        i = len(self.states)
        self.states.append(state)
        depth = self.level + 1 if parent >= 0 else 0
        self.depths.append(depth)
        self.parents.append(parent)
        ok = True
        try:  # fast path: every check holds (each asked once more, one by one, if not)
            for holds in self.check_fns:
                if holds(state) is not None:
                    ok = False
                    break
        except Exception:
            ok = False
        if not ok:
            ok = self._record_checks(state, i, depth)
        if self.declarations is not None:
            try:
                self.sigs.append(self.declarations.signature(state))
            except Exception as exc:
                self.sigs.append(-1)
                ok = False
                self._step_violation(STEP_RAISES, f"statuses raised {_raised(exc)}", i, depth, None, False)
        if ok:
            self.next_frontier.append(i)
        if self.tick is not None and i and i % self.tick_every == 0:
            self.tick(i + 1, len(self.next_frontier))
        return i

    def _record_checks(self, state: Any, i: int, depth: int) -> bool:
        """Record the first violation of every check that ``state`` (local index ``i``) violates
        or raises on; whether every check held."""
        ok = True
        for name, holds in self.checks:
            try:
                message = holds(state)
            except Exception as exc:  # a check that raises is violated by this state
                message = f"the check raised {_raised(exc)}"
            if message is not None:
                ok = False
                if name not in self.violations:
                    self.violations[name] = (message, i, depth, False, None)
        return ok

    def _step_violation(self, name: str, message: str, src: int, depth: int, action: Any, step: bool = True) -> None:
        """Record a violation of a step (``action`` from local state ``src`` at ``depth``)."""
        if name not in self.violations:
            self.violations[name] = (message, src, depth + 1 if step else max(depth, 0), step, action)

    def expand(self) -> None:
        """Expand the frontier of the current level: every action of every frontier state is
        stepped; each successor is canonicalised, looked up, and added (owned here) or queued
        for its owner when new; every step taken is recorded as an edge. Every step is checked
        against its transition's declarations and step checks; a step (or a call on a state)
        that raises is a violation of that step (that state), never an abort."""
        step, actions, obligations = self.machine.step, self.machine.search_actions, self.machine.obligations
        states = self.states
        enter = self.known.setdefault
        discover = self._discover
        alias_dst, alias_after, remote_after = self.alias_dst, self.alias_after, self._remote_after
        edst_list = self.edst
        edst, eact, etr = edst_list.append, self.eact.append, self.etr.append
        expanded, ends, owing = self.expanded.append, self.ends.append, self.owing.append
        declarations, sigs, step_checks = self.declarations, self.sigs, self.step_checks
        remote_sigs = self.remote_sigs
        # with the declaration check off every ``after`` is -1, so these are never called
        passed, check_declared = self.declaration_check.passed.get, self.declaration_check.check
        depths = self.depths
        limit = self.max_states
        self.level_starts.append(len(self.expanded))
        self.before = (len(states), len(self.frontier))
        for src in self.frontier:
            state = states[src]
            moved = False
            sig_src = sigs[src] if declarations is not None else -1
            # the last distinct successor of this state: a step that returns the very same
            # object (a model may share one result between actions) needs no lookup again
            last: Any = None
            last_dst = last_after = -1
            guards: dict[Any, bool] = {}  # each step check's ``when`` on this state, asked once
            try:
                candidates = actions(state)
            except Exception as exc:
                self._step_violation(STEP_RAISES, f"actions raised {_raised(exc)}", src, depths[src], None, False)
                candidates = ()
            for action in candidates:
                try:
                    result = step(state, action)
                    if not isinstance(result, Stepped):
                        continue
                    succ = result.state
                    transition = result.transition
                    if succ is state:  # a self-loop on a stored (so canonical) state
                        dst, after = src, sig_src
                    elif succ is last:
                        dst, after = last_dst, last_after
                    else:
                        if not moved and succ != state:
                            moved = True
                        fresh = len(states)
                        dst = enter(succ, fresh)
                        if dst == fresh:  # not met before: entered under the next local index
                            dst, after = discover(succ, src, fresh)
                        elif dst >= ALIAS:  # a renamed successor met before
                            after = alias_after[dst - ALIAS]
                            dst = alias_dst[dst - ALIAS]
                        elif declarations is None:
                            after = -1
                        elif dst >= 0:
                            after = sigs[dst]
                        else:  # owned by another worker: its signature is computed once here
                            after = remote_sigs.get(dst, -2)
                            if after == -2:
                                after = remote_after(succ, dst)
                        last, last_dst, last_after = succ, dst, after
                    if after >= 0 and passed((sig_src, after, transition, id(action))) is not action:
                        problem = check_declared(sig_src, action, transition, after)
                        if problem is not None:
                            self._step_violation(DECLARED, problem, src, depths[src], action)
                    if transition in step_checks:
                        for name, rule, when in step_checks[transition]:
                            if when is not None:
                                guard = guards.get(when)
                                if guard is None:
                                    guard = guards[when] = bool(when(state))
                                if not guard:
                                    continue
                            problem = rule(state, action, result)
                            if problem is not None:
                                self._step_violation(name, problem, src, depths[src], action)
                except Exception as exc:  # a step that raises is a violation of that step
                    self._step_violation(STEP_RAISES, f"raised {_raised(exc)}", src, depths[src], action)
                    continue
                edst(dst)
                eact(action)
                etr(transition)
            expanded(src)
            ends(len(edst_list))
            try:
                if obligations(state):
                    owing(src)
                    if not moved:
                        self.stuck.append(src)
            except Exception as exc:
                self._step_violation(STEP_RAISES, f"obligations raised {_raised(exc)}", src, depths[src], None, False)
            if limit is not None and len(states) + sum(self.sent) >= limit:
                self.stopped = True
                break

    def _discover(self, succ: Any, src: int, fresh: int) -> tuple[int, int]:
        """Settle a successor of local state ``src`` met for the first time, which ``known``
        holds provisionally under ``fresh`` (the next local index): its canonical form is added
        (owned here) or queued for its owner when new, and a renamed successor becomes an alias.
        Returns what ``known`` holds for the canonical form, and the successor's status
        signature (-1 without the declaration check). If ``canonical``, the canonical form's
        hash or ``==``, or ``statuses`` on a renamed successor raises, or the canonical form is
        renamed again by ``canonical``, the provisional entry is removed and nothing is added."""
        known = self.known
        representative = succ
        if self.canon is not None:
            try:
                representative = self.canon(succ)
                if representative is not succ:
                    found = known.get(representative)
                    if found != fresh:  # a different state from ``succ`` (new when None): an alias
                        again = self.canon(representative) != representative if found is None else found >= ALIAS
                        if again:  # ``canonical`` is not idempotent
                            raise ValueError(f"canonical form {representative!r} is renamed again by canonical")
                        after = self.declaration_check.signature(succ) if self.declarations is not None else -1
                        dst = self._new(representative, src, False) if found is None else found
            except BaseException:
                if known.get(succ) == fresh:
                    del known[succ]
                raise
            if representative is not succ and found != fresh:
                known[succ] = ALIAS + len(self.alias_dst)
                self.alias_dst.append(dst)
                self.alias_after.append(after)
                return dst, after
        # the canonical form is ``succ`` (or the equal object ``canonical`` gave, stored instead)
        dst = self._new(representative, src, True)
        if self.declarations is None:
            return dst, -1
        return dst, self.sigs[dst] if dst >= 0 else self._remote_after(representative, dst)

    def _new(self, state: Any, src: int, entered: bool) -> int:
        """Add a new canonical ``state`` met from local state ``src``: stored (owned here) or
        queued for its owner, with its ``known`` entry (already the next local index when
        ``entered``) set. Returns that entry."""
        parent = src * self.n + self.me
        owner = self.owner(state) if self.n > 1 else self.me
        if owner == self.me:
            if not entered:
                self.known[state] = len(self.states)
            return self._store(state, parent)
        slot = self.sent[owner]
        self.sent[owner] = slot + 1
        ref = self.known[state] = -1 - (slot * self.n + owner)
        self.out_states[owner].append(state)
        self.out_parents[owner].append(parent)
        return ref

    def _remote_after(self, state: Any, ref: int) -> int:
        """The status signature of ``state``, owned by another worker under the remote reference
        ``ref``, computed once; -1 when ``statuses`` raises on it (its owner reports that as a
        violation of the state, as the sequential search does)."""
        try:
            after = self.declaration_check.signature(state)
        except Exception:
            after = -1
        self.remote_sigs[ref] = after
        return after

    def outgoing(self) -> list[tuple[int, bytes]]:
        """This level's batches for the other partitions, pickled; the queues are emptied."""
        out = []
        for dest in range(self.n):
            if self.out_states[dest]:
                out.append((dest, pickle.dumps((self.out_states[dest], self.out_parents[dest]), PICKLE_PROTOCOL)))
                if self.me == 0:
                    self.sent_states[dest] += self.out_states[dest]
                self.out_states[dest] = []
                self.out_parents[dest] = array("q")
        return out

    def receive(self, sender: int, payload: bytes) -> None:
        """Add the states another partition discovered for this one (those not known yet)."""
        batch_states, batch_parents = pickle.loads(payload)
        known, store, slots, states = self.known, self._store, self.inbox[sender].append, self.states
        enter = known.setdefault
        for state, parent in zip(batch_states, batch_parents, strict=True):
            fresh = len(states)
            i = enter(state, fresh)
            if i >= ALIAS:  # renamed here, though canonical for its sender: now a state of its own
                i = known[state] = fresh
            if i == fresh:
                store(state, parent)
            slots(i)

    def finish_level(self) -> None:
        self.frontier, self.next_frontier = self.next_frontier, []
        self.level += 1

    def final_lists(self, omit: int | None = None) -> tuple[Any, ...]:
        """The bulky results, in ``LISTS`` order; with ``omit``, the states first received from
        partition ``omit`` are left out of the state list (that partition has them in its
        ``sent_states``: :func:`restore_states` puts them back)."""
        states = self.states
        if omit is not None:
            own = bytearray(b"\x01") * len(states)
            for i in self.inbox[omit]:
                own[i] = 0
            states = list(compress(states, own))
        return (states, self.edst, self.eact, self.etr, self.expanded, self.ends, self.inbox)

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
            "owing": self.owing,
            "level_starts": self.level_starts,
            "stopped": self.stopped,
        }

    def result(self) -> dict[str, Any]:
        """Everything :func:`assemble` needs from this partition, in this process."""
        header = self.final_header()
        header.update(zip(LISTS, self.final_lists(), strict=True))
        for name in ARRAYS:
            header[name] = getattr(self, name)
        return header


def restore_states(own: list[Any], count: int, received: Sequence[int], sent: Sequence[Any]) -> list[Any]:
    """The ``count`` states of a partition whose :meth:`Partition.final_lists` left out the ones
    it received from this partition: ``received`` (its inbox from here) maps each slot to its
    local index, ``sent`` each slot to the state sent in it, and ``own`` holds the others in
    order of local index."""
    states: list[Any] = [None] * count
    mask = bytearray(b"\x01") * count
    for i, state in zip(received, sent, strict=True):
        states[i] = state
        mask[i] = 0
    slots = list(compress(range(count), mask))
    if len(slots) != len(own):
        raise ValueError(f"{len(own)} own states for {len(slots)} indexes not received")
    for i, state in zip(slots, own, strict=True):
        states[i] = state
    return states


def search_sequential(
    machine: Machine[Any, Any],
    *,
    symmetry: bool,
    max_states: int | None,
    elapsed: Callable[[], float],
    tick: Tick | None = None,
    tick_every: int = 0,
    check_describe: bool = False,
) -> Exploration:
    """The whole search in this process: one partition, expanded level by level."""
    part = Partition(
        machine, symmetry, 0, 1, max_states, tick=tick, tick_every=tick_every, check_describe=check_describe
    )
    while part.frontier:
        part.expand()
        part.finish_level()
        if part.stopped:
            break
    return assemble(
        machine,
        symmetry,
        1,
        [part.result()],
        elapsed,
        complete=not part.stopped,
        index=None if part.alias_dst else part.known,  # a table with aliases holds renamed forms
        check_describe=check_describe,
    )


def assemble(
    machine: Machine[Any, Any],
    symmetry: bool,
    n: int,
    parts: list[dict[str, Any]],
    elapsed: Callable[[], float],
    *,
    complete: bool,
    index: dict[Any, int] | None = None,
    check_describe: bool = False,
) -> Exploration:
    """Number the states of every partition level by level and rebuild the global records
    (see the module doc). ``index`` (state -> final index) is kept when the caller has it."""
    if n == 1:
        finals, state_list, depths_out, parents_out, edges = _single(parts[0])
    else:
        finals, state_list, depths_out, parents_out, edges = _merge(parts, n)
    invariant_names = check_names(machine, check_describe=check_describe)
    firsts: dict[str, tuple[int, int, str, bool, Any]] = {}
    for w, p in enumerate(parts):
        for name, (message, local, depth, is_step, action) in p["violations"].items():
            candidate = (depth, finals[w][local], message, is_step, action)
            if name not in firsts or candidate[:2] < firsts[name][:2]:
                firsts[name] = candidate
    order = {name: k for k, name in enumerate(invariant_names)}
    violations = [
        Violation(name, message, at, depth, action if is_step else None, is_step)
        for name, (depth, at, message, is_step, action) in sorted(
            firsts.items(), key=lambda kv: (kv[1][1], order.get(kv[0], len(order)))
        )
    ]
    stuck = sorted(finals[w][i] for w, p in enumerate(parts) for i in p["stuck"])
    stranded: list[int] | None = None
    stranded_without_give_ups: list[int] | None = None
    liveness_started = time.perf_counter()
    if complete:  # a cut exploration has unexpanded states: no verdict (see ``liveness``)
        stranded = _stranded(parts, n, finals, len(state_list))
        give_ups = frozenset(machine.give_ups())
        stranded_without_give_ups = (
            _stranded(parts, n, finals, len(state_list), give_ups) if give_ups else list(stranded)
        )
    liveness_seconds = time.perf_counter() - liveness_started
    fired = set().union(*(p["etr"] for p in parts))
    declared = tuple(dict.fromkeys(t.name for t in machine.transitions()))
    coverage = Coverage(
        declared=declared,
        fired=tuple(sorted(fired)),
        dead=tuple(x for x in declared if x not in fired),
        undeclared=tuple(sorted(fired - set(declared))),
    )
    return Exploration(
        machine=machine,
        symmetry=symmetry,
        state_list=state_list,
        depths=depths_out,
        parents=parents_out,
        edge_list=edges,
        violations=violations,
        stuck=stuck,
        stranded=stranded,
        stranded_without_give_ups=stranded_without_give_ups,
        liveness_seconds=liveness_seconds,
        coverage=coverage,
        elapsed=elapsed(),
        complete=complete,
        invariant_names=invariant_names,
        _index=index,
    )


def _single(p: dict[str, Any]) -> Merged:
    """The records of the only partition: its local indexes are already final."""

    def edges() -> list[Edge]:
        ends = p["ends"]
        runs = map(operator.sub, ends, [0, *ends[:-1]])
        sources = chain.from_iterable(map(repeat, p["expanded"], runs))
        return list(zip(sources, p["edst"], p["eact"], p["etr"], strict=True))

    return [range(p["states"])], p["state_list"], list(p["depths"]), list(p["parents"]), Edges(len(p["edst"]), edges)


def _merge(parts: list[dict[str, Any]], n: int) -> Merged:
    """The records of ``n`` partitions, numbered level by level (see the module doc)."""
    levels = 1 + max((p["depths"][-1] for p in parts if p["states"]), default=0)
    # final index of each partition's local states, and where each partition's levels start
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
    count = sum(len(p["edst"]) for p in parts)
    return finals, state_list, depths_out, parents_out, Edges(count, lambda: _merged_edges(parts, n, finals))


def _stranded(
    parts: list[dict[str, Any]],
    n: int,
    finals: Sequence[Sequence[int]],
    count: int,
    give_ups: frozenset[str] = frozenset(),
) -> list[int]:
    """The final indexes of the stranded states (see :mod:`meerkat_model.verifier.liveness`):
    every state but the expanded ones with obligations is a way out (a state not expanded is a
    violating one, already reported, whose successors are unknown). Edges whose transition is in
    ``give_ups`` are left out."""
    exits = bytearray(b"\x01") * count
    for w, p in enumerate(parts):
        for i in p["owing"]:
            exits[finals[w][i]] = 0
    if all(exits):
        return []
    if n == 1:
        p = parts[0]
        ends, targets = _kept(p["ends"], p["edst"], p["etr"], give_ups)
        return stranded_states(count, exits, p["expanded"], ends, targets)
    tables = _target_tables(parts, n, finals)
    sources: list[int] = []
    ends = []
    targets = []
    for w, p in enumerate(parts):
        offset = len(targets)
        own_ends, own_targets = _kept(p["ends"], p["edst"], p["etr"], give_ups)
        sources.extend(map(finals[w].__getitem__, p["expanded"]))
        ends.extend(end + offset for end in own_ends)
        targets.extend(map(tables[w].__getitem__, own_targets))
    return stranded_states(count, exits, sources, ends, targets)


def _kept(
    ends: Sequence[int], targets: Sequence[int], transitions: Sequence[str], left_out: frozenset[str]
) -> tuple[Sequence[int], Sequence[int]]:
    """The run ends and targets of the edges whose transition is not in ``left_out`` (the
    columns themselves when nothing is left out)."""
    if not left_out or left_out.isdisjoint(transitions):
        return ends, targets
    keep = bytes(map(left_out.__contains__, transitions)).translate(_NEGATE)  # 1: kept
    before = list(accumulate(keep, initial=0))  # kept edges before each edge position
    return list(map(before.__getitem__, ends)), list(compress(targets, keep))


_NEGATE = bytes([1, 0]) + bytes(254)
"""A ``bytes.translate`` table swapping the flags 0 and 1."""


def _target_tables(parts: list[dict[str, Any]], n: int, finals: Sequence[Sequence[int]]) -> list[list[int]]:
    """Per partition, a table from an edge target record to its final index: a local target is
    its local index, a remote one is -1 - (slot * n + owner); one table answers both (negative
    indexes count from the end)."""
    tables: list[list[int]] = []
    for w in range(n):
        remote = [-1] * (n * max(1, max(len(q["inbox"][w]) for q in parts)))
        for owner, q in enumerate(parts):
            if owner != w:
                slots = q["inbox"][w]
                remote[owner : owner + n * len(slots) : n] = [finals[owner][i] for i in slots]
        remote.reverse()
        tables.append([*finals[w], *remote])
    return tables


def _merged_edges(parts: list[dict[str, Any]], n: int, finals: list[list[int]]) -> list[Edge]:
    """The edge records of ``n`` partitions whose local states got the final indexes ``finals``."""
    tables = _target_tables(parts, n, finals)
    # every partition expands level by level, so taking each level's runs partition by
    # partition yields the edges in order of (final) source index
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
    return edges
