"""Named invariants of the ownership model, checked on every reachable state.

The first five are what fencing guarantees (docs/semantics.md, "Ownership"); the next two carry
the session model's invariants over: the worker that holds the lease, unless in doubt, satisfies
every session invariant with the shared store (memory never ahead of the store, recovery gives
back memory), and every registered worker's memory is well formed on its own. The last four are
the operation registry's: no completion sequence number taken twice, no stored terminal operation
rewritten, the lease holder's registry exactly what the store holds of it, and no terminal outcome
published that the store does not hold as the publisher's write.
"""

from __future__ import annotations

from meerkat_model.machine import Invariant, Rejected
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.state import OwnershipState, holds_fence, view
from meerkat_model.session import invariants as session
from meerkat_model.session.recovery import recover
from meerkat_model.vocab.statuses import InputPhase, RuntimePhase

_MEMORY_INVARIANTS = (
    session.input_in_exactly_one_state,
    session.queued_exactly_in_lanes,
    session.staged_belong_to_current_run,
    session.idempotency_key_unique,
    session.running_iff_current_run,
    session.current_run_has_pre_run_phase,
    session.attached_iff_loop,
    session.attempts_bounded,
    session.pending_waiter_has_live_input,
)


def no_input_consumed_twice(s: OwnershipState) -> str | None:
    """No input is consumed by two runs: the store takes at most one boundary commit per input."""
    for i, count in enumerate(s.commits):
        if count > 1:
            return f"input {i} was recorded Consumed by two runs"
    return None


def consumed_stays_consumed(s: OwnershipState) -> str | None:
    """An input the store recorded Consumed stays Consumed (no worker writes it back to the
    queue or abandons it)."""
    for i, count in enumerate(s.commits):
        row = s.durable.rows[i]
        if count and (row is None or row.phase is not InputPhase.CONSUMED):
            where = "gone" if row is None else row.phase.name.lower()
            return f"input {i} was recorded Consumed but the store now holds it {where}"
    return None


def halt_never_undone(s: OwnershipState) -> str | None:
    """A durable stop, retire or destroy is never undone by another worker: the store never took
    a write moving the lifecycle record away from it from a worker that had not seen it."""
    if s.undone:
        return "a stored Stopped/Retired/Destroyed record was overwritten by a worker that had not seen it"
    if s.destroyed and s.durable.record != RuntimePhase.DESTROYED:
        return "the runtime was destroyed but the stored lifecycle record is no longer Destroyed"
    return None


def acknowledged_inputs_recoverable(s: OwnershipState) -> str | None:
    """After any interleaving of claims, crashes and expiries every acknowledged input has its
    row in the store and the store recovers (a Destroyed store is refused by design)."""
    for i, attr in enumerate(s.attrs):
        if attr is not None and s.durable.rows[i] is None:
            return f"input {i} was accepted but the store has no row for it"
    if s.durable.record == RuntimePhase.DESTROYED:
        return None
    got = recover(s.attrs, s.durable)
    if isinstance(got, Rejected):
        return f"the store does not recover ({got.kind}: {got.detail})"
    return None


def owner_agrees_with_store(s: OwnershipState) -> str | None:
    """The worker holding the lease, registered and not in doubt, satisfies every session
    invariant against the shared store (its memory is what recovering the store gives back)."""
    for w, worker in enumerate(s.workers):
        if worker.memory is None or worker.in_doubt or not holds_fence(s, w):
            continue
        state = view(s, w)
        for invariant in session.INVARIANTS:
            problem = invariant.check(state)
            if problem is not None:
                return f"worker {w} ({invariant.name}): {problem}"
    return None


def worker_memory_well_formed(s: OwnershipState) -> str | None:
    """Every registered worker's memory is well formed (inputs in one place, lanes, the run,
    attempts, handles), whether or not it still holds the lease."""
    for w, worker in enumerate(s.workers):
        if worker.memory is None:
            continue
        state = view(s, w)
        for check in _MEMORY_INVARIANTS:
            problem = check(state)
            if problem is not None:
                return f"worker {w} ({check.__name__}): {problem}"
    return None


def completion_seqs_never_reused(s: OwnershipState) -> str | None:
    """No two durable operation completions of the runtime share a completion sequence number:
    the store never takes a terminal write whose number it took before, and the stored terminal
    operations have distinct numbers below the stored next one."""
    if s.seq_reused:
        return "the store took two operation completions with the same sequence number"
    seqs = [op_slots.seq_of(slot) for slot in s.ops if op_slots.is_terminal(slot)]
    if len(set(seqs)) != len(seqs):
        return f"stored terminal operations share a sequence number ({sorted(seqs)})"
    if seqs and max(seqs) >= s.next_seq:
        return f"a stored sequence number ({max(seqs)}) is not below the stored next one ({s.next_seq})"
    return None


def op_terminal_never_undone(s: OwnershipState) -> str | None:
    """A durably terminal operation is never rewritten to another outcome or sequence number by
    another worker's write."""
    if s.op_undone:
        return "a stored terminal operation was rewritten by a worker that had not seen it terminal"
    return None


def owner_registry_agrees_with_store(s: OwnershipState) -> str | None:
    """The registry of the worker holding the lease (registered, not in doubt) is what the store
    holds of it: the same terminal operations with the same numbers (its other operations are
    not stored) and the same next sequence number."""
    for w, worker in enumerate(s.workers):
        if worker.memory is None or worker.in_doubt or not holds_fence(s, w):
            continue
        for op, (mine, stored) in enumerate(zip(worker.ops, s.ops, strict=True)):
            expected = mine if op_slots.is_terminal(mine) else op_slots.ABSENT
            if expected != stored:
                return f"worker {w}: operation {op} is {op_slots.spell(mine)}, the store holds {op_slots.spell(stored)}"
        if worker.next_seq != s.next_seq:
            return f"worker {w}: next sequence number {worker.next_seq}, the store's is {s.next_seq}"
    return None


def published_outcome_is_stored(s: OwnershipState) -> str | None:
    """A terminal outcome a worker published (its watchers resolved with it) is the store's: a
    write whose outcome was unknown is taken for landed only when the store holds that
    operation as this worker's write, never another worker's of the same id and number."""
    if s.op_misreported:
        return "a worker published a terminal operation the store holds as another worker's write"
    return None


INVARIANTS: tuple[Invariant[OwnershipState], ...] = tuple(
    Invariant(fn.__name__, (fn.__doc__ or "").strip().replace("\n    ", " "), fn)
    for fn in (
        no_input_consumed_twice,
        consumed_stays_consumed,
        halt_never_undone,
        acknowledged_inputs_recoverable,
        owner_agrees_with_store,
        worker_memory_well_formed,
        completion_seqs_never_reused,
        op_terminal_never_undone,
        owner_registry_agrees_with_store,
        published_outcome_is_stored,
    )
)
