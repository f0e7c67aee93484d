"""How a store conformance check reports a failure or that it does not apply."""

from __future__ import annotations


class StoreConformanceFailure(AssertionError):
    """A check found the store breaking the contract at ``step``."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


class NotApplicable(Exception):
    """The backend lacks a capability the check needs (e.g. multi-process access)."""


def expect(condition: bool, step: str, detail: str) -> None:
    """Raise ``StoreConformanceFailure(step, detail)`` unless ``condition`` holds."""
    if not condition:
        raise StoreConformanceFailure(step, detail)
