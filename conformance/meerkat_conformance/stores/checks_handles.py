"""Handle checks: closing a handle, calls after close, reopening and two live handles."""

from __future__ import annotations

from collections.abc import Callable

from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import ReadFailed, StoreError, WriteFailed

from meerkat_conformance.stores.backend import StoreFactory
from meerkat_conformance.stores.failure import expect
from meerkat_conformance.stores.fixtures import RT, as_dict, expect_error, fresh, opened, receipt, row


def _calls(store: RuntimeStore) -> dict[str, tuple[type[StoreError], Callable[[], object]]]:
    return {
        "persist_input_state": (WriteFailed, lambda: store.persist_input_state(RT, row("late", "1"))),
        "atomic_apply": (
            WriteFailed,
            lambda: store.atomic_apply(RT, session_snapshot=b"late", receipt=receipt("late", 1), rows=[]),
        ),
        "commit_machine_lifecycle": (WriteFailed, lambda: store.commit_machine_lifecycle(RT, b"late", [])),
        "append_ops_record": (WriteFailed, lambda: store.append_ops_record(RT, b"late")),
        "persist_ops_lifecycle": (WriteFailed, lambda: store.persist_ops_lifecycle(RT, b"late")),
        "delete_ops_lifecycle": (WriteFailed, lambda: store.delete_ops_lifecycle(RT)),
        "load_input_states": (ReadFailed, lambda: store.load_input_states(RT)),
        "load_boundary_receipt": (ReadFailed, lambda: store.load_boundary_receipt(RT, "run", 1)),
        "load_session_snapshot": (ReadFailed, lambda: store.load_session_snapshot(RT)),
        "load_machine_lifecycle": (ReadFailed, lambda: store.load_machine_lifecycle(RT)),
        "load_ops_lifecycle": (ReadFailed, lambda: store.load_ops_lifecycle(RT)),
        "claim_lease": (WriteFailed, lambda: store.claim_lease(RT, "late", 60.0)),
        "renew_lease": (WriteFailed, lambda: store.renew_lease(Fence("late", 1), RT, 60.0)),
        "release_lease": (WriteFailed, lambda: store.release_lease(Fence("late", 1), RT)),
        "load_lease": (ReadFailed, lambda: store.load_lease(RT)),
        "load_high_water": (ReadFailed, lambda: store.load_high_water(RT)),
        "scan_input_states": (ReadFailed, lambda: store.scan_input_states(RT)),
        "quarantine_row": (WriteFailed, lambda: store.quarantine_row(RT, "late", "late")),
        "load_quarantined": (ReadFailed, lambda: store.load_quarantined(RT)),
    }


def check_close_and_reopen(factory: StoreFactory) -> None:
    """After ``close`` every method raises ``WriteFailed``/``ReadFailed`` naming the runtime and
    writes nothing; ``close`` twice is harmless; a new handle sees everything written before."""
    with fresh(factory) as backend:
        store = backend.open()
        store.atomic_apply(RT, session_snapshot=b"snap", receipt=receipt("run", 1, "a"), rows=[row("a", "1")])
        store.commit_machine_lifecycle(RT, b"life", [])
        store.persist_ops_lifecycle(RT, b"ops")
        store.close()
        for name, (error, call) in _calls(store).items():
            expect_error(f"{name} after close", error, call, mentions=(RT,))
        store.close()
        with opened(backend) as reopened:
            expect(as_dict(reopened.load_input_states(RT)) == {"a": b"1"}, "reopen", "rows lost")
            expect(reopened.load_session_snapshot(RT) == b"snap", "reopen", "a write after close reached the store")
            expect(reopened.load_machine_lifecycle(RT) == b"life", "reopen", "lifecycle lost or overwritten")
            ops = reopened.load_ops_lifecycle(RT)
            expect(ops is not None and ops.snapshot == b"ops" and not ops.appended, "reopen", "ops state changed")
            expect(reopened.load_boundary_receipt(RT, "late", 1) is None, "reopen", "a late receipt was stored")
            expect(reopened.load_lease(RT) is None, "reopen", "a claim after close reached the store")


def check_two_handles(factory: StoreFactory) -> None:
    """Two handles on the same storage see each other's committed writes; closing one leaves
    the other working."""
    with fresh(factory) as backend, opened(backend) as first:
        second = backend.open()
        try:
            first.persist_input_state(RT, row("a", "1"))
            expect(as_dict(second.load_input_states(RT)) == {"a": b"1"}, "cross-handle", "second handle misses a row")
            second.append_ops_record(RT, b"r")
            ops = first.load_ops_lifecycle(RT)
            expect(ops is not None and ops.appended == (b"r",), "cross-handle", "first handle misses a record")
        finally:
            second.close()
        first.persist_input_state(RT, row("b", "1"))
        expect(len(first.load_input_states(RT)) == 2, "after other close", "closing one handle broke the other")
