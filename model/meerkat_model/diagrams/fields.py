"""What each field of ``machine.describe(state)`` means, per catalog machine.

The state explorer shows these next to every value. Field names are matched against patterns
in which ``{i}`` stands for an id (``op[{i}]`` matches ``op[0]`` and ``op[1]``); a test checks that
every field any reachable state of a catalog machine describes has a meaning here, so a new
field cannot appear unexplained.
"""

from __future__ import annotations

import re
from functools import cache

FIELD_DOCS: dict[str, dict[str, str]] = {
    "ops": {
        "op[{i}]": "operation id {i}: its status (absent: not tracked), kind and flags (peer_ready, reported "
        "progress, pending watchers); once terminal, its outcome and completion sequence number",
        "registration_order": "the non-terminal operation ids in registration order (the order terminate_owner "
        "follows)",
        "active_count": "operations Provisioning, Running or Retiring (counted against max_concurrent)",
        "completed_order": "terminal operations kept for collection, oldest first (FIFO retention up to "
        "max_completed, plus members of an active wait_all barrier)",
        "barrier": "members of the active wait_all barrier in request order (None: no barrier)",
        "feed_seqs": "completion sequence numbers in the completion feed, oldest first",
        "watermark": "highest completion sequence number pushed to the feed",
        "next_seq": "the completion sequence number the next terminal transition gets",
        "disk": "the last durable write: operations on disk, completion order and next sequence number "
        "(None: nothing written yet); recovery rebuilds memory from it",
    },
    "session": {
        "registration": "registration phase of the session in this process (unregistered: not in memory)",
        "runtime": "runtime phase in memory (None: the session is not registered)",
        "queue": "input ids waiting in the queue lane, in order",
        "steer": "input ids waiting in the steer lane (drained before the queue lane), in order",
        "run": "the input of the run in flight (None: no run)",
        "pre_run": "the runtime phase the run in flight started from (it returns there when the run ends)",
        "stored.record": "the runtime phase written in the store (None: nothing stored yet)",
        "destroyed": "set once Destroyed has been committed (Destroyed is absorbing)",
        "input{i}.attrs": "input {i}'s attributes fixed at accept: lane, idempotency key, supersession key, ephemeral",
        "input{i}": "input {i} as the session holds it in memory: status, or outcome once terminal, and attempts",
        "stored{i}": "input {i}'s row in the store: status or outcome, and attempts",
        "stored{i}.receipt": "the boundary receipt of input {i}'s run is stored (recovery consumes the input "
        "instead of replaying it)",
        "waiter{i}": "input {i}'s completion handle as its caller holds it: pending, or how it resolved",
    },
}


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("".join("(?P<i>[0-9]+)" if part == "{i}" else re.escape(part) for part in _split(pattern)))


def _split(pattern: str) -> list[str]:
    return [part for part in re.split(r"(\{i\})", pattern) if part]


def field_doc(machine: str, field: str) -> str | None:
    """The meaning of ``field`` of catalog machine ``machine``, ids filled in; ``None`` when no
    pattern matches."""
    for pattern, doc in FIELD_DOCS.get(machine, {}).items():
        match = _compiled(pattern).fullmatch(field)
        if match:
            ident = match.groupdict().get("i")
            return doc.replace("{i}", ident) if ident is not None else doc
    return None
