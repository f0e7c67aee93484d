"""Checking one runtime's operation-registry events against the model's declared transitions.

Each operation's status is followed through its events: an event is explained when its rule is a
transition the ops model declares for the entity it moves (``operation`` or ``registry``), the
entity's status before is one of the declaration's sources (the status the previous event left
it in; ``Absent`` for an operation not registered yet, or removed by ``collect_completed`` or
eviction) and its status after is the declaration's target. Completion sequence numbers must
grow by one with every terminal transition, never reused (``crash_recover`` resumes from the
stored next number). A new registration of the session (a ``register`` event) drops the
operations that were not terminal, as recovery does; a ``reconcile`` (an in-doubt session
adopting the store) keeps them: the registry lives in memory and reconciling does not touch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meerkat_model.machine import TransitionDecl
from meerkat_model.ops.transitions import ALL_TRANSITIONS
from meerkat_runtime.events.event import ABSENT, LifecycleEvent

from meerkat_conformance.trace.session_replay import Unexplained

_DECLS: dict[tuple[str, str], list[TransitionDecl]] = {}
for _decl in ALL_TRANSITIONS:
    _DECLS.setdefault((_decl.name, _decl.entity), []).append(_decl)

OPS_RULES = frozenset(name for name, _ in _DECLS)
_TERMINAL = frozenset({"Completed", "Failed", "Aborted", "Cancelled", "Retired", "Terminated"})


@dataclass(slots=True)
class OpsReplay:
    """The declared-transition view of one runtime's registry while its events are replayed."""

    statuses: dict[str, str] = field(default_factory=dict)
    registry: str = "Idle"
    next_seq: int = 1

    def session_registered(self) -> None:
        """A new registration: non-terminal operations are gone (their tasks died), no barrier."""
        self.statuses = {oid: status for oid, status in self.statuses.items() if status in _TERMINAL}
        self.registry = "Idle"

    def apply(self, event: LifecycleEvent) -> None:
        rule = event.rule
        if not any(name == rule for name, _ in _DECLS):
            raise Unexplained(f"unknown operation-registry rule {rule!r}")
        saved = (dict(self.statuses), self.registry, self.next_seq)
        try:
            self._apply(event)
        except Unexplained:
            self.statuses, self.registry, self.next_seq = saved
            raise

    def _apply(self, event: LifecycleEvent) -> None:
        details = event.details
        if event.rule == "crash_recover":
            self.session_registered()
            ops = details.get("operations", {})
            if isinstance(ops, dict):
                self.statuses = {oid: str(v[0]).capitalize() for oid, v in ops.items() if isinstance(v, list)}
            next_seq = details.get("next_seq")
            if isinstance(next_seq, int) and next_seq < self.next_seq:
                raise Unexplained(f"recovery resumes at completion sequence {next_seq}, below {self.next_seq}")
            if isinstance(next_seq, int):
                self.next_seq = next_seq
            return
        self._check_listed(event)
        for change in event.changes:
            if change.entity == "operation":
                self._move(event.rule, "operation", change.before, change.after, self.statuses.get(change.id, ABSENT))
                self.statuses[change.id] = change.after
            elif change.entity == "registry":
                self._move(event.rule, "registry", change.before, change.after, self.registry)
                self.registry = change.after
        if not any(c.entity == "registry" for c in event.changes) and (event.rule, "registry") in _DECLS:
            self._move(event.rule, "registry", self.registry, self.registry, self.registry)
        self._sequences(event, details)
        for gone in (*_strings(details.get("evicted")), *_strings(details.get("collected"))):
            self.statuses.pop(gone, None)
        if details.get("barrier_done"):
            self.registry = "Idle"

    def _check_listed(self, event: LifecycleEvent) -> None:
        """The event lists the operations the model's transition moves, no more, no fewer: a
        per-operation call exactly one (the operation it names), ``terminate_owner`` every
        operation that was not terminal, a registry-wide call none."""
        rule = event.rule
        listed = [c.id for c in event.changes if c.entity == "operation"]
        for change in event.changes:
            if change.entity not in ("operation", "registry"):
                raise Unexplained(f"an operation-registry event cannot move a {change.entity!r}")
        if rule == "terminate_owner":
            active = sorted(oid for oid, status in self.statuses.items() if status not in _TERMINAL)
            if sorted(listed) != active:
                raise Unexplained(
                    f"terminate_owner moves every operation that is not terminal ({active}); the event lists {listed}"
                )
        elif (rule, "operation") in _DECLS:
            if len(listed) != 1:
                raise Unexplained(f"{rule} moves one operation; the event's changes list {len(listed)}")
            named = event.details.get("operation")
            if isinstance(named, str) and named != listed[0]:
                raise Unexplained(f"the event names operation {named!r} but moves {listed[0]!r}")
        elif listed:
            raise Unexplained(f"the model's {rule} moves no operation; the event moves {listed}")

    def _move(self, rule: str, entity: str, before: str, after: str, current: str) -> None:
        if before != current:
            raise Unexplained(f"the event moves {entity} from {before}, but the model has it {current}")
        decls = _DECLS.get((rule, entity))
        if not decls:
            raise Unexplained(f"the model declares no {rule!r} move of a {entity}")
        for decl in decls:
            target = decl.target or before
            if before in decl.sources and after == target:
                return
        allowed = "; ".join(f"{'/'.join(d.sources)} -> {d.target or '(unchanged)'}" for d in decls)
        raise Unexplained(f"{rule} cannot move a {entity} {before} -> {after} (the model allows {allowed})")

    def _sequences(self, event: LifecycleEvent, details: Any) -> None:
        seqs: list[int] = []
        seq = details.get("seq")
        if isinstance(seq, int):
            seqs.append(seq)
        many = details.get("seqs")
        if isinstance(many, dict):
            seqs.extend(v for v in many.values() if isinstance(v, int))
        for value in sorted(seqs):
            if value != self.next_seq:
                raise Unexplained(f"completion sequence number {value} where the model issues {self.next_seq}")
            self.next_seq += 1

    def described(self) -> dict[str, Any]:
        return {"registry": self.registry, "next_seq": self.next_seq, "operations": dict(self.statuses)}

    def enabled(self) -> list[str]:
        out: list[str] = []
        for decl in ALL_TRANSITIONS:
            if decl.entity == "registry" and self.registry in decl.sources and decl.name not in out:
                out.append(decl.name)
            live = ABSENT in decl.sources or any(s in decl.sources for s in self.statuses.values())
            if decl.entity == "operation" and decl.name not in out and live:
                out.append(decl.name)
        return out


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
