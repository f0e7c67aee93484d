"""The plan of one durable registry call, computed before anything changes.

A terminal rule of :class:`~meerkat_runtime.ops.core.OpsCore` (``complete_operation``,
``terminate_owner``, ``collect_completed``, ...) validates the call and returns an
:class:`OpsPlan`: the operations it makes terminal with their outcomes, sequence numbers and
stamps, the feed entries, the ids the retention FIFO gains and loses, the barrier it satisfies,
the watchers to resolve. Nothing in the registry changed; ``OpsCore.apply`` installs the plan
once it is durable (:meth:`OpsLifecycleRegistry._commit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from meerkat_runtime.ops.feed import CompletionEntry
from meerkat_runtime.ops.record import OpRecord
from meerkat_runtime.ops.snapshot import PersistedOperation
from meerkat_runtime.ops.wait_all import WaitAllResult
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import TerminalOutcome


class PlannedTerminal(NamedTuple):
    """One operation the plan makes terminal."""

    record: OpRecord
    outcome: TerminalOutcome
    seq: int
    completed_at_ms: int
    elapsed_ms: int | None
    watchers: tuple[OneShot[TerminalOutcome], ...]

    def persisted(self) -> PersistedOperation:
        """The operation's persisted form after the plan."""
        rec = self.record
        return PersistedOperation(
            spec=rec.spec,
            status=self.outcome.status,
            peer_ready=rec.peer_ready,
            progress_count=rec.progress_count,
            watcher_count=0,
            terminal_outcome=self.outcome,
            completion_seq=self.seq,
            peer_handle=rec.peer_handle,
            created_at_ms=rec.created_at_ms,
            started_at_ms=rec.started_at_ms,
            completed_at_ms=self.completed_at_ms,
            elapsed_ms=self.elapsed_ms,
            registration=rec.reg_index,
        )


@dataclass(slots=True)
class OpsPlan:
    """What one durable registry call changes (see the module docstring)."""

    rule: str
    """The registry method (the model's transition name), also the journal record's ``action``."""
    operation_id: str | None
    """The operation a per-operation call names (``None`` for a registry-wide call)."""
    next_seq: int
    terminal: tuple[PlannedTerminal, ...] = ()
    entries: tuple[CompletionEntry, ...] = ()
    """The feed entries, one per terminal operation."""
    appended: tuple[str, ...] = ()
    """Ids appended to the retention FIFO (the terminal operations, in order)."""
    evicted: tuple[str, ...] = ()
    """Ids retention evicts (oldest first)."""
    collected: tuple[tuple[str, TerminalOutcome], ...] = ()
    """``collect_completed``'s ids and outcomes, in completion order."""
    kept: tuple[str, ...] | None = None
    """The retention FIFO after a ``collect_completed`` (the pinned ids), else ``None``."""
    barrier_done: tuple[str, ...] = ()
    """Barrier members this plan makes terminal."""
    barrier_result: tuple[OneShot[WaitAllResult], WaitAllResult] | None = None
    """The barrier this plan satisfies (it ends), with its result."""
    reason: str | None = None
    """``terminate_owner``'s reason."""

    @property
    def subject(self) -> str:
        """What the call was, for error messages (``complete_operation of operation 'x'``)."""
        if self.operation_id is not None:
            return f"{self.rule} of operation {self.operation_id!r}"
        if self.rule == "terminate_owner":
            return f"terminate_owner({self.reason!r}) of {len(self.terminal)} operation(s)"
        return f"{self.rule}() of {len(self.collected)} operation(s)"

    @property
    def changed(self) -> bool:
        """Whether the call changes durable state (and so needs a durable write)."""
        return bool(self.terminal or self.evicted or self.collected)

    @property
    def collected_ids(self) -> tuple[str, ...]:
        return tuple(oid for oid, _ in self.collected)
