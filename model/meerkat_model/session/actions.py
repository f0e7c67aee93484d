"""The actions of the session model: one record per runtime call or event.

Input ids are model ints ``0 .. inputs-1`` (the harness maps them to runtime ids). Each
record's call name (:func:`~meerkat_model.action_record.action_name`) is what traces print;
the runtime call each stands for is in its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.action_record import action_record


@action_record("register")
class Register(NamedTuple):
    """``register_session``: an unregistered session is recovered from the store."""


@action_record("begin_attach")
class BeginAttach(NamedTuple):
    """``ensure_session_with_executor`` claims the runtime loop attachment."""


@action_record("finish_attach")
class FinishAttach(NamedTuple):
    """The runtime loop is published (registration Active)."""


@action_record("attach_failed")
class AttachFailed(NamedTuple):
    """Attaching failed (the executor's ``start()`` raised): the claim is released and the
    caller of ``ensure_session_with_executor`` gets ``executor_start_failed``."""


@action_record("accept")
class Accept(NamedTuple):
    """``accept_input`` of a new input ``i`` (with a completion handle). ``lane``: 0 queue, 1
    steer (a :class:`~meerkat_model.session.state.Lane` value); ``idem``: idempotency key or
    -1; ``skey``: supersession key or -1; ``coalesce`` 1: coalesce instead of supersede;
    ``ephemeral`` 1: an ephemeral input."""

    i: int
    lane: int
    idem: int
    skey: int
    coalesce: int
    ephemeral: int


@action_record("accept_and_run")
class AcceptAndRun(NamedTuple):
    """``accept_input_and_run`` of a new input ``i`` (queue lane, durable, idempotency key
    ``idem`` or -1): accepted and run at once by the caller, without a runtime loop. Only an
    Idle session with no loop, no run and nothing queued takes it (else ``not_ready``); a key
    already used is refused (``validation_failed``: nothing to run)."""

    i: int
    idem: int


@action_record("accept_invalid")
class AcceptInvalid(NamedTuple):
    """``accept_input`` of an invalid input ``i`` (a prompt with durability derived): outcome
    Rejected, nothing stored."""

    i: int


@action_record("start_run")
class StartRun(NamedTuple):
    """The loop stages the next input and calls the executor."""


@action_record("executor_succeeded")
class ExecutorSucceeded(NamedTuple):
    """The executor returns (``with_result`` 1: with a result, 0: without)."""

    with_result: int


@action_record("executor_failed")
class ExecutorFailed(NamedTuple):
    """The executor fails."""


@action_record("executor_failed_fatal")
class ExecutorFailedFatal(NamedTuple):
    """The executor fails with an error the retry policy does not retry (the ``fatal_errors``
    bound): the input is abandoned at once, as after its last attempt."""


@action_record("executor_cancelled")
class ExecutorCancelled(NamedTuple):
    """The executor cancels the run itself (raises ``ExecutorCancelled``): the run ends as if
    interrupted; one lifecycle commit."""


@action_record("boundary_commit_fails")
class BoundaryCommitFails(NamedTuple):
    """The executor succeeds; the boundary commit (``atomic_apply``) fails."""


@action_record("terminal_snapshot_fails")
class TerminalSnapshotFails(NamedTuple):
    """The executor fails; the lifecycle commit after it fails."""


@action_record("interrupt")
class Interrupt(NamedTuple):
    """``interrupt_current_run``."""


@action_record("retire")
class Retire(NamedTuple):
    """``retire_runtime``."""


@action_record("reset")
class Reset(NamedTuple):
    """``reset_runtime``."""


@action_record("recycle")
class Recycle(NamedTuple):
    """``recycle_runtime``."""


@action_record("stop")
class Stop(NamedTuple):
    """``stop_runtime``."""


@action_record("destroy")
class Destroy(NamedTuple):
    """``destroy_runtime``."""


@action_record("recover")
class Recover(NamedTuple):
    """``recover_session``: the store is re-read in place (its rows recovered, written back when
    recovery normalises them); the phase is kept."""


@action_record("unregister")
class Unregister(NamedTuple):
    """``unregister_session``."""


@action_record("crash")
class Crash(NamedTuple):
    """The process dies (nothing is shut down); a later ``Register`` recovers."""


@action_record("write_fails")
class WriteFails(NamedTuple):
    """``inner`` (an accept, accept-and-run, interrupt, control operation or register) with the store's next
    write failing: ``durable_write_failed`` and nothing changes."""

    inner: SessionAction


SessionAction = (
    Register
    | BeginAttach
    | FinishAttach
    | AttachFailed
    | Accept
    | AcceptAndRun
    | AcceptInvalid
    | StartRun
    | ExecutorSucceeded
    | ExecutorFailed
    | ExecutorFailedFatal
    | ExecutorCancelled
    | BoundaryCommitFails
    | TerminalSnapshotFails
    | Interrupt
    | Retire
    | Reset
    | Recycle
    | Stop
    | Destroy
    | Recover
    | Unregister
    | Crash
    | WriteFails
)
"""Any action of the session model."""

CONTROL: tuple[Retire | Reset | Recycle | Stop | Destroy, ...] = (Retire(), Reset(), Recycle(), Stop(), Destroy())
"""The control operations, in the order the model offers them."""

WRITES_WHEN_OK: frozenset[type[SessionAction]] = frozenset(
    {Accept, AcceptAndRun, Interrupt, Retire, Reset, Recycle, Stop, Destroy, Recover, Register}
)
"""Actions with a store write that can fail (the ones ``WriteFails`` may wrap)."""
