"""``LoggingSubscriber``: every event as one record of the standard ``logging`` module.

One logger per package: session events go to ``meerkat_runtime.session``, operation events to
``meerkat_runtime.ops`` (the bus's own failures to ``meerkat_runtime.events``). The message is
one readable line; the structured fields are in ``extra`` as record attributes
``meerkat_seq``, ``meerkat_rule``, ``meerkat_session_id``, ``meerkat_runtime_id``,
``meerkat_before``, ``meerkat_after``, ``meerkat_run_id`` and ``meerkat_event`` (the whole event
as plain data), so a JSON formatter can emit them as they are. Failures (an executor error, an
input abandoned after its attempts, a failed boundary commit) are logged at WARNING, the rest
at INFO (or the ``level`` given).
"""

from __future__ import annotations

import logging

from meerkat_runtime.events.event import LifecycleEvent

LOGGERS = {"session": "meerkat_runtime.session", "ops": "meerkat_runtime.ops"}

WARNING_RULES = frozenset(
    {
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "boundary_commit_failed",
        "boundary_commit_failed_retired",
        "terminal_snapshot_failed",
        "provisioning_failed",
        "fail_operation",
        "terminate_owner",
    }
)


class LoggingSubscriber:
    """Subscribe it to a bus: ``machine.events.subscribe(LoggingSubscriber())``."""

    def __init__(self, level: int = logging.INFO) -> None:
        self.level = level
        self._loggers = {machine: logging.getLogger(name) for machine, name in LOGGERS.items()}

    def __call__(self, event: LifecycleEvent) -> None:
        logger = self._loggers.get(event.machine) or logging.getLogger("meerkat_runtime")
        level = logging.WARNING if event.rule in WARNING_RULES else self.level
        if not logger.isEnabledFor(level):
            return
        error = event.details.get("error")
        suffix = f" error={error.get('type')}: {error.get('message')}" if isinstance(error, dict) else ""
        logger.log(
            level,
            "%s #%d %s %s -> %s%s",
            event.session_id,
            event.seq,
            event.rule,
            event.before,
            event.after,
            suffix,
            extra={
                "meerkat_seq": event.seq,
                "meerkat_rule": event.rule,
                "meerkat_session_id": event.session_id,
                "meerkat_runtime_id": event.runtime_id,
                "meerkat_before": event.before,
                "meerkat_after": event.after,
                "meerkat_run_id": event.run_id,
                "meerkat_event": event.to_dict(),
            },
        )
