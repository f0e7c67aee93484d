"""Wire format of persisted input rows (version 2) and of the machine lifecycle record.

An input row is one JSON object::

    {"row_version": 2, "input_id": ..., "phase": "queued", "lane": "queue"|"steer",
     "admission_seq": int, "attempts": int, "recovery_count": int,
     "terminal": null | {"outcome_type": "consumed"|"superseded"|"coalesced"|"abandoned", ...},
     "outcome": null | {"kind": "completed"|"completed_without_result"|"cancelled"|
                        "abandoned"|"runtime_terminated", ...},
     "last_error": null | {"type": str, "message": str},
     "last_run_id": str|null, "last_boundary_sequence": int|null,
     "created_at": float, "updated_at": float,
     "history": [{"from": str|null, "to": str, "reason": str, "at": float}, ...],
     "input": {"kind": "prompt", "header": {...}, ...kind fields...}}

``outcome`` is what the input's waiters got, stored with its terminal commit (only on terminal
rows); ``last_error`` the failure of its last failed run. Optional fields whose value is null
(``terminal``, ``outcome``, ``last_error``, ``last_run_id``, ``last_boundary_sequence``, a
history entry's ``from``, the header's three keys) are written only when set: a missing one
reads as null, so the compact form is the same version and older releases read it too. Images
inside ``input`` are always blob references (``{"media_type", "blob_id"}``); inline image data
is never written. The lifecycle record is ``{"record_version": 1, "runtime_state": "idle"|..., "epoch_id": str|null}``.

Decoders read every version up to the current one (a version-1 row is a version-2 row without
``outcome`` and ``last_error``) and ignore fields they do not know; a newer version is refused,
never guessed. Every problem raises :class:`RowFormatError` naming the field.
:func:`encode_record_checked` encodes a row and checks it reads back (its input decoded by the
decoder recovery uses, its text within the limits recovery reads within), refusing a row that
would not come back as it went in (used before an accept is acknowledged).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.session.completion import (
    Abandoned as AbandonedOutcome,
)
from meerkat_runtime.session.completion import (
    Cancelled,
    Completed,
    CompletedWithoutResult,
    CompletionOutcome,
    RunFailure,
    RuntimeTerminated,
)
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import (
    BlobImage,
    ContinuationInput,
    ExternalEventInput,
    HandlingMode,
    Image,
    InlineImage,
    Input,
    InputHeader,
    InputOrigin,
    PeerMessageInput,
    PeerResponseInput,
    PeerResponseStatus,
    PromptInput,
)
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import (
    Abandoned,
    AbandonKind,
    AbandonReason,
    Coalesced,
    Consumed,
    Durability,
    InputLifecycleState,
    InputTerminalOutcome,
    Superseded,
)
from meerkat_runtime.vocab.json_limits import check_depth, check_size, encoded_may_nest_deeper, load_json
from meerkat_runtime.vocab.runtime import RuntimeState

ROW_VERSION = 2
"""The version this runtime writes; it reads every version from 1 up to this one."""
READABLE_ROW_VERSIONS = frozenset({1, 2})
LIFECYCLE_RECORD_VERSION = 1


class RowFormatError(ValueError):
    """A persisted row or record is malformed or has an unsupported version."""


# --- helpers ---------------------------------------------------------------------------------


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_PROBE: dict[str, Any] = {
    "text": 'caf\u00e9 \u2603 \u2028 \U0001f600 "q" \\ \n\t\x00\x1f',
    "nested": [1, -2, 3.5, 1e300, -0.0, True, False, None, {"k": [], "l": {}, "m": [[{"n": "o"}]]}],
    "": {"a": [10**20]},
}
"""A document whose text the C encoder must write exactly as the standard encoder does."""


def _chunk_encoder(standard: json.JSONEncoder) -> Callable[[Any, int], Sequence[str]] | None:
    """The standard library's C encoder with ``standard``'s options (compact separators, no
    ASCII escaping, its ``allow_nan``), called directly: the same text as ``standard.encode``
    without its per-call set-up and without its check for circular references. ``None`` where
    the C encoder is missing, cannot be built with these arguments, or does not write the
    standard text for :data:`_PROBE` (nor, refusing non-finite numbers, refuse NaN): the
    encoder is private to the ``json`` module and its signature is checked, never assumed (the
    reference text is the standard encoder's pure-Python form, which does not use it)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    nan = {"nan": float("nan")}
    try:
        chunks: Callable[[Any, int], Sequence[str]] = make(
            None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, standard.allow_nan
        )
        if "".join(chunks(_PROBE, 0)) != "".join(standard.iterencode(_PROBE)):
            return None
        if standard.allow_nan:
            return chunks if "".join(chunks(nan, 0)) == "".join(standard.iterencode(nan)) else None
        try:
            chunks(nan, 0)
        except ValueError:
            return chunks
    except Exception:
        return None
    return None


_RowEncoders = tuple[json.JSONEncoder, Callable[[Any, int], Sequence[str]] | None]
_row_encoders_built: dict[tuple[bool, object], _RowEncoders] = {}


def _row_encoders(allow_nan: bool) -> _RowEncoders:
    """The options every row text is written with — compact separators, no ASCII escaping,
    ``allow_nan`` — as the standard encoder, and that encoder's C form (:func:`_chunk_encoder`,
    ``None`` where it is not usable). Built and probed once per ``allow_nan`` and C encoder
    constructor (``json.encoder.c_make_encoder`` as found now: a different one, or none, is
    probed afresh), so the whole-document and the field-by-field encoders share one probe."""
    key = (allow_nan, getattr(json.encoder, "c_make_encoder", None))
    built = _row_encoders_built.get(key)
    if built is None:
        standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
        built = _row_encoders_built[key] = (standard, _chunk_encoder(standard))
    return built


def _row_dumps(allow_nan: bool) -> Callable[[dict[str, Any]], bytes]:
    """The encoder of rows and records: compact UTF-8 JSON text, exactly what
    ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)``
    writes, through :func:`_chunk_encoder` where it is usable, else through that encoder.
    The C encoder skips the check for circular references: every document encoded here is
    built afresh from fields checked to be strings, numbers and flags, so none can contain
    itself (one that did anyway raises ``RecursionError``; through the standard encoder,
    ``ValueError``)."""
    standard, chunks = _row_encoders(allow_nan)
    if chunks is None:
        encode = standard.encode

        def dumps_standard(doc: dict[str, Any]) -> bytes:
            return encode(doc).encode()

        return dumps_standard

    def dumps(doc: dict[str, Any]) -> bytes:
        return "".join(chunks(doc, 0)).encode()

    return dumps


_dumps = _row_dumps(allow_nan=True)
_dumps_strict = _row_dumps(allow_nan=False)
""":func:`_dumps` refusing a non-finite number (``ValueError``; the same text for every finite
document)."""


_MISSING: Any = object()


def _get(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = doc.get(key, _MISSING)
    if type(value) is kind:  # the common case: exactly the type asked for (never bool for int)
        return value
    if value is _MISSING:
        if optional:
            return None
        raise RowFormatError(f"missing field {key!r}")
    if value is None and optional:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise RowFormatError(f"field {key!r} must be a number, got a boolean")
    if not isinstance(value, kind):
        raise RowFormatError(f"field {key!r} has type {type(value).__name__}")
    return value


def _json_object(data: bytes, not_json: str, not_object: str) -> dict[str, Any]:
    """Parse ``data`` as one JSON object; else raise :class:`RowFormatError` with the message
    ``not_json`` (followed by the parser's complaint) or ``not_object``."""
    try:
        doc: Any = load_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RowFormatError(f"{not_json}: {exc}") from None
    if not isinstance(doc, dict):
        raise RowFormatError(not_object)
    return doc


_members: dict[type, dict[Any, Any]] = {}
"""Per enum class, its ``_value2member_map_`` (read once: in Python 3.11 an attribute looked up on
an enum class goes through a hook, about 1,100 instructions)."""


def _enum(cls: Any, value: Any, what: str) -> Any:
    members = _members.get(cls)
    if members is None:
        members = _members[cls] = cls._value2member_map_
    member = members.get(value) if isinstance(value, str) else None
    if member is None:
        raise RowFormatError(f"unknown {what} {value!r}")
    return member


# --- inputs ----------------------------------------------------------------------------------


def _image_to_json(image: Image) -> dict[str, Any]:
    if isinstance(image, InlineImage):
        raise RowFormatError("inline image data must be moved to a blob store before it is persisted")
    return {"media_type": image.media_type, "blob_id": image.blob_id}


def _image_from_json(doc: Any) -> Image:
    if not isinstance(doc, dict):
        raise RowFormatError("image must be an object")
    return BlobImage(_get(doc, "media_type", str), _get(doc, "blob_id", str))


def input_to_json(item: Input) -> dict[str, Any]:
    h = item.header
    header: dict[str, Any] = {
        "id": h.id,
        "timestamp": h.timestamp,
        "origin": h.origin._value_,
        "durability": h.durability._value_,
    }
    if h.idempotency_key is not None:
        header["idempotency_key"] = h.idempotency_key
    if h.supersession_key is not None:
        header["supersession_key"] = h.supersession_key
    if h.correlation_id is not None:
        header["correlation_id"] = h.correlation_id
    doc: dict[str, Any] = {"kind": item.kind, "header": header}
    if isinstance(item, PromptInput):
        doc.update(text=item.text, handling_mode=item.handling_mode._value_)
        doc["images"] = [_image_to_json(i) for i in item.images]
    elif isinstance(item, ExternalEventInput):
        doc.update(
            event_type=item.event_type,
            payload=item.payload,
            handling_mode=item.handling_mode._value_,
            coalesce=item.coalesce,
        )
        doc["images"] = [_image_to_json(i) for i in item.images]
    elif isinstance(item, PeerMessageInput):
        doc.update(peer_id=item.peer_id, text=item.text, handling_mode=item.handling_mode._value_)
    elif isinstance(item, PeerResponseInput):
        doc.update(
            peer_id=item.peer_id,
            request_id=item.request_id,
            status=item.status._value_,
            text=item.text,
            mode=item.mode._value_ if item.mode is not None else None,
            coalesce=item.coalesce,
        )
    else:
        doc.update(reason=item.reason)
    return doc


def _header_from_json(doc: Any) -> InputHeader:
    if not isinstance(doc, dict):
        raise RowFormatError("input header must be an object")
    # Each field's common case (exactly the type asked for) is taken here; anything else goes
    # through _get, which accepts or refuses it as it does every field.
    get = doc.get
    hid = v if type(v := get("id")) is str else _get(doc, "id", str)
    at = v if type(v := get("timestamp")) is float else float(_get(doc, "timestamp", (int, float)))
    origin = v if type(v := get("origin")) is str else _get(doc, "origin", str)
    durability = v if type(v := get("durability")) is str else _get(doc, "durability", str)
    key = v if (v := get("idempotency_key")) is None or type(v) is str else _get(doc, "idempotency_key", str)
    supersession = v if (v := get("supersession_key")) is None or type(v) is str else _get(doc, "supersession_key", str)
    correlation = v if (v := get("correlation_id")) is None or type(v) is str else _get(doc, "correlation_id", str)
    return InputHeader(
        id=InputId(hid),
        timestamp=at,
        origin=_enum(InputOrigin, origin, "input origin"),
        durability=_enum(Durability, durability, "durability"),
        idempotency_key=key,
        supersession_key=supersession,
        correlation_id=correlation,
    )


def input_from_json(doc: Any) -> Input:
    if not isinstance(doc, dict):
        raise RowFormatError("input must be an object")
    kind = _get(doc, "kind", str)
    header = _header_from_json(doc.get("header"))
    if kind == PromptInput.kind:
        images = tuple(_image_from_json(i) for i in _get(doc, "images", list))
        mode = _enum(HandlingMode, _get(doc, "handling_mode", str), "handling mode")
        return PromptInput(header, _get(doc, "text", str), images, mode)
    if kind == ExternalEventInput.kind:
        images = tuple(_image_from_json(i) for i in _get(doc, "images", list))
        return ExternalEventInput(
            header,
            _get(doc, "event_type", str),
            _get(doc, "payload", str),
            images,
            _enum(HandlingMode, _get(doc, "handling_mode", str), "handling mode"),
            _get(doc, "coalesce", bool),
        )
    if kind == PeerMessageInput.kind:
        mode = _enum(HandlingMode, _get(doc, "handling_mode", str), "handling mode")
        return PeerMessageInput(header, _get(doc, "peer_id", str), _get(doc, "text", str), mode)
    if kind == PeerResponseInput.kind:
        raw_mode = _get(doc, "mode", str, optional=True)
        return PeerResponseInput(
            header,
            _get(doc, "peer_id", str),
            _get(doc, "request_id", str),
            _enum(PeerResponseStatus, _get(doc, "status", str), "peer response status"),
            _get(doc, "text", str),
            _enum(HandlingMode, raw_mode, "handling mode") if raw_mode is not None else None,
            _get(doc, "coalesce", bool),
        )
    if kind == ContinuationInput.kind:
        return ContinuationInput(header, _get(doc, "reason", str))
    raise RowFormatError(f"unknown input kind {kind!r}")


# --- terminal outcomes -----------------------------------------------------------------------


def terminal_to_json(outcome: InputTerminalOutcome) -> dict[str, Any]:
    if isinstance(outcome, Consumed):
        return {"outcome_type": "consumed"}
    if isinstance(outcome, Superseded):
        return {"outcome_type": "superseded", "superseded_by": outcome.superseded_by}
    if isinstance(outcome, Coalesced):
        return {"outcome_type": "coalesced", "aggregate_id": outcome.aggregate_id}
    return {
        "outcome_type": "abandoned",
        "reason": outcome.reason.kind.value,
        "attempts": outcome.reason.attempts,
    }


def terminal_from_json(doc: Any) -> InputTerminalOutcome:
    if not isinstance(doc, dict):
        raise RowFormatError("terminal outcome must be an object")
    tag = _get(doc, "outcome_type", str)
    if tag == "consumed":
        return Consumed()
    if tag == "superseded":
        return Superseded(InputId(_get(doc, "superseded_by", str)))
    if tag == "coalesced":
        return Coalesced(InputId(_get(doc, "aggregate_id", str)))
    if tag == "abandoned":
        kind = _enum(AbandonKind, _get(doc, "reason", str), "abandon reason")
        attempts = _get(doc, "attempts", int, optional=True)
        if (kind is AbandonKind.MAX_ATTEMPTS_EXHAUSTED) != (attempts is not None):
            raise RowFormatError("abandon 'attempts' is set exactly for max_attempts_exhausted")
        return Abandoned(AbandonReason(kind, attempts))
    raise RowFormatError(f"unknown outcome_type {tag!r}")


_TERMINAL_PHASE = {
    Consumed: InputLifecycleState.CONSUMED,
    Superseded: InputLifecycleState.SUPERSEDED,
    Coalesced: InputLifecycleState.COALESCED,
    Abandoned: InputLifecycleState.ABANDONED,
}


# --- completion outcomes (row version 2) ----------------------------------------------------


def _failure_to_json(failure: RunFailure | None) -> dict[str, Any] | None:
    return None if failure is None else {"type": failure.error_type, "message": failure.message}


def _failure_from_json(doc: Any, what: str) -> RunFailure | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise RowFormatError(f"{what} must be an object or null")
    return RunFailure(_get(doc, "type", str), _get(doc, "message", str))


def completion_to_json(outcome: CompletionOutcome) -> dict[str, Any]:
    """The stored form of what an input's waiters got."""
    if isinstance(outcome, Completed):
        r = outcome.result
        result = {"text": r.text, "turns": r.turns, "tool_calls": r.tool_calls, "tokens_used": r.tokens_used}
        return {"kind": "completed", "result": result}
    if isinstance(outcome, CompletedWithoutResult | Cancelled):
        return {"kind": outcome.kind}
    if isinstance(outcome, AbandonedOutcome):
        return {"kind": "abandoned", "reason": outcome.reason, "error": _failure_to_json(outcome.error)}
    if isinstance(outcome, RuntimeTerminated):
        return {"kind": "runtime_terminated", "reason": outcome.reason}
    raise RowFormatError(f"outcome {outcome!r} is never stored with an input")


def _count(doc: dict[str, Any], key: str) -> int:
    value: int = _get(doc, key, int)
    if value < 0:
        raise RowFormatError(f"field {key!r} must not be negative")
    return value


def completion_from_json(doc: Any) -> CompletionOutcome:
    if not isinstance(doc, dict):
        raise RowFormatError("outcome must be an object")
    kind = _get(doc, "kind", str)
    if kind == "completed":
        r = doc.get("result")
        if not isinstance(r, dict):
            raise RowFormatError("completed outcome needs a 'result' object")
        return Completed(
            RunResult(_get(r, "text", str), _count(r, "turns"), _count(r, "tool_calls"), _count(r, "tokens_used"))
        )
    if kind == "completed_without_result":
        return CompletedWithoutResult()
    if kind == "cancelled":
        return Cancelled()
    if kind == "abandoned":
        return AbandonedOutcome(
            _get(doc, "reason", str), _failure_from_json(doc.get("error"), "abandoned outcome error")
        )
    if kind == "runtime_terminated":
        return RuntimeTerminated(_get(doc, "reason", str))
    raise RowFormatError(f"unknown outcome kind {kind!r}")


# --- rows ------------------------------------------------------------------------------------


def _persisted_input(record: InputRecord) -> Input:
    """The input a row of ``record`` stores: as stored (images as blob references) once it was."""
    return record.stored_input if record.stored_input is not None else record.input


def encode_record(record: InputRecord) -> bytes:
    """Serialise one input record (images must already be blob references); optional fields
    that are null are left out (compact form, read by every decoder of this version). Relies on
    the record's fields having their declared types (the runtime's own records, whose input was
    checked at acceptance): nothing here checks for a field that contains itself, which would
    raise ``RecursionError`` (:func:`encode_record_checked` refuses that as ``RowFormatError``)."""
    data = _dump_record(record, input_to_json(_persisted_input(record)))
    return data if data is not None else _dumps(record_to_json(record))


def record_to_json(record: InputRecord) -> dict[str, Any]:
    """The JSON document :func:`encode_record` writes for ``record``."""
    # _record_dumps writes this document's text field by field, repeating its fields and their
    # order: a field added, removed or moved here is changed there too (the property test in
    # tests/runtime_session/test_row_text.py compares the two texts).
    doc: dict[str, Any] = {
        "row_version": ROW_VERSION,
        "input_id": record.input_id,
        "phase": record.phase._value_,
        "lane": record.lane._value_,
        "admission_seq": record.admission_seq,
        "attempts": record.attempts,
        "recovery_count": record.recovery_count,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "history": [
            {"to": e.to_state._value_, "reason": e.reason, "at": e.timestamp}
            if e.from_state is None
            else {"from": e.from_state._value_, "to": e.to_state._value_, "reason": e.reason, "at": e.timestamp}
            for e in record.history
        ],
        "input": input_to_json(_persisted_input(record)),
    }
    if record.terminal is not None:
        doc["terminal"] = terminal_to_json(record.terminal)
    if record.outcome is not None:
        doc["outcome"] = completion_to_json(record.outcome)
    if record.last_error is not None:
        doc["last_error"] = _failure_to_json(record.last_error)
    if record.last_run_id is not None:
        doc["last_run_id"] = record.last_run_id
    if record.last_boundary_sequence is not None:
        doc["last_boundary_sequence"] = record.last_boundary_sequence
    return doc


_quote = json.encoder.encode_basestring
"""The string encoder the C encoder is given (:func:`_chunk_encoder`): the same text for a string."""
_float_text = float.__repr__
"""How the C encoder writes a finite float."""


def _record_dumps(allow_nan: bool) -> Callable[[InputRecord, dict[str, Any]], bytes | None]:
    """The encoder of an input row from its record and its input's document: exactly the text
    :func:`_row_dumps` writes for :func:`record_to_json` of the record, with each distinct
    timestamp written once (a new row holds one timestamp four times: ``created_at``,
    ``updated_at`` and the ``at`` of its two history entries, and formatting a float is the
    costliest step of the encoding). The row's own fields are written here; its input and
    optional outcomes by the C encoder (:func:`_chunk_encoder`) with the row options. ``None``
    (the caller encodes the whole document instead) where the C encoder is not used, or where a
    field written here is not of the exact type it is written for (a string, an integer, a
    finite float, an enum member whose value is a string): the text is then the encoder's, also
    for what it refuses."""
    chunks = _row_encoders(allow_nan)[1]
    if chunks is None:
        return lambda record, input_doc: None
    quote, join, float_text, int_text = _quote, "".join, _float_text, int.__repr__

    def dumps(record: InputRecord, input_doc: dict[str, Any]) -> bytes | None:
        created, updated = record.created_at, record.updated_at
        input_id, seq, attempts, recoveries = (
            record.input_id,
            record.admission_seq,
            record.attempts,
            record.recovery_count,
        )
        phase, lane = record.phase._value_, record.lane._value_
        if (
            type(created) is not float
            or type(updated) is not float
            or type(input_id) is not str
            or type(phase) is not str
            or type(lane) is not str
            or type(seq) is not int
            or type(attempts) is not int
            or type(recoveries) is not int
            or created - created != 0.0  # not finite
            or updated - updated != 0.0
        ):
            return None
        created_text = float_text(created)
        updated_text = created_text if updated is created else float_text(updated)
        entries = []
        for e in record.history:
            at, reason = e.timestamp, e.reason
            if at is created:
                at_text = created_text
            elif at is updated:
                at_text = updated_text
            elif type(at) is float and at - at == 0.0:
                at_text = float_text(at)
            else:
                return None
            to, frm = e.to_state._value_, e.from_state
            if type(reason) is not str or type(to) is not str:
                return None
            if frm is None:
                head = '{"to":'
            elif type(frm_value := frm._value_) is str:
                head = '{"from":' + quote(frm_value) + ',"to":'
            else:
                return None
            entries.append(head + quote(to) + ',"reason":' + quote(reason) + ',"at":' + at_text + "}")
        # the optional fields' documents are built before anything is encoded, as record_to_json
        # builds them, so a field that cannot be stored fails the same way
        tail: list[tuple[str, Any]] = []
        if record.terminal is not None:
            tail.append((',"terminal":', terminal_to_json(record.terminal)))
        if record.outcome is not None:
            tail.append((',"outcome":', completion_to_json(record.outcome)))
        if record.last_error is not None:
            tail.append((',"last_error":', _failure_to_json(record.last_error)))
        if record.last_run_id is not None:
            tail.append((',"last_run_id":', record.last_run_id))
        if record.last_boundary_sequence is not None:
            tail.append((',"last_boundary_sequence":', record.last_boundary_sequence))
        # then encoded in the document's order (the integers before the input and the optional
        # fields), so that of two fields the encoder cannot write, the first one fails
        seq_text, attempts_text, recoveries_text = int_text(seq), int_text(attempts), int_text(recoveries)
        input_text = join(chunks(input_doc, 0))
        tail_text = join([key + join(chunks(value, 0)) for key, value in tail]) if tail else ""
        return (
            '{"row_version":'
            + int_text(ROW_VERSION)
            + ',"input_id":'
            + quote(input_id)
            + ',"phase":'
            + quote(phase)
            + ',"lane":'
            + quote(lane)
            + ',"admission_seq":'
            + seq_text
            + ',"attempts":'
            + attempts_text
            + ',"recovery_count":'
            + recoveries_text
            + ',"created_at":'
            + created_text
            + ',"updated_at":'
            + updated_text
            + ',"history":['
            + ",".join(entries)
            + '],"input":'
            + input_text
            + tail_text
            + "}"
        ).encode()

    return dumps


_dump_record = _record_dumps(allow_nan=True)
_dump_record_strict = _record_dumps(allow_nan=False)
""":func:`_dump_record` for :func:`_dumps_strict` (a non-finite number is left to the encoder,
which refuses it)."""


def _history_from_json(doc: Any) -> HistoryEntry:
    if not isinstance(doc, dict):
        raise RowFormatError("history entry must be an object")
    frm = _get(doc, "from", str, optional=True)
    return HistoryEntry(
        _enum(InputLifecycleState, frm, "phase") if frm is not None else None,
        _enum(InputLifecycleState, _get(doc, "to", str), "phase"),
        _get(doc, "reason", str),
        float(_get(doc, "at", (int, float))),
    )


def decode_record(data: bytes) -> InputRecord:
    """Parse one row; raises :class:`RowFormatError` naming what is wrong.

    Checks the row is self-consistent: a terminal phase has the matching outcome and a
    non-terminal phase has none.
    """
    doc = _json_object(data, "not valid JSON", "row must be a JSON object")
    version = doc.get("row_version")
    if isinstance(version, bool) or version not in READABLE_ROW_VERSIONS:
        raise RowFormatError(f"unsupported row_version {version!r} (this runtime reads 1 to {ROW_VERSION})")
    phase = _enum(InputLifecycleState, _get(doc, "phase", str), "phase")
    raw_terminal = doc.get("terminal")
    terminal = terminal_from_json(raw_terminal) if raw_terminal is not None else None
    if phase.is_terminal:
        if terminal is None:
            raise RowFormatError(f"terminal phase {phase.value} without its outcome")
        if _TERMINAL_PHASE[type(terminal)] is not phase:
            raise RowFormatError(f"phase {phase.value} does not match outcome {type(terminal).__name__}")
    elif terminal is not None:
        raise RowFormatError(f"non-terminal phase {phase.value} carries a terminal outcome")
    outcome: CompletionOutcome | None = None
    last_error: RunFailure | None = None
    if version >= 2:
        raw_outcome = doc.get("outcome")
        if raw_outcome is not None:
            if not phase.is_terminal:
                raise RowFormatError(f"non-terminal phase {phase.value} carries a completion outcome")
            outcome = completion_from_json(raw_outcome)
        last_error = _failure_from_json(doc.get("last_error"), "field 'last_error'")
    item = input_from_json(doc.get("input"))
    input_id = _get(doc, "input_id", str)
    if item.header.id != input_id:
        raise RowFormatError(f"input_id {input_id!r} differs from the payload's id {item.header.id!r}")
    attempts = _get(doc, "attempts", int)
    if attempts < 0:
        raise RowFormatError("attempts must not be negative")
    last_run = _get(doc, "last_run_id", str, optional=True)
    return InputRecord(
        input=item,
        phase=phase,
        lane=_enum(Lane, _get(doc, "lane", str), "lane"),
        admission_seq=_get(doc, "admission_seq", int),
        created_at=float(_get(doc, "created_at", (int, float))),
        updated_at=float(_get(doc, "updated_at", (int, float))),
        attempts=attempts,
        terminal=terminal,
        last_run_id=RunId(last_run) if last_run is not None else None,
        last_boundary_sequence=_get(doc, "last_boundary_sequence", int, optional=True),
        history=[_history_from_json(e) for e in _get(doc, "history", list)],
        recovery_count=_get(doc, "recovery_count", int),
        outcome=outcome,
        last_error=last_error,
    )


def encode_record_checked(record: InputRecord) -> bytes:
    """Encode ``record``; raise :class:`RowFormatError` unless recovery would decode the row
    to the same input (as persisted) and the same lifecycle fields. Nothing that fails here
    can be acknowledged: recovery would refuse it or read something else.

    The row's document holds only strings, integers, finite floats, booleans, nulls, lists
    and objects with string keys, and the JSON text of such a document parses back to an equal
    one; what could still keep a row from reading back is checked here: text that cannot be
    encoded as UTF-8 (a lone surrogate), a non-finite number (refused by the encoder), a row
    over the size or nesting limits recovery reads within (:mod:`~meerkat_runtime.vocab.json_limits`),
    and the caller's input itself, which is decoded from the document by the decoder recovery
    uses (:func:`input_from_json`) and compared with the persisted input. The lifecycle fields
    are the runtime's own values; how the decoder reads them is fixed by its tests."""
    persisted = _persisted_input(record)
    try:
        input_doc = input_to_json(persisted)
        data = _dump_record_strict(record, input_doc)
        doc = None
        if data is None:
            doc = record_to_json(record)
            data = _dumps_strict(doc)
        check_size(data)
        if encoded_may_nest_deeper(data):  # its brackets counted once: the walk follows at once
            check_depth(doc if doc is not None else record_to_json(record))
    except (TypeError, ValueError, RecursionError) as exc:  # e.g. text that is not valid UTF-8
        raise RowFormatError(f"cannot be encoded: {exc}") from None
    if input_from_json(input_doc) != persisted:
        raise RowFormatError("does not read back as it was written (the input differs after a round trip)")
    return data


# --- lifecycle record --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LifecycleRecord:
    runtime_state: RuntimeState
    epoch_id: str | None


def encode_lifecycle(record: LifecycleRecord) -> bytes:
    """Serialise the lifecycle record (its fields are an enum value and an optional string, as
    typed: nothing here checks for a field that contains itself)."""
    return _dumps(
        {
            "record_version": LIFECYCLE_RECORD_VERSION,
            "runtime_state": record.runtime_state.durable_form.value,
            "epoch_id": record.epoch_id,
        }
    )


def decode_lifecycle(data: bytes) -> LifecycleRecord:
    doc = _json_object(
        data,
        "lifecycle record is not valid JSON",
        "lifecycle record must be a JSON object (a bare runtime state is a legacy format)",
    )
    version = doc.get("record_version")
    if version != LIFECYCLE_RECORD_VERSION:
        raise RowFormatError(f"unsupported lifecycle record_version {version!r}")
    state = _enum(RuntimeState, _get(doc, "runtime_state", str), "runtime state")
    return LifecycleRecord(state, _get(doc, "epoch_id", str, optional=True))
