"""``SessionLockstepMachine``: Hypothesis drives ``SessionMachine`` and a persistent
``MeerkatMachine`` session together.

Accepted input ids travel through the ``inputs`` bundle (``resubmit`` reuses an accepted
input's idempotency key to exercise deduplication). Inputs are accepted with a completion
handle, or run at once by their caller (``accept_input_and_run``). Executor outcomes are chosen
by Hypothesis whenever a run is parked in a scripted executor: success with or without a
result, failure (with a retryable error or one the retry policy does not retry), cancellation
by the executor, success whose boundary commit fails (the store fails, or already holds the
run's receipt), failure whose lifecycle commit fails; a run left parked while other steps happen
is a slow run. Interrupts may meet an executor that ignores
``CancelCurrentRun``; attaching may meet an executor whose ``start()`` raises. Durable calls may
run with the store's next write failing; an accept's or a control operation's write may also
raise with its outcome unknown while reads work (``_durable_call``); crash steps kill the process (or let a new process
take the session over while the old one still tries to write) and a later ``register``
recovers from the SQLite file. The runtime's own run starts are applied to the model as they
happen.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, precondition, rule
from meerkat_model.machine import Bounds, Stepped
from meerkat_model.session.actions import (
    CONTROL,
    Accept,
    AcceptAndRun,
    AcceptInvalid,
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
    Register,
    SessionAction,
    StartRun,
    Stop,
    TerminalSnapshotFails,
    Unregister,
    WriteFails,
)
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.state import NO_ID, NO_KEY
from meerkat_model.vocab.statuses import RegistrationPhase
from meerkat_runtime.session.machine import MeerkatMachine

from meerkat_conformance.lockstep.disks import DiskKind, make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.stateful import LockstepStateMachine, with_failing_write
from meerkat_conformance.session.adapter import SessionAdapter
from meerkat_conformance.session.harness_actions import (
    ATTACH,
    ATTACH_FAILS,
    DUPLICATE_RECEIPT,
    INTERRUPT_IGNORED,
    TAKEOVER,
    UnknownWrite,
)

HYPOTHESIS_BOUNDS = Bounds({"inputs": 3, "fatal_errors": 1})
"""Bounds of the session model the Hypothesis machine runs."""

_KEYS = st.sampled_from([NO_KEY, 0])
_FLAG = st.sampled_from([0, 1])
_RARELY = st.integers(0, 3).map(lambda n: n == 3)
_EXECUTOR_OUTCOMES: st.SearchStrategy[Hashable] = st.sampled_from([ExecutorSucceeded(1), ExecutorSucceeded(0)])
_EXECUTOR_FAILURES: st.SearchStrategy[Hashable] = st.sampled_from(
    [
        ExecutorFailed(),
        ExecutorCancelled(),
        BoundaryCommitFails(),
        TerminalSnapshotFails(),
        DUPLICATE_RECEIPT,
        ExecutorFailedFatal(),
    ]
)

_CONTROLS: st.SearchStrategy[SessionAction] = st.sampled_from(CONTROL)


class SessionLockstepMachine(LockstepStateMachine):
    """Lockstep of one persistent session; see the module docstring."""

    BOUNDS: ClassVar[Bounds] = HYPOTHESIS_BOUNDS
    EXAMPLES_FACTOR = 4
    DISK: ClassVar[DiskKind] = "sqlite"
    RUNTIME_CLASS: ClassVar[type[MeerkatMachine]] = MeerkatMachine
    """The runtime under test (a subclass with a planted bug in ``tests/conformance``)."""
    GUIDED_EXCLUDE = frozenset(
        {Crash, WriteFails, StartRun, BeginAttach, FinishAttach, AttachFailed, ExecutorFailedFatal}
    )
    """Kinds the guided rule leaves to their own rules: crashes, write failures and a failure
    that is not retried are drawn by ``crash``, the ``with_failing_write`` rules and
    ``executor_fails``; starts and attachment steps are the runtime's own."""
    GUIDED_LAST = (Register, Unregister, Destroy, Stop)

    inputs = Bundle("inputs")

    def make_lockstep(self) -> Lockstep:
        machine = SessionMachine(type(self).BOUNDS)
        adapter = SessionAdapter(machine, make_disk(type(self).DISK), runtime_class=type(self).RUNTIME_CLASS)
        return Lockstep(machine, adapter)

    def __init__(self) -> None:
        super().__init__()
        self.tries: dict[str, int] = {}
        """How often this example tried a call that changes nothing (a refusal or a no-op);
        each kind is tried once per example, so such calls do not crowd out the others."""
        self.writes = {True: 0, False: 0}
        """Accepts and control operations this example drew, by whether their write fails."""

    def _durable_call(self, action: SessionAction, write_fails: bool) -> Hashable:
        """``action`` as drawn, its store write failing when ``write_fails``; but every other
        failing write (the first, third, ...) raises with its outcome unknown without landing,
        and every third
        successful one raises with its outcome unknown after it landed (``UnknownWrite``:
        reads work, so the runtime must read the store back to tell). Which is counted, not
        drawn: the search's draws, what it finds and how it shrinks stay as they were, and
        the model takes the same step either way (except where the write carries only what
        the store holds: then a lost one is no failure)."""
        self.writes[write_fails] += 1
        count = self.writes[write_fails]
        if write_fails:
            return UnknownWrite(action, 0) if count % 2 == 1 else WriteFails(action)
        return UnknownWrite(action, 1) if count % 3 == 0 else action

    # --- preconditions --------------------------------------------------------------------

    def _fresh_id(self) -> int | None:
        return next((i for i, a in enumerate(self.model_state.attrs) if a is None), None)

    def _has_fresh_id(self) -> bool:
        return self._fresh_id() is not None

    def _registered(self) -> bool:
        return self.model_state.memory is not None

    def _run_in_flight(self) -> bool:
        memory = self.model_state.memory
        return memory is not None and memory.run != NO_ID

    def _once(self, what: str) -> bool:
        """Whether this example has not tried ``what`` yet (and count this try)."""
        tried = self.tries.get(what, 0)
        self.tries[what] = tried + 1
        return tried == 0

    def _untried(self, what: str) -> bool:
        return self.tries.get(what, 0) == 0

    def _may_register(self) -> bool:
        return not self._registered() or self._untried("register_noop")

    def _may_attach(self) -> bool:
        memory = self.model_state.memory
        return memory is None or memory.registration is not RegistrationPhase.ACTIVE or self._untried("attach_noop")

    def _may_accept_and_run(self) -> bool:
        if not (self._registered() and self._has_fresh_id()):
            return False
        i = self._fresh_id()
        assert i is not None
        would_run = isinstance(self.lock.machine.step(self.model_state, AcceptAndRun(i, NO_KEY)), Stepped)
        return would_run or self._untried("accept_and_run_refused")

    def _may_accept_invalid(self) -> bool:
        return self._registered() and self._has_fresh_id() and self._untried("accept_invalid")

    # --- where an example starts -------------------------------------------------------

    @initialize(start=st.sampled_from(["unregistered", "registered", "attached"]), queued=st.integers(0, 2))
    def start(self, start: str, queued: int) -> None:
        """Where the example starts: nothing registered, a registered session, or one with an
        attached loop, and ``queued`` plain inputs accepted (with a loop attached the first
        one runs at once). Shrinks toward nothing."""
        if start == "registered":
            self.act(Register())
        elif start == "attached":
            self.act(ATTACH)
        if start != "unregistered":
            for _ in range(queued):
                i = self._fresh_id()
                assert i is not None
                self.act(Accept(i, 0, NO_KEY, NO_KEY, 0, 0))

    # --- registration ---------------------------------------------------------------------

    @precondition(_may_register)
    @rule(write_fails=_RARELY)
    def register(self, write_fails: bool) -> None:
        if self._registered():
            self._once("register_noop")
        self.act(with_failing_write(Register(), write_fails, WriteFails))

    @precondition(_may_attach)
    @rule(fails=_RARELY)
    def attach(self, fails: bool) -> None:
        """``ensure_session_with_executor``: register if needed, then attach the run loop (whose
        executor's ``start()`` raises when ``fails``)."""
        memory = self.model_state.memory
        if memory is not None and memory.registration is RegistrationPhase.ACTIVE:
            self._once("attach_noop")
        self.act(ATTACH_FAILS if fails else ATTACH)

    @precondition(_registered)
    @rule()
    def unregister(self) -> None:
        self.act(Unregister())

    # --- inputs ---------------------------------------------------------------------------

    @precondition(_has_fresh_id)
    @rule(target=inputs, lane=_FLAG, idem=_KEYS, skey=_KEYS, coalesce=_FLAG, ephemeral=_FLAG, write_fails=_RARELY)
    def accept(self, lane: int, idem: int, skey: int, coalesce: int, ephemeral: int, write_fails: bool) -> int:
        i = self._fresh_id()
        assert i is not None
        coalesce = coalesce if skey != NO_KEY else 0
        self.act(self._durable_call(Accept(i, lane, idem, skey, coalesce, ephemeral), write_fails))
        return i

    @precondition(_has_fresh_id)
    @rule(earlier=inputs)
    def resubmit(self, earlier: int) -> None:
        """A new input carrying the idempotency key of an earlier one (deduplication)."""
        attrs = self.model_state.attrs[earlier]
        i = self._fresh_id()
        assert i is not None
        idem = attrs.idem if attrs is not None else NO_KEY
        self.act(Accept(i, 0, idem, NO_KEY, 0, 0))

    @precondition(_may_accept_and_run)
    @rule(idem=_KEYS, write_fails=_RARELY)
    def accept_and_run(self, idem: int, write_fails: bool) -> None:
        """``accept_input_and_run``: the caller runs a new input itself (no loop needed); tried
        once per example where the runtime refuses it."""
        i = self._fresh_id()
        assert i is not None
        action = AcceptAndRun(i, idem)
        if not isinstance(self.lock.machine.step(self.model_state, action), Stepped):
            self._once("accept_and_run_refused")
        self.act(with_failing_write(action, write_fails, WriteFails))

    @precondition(_may_accept_invalid)
    @rule()
    def accept_invalid(self) -> None:
        """An invalid input (rejected, nothing stored); once per example."""
        i = self._fresh_id()
        assert i is not None
        self._once("accept_invalid")
        self.act(AcceptInvalid(i))

    # --- the executor ---------------------------------------------------------------------

    @precondition(_run_in_flight)
    @rule(outcome=_EXECUTOR_OUTCOMES)
    def executor_finishes(self, outcome: Hashable) -> None:
        """The parked run succeeds (with or without a result). Until this rule or
        ``executor_fails`` fires the run is a slow one."""
        self.act(outcome)

    @precondition(_run_in_flight)
    @rule(outcome=_EXECUTOR_FAILURES)
    def executor_fails(self, outcome: Hashable) -> None:
        """The parked run fails, is cancelled by the executor, or succeeds but its boundary
        commit fails (the store fails, or already holds the run's receipt), or fails and the
        lifecycle commit after it fails."""
        self.act(outcome)

    @precondition(_registered)
    @rule(write_fails=_RARELY, ignored=st.booleans())
    def interrupt(self, write_fails: bool, ignored: bool) -> None:
        """``interrupt_current_run`` (the executor ignores ``CancelCurrentRun`` when ``ignored``)."""
        if write_fails:
            self.act(WriteFails(Interrupt()))
        else:
            self.act(INTERRUPT_IGNORED if ignored else Interrupt())

    # --- lifecycle control and crashes ----------------------------------------------------

    @precondition(_registered)
    @rule(operation=_CONTROLS, write_fails=_RARELY)
    def control(self, operation: SessionAction, write_fails: bool) -> None:
        self.act(self._durable_call(operation, write_fails))

    @precondition(_registered)
    @rule(write_fails=_RARELY)
    def recover(self, write_fails: bool) -> None:
        """``recover_session``: the store re-read in place and its normalised rows written back
        (``recover``), or nothing to do (``recover_noop``)."""
        self.act(with_failing_write(Recover(), write_fails, WriteFails))

    @precondition(_registered)
    @rule(takeover=st.booleans())
    def crash(self, takeover: bool) -> None:
        """The process dies; nothing is shut down. A later ``register`` recovers. With
        ``takeover`` a new process registers the session at once while the old one lives on
        and tries to write (the store must refuse it)."""
        self.act(TAKEOVER if takeover else Crash())
