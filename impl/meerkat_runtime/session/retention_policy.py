"""``RetentionPolicy``: how long a session keeps its finished inputs (and so its idempotency window).

A finished input (Consumed, Superseded, Coalesced, Abandoned) is kept — its row with its stored
outcome in the store, its id and idempotency key in memory — while it is inside the horizon:

* ``keep_finished`` (default 10,000; ``None``: no count limit): the most recent finished inputs
  kept; older ones are compacted;
* ``max_age_s`` (default ``None``: no age limit): finished inputs that finished longer ago than
  this (runtime clock) are compacted.

Compacting a finished input deletes its row and forgets its id, its key and its delivered
outcome, in that order (store first, memory after). So the **idempotency window is the
horizon**: a duplicate of a kept input's key is ``Deduplicated`` with its stored outcome (also
after a restart); once the input is compacted its key is free, and an input carrying it is a new
input. Compaction runs once more than ``keep_finished`` plus a slack (an eighth of it, at least
16) are kept, or once the oldest is older than ``max_age_s`` plus a slack (an eighth of it, at
most an hour), so it deletes rows in batches; it runs at registration too, without the slack.
The finished input with the highest admission position is never compacted (it carries the
admission counter across a restart). ``RetentionPolicy(None, None)`` keeps every finished input
(memory and restarts then grow with history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meerkat_runtime.vocab.errors import InvalidSetting

DEFAULT_KEEP_FINISHED = 10_000
MAX_KEEP_FINISHED = 2**40
MAX_AGE_S = 100 * 366 * 24 * 3600.0
"""Longest ``max_age_s`` accepted (about a century)."""
RESIDENT_FINISHED = 256
"""How many of its most recent finished inputs a persistent session keeps decoded in memory;
older kept ones are read from the store when asked for (a duplicate key, ``input_state``)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many finished inputs a session keeps, and for how long (module docstring)."""

    keep_finished: int | None = DEFAULT_KEEP_FINISHED
    max_age_s: float | None = None

    def __post_init__(self) -> None:
        keep = self.keep_finished
        bad_keep = isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_KEEP_FINISHED
        if keep is not None and bad_keep:
            raise InvalidSetting(
                f"retention keep_finished must be None or an integer in 0..{MAX_KEEP_FINISHED}, got {keep!r}"
            )
        age = self.max_age_s
        bad_age = isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age)
        if age is not None and (bad_age or not 0 < age <= MAX_AGE_S):
            raise InvalidSetting(
                f"retention max_age_s must be None or a finite number of seconds in (0, {MAX_AGE_S:g}], got {age!r}"
            )

    @property
    def count_slack(self) -> int:
        return 0 if self.keep_finished is None else max(16, self.keep_finished // 8)

    @property
    def age_slack_s(self) -> float:
        return 0.0 if self.max_age_s is None else min(self.max_age_s / 8, 3600.0)


DEFAULT_RETENTION = RetentionPolicy()
"""The most recent 10,000 finished inputs, whatever their age."""
