"""Seeded random walks of the ownership lockstep: at each step one action the model accepts
(the steps workers take on their own left to them), applied to the model and the two runtime
workers, compared after every step; a difference raises ``Disagreement`` with the trace.

The kind of action is drawn first (claim, renew, expire, crash, accept, a control operation,
an ambiguous write, ...), then one of its variants, so that kinds with many variants do not
crowd out the others; kinds that end the session's life on a worker are drawn less often
(``_WEIGHTS``; a destroy, after which nothing more can happen, a tenth as often). A walk
that reaches a state with nothing left to do starts again on a fresh file.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

from meerkat_model.action_record import action_name
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.ownership.actions import Ambiguous, On
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import OwnershipState

from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.tally import MachineTally
from meerkat_conformance.ownership.adapter import AUTONOMOUS, OwnershipAdapter

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
        if isinstance(action, On) and isinstance(action.inner, AUTONOMOUS):
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


def walk(seed: int, steps: int, *, bounds: Bounds = WALK_BOUNDS) -> MachineTally:
    """``steps`` steps of lockstep from seed ``seed`` (a fresh file whenever nothing is left to
    do); returns the tally. Raises ``Disagreement`` (with the trace) on the first difference."""
    rng = random.Random(seed)
    machine = OwnershipMachine(bounds)
    tally = MachineTally(machine.name, tuple(dict.fromkeys(t.name for t in machine.transitions())))
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
    finally:
        if lock is not None:
            lock.close()
    return tally
