"""``RetryPolicy``: how a session retries an input whose run failed.

* ``max_attempts`` (default 3, at least 1): the attempt whose failure abandons the input
  (``executor_failed_exhausted``, outcome ``abandoned(max_attempts_exhausted)`` carrying the
  last error). It is the reference model's ``max_attempts`` bound: ``meerkat-verify --set
  max_attempts=N`` checks the lifecycle under the limit a deployment uses, and every
  ``executor_failed*`` / ``register`` event carries it so ``check-trace`` replays under it.
  Recovery refuses a stored active row with more attempts than the limit (and an exhausted row
  with fewer), as the model does: lower the limit only on a drained store.
* ``backoff_s``, ``multiplier``, ``max_backoff_s``, ``jitter``: after a failed run the loop
  waits ``min(backoff_s * multiplier ** (attempt - 1), max_backoff_s)`` seconds before it
  starts the next run, each wait scaled by a random factor in ``[1 - jitter, 1]`` ("equal"
  jitter for ``jitter=0.5``, "full" for ``1.0``). The wait never holds the session gate (control
  commands, accepts and interrupts go on) and ends early when the loop is detached. It delays
  the *next* run rather than reordering the lanes, so which input runs next is exactly what
  the model says (the requeued input waits at the back of its lane). Default: no wait.
* ``retryable``: which executor errors are worth retrying — a tuple of exception types, or a
  predicate; ``None`` (default) retries every error. A run failing with an error that is not
  retryable abandons its input at once: its attempts are set to the limit, so it is the same
  ``executor_failed_exhausted`` transition, with the error kept on the row and the outcome.
  A predicate that raises is logged and the error treated as retryable.

Cancellation (``interrupt``) and a malformed executor output are not errors of this policy:
an interrupt abandons the input as cancelled, a malformed output is retried like any error.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from meerkat_runtime.vocab.errors import InvalidSetting
from meerkat_runtime.vocab.inputs import MAX_STAGE_ATTEMPTS

_log = logging.getLogger(__name__)

Retryable = tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts, backoff with jitter and which errors are retryable (see the module docstring)."""

    max_attempts: int = MAX_STAGE_ATTEMPTS
    backoff_s: float = 0.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.0
    retryable: Retryable = None

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidSetting(f"retry policy max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        for name in ("backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise InvalidSetting(f"retry policy {name} must be a finite number >= 0, got {value!r}")
        if isinstance(self.multiplier, bool) or not isinstance(self.multiplier, int | float) or self.multiplier < 1:
            raise InvalidSetting(f"retry policy multiplier must be a number >= 1, got {self.multiplier!r}")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise InvalidSetting(f"retry policy jitter must be between 0 and 1, got {self.jitter!r}")
        retryable = self.retryable
        types_ok = isinstance(retryable, tuple) and all(
            isinstance(kind, type) and issubclass(kind, BaseException) for kind in retryable
        )
        if retryable is not None and not callable(retryable) and not types_ok:
            raise InvalidSetting("retry policy retryable must be None, a tuple of exception types or a predicate")

    def is_retryable(self, error: BaseException | None) -> bool:
        """Whether a run that failed with ``error`` may be retried (``None``: unknown, yes). A
        predicate that raises (or returns something whose truth cannot be read) is logged and
        the error counted retryable: the attempt limit still ends the input."""
        retryable = self.retryable
        if retryable is None or error is None:
            return True
        if isinstance(retryable, tuple):
            return isinstance(error, retryable)
        try:
            return bool(retryable(error))
        except Exception:
            _log.exception("retry policy's retryable predicate raised; the error is retried")
            return True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt of an input (1-based)."""
        if self.backoff_s <= 0:
            return 0.0
        try:
            grown = self.backoff_s * self.multiplier ** max(attempt - 1, 0)
        except OverflowError:  # past any float: the cap applies
            grown = math.inf
        base = min(grown, self.max_backoff_s)
        if self.jitter <= 0:
            return base
        draw = (rng or random).random()
        return base * (1.0 - self.jitter * draw)


DEFAULT_RETRY = RetryPolicy()
"""Three attempts, no wait, every error retryable."""
