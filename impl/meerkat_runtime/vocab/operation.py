"""Async-operation vocabulary: kinds, statuses, the registration spec and terminal outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.vocab.ids import OperationId


class OperationKind(enum.Enum):
    """What an operation is. Only mob-member children expect a peer channel."""

    MOB_MEMBER_CHILD = "mob_member_child"
    BACKGROUND_TOOL_OP = "background_tool_op"


class OperationStatus(enum.Enum):
    """Lifecycle status of one operation. ``ABSENT`` means "not tracked"."""

    ABSENT = "absent"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    RETIRING = "retiring"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    RETIRED = "retired"
    TERMINATED = "terminated"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        """Provisioning, Running or Retiring: counts against ``max_concurrent``."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({OperationStatus.PROVISIONING, OperationStatus.RUNNING, OperationStatus.RETIRING})
TERMINAL_STATUSES = frozenset(
    {
        OperationStatus.COMPLETED,
        OperationStatus.FAILED,
        OperationStatus.ABORTED,
        OperationStatus.CANCELLED,
        OperationStatus.RETIRED,
        OperationStatus.TERMINATED,
    }
)


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """Registration payload of one operation."""

    id: OperationId
    kind: OperationKind
    owner_session_id: str
    display_name: str
    source_label: str = ""
    child_session_id: str | None = None
    expect_peer_channel: bool = False


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The result a completed operation reports."""

    id: str
    content: str
    is_error: bool = False
    duration_ms: int = 0
    tokens_used: int = 0


@dataclass(frozen=True, slots=True)
class OperationPeerHandle:
    """How to reach the peer of a mob-member child once it reported ``peer_ready``."""

    peer_name: str
    address: str
    peer_id: str | None = None


@dataclass(frozen=True, slots=True)
class OperationProgressUpdate:
    """A progress report. Only the count of reports is lifecycle state; the payload is advisory."""

    message: str | None = None
    percent: float | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    result: OperationResult

    @property
    def status(self) -> OperationStatus:
        return OperationStatus.COMPLETED


@dataclass(frozen=True, slots=True)
class Failed:
    error: str

    @property
    def status(self) -> OperationStatus:
        return OperationStatus.FAILED


@dataclass(frozen=True, slots=True)
class Aborted:
    reason: str | None = None

    @property
    def status(self) -> OperationStatus:
        return OperationStatus.ABORTED


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str | None = None

    @property
    def status(self) -> OperationStatus:
        return OperationStatus.CANCELLED


@dataclass(frozen=True, slots=True)
class Retired:
    @property
    def status(self) -> OperationStatus:
        return OperationStatus.RETIRED


@dataclass(frozen=True, slots=True)
class Terminated:
    reason: str

    @property
    def status(self) -> OperationStatus:
        return OperationStatus.TERMINATED


TerminalOutcome = Completed | Failed | Aborted | Cancelled | Retired | Terminated


def outcome_to_json(outcome: TerminalOutcome) -> dict[str, Any]:
    """Wire form of a terminal outcome, tagged by ``outcome_type``."""
    match outcome:
        case Completed(result=r):
            return {
                "outcome_type": "completed",
                "result": {
                    "id": r.id,
                    "content": r.content,
                    "is_error": r.is_error,
                    "duration_ms": r.duration_ms,
                    "tokens_used": r.tokens_used,
                },
            }
        case Failed(error=e):
            return {"outcome_type": "failed", "error": e}
        case Aborted(reason=reason):
            return {"outcome_type": "aborted", "reason": reason}
        case Cancelled(reason=reason):
            return {"outcome_type": "cancelled", "reason": reason}
        case Retired():
            return {"outcome_type": "retired"}
        case Terminated(reason=reason):
            return {"outcome_type": "terminated", "reason": reason}
    raise TypeError(f"not a terminal outcome: {outcome!r}")


def _opt_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"terminal outcome field {key!r} must be a string or null, got {value!r}")
    return value


def _req_str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError(f"terminal outcome field {key!r} must be a string, got {value!r}")
    return value


def outcome_from_json(doc: Any) -> TerminalOutcome:
    """Parse the wire form; raises ``ValueError`` naming what is malformed."""
    if not isinstance(doc, dict):
        raise ValueError(f"terminal outcome must be an object, got {type(doc).__name__}")
    tag = doc.get("outcome_type")
    if tag == "completed":
        r = doc.get("result")
        if not isinstance(r, dict):
            raise ValueError("completed outcome needs a 'result' object")
        rid, content = r.get("id"), r.get("content")
        is_error, duration, tokens = r.get("is_error", False), r.get("duration_ms", 0), r.get("tokens_used", 0)
        if not isinstance(rid, str) or not isinstance(content, str):
            raise ValueError("completed outcome result needs string 'id' and 'content'")
        if not isinstance(is_error, bool) or not isinstance(duration, int) or not isinstance(tokens, int):
            raise ValueError("completed outcome result has mistyped is_error/duration_ms/tokens_used")
        return Completed(OperationResult(rid, content, is_error, duration, tokens))
    if tag == "failed":
        return Failed(_req_str(doc, "error"))
    if tag == "aborted":
        return Aborted(_opt_str(doc, "reason"))
    if tag == "cancelled":
        return Cancelled(_opt_str(doc, "reason"))
    if tag == "retired":
        return Retired()
    if tag == "terminated":
        return Terminated(_req_str(doc, "reason"))
    raise ValueError(f"unknown outcome_type {tag!r}")
