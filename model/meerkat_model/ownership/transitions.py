"""Declared transitions of the ownership model: the lease (entity ``lease``: Free before the
first claim, Held, Expired) and a worker's hold on the session (entity ``worker``:
Unregistered, Registered, InDoubt) and an operation of a worker's registry (entity
``operation``: Absent, Running, Completed, Failed; durable once terminal). A worker's session
steps fire the session model's own transitions (``meerkat_model.session.transitions``), declared there."""

from __future__ import annotations

from meerkat_model.machine import TransitionDecl
from meerkat_model.session.transitions import SESSION_TRANSITIONS

FREE, HELD, EXPIRED = "Free", "Held", "Expired"
UNREGISTERED, REGISTERED, IN_DOUBT = "Unregistered", "Registered", "InDoubt"
ABSENT, RUNNING, COMPLETED, FAILED = "Absent", "Running", "Completed", "Failed"


def _lease(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "lease", sources, target, guard)


def _op(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "operation", sources, target, guard)


def _worker(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "worker", sources, target, guard)


OWNERSHIP_ONLY: tuple[TransitionDecl, ...] = (
    _lease("claim_register", (FREE, EXPIRED, HELD), HELD, "no lease, expired, or the claimant's own; token + 1"),
    _worker("claim_register", (UNREGISTERED,), REGISTERED, "recovery from the store, written back under the new token"),
    _lease("takeover", (EXPIRED,), HELD, "another worker's lease expired; token + 1"),
    _worker("takeover", (UNREGISTERED,), REGISTERED, "recovery reads what the previous owner committed"),
    _lease("claim_register_refused", (FREE, EXPIRED, HELD), EXPIRED, "recovery refused: the fresh claim is released"),
    _lease("renew", (HELD, EXPIRED), HELD, "the worker's token is still the lease's"),
    _worker("renew_lost", (REGISTERED, IN_DOUBT), UNREGISTERED, "another worker claimed: detach, ownership_lost"),
    _lease("expire", (HELD,), EXPIRED, "time passes beyond the lease's end"),
    _lease("release", (HELD, EXPIRED), EXPIRED, "unregister: the worker's token is the lease's"),
    _worker("release", (REGISTERED, IN_DOUBT), UNREGISTERED, "unregister_session"),
    _worker("release_stale", (REGISTERED, IN_DOUBT), UNREGISTERED, "unregister with a stale token: nothing released"),
    _worker("crash", (REGISTERED, IN_DOUBT), UNREGISTERED, "the process dies; the lease is left to expire"),
    _worker("write_refused", (REGISTERED,), UNREGISTERED, "a write with a stale token: nothing written, detach"),
    _worker("ambiguous_write_landed", (REGISTERED,), IN_DOUBT, "outcome unknown, store unreadable; the store took it"),
    _worker("ambiguous_write_lost", (REGISTERED,), IN_DOUBT, "outcome unknown, store unreadable; the store did not"),
    _worker("reconcile", (IN_DOUBT,), REGISTERED, "memory := recovery of the store, in place"),
    _worker(
        "reconcile_lost",
        (IN_DOUBT,),
        UNREGISTERED,
        "a terminal write in doubt, the lease claimed since: detach, ownership_lost, nothing published",
    ),
    _op("register_operation", (ABSENT,), RUNNING, "memory only; the registry is seeded from the store at the claim"),
    _op("complete_operation", (RUNNING,), COMPLETED, "written with the worker's token and next sequence number"),
    _op("fail_operation", (RUNNING,), FAILED, "written with the worker's token and next sequence number"),
)

GIVE_UPS: dict[str, str] = {
    "crash": "the worker's process dies: its memory and handles are lost (the store keeps the work)",
    "release": "the worker unregisters the session: its handles are told runtime_terminated",
    "release_stale": "the worker unregisters the session (with a stale token): its handles are dropped",
}
"""The worker transitions that give work up (``Machine.give_ups``, with the session model's own
give-ups). Losing the lease to another worker (``renew_lost``, ``write_refused``) is no give-up:
the new owner recovers the work; a write whose outcome is unknown must be reconciled."""

_NOT_OFFERED = (
    "register",
    "register_noop",
    "unregister",
    "attach_failed",
    "reset",
    "recycle",
    "recover",
    "recover_noop",
)
"""Session transitions a worker never takes here (replaced by the ownership steps, or not offered)."""
_NEEDS: dict[str, tuple[str, ...]] = {
    "accepts": ("accept", "start_run", "executor_"),
    "super_keys": ("accept_superseding", "accept_coalescing"),
    "idem_keys": ("deduplicate",),
    "invalid": ("reject_invalid",),
    "failures": ("executor_failed", "boundary_commit_failed", "terminal_snapshot_failed"),
    "interrupt": ("interrupt",),
    "direct": (
        "accept_and_run",
        "executor_succeeded_without_loop",
        "executor_failed_without_loop",
        "executor_failed_exhausted_without_loop",
        "interrupt_without_loop",
    ),
}
"""Session transitions (by name prefix) that need a session bound switched on."""
_AMBIGUOUS = ("ambiguous_write_landed", "ambiguous_write_lost", "reconcile", "reconcile_lost")
"""The worker transitions of writes whose outcome is unknown (only with the ``ambiguous`` bound)."""
_OPS_READBACK = ("reconcile_lost",)
"""Settling an operation's terminal write in doubt under a lost lease (``ops`` and ``readback``)."""


def ownership_transitions(enabled: frozenset[str]) -> tuple[TransitionDecl, ...]:
    """The declared transitions under bounds whose switched-on session keys are ``enabled``
    (with ``ops`` when the registry has operation ids, ``accepts`` when workers accept inputs,
    ``ambiguous`` when a write's outcome may be unknown):
    the ownership steps, and the session
    transitions a worker can take."""
    excluded = [*_NOT_OFFERED]
    for key, names in _NEEDS.items():
        if key not in enabled:
            excluded += names
    session = tuple(
        t for t in SESSION_TRANSITIONS if t.name not in _NOT_OFFERED and not t.name.startswith(tuple(excluded))
    )
    own = tuple(
        t
        for t in OWNERSHIP_ONLY
        if ("ops" in enabled or t.entity != "operation")
        and ("ambiguous" in enabled or t.name not in _AMBIGUOUS)
        and (("ops" in enabled and "readback" in enabled) or t.name not in _OPS_READBACK)
    )
    return (*own, *session)
