"""Small purpose-built machines and a deliberately broken ops model for the verifier tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Stepped, TransitionDecl
from meerkat_model.ops import OpsMachine
from meerkat_model.ops.actions import CancelOperation, OpsAction, TerminateOwner
from meerkat_model.ops.state import RegistryState

Action = tuple[Any, ...]


class Counter(Machine[int, Action]):
    """States 0..limit; ``inc`` / ``dec`` / ``reset``. Invariant ``below_bad`` fails at ``bad``
    (reachable in exactly ``bad`` steps). A ``never`` transition is declared but never fires.
    No symmetry (the default ``canonical``)."""

    name = "counter"

    def __init__(self, limit: int = 5, bad: int | None = None, obliged_at: int | None = None) -> None:
        self.limit, self.bad, self.obliged_at = limit, bad, obliged_at

    def initial_state(self) -> int:
        return 0

    def actions(self, state: int) -> Iterable[Action]:
        return [("inc",), ("dec",), ("reset",), ("jam",)]

    def step(self, state: int, action: Action) -> Stepped[int] | Rejected:
        if self.obliged_at is not None and state == self.obliged_at:
            return Rejected("invalid_transition", "jammed")
        if action[0] == "inc":
            return Stepped(state + 1, (), "inc") if state < self.limit else Rejected("invalid_transition", "at limit")
        if action[0] == "dec":
            return Stepped(state - 1, (), "dec") if state > 0 else Rejected("invalid_transition", "at zero")
        if action[0] == "reset":
            return Stepped(0, (), "reset")
        return Rejected("invalid_transition", "jam is never allowed")

    def invariants(self) -> Sequence[Invariant[int]]:
        bad = self.bad
        return [
            Invariant(
                "below_bad",
                "the counter never reaches bad",
                lambda s: f"counter reached {s}" if bad is not None and s == bad else None,
            )
        ]

    def obligations(self, state: int) -> Sequence[str]:
        return ["must go back to zero"] if state == self.obliged_at else []

    def transitions(self) -> Sequence[TransitionDecl]:
        return [
            TransitionDecl("inc", "counter", ("n",), "n+1"),
            TransitionDecl("dec", "counter", ("n",), "n-1"),
            TransitionDecl("reset", "counter", ("n",), "0"),
            TransitionDecl("never", "counter", ("n",), None),
        ]

    def describe(self, state: int) -> Mapping[str, Any]:
        return {"value": state}

    def action_label(self, action: Action) -> str:
        return str(action[0])


class ForgetfulTerminateOwner(OpsMachine):
    """Planted bug: ``terminate_owner`` acknowledges without its durable write."""

    name = "ops-forgetful"

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if type(action) is TerminateOwner and isinstance(result, Stepped):
            return Stepped(result.state._replace(disk=state.disk), result.outputs, result.transition)
        return result


class LeakyCancel(OpsMachine):
    """Planted bug: ``cancel_operation`` does not release its ``max_concurrent`` slot."""

    name = "ops-leaky"

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if type(action) is CancelOperation and isinstance(result, Stepped):
            return Stepped(
                result.state._replace(active_count=result.state.active_count + 1), result.outputs, result.transition
            )
        return result


SMALL_OPS = Bounds(
    {
        "ids": 2,
        "kinds": 1,
        "sequences": 2,
        "max_concurrent": 0,
        "barrier": 1,
        "crash": 1,
        "progress": 0,
        "watchers": 0,
        "probes": 0,
    }
)
"""Two ids, small enough for a fraction of a second per exploration."""


class UnpinnedRetention(OpsMachine):
    """Planted bug (the upstream hazard): retention evicts barrier members too, so a waiting
    barrier can lose a member that already finished."""

    name = "ops-unpinned"

    def step(self, state: RegistryState, action: OpsAction) -> Stepped[RegistryState] | Rejected:
        result = super().step(state, action)
        if not isinstance(result, Stepped):
            return result
        new = result.state
        excess = len(new.completed) - self.bounds.max_completed
        if excess <= 0:
            return result
        ops = list(new.ops)
        for op_id in new.completed[:excess]:
            ops[op_id] = ()
        new = new._replace(ops=tuple(ops), completed=new.completed[excess:])
        return Stepped(new, result.outputs, result.transition)


THREE_IDS = Bounds({**SMALL_OPS.values, "ids": 3, "sequences": 3})
"""Three ids: enough for a barrier member to finish, then another op, while the barrier waits."""


class Livelock(Machine[int, Action]):
    """A job is queued (state 1, which owes it) and then the machine spins between 1 and 2 (both
    owe it) forever: it always moves, so no state is stuck, yet nothing ever drains the job.
    With ``drain`` the job can be drained from 2 back to the idle state 0 (no obligation).
    ``Livelock(bounds)`` reads ``drain`` from the bounds (so the CLI catalog can build it)."""

    name = "livelock"

    def __init__(self, bounds: Bounds | None = None, *, drain: bool = False) -> None:
        self.drain = drain or bool((bounds or Bounds()).get("drain", 0))

    def initial_state(self) -> int:
        return 0

    def actions(self, state: int) -> Iterable[Action]:
        return [("queue",), ("spin",), ("drain",)]

    def step(self, state: int, action: Action) -> Stepped[int] | Rejected:
        if action[0] == "queue" and state == 0:
            return Stepped(1, (), "queue")
        if action[0] == "spin" and state in (1, 2):
            return Stepped(3 - state, (), "spin")
        if action[0] == "drain" and self.drain and state == 2:
            return Stepped(0, (), "drain")
        return Rejected("invalid_transition", f"{action[0]} is not possible in {state}")

    def invariants(self) -> Sequence[Invariant[int]]:
        return [Invariant("in_range", "the state is 0, 1 or 2", lambda s: None if s in (0, 1, 2) else f"state {s}")]

    def obligations(self, state: int) -> Sequence[str]:
        return ["queued job must be drained"] if state else []

    def transitions(self) -> Sequence[TransitionDecl]:
        return [
            TransitionDecl("queue", "job", ("idle",), "queued"),
            TransitionDecl("spin", "job", ("queued",), None),
            TransitionDecl("drain", "job", ("queued",), "idle"),
        ]

    def describe(self, state: int) -> Mapping[str, Any]:
        return {"job": ("idle", "queued", "spinning")[state]}

    def action_label(self, action: Action) -> str:
        return str(action[0])


class DrainIsDropping(Livelock):
    """The livelock whose only way out, ``drain``, is declared a give-up (the job is dropped)."""

    name = "livelock-dropping"

    def give_ups(self) -> Mapping[str, str]:
        return {"drain": "the job is dropped, not run"}
