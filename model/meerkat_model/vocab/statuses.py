"""Statuses and phases of the modelled entities, as small ``IntEnum``s (cheap to hash)."""

from __future__ import annotations

import enum


class OpKind(enum.IntEnum):
    MOB_MEMBER_CHILD = 0
    BACKGROUND_TOOL_OP = 1


class OpStatus(enum.IntEnum):
    PROVISIONING = 1
    RUNNING = 2
    RETIRING = 3
    COMPLETED = 4
    FAILED = 5
    ABORTED = 6
    CANCELLED = 7
    RETIRED = 8
    TERMINATED = 9

    @property
    def is_terminal(self) -> bool:
        return self >= OpStatus.COMPLETED


class InputPhase(enum.IntEnum):
    ACCEPTED = 0
    QUEUED = 1
    STAGED = 2
    APPLIED = 3
    APPLIED_PENDING_CONSUMPTION = 4
    CONSUMED = 5
    SUPERSEDED = 6
    COALESCED = 7
    ABANDONED = 8

    @property
    def is_terminal(self) -> bool:
        return self >= InputPhase.CONSUMED


class RuntimePhase(enum.IntEnum):
    INITIALIZING = 0
    IDLE = 1
    ATTACHED = 2
    RUNNING = 3
    RETIRED = 4
    STOPPED = 5
    DESTROYED = 6


class RegistrationPhase(enum.IntEnum):
    UNREGISTERED = 0
    QUEUING = 1
    ATTACHING = 2
    ACTIVE = 3


class AbandonKind(enum.IntEnum):
    RETIRED = 0
    RESET = 1
    STOPPED = 2
    DESTROYED = 3
    CANCELLED = 4
    MAX_ATTEMPTS_EXHAUSTED = 5


MAX_STAGE_ATTEMPTS = 3
