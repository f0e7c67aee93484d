"""Which kind of runtime input stands for each model accept.

The model does not know input kinds; the runtime keeps them (in memory and in every stored row),
validates them and only supersedes or coalesces an input of the *same* kind. So the harness
varies the kind where that cannot change the outcome, and checks the runtime reports the kind
it was given:

* an input with a supersession key is always an external event (the only kind that both takes a
  key and may coalesce), so every keyed input can replace every other one, as in the model;
* otherwise the kind cycles with the input id over the kinds that can carry the input's
  attributes: prompt, external event, peer message (idempotency key and lane), peer response and
  continuation (neither takes an idempotency key; a continuation always waits in the steer
  lane).
"""

from __future__ import annotations

from meerkat_runtime.session.inputs import (
    HandlingMode,
    Input,
    PeerResponseStatus,
    continuation,
    external_event,
    peer_message,
    peer_response,
    prompt,
)
from meerkat_runtime.vocab.inputs import Durability

from meerkat_conformance.session.views import runtime_input_id

NO_KEY = -1


def input_kind(i: int, lane: int, idem: int, skey: int, coalesce: int) -> str:
    """The kind of runtime input that stands for model input ``i`` with these attributes."""
    if skey != NO_KEY or coalesce:
        return "external_event"
    kinds = ["prompt", "external_event", "peer_message"]
    if idem == NO_KEY:
        kinds.append("peer_response")
        if lane:
            kinds.append("continuation")
    return kinds[i % len(kinds)]


def make_input(i: int, lane: int, idem: int, skey: int, coalesce: int, ephemeral: int) -> Input:
    """The runtime input for model input ``i`` (id ``input-<i>``), of :func:`input_kind`."""
    kind = input_kind(i, lane, idem, skey, coalesce)
    mode = HandlingMode.STEER if lane else HandlingMode.QUEUE
    durability = Durability.EPHEMERAL if ephemeral else Durability.DURABLE
    key = None if idem == NO_KEY else f"idem-{idem}"
    input_id = runtime_input_id(i)
    text = f"payload of input {i}"
    match kind:
        case "prompt":
            return prompt(text, handling_mode=mode, durability=durability, idempotency_key=key, input_id=input_id)
        case "peer_message":
            return peer_message(
                "peer-a", text, handling_mode=mode, durability=durability, idempotency_key=key, input_id=input_id
            )
        case "peer_response":
            status = PeerResponseStatus.TERMINAL
            return peer_response(
                "peer-a", f"request-{i}", status, text, mode=mode, durability=durability, input_id=input_id
            )
        case "continuation":
            return continuation(text, durability=durability, input_id=input_id)
    return external_event(
        "conformance",
        text,
        handling_mode=mode,
        durability=durability,
        idempotency_key=key,
        supersession_key=None if skey == NO_KEY else f"skey-{skey}",
        coalesce=bool(coalesce),
        input_id=input_id,
    )
