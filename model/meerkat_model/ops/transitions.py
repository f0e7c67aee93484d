"""Declared transitions of the operation lifecycle (entity ``operation``) and of the registry
(entity ``registry``), exactly as the table of docs/semantics.md."""

from __future__ import annotations

from meerkat_model.machine import TransitionDecl

ABSENT = "Absent"
PROV, RUN, RETI = "Provisioning", "Running", "Retiring"
ACTIVE = (PROV, RUN, RETI)
LIVE = (RUN, RETI)
TERMINALS = ("Completed", "Failed", "Aborted", "Cancelled", "Retired", "Terminated")
IDLE, WAITING = "Idle", "Waiting"


def _op(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "operation", sources, target, guard, target in TERMINALS)


OPERATION_TRANSITIONS: tuple[TransitionDecl, ...] = (
    _op("register_operation", (ABSENT,), PROV, "id not tracked; active < max_concurrent"),
    _op("provisioning_succeeded", (PROV,), RUN),
    _op("provisioning_failed", ACTIVE, "Failed"),
    _op("abort_provisioning", (PROV,), "Aborted"),
    _op("peer_ready", LIVE, None, "kind MobMemberChild; not yet peer ready"),
    _op("register_watcher", (*ACTIVE, *TERMINALS), None, "terminal: resolves at once"),
    _op("drop_watcher", ACTIVE, None, "a pending watcher's watch dropped: one fewer pending"),
    _op("report_progress", LIVE, None),
    _op("complete_operation", LIVE, "Completed"),
    _op("fail_operation", ACTIVE, "Failed"),
    _op("cancel_operation", ACTIVE, "Cancelled"),
    _op("request_retire", (RUN,), RETI),
    _op("mark_retired", LIVE, "Retired"),
    _op("terminate_owner", ACTIVE, "Terminated", "every active op, in registration order"),
)

REGISTRY_TRANSITIONS: tuple[TransitionDecl, ...] = (
    TransitionDecl("collect_completed", "registry", (IDLE, WAITING), None, "barrier members kept"),
    TransitionDecl("wait_all_immediate", "registry", (IDLE,), IDLE, "every member terminal"),
    TransitionDecl("wait_all_begin", "registry", (IDLE,), WAITING, "some member not terminal"),
    TransitionDecl("wait_all_cancel", "registry", (IDLE, WAITING), IDLE, "pending wait dropped (none: no-op)"),
    TransitionDecl("crash_recover", "registry", (IDLE, WAITING), IDLE, "rebuilt from the last durable write"),
)

ALL_TRANSITIONS: tuple[TransitionDecl, ...] = OPERATION_TRANSITIONS + REGISTRY_TRANSITIONS

GIVE_UPS: dict[str, str] = {
    "cancel_operation": "the caller cancels the operation instead of letting it finish",
    "abort_provisioning": "the caller aborts the operation while it is provisioned",
    "terminate_owner": "the owner ends, terminating every active operation unfinished",
    "wait_all_cancel": "the caller drops its pending wait_all",
    "crash_recover": "the process dies: active operations and watchers are lost",
}
"""Registry transitions that discharge obligations by giving work up (``Machine.give_ups``). An
operation's own outcome, a failure included (``provisioning_failed``, ``fail_operation``), is how
it finishes, not a give-up."""

SIDE_EFFECTS: tuple[TransitionDecl, ...] = (
    TransitionDecl("*", "operation", TERMINALS, ABSENT, "record forgotten (retention, collection, recovery)"),
    TransitionDecl("crash_recover", "operation", ACTIVE, ABSENT, "non-terminal operations die with the process"),
    TransitionDecl("*", "registry", (WAITING,), IDLE, "a terminal step satisfies the barrier"),
)
"""Moves a step may make besides its declared ones (checked by the verifier, not transitions)."""

STATUS_NAMES: dict[int, str] = {0: ABSENT, 1: PROV, 2: RUN, 3: RETI} | dict(enumerate(TERMINALS, start=4))
"""Declared status name of each status code (0: not tracked)."""
