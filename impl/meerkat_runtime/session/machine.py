"""``MeerkatMachine``: the per-process registry of sessions and their public asyncio API.

Create it with :meth:`MeerkatMachine.ephemeral` (memory only) or
:meth:`MeerkatMachine.persistent` (a ``RuntimeStore`` or the path of an SQLite file, optionally
a ``BlobStore``), preferably as ``async with MeerkatMachine.persistent(...) as machine:``, which
closes the machine, and a store it opened, however the block ends. Every method is a coroutine
and must be called on one event loop, the loop of the machine's first call: a call on another
(open) loop raises ``WrongEventLoop`` before it does anything
(:mod:`meerkat_runtime.session.event_loop`). A session has one canonical id:
its durable state lives under the runtime id ``rt:session:<session id>``, sessions are keyed by
that runtime id, and a session id that itself starts with ``rt:session:`` is refused with
``ValidationFailed`` (so no second spelling can reach the same stored runtime).

Registration claims the session (:mod:`meerkat_runtime.session.claims`: with ownership on, the
session's lease in the store — ``LeaseHeld`` if another worker holds it), then recovers a
persistent session from the store (see :mod:`meerkat_runtime.session.core.recovery`); a failure
releases the claim and leaves no entry behind. A registered session queues inputs;
``ensure_session_with_executor`` attaches one run loop (concurrent callers attach exactly one).
Unknown sessions raise ``SessionNotFound``. A session whose lease another worker took over is
detached (loop stopped, waiters resolved with ``LostOwnership``) and every later call on it
raises ``OwnershipLost`` until it is registered again or unregistered.

This module is the shell of the session's rules: each method takes the session gate, asks the
core (:mod:`meerkat_runtime.session.core`) for the rule's plan and makes it take effect through
:mod:`meerkat_runtime.session.commit`; :mod:`meerkat_runtime.session.transitions` maps every
rule to its core method and to the method here (or the loop task) that drives it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from meerkat_runtime.events.bus import EventBus
from meerkat_runtime.events.event import UNREGISTERED, Change, spell
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.ops.events import OpsEventSink
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session import control_commands, direct_run, events, reports, retention
from meerkat_runtime.session import reattach as reattach_policy
from meerkat_runtime.session.auth import (
    AuthLeaseHandle,
    OAuthFlowAuthority,
    RuntimeAuthLeaseHandle,
    RuntimeOAuthFlowHandle,
    UnavailableOAuthFlowAuthority,
    runtime_authorities,
    shared_authorities,
)
from meerkat_runtime.session.authority import innermost_store, store_authority_key, store_label, stores_share_authority
from meerkat_runtime.session.blobs import BlobStore, externalize_images, has_inline_images, missing_blob_store_methods
from meerkat_runtime.session.claims import SessionClaimRegistry
from meerkat_runtime.session.collection_pause import collection_paused
from meerkat_runtime.session.commit import commit, install, install_start
from meerkat_runtime.session.completion import CompletionHandle, CompletionOutcome, LostOwnership, RuntimeTerminated
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.recovery import RecoveryResult, recover_session
from meerkat_runtime.session.core.session_core import SessionCore
from meerkat_runtime.session.core.terminal import completion_of
from meerkat_runtime.session.direct_run import DirectCall
from meerkat_runtime.session.dispatch import (
    FORCED_POLICY,
    CompositionDispatch,
    CompositionSignalDispatcher,
    DispatchFailurePolicy,
)
from meerkat_runtime.session.eager import retrieve_outcome, run_shielded_eagerly
from meerkat_runtime.session.event_loop import LoopBinding
from meerkat_runtime.session.executor import (
    CancelAfterBoundary,
    CoreApplyOutput,
    CoreExecutor,
    RunPrimitive,
)
from meerkat_runtime.session.input_fields import (
    DEFAULT_MAX_INPUT_BYTES,
    MAX_STORED_INPUT_BYTES,
    InputLimits,
    check_input,
)
from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.loop_task import awaited, run_loop
from meerkat_runtime.session.ops_binding import OpsBinding, attach_store, fresh_binding, recover_binding
from meerkat_runtime.session.ops_close import close_ops
from meerkat_runtime.session.outcomes import Accepted, AcceptOutcome, Deduplicated, Rejected
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.persistence import SessionPersistence
from meerkat_runtime.session.reconcile import reconcile
from meerkat_runtime.session.renewal_rounds import RenewalStats
from meerkat_runtime.session.retention_policy import DEFAULT_RETENTION, RetentionPolicy
from meerkat_runtime.session.retry import DEFAULT_RETRY, RetryPolicy
from meerkat_runtime.session.routed import RoutedInput, RoutedInputRefused
from meerkat_runtime.session.row_codec import RowFormatError
from meerkat_runtime.session.run_end import BoundaryCommitFailed, drop_stranded
from meerkat_runtime.session.runtime_session import (
    LoopState,
    RuntimeSession,
    SessionBindings,
    bounded_start,
    stop_detached,
)
from meerkat_runtime.session.views import InputStateView, SessionView, input_view, session_view
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.protocol import RuntimeStore, missing_store_methods
from meerkat_runtime.store.records import BoundaryReceipt
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import (
    DurableWriteFailed,
    ExecutorStartFailed,
    InvalidSetting,
    MachineClosed,
    NotReady,
    OwnershipLost,
    RuntimeDestroyed,
    SessionNotFound,
    StoreError,
    ValidationFailed,
    error_message,
)
from meerkat_runtime.vocab.ids import (
    CANONICAL_RUNTIME_PREFIX,
    MAX_SESSION_ID_BYTES,
    InputId,
    LogicalRuntimeId,
    RunId,
    SessionId,
    canonical_runtime_id,
    id_in_message,
    id_problem,
    new_run_id,
    session_id_of,
    stored_id_problem,
)
from meerkat_runtime.vocab.inputs import InputLifecycleState
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

T = TypeVar("T")
# Bound once: in Python 3.11 a member looked up on its enum class goes through a hook (~1,100 instructions).
_QUEUED = InputLifecycleState.QUEUED
_CHECKED_IDS_LIMIT = 4096
"""Most session ids :meth:`MeerkatMachine._known_runtime_id` remembers as checked."""

RunOp = Callable[[str, RunPrimitive], Awaitable[tuple[T, CoreApplyOutput]]]

RoutedResult = (
    AcceptOutcome
    | reports.RetireReport
    | reports.ResetReport
    | reports.RecycleReport
    | reports.RecoveryReport
    | reports.StopReport
    | reports.DestroyReport
    | reports.InterruptReport
)
"""What :meth:`MeerkatMachine.apply_routed_meerkat_input` returns: the command's own result."""

EVENT_LOG_ENV = "MEERKAT_EVENT_LOG"
"""When set to a directory, every machine created in the process writes its events there
(:class:`~meerkat_runtime.events.jsonl.EventLog`): how a deployment or a test run records a
trace for ``meerkat-conformance check-trace`` without changing code."""

DEFAULT_OWNERSHIP = OwnershipConfig()
"""Ownership of a persistent machine unless told otherwise: on, 15 s leases renewed every 5 s."""


def session_runtime_id(session_id: SessionId | str) -> LogicalRuntimeId:
    """The canonical runtime id of a new session ``session_id``; ``ValidationFailed`` for an id
    that is not a ``str``, is empty, holds a control character (C0 controls and DEL) or a lone
    surrogate, is longer than ``MAX_SESSION_ID_BYTES`` (1,024) UTF-8 bytes, or already carries
    the runtime-id prefix (one canonical id per session). The store accepts every runtime id
    this returns. A session an earlier release stored under an id these rules refuse is named
    by :func:`stored_session_runtime_id` (``MeerkatMachine`` accepts it once the store holds it)."""
    return _runtime_id_of(session_id, strict=True)


def stored_session_runtime_id(session_id: SessionId | str) -> LogicalRuntimeId:
    """The canonical runtime id of ``session_id`` under the rule stores keep for ids they hold:
    any non-empty UTF-8 ``str`` without the runtime-id prefix (earlier releases registered
    sessions under such ids, with control characters or longer than ``MAX_SESSION_ID_BYTES``).
    For reading sessions already stored; ``ValidationFailed`` otherwise."""
    return _runtime_id_of(session_id, strict=False)


def _runtime_id_of(session_id: SessionId | str, *, strict: bool) -> LogicalRuntimeId:
    if not isinstance(session_id, str):
        raise ValidationFailed(f"session id must be a str, got {type(session_id).__name__} {session_id!r:.60}")
    text = session_id
    problem = id_problem(text, MAX_SESSION_ID_BYTES) if strict else stored_id_problem(text)
    if problem is not None:
        raise ValidationFailed(f"session id {problem}" if not text else f"session id {id_in_message(text)} {problem}")
    if text.startswith(CANONICAL_RUNTIME_PREFIX):
        raise ValidationFailed(
            f"session id {text!r} starts with the runtime-id prefix {CANONICAL_RUNTIME_PREFIX!r}; "
            f"pass the session id itself ({text[len(CANONICAL_RUNTIME_PREFIX) :]!r})"
        )
    return canonical_runtime_id(text)


def _check_settings(
    store: object,
    blob_store: object,
    ownership: object,
    *,
    offload_store_calls: object,
    close_store: object,
    reattach: object = True,
    max_input_bytes: int,
    retry: object,
    retention: object,
    stored: bool,
) -> None:
    """``InvalidSetting`` naming the first constructor argument of the wrong kind: a store that
    is not ``None`` and lacks a ``RuntimeStore`` method, a blob store lacking a ``BlobStore``
    method, ownership that is neither an ``OwnershipConfig`` nor ``None``, a flag that is not a
    bool, ``max_input_bytes`` over what a stored row holds (``stored``: the machine has a
    store), and the settings ``InputLimits``, ``RetryPolicy`` and ``RetentionPolicy`` check.
    Checked before anything is built or opened."""
    if store is not None:
        missing = missing_store_methods(store)
        if missing:
            lacks = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise InvalidSetting(
                f"store must be a RuntimeStore (or, for MeerkatMachine.persistent, the path of an SQLite file), "
                f"got {type(store).__name__} {store!r:.60}, which lacks {lacks}"
            )
    if blob_store is not None:
        missing = missing_blob_store_methods(blob_store)
        if missing:
            raise InvalidSetting(
                f"blob_store must be a BlobStore or None, got {type(blob_store).__name__} {blob_store!r:.60}, "
                f"which lacks {', '.join(missing)}"
            )
    if ownership is not None and not isinstance(ownership, OwnershipConfig):
        raise InvalidSetting(
            f"ownership must be an OwnershipConfig or None, got {type(ownership).__name__} {ownership!r:.60}"
        )
    for name, flag in (
        ("offload_store_calls", offload_store_calls),
        ("close_store", close_store),
        ("reattach", reattach),
    ):
        if not isinstance(flag, bool):
            raise InvalidSetting(f"{name} must be True or False, got {flag!r:.60}")
    InputLimits(max_input_bytes)
    if stored and max_input_bytes > MAX_STORED_INPUT_BYTES:
        raise InvalidSetting(
            f"max_input_bytes {max_input_bytes} is more than a stored input's row can hold: at most "
            f"{MAX_STORED_INPUT_BYTES} ({MAX_STORED_INPUT_BYTES >> 20} MiB) with a store"
        )
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidSetting(f"retry must be a RetryPolicy or None, got {type(retry).__name__} {retry!r:.60}")
    if retention is not None and not isinstance(retention, RetentionPolicy):
        raise InvalidSetting(
            f"retention must be a RetentionPolicy or None, got {type(retention).__name__} {retention!r:.60}"
        )


def _reattach_pending(session: RuntimeSession) -> bool:
    """Whether the machine's re-attach of ``session`` is still running."""
    task = session.reattach_task
    return task is not None and not task.done()


def _dead(task: asyncio.Task[None] | None) -> bool:
    return task is not None and task.done()


def _stored_or_none(session_id: SessionId | str) -> LogicalRuntimeId | None:
    """:func:`stored_session_runtime_id`, or ``None`` for an id even stores refuse."""
    try:
        return stored_session_runtime_id(session_id)
    except ValidationFailed:
        return None


async def _shielded(durable: bool, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` so that cancelling the caller cannot interrupt it between a durable write
    and the in-memory publish (memory would fall behind disk). Ephemeral work needs no shield."""
    if not durable:
        return await coro
    task = asyncio.ensure_future(coro)
    task.add_done_callback(retrieve_outcome)
    return await asyncio.shield(task)


class MeerkatMachine:
    """Sessions, their inputs, run loops, completions and lifecycle control."""

    def __init__(
        self,
        store: RuntimeStore | None,
        blob_store: BlobStore | None = None,
        *,
        offload_store_calls: bool = True,
        ownership: OwnershipConfig | None = DEFAULT_OWNERSHIP,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        retry: RetryPolicy | None = None,
        close_store: bool = False,
        retention: RetentionPolicy | None = None,
        reattach: bool = True,
    ) -> None:
        _check_settings(
            store,
            blob_store,
            ownership,
            offload_store_calls=offload_store_calls,
            close_store=close_store,
            reattach=reattach,
            max_input_bytes=max_input_bytes,
            retry=retry,
            retention=retention,
            stored=store is not None,
        )
        self._limits = InputLimits(max_input_bytes)
        self._retry = retry or DEFAULT_RETRY
        self._retention = retention or DEFAULT_RETENTION
        self._dispatch: CompositionDispatch | None = None
        authorities = (
            runtime_authorities()
            if store is None
            else shared_authorities(innermost_store(store), store_authority_key(store))
        )
        self._auth_lease: AuthLeaseHandle = authorities.auth_lease
        self._oauth_flows: OAuthFlowAuthority = authorities.oauth_flows
        self._store = store
        self._close_store = close_store and store is not None
        self._blobs = blob_store
        self._offload = offload_store_calls
        self._reattach = reattach
        self._sessions: dict[LogicalRuntimeId, RuntimeSession] = {}
        self._checked_ids: dict[str, LogicalRuntimeId] = {}
        """Session ids (exactly ``str``) that passed :func:`session_runtime_id`, with the runtime
        id it returned: the check depends on the text alone, so an id seen before is not checked
        again on every call (a memo, cleared past :data:`_CHECKED_IDS_LIMIT` entries)."""
        self._claims = SessionClaimRegistry(store, ownership, offload=offload_store_calls)
        self.events = EventBus(self._claims.owner_id)
        self.events.store = store_label(store, self.events.source)
        log_dir = os.environ.get(EVENT_LOG_ENV)
        if log_dir:
            self.events.subscribe(EventLog(log_dir))
        """This machine's lifecycle events (:mod:`meerkat_runtime.events`): subscribe to it."""
        self._detaching: set[asyncio.Task[None]] = set()
        self._unregistering: dict[LogicalRuntimeId, tuple[asyncio.Task[None], RuntimeSession]] = {}
        """Unregistrations in flight (each runs in its own task), with their sessions."""
        self._closing: asyncio.Task[None] | None = None
        self._loop = LoopBinding(lambda: not (self._sessions or self._unregistering or self._detaching))
        """The event loop the machine serves (:mod:`meerkat_runtime.session.event_loop`)."""
        self._closed = False
        """Set when :meth:`close` is first called: from then on every call that registers or
        uses a session raises ``MachineClosed``."""

    @classmethod
    def ephemeral(
        cls,
        *,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        retry: RetryPolicy | None = None,
        retention: RetentionPolicy | None = None,
        reattach: bool = True,
    ) -> MeerkatMachine:
        """Sessions live in memory only (``reattach``: see :meth:`persistent`)."""
        return cls(None, max_input_bytes=max_input_bytes, retry=retry, retention=retention, reattach=reattach)

    @classmethod
    def persistent(
        cls,
        store: RuntimeStore | str | os.PathLike[str],
        blob_store: BlobStore | None = None,
        *,
        offload_store_calls: bool = True,
        ownership: OwnershipConfig | None = DEFAULT_OWNERSHIP,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        retry: RetryPolicy | None = None,
        close_store: bool | None = None,
        retention: RetentionPolicy | None = None,
        reattach: bool = True,
    ) -> MeerkatMachine:
        """Durable sessions. Without ``blob_store``, inputs carrying inline images are refused.

        ``store`` is a ``RuntimeStore`` or the path (``str`` or ``os.PathLike[str]``) of an
        SQLite file, which is opened here with
        :class:`~meerkat_runtime.store.sqlite.SqliteRuntimeStore`'s defaults (a bad path is
        ``InvalidSetting``). Anything else (``None``, a ``bytes`` path, an object lacking a
        ``RuntimeStore`` method) is ``InvalidSetting`` naming it, as is a setting of the wrong
        kind; nothing is opened then. ``close_store`` says whether :meth:`close` closes the store
        too; by default it does for a store opened here from a path and does not for a store
        passed in (its owner closes it).

        ``offload_store_calls`` runs each synchronous store call in a worker thread (default)
        instead of on the event loop. ``ownership`` (on by default) makes several machines on
        one store safe: each session is leased to one machine at a time and every write is
        fenced (:class:`~meerkat_runtime.session.ownership.OwnershipConfig`); ``None`` turns it
        off, for a store only this machine ever writes. ``max_input_bytes`` (default 1 MiB,
        at most 63 MiB: what a stored row holds) limits the text an input's row stores (``InvalidField`` beyond it).
        ``retry`` sets attempts, backoff and which executor errors are retried
        (:class:`~meerkat_runtime.session.retry.RetryPolicy`; default: 3 attempts, no wait).
        ``retention`` says how many finished inputs each session keeps and for how long — its
        idempotency window (:class:`~meerkat_runtime.session.retention_policy.RetentionPolicy`;
        default: the most recent 10,000).
        ``reattach`` (on by default): after a run's boundary commit failed (the
        ``boundary_commit_failed`` event: the loop was detached and its executor told to stop),
        the machine attaches the same executor again once the store answers, retrying with a
        bounded backoff (:mod:`meerkat_runtime.session.reattach`; the executor's ``start()`` is
        awaited again). With ``False`` the session only queues input after such a failure until
        the application calls :meth:`ensure_session_with_executor` again.
        """
        if store is None:
            raise InvalidSetting(
                "MeerkatMachine.persistent needs a store: a RuntimeStore or the path of an SQLite file, "
                "got None (MeerkatMachine.ephemeral() makes a machine that stores nothing)"
            )
        if close_store is not None and not isinstance(close_store, bool):
            raise InvalidSetting(f"close_store must be True, False or None, got {close_store!r:.60}")
        if isinstance(store, str | bytes | os.PathLike):
            path = os.fspath(store)
            if not isinstance(path, str):
                raise InvalidSetting(f"store path must be a str or os.PathLike[str], got a bytes path {path!r:.60}")
            _check_settings(  # before the file is opened (and created)
                None,
                blob_store,
                ownership,
                offload_store_calls=offload_store_calls,
                close_store=False,
                reattach=reattach,
                max_input_bytes=max_input_bytes,
                retry=retry,
                retention=retention,
                stored=True,
            )
            opened: RuntimeStore = SqliteRuntimeStore(path)
            owned = True if close_store is None else close_store
        else:
            opened, owned = store, bool(close_store)
        try:
            return cls(
                opened,
                blob_store,
                offload_store_calls=offload_store_calls,
                ownership=ownership,
                max_input_bytes=max_input_bytes,
                retry=retry,
                close_store=owned,
                retention=retention,
                reattach=reattach,
            )
        except BaseException:
            if opened is not store:
                opened.close()
            raise

    async def __aenter__(self) -> MeerkatMachine:
        self._loop.check("__aenter__")
        self._check_open("enter 'async with' again")
        return self

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise MachineClosed(action)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def store(self) -> RuntimeStore | None:
        """The store sessions are written to (``None`` for an ephemeral machine)."""
        return self._store

    def shares_runtime_persistence_with(self, other: MeerkatMachine) -> bool:
        """Whether ``other`` commits to the same durable authority as this machine (both
        ephemeral counts as sharing: neither has a store to disagree with)."""
        return stores_share_authority(self._store, other._store)

    def shares_runtime_store_authority(self, store: RuntimeStore) -> bool:
        """Whether ``store`` is (a handle on) this machine's own store; ``False`` for an
        ephemeral machine."""
        return self._store is not None and stores_share_authority(self._store, store)

    @property
    def has_runtime_persistence(self) -> bool:
        """Whether sessions of this machine are durable."""
        return self._store is not None

    @property
    def retry_policy(self) -> RetryPolicy:
        """How runs that fail are retried (:class:`~meerkat_runtime.session.retry.RetryPolicy`)."""
        return self._retry

    def set_composition_signal_dispatcher(
        self,
        dispatcher: CompositionSignalDispatcher | None,
        policy: DispatchFailurePolicy = DispatchFailurePolicy.RESTORE,
    ) -> None:
        """Install (or with ``None`` remove) the async dispatcher every routed committed
        transition is lifted to, with its failure policy (:mod:`meerkat_runtime.session.dispatch`)."""
        if not isinstance(policy, DispatchFailurePolicy):
            raise ValidationFailed(f"policy must be a DispatchFailurePolicy, got {policy!r}")
        self._dispatch = None if dispatcher is None else CompositionDispatch(dispatcher, policy)
        for session in self._sessions.values():
            session.dispatch = self._dispatch

    # --- auth authorities -----------------------------------------------------------------

    def auth_lease_handle(self) -> AuthLeaseHandle:
        """The credential lease handle every binding of this machine uses
        (:mod:`meerkat_runtime.session.auth`): shared by every persistent machine on the same
        store authority, this machine's own when ephemeral, unless one was installed."""
        return self._auth_lease

    def oauth_flow_authority(self) -> OAuthFlowAuthority:
        """The login-flow authority every binding of this machine uses (refuses every flow after
        a custom lease handle was installed without one)."""
        return self._oauth_flows

    def set_auth_lease_handle(self, handle: AuthLeaseHandle) -> None:
        """Install the lease handle public surfaces also read. A ``RuntimeAuthLeaseHandle``
        brings the flow authority bound to it (:meth:`set_runtime_auth_lease_handle`); any other
        handle leaves no flow authority (flows are refused with ``OAuthFlowRejected``) — use
        :meth:`set_auth_lease_handle_with_oauth_flow_authority` to give one explicitly."""
        if isinstance(handle, RuntimeAuthLeaseHandle):
            self.set_runtime_auth_lease_handle(handle)
            return
        if not isinstance(handle, AuthLeaseHandle):
            raise ValidationFailed(f"auth lease handle must provide AuthLeaseHandle, got {type(handle).__name__}")
        self._oauth_flows = UnavailableOAuthFlowAuthority()
        self._auth_lease = handle

    def set_auth_lease_handle_with_oauth_flow_authority(
        self, handle: AuthLeaseHandle, oauth_flows: OAuthFlowAuthority
    ) -> None:
        """Install a custom lease handle together with an explicit login-flow authority."""
        if not isinstance(handle, AuthLeaseHandle):
            raise ValidationFailed(f"auth lease handle must provide AuthLeaseHandle, got {type(handle).__name__}")
        if not isinstance(oauth_flows, OAuthFlowAuthority):
            raise ValidationFailed(
                f"OAuth flow authority must provide OAuthFlowAuthority, got {type(oauth_flows).__name__}"
            )
        self._oauth_flows = oauth_flows
        self._auth_lease = handle

    def set_runtime_auth_lease_handle(self, handle: RuntimeAuthLeaseHandle) -> None:
        """Install a runtime lease authority and a new login-flow authority bound to it (one
        authority for leases and flows)."""
        if not isinstance(handle, RuntimeAuthLeaseHandle):
            raise ValidationFailed(f"expected a RuntimeAuthLeaseHandle, got {type(handle).__name__}")
        self._oauth_flows = RuntimeOAuthFlowHandle(handle)
        self._auth_lease = handle

    @property
    def max_input_bytes(self) -> int:
        """The largest text (UTF-8 bytes of every string its row stores) an accepted input may carry."""
        return self._limits.max_input_bytes

    @property
    def is_persistent(self) -> bool:
        return self._store is not None

    # --- ownership ------------------------------------------------------------------------

    @property
    def ownership(self) -> OwnershipConfig | None:
        """The ownership settings, or ``None`` when ownership is off (or the machine is ephemeral)."""
        return self._claims.config

    @property
    def owner_id(self) -> str | None:
        """The owner id this machine claims leases under (``None`` without ownership)."""
        return self._claims.owner_id

    def session_claim_handle(self) -> SessionClaimRegistry:
        """This machine's ``SessionClaimRegistry``: one live ``SessionClaim`` per registered
        runtime id (``get(runtime_id)``), with its lease, fence and loss state."""
        return self._claims

    async def renew_leases_now(self) -> list[LogicalRuntimeId]:
        """Renew every lease now (what the background renewal does each period) and detach the
        sessions whose lease another worker has taken; returns their runtime ids."""
        self._loop.check("renew_leases_now")
        lost = await self._claims.renew_all()
        await self._settle_detaches()
        return [claim.runtime_id for claim in lost]

    def renewal_stats(self) -> RenewalStats:
        """How this machine's lease renewal rounds went: rounds, the last and longest round's
        time, leases and store calls, and how many renewals were late (a warning is logged for
        each round that put leases at risk; see ``docs/ownership.md``)."""
        return self._claims.renewal_stats()

    async def _settle_detaches(self) -> None:
        """Let loss notifications run and wait for the detaches they started."""
        await asyncio.sleep(0)
        while self._detaching:
            await asyncio.wait(set(self._detaching))

    def _lost(self, session: RuntimeSession, error: OwnershipLost) -> None:
        """A claim was lost (called on the loop): detach its session in the background."""
        if session.unregistered:
            return
        task = asyncio.get_running_loop().create_task(self._detach_lost(session, error))
        self._detaching.add(task)
        task.add_done_callback(self._detaching.discard)

    async def _detach_lost(self, session: RuntimeSession, error: OwnershipLost) -> None:
        """Stop the session's loop and executor and resolve its waiters with ``LostOwnership``;
        the session stays registered (lost) so later calls raise ``OwnershipLost``."""
        session.give_up_start()  # an attach awaiting start() holds the gate
        async with session.gate:
            if session.unregistered or session.lost_detached:
                return
            session.lost_detached = True
            session.last_error = error
            parts = session.detach()
            session.completions.resolve_all(LostOwnership(f"ownership lost: {error.detail}"))
            close_ops(session)  # its watchers and waits raise OwnershipLost, as later calls do
        await stop_detached(parts, f"ownership lost: {error.detail}")

    # --- registration ---------------------------------------------------------------------

    def _known_runtime_id(self, session_id: SessionId | str) -> LogicalRuntimeId:
        """:func:`session_runtime_id`, or the runtime id of a session registered here under an
        id only an earlier release could give (:meth:`_registrable_runtime_id`)."""
        exact = type(session_id) is str
        if exact:
            known = self._checked_ids.get(session_id)
            if known is not None:
                return known
        try:
            runtime_id = session_runtime_id(session_id)
        except ValidationFailed as exc:
            refused = exc
        else:
            if exact:
                if len(self._checked_ids) >= _CHECKED_IDS_LIMIT:
                    self._checked_ids.clear()
                self._checked_ids[session_id] = runtime_id
            return runtime_id
        stored = _stored_or_none(session_id)
        if stored is not None and (stored in self._sessions or stored in self._unregistering):
            return stored
        raise refused

    async def _registrable_runtime_id(self, session_id: SessionId | str) -> LogicalRuntimeId:
        """The runtime id to register ``session_id`` under: a new session's id must pass
        :func:`session_runtime_id`; an id it refuses is taken as it is when the session is
        registered here or the store already holds it (an earlier release registered it under
        the lenient rule, :func:`stored_session_runtime_id`). The store is asked only then, with two
        single-row reads: its lifecycle record (every registration writes one), else its
        high-water mark (every data write advances it)."""
        try:
            return self._known_runtime_id(session_id)
        except ValidationFailed as exc:
            refused = exc
        runtime_id = _stored_or_none(session_id)
        store = self._store
        if runtime_id is None or store is None:
            raise refused
        self._check_open(f"register session {session_id!r}")  # a closed machine's store is closed

        def held() -> bool:
            return store.load_machine_lifecycle(runtime_id) is not None or store.load_high_water(runtime_id) is not None

        if await asyncio.to_thread(held) if self._offload else held():
            return runtime_id
        raise refused

    def _get(self, session_id: SessionId | str, *, lost_ok: bool = False) -> RuntimeSession:
        runtime_id = self._known_runtime_id(session_id)
        if self._closed:
            raise MachineClosed(f"use session {session_id!r}")
        session = self._sessions.get(runtime_id)
        if session is None:
            raise SessionNotFound(str(session_id))
        if not lost_ok:
            session.claim.check()
        return session

    async def contains_session(self, session_id: SessionId | str) -> bool:
        """Whether the session is registered here (and not lost to another worker)."""
        self._loop.check("contains_session")
        session = self._sessions.get(stored_session_runtime_id(session_id))
        return session is not None and session.lost is None

    async def register_session(self, session_id: SessionId | str) -> None:
        """Register (recovering durable state) if not registered yet; idempotent.

        Raises ``RuntimeDestroyed`` for a destroyed persistent runtime, ``RecoveryCorruption``
        for contradictory stored rows, store errors for unreadable data and
        ``DurableWriteFailed`` if the recovered state cannot be written back. On error no
        entry is left.

        With ownership on, the session's lease is claimed first, before anything is read:
        ``LeaseHeld`` (naming the holder and its expiry) when another worker holds it — after
        waiting for it, if ``OwnershipConfig.wait_for_lease`` says so. A session lost to another
        worker is claimed again. ``ValidationFailed`` for a session id :func:`session_runtime_id`
        refuses, unless the store already holds the session (an earlier release registered it
        under its looser rule: any non-empty UTF-8 string); such a session is recovered as stored.
        """
        self._loop.check("register_session")
        await self._ensure_registered(session_id)

    async def _ensure_registered(self, session_id: SessionId | str) -> RuntimeSession:
        runtime_id = await self._registrable_runtime_id(session_id)
        self._check_open(f"register session {session_id!r}")
        session = self._sessions.get(runtime_id)
        if session is not None and session.lost is None:
            events.emit_step(session, "register_noop")
            return session
        return await _shielded(self._store is not None, self._claim_and_build(runtime_id))

    async def _claim_and_build(self, runtime_id: LogicalRuntimeId) -> RuntimeSession:
        lock = self._claims.lock(runtime_id)
        try:
            async with lock:
                leaving = self._unregistering.get(runtime_id)
                if leaving is not None:  # its loop must be gone before a new one can start
                    await asyncio.wait({leaving[0]})
                self._check_open(f"register session {session_id_of(runtime_id)!r}")  # closed meanwhile
                session = self._sessions.get(runtime_id)
                if session is not None and session.lost is None:
                    return session  # a concurrent registration built it
                if session is not None:
                    await self._forget(session)
                try:
                    claim = await self._claims.acquire(runtime_id)
                except Exception:  # a wait for another owner's lease gives up when the machine closes
                    self._check_open(f"register session {session_id_of(runtime_id)!r}")
                    raise
                try:
                    built = await self._build_session(runtime_id[len(CANONICAL_RUNTIME_PREFIX) :])
                except BaseException:
                    await self._claims.release(claim)
                    raise
                if self._closed:  # closed while claiming or recovering: close waits for this lock
                    built.unregistered = True
                    await self._unregister_now(built)  # releases the lease; nothing stays registered
                    self._check_open(f"register session {session_id_of(runtime_id)!r}")
                self._sessions[runtime_id] = built
                claim.on_lost(lambda error: self._lost(built, error))
                return built
        finally:
            self._claims.unlock_idle(runtime_id, lock)

    async def _forget(self, session: RuntimeSession) -> None:
        """Drop a lost session (its detach finished first) so it can be claimed again."""
        lost = session.lost
        if lost is not None:
            await self._detach_lost(session, lost)
        session.unregistered = True
        if self._sessions.get(session.runtime_id) is session:
            del self._sessions[session.runtime_id]
        close_ops(session)
        self._claims.forget(session.claim)

    async def _build_session(self, key: str) -> RuntimeSession:
        """Recover (or create) session ``key`` under the claim :meth:`_claim_and_build` took."""
        runtime_id = canonical_runtime_id(key)
        claim = self._claims.get(runtime_id)
        if claim is None:
            raise RuntimeError(f"no claim on {runtime_id!r}: sessions are built by _claim_and_build")
        persistence = SessionPersistence(self._store, runtime_id, offload=self._offload, claim=claim)
        store = self._store
        if store is None:
            core = SessionCore(runtime_id)
            binding = fresh_binding(session_id=session_id_of(runtime_id))
        else:
            now = time.time()
            max_attempts = self._retry.max_attempts

            def recover() -> tuple[HighWater | None, bytes | None, RecoveryResult]:
                with collection_paused():  # long-lived, acyclic objects only (collection_pause)
                    mark, lifecycle, rows, finished = persistence.load_stored()
                    found = recover_session(
                        runtime_id,
                        lifecycle,
                        rows,
                        persistence.receipt_exists,
                        now,
                        high_water=mark,
                        max_attempts=max_attempts,
                        finished=finished,
                    )
                    return mark, lifecycle, found

            mark, lifecycle, result = await persistence.read(recover)
            stored_ops = await persistence.read(persistence.load_ops)
            binding = recover_binding(
                stored_ops,
                fallback_epoch=result.epoch_id,
                runtime_id=runtime_id,
                high_water=mark,
                session_id=session_id_of(runtime_id),
            )
            core = result.core
            persistence.epoch_id = binding.epoch_id
            persistence.loaded(result.stored, lifecycle)
            session = self._new_session(key, core, persistence, binding)
            await commit(session, core.register(), "recovery write-back")  # not visible to anyone yet
            await retention.compact(session, self._retention, slack=False)
            await retention.read_recent(session, core.ledger)
            session.ops_sink = attach_store(binding, store, runtime_id, claim)
            self._attach_ops_events(session, recovered=stored_ops is not None)
            return session
        session = self._new_session(key, core, persistence, binding)
        await commit(session, core.register(), "register")
        self._attach_ops_events(session, recovered=False)
        return session

    def _new_session(
        self, key: str, core: SessionCore, persistence: SessionPersistence, binding: OpsBinding
    ) -> RuntimeSession:
        core.max_attempts = self._retry.max_attempts
        session = RuntimeSession(
            SessionId(key), core, persistence, self._blobs, binding.epoch_id, binding.registry, binding.cursors
        )
        session.events = self.events
        session.retry = self._retry
        session.retention = self._retention
        session.dispatch = self._dispatch
        return session

    def _attach_ops_events(self, session: RuntimeSession, *, recovered: bool) -> None:
        claim = session.claim

        def token() -> int | None:
            return None if claim.fence is None else claim.fence.token

        registry = session.ops_registry
        registry.attach_events(OpsEventSink(self.events, str(session.session_id), session.runtime_id, token))
        if recovered:
            registry.publish_recovered()

    async def register_session_with_executor(self, session_id: SessionId | str, executor: CoreExecutor) -> bool:
        """Register and attach a run loop driving ``executor``; see ``ensure_session_with_executor``."""
        self._loop.check("register_session_with_executor")
        return await self.ensure_session_with_executor(session_id, executor)

    async def ensure_session_with_executor(self, session_id: SessionId | str, executor: CoreExecutor) -> bool:
        """Make sure the session is registered and has a run loop.

        Returns ``True`` if this call attached ``executor``; ``False`` if a loop was already
        attached (or being attached by a concurrent call), in which case ``executor`` is not
        used. A dead loop is replaced. Raises ``RuntimeDestroyed`` for a destroyed runtime and
        ``NotReady`` for a stopped one.

        An executor with a ``start()`` coroutine (the optional attach hook) is started first,
        under the session gate, before its loop exists; if ``start()`` raises, nothing is
        attached (``attach_failed``: the session queues input as before) and
        ``ExecutorStartFailed`` is raised with the error as its ``cause``. A shutdown of the
        session (``close``, ``unregister_session``, ``halt``, the loss of its lease) does not wait
        for a ``start()`` still running: it cancels the call (waiting at most
        ``EXECUTOR_STOP_LIMIT_S`` for it to end), nothing is attached (``attach_failed``) and
        this call raises ``MachineClosed``, ``SessionNotFound`` or ``OwnershipLost``. A stop or
        destroy of the session gives a pending ``start()`` up the same way (then this call raises
        ``NotReady``) before it takes effect. Should a given-up ``start()`` return all the same (it
        ignored the cancellation), the executor is told to stop (``StopRuntimeExecutor``, waited for
        at most ``EXECUTOR_STOP_LIMIT_S``; what it raises is kept in ``last_error``).
        """
        self._loop.check("ensure_session_with_executor")
        session = await self._ensure_registered(session_id)
        return await self._attach(session, executor)

    async def _attach(self, session: RuntimeSession, executor: CoreExecutor) -> bool:
        """Attach a run loop driving ``executor`` to the registered ``session`` (what
        :meth:`ensure_session_with_executor` does once the session is registered)."""
        if session.registration is not RegistrationPhase.QUEUING and not _dead(session.loop_task):
            events.emit_step(session, "begin_attach_noop")
            return False
        async with session.gate:
            session.check_registered()
            await reconcile(session, "attach the run loop")
            if _dead(session.loop_task):
                session.detach()  # repair a loop that died
            if session.registration is not RegistrationPhase.QUEUING:
                events.emit_step(session, "begin_attach_noop")
                return False  # another caller attached (or is attaching) the loop
            # The claim (begin_attach) and the attachment (finish_attach) happen under the gate,
            # so exactly one caller attaches; the only await in between is the executor's start,
            # which a shutdown of the session gives up (bounded_start) rather than wait for.
            core = session.core
            session.check_registered()  # again: a shutdown begun while reconciling has no start to give up
            install(session, core.begin_attach())
            try:
                started = await bounded_start(session, executor)
            except BaseException as exc:
                install(session, core.attach_failed())
                if isinstance(exc, Exception):
                    raise ExecutorStartFailed(str(session.session_id), exc) from exc
                raise
            if not started:  # unregistered, closed, halted, lost, stopped or destroyed while starting
                install(session, core.attach_failed())
                session.check_registered()
                raise NotReady("being stopped or destroyed")  # a stop or destroy gave the start up
            body = self._loop_main(session, executor)
            try:
                session.loop_task = asyncio.create_task(body)
            except BaseException:
                body.close()
                install(session, core.attach_failed())
                raise
            session.executor = executor
            session.executor_stopped = False
            session.wake_event = asyncio.Event()
            install(session, core.finish_attach())
            if core.queued_count():
                session.wake_event.set()
        return True

    async def _loop_main(self, session: RuntimeSession, executor: CoreExecutor) -> None:
        """The loop task: :func:`run_loop`. A defect escaping it (never the executor's error,
        which fails the run; a run in flight was ended or dropped on the way out, see
        :mod:`~meerkat_runtime.session.loop_task`) is kept in ``last_error`` and the loop
        detached, the executor told to stop; the session stays registered (Queuing) for an
        attach. ``KeyboardInterrupt`` and ``SystemExit`` propagate once that is done."""
        try:
            await run_loop(session, executor, self._on_fatal, self._on_detached)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a defect in the loop: keep the error, detach, keep the session
            session.last_error = exc
            async with session.gate:
                parts = session.detach() if session.loop_task is asyncio.current_task() else None
            if parts is not None:
                await stop_detached(parts, f"runtime loop failed: {error_message(exc)}")
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise

    def _on_detached(self, session: RuntimeSession, executor: CoreExecutor, error: BoundaryCommitFailed) -> None:
        """A failed boundary commit detached the session's loop and told ``executor`` to stop:
        with ``reattach`` on, attach it again in the background (one task per session; a task
        already running attaches ``executor`` from its next try, the executor the failed run
        drove being the one to attach). Not when the commit was refused before the store was
        asked (a ``RowFormatError``: the run's result fit its input's row when the executor
        returned it, but the plan changed before the commit): the session then stays detached
        (the attempt is not counted) until the application attaches a loop."""
        if not self._reattach or self._gone(session) or isinstance(error.cause, RowFormatError):
            return
        session.reattach_executor = executor
        if _reattach_pending(session):
            return
        session.reattach_task = session.spawn(self._reattach_loop(session))

    def _gone(self, session: RuntimeSession) -> bool:
        """Whether ``session`` can have no loop from this machine any more: the machine closed, or
        the session was unregistered, lost, or replaced by another registration."""
        if self._closed or session.unregistered or session.lost is not None:
            return True
        return self._sessions.get(session.runtime_id) is not session

    def _reattach_ends(self, session: RuntimeSession) -> bool:
        """Whether the re-attach of ``session`` has nothing left to do: the machine closed, the
        session unregistered, lost, replaced, stopped or destroyed, or a loop attached (or
        being attached) by another caller."""
        if self._gone(session):
            return True
        if session.registration is not RegistrationPhase.QUEUING and not _dead(session.loop_task):
            return True  # another caller attached (or is attaching) a loop
        return session.core.phase in (RuntimeState.STOPPED, RuntimeState.DESTROYED)

    async def _reattach_loop(self, session: RuntimeSession) -> None:
        """Try to attach the session's last detached executor (``session.reattach_executor``)
        again until it is attached, another caller attached a loop, the session can no longer
        have one, or :data:`~meerkat_runtime.session.reattach.MAX_FAILED_STARTS` tries in a row
        failed other than for the store (:mod:`meerkat_runtime.session.reattach`). Each failed
        try's error is kept in ``session.last_error``."""
        store = session.persistence.store
        runtime_id = session.runtime_id
        failed, tried = 0, None
        while True:
            await asyncio.sleep(session.reattach_backoff.next_delay())
            if self._reattach_ends(session):
                return
            try:
                if store is not None:  # does the store answer? (one single-row read)
                    await session.persistence.read(lambda: store.load_high_water(runtime_id))
                    if self._reattach_ends(session):
                        return
                executor = session.reattach_executor
                if executor is None:
                    return
                if executor is not tried:  # another executor detached meanwhile: its own tries
                    failed, tried = 0, executor
                await self._attach(session, executor)
            except (OwnershipLost, SessionNotFound, NotReady, RuntimeDestroyed, MachineClosed):
                return  # lost to another worker, unregistered, stopped or destroyed
            except (StoreError, DurableWriteFailed) as exc:  # the store cannot be read yet
                session.last_error = exc
                continue
            except Exception as exc:  # start() failed (or another error): a few tries, then give up
                session.last_error = exc
                failed += 1
                if failed >= reattach_policy.MAX_FAILED_STARTS:
                    return
                continue
            return

    async def _on_fatal(self, session: RuntimeSession, error: BaseException) -> None:
        if self._sessions.get(session.runtime_id) is session:
            await self._unregister(session.runtime_id)

    async def unregister_session(self, session_id: SessionId | str) -> None:
        """Stop the loop, resolve waiters with ``runtime_terminated``, forget the session in
        memory and release its lease. Durable state is kept. Unknown sessions are ignored (a
        session lost to another worker is forgotten, its lease left to its new owner).

        Cancelling the caller (e.g. ``asyncio.wait_for`` at shutdown) does not interrupt it: the
        unregistration runs to its end in its own task (the loop stopped, the lease released);
        registering the session again waits for it, so a second loop never runs beside the first.
        """
        self._loop.check("unregister_session")
        await self._unregister(stored_session_runtime_id(session_id))

    async def _unregister(self, runtime_id: LogicalRuntimeId) -> None:
        """Start (or join) the unregistration of ``runtime_id`` and wait for it; cancelling the
        caller leaves it running to its end."""
        task = self._begin_unregister(runtime_id)
        if task is not None:
            await asyncio.shield(task)

    def _begin_unregister(self, runtime_id: LogicalRuntimeId) -> asyncio.Task[None] | None:
        """The task unregistering ``runtime_id`` (started here if none runs); ``None`` when the
        session is not registered."""
        leaving = self._unregistering.get(runtime_id)
        if leaving is None:
            session = self._sessions.pop(runtime_id, None)
            if session is None:
                return None
            session.unregistered = True
            session.closed_with_machine = self._closed
            task = asyncio.get_running_loop().create_task(self._unregister_now(session))
            leaving = self._unregistering[runtime_id] = (task, session)
            task.add_done_callback(lambda done: self._unregistered(runtime_id, done))
        return leaving[0]

    def _unregistered(self, runtime_id: LogicalRuntimeId, task: asyncio.Task[None]) -> None:
        leaving = self._unregistering.get(runtime_id)
        if leaving is not None and leaving[0] is task:
            del self._unregistering[runtime_id]
        retrieve_outcome(task)

    async def _unregister_now(self, session: RuntimeSession) -> None:
        """Detach the loop and resolve the waiters (under the gate), stop the loop and the
        executor and wait until the loop task has ended, finish the session's background work,
        then release the lease. An attach awaiting its executor's ``start()`` (it holds the gate)
        gives the start up first (``bounded_start``)."""
        session.give_up_start()
        async with session.gate:
            registration, phase = session.registration, spell(session.core.phase.value)
            parts = session.detach()
            session.completions.resolve_all(RuntimeTerminated("runtime session unregistered"))
            if not session.events_closed and session.lost is None:
                session.events_closed = True
                change = Change("registration", session.runtime_id, spell(registration.value), UNREGISTERED)
                # in doubt: a write of the session may have landed that was never published
                doubt = {"outcome_unknown": True} if session.in_doubt is not None else None
                events.emit_step(
                    session, "unregister", before=phase, after=UNREGISTERED, changes=(change,), details=doubt
                )
        close_ops(session)  # later terminal transitions fail loudly, never half-durable; waiters released
        reattaching = session.reattach_task
        if reattaching is not None and reattaching is not asyncio.current_task():
            reattaching.cancel()  # no executor is attached to an unregistered session
        await stop_detached(parts, "runtime session unregistered")
        _, loop_task, _ = parts
        pending = {t for t in (loop_task, *session.background) if t is not None and t is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending)
        await self._claims.release(session.claim)

    async def prepare_bindings(self, session_id: SessionId | str) -> SessionBindings:
        """Register if needed and return the session's id, epoch, its one ops registry and the
        machine's auth authorities (the same for every session)."""
        self._loop.check("prepare_bindings")
        session = await self._ensure_registered(session_id)
        return dataclasses.replace(session.bindings(), auth_lease=self._auth_lease, oauth_flows=self._oauth_flows)

    async def ops_lifecycle_registry(self, session_id: SessionId | str) -> OpsLifecycleRegistry:
        """The session's operation registry (``OpsLifecycleRegistry``)."""
        self._loop.check("ops_lifecycle_registry")
        return self._get(session_id).ops_registry

    async def close(self) -> None:
        """Unregister every session (releasing its lease), stop the lease renewal and, when the
        machine owns its store (``close_store``), close the store. Cancelling the caller does
        not interrupt it: the shutdown runs to its end in its own task. Closing twice is
        harmless. From the first call on, every call that registers or uses a session raises
        ``MachineClosed`` (``unregister_session`` is a no-op, the observations that answer for
        an unknown session answer so). A registration already in flight is waited for (one
        waiting for another worker's lease stops waiting) and then ends with ``MachineClosed``,
        its lease released: none outlives the close."""
        self._loop.check("close")
        self._closed = True
        task = self._closing
        if task is None or task.done():
            task = self._closing = asyncio.get_running_loop().create_task(self._close_now())
            task.add_done_callback(retrieve_outcome)
        await asyncio.shield(task)

    async def _close_now(self) -> None:
        await self._claims.settle_registrations()  # registrations in flight finish (or give up) first
        await self._settle_detaches()
        while self._sessions or self._unregistering:
            for runtime_id in list(self._sessions):  # side by side: a slow one holds up no other
                self._begin_unregister(runtime_id)
            if self._unregistering:
                await asyncio.wait({task for task, _ in self._unregistering.values()})
        self.events.deliver()  # what a garbage-collected watch queued (ops.registry._drain_if_idle)
        await self._claims.stop()
        store = self._store
        if self._close_store and store is not None:
            if self._offload:
                await asyncio.to_thread(store.close)  # waits for store calls still in flight
            else:
                store.close()

    async def halt(self) -> None:
        """What a process crash does, for tests and harnesses: cancel every loop and in-flight
        run and forget every session without writing anything, resolving any waiter or
        telling executors to stop. Durable state is exactly what was written so far; leases
        are not released (they expire, or this owner id claims them again at once). An attach
        awaiting its executor's ``start()`` gives it up (``attach_failed``, the caller gets
        ``SessionNotFound``)."""
        self._loop.check("halt")
        sessions = [*self._sessions.values(), *(session for _, session in self._unregistering.values())]
        self._sessions.clear()
        await self._claims.stop()
        tasks: list[asyncio.Task[Any]] = [*self._detaching, *(task for task, _ in self._unregistering.values())]
        if self._closing is not None and self._closing is not asyncio.current_task():
            tasks.append(self._closing)
        for task in tasks:
            task.cancel()
        for session in sessions:
            for background in session.background:
                background.cancel()
                tasks.append(background)
            self._claims.forget(session.claim)
            session.unregistered = True
            session.give_up_start()  # an attach awaiting start() attaches nothing
            for running in (session.apply_task, session.loop_task):
                if running is not None and not running.done():
                    running.cancel()
                    tasks.append(running)
            session.loop_task = None
            close_ops(session, release_waiters=False)  # refuses later calls; resolves nothing
        if tasks:
            await asyncio.wait(tasks)

    # --- inputs ---------------------------------------------------------------------------

    async def accept_input(self, session_id: SessionId | str, item: Input) -> AcceptOutcome:
        """Admit ``item``: ``Accepted`` (durable before it returns), ``Deduplicated`` (carrying
        the stored outcome when the existing input finished) or ``Rejected``. Raises
        ``InvalidField`` (kind ``validation_failed``, naming the field) for a field of the wrong
        type or range, or an input larger than ``max_input_bytes``; ``RuntimeDestroyed`` /
        ``NotReady`` when the phase refuses input; ``DurableWriteFailed`` when the row could
        not be written (nothing changed; ``outcome_unknown`` when the store left it open and
        could not be read back: the session reconciles before its next step). Does not wait for an
        executor ``start()`` an attach awaits: the accept shares the gate with it
        (``RuntimeSession.sharing``) and the loop drains the input once attached."""
        self._loop.check("accept_input")
        session = self._get(session_id)
        item = check_input(item, self._limits)
        if not session.persistence.durable:
            return await self._accept(session, item)
        return await run_shielded_eagerly(self._accept(session, item))

    async def _accept(self, session: RuntimeSession, item: Input) -> AcceptOutcome:
        async with session.sharing():
            session.check_registered()
            outcome, _ = await self._accept_locked(session, item, want_handle=False)
        return outcome

    async def accept_input_with_completion(
        self, session_id: SessionId | str, item: Input
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        """Like ``accept_input`` plus a completion handle: for an accepted input, for a
        duplicate of an input still in flight (same outcome), and for a duplicate of a finished
        input (already resolved with the outcome stored with it, also after a restart; ``None``
        only when none was stored). A rejected input raises ``ValidationFailed``."""
        self._loop.check("accept_input_with_completion")
        session = self._get(session_id)
        item = check_input(item, self._limits)
        accepting = self._accept_with_handle(session, item)
        if session.persistence.durable:
            outcome, handle = await run_shielded_eagerly(accepting)
        else:
            outcome, handle = await accepting
        if isinstance(outcome, Rejected):
            raise ValidationFailed(outcome.reason)
        return outcome, handle

    async def _accept_with_handle(
        self, session: RuntimeSession, item: Input
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        async with session.sharing():
            session.check_registered()
            return await self._accept_locked(session, item, want_handle=True)

    async def _accept_locked(
        self, session: RuntimeSession, item: Input, *, want_handle: bool, folded: bool = False
    ) -> tuple[AcceptOutcome, CompletionHandle | None]:
        """Decide and commit the accept of ``item`` (gate held). ``folded``: the accept's event
        is folded into the run start that follows (``accept_input_and_run``)."""
        await reconcile(session, "accept_input")
        core = session.core
        decided = core.accept(item, time.time())
        if isinstance(decided, Rejected):
            events.emit_step(session, "reject_invalid", details={"input": item.header.id, "reason": decided.reason})
            return decided, None
        if isinstance(decided, Deduplicated):
            if decided.outcome is None and decided.existing_id not in core.ledger.records:
                finished = await retention.finished_record(session, decided.existing_id)
                if finished is not None:
                    decided = Deduplicated(decided.input_id, decided.existing_id, completion_of(finished))
            if session.events is not None and session.events.active:
                details = events.accept_details(item)
                details["existing"] = decided.existing_id
                events.emit_step(session, "deduplicate", details=details)
            return decided, self._duplicate_handle(session, decided) if want_handle else None
        if session.persistence.durable and has_inline_images(item):
            await self._store_images(session, decided, item)
        decided.folded = folded
        await commit(session, decided, "accept_input")
        handle = session.completions.register(item.header.id) if want_handle else None
        session.wake()
        return Accepted(item.header.id, _QUEUED), handle

    def _duplicate_handle(self, session: RuntimeSession, duplicate: Deduplicated) -> CompletionHandle | None:
        """The handle of a duplicate: the existing input's (pending while it is in flight),
        already resolved with its stored outcome once it finished, ``None`` when no outcome was
        stored with it."""
        existing = session.core.ledger.records.get(duplicate.existing_id)
        if existing is not None and not existing.phase.is_terminal:
            return session.completions.register(duplicate.existing_id)
        if duplicate.outcome is not None:
            return session.completions.resolved_handle(duplicate.existing_id, duplicate.outcome)
        return None

    async def _store_images(self, session: RuntimeSession, plan: Plan, item: Input) -> None:
        """Before an accept is written: move inline images to the blob store (in a worker
        thread when store calls are offloaded); only the persisted copy of the new row changes.
        Called only for an input that has inline images: an input without any takes no hop."""
        blobs = session.blobs
        stored = await session.persistence.read(lambda: externalize_images(item, blobs))
        if stored is not item:
            plan.records[item.header.id].stored_input = stored

    async def accept_input_and_run(self, session_id: SessionId | str, item: Input, op: RunOp[T]) -> T:
        """Accept ``item`` and run it right away through ``op(run_id, primitive)`` instead of a
        run loop. Requires an Idle session without a loop (attached, or being attached: an
        executor ``start()`` pending) or queued work (else ``NotReady``).

        ``op`` returns ``(value, CoreApplyOutput)``; the boundary is committed and ``value``
        returned. If ``op`` raises — any ``BaseException`` but ``CancelledError``, also
        ``GeneratorExit`` or an application's subclass — the run fails (input requeued;
        ``ExecutorCancelled``: the input is Abandoned as cancelled) and the error propagates; if
        that cannot be recorded the session is unregistered and ``DurableWriteFailed`` raised.
        A run whose end cannot be committed for an unexpected reason is dropped
        (:func:`~meerkat_runtime.session.run_end.drop_stranded`) before the error propagates. A failed boundary commit
        raises ``BoundaryCommitFailed`` with the input Queued and the runtime Idle.

        ``op`` runs as the session's in-flight apply: interrupting the run, stopping,
        destroying or unregistering the session cancels it, and the call then raises
        ``InvalidRuntimeTransition`` (the run already ended as those operations say);
        ``MachineClosed`` when the machine's ``close()`` unregistered it. Retiring the runtime
        meanwhile lets the run finish (it ends Retired). Cancelling the caller raises
        ``CancelledError`` at once and never interrupts a commit: an ``op`` still running is
        cancelled (the run is committed as an interrupt), the end of a run whose ``op`` had
        returned is committed as it is (the boundary); see :mod:`~meerkat_runtime.session.direct_run`.
        """
        self._loop.check("accept_input_and_run")
        session = self._get(session_id)
        item = check_input(item, self._limits)
        call = DirectCall()
        return await call.drive(self._direct_run(session, item, op, call))

    async def _direct_run(self, session: RuntimeSession, item: Input, op: RunOp[T], call: DirectCall) -> T:
        """The work of ``accept_input_and_run`` (in a task of its own, :meth:`DirectCall.drive`)."""
        core = session.core
        await session.claim.ensure_fresh()
        async with session.sharing():
            session.check_registered()
            await reconcile(session, "accept_input_and_run")
            core.check_direct_run()
            outcome, _ = await self._accept_locked(session, item, want_handle=False, folded=True)
            if isinstance(outcome, Rejected):
                raise ValidationFailed(outcome.reason)
            if isinstance(outcome, Deduplicated):
                raise ValidationFailed(f"input deduplicated against {outcome.existing_id}; nothing to run")
            plan = core.start_run(new_run_id(), outcome.input_id, time.time(), rule="accept_and_run")
            run = plan.current_run
            assert run is not None
            unstarted = install_start(session, plan)
            if unstarted is None:
                primitive = RunPrimitive(run.run_id, (item,))
                task: asyncio.Task[tuple[T, CoreApplyOutput]] = asyncio.ensure_future(
                    awaited(op, run.run_id, primitive)
                )
                session.apply_task = task
                session.applying_run = run.run_id
                call.started(task)
        try:
            if unstarted is not None:
                raise unstarted
            return await direct_run.finish(session, run, task, self._on_fatal, self._on_detached)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a defect may have left the run current: drop it (else a no-op)
            await drop_stranded(session, run, exc)
            raise
        finally:
            session.wake()  # a loop attached meanwhile drains what was queued during the run

    async def _control(self, session_id: SessionId | str, op: Callable[[RuntimeSession], Coroutine[Any, Any, T]]) -> T:
        """Run the control operation ``op`` on the session (shielded from cancellation when durable)."""
        session = self._get(session_id)
        return await _shielded(session.persistence.durable, op(session))

    async def interrupt_current_run(self, session_id: SessionId | str) -> reports.InterruptReport:
        """Cancel the run in flight (no-op without one)."""
        self._loop.check("interrupt_current_run")
        return await self._control(session_id, control_commands.interrupt_current_run)

    async def cancel_after_boundary(self, session_id: SessionId | str, reason: str = "") -> bool:
        """Forward ``CancelAfterBoundary`` to the attached executor (it stops the run at its next
        boundary). Returns ``False`` when no executor is attached."""
        self._loop.check("cancel_after_boundary")
        session = self._get(session_id)
        executor = session.executor
        if executor is None or session.executor_stopped:
            return False
        await executor.control(CancelAfterBoundary(reason))
        return True

    async def wake(self, session_id: SessionId | str) -> None:
        """Ask the session's loop to look at its lanes again."""
        self._loop.check("wake")
        self._get(session_id).wake()

    # --- control --------------------------------------------------------------------------

    async def retire_runtime(self, session_id: SessionId | str) -> reports.RetireReport:
        self._loop.check("retire_runtime")
        return await self._control(session_id, control_commands.retire_runtime)

    async def reset_runtime(self, session_id: SessionId | str) -> reports.ResetReport:
        self._loop.check("reset_runtime")
        return await self._control(session_id, control_commands.reset_runtime)

    async def recycle_runtime(self, session_id: SessionId | str) -> reports.RecycleReport:
        self._loop.check("recycle_runtime")
        return await self._control(session_id, control_commands.recycle_runtime)

    async def stop_runtime(self, session_id: SessionId | str) -> reports.StopReport:
        self._loop.check("stop_runtime")
        return await self._control(session_id, control_commands.stop_runtime)

    async def destroy_runtime(self, session_id: SessionId | str) -> reports.DestroyReport:
        self._loop.check("destroy_runtime")
        return await self._control(session_id, control_commands.destroy_runtime)

    async def recover_session(self, session_id: SessionId | str) -> reports.RecoveryReport:
        """Re-read the session's rows from the store and adopt them in place (``recover``,
        ``recover_noop``): the phase is kept; rows recovery normalises are written back with
        the lifecycle record in one commit; waiters of inputs no longer pending resolve; the
        loop is woken. Not while a run is in flight (``InvalidRuntimeTransition``) or Destroyed
        (``RuntimeDestroyed``)."""
        self._loop.check("recover_session")
        return await self._control(session_id, control_commands.recover_session)

    async def apply_routed_meerkat_input(self, session_id: SessionId | str, routed: RoutedInput) -> RoutedResult:
        """Apply a command another component routed into the session
        (:mod:`meerkat_runtime.session.routed`): ``RoutedInputRefused`` for a runtime-internal,
        unknown or malformed command (nothing looked up or changed), ``SessionNotFound`` for a
        session not registered here (a routed input never registers one); otherwise exactly the
        machine's own method for the command, its result returned — except that a composition
        dispatcher refusing the committed transition's signal always restores the previous state
        (``CompositionDispatchFailed(restored=True)``), whatever this machine's failure policy."""
        self._loop.check("apply_routed_meerkat_input")
        if not isinstance(routed, RoutedInput):
            raise RoutedInputRefused(type(routed).__name__, "not a RoutedInput")
        routed.check()
        self._get(session_id)
        token = FORCED_POLICY.set(DispatchFailurePolicy.RESTORE)
        try:
            command = routed.command
            if command == "accept":
                assert routed.input is not None
                return await self.accept_input(session_id, routed.input)
            if command == "interrupt":
                return await self.interrupt_current_run(session_id)
            controls: dict[str, Callable[[SessionId | str], Awaitable[RoutedResult]]] = {
                "retire": self.retire_runtime,
                "reset": self.reset_runtime,
                "recycle": self.recycle_runtime,
                "stop": self.stop_runtime,
                "destroy": self.destroy_runtime,
                "recover": self.recover_session,
            }
            return await controls[command](session_id)
        finally:
            FORCED_POLICY.reset(token)

    # --- observation ----------------------------------------------------------------------

    async def runtime_state(self, session_id: SessionId | str) -> RuntimeState:
        """The session's phase. Like every read below, taken under the session gate
        (``RuntimeSession.reading``): no transition whose write is in flight is visible, and a
        pending executor ``start()`` is not waited for (the state as the attach left it before the
        call: registration Attaching, the phase unchanged)."""
        self._loop.check("runtime_state")
        session = self._get(session_id)
        async with session.reading():
            return session.core.phase

    async def executor_ready(self, session_id: SessionId | str) -> bool:
        """True when the session has a live run loop; False when it only queues, is unknown or
        was lost to another worker."""
        self._loop.check("executor_ready")
        session = self._sessions.get(stored_session_runtime_id(session_id))
        if session is None or session.loop_task is None or session.lost is not None:
            return False
        return session.registration is RegistrationPhase.ACTIVE and not session.loop_task.done()

    async def registration_phase(self, session_id: SessionId | str) -> RegistrationPhase:
        self._loop.check("registration_phase")
        return self._get(session_id).registration

    async def input_state(self, session_id: SessionId | str, input_id: InputId | str) -> InputStateView | None:
        self._loop.check("input_state")
        session = self._get(session_id)
        async with session.reading():
            record = await retention.finished_record(session, InputId(str(input_id)))
            if record is None or not retention.visible(session.core.ledger, record):
                return None
            return input_view(record)

    async def input_states(self, session_id: SessionId | str) -> list[InputStateView]:
        """Every input the session keeps (finished ones within the retention horizon, read from
        the store when not resident), in admission order."""
        self._loop.check("input_states")
        session = self._get(session_id)
        async with session.reading():
            return [input_view(r) for r in await retention.all_records(session)]

    async def list_active_inputs(self, session_id: SessionId | str) -> list[InputId]:
        """Ids of non-terminal inputs, in admission order."""
        self._loop.check("list_active_inputs")
        session = self._get(session_id)
        async with session.reading():
            return session.core.ledger.active_ids()

    async def session_view(self, session_id: SessionId | str) -> SessionView:
        """Phase, registration, current run, lanes and every input the session keeps, as plain
        data."""
        self._loop.check("session_view")
        session = self._get(session_id)
        async with session.reading():
            return session_view(session, await retention.all_records(session))

    async def load_boundary_receipt(
        self, session_id: SessionId | str, run_id: RunId | str, sequence: int
    ) -> BoundaryReceipt | None:
        """The boundary receipt the session's run ``run_id`` committed at ``sequence``, read from
        the store through the session (its canonical runtime id; the read runs like the
        session's other store calls, off the event loop by default); ``None`` when none is
        stored, and always for an ephemeral machine (nothing of it is durable). ``SessionNotFound``
        for an unregistered session, ``OwnershipLost`` for one lost to another worker,
        ``ValidationFailed`` for an empty run id or a sequence that is not a non-negative integer."""
        self._loop.check("load_boundary_receipt")
        if not isinstance(run_id, str) or not run_id:
            raise ValidationFailed(f"run id must be a non-empty string, got {run_id!r}")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise ValidationFailed(f"boundary sequence must be an integer >= 0, got {sequence!r}")
        session = self._get(session_id)
        persistence = session.persistence
        store = persistence.store
        if store is None:
            return None
        runtime_id = session.runtime_id
        return await persistence.read(lambda: store.load_boundary_receipt(runtime_id, run_id, sequence))

    async def completion_outcomes(self, session_id: SessionId | str) -> dict[InputId, CompletionOutcome]:
        """Outcomes delivered so far to waiters, by input id (also of a session lost to another
        worker)."""
        self._loop.check("completion_outcomes")
        return dict(self._get(session_id, lost_ok=True).completions.resolved)

    async def last_error(self, session_id: SessionId | str) -> BaseException | None:
        """The last error the session's loop recorded (boundary or terminal-snapshot failure,
        ``OwnershipLost``); also for a session lost to another worker."""
        self._loop.check("last_error")
        return self._get(session_id, lost_ok=True).last_error

    def settled_now(self, session_id: SessionId | str) -> bool:
        """Whether the session's loop has nothing runnable right now: no loop (or no session),
        a loop that ended (detached, e.g. stopped on a damaged row; ``last_error`` says why),
        waiting for a wake with none pending and the gate free, or inside an executor that
        reports it is parked (``ScriptedExecutor.parked()``). Never blocks; for harnesses that
        drive the event loop themselves (``settle`` waits for it). Not while the machine's
        re-attach of the session (``reattach``) is pending."""
        session = self._sessions.get(stored_session_runtime_id(session_id))
        if session is None:
            return True
        if _reattach_pending(session):
            return False
        if session.loop_task is None or session.loop_task.done():
            return True  # no loop, or one that ended (e.g. stopped on a damaged row): nothing runs
        state = session.loop_state
        if state is LoopState.WAITING and not session.wake_event.is_set() and not session.gate.locked():
            return True
        parked = getattr(session.executor, "parked", None)
        return state is LoopState.APPLYING and callable(parked) and bool(parked())

    async def settle(self, session_id: SessionId | str, timeout: float = 5.0) -> None:
        """Wait until the session's loop has nothing runnable (:meth:`settled_now`), a pending
        re-attach included (so a store that stays unreadable makes it time out). Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        self._loop.check("settle")
        deadline = time.monotonic() + timeout
        spins = 0
        while True:
            session = self._sessions.get(stored_session_runtime_id(session_id))
            if session is None or (session.loop_task is None and not _reattach_pending(session)):
                await asyncio.sleep(0)
                return
            if self.settled_now(session_id):
                return
            if time.monotonic() > deadline:
                state = session.loop_state
                raise TimeoutError(f"session {session_id!r} did not settle within {timeout} s (loop {state.value})")
            spins += 1
            await asyncio.sleep(0 if spins < 50 else 0.0005)
