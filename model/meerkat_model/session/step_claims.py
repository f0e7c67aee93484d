"""What some steps read and write, as the step memory and the fast steps rely on it to share work
between cores (``tests/model_session/test_step_claims.py`` checks each claim on every ci state).

:func:`status_key` is the status of a registered session: its registration phase, runtime
phase, whether a run is in flight and whether both lanes are empty (no key when the session is
not registered: nothing is shared then). For the actions :func:`refuses_by_status` names, the
step's refusals and self-loops on a registered session are a function of that key (whether it
refuses, or returns the state itself, and then with which ``Rejected``, or with which outputs
and transition): every refusal these steps can return there comes from a guard that reads
nothing else, and so does every self-loop (register and retire when registered / Retired
already, interrupt without a run, attaching while attaching or attached, each with fixed
outputs); every other step they take builds a new state:

- register on a registered session is a no-op;
- the control operations (retire, reset, recycle, stop, destroy) refuse by ``control._refusal``
  (not registered, Destroyed, Stopped, a run in flight) and then, with the store's write failing,
  by the write whenever they would write: reset, recycle, stop and destroy always write once
  admitted; retire writes unless the phase is Retired already;
- interrupt refuses when not registered and, with the write failing, when a run is in flight;
- attaching (begin, finish, failed) refuses by registration and runtime phase;
- starting a run refuses by registration, run in flight, runtime phase and empty lanes;
- a run's ends refuse when not registered or when no run is in flight;
- unregister and crash refuse only when not registered.

Recover and the accepts are not named: their refusals read the store or the inputs (a corrupt
row, an idempotency key, a lane).

:func:`write_failing_pairs` pairs each ``WriteFails(inner)`` whose step is ``inner``'s with the
store's write failing, for the ``inner`` named in :data:`WRITE_FAILING_AS_INNER` (retire, recover,
register, interrupt): each checks everything that can refuse it, and whether it would write
nothing, before it writes, and a failed write gives one fixed ``durable_write_failed`` refusal
per action. So ``WriteFails(inner)`` refuses as ``inner`` refuses, returns ``inner``'s result
where ``inner`` returns the state itself, and gives that one refusal wherever ``inner`` moves.

The steps in :data:`BY_STORE` (crash, unregister, a failed terminal snapshot) drop memory: what
they do is a function of :func:`store_key` (attributes, store, destroyed flag, and of memory only
whether a run is in flight and the input of a run ``accept_input_and_run`` started, whose caller
they tell) and the handles. The steps in :data:`COMMITS` (the control operations but recover,
interrupt, a run's failure or cancellation) read the store only to commit: they leave the
attributes as they are, the store as ``durable.full_commit`` of the memory they leave, and
everything else (memory, handles, destroyed flag, outputs, transition) as a function of the
attributes, memory, destroyed flag and handles. A run's success (:data:`BOUNDARY_COMMITS`) does
the same with ``durable.boundary_commit`` of the memory it leaves and the input of the run it
ends (the run in flight in the memory it starts from).

Every key above, and the core of the step and invariant memory, holds the attributes, so a
parallel search that owns states by their attributes (``SessionMachine.partition_key``) uses each
shared result in one worker. Only the steps in :data:`ADDS_AN_INPUT` (an accept, an
``accept_input_and_run``) give an input attributes; every other step leaves each input's
attributes as they are but for forgetting what is spent (``state.forget_spent_attributes``: the
lane back to the queue, no supersession key), so most successors stay with the worker that
found them (:func:`attributes_kept`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from meerkat_model.session.actions import (
    Accept,
    AcceptAndRun,
    AttachFailed,
    BeginAttach,
    BoundaryCommitFails,
    Crash,
    Destroy,
    ExecutorCancelled,
    ExecutorFailed,
    ExecutorFailedFatal,
    ExecutorSucceeded,
    FinishAttach,
    Interrupt,
    Recover,
    Recycle,
    Register,
    Reset,
    Retire,
    SessionAction,
    StartRun,
    Stop,
    TerminalSnapshotFails,
    Unregister,
    WriteFails,
)
from meerkat_model.session.direct import direct_run
from meerkat_model.session.state import NO_ID, NO_KEY, Attrs, Lane, SessionState

BY_STATUS: frozenset[type[SessionAction]] = frozenset(
    {
        Register,
        Retire,
        Reset,
        Recycle,
        Stop,
        Destroy,
        Interrupt,
        BeginAttach,
        FinishAttach,
        AttachFailed,
        StartRun,
        ExecutorSucceeded,
        ExecutorFailed,
        ExecutorFailedFatal,
        ExecutorCancelled,
        BoundaryCommitFails,
        TerminalSnapshotFails,
        Unregister,
        Crash,
    }
)
"""The actions whose refusals and self-loops on a registered session are a function of
:func:`status_key`."""

WRITE_FAILS_BY_STATUS: frozenset[type[SessionAction]] = frozenset({Retire, Reset, Recycle, Stop, Destroy, Interrupt})
"""The actions that, wrapped in ``WriteFails``, still refuse by :func:`status_key` alone."""


def status_key(state: SessionState) -> Hashable:
    """``None`` (no key) when the session is not registered, else its registration phase, runtime
    phase, whether no run is in flight and whether both lanes are empty."""
    memory = state.memory
    if memory is None:
        return None
    return (memory.registration, memory.phase, memory.run == NO_ID, not memory.queue and not memory.steer)


def refuses_by_status(action: SessionAction) -> bool:
    """Whether the refusals and self-loops of ``action``'s step are a function of :func:`status_key`."""
    if type(action) is WriteFails:
        return type(action.inner) in WRITE_FAILS_BY_STATUS
    return type(action) in BY_STATUS


WRITE_FAILING_AS_INNER: frozenset[type[SessionAction]] = frozenset({Retire, Recover, Register, Interrupt})
"""The actions ``WriteFails`` wraps as described in the module docstring."""


def write_failing_pairs(actions: Iterable[SessionAction]) -> list[tuple[SessionAction, SessionAction]]:
    """``(WriteFails(inner), inner)`` for every ``WriteFails`` among ``actions`` whose ``inner``
    (of a type in :data:`WRITE_FAILING_AS_INNER`) is itself one of ``actions`` (the same object)."""
    actions = list(actions)
    present = {id(a) for a in actions}
    return [
        (a, a.inner)
        for a in actions
        if type(a) is WriteFails and type(a.inner) in WRITE_FAILING_AS_INNER and id(a.inner) in present
    ]


BY_STORE: frozenset[type[SessionAction]] = frozenset({Crash, Unregister, TerminalSnapshotFails})
"""The steps whose effect is a function of :func:`store_key` and the handles."""

COMMITS: frozenset[type[SessionAction]] = frozenset(
    {Retire, Reset, Recycle, Stop, Destroy, Interrupt, ExecutorFailed, ExecutorFailedFatal, ExecutorCancelled}
)
"""The steps that read the store only to commit the memory they leave (see the module doc)."""


BOUNDARY_COMMITS: frozenset[type[SessionAction]] = frozenset({ExecutorSucceeded})
"""The steps that read the store only to commit a run's boundary (see the module doc)."""


def store_key(state: SessionState) -> Hashable:
    """The attributes, store and destroyed flag; of memory, whether there is one, whether a run
    is in flight and the input of a run ``accept_input_and_run`` started."""
    memory = state.memory
    run = None if memory is None else (memory.run == NO_ID, direct_run(memory))
    return (state.attrs, state.durable, state.destroyed, run)


def reads_only_the_store(action: SessionAction) -> bool:
    """Whether ``action``'s step is one of :data:`BY_STORE`."""
    return type(action) in BY_STORE


def commits_only(action: SessionAction) -> bool:
    """Whether ``action``'s step is one of :data:`COMMITS` (a write-failing one is not)."""
    return type(action) in COMMITS


def commits_a_boundary(action: SessionAction) -> bool:
    """Whether ``action``'s step is one of :data:`BOUNDARY_COMMITS`."""
    return type(action) in BOUNDARY_COMMITS


ADDS_AN_INPUT: frozenset[type[SessionAction]] = frozenset({Accept, AcceptAndRun})
"""The steps that give an input its attributes (wrapped in ``WriteFails`` they write nothing)."""


def adds_an_input(action: SessionAction) -> bool:
    """Whether ``action``'s step is one of :data:`ADDS_AN_INPUT` (a write-failing one is not)."""
    return type(action) in ADDS_AN_INPUT


def attributes_kept(before: tuple[Attrs | None, ...], after: tuple[Attrs | None, ...]) -> bool:
    """Whether ``after`` is ``before`` with at most some inputs' lane and supersession key
    forgotten (back to the queue lane, no key): what every step not in :data:`ADDS_AN_INPUT`
    leaves."""
    if len(before) != len(after):
        return False
    for old, new in zip(before, after, strict=True):
        if old == new:
            continue
        if old is None or new is None or new != Attrs(Lane.QUEUE, old.idem, NO_KEY, old.ephemeral):
            return False
    return True
