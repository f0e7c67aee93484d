"""Every rule of the operation registry model (entities ``operation`` and ``registry``), and where
the runtime implements it: the :class:`~meerkat_runtime.ops.core.OpsCore` method that decides
it and the :class:`~meerkat_runtime.ops.registry.OpsLifecycleRegistry` method that drives it
(see :class:`~meerkat_runtime.vocab.transitions.RuleBinding`).

Rule names are the model's ``TransitionDecl`` names; a test checks this table covers exactly
the model's declared ops transitions and that every path resolves.
"""

from __future__ import annotations

from meerkat_runtime.vocab.transitions import RuleBinding

_CORE = "ops.core.OpsCore"
_REGISTRY = "ops.registry.OpsLifecycleRegistry"

_SAME_NAME = (
    "register_operation",
    "provisioning_succeeded",
    "provisioning_failed",
    "abort_provisioning",
    "peer_ready",
    "register_watcher",
    "report_progress",
    "complete_operation",
    "fail_operation",
    "cancel_operation",
    "request_retire",
    "mark_retired",
    "terminate_owner",
    "collect_completed",
)

OPS_RULES: tuple[RuleBinding, ...] = (
    *(RuleBinding(rule, f"{_CORE}.{rule}", f"{_REGISTRY}.{rule}") for rule in _SAME_NAME),
    RuleBinding(
        "drop_watcher",
        f"{_CORE}.drop_watcher",
        f"{_REGISTRY}._watch_dropped",
        "when the last reference to a pending watch is dropped; released then or by the next call",
    ),
    RuleBinding("wait_all_immediate", f"{_CORE}.wait_all", f"{_REGISTRY}.wait_all"),
    RuleBinding("wait_all_begin", f"{_CORE}.wait_all", f"{_REGISTRY}.wait_all"),
    RuleBinding(
        "wait_all_cancel",
        f"{_CORE}.wait_all_cancel",
        f"{_REGISTRY}.cancel_wait_all",
        "also when a pending handle is cancelled or dropped",
    ),
    RuleBinding(
        "crash_recover", f"{_CORE}.crash_recover", f"{_REGISTRY}.from_recovered", "via ops.recovery.open_durable_ops"
    ),
)
