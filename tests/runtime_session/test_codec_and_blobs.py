"""Row wire format (versioned JSON) and the blob boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meerkat_runtime.session.blobs import (
    BlobNotFound,
    BlobStoreUnavailable,
    FileBlobStore,
    InMemoryBlobStore,
    blob_id_for,
    externalize_images,
)
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.inputs import (
    BlobImage,
    HandlingMode,
    InlineImage,
    PeerResponseStatus,
    continuation,
    external_event,
    peer_message,
    peer_response,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import (
    LifecycleRecord,
    RowFormatError,
    decode_lifecycle,
    decode_record,
    encode_lifecycle,
    encode_record,
)
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import ValidationFailed
from meerkat_runtime.vocab.ids import InputId, RunId
from meerkat_runtime.vocab.inputs import (
    Abandoned,
    AbandonKind,
    AbandonReason,
    Coalesced,
    Consumed,
    Superseded,
)
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run, stored_rows

IMAGE = InlineImage("image/png", "aGVsbG8=")


def _record(**overrides: object) -> InputRecord:
    base: dict[str, object] = dict(
        input=make_prompt("x"), phase=S.QUEUED, lane=Lane.QUEUE, admission_seq=3, created_at=1.5, updated_at=2.5
    )
    base.update(overrides)
    return InputRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "item",
    [
        make_prompt("p", handling_mode=HandlingMode.STEER, idempotency_key="k", correlation_id="c"),
        external_event("tick", "{}", supersession_key="clock", coalesce=True),
        peer_message("peer", "hi"),
        peer_response("peer", "req", PeerResponseStatus.TERMINAL, "done", mode=HandlingMode.STEER),
        continuation("op finished"),
    ],
)
def test_every_input_kind_round_trips(item: object) -> None:
    rec = _record(input=item, history=[HistoryEntry(None, S.ACCEPTED, "accepted", 1.0)])
    assert decode_record(encode_record(rec)) == rec


@pytest.mark.parametrize(
    "phase, terminal",
    [
        (S.CONSUMED, Consumed()),
        (S.SUPERSEDED, Superseded(InputId("new"))),
        (S.COALESCED, Coalesced(InputId("agg"))),
        (S.ABANDONED, Abandoned(AbandonReason(AbandonKind.MAX_ATTEMPTS_EXHAUSTED, 3))),
        (S.ABANDONED, Abandoned(AbandonReason(AbandonKind.STOPPED))),
    ],
)
def test_terminal_rows_round_trip(phase: S, terminal: object) -> None:
    rec = _record(phase=phase, terminal=terminal, attempts=3, last_run_id=RunId("r"), last_boundary_sequence=0)
    assert decode_record(encode_record(rec)) == rec


def _doc(rec: InputRecord) -> dict[str, object]:
    doc: dict[str, object] = json.loads(encode_record(rec))
    return doc


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.update(row_version=3), "unsupported row_version 3"),
        (lambda d: d.update(row_version=True), "unsupported row_version True"),
        (lambda d: d.pop("row_version"), "unsupported row_version None"),
        (lambda d: d.update(phase="consumed"), "without its outcome"),
        (lambda d: d.update(terminal={"outcome_type": "consumed"}), "carries a terminal outcome"),
        (lambda d: d.update(phase="levitating"), "unknown phase"),
        (lambda d: d.update(attempts="1"), "'attempts'"),
        (lambda d: d.update(input_id="other"), "differs from the payload"),
        (lambda d: d.pop("lane"), "missing field 'lane'"),
    ],
)
def test_malformed_rows_are_refused_with_a_named_reason(mutate: object, fragment: str) -> None:
    doc = _doc(_record())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(RowFormatError) as err:
        decode_record(json.dumps(doc).encode())
    assert fragment in str(err.value)


def test_lifecycle_record_round_trips_and_rejects_legacy_shapes() -> None:
    rec = LifecycleRecord(RuntimeState.ATTACHED, "epoch")
    decoded = decode_lifecycle(encode_lifecycle(rec))
    assert decoded == LifecycleRecord(RuntimeState.IDLE, "epoch")  # Attached is persisted as Idle
    for legacy in (b'"idle"', b'{"runtime_state": "idle"}', b'{"record_version": 2, "runtime_state": "idle"}'):
        with pytest.raises(RowFormatError):
            decode_lifecycle(legacy)


def test_inline_images_are_never_encoded() -> None:
    with pytest.raises(RowFormatError):
        encode_record(_record(input=make_prompt(images=(IMAGE,))))


def test_blob_ids_are_content_addressed_and_puts_idempotent(tmp_path: Path) -> None:
    for store in (InMemoryBlobStore(), FileBlobStore(tmp_path / "blobs")):
        blob_id = store.put_image(IMAGE.media_type, IMAGE.data)
        assert blob_id == blob_id_for(IMAGE.media_type, IMAGE.data) and blob_id.startswith("sha256:")
        assert store.put_image(IMAGE.media_type, IMAGE.data) == blob_id
        payload = store.get(blob_id)
        assert (payload.media_type, payload.data) == (IMAGE.media_type, IMAGE.data)
        store.delete(blob_id)
        store.delete(blob_id)
        assert not store.exists(blob_id)
        with pytest.raises(BlobNotFound):
            store.get(blob_id)
    reopened = FileBlobStore(tmp_path / "blobs")
    kept = FileBlobStore(tmp_path / "blobs").put_image("image/jpeg", "abc")
    assert reopened.get(kept).data == "abc"


def test_externalize_replaces_only_inline_images() -> None:
    blobs = InMemoryBlobStore()
    ref = BlobImage("image/gif", "sha256:" + "0" * 64)
    item = make_prompt(images=(IMAGE, ref))
    moved = externalize_images(item, blobs)
    assert moved.header == item.header
    assert moved.images[1] == ref  # type: ignore[union-attr]
    first = moved.images[0]  # type: ignore[union-attr]
    assert isinstance(first, BlobImage) and blobs.get(first.blob_id).data == IMAGE.data
    with pytest.raises(BlobStoreUnavailable):
        externalize_images(item, None)


def test_durable_accept_externalizes_images_before_the_ack() -> None:
    async def body() -> None:
        store, blobs = InMemoryRuntimeStore(), InMemoryBlobStore()
        m = MeerkatMachine.persistent(store, blobs, ownership=SAME_WORKER)
        await m.register_session("s")
        item = make_prompt("look", images=(IMAGE,))
        await m.accept_input("s", item)
        raw = stored_rows(store, "s")[0].payload
        assert IMAGE.data.encode() not in raw
        stored = decode_record(raw)
        image = stored.input.images[0]  # type: ignore[union-attr]
        assert isinstance(image, BlobImage) and blobs.exists(image.blob_id)
        live = await m.session_view("s")
        assert live.queue == (item.header.id,)

    run(body())


def test_persistent_runtime_without_blob_store_refuses_image_inputs() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        m = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await m.register_session("s")
        with pytest.raises(ValidationFailed) as err:
            await m.accept_input("s", make_prompt(images=(IMAGE,)))
        assert "no blob store" in str(err.value)
        assert stored_rows(store, "s") == []
        assert await m.list_active_inputs("s") == []

    run(body())


def test_compact_rows_leave_null_fields_out_and_rows_with_explicit_nulls_still_decode() -> None:
    """The compact form writes no null optional field; the form that spelled every null out
    (written by earlier releases, same row version) decodes to the same record."""
    record = _record(
        history=[HistoryEntry(None, S.ACCEPTED, "accepted", 1.5), HistoryEntry(S.ACCEPTED, S.QUEUED, "queued", 1.5)]
    )
    compact = json.loads(encode_record(record))
    for name in ("terminal", "outcome", "last_error", "last_run_id", "last_boundary_sequence"):
        assert name not in compact
    assert "from" not in compact["history"][0]
    assert not {"idempotency_key", "supersession_key", "correlation_id"} & set(compact["input"]["header"])
    spelled_out = dict(compact)
    spelled_out.update(terminal=None, outcome=None, last_error=None, last_run_id=None, last_boundary_sequence=None)
    spelled_out["history"] = [{"from": None, **compact["history"][0]}, compact["history"][1]]
    spelled_out["input"] = dict(compact["input"])
    spelled_out["input"]["header"] = dict(
        compact["input"]["header"], idempotency_key=None, supersession_key=None, correlation_id=None
    )
    assert decode_record(json.dumps(spelled_out).encode()) == decode_record(encode_record(record)) == record
