"""For every declared transition of the session model, the rule of ``SessionLockstepMachine``
whose steps make it fire (see :class:`~meerkat_conformance.lockstep.harness_rules.HarnessRule`)."""

from __future__ import annotations

from meerkat_conformance.lockstep.harness_rules import HarnessRule

_EXECUTOR = "executor_finishes"


def _same(stateful_rule: str, *rules: str, note: str = "") -> tuple[HarnessRule, ...]:
    return tuple(HarnessRule(rule, stateful_rule, note) for rule in rules)


SESSION_HARNESS_RULES: tuple[HarnessRule, ...] = (
    *_same("accept", "accept", "accept_superseding", "accept_coalescing"),
    *_same("resubmit", "deduplicate"),
    *_same("accept_invalid", "reject_invalid"),
    HarnessRule(
        "start_run",
        None,
        "the runtime's loop starts runs on its own, after accept, attach or recycle; "
        "the adapter reports each one and the model must allow it",
    ),
    *_same(
        _EXECUTOR,
        "executor_succeeded",
        "executor_succeeded_retired",
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
    ),
    *_same(
        _EXECUTOR,
        "boundary_commit_failed",
        "boundary_commit_failed_retired",
        note="the executor succeeds; atomic_apply fails",
    ),
    *_same(_EXECUTOR, "terminal_snapshot_failed", note="the executor fails; the lifecycle commit fails"),
    *_same("interrupt", "interrupt", "interrupt_retired", "interrupt_noop"),
    *_same(
        "control",
        "retire",
        "retire_without_loop",
        "retire_noop",
        "reset",
        "reset_with_loop",
        "recycle",
        "recycle_with_loop",
        "stop",
        "stop_with_loop",
        "destroy",
        "destroy_with_loop",
    ),
    *_same("register", "register", "register_noop"),
    *_same(
        "attach",
        "begin_attach",
        "begin_attach_noop",
        "finish_attach",
        "finish_attach_keep_phase",
        note="ensure_session_with_executor claims and publishes the loop in one call",
    ),
    HarnessRule(
        "attach_failed", None, "starting the loop task cannot fail in the runtime short of an interpreter error"
    ),
    *_same("unregister", "unregister"),
    *_same("crash", "crash", note="the process dies; a later register recovers"),
)
