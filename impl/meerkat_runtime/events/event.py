"""The typed event of one committed transition, and its JSON form.

Every field:

* ``seq`` — a positive integer, strictly increasing per runtime id within one machine (the
  emitting ``MeerkatMachine``, named by ``source``), in commit order; never reused by it;
* ``time`` — wall-clock seconds (``time.time()``) when the event was published;
* ``machine`` — ``"session"`` (input, run, runtime control, registration) or ``"ops"`` (the
  session's operation registry);
* ``rule`` — the transition's name as the reference model spells it (``executor_failed``,
  ``stop_with_loop``, ``complete_operation``, ...; the catalogue in docs/events.md);
* ``session_id``, ``runtime_id`` — the session and its canonical runtime id;
* ``source`` — the emitting machine: its ownership owner id (or ``machine``) and a random suffix
  minted with the machine, so every machine instance (every process) is its own source;
* ``fence`` — the lease token of the session's current registration (``None`` without
  ownership): it grows with every claim, so it orders the registrations of several workers;
* ``before``, ``after`` — for a session event the runtime phase (``Idle``, ``Attached``,
  ``Running``, ...; ``Unregistered`` when the session is not in memory), for an operation the
  operation's status (``Absent`` before it is registered), for a registry-wide call the
  registry's (``Idle`` or ``Waiting``);
* ``changes`` — every entity the transition moved: ``Change(entity, id, before, after)`` with
  ``entity`` one of ``input``, ``runtime``, ``registration``, ``operation``, ``registry``
  (always written, ``[]`` when nothing moved; :meth:`LifecycleEvent.from_dict` refuses a line
  without it);
* ``run_id`` — the run a run transition belongs to;
* ``store`` — the durable authority the session's state lives in (a SQLite file's path, a
  store's own key — a PostgreSQL store's is its stored id, the same on every host — or an id
  unique to one process and store object): a runtime id names one
  history only within one store;
* ``details`` — rule-specific plain data (an accept's lane and keys, a failure's error type
  and message, an outcome, completion sequence numbers, the retry policy's attempt limit).

Statuses are spelled as the model spells them (``Queued``, ``AppliedPendingConsumption``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
"""The ``v`` field of an event's JSON form."""

UNREGISTERED = "Unregistered"
ABSENT = "Absent"


def spell(value: str) -> str:
    """A runtime status value (``applied_pending_consumption``) as the model spells it
    (``AppliedPendingConsumption``)."""
    spelled = _SPELLED.get(value)
    if spelled is None:
        spelled = _SPELLED[value] = "".join(part.capitalize() for part in value.split("_"))
    return spelled


_SPELLED: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Change:
    """One entity a transition moved: ``entity`` (``input``, ``runtime``, ``registration``,
    ``operation``, ``registry``), its id, its status before and after."""

    entity: str
    id: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One committed transition (see the module docstring for every field)."""

    seq: int
    time: float
    machine: str
    rule: str
    session_id: str
    runtime_id: str
    source: str
    fence: int | None
    before: str
    after: str
    changes: tuple[Change, ...] = ()
    run_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    store: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data (the event log's line)."""
        return {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "time": self.time,
            "machine": self.machine,
            "rule": self.rule,
            "session": self.session_id,
            "runtime": self.runtime_id,
            "source": self.source,
            "fence": self.fence,
            "before": self.before,
            "after": self.after,
            "changes": [[c.entity, c.id, c.before, c.after] for c in self.changes],
            "run": self.run_id,
            "details": dict(self.details),
            "store": self.store,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, default=str)

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> LifecycleEvent:
        """Read an event's JSON form; ``ValueError`` naming the field that is wrong."""
        if doc.get("v") != FORMAT_VERSION:
            raise ValueError(f"field 'v': expected event format {FORMAT_VERSION}, got {doc.get('v')!r}")
        seq = _field(doc, "seq", int)
        if seq < 1:
            raise ValueError(f"field 'seq': must be a positive integer, got {seq}")
        time_value = doc.get("time")
        if isinstance(time_value, bool) or not isinstance(time_value, int | float):
            raise ValueError(f"field 'time': expected a number, got {time_value!r}")
        fence = doc.get("fence")
        if fence is not None and (isinstance(fence, bool) or not isinstance(fence, int)):
            raise ValueError(f"field 'fence': expected an integer or null, got {fence!r}")
        if "changes" not in doc:
            raise ValueError("field 'changes': missing (every event lists the entities it moved, [] for none)")
        raw_changes = doc["changes"]
        if not isinstance(raw_changes, list):
            raise ValueError(f"field 'changes': expected a list, got {raw_changes!r}")
        changes: list[Change] = []
        for n, raw in enumerate(raw_changes):
            if not isinstance(raw, list) or len(raw) != 4 or not all(isinstance(part, str) for part in raw):
                raise ValueError(f"field 'changes[{n}]': expected [entity, id, before, after] strings")
            changes.append(Change(*raw))
        run_id = doc.get("run")
        if run_id is not None and not isinstance(run_id, str):
            raise ValueError(f"field 'run': expected a string or null, got {run_id!r}")
        details = doc.get("details", {})
        if not isinstance(details, dict):
            raise ValueError("field 'details': expected an object")
        return LifecycleEvent(
            seq=seq,
            time=float(time_value),
            machine=_field(doc, "machine", str),
            rule=_field(doc, "rule", str),
            session_id=_field(doc, "session", str),
            runtime_id=_field(doc, "runtime", str),
            source=_field(doc, "source", str),
            fence=fence,
            before=_field(doc, "before", str),
            after=_field(doc, "after", str),
            changes=tuple(changes),
            run_id=run_id,
            details=details,
            store=str(doc.get("store", "")),
        )


def _field(doc: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r}: expected {kind.__name__}, got {value!r}")
    return value
