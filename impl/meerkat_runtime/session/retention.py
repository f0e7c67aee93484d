"""Retention of finished inputs: which are kept decoded, which are read on demand, which are
compacted (:class:`~meerkat_runtime.session.retention_policy.RetentionPolicy`).

* :func:`evict` — a persistent session keeps only its ``RESIDENT_FINISHED`` most recent finished
  records decoded; older ones stay listed (id, key, admission position) and are read from the
  store when asked for. Only rows the store already holds are evicted (never a dirty one).
* :func:`finished_record` — the record of a kept finished input, resident or read back.
* :func:`compact` — deletes the finished inputs beyond the horizon from the store
  (``compact_inputs``, fenced, one transaction per batch of ``COMPACTION_BATCH``), then forgets
  each batch in memory (record, id, key,
  delivered outcome). A failed compaction changes nothing in memory and is tried again later;
  its rows are only ever finished ones, so a compaction whose outcome is unknown at worst leaves
  memory listing rows the store no longer holds — a duplicate of such a key is then answered
  without an outcome, as for a row stored without one.

All are called with the session gate held.
"""

from __future__ import annotations

import functools
import itertools
import time

from meerkat_runtime.session.core.ledger import InputLedger, InputRecord
from meerkat_runtime.session.core.plan import Plan
from meerkat_runtime.session.core.recovery import corruption
from meerkat_runtime.session.persistence import columns_problem
from meerkat_runtime.session.retention_policy import RESIDENT_FINISHED, RetentionPolicy
from meerkat_runtime.session.row_codec import RowFormatError, decode_record
from meerkat_runtime.session.runtime_session import RuntimeSession
from meerkat_runtime.vocab.errors import OwnershipLost
from meerkat_runtime.vocab.ids import InputId
from meerkat_runtime.vocab.inputs import Durability

COMPACTION_BATCH = 2000
"""Most rows one ``compact_inputs`` transaction deletes: a large backlog of compaction (a first
start under a smaller horizon) is split so that no transaction holds the write lock for long."""


def evict(ledger: InputLedger, keep: int = RESIDENT_FINISHED) -> None:
    """Drop the decoded records of the oldest resident finished inputs beyond ``keep`` (they
    stay listed in ``ledger.finished``)."""
    resident = ledger.resident
    while len(resident) > keep:
        input_id = resident[0]
        if input_id in ledger.dirty:
            return
        resident.popleft()
        record = ledger.records.get(input_id)
        if record is not None and record.phase.is_terminal and input_id in ledger.finished:
            del ledger.records[input_id]


def visible(ledger: InputLedger, record: InputRecord) -> bool:
    """Whether observations show ``record``: not an ephemeral input listed by recovery (recovery
    drops ephemeral inputs)."""
    ref = ledger.finished.get(record.input_id)
    return not (ref is not None and ref.recovered and record.input.header.durability is Durability.EPHEMERAL)


def _decoded(session: RuntimeSession, input_id: InputId, payload: bytes) -> InputRecord:
    try:
        record = decode_record(payload)
    except RowFormatError as exc:
        raise corruption(session.runtime_id, f"input row {input_id!r}: {exc}", input_id) from None
    if record.input_id != input_id or not record.phase.is_terminal:
        what = f"input row {input_id!r} is listed as finished but holds {record.input_id!r} {record.phase.value}"
        raise corruption(session.runtime_id, what, input_id)
    listed = session.core.ledger.finished.get(input_id)
    if listed is not None and listed.recovered:
        # what recovery listed (and deduplicates by) came from the columns beside the payload,
        # which its checksum does not cover: they must say what the payload says
        problem = columns_problem(record, listed.finished_at, listed.idempotency_key, listed.admission_seq)
        if problem is not None:
            raise corruption(session.runtime_id, f"input row {input_id!r}: {problem}", input_id)
    return record


async def finished_record(session: RuntimeSession, input_id: InputId) -> InputRecord | None:
    """The record of kept finished input ``input_id`` (``None`` if the session keeps no such
    input, or the store no longer holds its row); read from the store when not resident.
    ``RecoveryCorruption`` names a row that does not decode as that finished input."""
    ledger = session.core.ledger
    record = ledger.records.get(input_id)
    if record is not None or input_id not in ledger.finished:
        return record
    persistence = session.persistence
    row = await persistence.read(lambda: persistence.load_row(input_id))
    return None if row is None else _decoded(session, input_id, row.payload)


async def read_back(session: RuntimeSession, ledger: InputLedger, input_ids: list[InputId]) -> None:
    """Make the records of ``input_ids`` (finished inputs ``ledger`` lists without a record)
    resident in ``ledger``, read from the store in one call (a row no longer stored is left out)."""
    if not input_ids or not session.persistence.durable:
        return
    persistence = session.persistence
    rows = await persistence.read(lambda: [persistence.load_row(i) for i in input_ids])
    for input_id, row in zip(input_ids, rows, strict=True):
        if row is not None:
            ledger.records[input_id] = _decoded(session, input_id, row.payload)
            ledger.resident.append(input_id)


async def read_recent(session: RuntimeSession, ledger: InputLedger) -> None:
    """After a recovery: make the ``RESIDENT_FINISHED`` most recent finished inputs ``ledger``
    lists resident (as a session that ran them keeps them), so views of a small session read no
    row and a large history costs a bounded read."""
    keep = RESIDENT_FINISHED
    missing: list[InputId] = []
    for input_id in reversed(ledger.finished):
        if len(missing) >= keep:
            break
        if input_id not in ledger.records:
            missing.append(input_id)
    missing.reverse()
    await read_back(session, ledger, missing)


def keep_known_finished(memory: InputLedger, recovered: InputLedger) -> None:
    """In-place recovery (``recover``, reconciliation): a finished input the store lists that
    memory keeps too stays as memory knows it (the session is still running): its listing (an
    ephemeral input's key included) and, when resident, its record."""
    for input_id in recovered.finished:
        mine = memory.finished.get(input_id)
        if mine is None:
            continue
        recovered.finished[input_id] = mine
        key = mine.idempotency_key
        if key is not None and key not in recovered.keys:
            recovered.keys[key] = input_id
        record = memory.records.get(input_id)
        if record is not None and record.phase.is_terminal and input_id not in recovered.records:
            recovered.records[input_id] = record.copy()
            recovered.resident.append(input_id)


async def all_records(session: RuntimeSession) -> list[InputRecord]:
    """Every input the session keeps (resident or read back from the store), visible ones
    only, in admission order."""
    ledger = session.core.ledger
    records = list(ledger.records.values())
    missing = {i for i in ledger.finished if i not in ledger.records}
    if missing and session.persistence.durable:
        persistence = session.persistence
        rows = await persistence.read(persistence.load_all_rows)
        records += [_decoded(session, InputId(r.input_id), r.payload) for r in rows if r.input_id in missing]
    shown = [r for r in records if visible(ledger, r)]
    shown.sort(key=lambda r: r.admission_seq)
    return shown


def beyond_horizon(ledger: InputLedger, policy: RetentionPolicy, now: float, *, slack: bool) -> list[InputId]:
    """The kept finished inputs to compact now (in the order they finished); with ``slack``
    only once the horizon is exceeded by the policy's slack, so compaction works in batches.

    By count: the oldest beyond ``keep_finished``, in the order they finished. By age: every
    input that finished before ``now - max_age_s``. While the listing is in time order (the
    wall clock never stepped back) the walk stops at the first input kept by both rules;
    otherwise (``ledger.finished_in_order`` is false: an input finished at an earlier time than
    the one before it) every input is looked at, so none past the age is kept because an
    input listed before it finished later, the same as a restart, which lists them by time.
    A listing found in time order again (its out-of-order inputs compacted) sets the flag back."""
    finished = ledger.finished
    if not finished:
        return []
    in_order = ledger.finished_in_order
    times: list[float] = []
    if not in_order:
        times = [ref.finished_at for ref in finished.values()]
        if all(a <= b for a, b in itertools.pairwise(times)):
            ledger.finished_in_order = in_order = True
    keep = policy.keep_finished
    excess = 0 if keep is None else len(finished) - keep
    cutoff = None if policy.max_age_s is None else now - policy.max_age_s
    if slack:
        oldest = next(iter(finished.values())).finished_at if in_order else min(times)
        by_count = keep is not None and excess > policy.count_slack
        by_age = cutoff is not None and oldest < cutoff - policy.age_slack_s
        if not (by_count or by_age):
            return []
    top = ledger.next_admission_seq - 1
    chosen: list[InputId] = []
    for input_id, ref in finished.items():
        old = cutoff is not None and ref.finished_at < cutoff
        if len(chosen) >= excess and not old:
            if in_order:
                break
            continue
        if ref.admission_seq == top or input_id in ledger.dirty:
            continue
        chosen.append(input_id)
    return chosen


def finishes_inputs(plan: Plan) -> bool:
    """Whether ``plan`` makes an input finished (its records include a terminal one)."""
    return any(record.phase.is_terminal for record in plan.records.values())


def after_install(session: RuntimeSession, plan: Plan) -> None:
    """Right after a plan was applied: a persistent session evicts old finished records, an
    ephemeral one compacts (in memory) when the plan finished inputs."""
    if session.persistence.durable:
        evict(session.core.ledger)
    elif finishes_inputs(plan):
        compact_memory(session, session.retention)


def forget(session: RuntimeSession, input_ids: list[InputId]) -> None:
    """Forget compacted inputs in memory: record, listing, key and delivered outcome."""
    ledger = session.core.ledger
    resolved = session.completions.resolved
    for input_id in input_ids:
        ledger.forget(input_id)
        resolved.pop(input_id, None)


def compact_memory(session: RuntimeSession, policy: RetentionPolicy, *, slack: bool = True) -> int:
    """An ephemeral session's compaction (memory only); returns how many inputs were forgotten."""
    chosen = beyond_horizon(session.core.ledger, policy, time.time(), slack=slack)
    forget(session, chosen)
    return len(chosen)


async def compact(session: RuntimeSession, policy: RetentionPolicy, *, slack: bool = True) -> int:
    """Compact the finished inputs beyond the horizon: delete their rows in one store call,
    then forget them in memory; returns how many were compacted. A store failure is swallowed
    (nothing forgotten; tried again at the next compaction); a refused fence loses the claim."""
    persistence = session.persistence
    store = persistence.store
    if store is None:
        return compact_memory(session, policy, slack=slack)
    chosen = beyond_horizon(session.core.ledger, policy, time.time(), slack=slack)
    if not chosen:
        return 0
    runtime_id, fence = session.runtime_id, session.claim.fence
    done = 0
    for start in range(0, len(chosen), COMPACTION_BATCH):
        batch = chosen[start : start + COMPACTION_BATCH]
        try:
            await persistence.read(functools.partial(store.compact_inputs, runtime_id, batch, fence=fence))
        except OwnershipLost as lost:
            session.claim.lose(lost)
            break
        except Exception:
            break
        forget(session, batch)
        done += len(batch)
    return done
