"""Admission validation: which inputs are refused outright (outcome ``Rejected``).

A rejected input is not an error: nothing is stored and the caller gets the reason.
"""

from __future__ import annotations

from meerkat_runtime.session.inputs import (
    ContinuationInput,
    ExternalEventInput,
    Input,
    PeerResponseInput,
    PeerResponseStatus,
    PromptInput,
)
from meerkat_runtime.vocab.inputs import Durability

_DERIVED = Durability.DERIVED
"""Bound once (a member looked up on its enum class costs a hook call in Python 3.11)."""


def rejection_reason(item: Input) -> str | None:
    """Why ``item`` must be rejected, or ``None`` when it is admissible."""
    header = item.header
    if not str(header.id):
        return "input id must not be empty"
    if header.idempotency_key is not None and not header.idempotency_key:
        return "idempotency key must not be empty when given"
    if header.supersession_key is not None and not header.supersession_key:
        return "supersession key must not be empty when given"
    if isinstance(item, PromptInput) and header.durability is _DERIVED:
        return "durability violation: a prompt cannot have derived durability"
    if isinstance(item, ExternalEventInput):
        if header.durability is Durability.DERIVED:
            return "durability violation: an external event cannot have derived durability"
        if not item.event_type:
            return "external event type must not be empty"
        if item.coalesce and header.supersession_key is None:
            return "coalescing requires a supersession key"
    if isinstance(item, PeerResponseInput):
        if not item.request_id:
            return "peer response terminal invalid: request id must not be empty"
        if item.status is PeerResponseStatus.PROGRESS and item.mode is not None:
            return "peer handling mode invalid: progress responses take no handling mode"
        if item.coalesce and (item.status is not PeerResponseStatus.PROGRESS or header.supersession_key is None):
            return "coalescing requires a progress response with a supersession key"
    if isinstance(item, ContinuationInput) and not item.reason:
        return "continuation reason must not be empty"
    return None
