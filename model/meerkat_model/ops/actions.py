"""The actions of the operation-registry model: one record per registry call.

Operation ids are model ints ``0 .. ids-1``; ``kind`` is an
:class:`~meerkat_model.vocab.statuses.OpKind` value; payloads are the plain values of
:mod:`meerkat_model.ops.payloads` (``"r1"``, ``"e1"``, ``None``, ``"shutdown"``). Each record's
call name (:func:`~meerkat_model.action_record.action_name`) is the registry method it stands
for; ``drop_watcher``, ``drop_wait``, ``crash``, ``detach`` and ``write_fails`` are events around
the calls.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.action_record import action_record
from meerkat_model.ops.payloads import Payload


@action_record("register_operation")
class RegisterOperation(NamedTuple):
    """``register_operation(spec)`` of a new operation ``op`` of ``kind``."""

    op: int
    kind: int


@action_record("provisioning_succeeded")
class ProvisioningSucceeded(NamedTuple):
    """``provisioning_succeeded(op)``."""

    op: int


@action_record("provisioning_failed")
class ProvisioningFailed(NamedTuple):
    """``provisioning_failed(op, error)``."""

    op: int
    error: str


@action_record("abort_provisioning")
class AbortProvisioning(NamedTuple):
    """``abort_provisioning(op, reason)`` (``reason`` may be ``None``)."""

    op: int
    reason: Payload


@action_record("peer_ready")
class PeerReady(NamedTuple):
    """``peer_ready(op, handle)``."""

    op: int


@action_record("register_watcher")
class RegisterWatcher(NamedTuple):
    """``register_watcher(op)``."""

    op: int


@action_record("drop_watcher")
class DropWatcher(NamedTuple):
    """The last reference to a pending watch of ``op`` is dropped: the registry releases that
    watcher (one fewer pending) without resolving it."""

    op: int


@action_record("report_progress")
class ReportProgress(NamedTuple):
    """``report_progress(op, update)``."""

    op: int


@action_record("complete_operation")
class CompleteOperation(NamedTuple):
    """``complete_operation(op, result)``."""

    op: int
    result: str


@action_record("fail_operation")
class FailOperation(NamedTuple):
    """``fail_operation(op, error)``."""

    op: int
    error: str


@action_record("cancel_operation")
class CancelOperation(NamedTuple):
    """``cancel_operation(op, reason)`` (``reason`` may be ``None``)."""

    op: int
    reason: Payload


@action_record("request_retire")
class RequestRetire(NamedTuple):
    """``request_retire(op)``."""

    op: int


@action_record("mark_retired")
class MarkRetired(NamedTuple):
    """``mark_retired(op)``."""

    op: int


@action_record("terminate_owner")
class TerminateOwner(NamedTuple):
    """``terminate_owner(reason)``: every active operation ends Terminated."""

    reason: str


@action_record("collect_completed")
class CollectCompleted(NamedTuple):
    """``collect_completed()``."""


@action_record("wait_all")
class WaitAll(NamedTuple):
    """``wait_all(members)``: begin a barrier, or resolve at once when every member is terminal."""

    members: tuple[int, ...]


@action_record("drop_wait")
class DropWait(NamedTuple):
    """The pending ``wait_all`` is dropped or cancelled."""


@action_record("crash")
class Crash(NamedTuple):
    """The process dies; the registry is rebuilt (``from_recovered``) from its last durable write."""


@action_record("detach")
class Detach(NamedTuple):
    """The registry's session goes away while the process lives (unregistered, its machine
    closed, its lease lost): every pending watcher and the pending ``wait_all`` are released
    with an error, and the session's next registry is recovered from the last durable write."""


@action_record("write_fails")
class WriteFails(NamedTuple):
    """``inner`` with its durable write failing: ``persistence_failed`` and nothing changes when
    ``inner`` would write; exactly ``inner`` otherwise."""

    inner: OpsAction


OpsAction = (
    RegisterOperation
    | ProvisioningSucceeded
    | ProvisioningFailed
    | AbortProvisioning
    | PeerReady
    | RegisterWatcher
    | DropWatcher
    | ReportProgress
    | CompleteOperation
    | FailOperation
    | CancelOperation
    | RequestRetire
    | MarkRetired
    | TerminateOwner
    | CollectCompleted
    | WaitAll
    | DropWait
    | Crash
    | Detach
    | WriteFails
)
"""Any action of the operation-registry model."""

TERMINAL_CALLS = (
    ProvisioningFailed,
    AbortProvisioning,
    CompleteOperation,
    FailOperation,
    CancelOperation,
    MarkRetired,
)
"""Per-operation calls that end an operation (each one durable)."""

DURABLE_CALLS = (*TERMINAL_CALLS, TerminateOwner, CollectCompleted)
"""Calls that may make a durable write (and so have a ``WriteFails`` variant worth probing)."""
