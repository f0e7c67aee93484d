"""Shortest counterexample traces, replayed as concrete steps from the initial state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meerkat_model.machine import Machine, Rejected, Stepped
from meerkat_model.verifier.exploration import Exploration, Violation
from meerkat_model.verifier.liveness import STRANDED, STRANDED_WITHOUT_GIVE_UPS


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a trace: the action, the transition that fired, what an observer saw, the
    concrete state reached and the fields that changed (``field -> (before, after)``)."""

    action: Any
    label: str
    transition: str
    outputs: tuple[Any, ...]
    state: Any
    diff: Mapping[str, tuple[Any, Any]]


def described(machine: Machine[Any, Any], state: Any) -> Mapping[str, Any]:
    """``machine.describe(state)``, or, when describe raises, the raw state and what it raised
    (a report is never lost to a state describe cannot render)."""
    try:
        return machine.describe(state)
    except Exception as exc:
        return {"state": repr(state), "describe raised": f"{type(exc).__name__}: {exc}"}


def state_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose described value differs (a missing field reads as ``None``)."""
    keys = list(dict.fromkeys([*before, *after]))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


def shortest_trace(exploration: Exploration, state: Any) -> list[TraceStep]:
    """The shortest sequence of steps from the initial state to ``state`` (or, with symmetry
    reduction, to a renaming of it), replayed on concrete states so the actions can be applied
    one after another to ``machine.initial_state()``."""
    machine = exploration.machine
    target = exploration.index_of(state)
    path: list[int] = []
    i = target
    while i != -1:
        path.append(i)
        i = exploration.parents[i]
    path.reverse()
    canon = machine.canonical if exploration.symmetry else (lambda s: s)
    current = machine.initial_state()
    out: list[TraceStep] = []
    for nxt in path[1:]:
        wanted = exploration.state_list[nxt]
        for action in machine.actions(current):
            result = machine.step(current, action)
            if isinstance(result, Stepped) and canon(result.state) == wanted:
                before = described(machine, current)
                current = result.state
                out.append(
                    TraceStep(
                        action,
                        _label(machine, action),
                        result.transition,
                        result.outputs,
                        current,
                        state_diff(before, described(machine, current)),
                    )
                )
                break
        else:  # pragma: no cover - would mean canonical() is not a true symmetry
            raise RuntimeError(f"no action from the replayed state reaches explored state {nxt}")
    return out


def _label(machine: Machine[Any, Any], action: Any) -> str:
    try:
        return machine.action_label(action)
    except Exception:
        return repr(action)


def violation_trace(exploration: Exploration, violation: Violation) -> list[TraceStep]:
    """The shortest trace of ``violation``: to its state, followed, for a step violation, by
    the offending step (replayed; a step that raises shows what it raised as its output)."""
    machine = exploration.machine
    steps = shortest_trace(exploration, exploration.state_list[violation.state_index])
    if not violation.step:
        return steps
    state = steps[-1].state if steps else machine.initial_state()
    if not steps and exploration.symmetry:
        state = machine.initial_state()
    action = violation.action
    label = _label(machine, action) if action is not None else "(no action)"
    try:
        result = machine.step(state, action)
    except Exception as exc:
        steps.append(TraceStep(action, label, "(raised)", (("raised", f"{type(exc).__name__}: {exc}"),), state, {}))
        return steps
    if isinstance(result, Rejected):
        steps.append(TraceStep(action, label, "(rejected)", (("rejected", result.kind, result.detail),), state, {}))
        return steps
    before = described(machine, state)
    diff = state_diff(before, described(machine, result.state))
    steps.append(TraceStep(action, label, result.transition, result.outputs, result.state, diff))
    return steps


def stranded_violation(exploration: Exploration) -> Violation | None:
    """The shallowest stranded state of ``exploration`` as a state :class:`Violation` named
    ``stranded`` (its message lists the obligations no sequence of steps can clear); without
    one, the shallowest state stranded once the give-ups are left out, named ``stranded without
    give-ups``; ``None`` when no state is either (or the search was incomplete, so neither was
    judged). Its :func:`violation_trace` is the shortest trace to that state."""
    e = exploration
    for name, indexes, why in (
        (STRANDED, e.stranded, "no sequence of steps can clear"),
        (STRANDED_WITHOUT_GIVE_UPS, e.stranded_without_give_ups, "only a give-up can clear"),
    ):
        if indexes:
            i = min(indexes, key=lambda k: e.depths[k])
            owed = "; ".join(str(o) for o in e.machine.obligations(e.state_list[i]))
            return Violation(name, f"obligations {why}: {owed}", i, e.depths[i])
    return None


def format_trace(exploration: Exploration, steps: list[TraceStep]) -> str:
    """Human-readable trace: the initial state, then each action with its changed fields."""
    machine = exploration.machine
    lines = ["  initial state:"]
    for key, value in described(machine, machine.initial_state()).items():
        lines.append(f"      {key} = {value!r}")
    for n, st in enumerate(steps, 1):
        lines.append(f"  {n}. {st.label}  [{st.transition}]")
        for key, (before, after) in st.diff.items():
            lines.append(f"      {key}: {before!r} -> {after!r}")
        for output in st.outputs:
            lines.append(f"      => {output!r}")
    return "\n".join(lines)
