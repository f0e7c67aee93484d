"""meerkat_runtime: the production runtime control plane for AI-agent sessions.

Standard library only. Durable input queues, the run loop, the async-operation registry
and crash recovery. This package never imports ``meerkat_model`` or ``meerkat_conformance``.

The public API is what this module exports (``__all__``): an application imports from
``meerkat_runtime`` only::

    from meerkat_runtime import MeerkatMachine, SqliteRuntimeStore, prompt

``PostgresRuntimeStore`` is exported too, but imported only when first used (it needs the
``postgres`` extra; ``import meerkat_runtime`` still imports nothing but the standard
library), so it is not in ``__all__``. Two submodules are public too: ``meerkat_runtime.inspection``
and ``meerkat_runtime.events.otel`` (the ``otel`` extra). Every other module path
(``meerkat_runtime.session.*``, ``meerkat_runtime.store.*``, ...) is internal: names there may
move between releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meerkat_runtime.events.bus import EventBus, Subscription
from meerkat_runtime.events.event import Change, LifecycleEvent
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.events.logging_sink import LoggingSubscriber
from meerkat_runtime.events.stream import EventStreamOverflow
from meerkat_runtime.ops.config import OpsLifecycleConfig
from meerkat_runtime.ops.recovery import open_durable_ops
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.repair.diagnosis import diagnose_session
from meerkat_runtime.repair.quarantine import quarantine_input
from meerkat_runtime.session.blobs import BlobStore, FileBlobStore, InMemoryBlobStore
from meerkat_runtime.session.completion import (
    Abandoned,
    Cancelled,
    Completed,
    CompletedWithoutResult,
    CompletionHandle,
    CompletionOutcome,
    LostOwnership,
    RunFailure,
    RuntimeTerminated,
)
from meerkat_runtime.session.dispatch import CompositionDispatchFailed, CompositionSignal, DispatchFailurePolicy
from meerkat_runtime.session.executor import (
    CancelAfterBoundary,
    CancelCurrentRun,
    CoreApplyOutput,
    CoreExecutor,
    ExecutorCancelled,
    ExecutorError,
    ReceiptDraft,
    RunControlCommand,
    RunPrimitive,
    RunResult,
    StopRuntimeExecutor,
    success_output,
)
from meerkat_runtime.session.inputs import (
    BlobImage,
    ContinuationInput,
    ExternalEventInput,
    HandlingMode,
    Image,
    InlineImage,
    Input,
    InputHeader,
    InputOrigin,
    PeerMessageInput,
    PeerResponseInput,
    PeerResponseStatus,
    PromptInput,
    continuation,
    external_event,
    make_header,
    peer_message,
    peer_response,
    prompt,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, AcceptOutcome, Deduplicated, Rejected
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.reports import (
    DestroyReport,
    InterruptReport,
    RecoveryReport,
    RecycleReport,
    ResetReport,
    RetireReport,
    StopReport,
)
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.session.routed import RoutedInput, RoutedInputRefused
from meerkat_runtime.session.testing import Block, Cancel, Fail, ScriptedExecutor, Succeed
from meerkat_runtime.session.views import InputStateView, SessionView
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import (
    Corrupt,
    DurableWriteFailed,
    ExecutorStartFailed,
    InputNotFound,
    InvalidField,
    InvalidRuntimeTransition,
    InvalidSetting,
    LeaseHeld,
    LockWaitTimedOut,
    MachineClosed,
    MeerkatError,
    NotReady,
    OpsLifecycleError,
    OwnershipLost,
    ReadFailed,
    RecoveryCorruption,
    RowNotStored,
    RuntimeDestroyed,
    SessionNotFound,
    StoreError,
    ValidationFailed,
    VersionMismatch,
    WriteFailed,
    WriteOutcomeUnknown,
    WriteRefused,
    WrongEventLoop,
)
from meerkat_runtime.vocab.ids import InputId, OperationId, RunId, SessionId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import Durability, InputLifecycleState
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec, OperationStatus
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

if TYPE_CHECKING:
    from meerkat_runtime.store.postgres import PostgresRuntimeStore as PostgresRuntimeStore

__version__ = "0.1.0"

__all__ = [
    "Abandoned",
    "AcceptOutcome",
    "Accepted",
    "BlobImage",
    "BlobStore",
    "Block",
    "Cancel",
    "CancelAfterBoundary",
    "CancelCurrentRun",
    "Cancelled",
    "Change",
    "Completed",
    "CompletedWithoutResult",
    "CompletionHandle",
    "CompletionOutcome",
    "CompositionDispatchFailed",
    "CompositionSignal",
    "ContinuationInput",
    "CoreApplyOutput",
    "CoreExecutor",
    "Corrupt",
    "Deduplicated",
    "DestroyReport",
    "DispatchFailurePolicy",
    "Durability",
    "DurableWriteFailed",
    "EventBus",
    "EventLog",
    "EventStreamOverflow",
    "ExecutorCancelled",
    "ExecutorError",
    "ExecutorStartFailed",
    "ExternalEventInput",
    "Fail",
    "FaultInjectingStore",
    "FileBlobStore",
    "HandlingMode",
    "Image",
    "InMemoryBlobStore",
    "InMemoryRuntimeStore",
    "InlineImage",
    "Input",
    "InputHeader",
    "InputId",
    "InputLifecycleState",
    "InputNotFound",
    "InputOrigin",
    "InputStateView",
    "InterruptReport",
    "InvalidField",
    "InvalidRuntimeTransition",
    "InvalidSetting",
    "LeaseHeld",
    "LifecycleEvent",
    "LockWaitTimedOut",
    "LoggingSubscriber",
    "LostOwnership",
    "MachineClosed",
    "ManualClock",
    "MeerkatError",
    "MeerkatMachine",
    "MemoryStorage",
    "NotReady",
    "OperationId",
    "OperationKind",
    "OperationResult",
    "OperationSpec",
    "OperationStatus",
    "OpsLifecycleConfig",
    "OpsLifecycleError",
    "OpsLifecycleRegistry",
    "OwnershipConfig",
    "OwnershipLost",
    "PeerMessageInput",
    "PeerResponseInput",
    "PeerResponseStatus",
    "PromptInput",
    "ReadFailed",
    "ReceiptDraft",
    "RecoveryCorruption",
    "RecoveryReport",
    "RecycleReport",
    "RegistrationPhase",
    "Rejected",
    "ResetReport",
    "RetentionPolicy",
    "RetireReport",
    "RetryPolicy",
    "RoutedInput",
    "RoutedInputRefused",
    "RowNotStored",
    "RunControlCommand",
    "RunFailure",
    "RunId",
    "RunPrimitive",
    "RunResult",
    "RuntimeDestroyed",
    "RuntimeState",
    "RuntimeStore",
    "RuntimeTerminated",
    "ScriptedExecutor",
    "SessionId",
    "SessionNotFound",
    "SessionView",
    "SqliteRuntimeStore",
    "StopReport",
    "StopRuntimeExecutor",
    "StoreError",
    "Subscription",
    "Succeed",
    "ValidationFailed",
    "VersionMismatch",
    "WriteFailed",
    "WriteOutcomeUnknown",
    "WriteRefused",
    "WrongEventLoop",
    "__version__",
    "canonical_runtime_id",
    "continuation",
    "diagnose_session",
    "external_event",
    "make_header",
    "open_durable_ops",
    "peer_message",
    "peer_response",
    "prompt",
    "quarantine_input",
    "success_output",
]

LAZY_EXPORTS = ("PostgresRuntimeStore",)
"""Exported names imported on first use (they need an extra); not in ``__all__``."""


def __getattr__(name: str) -> object:
    if name == "PostgresRuntimeStore":
        from meerkat_runtime.store.postgres import PostgresRuntimeStore

        return PostgresRuntimeStore
    raise AttributeError(f"module 'meerkat_runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *LAZY_EXPORTS})
