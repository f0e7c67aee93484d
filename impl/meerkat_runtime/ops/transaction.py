"""One registry call in progress: an undo log plus the effects to publish once it is durable.

Mutations register their inverse with ``undo``; ``rollback`` runs the inverses newest first.
Effects that others can observe (watchers resolved, feed entries, a satisfied barrier) are
only collected here and published by the registry after the durable write succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from meerkat_runtime.ops.feed import CompletionEntry
from meerkat_runtime.ops.wait_all import WaitAllResult
from meerkat_runtime.ops.watch import OneShot
from meerkat_runtime.vocab.operation import TerminalOutcome

if TYPE_CHECKING:
    from meerkat_runtime.ops.record import OpRecord


class Transaction:
    """Undo log and deferred effects of one durable registry call."""

    __slots__ = (
        "_undo",
        "barrier_result",
        "collected",
        "entries",
        "evicted",
        "reorder_needed",
        "terminated",
        "watchers",
    )

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []
        self.terminated: list[OpRecord] = []
        self.entries: list[CompletionEntry] = []
        self.evicted: list[str] = []
        self.collected: list[str] = []
        self.watchers: list[tuple[list[OneShot[TerminalOutcome]], TerminalOutcome]] = []
        self.barrier_result: tuple[OneShot[WaitAllResult], WaitAllResult] | None = None
        self.reorder_needed = False

    def undo(self, step: Callable[[], object]) -> None:
        self._undo.append(step)

    @property
    def changed(self) -> bool:
        """Whether the call changed durable state (and so needs a durable write)."""
        return bool(self.terminated or self.evicted or self.collected)

    def rollback(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()

    def publish_effects(self) -> None:
        """Resolve watchers and the barrier (the feed is published by the registry)."""
        for shots, outcome in self.watchers:
            for shot in shots:
                shot.set(outcome)
        if self.barrier_result is not None:
            barrier_shot, result = self.barrier_result
            barrier_shot.set(result)
