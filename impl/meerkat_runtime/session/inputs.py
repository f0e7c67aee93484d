"""The inputs a session accepts: a common header plus one payload per input kind.

Every input is an immutable dataclass with a ``header`` and a ``kind`` string. The header
carries the id, the acceptance timestamp, the origin, the durability class and the three
optional correlation keys. ``handling_mode`` decides the lane an accepted input waits in:
``STEER`` inputs are taken before any ``QUEUE`` input.

The small constructor helpers (:func:`prompt`, :func:`external_event`, ...) mint a fresh
UUID v7 id and the current time; build the dataclasses directly to control every field.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, replace
from typing import ClassVar

from meerkat_runtime.vocab.ids import InputId, new_input_id
from meerkat_runtime.vocab.inputs import Durability
from meerkat_runtime.vocab.slot_init import slot_init


class InputOrigin(enum.Enum):
    """Who produced an input."""

    OPERATOR = "operator"
    PEER = "peer"
    EXTERNAL = "external"
    SYSTEM = "system"


class HandlingMode(enum.Enum):
    """Which lane an accepted input waits in. Steer inputs run before queued ones."""

    QUEUE = "queue"
    STEER = "steer"


class PeerResponseStatus(enum.Enum):
    PROGRESS = "progress"
    TERMINAL = "terminal"


@slot_init
@dataclass(frozen=True, slots=True)
class InputHeader:
    """Fields every input carries.

    ``idempotency_key``: a second input with the same key in the same session is
    deduplicated while the session keeps the first one: always while it is in flight, and once
    it has finished for as long as the retention policy keeps it (by default the latest 10,000
    finished inputs; docs/semantics.md, "Retention"), across restarts; after that the key is
    free again. ``supersession_key``: a newer input of the same kind and key replaces a
    still-queued older one.
    """

    id: InputId
    timestamp: float
    origin: InputOrigin = InputOrigin.OPERATOR
    durability: Durability = Durability.DURABLE
    idempotency_key: str | None = None
    supersession_key: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image carried inside the input as base64 text. Never persisted inline."""

    media_type: str
    data: str


@dataclass(frozen=True, slots=True)
class BlobImage:
    """An image stored in a blob store, referenced by its content address (``sha256:<hex>``)."""

    media_type: str
    blob_id: str


Image = InlineImage | BlobImage


@slot_init
@dataclass(frozen=True, slots=True)
class PromptInput:
    """A user or operator prompt. May not be ``derived``."""

    kind: ClassVar[str] = "prompt"
    header: InputHeader
    text: str
    images: tuple[Image, ...] = ()
    handling_mode: HandlingMode = HandlingMode.QUEUE


@dataclass(frozen=True, slots=True)
class ExternalEventInput:
    """An event from outside the agent (webhook, timer, ...). ``payload`` is opaque text.

    With a ``supersession_key`` a newer event replaces a queued older one of the same key;
    ``coalesce=True`` records the older one as coalesced into the newer one instead.
    """

    kind: ClassVar[str] = "external_event"
    header: InputHeader
    event_type: str
    payload: str = ""
    images: tuple[Image, ...] = ()
    handling_mode: HandlingMode = HandlingMode.QUEUE
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class PeerMessageInput:
    """A message from a peer agent."""

    kind: ClassVar[str] = "peer_message"
    header: InputHeader
    peer_id: str
    text: str
    handling_mode: HandlingMode = HandlingMode.QUEUE


@dataclass(frozen=True, slots=True)
class PeerResponseInput:
    """A peer's answer to an earlier request: progress updates or the terminal response.

    Progress responses take no explicit handling mode (``None``) and may coalesce; a
    terminal response may choose its lane.
    """

    kind: ClassVar[str] = "peer_response"
    header: InputHeader
    peer_id: str
    request_id: str
    status: PeerResponseStatus
    text: str = ""
    mode: HandlingMode | None = None
    coalesce: bool = False

    @property
    def handling_mode(self) -> HandlingMode:
        return self.mode if self.mode is not None else HandlingMode.QUEUE


@dataclass(frozen=True, slots=True)
class ContinuationInput:
    """A runtime-generated nudge to keep working (e.g. a background operation finished).

    Continuations always use the steer lane.
    """

    kind: ClassVar[str] = "continuation"
    header: InputHeader
    reason: str

    @property
    def handling_mode(self) -> HandlingMode:
        return HandlingMode.STEER


Input = PromptInput | ExternalEventInput | PeerMessageInput | PeerResponseInput | ContinuationInput

INPUT_KINDS: dict[str, type[Input]] = {
    cls.kind: cls for cls in (PromptInput, ExternalEventInput, PeerMessageInput, PeerResponseInput, ContinuationInput)
}


def input_images(item: Input) -> tuple[Image, ...]:
    """The images an input carries (empty for kinds without images)."""
    if isinstance(item, PromptInput | ExternalEventInput):
        return item.images
    return ()


def with_images(item: Input, images: tuple[Image, ...]) -> Input:
    """A copy of ``item`` with its images replaced (only for kinds that carry images)."""
    if isinstance(item, PromptInput | ExternalEventInput):
        return replace(item, images=images)
    if images:
        raise ValueError(f"{item.kind} inputs carry no images")
    return item


def wants_coalesce(item: Input) -> bool:
    return isinstance(item, ExternalEventInput | PeerResponseInput) and item.coalesce


def make_header(
    *,
    origin: InputOrigin = InputOrigin.OPERATOR,
    durability: Durability = Durability.DURABLE,
    idempotency_key: str | None = None,
    supersession_key: str | None = None,
    correlation_id: str | None = None,
    input_id: InputId | str | None = None,
) -> InputHeader:
    """A header with a fresh id (unless ``input_id`` is given) and the current time. A given
    ``input_id`` is kept as it is: one that is not a string is refused at accept
    (``InvalidField`` naming ``header.id``), as a key that is not a string is."""
    return InputHeader(
        id=InputId(input_id) if input_id is not None else new_input_id(),
        timestamp=time.time(),
        origin=origin,
        durability=durability,
        idempotency_key=idempotency_key,
        supersession_key=supersession_key,
        correlation_id=correlation_id,
    )


def prompt(
    text: str,
    *,
    images: tuple[Image, ...] = (),
    handling_mode: HandlingMode = HandlingMode.QUEUE,
    durability: Durability = Durability.DURABLE,
    idempotency_key: str | None = None,
    supersession_key: str | None = None,
    correlation_id: str | None = None,
    input_id: InputId | str | None = None,
) -> PromptInput:
    """A durable operator prompt with a fresh id."""
    header = make_header(
        durability=durability,
        idempotency_key=idempotency_key,
        supersession_key=supersession_key,
        correlation_id=correlation_id,
        input_id=input_id,
    )
    return PromptInput(header=header, text=text, images=images, handling_mode=handling_mode)


def external_event(
    event_type: str,
    payload: str = "",
    *,
    images: tuple[Image, ...] = (),
    handling_mode: HandlingMode = HandlingMode.QUEUE,
    durability: Durability = Durability.DURABLE,
    idempotency_key: str | None = None,
    supersession_key: str | None = None,
    coalesce: bool = False,
    input_id: InputId | str | None = None,
) -> ExternalEventInput:
    """An external event with a fresh id."""
    header = make_header(
        origin=InputOrigin.EXTERNAL,
        durability=durability,
        idempotency_key=idempotency_key,
        supersession_key=supersession_key,
        input_id=input_id,
    )
    return ExternalEventInput(
        header=header,
        event_type=event_type,
        payload=payload,
        images=images,
        handling_mode=handling_mode,
        coalesce=coalesce,
    )


def peer_message(
    peer_id: str,
    text: str,
    *,
    handling_mode: HandlingMode = HandlingMode.QUEUE,
    durability: Durability = Durability.DURABLE,
    idempotency_key: str | None = None,
    input_id: InputId | str | None = None,
) -> PeerMessageInput:
    """A peer message with a fresh id."""
    header = make_header(
        origin=InputOrigin.PEER, durability=durability, idempotency_key=idempotency_key, input_id=input_id
    )
    return PeerMessageInput(header=header, peer_id=peer_id, text=text, handling_mode=handling_mode)


def peer_response(
    peer_id: str,
    request_id: str,
    status: PeerResponseStatus,
    text: str = "",
    *,
    mode: HandlingMode | None = None,
    durability: Durability = Durability.DURABLE,
    supersession_key: str | None = None,
    coalesce: bool = False,
    input_id: InputId | str | None = None,
) -> PeerResponseInput:
    """A peer response (progress or terminal) with a fresh id."""
    header = make_header(
        origin=InputOrigin.PEER, durability=durability, supersession_key=supersession_key, input_id=input_id
    )
    return PeerResponseInput(
        header=header, peer_id=peer_id, request_id=request_id, status=status, text=text, mode=mode, coalesce=coalesce
    )


def continuation(
    reason: str,
    *,
    durability: Durability = Durability.DERIVED,
    input_id: InputId | str | None = None,
) -> ContinuationInput:
    """A runtime continuation (derived durability by default) with a fresh id."""
    header = make_header(origin=InputOrigin.SYSTEM, durability=durability, input_id=input_id)
    return ContinuationInput(header=header, reason=reason)
