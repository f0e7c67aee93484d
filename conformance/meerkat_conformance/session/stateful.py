"""``SessionLockstepMachine``: Hypothesis drives ``SessionMachine`` and a persistent
``MeerkatMachine`` session together.

Accepted input ids travel through the ``inputs`` bundle (``resubmit`` reuses an accepted
input's idempotency key to exercise deduplication). Executor outcomes are chosen by
Hypothesis whenever a run is parked in the scripted executor: success with or without a
result, failure, success whose boundary commit fails, failure whose lifecycle commit fails;
a run left parked while other steps happen is a slow run. Durable calls may run with the
store's next write failing; crash steps kill the process and a later ``register`` recovers
from the SQLite file. The runtime's own run starts are applied to the model as they happen.
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule
from meerkat_model.machine import Bounds
from meerkat_model.session.actions import (
    CONTROL,
    Accept,
    AcceptInvalid,
    AttachFailed,
    BeginAttach,
    BoundaryCommitFails,
    Crash,
    Destroy,
    ExecutorFailed,
    ExecutorSucceeded,
    FinishAttach,
    Interrupt,
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
from meerkat_runtime.session.machine import MeerkatMachine

from meerkat_conformance.lockstep.disks import DiskKind, make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.stateful import LockstepStateMachine, with_failing_write
from meerkat_conformance.session.adapter import ATTACH, SessionAdapter

HYPOTHESIS_BOUNDS = Bounds({"inputs": 3})
"""Bounds of the session model the Hypothesis machine runs."""

_KEYS = st.sampled_from([NO_KEY, 0])
_FLAG = st.sampled_from([0, 1])
_RARELY = st.integers(0, 3).map(lambda n: n == 3)
_EXECUTOR_OUTCOMES: st.SearchStrategy[SessionAction] = st.sampled_from(
    [ExecutorSucceeded(1), ExecutorSucceeded(0), ExecutorFailed(), BoundaryCommitFails(), TerminalSnapshotFails()]
)
_CONTROLS: st.SearchStrategy[SessionAction] = st.sampled_from(CONTROL)


class SessionLockstepMachine(LockstepStateMachine):
    """Lockstep of one persistent session; see the module docstring."""

    BOUNDS: ClassVar[Bounds] = HYPOTHESIS_BOUNDS
    EXAMPLES_FACTOR = 4
    DISK: ClassVar[DiskKind] = "sqlite"
    RUNTIME_CLASS: ClassVar[type[MeerkatMachine]] = MeerkatMachine
    """The runtime under test (a subclass with a planted bug in ``tests/conformance``)."""
    GUIDED_EXCLUDE = frozenset({Crash, WriteFails, StartRun, BeginAttach, FinishAttach, AttachFailed})
    GUIDED_LAST = (Register, Unregister, Destroy, Stop)

    inputs = Bundle("inputs")

    def make_lockstep(self) -> Lockstep:
        machine = SessionMachine(type(self).BOUNDS)
        adapter = SessionAdapter(machine, make_disk(type(self).DISK), runtime_class=type(self).RUNTIME_CLASS)
        return Lockstep(machine, adapter)

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

    # --- registration ---------------------------------------------------------------------

    @rule(write_fails=_RARELY)
    def register(self, write_fails: bool) -> None:
        self.act(with_failing_write(Register(), write_fails, WriteFails))

    @rule()
    def attach(self) -> None:
        """``ensure_session_with_executor``: register if needed, then attach the run loop."""
        self.act(ATTACH)

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
        self.act(with_failing_write(Accept(i, lane, idem, skey, coalesce, ephemeral), write_fails, WriteFails))
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

    @precondition(_has_fresh_id)
    @rule()
    def accept_invalid(self) -> None:
        i = self._fresh_id()
        assert i is not None
        self.act(AcceptInvalid(i))

    # --- the executor ---------------------------------------------------------------------

    @precondition(_run_in_flight)
    @rule(outcome=_EXECUTOR_OUTCOMES)
    def executor_finishes(self, outcome: SessionAction) -> None:
        """The parked run ends: success (with or without a result), failure, or a success /
        failure whose durable commit fails. Until this rule fires the run is a slow one."""
        self.act(outcome)

    @precondition(_registered)
    @rule(write_fails=_RARELY)
    def interrupt(self, write_fails: bool) -> None:
        self.act(with_failing_write(Interrupt(), write_fails, WriteFails))

    # --- lifecycle control and crashes ----------------------------------------------------

    @rule(operation=_CONTROLS, write_fails=_RARELY)
    def control(self, operation: SessionAction, write_fails: bool) -> None:
        self.act(with_failing_write(operation, write_fails, WriteFails))

    @precondition(_registered)
    @rule()
    def crash(self) -> None:
        """The process dies; nothing is shut down. A later ``register`` recovers."""
        self.act(Crash())
