"""Seeded random walks of the ownership lockstep: at each step one action the model accepts
(the steps workers take on their own left to them), applied to the model and the two runtime
workers, compared after every step; a difference raises ``Disagreement`` with the trace.

The kind of action is drawn first (claim, renew, expire, crash, accept, a control operation,
an ambiguous write, ...), then one of its variants, so that kinds with many variants do not
crowd out the others; kinds that end the session's life on a worker are drawn less often
(``_WEIGHTS``; a destroy, after which nothing more can happen, a tenth as often). A walk
that reaches a state with nothing left to do starts again on a fresh file.

After each step the walk may also probe (:func:`probes`, drawn from a second generator so the
walk's own draws stay as they were): a claim by a worker without the session while another
worker's lease is live (the model refuses it, ``lease_held``: so must the runtime, and nothing
may change), and a re-claim by a new process of the lease holder while the old process lives on
(``Reincarnate``: the old process's writes carry a stale token of the same owner and must be
refused). A terminal write of the registry whose outcome is unknown (``AmbiguousFinishOp``) is
drawn the same way, from a third generator (:func:`registry_faults`), not among the walk's kinds.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

from meerkat_model.action_record import action_name
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.ownership.actions import Ambiguous, AmbiguousFinishOp, ClaimRegister, CrashWorker, On
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import NO_OWNER, OwnershipState

from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.ownership.adapter import AUTONOMOUS, OwnershipAdapter, Reincarnate

WALK_BOUNDS = Bounds({"inputs": 2, "claims": 6, "ops": 2})
"""The model the walks run: two inputs, up to six claims (a claim and five takeovers or reclaims),
two operation ids in each worker's registry."""


def kind(action: Hashable) -> str:
    """The kind an action is drawn by: its call name, with the session call for ``On`` and
    ``Ambiguous`` (``on:accept``, ``ambiguous:stop``)."""
    if isinstance(action, On | Ambiguous):
        return f"{action_name(action)}:{action_name(action.inner)}"
    return action_name(action)


def drivable(machine: OwnershipMachine, state: OwnershipState) -> list[Hashable]:
    """The actions the model accepts in ``state`` that the harness drives (not the workers'
    own steps)."""
    out: list[Hashable] = []
    for action in machine.actions(state):
        if (isinstance(action, On) and isinstance(action.inner, AUTONOMOUS)) or isinstance(action, AmbiguousFinishOp):
            continue
        if isinstance(machine.step(state, action), Stepped):
            out.append(action)
    return out


_WEIGHTS = {"destroy": 0.1, "crash_worker": 0.3, "release": 0.3, "expire": 0.5, "renew": 0.5}
"""Relative weights of kinds (others 1): the steps that end a session's life on a worker are
drawn less often, so that runs get to start and end between them."""


def _draw(rng: random.Random, choices: list[Hashable]) -> Hashable:
    by_kind: dict[str, list[Hashable]] = {}
    for action in choices:
        by_kind.setdefault(kind(action), []).append(action)
    kinds = sorted(by_kind)
    weights = [_WEIGHTS.get(k.split(":")[-1], 1.0) for k in kinds]
    return rng.choice(by_kind[rng.choices(kinds, weights)[0]])


CLAIM_PROBE_RATE = 0.5
"""How often a refused claim is tried where one can be (it costs one lease read)."""
REINCARNATE_RATE = 0.05
"""How often the lease holder is re-claimed by a new process of its own where it can be."""


def probes(machine: OwnershipMachine, state: OwnershipState, rng: random.Random) -> list[Hashable]:
    """What the walk tries after a step in ``state``: claims the model refuses because another
    worker's lease is live (at rate ``CLAIM_PROBE_RATE``), and ``Reincarnate`` of the lease
    holder where the model lets it crash and claim again (at rate ``REINCARNATE_RATE``)."""
    out: list[Hashable] = []
    lease = state.lease
    if lease.owner == NO_OWNER or lease.expired:
        return out
    for v in range(len(state.workers)):
        if v == lease.owner or state.workers[v].memory is not None:
            continue
        if not isinstance(machine.step(state, ClaimRegister(v)), Stepped) and rng.random() < CLAIM_PROBE_RATE:
            out.append(ClaimRegister(v))
    holder = lease.owner
    if state.workers[holder].memory is not None and rng.random() < REINCARNATE_RATE:
        crashed = machine.step(state, CrashWorker(holder))
        if isinstance(crashed, Stepped):
            claimed = machine.step(crashed.state, ClaimRegister(holder))
            if isinstance(claimed, Stepped) and claimed.transition == "claim_register":
                out.append(Reincarnate(holder))
    return out


REGISTRY_FAULT_RATE = 0.05
"""How often a terminal write of a running operation is left with its outcome unknown where it can be."""


def registry_faults(machine: OwnershipMachine, state: OwnershipState, rng: random.Random) -> list[Hashable]:
    """At rate ``REGISTRY_FAULT_RATE``, one ``AmbiguousFinishOp`` the model accepts in ``state``
    (landed or lost), drawn from ``rng``."""
    faults = [a for a in machine.actions(state) if isinstance(a, AmbiguousFinishOp)]
    if not faults or rng.random() >= REGISTRY_FAULT_RATE:
        return []
    return [rng.choice(faults)]


WALKS: dict[str, tuple[tuple[int, ...], int]] = {"fast": ((1, 2, 3), 200), "deep": (tuple(range(1, 21)), 500)}
"""The walks ``meerkat-conformance --machine ownership`` runs per search profile: seeds, steps."""


def walk(seed: int, steps: int, *, bounds: Bounds = WALK_BOUNDS, tally: MachineTally | None = None) -> MachineTally:
    """``steps`` steps of lockstep from seed ``seed`` (a fresh file whenever nothing is left to
    do); returns the tally (``tally`` when given, which then keeps the counts of a walk that
    stopped at a disagreement). Raises ``Disagreement`` (with the trace) on the first
    difference."""
    rng = random.Random(seed)
    probe_rng = random.Random(f"probes of walk {seed}")
    fault_rng = random.Random(f"registry faults of walk {seed}")
    machine = OwnershipMachine(bounds)
    if tally is None:
        tally = MachineTally(machine.name, tuple(dict.fromkeys(t.name for t in machine.transitions())))
    steps += tally.steps
    lock: Lockstep | None = None
    try:
        while tally.steps < steps:
            if lock is None:
                lock = Lockstep(machine, OwnershipAdapter(machine), tally)
                tally.examples += 1
            choices = drivable(machine, lock.state)
            if not choices:
                lock.close()
                lock = None
                continue
            lock.apply(_draw(rng, choices))
            for probe in probes(machine, lock.state, probe_rng):
                if tally.steps < steps:
                    lock.apply(probe)
            for fault in registry_faults(machine, lock.state, fault_rng):
                if tally.steps < steps:
                    lock.apply(fault)
    finally:
        if lock is not None:
            lock.close()
    return tally
