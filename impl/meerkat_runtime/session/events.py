"""Building a session's lifecycle events (``machine == "session"``) from the plans it commits.

:func:`before` snapshots what an event needs from the core just before a plan is applied
(only when someone subscribes); :func:`emit_plan` publishes the plan's event once it took
effect (:func:`meerkat_runtime.session.commit.install`, after the waiters resolved).
:func:`emit_step` publishes a transition that has no plan (``deduplicate``, ``reject_invalid``,
``register_noop``, ``begin_attach_noop``, ``unregister``, ``terminal_snapshot_failed``,
``reconcile``). Rule names are the plan's (the model's names); statuses are spelled as the
model spells them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meerkat_runtime.events.event import ABSENT, UNREGISTERED, Change, LifecycleEvent, spell
from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.packed_record import PackedRecord
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import Durability

if TYPE_CHECKING:
    from meerkat_runtime.session.runtime_session import RuntimeSession

_ACCEPTS = frozenset({"accept", "accept_superseding", "accept_coalescing"})
_RUN_ENDS = frozenset(
    {
        "executor_succeeded",
        "executor_succeeded_retired",
        "executor_succeeded_without_loop",
        "executor_failed",
        "executor_failed_retired",
        "executor_failed_without_loop",
        "executor_failed_exhausted",
        "executor_failed_exhausted_retired",
        "executor_failed_exhausted_without_loop",
        "interrupt",
        "interrupt_retired",
        "interrupt_without_loop",
        "boundary_commit_failed",
        "boundary_commit_failed_retired",
    }
)


@dataclass(frozen=True, slots=True)
class Before:
    """The core as it was just before a plan: phase, registration, run, and the phase of
    every input the plan changes (``None``: not in the ledger yet)."""

    phase: str
    registration: str
    run_id: str | None
    inputs: dict[InputId, str | None]


def before(session: RuntimeSession, plan: Plan, *, always: bool = False) -> Before | None:
    """What :func:`emit_plan` needs from the core before ``plan`` applies; ``None`` when
    nobody subscribes (then nothing is built) unless ``always``."""
    bus = session.events
    if not always and (bus is None or not bus.active):
        return None
    core = session.core
    records = core.ledger.records
    inputs: dict[InputId, str | None] = {}
    for input_id in plan.records:
        old = records.get(input_id)
        inputs[input_id] = None if old is None else old.phase.value
    run = core.current_run
    return Before(core.phase.value, core.registration.value, None if run is None else run.run_id, inputs)


@dataclass(frozen=True, slots=True)
class View:
    """A transition as an event (or a composition signal) shows it."""

    rule: str
    before: str
    after: str
    changes: tuple[Change, ...]
    run_id: str | None
    details: dict[str, Any]


def describe(session: RuntimeSession, plan: Plan, prior: Before) -> View:
    """The event view of ``plan`` (applied), given the core ``prior`` to it."""
    rule = plan.rule
    changes: list[Change] = []
    phase_before = spell(prior.phase)
    phase_after = spell(plan.phase.value)
    if rule == "register":
        phase_before = UNREGISTERED
        changes.append(Change("registration", session.runtime_id, UNREGISTERED, spell(plan.registration.value)))
    elif prior.registration != plan.registration.value:
        changes.append(
            Change("registration", session.runtime_id, spell(prior.registration), spell(plan.registration.value))
        )
    if phase_before != phase_after:
        changes.append(Change("runtime", session.runtime_id, phase_before, phase_after))
    for input_id, record in plan.records.items():
        old = None if rule == "accept_and_run" else prior.inputs.get(input_id)  # its accept is folded in
        old_spelled = ABSENT if old is None else spell(old)
        new_spelled = spell(record.phase.value)
        if old_spelled != new_spelled:
            changes.append(Change("input", input_id, old_spelled, new_spelled))
    run = plan.current_run
    run_id = run.run_id if run is not None else prior.run_id
    return View(rule, phase_before, phase_after, tuple(changes), run_id, _details(session, plan, rule))


def emit_plan(session: RuntimeSession, plan: Plan, prior: Before | None, *, adopted: bool = False) -> None:
    """Publish the event of ``plan`` (applied), given the core ``prior`` to it. ``adopted``: the
    plan's write was found in the store when an in-doubt session reconciled."""
    if prior is None or session.events is None:
        return
    view = describe(session, plan, prior)
    if adopted:
        view.details["adopted"] = True
    emit_view(session, view)


def emit_view(session: RuntimeSession, view: View) -> None:
    bus = session.events
    if bus is None or not bus.active:
        return
    _emit(session, view.rule, view.before, view.after, view.changes, view.run_id, view.details)


def emit_step(
    session: RuntimeSession,
    rule: str,
    *,
    before: str | None = None,
    after: str | None = None,
    changes: tuple[Change, ...] = (),
    run_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Publish a transition without a plan; ``before``/``after`` default to the current phase."""
    bus = session.events
    if bus is None or not bus.active:
        return
    phase = spell(session.core.phase.value)
    _emit(session, rule, before or phase, after or phase, changes, run_id, dict(details or {}))


def _emit(
    session: RuntimeSession,
    rule: str,
    phase_before: str,
    phase_after: str,
    changes: tuple[Change, ...],
    run_id: str | None,
    details: dict[str, Any],
) -> None:
    bus = session.events
    if bus is None:
        return
    fence = session.claim.fence
    token = None if fence is None else fence.token

    def make(seq: int, now: float) -> LifecycleEvent:
        return LifecycleEvent(
            seq=seq,
            time=now,
            machine="session",
            rule=rule,
            session_id=str(session.session_id),
            runtime_id=session.runtime_id,
            source=bus.source,
            fence=token,
            before=phase_before,
            after=phase_after,
            changes=changes,
            run_id=run_id,
            details=details,
            store=bus.store,
        )

    bus.emit(session.runtime_id, make)


def _unread(record: Any) -> bool:
    """Whether ``record`` is a queued input recovered without reading its row, not read since."""
    return isinstance(record, PackedRecord) and record.packed is not None


def accept_details(record: Any) -> dict[str, Any]:
    """An accepted (or deduplicated) input's attributes the model's ``accept`` takes.

    Building an event never reads a stored row: of a queued input recovered without reading
    its row (:class:`~meerkat_runtime.session.packed_record.PackedRecord`, not read since) only
    what recovery read beside the row is given (``input``, ``lane``, ``idempotency_key``,
    ``ephemeral``: such an input is never ephemeral); ``kind`` and ``supersession_key`` are
    absent. A damaged row is the run loop's to report, never an error after a commit."""
    if _unread(record):
        return {
            "input": record.input_id,
            "lane": record.lane.value,
            "idempotency_key": record.packed_key,
            "ephemeral": False,
        }
    item = record if not isinstance(record, InputRecord) else record.input
    header = item.header
    lane = getattr(record, "lane", None)
    mode = getattr(getattr(item, "handling_mode", None), "value", None)
    return {
        "input": header.id,
        "kind": type(item).__name__,
        "lane": lane.value if lane is not None else ("steer" if mode == "steer" else "queue"),
        "idempotency_key": header.idempotency_key,
        "supersession_key": header.supersession_key,
        "ephemeral": header.durability is Durability.EPHEMERAL,
    }


def _details(session: RuntimeSession, plan: Plan, rule: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    core = session.core
    if rule in _ACCEPTS:
        for record in plan.records.values():
            if record.phase.value == "queued":
                details.update(accept_details(record))
                if not _unread(record) and getattr(record.input, "coalesce", False):
                    details["coalesce"] = True
    elif rule in ("start_run", "accept_and_run"):
        run = plan.current_run
        if run is not None and rule == "accept_and_run":
            details.update(accept_details(plan.records[run.input_ids[0]]))
        if run is not None:
            details["input"] = run.input_ids[0] if len(run.input_ids) == 1 else list(run.input_ids)
            details["attempt"] = plan.records[run.input_ids[0]].attempts
    elif rule in _RUN_ENDS:
        records = list(plan.records.values())
        if records:
            details["input"] = records[0].input_id
            details["attempts"] = records[0].attempts
            failure = records[0].last_error
            if failure is not None and rule.startswith("executor_failed"):
                details["error"] = {"type": failure.error_type, "message": failure.message}
                details["retryable"] = plan.retryable
            outcome = records[0].outcome
            if outcome is not None:
                details["outcome"] = outcome.kind
                if rule.startswith("executor_succeeded"):
                    details["with_result"] = outcome.kind == "completed"
        details["max_attempts"] = core.max_attempts
        if rule.startswith("boundary_commit_failed") and session.in_doubt is not None:
            details["outcome_unknown"] = True  # the commit may have landed: the store may hold the run's end
    elif rule == "register":
        active = [r for r in core.ledger.records.values() if not r.phase.is_terminal]
        details["active"] = {r.input_id: spell(r.phase.value) for r in active}
        details["attrs"] = {r.input_id: accept_details(r) for r in active}
        details["max_attempts"] = core.max_attempts
    return details
