"""For every declared transition of the operation registry model, the rule of
``OpsLockstepMachine`` whose steps make it fire (see
:class:`~meerkat_conformance.lockstep.harness_rules.HarnessRule`)."""

from __future__ import annotations

from meerkat_conformance.lockstep.harness_rules import HarnessRule


def _same(stateful_rule: str, *rules: str, note: str = "") -> tuple[HarnessRule, ...]:
    return tuple(HarnessRule(rule, stateful_rule, note) for rule in rules)


OPS_HARNESS_RULES: tuple[HarnessRule, ...] = (
    *_same("register_operation", "register_operation"),
    *_same(
        "operation_call",
        "provisioning_succeeded",
        "peer_ready",
        "register_watcher",
        "report_progress",
        "request_retire",
    ),
    *_same("drop_watcher", "drop_watcher", note="the last reference to a pending watch dropped"),
    *_same(
        "terminal_call",
        "provisioning_failed",
        "abort_provisioning",
        "complete_operation",
        "fail_operation",
        "cancel_operation",
        "mark_retired",
        note="optionally with the store's next write failing",
    ),
    *_same(
        "registry_call", "terminate_owner", "collect_completed", note="optionally with the store's next write failing"
    ),
    *_same("wait_all", "wait_all_immediate", "wait_all_begin"),
    *_same("drop_wait", "wait_all_cancel", note="the handle cancelled, the task awaiting it cancelled, or dropped"),
    *_same(
        "crash",
        "crash_recover",
        note="recovered from the store, optionally with a failing first read; OpsLockstepMachine.detach "
        "fires it too: the registry closed, its waiters released, the next one recovered",
    ),
)
