"""Named invariants of the operation-registry model, checked on every reachable state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Invariant, StepCheck, Stepped
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.ops.effects import durable_image, recover
from meerkat_model.ops.state import NO_OUTCOME, OpRecord, RegistryState, is_terminal, status_of
from meerkat_model.vocab.statuses import OpKind, OpStatus

Check = Invariant[RegistryState]
KNOWN_KINDS = frozenset(int(k) for k in OpKind)
_FIRST_TERMINAL = int(OpStatus.COMPLETED)
_RUNNING = int(OpStatus.RUNNING)
_MOB = int(OpKind.MOB_MEMBER_CHILD)


def _name(kind: type[OpStatus] | type[OpKind], value: int) -> str:
    """The enum name of ``value``, or the raw value when it names none (a malformed state)."""
    try:
        return kind(value).name
    except ValueError:
        return f"<{value!r}>"


def _records(state: RegistryState) -> list[tuple[int, OpRecord]]:
    return [(i, rec) for i, rec in enumerate(state.ops) if isinstance(rec, OpRecord)]


def terminal_outcome_matches(state: RegistryState) -> str | None:
    for i, rec in enumerate(state.ops):
        if not rec:
            continue
        status, outcome = rec[0], rec[5]
        if (status >= _FIRST_TERMINAL) != (outcome != NO_OUTCOME) or (outcome != NO_OUTCOME and outcome != status):
            return f"operation {i}: status {_name(OpStatus, status)} with outcome {outcome}"
    return None


def peer_ready_consistent(state: RegistryState) -> str | None:
    for i, rec in enumerate(state.ops):
        if rec and rec[2] and (rec[1] != _MOB or rec[0] < _RUNNING):
            return f"operation {i}: peer_ready with kind {_name(OpKind, rec[1])} in {_name(OpStatus, rec[0])}"
    return None


def kind_known(state: RegistryState) -> str | None:
    for i, rec in enumerate(state.ops):
        if rec and rec[1] not in KNOWN_KINDS:
            return f"operation {i}: unknown kind {rec[1]}"
    return None


def active_count_matches(state: RegistryState) -> str | None:
    active = [i for i, rec in _records(state) if not is_terminal(rec.status)]
    if state.active_count != len(active):
        return f"active_count {state.active_count} but {len(active)} non-terminal operations"
    if sorted(state.active_order) != active:
        return f"registration order {state.active_order} does not list the active operations {active}"
    return None


def terminal_ops_in_completed_order(state: RegistryState) -> str | None:
    terminal = sorted(i for i, rec in _records(state) if is_terminal(rec.status))
    if sorted(state.completed) != terminal:
        return f"completed_order {state.completed} does not hold exactly the terminal operations {terminal}"
    return None


def barrier_members_tracked(state: RegistryState) -> str | None:
    members = state.barrier
    if len(set(members)) != len(members):
        return f"barrier members {members} are not distinct"
    for i in members:
        if not state.ops[i]:
            return f"barrier member {i} is not tracked"
    if members and all(is_terminal(status_of(state.ops[i])) for i in members):
        return f"barrier {members} is still active although every member is terminal"
    return None


def feed_sequences_ordered(state: RegistryState) -> str | None:
    last = 0
    for entry in state.feed:
        if entry[0] <= last:
            return f"feed sequence numbers {[e[0] for e in state.feed]} are not strictly increasing"
        last = entry[0]
    if state.watermark != last:
        return f"watermark {state.watermark} is not the last feed sequence number {last}"
    highest = last
    for i, rec in _records(state):
        if is_terminal(rec.status) != (rec.seq > 0):
            return f"operation {i}: status {_name(OpStatus, rec.status)} with completion sequence {rec.seq}"
        highest = max(highest, rec.seq)
    if state.next_seq <= highest:
        return f"next sequence number {state.next_seq} does not exceed issued {highest}"
    return None


class MemoryPartChecks:
    """Checks that read only the memory part of a state (``ops, active_order, active_count,
    completed, barrier``: the deep profile has 7,321 distinct ones among 149,701 states), run
    together once per distinct memory part. :meth:`check` gives one check's own result: its
    message, or the exception it raised, raised again. The results of the last state asked
    about are kept by identity (the verifier asks every check about one state in a row)."""

    __slots__ = ("checks", "known", "last", "last_state")

    def __init__(self, checks: tuple[Callable[[RegistryState], str | None], ...]) -> None:
        self.checks = checks
        self.known: dict[tuple[Any, ...], tuple[str | Exception | None, ...]] = {}
        self.last_state: RegistryState | None = None
        self.last: tuple[str | Exception | None, ...] = ()

    def _run(self, state: RegistryState) -> tuple[str | Exception | None, ...]:
        out: list[str | Exception | None] = []
        for check in self.checks:
            try:
                out.append(check(state))
            except Exception as exc:  # raised again for this check alone
                out.append(exc)
        return tuple(out)

    def check(self, state: RegistryState, k: int) -> str | None:
        if state is not self.last_state:
            part = state[:5]
            results = self.known.get(part)
            if results is None:
                results = self.known[part] = self._run(state)
            self.last_state, self.last = state, results
        got = self.last[k]
        if isinstance(got, Exception):
            raise got
        return got

    def checker(self, k: int) -> Callable[[RegistryState], str | None]:
        """The check at position ``k``, answered through the shared results."""
        return lambda state: self.check(state, k)


def make_invariants(bounds: OpsBounds) -> tuple[Check, ...]:
    """The invariants under ``bounds`` (the retention and capacity limits come from them).
    Those that read only the memory part share one :class:`MemoryPartChecks`."""
    plain = plain_invariants(bounds)
    shared = MemoryPartChecks(tuple(inv.check for inv in plain if inv.name in MEMORY_PART_CHECKS))
    names = [inv.name for inv in plain if inv.name in MEMORY_PART_CHECKS]
    return tuple(
        Invariant(inv.name, inv.description, shared.checker(names.index(inv.name)))
        if inv.name in MEMORY_PART_CHECKS
        else inv
        for inv in plain
    )


MEMORY_PART_CHECKS = frozenset(
    {
        "terminal_outcome_matches",
        "peer_ready_consistent",
        "kind_known",
        "active_count_matches",
        "max_concurrent_respected",
        "completed_order_bounded",
        "terminal_ops_in_completed_order",
        "barrier_members_tracked",
        "watchers_resolved",
    }
)
"""The invariants that read only ``state[:5]`` (the memory part)."""


def plain_invariants(bounds: OpsBounds) -> tuple[Check, ...]:
    """The invariants under ``bounds``, each checked on its own (what :func:`make_invariants`
    answers through :class:`MemoryPartChecks`)."""

    def max_concurrent_respected(state: RegistryState) -> str | None:
        if bounds.max_concurrent and state.active_count > bounds.max_concurrent:
            return f"{state.active_count} active operations exceed max_concurrent {bounds.max_concurrent}"
        return None

    def completed_order_bounded(state: RegistryState) -> str | None:
        order = state.completed
        if len(set(order)) != len(order):
            return f"completed_order {order} has duplicates"
        for i in order:
            rec = state.ops[i]
            if not rec or not is_terminal(rec[0]):
                return f"completed_order lists {i}, which is not a tracked terminal operation"
        pinned = len(set(order) & set(state.barrier))
        if len(order) > bounds.max_completed + pinned:
            return f"completed_order holds {len(order)} > max_completed {bounds.max_completed} + {pinned} pinned"
        return None

    def acknowledged_terminal_ops_recoverable(state: RegistryState) -> str | None:
        image = durable_image(state)
        if image == state.disk or (not state.disk and not state.completed and not state.feed):
            return None  # memory's durable part is exactly what was written
        from_disk = recover(state.disk, bounds.ids, bounds.max_completed)
        from_memory = recover(image, bounds.ids, bounds.max_completed)
        if from_disk[:-1] != from_memory[:-1]:
            return "a crash now would not recover the acknowledged terminal operations, feed and counters in memory"
        return None

    return (
        Invariant(
            "terminal_outcome_matches",
            "terminal status ⇔ terminal outcome present, same kind",
            terminal_outcome_matches,
        ),
        Invariant(
            "peer_ready_consistent", "peer_ready ⇒ MobMemberChild in Running/Retiring/terminal", peer_ready_consistent
        ),
        Invariant("kind_known", "every registered operation has a known kind", kind_known),
        Invariant("active_count_matches", "active_count = number of non-terminal operations", active_count_matches),
        Invariant(
            "max_concurrent_respected", "max_concurrent set ⇒ active_count ≤ max_concurrent", max_concurrent_respected
        ),
        Invariant(
            "completed_order_bounded",
            "completed_order distinct, tracked, terminal, ≤ max_completed + pinned barrier members",
            completed_order_bounded,
        ),
        Invariant(
            "terminal_ops_in_completed_order",
            "terminal operations are exactly those in completed_order",
            terminal_ops_in_completed_order,
        ),
        Invariant(
            "barrier_members_tracked",
            "active barrier ⇒ members distinct, tracked, not all terminal",
            barrier_members_tracked,
        ),
        Invariant(
            "feed_sequences_ordered",
            "feed seqs strictly increasing, watermark = last seq, next seq > every issued seq",
            feed_sequences_ordered,
        ),
        Invariant("watchers_resolved", "a terminal operation has no pending watcher", watchers_resolved),
        Invariant(
            "acknowledged_terminal_ops_recoverable",
            "after every acknowledged step a crash recovers exactly the terminal part of memory",
            acknowledged_terminal_ops_recoverable,
        ),
    )


TERMINAL_TRANSITIONS = frozenset(
    {
        "provisioning_failed",
        "abort_provisioning",
        "complete_operation",
        "fail_operation",
        "cancel_operation",
        "mark_retired",
        "terminate_owner",
    }
)


def watchers_resolved(state: RegistryState) -> str | None:
    for i, rec in enumerate(state.ops):
        if rec and rec[0] >= _FIRST_TERMINAL and rec[4]:
            return f"operation {i} is terminal with {rec[4]} pending watcher(s)"
    return None


def _feed_outputs(stepped: Stepped[RegistryState]) -> list[tuple[int, int]]:
    return [(o[1], o[2]) for o in stepped.outputs if o[0] == "feed"]


def terminate_order(before: RegistryState, action: object, stepped: Stepped[RegistryState]) -> str | None:
    """terminate_owner ends the active operations in registration order, one sequence number each."""
    fed = _feed_outputs(stepped)
    order = before.active_order
    want = [(before.next_seq + k, op) for k, op in enumerate(order)]
    if fed != want:
        return f"registration order {list(order)} but the feed got (seq, id) {fed}"
    return None


def watchers_released(before: RegistryState, action: object, stepped: Stepped[RegistryState]) -> str | None:
    """A terminal step resolves every pending watcher of each operation it ends, and says so."""
    resolved: dict[int, int] = {}
    ended: list[int] = []
    for o in stepped.outputs:
        if o[0] == "feed":
            ended.append(o[2])
        elif o[0] == "watchers_resolved":
            resolved[o[1]] = o[2]
    for op in ended:
        rec = before.ops[op]
        pending = rec[4] if rec else 0
        if resolved.get(op, 0) != pending:
            return f"operation {op} ended with {pending} pending watcher(s) but {resolved.get(op, 0)} were resolved"
    return None


def has_watchers(state: RegistryState) -> bool:
    """Some operation has a pending watcher (otherwise a terminal step has none to release)."""
    for rec in state[0]:  # noqa: SIM110 (a loop: any() over a generator costs more per call)
        if rec and rec[4]:
            return True
    return False


def make_step_checks(bounds: OpsBounds) -> tuple[StepCheck[RegistryState, Any], ...]:
    """The order and retention rules of single steps (checked on every step of the named
    transitions)."""

    def retention_after_recovery(before: RegistryState, action: object, stepped: Stepped[RegistryState]) -> str | None:
        """Recovery keeps the newest max_completed terminal operations of the last write."""
        disk = before.disk
        want = disk.completed[-bounds.max_completed :] if disk else ()
        got = stepped.state.completed
        if got != want:
            stored = disk.completed if disk else ()
            return f"recovered completed_order {got}, but the newest {bounds.max_completed} of {stored} is {want}"
        return None

    return (
        StepCheck(
            "terminate_order",
            "terminate_owner ends the active operations in registration order",
            frozenset({"terminate_owner"}),
            terminate_order,
        ),
        StepCheck(
            "watchers_released",
            "a terminal step resolves every pending watcher of the operations it ends",
            TERMINAL_TRANSITIONS,
            watchers_released,
            has_watchers,
        ),
        StepCheck(
            "retention_after_recovery",
            "recovery keeps the newest max_completed terminal operations of the last durable write",
            frozenset({"crash_recover"}),
            retention_after_recovery,
        ),
    )
