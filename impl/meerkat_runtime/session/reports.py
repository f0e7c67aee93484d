"""Reports returned by the lifecycle control operations.

Reset, stop and destroy report only how many inputs they abandoned: they share
:class:`AbandonedReport` (a frozen dataclass) and stay distinct types, so reports of different
operations never compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AbandonedReport:
    """What an operation that abandons inputs reports: how many it abandoned."""

    inputs_abandoned: int


@dataclass(frozen=True, slots=True)
class RetireReport(AbandonedReport):
    """``inputs_abandoned`` without a loop; with one, ``inputs_pending_drain`` left to drain."""

    inputs_pending_drain: int


@dataclass(frozen=True, slots=True)
class RecycleReport:
    inputs_transferred: int


class ResetReport(AbandonedReport):
    """What ``reset_runtime`` reports."""

    __slots__ = ()


class StopReport(AbandonedReport):
    """What ``stop_runtime`` reports."""

    __slots__ = ()


class DestroyReport(AbandonedReport):
    """What ``destroy_runtime`` reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class InterruptReport:
    """``cancelled_input_ids`` is empty when no run was in flight (a no-op)."""

    cancelled_input_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``recover_session`` reports: the active inputs the store recovered to
    (``inputs_recovered``), how many recovery put back in a lane (``inputs_requeued``: staged
    or applied rows without a receipt) or found consumed (``inputs_consumed``: a stored
    boundary receipt), and how many rows it wrote back (``rows_written``: 0 when nothing
    changed)."""

    inputs_recovered: int
    inputs_requeued: int
    inputs_consumed: int
    rows_written: int
