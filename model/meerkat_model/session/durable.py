"""How memory reaches the store, and what a correct store recovers to.

Every durable step writes before it is acknowledged; a write that fails leaves the whole state
(memory and store) exactly as it was. The writes:

- accept: the new row (and the row it superseded or coalesced), appended to its lane's order;
- a full commit (lifecycle record + every row of memory, admission order of every lane):
  executor failure, interrupt, retire, reset, recycle, stop, destroy, recovery write-back;
- a boundary commit (receipt + every row, no lifecycle record): executor success.
"""

from __future__ import annotations

from meerkat_model.session.state import NO_ID, Attrs, Durable, Lane, Memory, Row, durable_form, with_row
from meerkat_model.vocab.statuses import InputPhase, RegistrationPhase, RuntimePhase


def stored_lanes(attrs: tuple[Attrs | None, ...], memory: Memory) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Admission order of each lane as the store records it: the input of the current run was
    taken from the head of its lane, so it precedes the inputs still queued there."""
    queue, steer = memory.queue, memory.steer
    if memory.run != NO_ID:
        attr = attrs[memory.run]
        assert attr is not None
        if attr.lane is Lane.STEER:
            steer = (memory.run, *steer)
        else:
            queue = (memory.run, *queue)
    return queue, steer


def _committed_rows(stored: tuple[Row | None, ...], live: tuple[Row | None, ...]) -> tuple[Row | None, ...]:
    """The stored rows once every row memory holds is written (the others left as stored)."""
    if len(stored) == len(live):
        return tuple([s if m is None else m for s, m in zip(stored, live, strict=True)])
    rows = stored
    for i, row in enumerate(live):
        if row is not None:
            rows = with_row(rows, i, row)
    return rows


def record_of(memory: Memory) -> int:
    """The lifecycle record a full commit writes for ``memory``."""
    phase = memory.phase
    if phase is RuntimePhase.RUNNING:
        phase = RuntimePhase(memory.pre_run)
    return durable_form(phase)


def full_commit(attrs: tuple[Attrs | None, ...], durable: Durable, memory: Memory) -> Durable:
    """The store after a lifecycle commit of ``memory`` (rows not in memory are left as stored)."""
    rows = _committed_rows(durable.rows, memory.rows)
    queue, steer = stored_lanes(attrs, memory)
    return Durable(record_of(memory), rows, queue, steer, durable.receipts)


def boundary_commit(attrs: tuple[Attrs | None, ...], durable: Durable, memory: Memory, run_input: int) -> Durable:
    """The store after ``atomic_apply`` of a run of ``run_input``: its receipt and every row."""
    rows = _committed_rows(durable.rows, memory.rows)
    queue, steer = stored_lanes(attrs, memory)
    receipts = (*durable.receipts[:run_input], True, *durable.receipts[run_input + 1 :])
    return Durable(durable.record, rows, queue, steer, receipts)


def expected_recovery(attrs: tuple[Attrs | None, ...], memory: Memory) -> Memory:
    """What recovering a correct store must give for this memory: the current run's input back in
    its lane (its attempt not counted), ephemeral inputs dropped, no loop, no run."""
    rows: tuple[Row | None, ...] = memory.rows
    for i, row in enumerate(rows):
        attr = attrs[i]
        if row is None or attr is None:
            continue
        if attr.ephemeral:
            rows = with_row(rows, i, None)
        elif row.phase is InputPhase.STAGED:
            rows = with_row(rows, i, Row(InputPhase.QUEUED, row.attempts - 1))
    queue, steer = stored_lanes(attrs, memory)
    kept = tuple(i for i in queue if rows[i] is not None), tuple(i for i in steer if rows[i] is not None)
    phase = RuntimePhase(record_of(memory))
    return Memory(RegistrationPhase.QUEUING, phase, NO_ID, -1, kept[0], kept[1], rows)
