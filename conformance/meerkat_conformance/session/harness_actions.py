"""Harness actions of the session suite: runtime calls and faults beyond the model's vocabulary,
each standing for a short sequence of model actions (``SessionAdapter.model_actions``).

* :class:`Attach` — ``ensure_session_with_executor``: ``BeginAttach`` then ``FinishAttach`` (one
  runtime call does both), preceded by ``Register`` when the session is not registered.
* :class:`AttachFails` — the same call with an executor whose ``start()`` raises: ``BeginAttach``
  then ``AttachFailed`` (the caller gets ``executor_start_failed``).
* :class:`InterruptIgnored` — ``Interrupt`` while the executor ignores ``CancelCurrentRun``.
* :class:`DuplicateReceipt` — the run in flight succeeds, but the store already holds a boundary
  receipt with its run id and sequence, so the store refuses the commit: ``BoundaryCommitFails``.
* :class:`Takeover` — a new process of the same worker registers the session while the old one
  is still alive (``Crash`` then ``Register``); the old process then tries to write (its run in
  flight ends, it accepts an input), and the store must refuse every such write (its fence is
  stale).
* :class:`UnknownWrite` — ``inner`` with the store's next write raising ``WriteOutcomeUnknown``
  (a lost acknowledgement) while reads still work: the runtime reads the store back. When the
  write did not land (``landed`` 0) it stands for ``WriteFails(inner)`` (the call fails and
  nothing changes), unless ``inner`` writes only what the store already holds (the read-back
  cannot tell, and finds the write there); when it landed (1) for ``inner`` itself (the call
  succeeds).
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.action_record import action_record
from meerkat_model.session.actions import SessionAction


@action_record("attach")
class Attach(NamedTuple):
    """``ensure_session_with_executor``: registers when needed, then attaches the runtime loop."""


@action_record("attach_fails")
class AttachFails(NamedTuple):
    """``ensure_session_with_executor`` with an executor whose ``start()`` raises."""


@action_record("interrupt_ignored")
class InterruptIgnored(NamedTuple):
    """``interrupt_current_run`` while the executor ignores ``CancelCurrentRun``."""


@action_record("duplicate_receipt")
class DuplicateReceipt(NamedTuple):
    """The run succeeds; its boundary receipt is already stored, so the commit is refused."""


@action_record("takeover")
class Takeover(NamedTuple):
    """A new process takes the session over while the old one lives on and tries to write."""


@action_record("unknown_write")
class UnknownWrite(NamedTuple):
    """``inner`` whose store write raises with its outcome unknown; ``landed``: whether it
    reached the store (1) or not (0). Reads work, so the runtime can find out which."""

    inner: SessionAction
    landed: int


ATTACH = Attach()
ATTACH_FAILS = AttachFails()
INTERRUPT_IGNORED = InterruptIgnored()
DUPLICATE_RECEIPT = DuplicateReceipt()
TAKEOVER = Takeover()
