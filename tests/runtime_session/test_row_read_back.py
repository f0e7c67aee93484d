"""The check before an accept is acknowledged: nothing is stored that recovery would refuse or
read differently (``encode_record_checked``), and what it protects against when it is off."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.session import persistence, row_codec, run_end
from meerkat_runtime.session.completion import Abandoned, Completed, RunFailure
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.executor import CoreApplyOutput, RunPrimitive, RunResult
from meerkat_runtime.session.inputs import HandlingMode, PromptInput, external_event
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import RowFormatError, decode_record, encode_record, encode_record_checked
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store import records
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab import json_limits
from meerkat_runtime.vocab.errors import WriteFailed
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Consumed
from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES, JsonLimitExceeded, load_json

from tests.runtime_session.disks import Disk
from tests.runtime_session.helpers import S, lossy_input_from_json, make_prompt, run


def _record(item: PromptInput) -> InputRecord:
    return InputRecord(
        input=item,
        phase=S.QUEUED,
        lane=Lane.QUEUE,
        admission_seq=1,
        created_at=1.5,
        updated_at=1.5,
        history=[HistoryEntry(None, S.ACCEPTED, "accepted", 1.5)],
    )


def _planned(*items: PromptInput) -> list[InputRecord]:
    """The records the session core plans for accepting ``items`` one after another (the
    last plan's, which for a supersession holds the new row and the superseded one)."""
    machine = MeerkatMachine.ephemeral()
    run(machine.register_session("s"))
    core = machine._get("s").core
    plan: Any = None
    for item in items:
        plan = core.accept(item, time.time())
        assert isinstance(plan, Plan)
        core.apply(plan)
    return list(plan.records.values())


@pytest.mark.parametrize(
    "items",
    [
        (make_prompt("queued"),),
        (make_prompt("steered", handling_mode=HandlingMode.STEER, idempotency_key="k", correlation_id="c"),),
        (make_prompt("old", supersession_key="topic"), make_prompt("new", supersession_key="topic")),
    ],
    ids=["queue", "steer", "supersession"],
)
def test_the_rows_an_accept_writes_decode_in_full_to_the_records_planned(items: tuple[PromptInput, ...]) -> None:
    """What the check leaves to the decoder's tests: every row an accept plans (a new row, and
    the superseded row beside it) decodes, all fields, to the record it was encoded from."""
    records = _planned(*items)
    assert len(records) == len(items)
    for record in records:
        data = encode_record_checked(record)
        assert data == encode_record(record)
        assert decode_record(data) == record


def test_a_non_finite_number_is_refused_and_would_not_read_back() -> None:
    item = make_prompt("x")
    record = _record(dataclasses.replace(item, header=dataclasses.replace(item.header, timestamp=math.nan)))
    with pytest.raises(RowFormatError, match="cannot be encoded"):
        encode_record_checked(record)
    assert decode_record(encode_record(record)).input != record.input  # what the check prevents


def test_text_that_is_not_utf8_is_refused() -> None:
    record = _record(make_prompt("bad \udc80"))
    with pytest.raises(RowFormatError, match="cannot be encoded"):
        encode_record_checked(record)


def test_a_row_over_the_size_recovery_reads_is_refused() -> None:
    record = _record(make_prompt("x" * MAX_JSON_BYTES))
    with pytest.raises(RowFormatError, match="exceeds the limit") as refused:
        encode_record_checked(record)
    with pytest.raises(JsonLimitExceeded) as unread:  # the reader's refusal of the same bytes
        load_json(encode_record(record))
    assert str(refused.value) == f"cannot be encoded: {unread.value}"  # one check, one message
    with pytest.raises(RowFormatError):  # what the check prevents: recovery refuses the row
        decode_record(encode_record(record))


def test_without_the_check_a_lossy_row_is_acknowledged_and_recovery_reads_another_input(
    disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protection switched off: the same lossy input codec as in
    ``test_a_row_that_does_not_read_back_is_never_acknowledged`` gets an accept acknowledged
    whose input comes back different after a restart."""

    async def body() -> None:
        monkeypatch.setattr(row_codec, "input_from_json", lossy_input_from_json)
        monkeypatch.setattr(persistence, "encode_record_checked", row_codec.encode_record)
        first, _ = disk.machine()
        await first.register_session("s")
        item = make_prompt("quiet")
        assert (await first.accept_input("s", item)).is_accepted
        await first.close()
        second, _ = disk.machine()
        await second.register_session("s")
        recovered = second._get("s").core.ledger.records[item.header.id].input
        assert isinstance(recovered, PromptInput) and recovered.text == "QUIET" != item.text
        await second.close()

    run(body())


def _finished(record: InputRecord) -> InputRecord:
    """``record`` consumed after a failed run and a completed one: every optional field set."""
    return dataclasses.replace(
        record,
        phase=S.CONSUMED,
        terminal=Consumed(),
        outcome=Completed(RunResult("done \u00e9", 2, 1, 30)),
        last_error=RunFailure("TimeoutError", 'slow "quoted"\n'),
        last_run_id=RunId("run-1"),
        last_boundary_sequence=3,
        attempts=2,
        history=[*record.history, HistoryEntry(S.QUEUED, S.CONSUMED, "consumed", 2.25)],
    )


_TEXTS = ["plain", "caf\u00e9 \u2028 \U0001f600", 'quote " back\\slash \n\t\x00\x1f', ""]


@pytest.mark.parametrize("text", _TEXTS, ids=["ascii", "unicode", "escapes", "empty"])
def test_rows_are_the_text_the_standard_encoder_writes(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The row encoders call the standard library's C encoder directly: the text is byte for byte
    what ``json.JSONEncoder`` with the row options writes, for a new row (checked) and a finished
    one carrying every optional field, and the same where the C encoder is missing."""
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    item = make_prompt(text, idempotency_key="k\u00e9", supersession_key="s", correlation_id="c")
    records = [*_planned(item), _finished(_record(item)), _record(external_event("tick", text))]
    for record in records:
        expected = standard.encode(row_codec.record_to_json(record)).encode()
        assert encode_record(record) == expected
        assert encode_record_checked(record) == expected
        monkeypatch.setattr(json.encoder, "c_make_encoder", None)
        monkeypatch.setattr(row_codec, "_dumps", row_codec._row_dumps(allow_nan=True))
        monkeypatch.setattr(row_codec, "_dumps_strict", row_codec._row_dumps(allow_nan=False))
        monkeypatch.setattr(row_codec, "_dump_record", row_codec._record_dumps(allow_nan=True))
        monkeypatch.setattr(row_codec, "_dump_record_strict", row_codec._record_dumps(allow_nan=False))
        assert row_codec._dump_record(record, row_codec.input_to_json(record.input)) is None
        assert encode_record(record) == encode_record_checked(record) == expected
        monkeypatch.undo()
        assert decode_record(expected) == record


def test_the_c_encoder_is_probed_once_per_allow_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole-document and the field-by-field encoders share one probe of the C encoder per
    ``allow_nan`` setting (two, not four), and a different constructor is probed afresh."""
    probes: list[bool] = []
    probe = row_codec._chunk_encoder

    def counted(standard: json.JSONEncoder) -> Any:
        probes.append(standard.allow_nan)
        return probe(standard)

    monkeypatch.setattr(row_codec, "_row_encoders_built", {})
    monkeypatch.setattr(row_codec, "_chunk_encoder", counted)
    for allow_nan in (True, False):
        row_codec._row_dumps(allow_nan)
        row_codec._record_dumps(allow_nan)
    assert probes == [True, False]
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert row_codec._record_dumps(allow_nan=True)(_record(make_prompt("x")), {}) is None  # the fallback
    assert probes == [True, False, True]


def _swapped_separators(make: Any) -> Any:
    """``make`` (the C encoder's constructor) with the key and item separators swapped."""

    def wrong(*args: Any) -> Any:
        a = list(args)
        a[4], a[5] = a[5], a[4]
        return make(*a)

    return wrong


def _nan_allowed(make: Any) -> Any:
    """``make`` ignoring the ``allow_nan`` it is given (always allowing non-finite numbers)."""
    return lambda *args: make(*args[:8], True)


def _other_signature(make: Any) -> Any:
    """``make`` as if its signature had gained an argument."""
    return lambda *args: make(*args, None)


@pytest.mark.parametrize("allow_nan", [True, False])
@pytest.mark.parametrize("wrap", [_swapped_separators, _nan_allowed, _other_signature])
def test_a_c_encoder_that_differs_from_the_standard_one_is_not_used(
    wrap: Any, allow_nan: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C encoder is private to ``json`` and called positionally: its output is compared with
    the standard encoder's at import, and a constructor that builds an encoder writing other
    text (separators swapped), one not refusing NaN where it must, or one that no longer takes
    these arguments, leaves the rows to the standard encoder, which writes the same text."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    assert make is not None and row_codec._chunk_encoder(standard) is not None
    monkeypatch.setattr(json.encoder, "c_make_encoder", wrap(make))
    chunks = row_codec._chunk_encoder(standard)
    if wrap is _nan_allowed and allow_nan:  # the one case where the wrong encoder is right
        assert chunks is not None
        return
    assert chunks is None
    dumps = row_codec._row_dumps(allow_nan)
    monkeypatch.undo()  # the standard encoder itself uses the C encoder when it is there
    doc = row_codec.record_to_json(_finished(_record(make_prompt("caf\u00e9"))))
    assert dumps(doc) == standard.encode(doc).encode()


def test_an_input_field_that_contains_itself_is_refused_not_raised() -> None:
    """Input fields are checked to be text before an accept encodes them, so no row document can
    contain itself; one that did anyway (an unchecked field) is refused as a row that cannot be
    encoded, not left to raise from the encoder."""
    looped: list[Any] = []
    looped.append(looped)
    record = _record(dataclasses.replace(make_prompt("x"), text=looped))  # type: ignore[arg-type]
    with pytest.raises(RowFormatError, match="cannot be encoded"):
        encode_record_checked(record)


_HEADER = {"id": "i", "timestamp": 1.5, "origin": "operator", "durability": "durable"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 1),
        ("id", None),
        ("timestamp", True),
        ("timestamp", "1.5"),
        ("origin", 1),
        ("durability", None),
        ("durability", "forever"),
        ("idempotency_key", 1),
        ("supersession_key", ["s"]),
        ("correlation_id", False),
    ],
)
def test_a_header_field_of_another_type_is_refused(field: str, value: object) -> None:
    with pytest.raises(RowFormatError, match=field):
        row_codec._header_from_json({**_HEADER, field: value})


def test_a_header_reads_what_the_encoder_leaves_out_or_writes_as_an_integer() -> None:
    header = row_codec._header_from_json({**_HEADER, "timestamp": 2, "idempotency_key": None})
    assert type(header.timestamp) is float and header.timestamp == 2.0
    assert (header.idempotency_key, header.supersession_key, header.correlation_id) == (None, None, None)
    keyed = row_codec._header_from_json({**_HEADER, "idempotency_key": "k", "correlation_id": "c"})
    assert (keyed.idempotency_key, keyed.supersession_key, keyed.correlation_id) == ("k", None, "c")


def test_a_run_result_too_large_to_read_back_is_never_stored(tmp_path: Path) -> None:
    """A run's result is stored with its input's consumed row; a result that would make the row
    larger than recovery reads is bad executor output, refused before the boundary is written:
    the run fails as an executor failure naming the row's size and the limit (the attempt
    counted, the loop attached, no failed boundary commit), no receipt and no consumed row is
    stored, and the retry's result (a small one) is what the input completes with, also after
    reopening."""
    disk = Disk("sqlite", tmp_path / "runtime.sqlite")

    async def body() -> None:
        machine, store = disk.machine()
        executor = ScriptedExecutor(Succeed(RunResult("x" * MAX_JSON_BYTES)), default=Succeed(RunResult("ok")))
        await machine.register_session_with_executor("s", executor)
        item = make_prompt("a")
        _, handle = await machine.accept_input_with_completion("s", item)
        assert handle is not None and await handle.wait() == Completed(RunResult("ok"))
        assert await machine.last_error("s") is None  # no failed boundary commit
        [(refused, _), _] = executor.applied
        rt = canonical_runtime_id("s")
        assert store.load_boundary_receipt(rt, refused, 0) is None  # no receipt for the refused run
        record = machine._get("s").core.ledger.records[item.header.id]
        assert (record.phase, record.attempts) == (S.CONSUMED, 2)  # the refused attempt counted
        await machine.close()
        reopened, _ = disk.machine()
        await reopened.register_session("s")
        view = await reopened.input_state("s", item.header.id)
        assert view is not None and view.current_state is S.CONSUMED and view.attempts == 2
        await reopened.close()

    try:
        run(body())
    finally:
        disk.close()


def test_the_failure_of_a_result_too_large_names_the_row_size_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure stored with the input names the row and the limit (a lowered limit here, so
    the result stays small)."""
    monkeypatch.setattr(persistence, "MAX_JSON_BYTES", 64 * 1024)
    disk = Disk("sqlite", tmp_path / "runtime.sqlite")

    async def body() -> None:
        machine, _ = disk.machine()
        executor = ScriptedExecutor(Succeed(RunResult("x" * 64 * 1024)), default=Succeed(RunResult("ok")))
        await machine.register_session_with_executor("s", executor)
        item = make_prompt("a")
        _, handle = await machine.accept_input_with_completion("s", item)
        assert handle is not None and await handle.wait() == Completed(RunResult("ok"))
        view = await machine.input_state("s", item.header.id)
        assert view is not None and view.last_error is not None
        assert view.last_error.error_type == "ExecutorError"
        assert f"the row of input {item.header.id!r} cannot be stored" in view.last_error.message
        assert f"over the limit of {64 * 1024} bytes" in view.last_error.message
        await machine.close()

    try:
        run(body())
    finally:
        disk.close()


class _DigestExecutor(ScriptedExecutor):
    """Succeeds with a receipt carrying ``digest`` as its conversation digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(default=Succeed())
        self.digest = digest

    async def apply(self, run_id: RunId, primitive: RunPrimitive) -> CoreApplyOutput:
        output = await super().apply(run_id, primitive)
        return dataclasses.replace(output, receipt=dataclasses.replace(output.receipt, conversation_digest=self.digest))


def _receipt_limit(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Receipts are written and checked within ``limit`` bytes instead of ``MAX_JSON_BYTES``."""
    monkeypatch.setattr(records, "check_size", lambda data, max_bytes: json_limits.check_size(data, limit))
    monkeypatch.setattr(run_end, "MAX_JSON_BYTES", limit)


def test_a_receipt_too_large_to_read_back_fails_the_run_and_is_never_stored(
    disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversation digest that would make the boundary receipt larger than a reader accepts
    (here with a limit of 1000 bytes) is refused before the boundary is written, like an
    executor failure naming the receipt's size and the limit: the input is retried and then
    abandoned with that error, no receipt is stored, and the store reads back after reopening."""
    _receipt_limit(monkeypatch, 1000)

    async def body() -> None:
        machine, store = disk.machine()
        executor = _DigestExecutor("d" * 1000)
        await machine.register_session_with_executor("s", executor)
        item = make_prompt("a")
        _, handle = await machine.accept_input_with_completion("s", item)
        assert handle is not None
        async with asyncio.timeout(60):  # a guard against a hang, not a measurement
            abandoned = await handle.wait()
        assert isinstance(abandoned, Abandoned) and abandoned.error is not None
        refusal = r"receipt of run \S+ cannot be stored: document of \d+ bytes exceeds the limit of 1000 bytes"
        assert re.fullmatch(refusal, abandoned.error.message)
        rt = canonical_runtime_id("s")
        assert executor.applied and all(store.load_boundary_receipt(rt, r, 0) is None for r, _ in executor.applied)
        await machine.close()
        reopened, _ = disk.machine()
        await reopened.register_session("s")
        assert reopened._get("s").core.ledger.records[item.header.id].phase is S.ABANDONED
        await reopened.close()

    run(body())


def test_a_store_refuses_a_receipt_too_large_to_read_back(disk: Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's own check, for a caller of ``atomic_apply`` that did not check: the write is
    refused naming the receipt, its size and the limit, and nothing of it is stored."""
    _receipt_limit(monkeypatch, 1000)
    store = disk.open()
    rt = canonical_runtime_id("s")
    receipt = BoundaryReceipt("run-1", 0, BoundaryKind.RUN_START, ("a",), "d" * 1000)
    with pytest.raises(WriteFailed, match=r"'run-1', sequence=0\) cannot be stored: document of \d+ bytes exceeds"):
        store.atomic_apply(rt, session_snapshot=b"snap", receipt=receipt, rows=[InputRow("a", b"{}")])
    assert store.load_boundary_receipt(rt, "run-1", 0) is None
    assert store.load_input_states(rt) == [] and store.load_session_snapshot(rt) is None
