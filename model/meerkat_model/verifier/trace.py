"""Shortest counterexample traces, replayed as concrete steps from the initial state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meerkat_model.machine import Stepped
from meerkat_model.verifier.exploration import Exploration


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
                before = machine.describe(current)
                current = result.state
                out.append(
                    TraceStep(
                        action,
                        machine.action_label(action),
                        result.transition,
                        result.outputs,
                        current,
                        state_diff(before, machine.describe(current)),
                    )
                )
                break
        else:  # pragma: no cover - would mean canonical() is not a true symmetry
            raise RuntimeError(f"no action from the replayed state reaches explored state {nxt}")
    return out


def format_trace(exploration: Exploration, steps: list[TraceStep]) -> str:
    """Human-readable trace: the initial state, then each action with its changed fields."""
    machine = exploration.machine
    lines = ["  initial state:"]
    for key, value in machine.describe(machine.initial_state()).items():
        lines.append(f"      {key} = {value!r}")
    for n, st in enumerate(steps, 1):
        lines.append(f"  {n}. {st.label}  [{st.transition}]")
        for key, (before, after) in st.diff.items():
            lines.append(f"      {key}: {before!r} -> {after!r}")
        for output in st.outputs:
            lines.append(f"      => {output!r}")
    return "\n".join(lines)
