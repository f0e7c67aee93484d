"""Declared transitions of the input lifecycle (entity ``input``), runtime control (entity
``runtime``) and registration (entity ``registration``).

A step names one transition (``Stepped.transition``). A transition that moves several entities
has one declaration per entity it moves, all under the same name: ``start_run`` moves an input
Queued -> Staged *and* the runtime Attached/Retired -> Running; ``accept_superseding`` moves the
new input Absent -> Queued *and* the older input Queued -> Superseded. For every entity instance a
step moves, its status before is in ``sources`` of one declaration of that name and entity, and
its status after is that declaration's ``target`` (``None``: unchanged). Entities a step does not
move are not declared for it. An input id not accepted yet is ``Absent``; a session not in memory
is ``Unregistered``; names ending in ``_retired`` are the same run outcome for a run that ends
with the runtime Retired (it was retired in flight, or drained after retire), names ending in
``_without_loop`` for a run ``accept_input_and_run`` started that ends with no loop attached
(the runtime back to Idle).
"""

from __future__ import annotations

from meerkat_model.machine import TransitionDecl

ABSENT = "Absent"
QUEUED, STAGED = "Queued", "Staged"
CONSUMED, SUPERSEDED, COALESCED, ABANDONED = "Consumed", "Superseded", "Coalesced", "Abandoned"

IDLE, ATTACHED, RUNNING, RETIRED = "Idle", "Attached", "Running", "Retired"
STOPPED, DESTROYED = "Stopped", "Destroyed"

UNREGISTERED, QUEUING, ATTACHING, ACTIVE = "Unregistered", "Queuing", "Attaching", "Active"
REGISTERED = (QUEUING, ATTACHING, ACTIVE)

_INPUT_TERMINALS = (CONSUMED, SUPERSEDED, COALESCED, ABANDONED)


def _input(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "input", sources, target, guard, target in _INPUT_TERMINALS)


def _runtime(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "runtime", sources, target, guard, target == DESTROYED)


def _registration(name: str, sources: tuple[str, ...], target: str | None, guard: str = "") -> TransitionDecl:
    return TransitionDecl(name, "registration", sources, target, guard)


def _run_end(base: str, input_target: str, guard: str, *, direct: bool = True) -> tuple[TransitionDecl, ...]:
    """``base`` (back to Attached), ``base_retired`` and, with ``direct``, ``base_without_loop``."""
    out = (
        _input(base, (STAGED,), input_target, guard),
        _runtime(base, (RUNNING,), ATTACHED, "pre-run phase Attached, or Idle with a loop attached since"),
        _input(f"{base}_retired", (STAGED,), input_target, guard),
        _runtime(f"{base}_retired", (RUNNING, RETIRED), RETIRED, "pre-run phase Retired, or retired in flight"),
    )
    if not direct:
        return out
    return (
        *out,
        _input(f"{base}_without_loop", (STAGED,), input_target, guard),
        _runtime(f"{base}_without_loop", (RUNNING,), IDLE, "accept_input_and_run's run; no loop attached"),
    )


INPUT_AND_RUN: tuple[TransitionDecl, ...] = (
    _input("accept", (ABSENT,), QUEUED, "Idle/Attached/Running; key unused; durable write first"),
    _input("accept_superseding", (ABSENT,), QUEUED, "a Queued input has the same supersession key"),
    _input("accept_superseding", (QUEUED,), SUPERSEDED, "the older input with the same supersession key"),
    _input("accept_coalescing", (ABSENT,), QUEUED, "asks to coalesce; a Queued input has the same key"),
    _input("accept_coalescing", (QUEUED,), COALESCED, "the older input with the same supersession key"),
    _runtime("accept", (IDLE, ATTACHED, RUNNING), None, "takes input"),
    _input("deduplicate", (ABSENT,), None, "idempotency key already used by an input in memory; nothing stored"),
    _runtime("deduplicate", (IDLE, ATTACHED, RUNNING), None, "takes input"),
    _input("reject_invalid", (ABSENT,), None, "invalid input: outcome Rejected, nothing stored"),
    _runtime("reject_invalid", (IDLE, ATTACHED, RUNNING), None, "takes input"),
    _input("accept_and_run", (ABSENT,), STAGED, "accept_input_and_run: written Queued, then staged; attempts 1"),
    _runtime("accept_and_run", (IDLE,), RUNNING, "no loop, no run, nothing queued; pre-run phase Idle"),
    _input("start_run", (QUEUED,), STAGED, "loop attached; steer lane head first; attempts + 1"),
    _runtime("start_run", (ATTACHED, RETIRED), RUNNING, "loop attached; no run; something queued"),
    *_run_end("executor_succeeded", CONSUMED, "boundary commit (receipt + rows) written"),
    *_run_end("executor_failed", QUEUED, "fewer than 3 attempts: back of its lane"),
    *_run_end("executor_failed_exhausted", ABANDONED, "last attempt or a fatal error: max_attempts_exhausted"),
    *_run_end("interrupt", ABANDONED, "cancelled; lifecycle commit written"),
    _input("boundary_commit_failed", (STAGED,), QUEUED, "nothing written: head of its lane, attempt not counted"),
    _runtime("boundary_commit_failed", (RUNNING,), IDLE, "pre-run phase Attached; loop detached"),
    _registration("boundary_commit_failed", REGISTERED, QUEUING, "a loop is detached, its executor told to stop"),
    _input("boundary_commit_failed_retired", (STAGED,), QUEUED, "nothing written: head of its lane"),
    _runtime("boundary_commit_failed_retired", (RUNNING, RETIRED), RETIRED, "stays Retired; loop detached"),
    _registration("boundary_commit_failed_retired", REGISTERED, QUEUING, "a loop is detached, its executor stopped"),
    _registration("terminal_snapshot_failed", REGISTERED, UNREGISTERED, "lifecycle commit after a failure failed"),
    _runtime("interrupt_noop", (IDLE, ATTACHED, RETIRED, STOPPED, DESTROYED), None, "no run in flight"),
)

CONTROL: tuple[TransitionDecl, ...] = (
    _runtime("retire", (ATTACHED, RUNNING), RETIRED, "loop attached: queued work keeps draining"),
    _runtime("retire_without_loop", (IDLE, RUNNING), RETIRED, "no loop: queued inputs abandoned; a run goes on"),
    _input("retire_without_loop", (QUEUED,), ABANDONED, "reason retired; waiter runtime_terminated"),
    _runtime("retire_noop", (RETIRED,), None, "already Retired"),
    _runtime("reset", (IDLE, RETIRED), IDLE, "no run in flight; no loop"),
    _input("reset", (QUEUED,), ABANDONED, "reason reset"),
    _runtime("reset_with_loop", (ATTACHED, RETIRED), ATTACHED, "no run in flight; loop attached"),
    _input("reset_with_loop", (QUEUED,), ABANDONED, "reason reset"),
    _runtime("recycle", (IDLE, RETIRED), IDLE, "no run in flight; no loop; queued work kept"),
    _runtime("recycle_with_loop", (ATTACHED, RETIRED), ATTACHED, "no run in flight; queued work kept"),
    _runtime("stop", (IDLE, RUNNING, RETIRED), STOPPED, "no loop; a run accept_input_and_run started is cancelled"),
    _input("stop", (QUEUED, STAGED), ABANDONED, "reason stopped"),
    _runtime("stop_with_loop", (ATTACHED, RUNNING, RETIRED), STOPPED, "loop detached, executor stopped"),
    _input("stop_with_loop", (QUEUED, STAGED), ABANDONED, "reason stopped"),
    _registration("stop_with_loop", (ACTIVE,), QUEUING, "loop detached"),
    _runtime("destroy", (IDLE, RUNNING, RETIRED, STOPPED), DESTROYED, "no loop; a run without one is cancelled"),
    _input("destroy", (QUEUED, STAGED), ABANDONED, "reason destroyed"),
    _runtime("destroy_with_loop", (ATTACHED, RUNNING, RETIRED, STOPPED), DESTROYED, "loop detached"),
    _input("destroy_with_loop", (QUEUED, STAGED), ABANDONED, "reason destroyed"),
    _registration("destroy_with_loop", (ACTIVE,), QUEUING, "loop detached"),
    _runtime("recover", (RETIRED,), None, "stored rows normalised and written back (a retire left a Staged row)"),
    _runtime("recover_noop", (IDLE, ATTACHED, RETIRED, STOPPED), None, "no run; memory is what the store recovers to"),
)

REGISTRATION: tuple[TransitionDecl, ...] = (
    _registration("register", (UNREGISTERED,), QUEUING, "recovered from the store; Destroyed is rejected"),
    _registration("register_noop", REGISTERED, None, "already registered"),
    _registration("begin_attach", (QUEUING,), ATTACHING, "not Stopped/Destroyed; claims the attachment"),
    _registration("begin_attach_noop", (ATTACHING, ACTIVE), None, "another caller attaches or attached"),
    _registration("finish_attach", (ATTACHING,), ACTIVE, "loop published"),
    _runtime("finish_attach", (IDLE,), ATTACHED, "loop published"),
    _registration("finish_attach_keep_phase", (ATTACHING,), ACTIVE, "phase is not Idle"),
    _registration("attach_failed", (ATTACHING,), QUEUING, "claim released"),
    _registration("unregister", REGISTERED, UNREGISTERED, "waiters runtime_terminated; store kept"),
    _registration("crash", REGISTERED, UNREGISTERED, "memory and handles lost; store kept"),
)

SESSION_TRANSITIONS: tuple[TransitionDecl, ...] = INPUT_AND_RUN + CONTROL + REGISTRATION

_EXHAUSTED = "the input is abandoned after its last attempt (or a fatal error): its work is dropped"
_INTERRUPT = "the caller cancels the run: its input is abandoned"
_STOP = "stop abandons the queued and staged inputs and ends the runtime for good"
_DESTROY = "destroy abandons the queued and staged inputs and ends the runtime for good"
_RESET = "reset abandons the queued inputs"
SESSION_GIVE_UPS: dict[str, str] = {
    "executor_failed_exhausted": _EXHAUSTED,
    "executor_failed_exhausted_retired": _EXHAUSTED,
    "executor_failed_exhausted_without_loop": _EXHAUSTED,
    "interrupt": _INTERRUPT,
    "interrupt_retired": _INTERRUPT,
    "interrupt_without_loop": _INTERRUPT,
    "terminal_snapshot_failed": "the session is unregistered after a lifecycle commit failed: its handles are dropped",
    "retire_without_loop": "retiring with no loop abandons the queued inputs",
    "reset": _RESET,
    "reset_with_loop": _RESET,
    "stop": _STOP,
    "stop_with_loop": _STOP,
    "destroy": _DESTROY,
    "destroy_with_loop": _DESTROY,
    "unregister": "the session leaves memory: its handles are told runtime_terminated",
    "crash": "the process dies: memory and handles are lost (the store keeps the work)",
}
"""The session transitions that discharge obligations by giving work up, each with its reason
(``Machine.give_ups``). A failed boundary commit, a failed executor attempt with attempts left
and a failed attach are failures the session recovers from: they are not give-ups."""


_NAMES: dict[tuple[type, object], str] = {}


def status_name(value: object) -> str:
    """The declared name of a phase value (``RuntimePhase.IDLE`` -> ``Idle``,
    ``InputPhase.APPLIED_PENDING_CONSUMPTION`` -> ``AppliedPendingConsumption``); a value that is
    not a phase is shown raw in angle brackets."""
    key = (type(value), value)
    name = _NAMES.get(key)
    if name is None:
        raw = getattr(value, "name", None)
        name = "".join(p.capitalize() for p in raw.split("_")) if isinstance(raw, str) else f"<{value!r}>"
        _NAMES[key] = name
    return name
