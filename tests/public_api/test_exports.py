"""The public API: ``meerkat_runtime.__all__`` is exactly the agreed set of names, each importable
from the package (in a fresh interpreter that imports only the standard library), and
``PostgresRuntimeStore`` is exported lazily."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import meerkat_runtime
import pytest

PUBLIC = frozenset(
    {
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
        "LoggingSubscriber",
        "LostOwnership",
        "MachineClosed",
        "WrongEventLoop",
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
        "RetentionPolicy",
        "ResetReport",
        "RetireReport",
        "RetryPolicy",
        "RoutedInput",
        "RoutedInputRefused",
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
        "LockWaitTimedOut",
        "RowNotStored",
        "WriteRefused",
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
    }
)
"""Changing this set is a change of the public API: add (or, in a breaking release, remove)
names deliberately, with the docs."""


def test_all_is_exactly_the_public_set() -> None:
    assert len(meerkat_runtime.__all__) == len(set(meerkat_runtime.__all__)), "duplicates in __all__"
    assert set(meerkat_runtime.__all__) == PUBLIC


def test_every_public_name_is_importable_and_defined() -> None:
    namespace: dict[str, object] = {}
    exec("from meerkat_runtime import *", namespace)
    missing = sorted(name for name in PUBLIC if name not in namespace)
    assert missing == []
    assert all(getattr(meerkat_runtime, name) is namespace[name] for name in PUBLIC)


def test_the_package_imports_only_the_standard_library() -> None:
    """``import meerkat_runtime`` (and ``*``) in a fresh interpreter loads no third-party module,
    not even psycopg when it is installed: the PostgreSQL store is imported on first use."""
    script = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        from meerkat_runtime import *
        import meerkat_runtime
        loaded = {name.split(".")[0] for name in set(sys.modules) - before}
        stdlib = set(sys.stdlib_module_names)
        print(sorted(loaded - stdlib - {"meerkat_runtime"}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout


def test_postgres_store_is_exported_lazily() -> None:
    assert "PostgresRuntimeStore" not in meerkat_runtime.__all__
    assert "PostgresRuntimeStore" in dir(meerkat_runtime)
    pytest.importorskip("psycopg", reason="PostgreSQL store export NOT RUN: the postgres extra is not installed")
    from meerkat_runtime.store.postgres import PostgresRuntimeStore

    assert meerkat_runtime.PostgresRuntimeStore is PostgresRuntimeStore


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = meerkat_runtime.NoSuchThing  # type: ignore[attr-defined]
