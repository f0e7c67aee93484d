"""Reports returned by the lifecycle control operations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetireReport:
    inputs_abandoned: int
    inputs_pending_drain: int


@dataclass(frozen=True, slots=True)
class ResetReport:
    inputs_abandoned: int


@dataclass(frozen=True, slots=True)
class RecycleReport:
    inputs_transferred: int


@dataclass(frozen=True, slots=True)
class StopReport:
    inputs_abandoned: int


@dataclass(frozen=True, slots=True)
class DestroyReport:
    inputs_abandoned: int


@dataclass(frozen=True, slots=True)
class InterruptReport:
    """``cancelled_input_ids`` is empty when no run was in flight (a no-op)."""

    cancelled_input_ids: tuple[str, ...]
