"""Store faults as the model means them: "the store's next write fails"."""

from __future__ import annotations

from meerkat_runtime.store.faults import WRITE_METHODS, FaultInjectingStore, FaultRule


def fail_next_write(store: FaultInjectingStore) -> list[FaultRule]:
    """Arm a one-shot failure on every write method (reads are unaffected). Remove the
    returned rules with :func:`disarm` once the step is over."""
    return [store.fail_next(method) for method in sorted(WRITE_METHODS)]


def disarm(store: FaultInjectingStore, rules: list[FaultRule]) -> None:
    for rule in rules:
        store.remove(rule)
