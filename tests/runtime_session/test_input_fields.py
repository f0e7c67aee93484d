"""Every field of an input checked by type and range at the door: a wrong one is a clean
``validation_failed`` naming the field, never acknowledged, never stored, never a raw
``TypeError`` or a storage error — and the session (and its next start) is unaffected. Each new
row is also encoded and decoded once before the accept is acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from meerkat_runtime.session import row_codec
from meerkat_runtime.session.executor import CoreApplyOutput, ReceiptDraft, RunPrimitive, RunResult
from meerkat_runtime.session.input_fields import DEFAULT_MAX_INPUT_BYTES, InputLimits, check_input
from meerkat_runtime.session.inputs import (
    BlobImage,
    InlineImage,
    Input,
    PeerResponseStatus,
    continuation,
    external_event,
    peer_message,
    peer_response,
    prompt,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.vocab.errors import InvalidField, ValidationFailed

from tests.runtime_session.disks import Disk
from tests.runtime_session.helpers import lossy_input_from_json, make_prompt, run


def _header(item: Input, **changes: Any) -> Input:
    return dataclasses.replace(item, header=dataclasses.replace(item.header, **changes))  # type: ignore[arg-type]


def _with(item: Input, **changes: Any) -> Input:
    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


BAD: dict[str, tuple[Callable[[], Any], str]] = {
    "text=None": (lambda: _with(prompt("x"), text=None), "text"),
    "integer idempotency key": (lambda: _header(prompt("x"), idempotency_key=7), "header.idempotency_key"),
    "dict payload": (lambda: _with(external_event("tick"), payload={"a": 1}), "payload"),
    "string timestamp": (lambda: _header(prompt("x"), timestamp="2026-01-01"), "header.timestamp"),
    "list idempotency key": (lambda: _header(prompt("x"), idempotency_key=["k"]), "header.idempotency_key"),
    "NaN timestamp": (lambda: _header(prompt("x"), timestamp=float("nan")), "header.timestamp"),
    "negative timestamp": (lambda: _header(prompt("x"), timestamp=-1.0), "header.timestamp"),
    "boolean timestamp": (lambda: _header(prompt("x"), timestamp=True), "header.timestamp"),
    "integer input id": (lambda: _header(prompt("x"), id=12), "header.id"),
    "string origin": (lambda: _header(prompt("x"), origin="operator"), "header.origin"),
    "string durability": (lambda: _header(prompt("x"), durability="durable"), "header.durability"),
    "bytes supersession key": (lambda: _header(prompt("x"), supersession_key=b"k"), "header.supersession_key"),
    "integer correlation id": (lambda: _header(prompt("x"), correlation_id=3), "header.correlation_id"),
    "string handling mode": (lambda: _with(prompt("x"), handling_mode="steer"), "handling_mode"),
    "images as a list": (lambda: _with(prompt("x"), images=[]), "images"),
    "image of the wrong type": (lambda: _with(prompt("x"), images=("a.png",)), "images[0]"),
    "image data None": (lambda: _with(prompt("x"), images=(InlineImage("image/png", None),)), "images[0].data"),
    "blob id integer": (lambda: _with(prompt("x"), images=(BlobImage("image/png", 5),)), "images[0].blob_id"),
    "unpaired surrogate": (lambda: _with(prompt("x"), text="bad \ud800 text"), "text"),
    "string coalesce": (lambda: _with(external_event("tick"), coalesce="yes"), "coalesce"),
    "event type None": (lambda: _with(external_event("tick"), event_type=None), "event_type"),
    "peer id integer": (lambda: _with(peer_message("p", "hi"), peer_id=1), "peer_id"),
    "string status": (lambda: _with(peer_response("p", "r", PeerResponseStatus.TERMINAL), status="terminal"), "status"),
    "string mode": (lambda: _with(peer_response("p", "r", PeerResponseStatus.TERMINAL), mode="queue"), "mode"),
    "reason None": (lambda: _with(continuation("go", durability=prompt("x").header.durability), reason=None), "reason"),
    "header of the wrong type": (lambda: _with(prompt("x"), header={"id": "x"}), "header"),
    "not an input": (lambda: {"kind": "prompt", "text": "x"}, "input"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_field_is_a_validation_failure_naming_it(case: str) -> None:
    build, field = BAD[case]
    with pytest.raises(InvalidField) as err:
        check_input(build())
    assert err.value.field == field and err.value.kind == "validation_failed"
    assert f"field {field!r}" in str(err.value)


ISSUE_CASES = [
    "text=None",
    "integer idempotency key",
    "dict payload",
    "string timestamp",
    "list idempotency key",
    "bytes supersession key",
]


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_the_issue_inputs_are_refused_unstored_and_the_next_start_recovers_the_rest(disk: Disk, case: str) -> None:
    async def body() -> None:
        m, _ = disk.machine()
        await m.register_session("s")
        kept = make_prompt("kept")
        await m.accept_input("s", kept)
        build, field = BAD[case]
        for accept in (m.accept_input, m.accept_input_with_completion):
            with pytest.raises(ValidationFailed, match=field.replace(".", r"\.")):
                await accept("s", build())
        with pytest.raises(ValidationFailed):
            await m.accept_input_and_run("s", build(), _never_runs)
        assert await m.list_active_inputs("s") == [kept.header.id]
        await m.close()
        assert len(disk.rows()) == 1
        again, _ = disk.machine()
        await again.register_session("s")
        assert await again.list_active_inputs("s") == [kept.header.id]
        await again.close()

    run(body())


async def _never_runs(run_id: str, primitive: RunPrimitive) -> tuple[None, CoreApplyOutput]:
    raise AssertionError("a refused input must not run")


def test_an_ephemeral_machine_checks_fields_too() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        with pytest.raises(InvalidField, match=r"header\.timestamp"):
            await m.accept_input("s", BAD["string timestamp"][0]())

    run(body())


def test_the_input_size_limit_is_configurable_and_counts_every_text_field() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral(max_input_bytes=100)
        assert m.max_input_bytes == 100 and MeerkatMachine.ephemeral().max_input_bytes == DEFAULT_MAX_INPUT_BYTES
        await m.register_session("s")
        item = make_prompt("", input_id="i" * 10)
        fits = dataclasses.replace(item, text="x" * 90)
        assert (await m.accept_input("s", fits)).is_accepted
        too_big = dataclasses.replace(make_prompt("", input_id="j" * 10), text="é" * 46)  # 92 bytes of text
        with pytest.raises(InvalidField, match="more than the limit of 100") as err:
            await m.accept_input("s", too_big)
        assert err.value.field == "input" and "102 bytes" in str(err.value)

    run(body())


@pytest.mark.parametrize("limit", [0, -1, True, "1024", 1.5, 2**31])
def test_a_bad_size_limit_is_refused_naming_it(limit: Any) -> None:
    with pytest.raises(InvalidField, match="max_input_bytes"):
        InputLimits(limit)
    with pytest.raises(InvalidField, match="max_input_bytes"):
        MeerkatMachine.ephemeral(max_input_bytes=limit)


def test_a_row_that_does_not_read_back_is_never_acknowledged(disk: Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Field checks make this unreachable in practice; a codec that loses data is simulated
    (the decoder of the input, which recovery's row decoder calls)."""
    decode = row_codec.input_from_json

    async def body() -> None:
        m, store = disk.machine()
        await m.register_session("s")
        monkeypatch.setattr(row_codec, "input_from_json", lossy_input_from_json)
        with pytest.raises(InvalidField, match="cannot be stored and read back"):
            await m.accept_input("s", make_prompt("quiet"))
        assert store.calls("persist_input_state") == 0 and await m.list_active_inputs("s") == []
        monkeypatch.setattr(row_codec, "input_from_json", decode)
        assert (await m.accept_input("s", make_prompt("quiet"))).is_accepted
        await m.close()

    run(body())


@pytest.mark.parametrize(
    "result, field",
    [
        (RunResult(None), "run_result.text"),  # type: ignore[arg-type]
        (RunResult("ok", turns=-1), "run_result.turns"),
        (RunResult("ok", tokens_used=True), "run_result.tokens_used"),
        (RunResult("bad \udc80"), "run_result.text"),
        ("ok", "run_result"),
    ],
)
def test_a_malformed_run_result_fails_the_run_and_nothing_of_it_is_stored(disk: Disk, result: Any, field: str) -> None:
    class Returns:
        def __init__(self) -> None:
            self.calls = 0

        async def apply(self, run_id: str, primitive: RunPrimitive) -> CoreApplyOutput:
            self.calls += 1
            if self.calls > 1:
                await asyncio.Event().wait()  # parks the third attempt
            return CoreApplyOutput(ReceiptDraft(primitive.contributing_input_ids), None, result)

        async def control(self, command: object) -> None:
            pass

    async def body() -> None:
        m, store = disk.machine()
        executor = Returns()
        await m.register_session_with_executor("s", executor)
        item = make_prompt("q")
        await m.accept_input("s", item)
        while executor.calls < 2:
            await asyncio.sleep(0.001)
        view = await m.input_state("s", item.header.id)
        assert view is not None and view.attempts == 2 and view.last_error is not None
        assert view.last_error.error_type == "ExecutorError" and field in view.last_error.message
        assert store.calls("atomic_apply") == 0
        await m.close()

    run(body())


def test_a_scripted_executor_is_unaffected() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        ex = ScriptedExecutor()
        await m.register_session_with_executor("s", ex)
        _, handle = await m.accept_input_with_completion("s", make_prompt("fine"))
        assert handle is not None and (await handle.wait()).kind == "completed_without_result"

    run(body())


def test_inline_image_data_goes_to_the_blob_store_and_is_not_counted() -> None:
    item = prompt("look", images=(InlineImage("image/png", "A" * 500),))
    assert check_input(item, InputLimits(100)) is item
    with pytest.raises(InvalidField, match="more than the limit"):
        check_input(prompt("x" * 101), InputLimits(100))


@pytest.mark.parametrize(
    "build",
    [
        lambda value: prompt("x", input_id=value),
        lambda value: external_event("tick", input_id=value),
        lambda value: peer_message("peer", "hi", input_id=value),
        lambda value: continuation("go on", input_id=value),
    ],
)
def test_a_constructor_given_an_id_that_is_not_a_string_is_refused_as_a_key_would_be(
    build: Callable[[Any], Input],
) -> None:
    """``prompt(input_id=123)`` keeps the 123 (it used to become the string '123'), so the door
    refuses it naming ``header.id``, as it refuses ``idempotency_key=5``."""
    given: object = build(123).header.id
    assert type(given) is int
    with pytest.raises(InvalidField, match=r"header\.id") as err:
        check_input(build(123))
    assert err.value.field == "header.id" and "must be a string" in str(err.value)
    with pytest.raises(InvalidField) as key_err:
        check_input(prompt("x", idempotency_key=5))  # type: ignore[arg-type]
    assert key_err.value.field == "header.idempotency_key" and "must be a string" in str(key_err.value)
    assert check_input(build("given-id")).header.id == "given-id"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda big: prompt("x", input_id=big), "header.id"),
        (lambda big: prompt("x", idempotency_key=big), "header.idempotency_key"),
        (lambda big: prompt("x", supersession_key=big), "header.supersession_key"),
        (lambda big: prompt(big), "text"),
        (lambda big: external_event("tick", payload=big), "payload"),
        (lambda big: peer_response("peer", big, PeerResponseStatus.TERMINAL), "request_id"),
        (lambda big: prompt("x", images=(BlobImage(big, "sha256:" + "0" * 64),)), "images[0].media_type"),
    ],
)
def test_a_field_over_the_size_limit_is_named_in_the_refusal(build: Callable[[str], Input], field: str) -> None:
    """A 2 MB id or key is refused naming it, not as the input's "text"."""
    size = DEFAULT_MAX_INPUT_BYTES * 2 + 1
    with pytest.raises(InvalidField) as err:
        check_input(build("k" * size))
    assert err.value.field == field
    assert f"is too large: it takes {size} bytes, more than the limit of {DEFAULT_MAX_INPUT_BYTES}" in str(err.value)
    assert "text" not in err.value.problem.split("(")[0]


def test_an_input_over_the_limit_only_as_a_whole_names_the_input_and_its_largest_field() -> None:
    limits = InputLimits(100)
    item = prompt("t" * 40, input_id="i" * 30, idempotency_key="k" * 35)
    with pytest.raises(InvalidField) as err:
        check_input(item, limits)
    assert err.value.field == "input"
    assert "its strings (id, keys and text fields) take 105 bytes, more than the limit of 100" in str(err.value)
    assert "the largest is 'text' (40 bytes)" in str(err.value)
