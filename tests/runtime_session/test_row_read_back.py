"""The check before an accept is acknowledged: nothing is stored that recovery would refuse or
read differently (``encode_record_checked``), and what it protects against when it is off."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime.session import persistence, row_codec
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.inputs import HandlingMode, PromptInput
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import RowFormatError, decode_record, encode_record, encode_record_checked
from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES

from tests.runtime_session.disks import Disk
from tests.runtime_session.helpers import S, lossy_input_from_json, make_prompt, run


@pytest.fixture(params=["memory", "sqlite"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    d = Disk(request.param, tmp_path / "runtime.sqlite")
    yield d
    d.close()


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
    with pytest.raises(RowFormatError, match="exceeds the limit"):
        encode_record_checked(record)
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
