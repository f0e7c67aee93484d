"""Harness actions of the ops suite beyond the model's vocabulary (``OpsAdapter.model_actions``
maps each to the model actions it stands for).

* :class:`CrashReadFault` (in :mod:`~meerkat_conformance.ops.adapter`) — a crash whose first
  recovery read fails: the model's ``Crash``.
* :class:`CancelWaitTask` — the asyncio task awaiting the ``wait_all`` handle is cancelled: the
  model's ``DropWait`` (cancelling the awaiting task cancels the barrier).
* :class:`DropWaitHandle` — the last reference to the pending handle is dropped (garbage
  collected): the model's ``DropWait``.
* :class:`AdvanceCursor` — one of the epoch's consumer cursors is advanced to ``seq``: no model
  step. The cursors are forward-only and recovered as of the last durable write; the adapter
  checks both against its own account of them.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.action_record import action_record

CURSORS = ("agent_applied", "runtime_observed", "runtime_injected")
"""The consumer cursors of an epoch, in ``AdvanceCursor.cursor`` order."""


@action_record("cancel_wait_task")
class CancelWaitTask(NamedTuple):
    """The task awaiting the pending ``wait_all`` handle is cancelled."""


@action_record("drop_wait_handle")
class DropWaitHandle(NamedTuple):
    """The pending ``wait_all`` handle is dropped and garbage-collected."""


@action_record("advance_cursor")
class AdvanceCursor(NamedTuple):
    """``advance_<CURSORS[cursor]>(seq)`` on the epoch's cursors."""

    cursor: int
    seq: int


CANCEL_WAIT_TASK = CancelWaitTask()
DROP_WAIT_HANDLE = DropWaitHandle()
