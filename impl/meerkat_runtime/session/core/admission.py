"""Admission rules: ``accept``, ``accept_superseding``, ``accept_coalescing``, ``deduplicate``,
``reject_invalid`` (docs/semantics.md, "Accept"; the model's ``session/admission.py``).

Check order: phase Destroyed (``RuntimeDestroyed``); a phase that takes no input
(``NotReady``); invalid input (``Rejected``, nothing stored); idempotency key already used by
any input of the session (``Deduplicated``, nothing stored); otherwise a plan that queues the
input at the back of its lane and supersedes (or coalesces into it) the first Queued input of
the same kind with the same supersession key, queue lane first. The plan writes the new row
(and the replaced one) before the accept is acknowledged (:class:`RowsWrite`).
"""

from __future__ import annotations

from meerkat_runtime.session.completion import Abandoned as AbandonedOutcome
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.core.plan import Plan, RowsWrite
from meerkat_runtime.session.core.state import CoreState
from meerkat_runtime.session.core.terminal import completion_of
from meerkat_runtime.session.inputs import HandlingMode, Input, wants_coalesce
from meerkat_runtime.session.outcomes import Deduplicated, Rejected
from meerkat_runtime.session.validation import rejection_reason
from meerkat_runtime.vocab.errors import NotReady, RuntimeDestroyed
from meerkat_runtime.vocab.inputs import Coalesced, InputLifecycleState, Superseded
from meerkat_runtime.vocab.runtime import RegistrationPhase, RuntimeState

S = InputLifecycleState
# Members bound once: in Python 3.11 each lookup of a member on its enum class goes through
# ``EnumType.__getattr__``'s hook (about 1,100 instructions), and an accept makes several.
_ACCEPTED, _QUEUED = S.ACCEPTED, S.QUEUED
_DESTROYED = RuntimeState.DESTROYED
_STEER_MODE = HandlingMode.STEER
_QUEUE_LANE, _STEER_LANE = Lane.QUEUE, Lane.STEER


class AdmissionRules(CoreState):
    """The admission rules of :class:`~meerkat_runtime.session.core.session_core.SessionCore`."""

    def check_accepting(self) -> None:
        """Raise ``RuntimeDestroyed`` / ``NotReady`` when the phase takes no input."""
        if self.phase is _DESTROYED:
            raise RuntimeDestroyed(self.runtime_id)
        if not self.phase.accepts_input:
            raise NotReady(self.phase.value)

    def check_direct_run(self) -> None:
        """Raise ``RuntimeDestroyed`` / ``NotReady`` unless an input may be accepted and run at
        once (``accept_input_and_run``): Idle, no run loop attached, no run in flight, nothing
        queued. ``NotReady`` names everything that stands in the way."""
        self.check_accepting()
        reasons: list[str] = []
        if self.registration is RegistrationPhase.ATTACHING:
            reasons.append("a run loop is being attached (an executor start() is pending)")
        if self.loop_attached:
            reasons.append("a run loop is attached (it runs the session's inputs)")
        if self.current_run is not None:
            reasons.append(f"run {self.current_run.run_id} is in flight")
        if self.phase is not RuntimeState.IDLE and not reasons:
            reasons.append(f"it is {self.phase.value}")
        queued = len(self.ledger.queue) + len(self.ledger.steer)
        if queued:
            reasons.append(f"{queued} queued input{'s' if queued > 1 else ''} would run first")
        if reasons:
            raise NotReady(self.phase.value, "; ".join(reasons))

    def accept(self, item: Input, now: float) -> Plan | Deduplicated | Rejected:
        """Decide admission of ``item``: ``Rejected`` (``reject_invalid``), ``Deduplicated``
        (``deduplicate``) or the plan of ``accept`` / ``accept_superseding`` /
        ``accept_coalescing``. Raises ``RuntimeDestroyed`` / ``NotReady``."""
        self.check_accepting()
        reason = rejection_reason(item)
        if reason is not None:
            return Rejected(reason)
        header = item.header
        ledger = self.ledger
        if header.idempotency_key is not None:
            existing = ledger.keys.get(header.idempotency_key)
            if existing is not None:
                # A finished input that is not resident: its stored outcome is read by the caller.
                found = ledger.records.get(existing)
                return Deduplicated(header.id, existing, completion_of(found) if found is not None else None)
        if ledger.knows(header.id):
            return Rejected(f"input id {header.id!r} is already known to this session")
        plan = self.draft("accept", RowsWrite())
        lane = _STEER_LANE if item.handling_mode is _STEER_MODE else _QUEUE_LANE
        record = InputRecord(
            input=item,
            phase=_QUEUED,
            lane=lane,
            admission_seq=plan.take_admission_seq(),
            created_at=now,
            updated_at=now,
        )
        record.history.append(HistoryEntry(None, _ACCEPTED, "accepted", now))
        record.history.append(HistoryEntry(_ACCEPTED, _QUEUED, "queued", now))
        plan.put(record)
        plan.append_to_lane(record)
        if header.idempotency_key is not None:
            plan.keys[header.idempotency_key] = header.id
        candidate = self._supersession_candidate(item)
        if candidate is not None:
            displaced = plan.put(candidate.copy())
            plan.remove_from_lane(candidate)
            if wants_coalesce(item):
                plan.rule = "accept_coalescing"
                displaced.terminal = Coalesced(header.id)
                displaced.move(S.COALESCED, f"coalesced into {header.id}", now)
            else:
                plan.rule = "accept_superseding"
                displaced.terminal = Superseded(header.id)
                displaced.move(S.SUPERSEDED, f"superseded by {header.id}", now)
            displaced.outcome = AbandonedOutcome(displaced.phase.value)
            plan.resolve(displaced.input_id, displaced.outcome)
        return plan

    def _supersession_candidate(self, item: Input) -> InputRecord | None:
        key = item.header.supersession_key
        if key is None:
            return None
        for lane in (self.ledger.queue, self.ledger.steer):
            for input_id in lane:
                record = self.ledger.records[input_id]
                if record.input.kind == item.kind and record.input.header.supersession_key == key:
                    return record
        return None
