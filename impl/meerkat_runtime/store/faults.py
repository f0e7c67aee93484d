"""``FaultInjectingStore``: wrap any ``RuntimeStore`` and make chosen calls fail.

Rules name a method (or ``"*"`` for every method) and say which calls fail: the next ``count``
calls, the call with a given absolute number (1-based, as counted by ``calls``), or every call.
A failing write raises ``WriteFailed`` and a failing read ``ReadFailed``, with a detail that
starts with ``"injected fault"``; the inner store is not called, so nothing is written. With
``after_write=True`` a write rule lets the inner write happen and then raises (an ambiguous
commit: durable, but the caller saw ``WriteOutcomeUnknown``); with ``lost_write=True`` it raises
``WriteOutcomeUnknown`` without calling the inner store (an ambiguous commit that did not land:
the caller cannot tell it from the first kind until it reads the store). ``closed_mode`` makes every call
fail as if the store were closed. The ownership calls (``LEASE_METHODS``) are faulted like any
other: ``claim_lease``, ``renew_lease`` and ``release_lease`` fail as writes, ``load_lease`` as a
read; ``"*"`` covers them, ``WRITE_METHODS`` (the data writes) does not. So are the damage
and quarantine calls: ``quarantine_row`` and ``compact_inputs`` fail as writes
(``REPAIR_METHODS``), the mark, scan and finished-input reads as reads. Rules can be added,
removed and toggled while the store is in use; every call is counted per method, failed or not.
Thread-safe.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import (
    BoundaryReceipt,
    FinishedInput,
    InputRow,
    OpsLifecycleRecords,
    QuarantinedRow,
    ScannedRow,
)
from meerkat_runtime.store.validation import runtime_label
from meerkat_runtime.vocab.errors import ReadFailed, StoreError, WriteFailed, WriteOutcomeUnknown

T = TypeVar("T")

WRITE_METHODS = frozenset(
    {
        "persist_input_state",
        "atomic_apply",
        "commit_machine_lifecycle",
        "append_ops_record",
        "persist_ops_lifecycle",
        "delete_ops_lifecycle",
    }
)
READ_METHODS = frozenset(
    {
        "load_input_states",
        "load_active_input_states",
        "load_finished_inputs",
        "load_input_state",
        "load_boundary_receipt",
        "load_session_snapshot",
        "load_machine_lifecycle",
        "load_ops_lifecycle",
        "load_high_water",
        "scan_input_states",
        "load_quarantined",
        "list_runtimes",
    }
)
REPAIR_METHODS = frozenset({"quarantine_row", "compact_inputs"})
"""Writes that repair or compact stored data; faulted as writes, not armed by the harness's
"next write fails"."""
LEASE_WRITE_METHODS = frozenset({"claim_lease", "renew_lease", "release_lease"})
LEASE_METHODS = LEASE_WRITE_METHODS | {"load_lease"}
ALL_METHODS = WRITE_METHODS | READ_METHODS | REPAIR_METHODS | LEASE_METHODS
ANY_METHOD = "*"

INJECTED = "injected fault"
"""Every injected error's detail starts with this text."""


@dataclass
class FaultRule:
    """Which calls of ``method`` fail. Exactly one of ``remaining``/``on_call``/``always`` is used."""

    method: str
    remaining: int = 0
    on_call: int | None = None
    always: bool = False
    after_write: bool = False
    lost_write: bool = False

    def matches(self, method: str, call_number: int) -> bool:
        if self.method not in (method, ANY_METHOD):
            return False
        if self.always:
            return True
        if self.on_call is not None:
            return call_number == self.on_call
        return self.remaining > 0


class FaultInjectingStore:
    """A ``RuntimeStore`` that delegates to ``inner`` except where a fault rule fires."""

    def __init__(self, inner: RuntimeStore) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._calls: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self.enabled = True
        """When ``False`` no rule fires (rules are kept); ``closed_mode`` still applies."""
        self.closed_mode = False
        """When ``True`` every call fails as if the store were closed."""

    # --- configuring faults ---------------------------------------------------------------
    def fail_next(
        self, method: str = ANY_METHOD, count: int = 1, *, after_write: bool = False, lost_write: bool = False
    ) -> FaultRule:
        """Fail the next ``count`` calls of ``method`` (see the module docstring for
        ``after_write`` and ``lost_write``; at most one of them)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if after_write and lost_write:
            raise ValueError("a write either lands (after_write) or not (lost_write), not both")
        return self._add(
            FaultRule(self._checked(method), remaining=count, after_write=after_write, lost_write=lost_write)
        )

    def fail_call(self, method: str, nth: int, *, after_write: bool = False) -> FaultRule:
        """Fail the call of ``method`` whose 1-based number (as ``calls(method)`` counts) is ``nth``."""
        if nth < 1:
            raise ValueError(f"nth must be at least 1, got {nth}")
        return self._add(FaultRule(self._checked(method), on_call=nth, after_write=after_write))

    def fail_always(self, method: str = ANY_METHOD, *, after_write: bool = False) -> FaultRule:
        """Fail every call of ``method`` until the rule is removed."""
        return self._add(FaultRule(self._checked(method), always=True, after_write=after_write))

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self, method: str | None = None) -> None:
        """Remove every rule (or every rule naming ``method``)."""
        with self._lock:
            self._rules = [r for r in self._rules if method is not None and r.method != method]

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    # --- observing ------------------------------------------------------------------------
    def calls(self, method: str) -> int:
        """How many times ``method`` was called (including failed calls)."""
        with self._lock:
            return self._calls[self._checked(method)]

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def injected(self, method: str | None = None) -> int:
        """How many faults were injected (for ``method``, or in total)."""
        with self._lock:
            return sum(self._injected.values()) if method is None else self._injected[method]

    # --- the protocol ---------------------------------------------------------------------
    def persist_input_state(self, runtime_id: str, row: InputRow, *, fence: Fence | None = None) -> None:
        self._call(
            "persist_input_state", runtime_id, lambda: self.inner.persist_input_state(runtime_id, row, fence=fence)
        )

    def load_input_states(self, runtime_id: str) -> list[InputRow]:
        return self._call("load_input_states", runtime_id, lambda: self.inner.load_input_states(runtime_id))

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        return self._call(
            "load_active_input_states", runtime_id, lambda: self.inner.load_active_input_states(runtime_id)
        )

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        return self._call("load_finished_inputs", runtime_id, lambda: self.inner.load_finished_inputs(runtime_id))

    def load_input_state(self, runtime_id: str, input_id: str) -> InputRow | None:
        return self._call("load_input_state", runtime_id, lambda: self.inner.load_input_state(runtime_id, input_id))

    def compact_inputs(self, runtime_id: str, input_ids: Sequence[str], *, fence: Fence | None = None) -> int:
        return self._call(
            "compact_inputs", runtime_id, lambda: self.inner.compact_inputs(runtime_id, input_ids, fence=fence)
        )

    def atomic_apply(
        self,
        runtime_id: str,
        *,
        session_snapshot: bytes | None,
        receipt: BoundaryReceipt,
        rows: Sequence[InputRow],
        fence: Fence | None = None,
    ) -> None:
        self._call(
            "atomic_apply",
            runtime_id,
            lambda: self.inner.atomic_apply(
                runtime_id, session_snapshot=session_snapshot, receipt=receipt, rows=rows, fence=fence
            ),
        )

    def load_boundary_receipt(self, runtime_id: str, run_id: str, sequence: int) -> BoundaryReceipt | None:
        return self._call(
            "load_boundary_receipt", runtime_id, lambda: self.inner.load_boundary_receipt(runtime_id, run_id, sequence)
        )

    def load_session_snapshot(self, runtime_id: str) -> bytes | None:
        return self._call("load_session_snapshot", runtime_id, lambda: self.inner.load_session_snapshot(runtime_id))

    def commit_machine_lifecycle(
        self, runtime_id: str, lifecycle: bytes, rows: Sequence[InputRow], *, fence: Fence | None = None
    ) -> None:
        self._call(
            "commit_machine_lifecycle",
            runtime_id,
            lambda: self.inner.commit_machine_lifecycle(runtime_id, lifecycle, rows, fence=fence),
        )

    def load_machine_lifecycle(self, runtime_id: str) -> bytes | None:
        return self._call("load_machine_lifecycle", runtime_id, lambda: self.inner.load_machine_lifecycle(runtime_id))

    def append_ops_record(self, runtime_id: str, record: bytes, *, fence: Fence | None = None) -> None:
        self._call(
            "append_ops_record", runtime_id, lambda: self.inner.append_ops_record(runtime_id, record, fence=fence)
        )

    def persist_ops_lifecycle(self, runtime_id: str, snapshot: bytes, *, fence: Fence | None = None) -> None:
        self._call(
            "persist_ops_lifecycle",
            runtime_id,
            lambda: self.inner.persist_ops_lifecycle(runtime_id, snapshot, fence=fence),
        )

    def load_ops_lifecycle(self, runtime_id: str) -> OpsLifecycleRecords | None:
        return self._call("load_ops_lifecycle", runtime_id, lambda: self.inner.load_ops_lifecycle(runtime_id))

    def delete_ops_lifecycle(self, runtime_id: str, *, fence: Fence | None = None) -> None:
        self._call("delete_ops_lifecycle", runtime_id, lambda: self.inner.delete_ops_lifecycle(runtime_id, fence=fence))

    def load_high_water(self, runtime_id: str) -> HighWater | None:
        return self._call("load_high_water", runtime_id, lambda: self.inner.load_high_water(runtime_id))

    def scan_input_states(self, runtime_id: str) -> list[ScannedRow]:
        return self._call("scan_input_states", runtime_id, lambda: self.inner.scan_input_states(runtime_id))

    def quarantine_row(
        self, runtime_id: str, input_id: str, reason: str, *, fence: Fence | None = None
    ) -> QuarantinedRow:
        return self._call(
            "quarantine_row",
            runtime_id,
            lambda: self.inner.quarantine_row(runtime_id, input_id, reason, fence=fence),
        )

    def load_quarantined(self, runtime_id: str) -> list[QuarantinedRow]:
        return self._call("load_quarantined", runtime_id, lambda: self.inner.load_quarantined(runtime_id))

    def claim_lease(self, runtime_id: str, owner: str, duration_s: float) -> Lease:
        return self._call("claim_lease", runtime_id, lambda: self.inner.claim_lease(runtime_id, owner, duration_s))

    def renew_lease(self, fence: Fence, runtime_id: str, duration_s: float) -> Lease:
        return self._call("renew_lease", runtime_id, lambda: self.inner.renew_lease(fence, runtime_id, duration_s))

    def release_lease(self, fence: Fence, runtime_id: str) -> None:
        self._call("release_lease", runtime_id, lambda: self.inner.release_lease(fence, runtime_id))

    def load_lease(self, runtime_id: str) -> Lease | None:
        return self._call("load_lease", runtime_id, lambda: self.inner.load_lease(runtime_id))

    def list_runtimes(self) -> list[str]:
        return self._call("list_runtimes", "*", self.inner.list_runtimes)

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()

    # --- machinery ------------------------------------------------------------------------
    def _call(self, method: str, runtime_id: object, forward: Callable[[], T]) -> T:
        writes = method in WRITE_METHODS or method in REPAIR_METHODS or method in LEASE_WRITE_METHODS
        error: type[StoreError] = WriteFailed if writes else ReadFailed
        rt = runtime_label(runtime_id)
        with self._lock:
            self._calls[method] += 1
            number = self._calls[method]
            if self.closed_mode:
                self._injected[method] += 1
                raise error(rt, f"{INJECTED}: store is closed ({method} call #{number})")
            rule = self._fire(method, number) if self.enabled else None
        if rule is None:
            return forward()
        if rule.after_write and writes:
            forward()
            raise WriteOutcomeUnknown(rt, f"{INJECTED} after the write reached the store ({method} call #{number})")
        if rule.lost_write and writes:
            raise WriteOutcomeUnknown(rt, f"{INJECTED}: the write did not land ({method} call #{number})")
        raise error(rt, f"{INJECTED} ({method} call #{number})")

    def _fire(self, method: str, number: int) -> FaultRule | None:
        for rule in self._rules:
            if rule.matches(method, number):
                if not rule.always and rule.on_call is None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                elif rule.on_call is not None:
                    self._rules.remove(rule)
                self._injected[method] += 1
                return rule
        return None

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    @staticmethod
    def _checked(method: str) -> str:
        if method != ANY_METHOD and method not in ALL_METHODS:
            raise ValueError(f"unknown store method {method!r}; expected one of {sorted(ALL_METHODS)} or '*'")
        return method
