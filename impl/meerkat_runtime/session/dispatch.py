"""The composition signal dispatcher: committed lifecycle effects lifted into typed signals for
another component (a mob orchestrator observing its members), with a dispatch-failure policy.

``machine.set_composition_signal_dispatcher(dispatcher, policy=...)`` installs one async
callable per machine. For every committed transition in :data:`ROUTED_RULES` the commit seam
(:func:`meerkat_runtime.session.commit.commit`) awaits ``dispatcher(signal)`` after the
transition is durable and applied, with the session gate held, *before* its waiters resolve and
before any other subscriber sees its event. If the dispatcher raises, the policy decides:

* ``DispatchFailurePolicy.PRESERVE`` — keep the committed state: waiters resolve, the event is
  published, and the caller gets :class:`CompositionDispatchFailed` (``restored=False``);
* ``DispatchFailurePolicy.RESTORE`` (the default, as upstream) — restore the previous state in
  memory *and on disk*: memory goes back to the checkpoint taken before the apply, and one
  compensating lifecycle commit writes the previous lifecycle record and rows back; no waiter
  resolves, no event is published (the transition did not happen) and the caller gets
  :class:`CompositionDispatchFailed` (``restored=True``). If the compensating write fails the
  session is marked in doubt (it reconciles with the store before its next step, adopting what
  the store holds) and the error says so (``restored=False``, ``outcome_unknown=True``).

A run's end (``executor_succeeded``, ``executor_failed_exhausted``, ``interrupt`` and their
``_retired`` forms) is always dispatched under ``PRESERVE``: the executor's work happened and
cannot be undone; a failed dispatch is kept in ``last_error`` and logged, and the loop goes on.
Signals carry what an event carries (rule, session and runtime ids, statuses before and after,
the changed entities, the run, details); the dispatcher refuses a signal by raising.
"""

from __future__ import annotations

import contextvars
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meerkat_runtime.events.event import Change
from meerkat_runtime.vocab.errors import RuntimeDriverError, error_message

_log = logging.getLogger("meerkat_runtime.session")


class DispatchFailurePolicy(enum.Enum):
    """What a failed dispatch does to the committed transition (module docstring)."""

    PRESERVE = "preserve"
    RESTORE = "restore"


RUN_END_RULES = frozenset(
    {
        "executor_succeeded",
        "executor_succeeded_retired",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "interrupt",
        "interrupt_retired",
    }
)
CONTROL_RULES = frozenset(
    {
        "retire",
        "retire_without_loop",
        "reset",
        "reset_with_loop",
        "recycle",
        "recycle_with_loop",
        "stop",
        "stop_with_loop",
        "destroy",
        "destroy_with_loop",
        "recover",
    }
)
ROUTED_RULES = RUN_END_RULES | CONTROL_RULES
"""The transitions whose effects are lifted into composition signals."""


@dataclass(frozen=True, slots=True)
class CompositionSignal:
    """One committed lifecycle effect routed to the composition dispatcher."""

    rule: str
    session_id: str
    runtime_id: str
    before: str
    after: str
    changes: tuple[Change, ...] = ()
    run_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


CompositionSignalDispatcher = Callable[[CompositionSignal], Awaitable[None]]


class CompositionDispatchFailed(RuntimeDriverError):
    """The composition dispatcher refused a committed transition's signal. ``restored``: the
    previous state is back in memory and on disk (policy ``RESTORE``); otherwise the committed
    state was kept (``PRESERVE``) — or, with ``outcome_unknown``, restoring it on disk failed and
    the session reconciles with the store before its next step."""

    kind: ClassVar[str] = "composition_dispatch_failed"

    def __init__(self, rule: str, cause: BaseException, *, restored: bool, outcome_unknown: bool = False) -> None:
        if restored:
            state = "the previous state was restored in memory and on disk"
        elif outcome_unknown:
            state = "restoring the previous state on disk failed; the session reconciles with the store first"
        else:
            state = "the committed state was kept"
        super().__init__(f"{rule}: committed effect dispatch failed ({state}): {error_message(cause)}")
        self.rule = rule
        self.cause = cause
        self.restored = restored
        self.outcome_unknown = outcome_unknown


FORCED_POLICY: contextvars.ContextVar[DispatchFailurePolicy | None] = contextvars.ContextVar(
    "meerkat_forced_dispatch_policy", default=None
)
"""Set while a routed input runs (in its own task and the tasks it starts): the policy its
control transitions are dispatched under, whatever the machine's (a run's end stays PRESERVE)."""


@dataclass(frozen=True, slots=True)
class CompositionDispatch:
    """A machine's installed dispatcher and its failure policy."""

    dispatcher: CompositionSignalDispatcher
    policy: DispatchFailurePolicy = DispatchFailurePolicy.RESTORE

    def policy_for(self, rule: str) -> DispatchFailurePolicy | None:
        """The policy under which ``rule``'s signal is dispatched; ``None``: not routed."""
        if rule in RUN_END_RULES:
            return DispatchFailurePolicy.PRESERVE
        if rule in CONTROL_RULES:
            forced = FORCED_POLICY.get()
            return self.policy if forced is None else forced
        return None


def log_preserved(signal: CompositionSignal, error: BaseException) -> None:
    """A run end's refused signal: logged on the session logger, never raised."""
    _log.warning(
        "composition dispatch of %s for session %s failed (committed state kept): %s",
        signal.rule,
        signal.session_id,
        error,
        extra={"meerkat_rule": signal.rule, "meerkat_session_id": signal.session_id},
    )
