"""Every field of an input checked by type and range before admission (the door).

:func:`check_input` runs before an accept takes the session gate. A field of the wrong type or
out of range raises :class:`~meerkat_runtime.vocab.errors.InvalidField` (kind
``validation_failed``) naming it — ``header.idempotency_key``, ``payload``, ``images[1].data``
— and nothing is planned, stored or acknowledged. What passes is exactly what the row codec
stores and reads back (:mod:`meerkat_runtime.session.row_codec`); a persistent session still
checks each new row reads back before acknowledging it (``row_codec.encode_record_checked``).

This is distinct from :mod:`meerkat_runtime.session.validation`: a well-formed input the rules
refuse (an empty id, a derived prompt, coalescing without a key) is the ``Rejected`` outcome.

Size: the input's text — every string its row stores, in UTF-8 bytes (inline image data goes to
the blob store, not the row, and is not counted) — may not exceed
``InputLimits.max_input_bytes`` (default 1 MiB).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.session.inputs import (
    BlobImage,
    ContinuationInput,
    ExternalEventInput,
    HandlingMode,
    InlineImage,
    Input,
    InputHeader,
    InputOrigin,
    PeerMessageInput,
    PeerResponseInput,
    PeerResponseStatus,
    PromptInput,
    input_images,
)
from meerkat_runtime.vocab import fields
from meerkat_runtime.vocab.errors import InvalidField
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.json_limits import MAX_JSON_BYTES

SUBJECT = "input"
DEFAULT_MAX_INPUT_BYTES = 1 << 20
"""Default limit on an input's text, in UTF-8 bytes (1 MiB)."""
MAX_INPUT_BYTES_LIMIT = 1 << 30
"""The largest ``max_input_bytes`` a machine accepts (1 GiB; a machine without a store)."""
MAX_STORED_INPUT_BYTES = MAX_JSON_BYTES - (1 << 20)
"""The largest ``max_input_bytes`` of a machine with a store (63 MiB): an input's row is one
JSON document of at most :data:`~meerkat_runtime.vocab.json_limits.MAX_JSON_BYTES` (64 MiB),
and the row's own fields, its history and its outcome need the rest. (An input within the limit
whose JSON text grows past 64 MiB by escaping is still refused at accept, nothing stored.)"""

_INPUT_CLASSES = (PromptInput, ExternalEventInput, PeerMessageInput, PeerResponseInput, ContinuationInput)


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Limits applied to every accepted input."""

    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES

    def __post_init__(self) -> None:
        fields.integer(
            "input limits", "max_input_bytes", self.max_input_bytes, minimum=1, maximum=MAX_INPUT_BYTES_LIMIT
        )


DEFAULT_LIMITS = InputLimits()


def check_input(item: Any, limits: InputLimits = DEFAULT_LIMITS) -> Input:
    """Return ``item`` if every field has the right type and range and its text fits
    ``limits``; else raise ``InvalidField`` naming the first wrong field."""
    if not isinstance(item, _INPUT_CLASSES):
        names = ", ".join(cls.__name__ for cls in _INPUT_CLASSES)
        raise InvalidField(SUBJECT, "input", f"must be one of {names}, got {type(item).__name__}")
    size = _check_header(item.header)
    if isinstance(item, PromptInput):
        size += _text("text", item.text)
        size += _images(item.images)
        fields.member(SUBJECT, "handling_mode", item.handling_mode, HandlingMode)
    elif isinstance(item, ExternalEventInput):
        size += _text("event_type", item.event_type) + _text("payload", item.payload)
        size += _images(item.images)
        fields.member(SUBJECT, "handling_mode", item.handling_mode, HandlingMode)
        fields.flag(SUBJECT, "coalesce", item.coalesce)
    elif isinstance(item, PeerMessageInput):
        size += _text("peer_id", item.peer_id) + _text("text", item.text)
        fields.member(SUBJECT, "handling_mode", item.handling_mode, HandlingMode)
    elif isinstance(item, PeerResponseInput):
        size += _text("peer_id", item.peer_id) + _text("request_id", item.request_id) + _text("text", item.text)
        fields.member(SUBJECT, "status", item.status, PeerResponseStatus)
        fields.member(SUBJECT, "mode", item.mode, HandlingMode, optional=True)
        fields.flag(SUBJECT, "coalesce", item.coalesce)
    else:
        size += _text("reason", item.reason)
    if size > limits.max_input_bytes:
        raise _too_large(item, size, limits.max_input_bytes)
    return item


def _too_large(item: Input, size: int, limit: int) -> InvalidField:
    """The refusal of an input whose stored strings take ``size`` bytes, more than ``limit``:
    naming the field when one field alone is over the limit, else the input as a whole (and its
    largest field). Only called once every field has passed its type check."""
    strings: list[tuple[str, str]] = []
    for prefix, holder in (("header.", item.header), ("", item)):
        for spec in dataclasses.fields(holder):
            value = getattr(holder, spec.name)
            if isinstance(value, str):
                strings.append((prefix + spec.name, value))
    for i, image in enumerate(input_images(item)):
        strings.append((f"images[{i}].media_type", image.media_type))
        if isinstance(image, BlobImage):
            strings.append((f"images[{i}].blob_id", image.blob_id))
    name, largest = max(((name, fields.utf8_size(value)) for name, value in strings), key=lambda pair: pair[1])
    where = "(MeerkatMachine max_input_bytes: every string an input's row stores counts)"
    if largest > limit:
        return InvalidField(
            SUBJECT, name, f"is too large: it takes {largest} bytes, more than the limit of {limit} {where}"
        )
    return InvalidField(
        SUBJECT,
        "input",
        f"is too large: its strings (id, keys and text fields) take {size} bytes, more than the limit of "
        f"{limit} {where}; the largest is {name!r} ({largest} bytes)",
    )


def _text(field: str, value: Any, *, optional: bool = False) -> int:
    if type(value) is str and value.isascii():  # the common case, as fields.text accepts it
        return len(value)
    if value is None and optional:
        return 0
    fields.text(SUBJECT, field, value, optional=optional)
    return fields.utf8_size(value)


def _check_header(header: Any) -> int:
    fields.instance(SUBJECT, "header", header, InputHeader, "an InputHeader")
    size = _text("header.id", header.id)
    fields.number(SUBJECT, "header.timestamp", header.timestamp)
    fields.member(SUBJECT, "header.origin", header.origin, InputOrigin)
    fields.member(SUBJECT, "header.durability", header.durability, Durability)
    size += _text("header.idempotency_key", header.idempotency_key, optional=True)
    size += _text("header.supersession_key", header.supersession_key, optional=True)
    size += _text("header.correlation_id", header.correlation_id, optional=True)
    return size


def _images(images: Any) -> int:
    fields.instance(SUBJECT, "images", images, tuple, "a tuple of InlineImage or BlobImage")
    size = 0
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if isinstance(image, InlineImage):  # its data goes to the blob store, not the row
            size += _text(f"{where}.media_type", image.media_type)
            _text(f"{where}.data", image.data)
        elif isinstance(image, BlobImage):
            size += _text(f"{where}.media_type", image.media_type) + _text(f"{where}.blob_id", image.blob_id)
        else:
            fields.instance(SUBJECT, where, image, (InlineImage, BlobImage), "an InlineImage or a BlobImage")
    return size
