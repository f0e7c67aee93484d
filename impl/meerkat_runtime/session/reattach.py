"""Attaching a session's executor again after a failed boundary commit (``MeerkatMachine(reattach=True)``).

A run whose boundary commit fails (``boundary_commit_failed``: the store did not take the run's
end, or its outcome is unknown) puts the session back to Queuing: the loop is detached and the
executor told to stop (``StopRuntimeExecutor``). Nothing in the session would attach a loop again,
yet the machine keeps renewing the session's lease (no other worker takes it over) and keeps
accepting input. So, by default, the machine attaches the same executor again itself, in a
background task it owns (one per session at a time), through the path of
``ensure_session_with_executor``: the model's ``begin_attach`` / ``finish_attach`` (or
``attach_failed``), the session reconciled with the store first, the executor's ``start()``
awaited again.

Each try first reads the session's high-water mark (a one-row read: is the store answering?),
then attaches the executor the last failed boundary commit detached (kept on the session and
read on each try: if the application attached another executor meanwhile and a later failure
detached that one, that one is attached, never the executor it replaced). A try that fails
because the store cannot be read (the read, or the session's reconciliation, raises
``StoreError`` or ``DurableWriteFailed``) waits and tries again, for as long as the store stays
unreadable. A try that fails otherwise (``start()`` raised: ``ExecutorStartFailed``) waits and
tries again too, but after :data:`MAX_FAILED_STARTS` such failures in a row the task gives up:
the session stays Queuing (it keeps accepting input, as with ``reattach=False``) until the
application attaches a loop. Each failed try's error is kept in ``session.last_error``
(``MeerkatMachine.last_error``). The wait starts at :data:`FIRST_DELAY_S` and doubles up to
:data:`MAX_DELAY_S`. The backoff is the session's (:class:`ReattachBackoff`), kept across
detaches and reset only by a boundary commit that lands, so a store that answers reads but
keeps refusing the boundary commit does not make the executor run the same input in a tight
loop.

The task ends when the loop is attached (by it or by another caller), when the session is
unregistered, halted, stopped or destroyed (``SessionNotFound``, ``NotReady``,
``RuntimeDestroyed``), when its lease is lost to another worker (``OwnershipLost``), after
:data:`MAX_FAILED_STARTS` failed starts in a row, or when the machine closes (``close`` and
``unregister_session`` cancel it and wait for it). A shutdown, stop or destroy that finds the try
awaiting ``start()`` cancels that call (waiting at most ``EXECUTOR_STOP_LIMIT_S`` for it to end):
the try fails as ``attach_failed`` and the task ends.
"""

from __future__ import annotations

FIRST_DELAY_S = 0.05
"""The wait before the first try after a detach (and after a boundary commit that landed)."""

MAX_DELAY_S = 2.0
"""The longest wait between two tries."""

MAX_FAILED_STARTS = 3
"""Tries in a row that may fail other than for the store (``start()`` raised) before the
re-attach gives up and leaves the session Queuing."""


class ReattachBackoff:
    """The wait before a session's next re-attach try: :data:`FIRST_DELAY_S`, doubling up to
    :data:`MAX_DELAY_S`; back to the first after a boundary commit landed (:meth:`reset`)."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = FIRST_DELAY_S

    def next_delay(self) -> float:
        """The wait before the next try; the one after it is doubled (up to the cap)."""
        delay = min(self._next, MAX_DELAY_S)
        self._next = min(delay * 2, MAX_DELAY_S)
        return delay

    def reset(self) -> None:
        self._next = FIRST_DELAY_S
