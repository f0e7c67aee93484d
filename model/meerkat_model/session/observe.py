"""What an observer sees of a model state, in the runtime's words (snake_case names).

``observe(state)`` is the plain-data view the conformance harness compares with the runtime:

- ``registration``: ``"unregistered" | "queuing" | "attaching" | "active"``
- ``runtime_state``: ``None`` when unregistered, else ``"idle" | "attached" | "running" | "retired"
  | "stopped" | "destroyed"``
- ``inputs``: ``{id: {"phase", "attempts", "lane", "outcome"}}`` for the inputs the registered
  session holds in memory; ``outcome`` is ``None`` or ``"consumed"``, ``"superseded:<by>"``,
  ``"coalesced:<aggregate>"``, ``"abandoned:<reason>"``; ``attempts`` is ``None`` for a terminal
  input unless it was abandoned for exhausted attempts (then 3); ``lane`` only for Queued inputs
- ``queue`` / ``steer``: the input ids in each lane, in order; ``current_run``: the input of the
  run in flight or ``None``
- ``waiters``: ``{id: outcome}`` for every completion handle the callers hold (``"pending"`` or
  the resolved outcome: ``completed``, ``completed_without_result``, ``cancelled``,
  ``abandoned_max_attempts``, ``abandoned_superseded``, ``abandoned_coalesced``,
  ``terminated_retired|reset|stopped|destroyed|unregistered``)
- ``stored``: ``{"record": phase or None, "inputs": {id: {"phase", "attempts", "outcome"}}}``
"""

from __future__ import annotations

import enum
from typing import Any

from meerkat_model.action_record import action_name
from meerkat_model.session.actions import Accept, SessionAction, WriteFails
from meerkat_model.session.state import NO_ID, NO_KEY, NO_RECORD, Lane, Row, SessionState, Waiter
from meerkat_model.vocab.statuses import AbandonKind, InputPhase, RegistrationPhase, RuntimePhase


def decoded(kind: type[enum.IntEnum], value: Any) -> str:
    """The lower-case name of ``value`` in ``kind``, or the raw value in angle brackets when it
    names none (a malformed state is shown as it is, never refused)."""
    try:
        return kind(value).name.lower()
    except (ValueError, TypeError):
        return f"<{value!r}>"


def outcome_of(row: Row) -> str | None:
    if row.phase is InputPhase.CONSUMED:
        return "consumed"
    if row.phase in (InputPhase.SUPERSEDED, InputPhase.COALESCED):
        return f"{decoded(InputPhase, row.phase)}:{row.ref}"
    if row.phase is InputPhase.ABANDONED:
        return f"abandoned:{decoded(AbandonKind, row.reason)}"
    return None


def attempts_of(row: Row) -> int | None:
    """The attempt count an observer can rely on: ``None`` for a terminal input (the model forgets
    it), except an input abandoned for exhausted attempts (3, part of its outcome)."""
    if row.phase.is_terminal and row.reason != AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
        return None
    return row.attempts


def _row_view(row: Row) -> dict[str, Any]:
    return {"phase": decoded(InputPhase, row.phase), "attempts": attempts_of(row), "outcome": outcome_of(row)}


def observe(state: SessionState) -> dict[str, Any]:
    m = state.memory
    inputs: dict[int, dict[str, Any]] = {}
    if m is not None:
        for i, row in enumerate(m.rows):
            attr = state.attrs[i]
            if row is None or attr is None:
                continue
            view = _row_view(row)
            view["lane"] = decoded(Lane, attr.lane) if row.phase is InputPhase.QUEUED else None
            inputs[i] = view
    record = state.durable.record
    return {
        "registration": decoded(RegistrationPhase, m.registration if m is not None else RegistrationPhase.UNREGISTERED),
        "runtime_state": decoded(RuntimePhase, m.phase) if m is not None else None,
        "inputs": inputs,
        "queue": list(m.queue) if m is not None else [],
        "steer": list(m.steer) if m is not None else [],
        "current_run": m.run if m is not None and m.run != NO_ID else None,
        "waiters": {i: decoded(Waiter, w) for i, w in enumerate(state.waiters) if w is not Waiter.NONE},
        "stored": {
            "record": decoded(RuntimePhase, record) if record != NO_RECORD else None,
            "inputs": {i: _row_view(r) for i, r in enumerate(state.durable.rows) if r is not None},
        },
    }


def describe(state: SessionState) -> dict[str, Any]:
    """A flat field -> value view for traces and diffs."""
    view = observe(state)
    out: dict[str, Any] = {
        "registration": view["registration"],
        "runtime": view["runtime_state"],
        "queue": view["queue"],
        "steer": view["steer"],
        "run": view["current_run"],
        "stored.record": view["stored"]["record"],
        "destroyed": state.destroyed,
    }
    m = state.memory
    if m is not None and m.run != NO_ID:
        out["pre_run"] = decoded(RuntimePhase, m.pre_run)
    for i, attr in enumerate(state.attrs):
        if attr is None:
            continue
        out[f"input{i}.attrs"] = _attrs_label(attr.lane, attr.idem, attr.skey, attr.ephemeral)
        if i in view["inputs"]:
            out[f"input{i}"] = _row_text(view["inputs"][i])
        stored = view["stored"]["inputs"].get(i)
        if stored is not None:
            out[f"stored{i}"] = _row_text(stored)
        if state.durable.receipts[i]:
            out[f"stored{i}.receipt"] = True
        if i in view["waiters"]:
            out[f"waiter{i}"] = view["waiters"][i]
    return out


def _row_text(view: dict[str, Any]) -> str:
    text = str(view["outcome"] or view["phase"])
    return text if view["attempts"] is None else f"{text} attempts={view['attempts']}"


def _attrs_label(lane: int, idem: int, skey: int, ephemeral: bool) -> str:
    parts = ["steer" if lane else "queue"]
    if idem != NO_KEY:
        parts.append(f"idem={idem}")
    if skey != NO_KEY:
        parts.append(f"skey={skey}")
    if ephemeral:
        parts.append("ephemeral")
    return ",".join(parts)


def action_label(action: SessionAction) -> str:
    """``name(args)``; accept spells out its attributes; a failing write: ``write_fails[<inner>]``."""
    if type(action) is Accept:
        i, lane, idem, skey, coalesce, ephemeral = action
        extra = ",coalesce" if coalesce else ""
        return f"accept({i}:{_attrs_label(lane, idem, skey, bool(ephemeral))}{extra})"
    if type(action) is WriteFails:
        return f"write_fails[{action_label(action.inner)}]"
    return f"{action_name(action)}({', '.join(str(a) for a in action)})"
