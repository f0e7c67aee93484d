"""One operation id's slot in a registry (a worker's memory or the store), as one small int.

``ABSENT`` (0): not tracked (memory) or nothing stored (store); ``RUNNING`` (1): registered and
not terminal (memory only: the runtime never persists a non-terminal operation); a terminal slot
``terminal(outcome, seq)``: the outcome (``COMPLETED`` 0 or ``FAILED`` 1) and the completion
sequence number it was given (1, 2, ...).
"""

from __future__ import annotations

ABSENT = 0
RUNNING = 1
COMPLETED = 0
FAILED = 1
OUTCOMES = (COMPLETED, FAILED)
OUTCOME_NAMES = ("completed", "failed")


def terminal(outcome: int, seq: int) -> int:
    """The slot of an operation terminal with ``outcome`` and completion sequence ``seq`` (>= 1)."""
    return 2 + 2 * (seq - 1) + outcome


def is_terminal(slot: int) -> bool:
    return slot >= 2


def outcome_of(slot: int) -> int:
    """The outcome of a terminal slot."""
    return (slot - 2) % 2


def seq_of(slot: int) -> int:
    """The completion sequence number of a terminal slot."""
    return (slot - 2) // 2 + 1


def spell(slot: int) -> str:
    """``absent``, ``running``, ``completed#1``, ``failed#2``: how traces and observations show a slot."""
    if slot == ABSENT:
        return "absent"
    if slot == RUNNING:
        return "running"
    return f"{OUTCOME_NAMES[outcome_of(slot)]}#{seq_of(slot)}"
