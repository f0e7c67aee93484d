"""Typed errors of the runtime. Every error has a stable ``kind`` string.

The reference model returns rejections with the same ``kind`` strings, which is how the
conformance harness compares the two one to one.
"""

from __future__ import annotations

from typing import ClassVar

UNDESCRIBABLE = "(the error's message could not be read)"
"""The message of an error whose ``str()`` and ``repr()`` both raise."""


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(type name, message)`` of ``error``, without ever raising: the message is ``str(error)``;
    when that raises (an application's ``__str__`` may), ``repr(error)``; when that raises too,
    :data:`UNDESCRIBABLE`. The type name is ``BaseException`` should reading it raise."""
    try:
        error_type = str(type(error).__name__)
    except BaseException:
        error_type = "BaseException"
    for describe in (str, repr):
        try:
            return error_type, describe(error)
        except BaseException:  # whatever the application's __str__ raises
            continue
    return error_type, UNDESCRIBABLE


def error_message(error: BaseException) -> str:
    """The message of ``error`` (:func:`describe_error`): for formatting an application's error
    into another one's message without raising."""
    return describe_error(error)[1]


class MeerkatError(Exception):
    """Base of every error the runtime raises on purpose."""

    kind: ClassVar[str] = "error"


# --- operation registry -------------------------------------------------------------------


class OpsLifecycleError(MeerkatError):
    kind: ClassVar[str] = "ops_error"


class NotFound(OpsLifecycleError):
    kind: ClassVar[str] = "not_found"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id!r} is not tracked (never registered, collected or evicted)")
        self.operation_id = operation_id


class AlreadyRegistered(OpsLifecycleError):
    kind: ClassVar[str] = "already_registered"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id!r} is already registered")
        self.operation_id = operation_id


class InvalidTransition(OpsLifecycleError):
    kind: ClassVar[str] = "invalid_transition"

    def __init__(self, operation_id: str, status: str, action: str) -> None:
        super().__init__(f"operation {operation_id!r}: cannot {action} while {status}")
        self.operation_id = operation_id
        self.status = status
        self.action = action


class MaxConcurrentExceeded(OpsLifecycleError):
    kind: ClassVar[str] = "max_concurrent_exceeded"

    def __init__(self, limit: int, active: int) -> None:
        super().__init__(
            f"max_concurrent limit {limit} reached ({active} operations active); "
            "finish or cancel one, or raise max_concurrent"
        )
        self.limit = limit
        self.active = active


class PeerNotExpected(OpsLifecycleError):
    kind: ClassVar[str] = "peer_not_expected"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id!r} is not a mob member child; it has no peer channel")
        self.operation_id = operation_id


class AlreadyPeerReady(OpsLifecycleError):
    kind: ClassVar[str] = "already_peer_ready"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id!r} already reported peer_ready")
        self.operation_id = operation_id


class WaitAlreadyActive(OpsLifecycleError):
    kind: ClassVar[str] = "wait_already_active"

    def __init__(self) -> None:
        super().__init__("a wait_all barrier is already active on this registry; await or drop it first")


class DuplicateWaitOperation(OpsLifecycleError):
    kind: ClassVar[str] = "duplicate_wait_operation"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"wait_all lists operation {operation_id!r} more than once")
        self.operation_id = operation_id


class Internal(OpsLifecycleError):
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WaitAllCancelled(Internal):
    """The awaited ``wait_all`` barrier was cancelled (explicitly, by cancelling the awaiting
    task, or by dropping its handle) before every member became terminal."""

    def __init__(self, wait_request_id: str) -> None:
        super().__init__(f"wait_all request {wait_request_id!r} was cancelled before all its operations finished")
        self.wait_request_id = wait_request_id


class PersistenceFailed(Internal):
    """A terminal transition could not be made durable; it was rolled back in memory.

    ``outcome_unknown`` is ``True`` when the store left the write's outcome unknown and the
    registry could not read it back: the registry is then *in doubt* and refuses every change
    until it has read the store again (docs/semantics.md, "Unknown write outcomes")."""

    kind: ClassVar[str] = "persistence_failed"

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class SnapshotFormatError(OpsLifecycleError):
    """A persisted ops snapshot is malformed or has an unsupported version."""

    kind: ClassVar[str] = "snapshot_format"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- settings ------------------------------------------------------------------------------


class InvalidSetting(MeerkatError, ValueError):
    """A setting (a constructor argument or configuration value) has the wrong type or is out
    of its documented range; nothing was built. Also a ``ValueError``."""

    kind: ClassVar[str] = "invalid_setting"


# --- stores --------------------------------------------------------------------------------


class StoreError(MeerkatError):
    """A store call failed. ``outcome_unknown`` is ``True`` only when a write may or may not
    have landed (:class:`WriteOutcomeUnknown`); every other store error means the call changed
    nothing."""

    kind: ClassVar[str] = "store_error"
    outcome_unknown: ClassVar[bool] = False

    def __init__(self, runtime_id: str, detail: str) -> None:
        super().__init__(f"{self.__class__.__name__} for runtime {runtime_id!r}: {detail}")
        self.runtime_id = runtime_id
        self.detail = detail


class WriteFailed(StoreError):
    """A write did not happen: it failed before its transaction could commit."""

    kind: ClassVar[str] = "store_write_failed"


class WriteRefused(WriteFailed):
    """The store refused the write after checking it against what it holds; nothing was
    written."""

    kind: ClassVar[str] = "store_write_refused"


class RowNotStored(WriteRefused):
    """The write names an input row the store does not hold (``quarantine_row``); nothing was
    written. A store of another make may raise a plain :class:`WriteRefused` instead."""


class LockWaitTimedOut(WriteFailed):
    """The write waited longer than the store's time limit for a lock another connection held
    (a write or claim of the same runtime still running, a schema migration, a stalled
    process's transaction); nothing was written, and a later try may succeed. Raised by the
    PostgreSQL store; a registration waiting for a lease (``wait_for_lease``) retries it."""


class WriteOutcomeUnknown(WriteFailed):
    """The write failed while it was being committed (an I/O error during ``COMMIT``, a lost
    acknowledgement): it may or may not be durable. The caller must read the store again
    before it relies on either."""

    kind: ClassVar[str] = "store_write_outcome_unknown"
    outcome_unknown: ClassVar[bool] = True


class OwnershipLost(WriteRefused):
    """The writer no longer owns the runtime: its fence does not match the stored lease (another
    worker claimed it since), or it wrote without a fence although the runtime has a lease.
    Nothing was written; the worker must stop writing and detach the session."""

    kind: ClassVar[str] = "ownership_lost"


class LeaseHeld(WriteRefused):
    """A claim was refused because another owner holds an unexpired lease on the runtime.
    ``remaining_s``, when the store gives it, is how long the lease had left when the claim was
    refused (a waiting registration sleeps towards it); ``None`` when unknown."""

    kind: ClassVar[str] = "lease_held"

    def __init__(self, runtime_id: str, owner: str, expires_at: float, *, remaining_s: float | None = None) -> None:
        super().__init__(runtime_id, f"the lease is held by owner {owner!r} until {expires_at:.3f} (store clock)")
        self.owner = owner
        self.expires_at = expires_at
        self.remaining_s = remaining_s


def write_outcome_unknown(error: BaseException) -> bool:
    """Whether a failed write may have landed: always, unless the store said it did not happen
    (a :class:`StoreError` whose ``outcome_unknown`` is ``False``, e.g. ``WriteRefused``)."""
    return not (isinstance(error, StoreError) and not error.outcome_unknown)


class ReadFailed(StoreError):
    kind: ClassVar[str] = "store_read_failed"


class Corrupt(StoreError):
    kind: ClassVar[str] = "store_corrupt"


class VersionMismatch(StoreError):
    kind: ClassVar[str] = "store_version_mismatch"


# --- sessions and the runtime driver ------------------------------------------------------


class RuntimeDriverError(MeerkatError):
    kind: ClassVar[str] = "runtime_error"


class NotReady(RuntimeDriverError):
    """The runtime takes no such request in its present state: ``state`` is its phase; ``why``,
    when given, says what stands in the way (the phase alone does not)."""

    kind: ClassVar[str] = "not_ready"

    def __init__(self, state: str, why: str | None = None) -> None:
        super().__init__(f"runtime does not accept this now: {why or f'it is {state}'}")
        self.state = state
        self.why = why


class RuntimeDestroyed(RuntimeDriverError):
    kind: ClassVar[str] = "destroyed"

    def __init__(self, runtime_id: str) -> None:
        super().__init__(f"runtime {runtime_id!r} is destroyed")
        self.runtime_id = runtime_id


class SessionNotFound(RuntimeDriverError):
    kind: ClassVar[str] = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} is not registered")
        self.session_id = session_id


class MachineClosed(RuntimeDriverError):
    """The ``MeerkatMachine`` was closed (``close()``, or the end of its ``async with`` block):
    it registers and serves no session any more. Create a new machine."""

    kind: ClassVar[str] = "machine_closed"

    def __init__(self, action: str) -> None:
        super().__init__(f"the machine is closed: cannot {action} (create a new MeerkatMachine)")
        self.action = action


class WrongEventLoop(RuntimeDriverError, RuntimeError):
    """A ``MeerkatMachine`` coroutine was called on an event loop other than the machine's (the
    loop of its first call, while that loop is open): refused before anything was read or
    written. A machine serves one event loop; from another thread, submit the call to the
    machine's loop (``asyncio.run_coroutine_threadsafe(coro, loop)``)."""

    kind: ClassVar[str] = "wrong_event_loop"

    def __init__(self, action: str, *, loop_closed: bool = False) -> None:
        if loop_closed:
            detail = (
                "the machine's event loop has closed (e.g. its asyncio.run ended) while it held "
                "sessions, whose run loops and lease renewal ended with it; create a new machine "
                "(on this store it recovers the sessions: with the same owner_id at once, otherwise "
                "once their leases expire)"
            )
        else:
            detail = (
                "it runs on an event loop other than the machine's (a machine serves the loop of its "
                "first call; submit calls from other threads to that loop, e.g. with "
                "asyncio.run_coroutine_threadsafe)"
            )
        super().__init__(f"MeerkatMachine.{action}() refused: {detail}; nothing was done")
        self.action = action
        self.loop_closed = loop_closed


class InputNotFound(RuntimeDriverError):
    kind: ClassVar[str] = "input_not_found"

    def __init__(self, input_id: str) -> None:
        super().__init__(f"input {input_id!r} is not known to this session")
        self.input_id = input_id


class ValidationFailed(RuntimeDriverError):
    kind: ClassVar[str] = "validation_failed"


class InvalidField(ValidationFailed, ValueError):
    """One field of what a caller handed the runtime (an input, its header, an operation spec,
    a result) has the wrong type or is out of range. ``field`` names it (``header.timestamp``,
    ``images[0].data``, ``display_name``); nothing was stored."""

    def __init__(self, subject: str, field: str, problem: str) -> None:
        super().__init__(f"{subject} field {field!r} {problem}")
        self.subject = subject
        self.field = field
        self.problem = problem


class RecoveryCorruption(RuntimeDriverError):
    """Stored data of a session contradicts itself; recovery refused it. ``input_id`` names the
    input row at fault (``None`` when the fault is not one row, e.g. the lifecycle record): that
    row can be quarantined (``meerkat_runtime.repair``) so the others recover."""

    kind: ClassVar[str] = "recovery_corruption"

    def __init__(self, message: str, *, runtime_id: str | None = None, input_id: str | None = None) -> None:
        super().__init__(message)
        self.runtime_id = runtime_id
        self.input_id = input_id


class CorruptInputRow(Corrupt, RecoveryCorruption):  # type: ignore[misc]  # runtime_id: always a str here
    """An input row whose payload failed its integrity check when it was first decoded (a store
    may return a queued input's row before checking it; a restart reads such rows without
    decoding them). A ``Corrupt`` (``store_corrupt``), as it would have been when the row was
    read, that also names the input as a ``RecoveryCorruption`` does (``input_id``): the run loop
    stops before staging it, and the row can be quarantined."""

    kind: ClassVar[str] = "store_corrupt"

    def __init__(self, runtime_id: str, input_id: str, detail: str) -> None:
        Corrupt.__init__(self, runtime_id, detail)
        self.input_id = input_id


class InvalidRuntimeTransition(RuntimeDriverError):
    kind: ClassVar[str] = "invalid_runtime_transition"

    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"runtime cannot {action} while {state}")
        self.state = state
        self.action = action


class ExecutorStartFailed(RuntimeDriverError):
    """The executor's ``start()`` raised while its run loop was being attached: nothing was
    attached (the session queues input, as before the call)."""

    kind: ClassVar[str] = "executor_start_failed"

    def __init__(self, session_id: str, cause: BaseException) -> None:
        super().__init__(f"the executor of session {session_id!r} failed to start: {error_message(cause)}")
        self.session_id = session_id
        self.cause = cause


class DurableWriteFailed(RuntimeDriverError):
    """A durable write failed; in-memory state was restored to the checkpoint before the call.

    ``outcome_unknown`` is ``True`` when the store could not say whether the write landed and
    the session could not read it back yet: the session is then *in doubt* and reconciles with
    the store before its next step (docs/semantics.md, "Unknown write outcomes"). When the
    store's report was ambiguous but reading it back showed the write did not land,
    ``outcome_unknown`` is ``False`` and ``read_back`` is ``True``."""

    kind: ClassVar[str] = "durable_write_failed"

    def __init__(
        self, operation: str, cause: BaseException, *, outcome_unknown: bool = False, read_back: bool = False
    ) -> None:
        if outcome_unknown:
            detail = "its outcome is unknown and the store could not be read back; the session reconciles first"
            message = f"{operation} may or may not have been applied ({detail}): {error_message(cause)}"
        elif read_back:
            detail = "the store reported an ambiguous failure and holds no trace of it"
            message = f"{operation} was not applied: {detail}: {error_message(cause)}"
        else:
            message = f"{operation} was not applied: the store write failed: {error_message(cause)}"
        super().__init__(message)
        self.operation = operation
        self.cause = cause
        self.outcome_unknown = outcome_unknown
        self.read_back = read_back
