"""Runtime-control vocabulary: the phase of a session's runtime and its registration phase."""

from __future__ import annotations

import enum


class RuntimeState(enum.Enum):
    """Phase of one session's runtime. Only ``DESTROYED`` is terminal."""

    INITIALIZING = "initializing"
    IDLE = "idle"
    ATTACHED = "attached"
    RUNNING = "running"
    RETIRED = "retired"
    STOPPED = "stopped"
    DESTROYED = "destroyed"

    @property
    def accepts_input(self) -> bool:
        return self in _ACCEPTING

    @property
    def can_process_queue(self) -> bool:
        return self in (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RETIRED)

    @property
    def durable_form(self) -> RuntimeState:
        """What is written to disk: an attached executor exists only in-process, so Attached is Idle."""
        return RuntimeState.IDLE if self is RuntimeState.ATTACHED else self


_ACCEPTING = (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RUNNING)
"""The phases that take input (bound once: in Python 3.11 each lookup of a member on its enum
class goes through ``EnumType.__getattr__``'s hook, about 1,100 instructions)."""


class RegistrationPhase(enum.Enum):
    """Whether a registered session has a runtime loop: Queuing -> Attaching -> Active."""

    QUEUING = "queuing"
    ATTACHING = "attaching"
    ACTIVE = "active"
