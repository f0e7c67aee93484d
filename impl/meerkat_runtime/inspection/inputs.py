"""The stored input rows of one session, decoded for reading; nothing raised for a bad row.

A row that fails the store's integrity check is ``damaged``; an intact row this release
cannot decode is ``unreadable`` (with the decoder's reason); both keep their stored bytes.
Quarantined rows are listed apart (``RuntimeStore.load_quarantined``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.session.row_codec import RowFormatError, completion_to_json, decode_record, terminal_to_json
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import QuarantinedRow

DAMAGED = "damaged"
"""The status shown for a row that failed the store's integrity check."""
UNREADABLE = "unreadable"
"""The status shown for an intact row this release cannot decode."""
QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class StoredInput:
    """One input row as stored: decoded (``record``) or, if not, why (``problem``)."""

    input_id: str
    payload: bytes
    intact: bool
    record: InputRecord | None = None
    problem: str | None = None

    @property
    def status(self) -> str:
        if not self.intact:
            return DAMAGED
        return self.record.phase.value if self.record is not None else UNREADABLE


def session_inputs(store: RuntimeStore, runtime_id: str) -> list[StoredInput]:
    """Every input row of ``runtime_id``, ordered by input id (``scan_input_states``)."""
    found: list[StoredInput] = []
    for row in store.scan_input_states(runtime_id):
        if not row.intact:
            found.append(StoredInput(row.input_id, row.payload, False, problem="failed its integrity check"))
            continue
        try:
            found.append(StoredInput(row.input_id, row.payload, True, decode_record(row.payload)))
        except RowFormatError as exc:
            found.append(StoredInput(row.input_id, row.payload, True, problem=str(exc)))
    return found


def _failure(record: InputRecord) -> dict[str, str] | None:
    error = record.last_error
    return None if error is None else {"type": error.error_type, "message": error.message}


def summary(stored: StoredInput) -> dict[str, Any]:
    """The fields an operator lists for one input (JSON-ready)."""
    record = stored.record
    doc: dict[str, Any] = {"input_id": stored.input_id, "status": stored.status, "problem": stored.problem}
    if record is None:
        return doc | {"bytes": len(stored.payload)}
    return doc | {
        "kind": record.input.kind,
        "lane": record.lane.value,
        "attempts": record.attempts,
        "recovery_count": record.recovery_count,
        "admission_seq": record.admission_seq,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "last_run_id": record.last_run_id,
        "last_error": _failure(record),
        "result": completion_to_json(record.outcome) if record.outcome is not None else None,
        "terminal": terminal_to_json(record.terminal) if record.terminal is not None else None,
        "idempotency_key": record.input.header.idempotency_key,
    }


def stored_document(payload: bytes) -> Any:
    """The stored row as its JSON document, or its text when it is not JSON."""
    text = payload.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def quarantined_summary(row: QuarantinedRow) -> dict[str, Any]:
    return {
        "input_id": row.input_id,
        "status": QUARANTINED,
        "intact": row.intact,
        "reason": row.reason,
        "quarantined_at": row.quarantined_at,
        "bytes": len(row.payload),
    }


@dataclass(frozen=True, slots=True)
class FoundInput:
    """Where :func:`find_input` found an input: its runtime, and the row or quarantined row."""

    runtime_id: str
    stored: StoredInput | None = None
    quarantined: QuarantinedRow | None = None


def find_input(store: RuntimeStore, input_id: str, runtime_ids: list[str]) -> list[FoundInput]:
    """Every place among ``runtime_ids`` that holds ``input_id`` (a row or a quarantined row)."""
    found: list[FoundInput] = []
    for runtime_id in runtime_ids:
        for stored in session_inputs(store, runtime_id):
            if stored.input_id == input_id:
                found.append(FoundInput(runtime_id, stored=stored))
        for row in store.load_quarantined(runtime_id):
            if row.input_id == input_id:
                found.append(FoundInput(runtime_id, quarantined=row))
    return found
