"""Crash recovery: rebuild a session's memory from what the store holds.

Rules (docs/semantics.md, "Crash recovery"):

- lifecycle record: none -> Idle; Destroyed -> registration rejected (``destroyed``);
- ephemeral rows are dropped;
- Accepted and Queued rows come back Queued; a Staged row comes back Queued with the attempt of
  the interrupted run not counted (staging is never written, so a crash does not consume the
  retry budget; this also keeps ``attempts <= 3`` for every queued input);
- Applied / AppliedPendingConsumption rows become Consumed when the boundary receipt of their
  last run is stored, else Queued (replayed: delivery is at-least-once; like a Staged row, the
  run that never committed is not counted as an attempt);
- terminal rows stay terminal and keep their idempotency keys;
- rows that contradict each other fail with ``recovery_corruption`` naming the row: an active row
  under a Stopped/Destroyed record, an Abandoned row without a reason, a MaxAttemptsExhausted row
  with fewer than 3 attempts, an active row with more than 3 attempts, a Queued row missing from
  its lane's admission order;
- recovered lanes keep the stored admission order.

Recovery writes the normalised rows and the lifecycle record back in one commit.

A live session recovering in place (``recover``, docs/semantics.md "Control") passes its
memory's rows as ``live``: an ephemeral input it still holds is kept (the session is still
running, so it is still wanted); a stored ephemeral row it does not hold (left by an earlier
process) stays dropped.
"""

from __future__ import annotations

from meerkat_model.machine import Rejected
from meerkat_model.session.state import (
    NO_ID,
    NO_RECORD,
    Attrs,
    Durable,
    Lane,
    Memory,
    Row,
)
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import (
    MAX_STAGE_ATTEMPTS,
    AbandonKind,
    InputPhase,
    RegistrationPhase,
    RuntimePhase,
)

_REQUEUED = (InputPhase.ACCEPTED, InputPhase.QUEUED, InputPhase.STAGED)
_APPLIED = (InputPhase.APPLIED, InputPhase.APPLIED_PENDING_CONSUMPTION)


def normalise_row(row: Row, receipt: bool) -> Row:
    """The recovered form of one stored (non-ephemeral, well-formed) row."""
    if row.phase in _REQUEUED:
        attempts = row.attempts - 1 if row.phase is InputPhase.STAGED else row.attempts
        return Row(InputPhase.QUEUED, max(attempts, 0))
    if row.phase in _APPLIED:
        if receipt:
            return Row(InputPhase.CONSUMED, row.attempts)
        return Row(InputPhase.QUEUED, max(row.attempts - 1, 0))
    return row


def _row_corruption(i: int, row: Row, record: RuntimePhase, max_attempts: int) -> str | None:
    if row.phase is InputPhase.ABANDONED:
        if row.reason < 0:
            return f"input {i}: abandoned row without an abandon reason"
        if row.reason == AbandonKind.MAX_ATTEMPTS_EXHAUSTED and row.attempts < max_attempts:
            return f"input {i}: abandoned for exhausted attempts after only {row.attempts} attempts"
        return None
    if row.phase in (InputPhase.SUPERSEDED, InputPhase.COALESCED):
        if row.ref == NO_ID:
            return f"input {i}: {row.phase.name.lower()} row without the input that replaced it"
        return None
    if row.phase.is_terminal:
        return None
    if record in (RuntimePhase.STOPPED, RuntimePhase.DESTROYED):
        return f"input {i}: active row ({row.phase.name.lower()}) under a {record.name.lower()} lifecycle record"
    if row.attempts > max_attempts:
        return f"input {i}: active row with {row.attempts} attempts (more than {max_attempts})"
    return None


def recover(
    attrs: tuple[Attrs | None, ...],
    durable: Durable,
    max_attempts: int = MAX_STAGE_ATTEMPTS,
    live: tuple[Row | None, ...] | None = None,
) -> Memory | Rejected:
    """Memory rebuilt from ``durable`` (registration Queuing, no run), or why recovery fails;
    ``live``: the rows of a live session recovering in place (module docstring)."""
    if durable.record == RuntimePhase.DESTROYED:
        return Rejected(rejections.DESTROYED, "the stored runtime is destroyed; it cannot be registered again")
    record = RuntimePhase.IDLE if durable.record == NO_RECORD else RuntimePhase(durable.record)
    if record in (RuntimePhase.RUNNING, RuntimePhase.ATTACHED, RuntimePhase.INITIALIZING):
        detail = f"lifecycle record holds a live-only phase {record.name.lower()}"
        return Rejected(rejections.RECOVERY_CORRUPTION, detail)
    rows: list[Row | None] = []
    for i, stored in enumerate(durable.rows):
        attr = attrs[i]
        if stored is None or attr is None or (attr.ephemeral and (live is None or live[i] is None)):
            rows.append(None)
            continue
        problem = _row_corruption(i, stored, record, max_attempts)
        if problem is not None:
            return Rejected(rejections.RECOVERY_CORRUPTION, problem)
        rows.append(normalise_row(stored, durable.receipts[i]))
    lanes: dict[Lane, tuple[int, ...]] = {}
    for lane, order in ((Lane.QUEUE, durable.queue), (Lane.STEER, durable.steer)):
        lanes[lane] = tuple(
            i for i in order if (r := rows[i]) is not None and r.phase is InputPhase.QUEUED and _lane(attrs, i) is lane
        )
    for i, r in enumerate(rows):
        if r is not None and r.phase is InputPhase.QUEUED and i not in lanes[_lane(attrs, i)]:
            detail = f"input {i}: queued row missing from its lane's admission order"
            return Rejected(rejections.RECOVERY_CORRUPTION, detail)
    return Memory(
        registration=RegistrationPhase.QUEUING,
        phase=record,
        run=NO_ID,
        pre_run=-1,
        queue=lanes[Lane.QUEUE],
        steer=lanes[Lane.STEER],
        rows=tuple(rows),
    )


def _lane(attrs: tuple[Attrs | None, ...], i: int) -> Lane:
    attr = attrs[i]
    assert attr is not None
    return attr.lane
