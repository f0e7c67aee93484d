"""Every field an operation-registry call is handed, checked by type and range at the door.

An operation's spec, its result, error and reason texts and its peer handle end up in the
persisted registry snapshot; a value the snapshot codec could not store and read back would
make recovery refuse the whole registry. Each check raises
:class:`~meerkat_runtime.vocab.errors.InvalidField` (kind ``validation_failed``, also a
``ValueError``) naming the field, before the registry changes.
"""

from __future__ import annotations

from typing import Any

from meerkat_runtime.vocab import fields
from meerkat_runtime.vocab.errors import InvalidField
from meerkat_runtime.vocab.ids import MAX_OPERATION_ID_BYTES, id_in_message, id_problem
from meerkat_runtime.vocab.operation import OperationKind, OperationPeerHandle, OperationResult, OperationSpec


def check_spec(spec: Any, session_id: str | None = None) -> None:
    """A registrable ``OperationSpec``: an id under the rules of session ids
    (:func:`~meerkat_runtime.vocab.ids.id_problem`, at most ``MAX_OPERATION_ID_BYTES``), a known
    kind, text fields, a boolean; for a registry bound to a session (``session_id``), an
    ``owner_session_id`` that is that session's id, spelled as it is (not its runtime id)."""
    fields.instance("operation spec", "spec", spec, OperationSpec, "an OperationSpec")
    subject = "operation spec"
    if not isinstance(spec.id, str) or not spec.id:
        raise InvalidField(subject, "id", f"must be a non-empty id string, got {spec.id!r}")
    fields.text(subject, "id", spec.id)
    problem = id_problem(spec.id, MAX_OPERATION_ID_BYTES)
    if problem is not None:
        raise InvalidField(subject, "id", f"{id_in_message(spec.id)} {problem}")
    fields.member(subject, "kind", spec.kind, OperationKind)
    fields.text(subject, "owner_session_id", spec.owner_session_id)
    if session_id is not None and spec.owner_session_id != session_id:
        raise InvalidField(
            subject,
            "owner_session_id",
            f"must be the id of the registry's session, {id_in_message(session_id)}, "
            f"got {id_in_message(spec.owner_session_id)}",
        )
    fields.text(subject, "display_name", spec.display_name)
    fields.text(subject, "source_label", spec.source_label)
    fields.text(subject, "child_session_id", spec.child_session_id, optional=True)
    fields.flag(subject, "expect_peer_channel", spec.expect_peer_channel)


def check_result(result: Any, operation_id: str) -> None:
    """A storable ``OperationResult`` whose ``id`` is the id of the operation it completes."""
    subject = "operation result"
    fields.instance(subject, "result", result, OperationResult, "an OperationResult")
    fields.text(subject, "id", result.id)
    if result.id != operation_id:
        raise InvalidField(
            subject,
            "id",
            f"must be the id of the operation it completes, {id_in_message(str(operation_id))}, "
            f"got {id_in_message(result.id)}",
        )
    fields.text(subject, "content", result.content)
    fields.flag(subject, "is_error", result.is_error)
    fields.integer(subject, "duration_ms", result.duration_ms)
    fields.integer(subject, "tokens_used", result.tokens_used)


def check_text(field: str, value: Any, *, optional: bool = False) -> None:
    """An error or reason text (``None`` allowed when ``optional``)."""
    fields.text("operation", field, value, optional=optional)


def check_ids(subject: str, field: str, ids: Any) -> tuple[str, ...]:
    """A collection of operation id strings (a list, a tuple, any iterable but a single string
    or bytes), returned as a tuple in its order."""
    if isinstance(ids, str | bytes | bytearray):
        raise InvalidField(
            subject, field, f"must be a collection of operation ids, got a single {type(ids).__name__} {ids!r:.80}"
        )
    try:
        items = tuple(ids)
    except TypeError:
        got = "None" if ids is None else type(ids).__name__
        raise InvalidField(subject, field, f"must be a collection of operation ids, got {got}") from None
    for index, oid in enumerate(items):
        if not isinstance(oid, str):
            got = "None" if oid is None else type(oid).__name__
            raise InvalidField(subject, f"{field}[{index}]", f"must be an operation id string, got {got}")
    return items


def check_handle(handle: Any) -> None:
    """A storable ``OperationPeerHandle``."""
    subject = "peer handle"
    fields.instance(subject, "handle", handle, OperationPeerHandle, "an OperationPeerHandle")
    fields.text(subject, "peer_name", handle.peer_name)
    fields.text(subject, "address", handle.address)
    fields.text(subject, "peer_id", handle.peer_id, optional=True)
