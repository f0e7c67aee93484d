"""One registered session: its core state, persistence, waiters, loop attachment and bindings.

The ``gate`` (an ``asyncio.Lock``) serialises every stage → write → publish span of the
session; executors are never called while it is held. Readers take the gate too, so a
transition whose durable write is still in flight is never visible.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

from meerkat_runtime.ops.cursors import EpochCursorState
from meerkat_runtime.ops.persistence import StoreOpsPersistence
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.blobs import BlobStore
from meerkat_runtime.session.completion import CompletionRegistry, RuntimeTerminated
from meerkat_runtime.session.core import Effects, SessionCore
from meerkat_runtime.session.executor import CoreExecutor
from meerkat_runtime.session.persistence import SessionPersistence
from meerkat_runtime.vocab.errors import SessionNotFound
from meerkat_runtime.vocab.ids import RunId, SessionId
from meerkat_runtime.vocab.runtime import RegistrationPhase


class LoopState(enum.Enum):
    """What the session's run loop is doing (for observers and ``settle``)."""

    DETACHED = "detached"
    WAITING = "waiting"
    WORKING = "working"
    APPLYING = "applying"


@dataclass(frozen=True, slots=True)
class SessionBindings:
    """What a session's agent needs: ids, the epoch and the session's one ops registry."""

    session_id: SessionId
    runtime_id: str
    epoch_id: str
    ops_registry: OpsLifecycleRegistry
    cursors: EpochCursorState


class RuntimeSession:
    """Mutable state of one registered session (owned by ``MeerkatMachine``)."""

    def __init__(
        self,
        session_id: SessionId,
        core: SessionCore,
        persistence: SessionPersistence,
        blobs: BlobStore | None,
        epoch_id: str,
        ops_registry: OpsLifecycleRegistry,
        cursors: EpochCursorState,
    ) -> None:
        self.session_id = session_id
        self.runtime_id = core.runtime_id
        self.core = core
        self.persistence = persistence
        self.blobs = blobs
        self.gate = asyncio.Lock()
        self.completions = CompletionRegistry()
        self.registration = RegistrationPhase.QUEUING
        self.executor: CoreExecutor | None = None
        self.executor_stopped = False
        self.loop_task: asyncio.Task[None] | None = None
        self.loop_state = LoopState.DETACHED
        self.wake_event = asyncio.Event()
        self.apply_task: asyncio.Task[Any] | None = None
        self.applying_run: RunId | None = None
        self.epoch_id = epoch_id
        self.ops_registry = ops_registry
        self.cursors = cursors
        self.last_error: BaseException | None = None
        self.unregistered = False
        self.ops_sink: StoreOpsPersistence | None = None

    def check_registered(self) -> None:
        """Raise ``SessionNotFound`` once the session was unregistered (call under the gate)."""
        if self.unregistered:
            raise SessionNotFound(self.session_id)

    def bindings(self) -> SessionBindings:
        return SessionBindings(self.session_id, self.runtime_id, self.epoch_id, self.ops_registry, self.cursors)

    def publish(self, effects: Effects) -> None:
        """Resolve the waiters a committed transition decided."""
        for input_id, outcome in effects.resolutions:
            self.completions.resolve(input_id, outcome)
        if effects.terminate_all is not None:
            self.completions.resolve_all(RuntimeTerminated(effects.terminate_all))

    def wake(self) -> None:
        """Signal the loop to look at the lanes again."""
        if self.loop_task is not None:
            self.wake_event.set()

    def detach(self) -> tuple[CoreExecutor | None, asyncio.Task[None] | None, asyncio.Task[Any] | None]:
        """Forget the loop (registration back to Queuing). Returns what the caller must stop:
        the executor (if not yet told to stop), the loop task and an in-flight apply task."""
        executor = None if self.executor_stopped else self.executor
        self.executor_stopped = True
        loop_task, apply_task = self.loop_task, self.apply_task
        self.loop_task = None
        self.executor = None
        self.registration = RegistrationPhase.QUEUING
        self.core.detach_loop()
        return executor, loop_task, apply_task
