"""The actions of the ownership model: one record per runtime call or event of one worker,
plus the passing of time.

``w`` is a worker index ``0 .. workers-1``; ``inner`` a session-model action
(:mod:`meerkat_model.session.actions`) the worker performs on its memory of the session.
"""

from __future__ import annotations

from typing import NamedTuple

from meerkat_model.action_record import action_record
from meerkat_model.session.actions import SessionAction


@action_record("claim_and_register")
class ClaimRegister(NamedTuple):
    """``register_session`` on worker ``w``: claim the lease (no lease, expired, or its own;
    the token grows by one), then recover the session from the store and write it back."""

    w: int


@action_record("renew")
class Renew(NamedTuple):
    """``renew_leases_now`` on worker ``w``: extend its lease, or find it taken and detach."""

    w: int


@action_record("expire")
class Expire(NamedTuple):
    """Time passes beyond the lease's end (nobody renewed it)."""


@action_record("release")
class Release(NamedTuple):
    """``unregister_session`` on worker ``w``: forget the session, release its lease."""

    w: int


@action_record("crash_worker")
class CrashWorker(NamedTuple):
    """Worker ``w``'s process dies: memory and handles gone, the lease left to expire."""

    w: int


@action_record("on")
class On(NamedTuple):
    """Session action ``inner`` on worker ``w``; its durable write (if any) carries the
    worker's token."""

    w: int
    inner: SessionAction


@action_record("ambiguous")
class Ambiguous(NamedTuple):
    """Session action ``inner`` on worker ``w`` whose durable write fails with its outcome
    unknown and an unreadable store: the store took it (``landed`` 1) or not (0), memory keeps
    its state and the worker is in doubt."""

    w: int
    inner: SessionAction
    landed: int


@action_record("reconcile")
class Reconcile(NamedTuple):
    """The first step of worker ``w`` once the store can be read again: memory := recovery of
    the store, in place (after a session write); the pending terminal write settled (after an
    operation's, ``meerkat_model.ownership.op_steps.reconcile_op``)."""

    w: int


@action_record("register_operation")
class RegisterOp(NamedTuple):
    """``register_operation`` of operation ``op`` (then provisioning succeeds) on worker ``w``'s
    registry: memory only."""

    w: int
    op: int


@action_record("finish_operation")
class FinishOp(NamedTuple):
    """A terminal transition of running operation ``op`` on worker ``w``'s registry:
    ``complete_operation`` (``outcome`` 0) or ``fail_operation`` (1), written with the worker's
    token and its next completion sequence number."""

    w: int
    op: int
    outcome: int


@action_record("ambiguous_finish_operation")
class AmbiguousFinishOp(NamedTuple):
    """``FinishOp`` whose terminal write fails with its outcome unknown and an unreadable store:
    the store took it (``landed`` 1) or not (0); the operation stays running in memory and the
    worker is in doubt with the write pending (``Reconcile`` settles it)."""

    w: int
    op: int
    outcome: int
    landed: int


OwnershipAction = (
    ClaimRegister
    | Renew
    | Expire
    | Release
    | CrashWorker
    | On
    | Ambiguous
    | Reconcile
    | RegisterOp
    | FinishOp
    | AmbiguousFinishOp
)
"""Any action of the ownership model."""
