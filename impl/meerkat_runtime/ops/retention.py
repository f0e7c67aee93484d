"""FIFO retention of terminal operations, planned without touching the FIFO.

After each terminal transition the oldest ids of the retention FIFO that are not pinned (members
of an active ``wait_all`` barrier) are evicted while more than ``max_completed`` remain.
:class:`RetentionPlan` computes what that does to the FIFO — ids appended, ids evicted — as an
overlay over the live FIFO, so a plan costs O(ids appended + ids evicted + pinned ids skipped),
not O(FIFO); :func:`apply_retention` performs it.

Applying the rule once after several appends evicts exactly what applying it after each append
does, as long as the pinned set does not change in between (both evict the oldest unpinned ids,
and later appends are newer): a plan calls :meth:`RetentionPlan.retain` once per pinned set.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable


class RetentionPlan:
    """The retention FIFO as a plan will leave it: ``completed`` plus ``appended``, minus
    ``evicted`` (oldest first). ``completed`` is only read."""

    __slots__ = ("_completed", "_gone", "_max", "appended", "evicted")

    def __init__(self, completed: deque[str], max_completed: int) -> None:
        self._completed = completed
        self._max = max_completed
        self._gone: set[str] = set()
        self.appended: list[str] = []
        self.evicted: list[str] = []

    def retain(self, pinned: frozenset[str]) -> None:
        """Evict the oldest ids not in ``pinned`` while more than ``max_completed`` remain."""
        excess = len(self._completed) + len(self.appended) - len(self.evicted) - self._max
        if excess <= 0:
            return
        gone = self._gone
        for operation_id in itertools.chain(self._completed, self.appended):
            if operation_id in pinned or operation_id in gone:
                continue
            gone.add(operation_id)
            self.evicted.append(operation_id)
            excess -= 1
            if excess <= 0:
                return


def apply_retention(completed: deque[str], appended: Iterable[str], evicted: Iterable[str]) -> None:
    """Append ``appended`` to the FIFO, then remove ``evicted`` (usually its head)."""
    completed.extend(appended)
    for operation_id in evicted:
        if completed and completed[0] == operation_id:
            completed.popleft()
        else:
            completed.remove(operation_id)
