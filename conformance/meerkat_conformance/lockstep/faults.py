"""Store faults as the model means them: "the store's next write fails", and the two faces of
a write whose outcome the runtime cannot know (it landed, or it did not)."""

from __future__ import annotations

from meerkat_runtime.store.faults import WRITE_METHODS, FaultInjectingStore, FaultRule


def fail_next_write(store: FaultInjectingStore, *, unknown: bool = False, landed: bool = False) -> list[FaultRule]:
    """Arm a one-shot failure on every write method (reads are unaffected). A plain failure
    (``WriteFailed``) says nothing was written; with ``unknown`` the write raises
    ``WriteOutcomeUnknown`` instead, after reaching the store when ``landed`` and without
    touching it otherwise. Remove the returned rules with :func:`disarm` once the step is over."""
    if landed and not unknown:
        raise ValueError("only a write whose outcome is unknown can have landed")
    return [
        store.fail_next(method, after_write=unknown and landed, lost_write=unknown and not landed)
        for method in sorted(WRITE_METHODS)
    ]


def disarm(store: FaultInjectingStore, rules: list[FaultRule]) -> None:
    for rule in rules:
        store.remove(rule)
