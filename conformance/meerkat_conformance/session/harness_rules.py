"""For every declared transition of the session model, the rule of ``SessionLockstepMachine``
whose steps make it fire (see :class:`~meerkat_conformance.lockstep.harness_rules.HarnessRule`)."""

from __future__ import annotations

from meerkat_conformance.lockstep.harness_rules import HarnessRule

_EXECUTOR = "executor_finishes"
_FAILS = "executor_fails"


def _same(stateful_rule: str, *rules: str, note: str = "") -> tuple[HarnessRule, ...]:
    return tuple(HarnessRule(rule, stateful_rule, note) for rule in rules)


SESSION_HARNESS_RULES: tuple[HarnessRule, ...] = (
    *_same("accept", "accept", "accept_superseding", "accept_coalescing"),
    *_same("resubmit", "deduplicate"),
    *_same("accept_invalid", "reject_invalid"),
    *_same("accept_and_run", "accept_and_run", note="accept_input_and_run: the caller drives the run"),
    HarnessRule(
        "start_run",
        None,
        "the runtime's loop starts runs on its own, after accept, attach or recycle; "
        "the adapter reports each one and the model must allow it",
    ),
    *_same(_EXECUTOR, "executor_succeeded", "executor_succeeded_retired", "executor_succeeded_without_loop"),
    *_same(
        _FAILS,
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_without_loop",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
    ),
    *_same(
        _FAILS,
        "boundary_commit_failed",
        "boundary_commit_failed_retired",
        note="the executor succeeds; atomic_apply fails, or finds the run's receipt already stored",
    ),
    *_same(_FAILS, "terminal_snapshot_failed", note="the executor fails; the lifecycle commit fails"),
    *_same(
        "interrupt",
        "interrupt",
        "interrupt_retired",
        "interrupt_without_loop",
        "interrupt_noop",
        note="the executor may ignore CancelCurrentRun; it may also cancel the run itself (executor_finishes)",
    ),
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
    *_same(
        "recover",
        "recover",
        "recover_noop",
        note="a store row a run's failed boundary commit left staged is normalised and written back",
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
    *_same("attach", "attach_failed", note="the executor's start() raises: nothing is attached"),
    *_same("unregister", "unregister"),
    *_same(
        "crash",
        "crash",
        note="the process dies, or a new process takes over while the old one tries to write; "
        "a later register recovers",
    ),
)
