"""The row text written field by field (``row_codec._record_dumps``, each distinct timestamp
formatted once) is byte for byte what the standard encoder writes for ``record_to_json``, for
any record: shared and distinct timestamps, every optional field, any text (escapes, non-BMP,
lone surrogates), non-finite numbers and fields of other types, enum members whose values are
not strings among them (left to the encoder, whose refusals are the same)."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from meerkat_runtime.session import row_codec
from meerkat_runtime.session.completion import (
    Abandoned as AbandonedOutcome,
)
from meerkat_runtime.session.completion import (
    Cancelled,
    Completed,
    CompletedWithoutResult,
    RunFailure,
    RuntimeTerminated,
)
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.inputs import InputHeader, PromptInput, prompt
from meerkat_runtime.session.row_codec import RowFormatError, encode_record, encode_record_checked
from meerkat_runtime.vocab import json_limits
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import (
    Abandoned,
    AbandonKind,
    AbandonReason,
    Coalesced,
    Consumed,
    InputLifecycleState,
    InputTerminalOutcome,
    Superseded,
)

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
"""Any code points, lone surrogates included."""
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e300, 5e-324, 1.5])
NUMBERS = FLOATS | st.integers(-(2**70), 2**70)
STATES = st.sampled_from(list(InputLifecycleState))


class _NumberState(enum.Enum):
    """Enum members whose values are numbers: the encoder writes such a value as a number."""

    ONE = 1
    HALF = 0.5
    HUGE = 10**30


class _TextLike(str):
    pass


class _TextLikeState(enum.Enum):
    """An enum member whose value is a subclass of ``str``."""

    QUEUED = _TextLike("queued")


class _IntState(enum.IntEnum):
    ONE = 1


ODD_STATES: st.SearchStrategy[Any] = st.sampled_from([*_NumberState, *_TextLikeState, *_IntState])
COUNTS = st.integers(0, 2**70) | st.booleans()
TERMINALS: st.SearchStrategy[InputTerminalOutcome | None] = st.none() | st.sampled_from(
    [
        Consumed(),
        Superseded(InputId("other")),
        Coalesced(InputId("agg \u00e9")),
        Abandoned(AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, 3)),
    ]
)
OUTCOMES = st.none() | st.one_of(
    st.builds(lambda t, n: Completed(RunResult(t, n, 1, 2)), ANY_TEXT, st.integers(0, 10)),
    st.just(CompletedWithoutResult()),
    st.just(Cancelled()),
    st.builds(lambda r, m: AbandonedOutcome(r, RunFailure("E", m)), ANY_TEXT, ANY_TEXT),
    st.builds(RuntimeTerminated, ANY_TEXT),
)


@st.composite
def records(draw: st.DrawFn) -> InputRecord:
    """Mostly records of the declared field types (the ones written field by field), some with
    integers or flags where floats or integers are declared, or enum members whose values are
    not strings where a phase or a lane is declared (left to the encoder)."""
    odd = draw(st.integers(0, 4)) == 0
    odd_enums = draw(st.integers(0, 4)) == 0  # drawn apart: with numbers of the declared types too
    states: st.SearchStrategy[Any] = STATES | ODD_STATES if odd_enums else STATES
    lanes: st.SearchStrategy[Any] = st.sampled_from(list(Lane))
    if odd_enums:
        lanes = lanes | ODD_STATES
    numbers = NUMBERS if odd else FLOATS
    counts = COUNTS if odd else st.integers(0, 2**70)
    shared = draw(numbers)  # one object in several fields, as an accept writes it

    def stamp() -> Any:
        return shared if draw(st.booleans()) else draw(numbers)

    item = prompt(draw(ANY_TEXT), input_id=draw(ANY_TEXT), idempotency_key=draw(st.none() | ANY_TEXT))
    if draw(st.booleans()):
        header = InputHeader(item.header.id, draw(FLOATS), item.header.origin, item.header.durability, draw(ANY_TEXT))
        item = PromptInput(header, item.text, item.images, item.handling_mode)
    history = [
        HistoryEntry(draw(st.none() | states), draw(states), draw(ANY_TEXT), stamp())
        for _ in range(draw(st.integers(0, 4)))
    ]
    return InputRecord(
        input=item,
        phase=draw(states),
        lane=draw(lanes),
        admission_seq=draw(counts),
        created_at=stamp(),
        updated_at=stamp(),
        attempts=draw(counts),
        terminal=draw(TERMINALS),
        last_run_id=draw(st.none() | ANY_TEXT.map(RunId)),
        last_boundary_sequence=draw(st.none() | counts),
        history=history,
        recovery_count=draw(counts),
        outcome=draw(OUTCOMES),
        last_error=draw(st.none() | st.builds(RunFailure, ANY_TEXT, ANY_TEXT)),
    )


def _by_field(record: InputRecord) -> bool:
    """Whether the row is written field by field (not left to the encoder as a whole)."""
    try:
        return row_codec._dump_record(record, row_codec.input_to_json(record.input)) is not None
    except ValueError:  # text that is not UTF-8: written field by field, refused by .encode()
        return True


def _standard(record: InputRecord, allow_nan: bool) -> bytes | Exception:
    """What the standard encoder writes for the record's document (or raises)."""
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    try:
        return encoder.encode(row_codec.record_to_json(record)).encode()
    except (TypeError, ValueError) as exc:
        return exc


def _assert_written_as_the_encoder_writes(record: InputRecord) -> None:
    """``encode_record`` gives the standard encoder's text, or raises its error."""
    expected = _standard(record, allow_nan=True)
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as raised:
            encode_record(record)
        assert str(raised.value) == str(expected)
    else:
        assert encode_record(record) == expected


@settings(max_examples=400, deadline=None)
@given(records())
def test_a_row_is_the_text_the_standard_encoder_writes(record: InputRecord) -> None:
    event("written field by field" if _by_field(record) else "left to the encoder")
    _assert_written_as_the_encoder_writes(record)
    strict = _standard(record, allow_nan=False)
    try:
        checked = encode_record_checked(record)
    except RowFormatError as exc:
        if isinstance(strict, Exception):
            assert str(exc) == f"cannot be encoded: {strict}"
        else:  # refused for its size or its read-back, never for its text
            assert "cannot be encoded" not in str(exc)
    else:
        assert checked == strict


def test_a_new_row_formats_its_timestamp_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An accept's row holds one timestamp in four fields; it is formatted once (the header's
    own timestamp is formatted by the encoder), with the same text as before."""
    now = 1733570000.123456
    item = prompt("x")
    record = InputRecord(
        input=item,
        phase=InputLifecycleState.QUEUED,
        lane=Lane.QUEUE,
        admission_seq=1,
        created_at=now,
        updated_at=now,
        history=[
            HistoryEntry(None, InputLifecycleState.ACCEPTED, "accepted", now),
            HistoryEntry(InputLifecycleState.ACCEPTED, InputLifecycleState.QUEUED, "queued", now),
        ],
    )
    expected = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode(row_codec.record_to_json(record))
    formatted: list[float] = []

    def counted(value: float) -> str:
        formatted.append(value)
        return float.__repr__(value)

    monkeypatch.setattr(row_codec, "_float_text", counted)
    dumps = row_codec._record_dumps(allow_nan=False)
    data = dumps(record, row_codec.input_to_json(item))
    assert data == expected.encode()
    assert formatted == [now]


def _row(**fields: Any) -> InputRecord:
    now = 1.5
    base: dict[str, Any] = {
        "input": prompt("x"),
        "phase": InputLifecycleState.QUEUED,
        "lane": Lane.QUEUE,
        "admission_seq": 1,
        "created_at": now,
        "updated_at": now,
        "history": [HistoryEntry(None, InputLifecycleState.ACCEPTED, "accepted", now)],
    }
    base.update(fields)
    return InputRecord(**base)


@pytest.mark.parametrize(
    "record",
    [
        _row(phase=_NumberState.ONE),
        _row(lane=_NumberState.HALF),
        _row(history=[HistoryEntry(None, _NumberState.ONE, "accepted", 1.5)]),  # type: ignore[arg-type]
        _row(history=[HistoryEntry(_NumberState.HUGE, InputLifecycleState.QUEUED, "queued", 1.5)]),  # type: ignore[arg-type]
        _row(phase=_TextLikeState.QUEUED),
        # two fields the encoder cannot write: the first one in the document's order fails
        _row(admission_seq=10**5000, last_run_id=RunId(object())),  # type: ignore[arg-type]
    ],
    ids=["number phase", "number lane", "number to", "number from", "str-subclass phase", "two bad fields"],
)
def test_a_row_the_field_by_field_path_does_not_take_is_the_encoders(record: InputRecord) -> None:
    _assert_written_as_the_encoder_writes(record)


def test_a_checked_row_counts_its_brackets_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-back check counts the row text's brackets once, then walks the document when
    there are more than the depth limit (forced here: the count always says so)."""
    counted: list[bytes] = []

    def may_nest_deeper(encoded: bytes, max_depth: int = json_limits.MAX_JSON_DEPTH) -> bool:
        counted.append(encoded)
        return True

    monkeypatch.setattr(json_limits, "encoded_may_nest_deeper", may_nest_deeper)
    monkeypatch.setattr(row_codec, "encoded_may_nest_deeper", may_nest_deeper)
    record = _row()
    data = encode_record_checked(record)
    assert data == encode_record(record)
    assert counted == [data]
