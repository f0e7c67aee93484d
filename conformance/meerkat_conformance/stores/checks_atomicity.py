"""Atomicity checks: a rejected or failed commit leaves the previous state exactly intact."""

from __future__ import annotations

from typing import Any, cast

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import StoreError, WriteFailed

from meerkat_conformance.stores.backend import CAP_WRITE_FAILURE, StoreFactory
from meerkat_conformance.stores.failure import NotApplicable, expect
from meerkat_conformance.stores.fixtures import RT, RT_OTHER, as_dict, expect_error, fresh, opened, receipt, row


def _state(store: RuntimeStore, rt: str = RT) -> tuple[object, ...]:
    return (
        as_dict(store.load_input_states(rt)),
        store.load_session_snapshot(rt),
        store.load_machine_lifecycle(rt),
        store.load_ops_lifecycle(rt),
    )


def _seed(store: RuntimeStore) -> None:
    store.atomic_apply(RT, session_snapshot=b"snap-1", receipt=receipt("run-1", 1, "x"), rows=[row("x", "1")])
    store.commit_machine_lifecycle(RT, b"life-1", [row("z", "1")])
    store.append_ops_record(RT, b"rec-1")


def check_duplicate_receipt_rejected(factory: StoreFactory) -> None:
    """A second receipt with the same (runtime, run, sequence) is ``WriteFailed`` and rolls back
    the whole ``atomic_apply``: snapshot, receipt and rows."""
    with fresh(factory) as backend, opened(backend) as store:
        first = receipt("run-1", 1, "x")
        _seed(store)
        before = _state(store)
        expect_error(
            "duplicate receipt",
            WriteFailed,
            lambda: store.atomic_apply(
                RT, session_snapshot=b"snap-2", receipt=receipt("run-1", 1, "y"), rows=[row("x", "2"), row("y", "1")]
            ),
            mentions=(RT,),
        )
        expect(_state(store) == before, "rollback", "a rejected duplicate receipt changed stored state")
        expect(store.load_boundary_receipt(RT, "run-1", 1) == first, "rollback", "the first receipt was overwritten")
        store.atomic_apply(RT_OTHER, session_snapshot=None, receipt=receipt("run-1", 1, "other"), rows=[])
        got = store.load_boundary_receipt(RT_OTHER, "run-1", 1)
        expect(got is not None and got.contributing_input_ids == ("other",), "per runtime", "receipt keys leak")


def check_rejected_commit_changes_nothing(factory: StoreFactory) -> None:
    """A commit with a malformed last row is refused with ``WriteFailed`` and writes none of
    its parts (the earlier rows, the snapshot, the receipt or the lifecycle record)."""
    bad = InputRow("bad", cast(Any, "not bytes"))
    with fresh(factory) as backend, opened(backend) as store:
        _seed(store)
        before = _state(store)
        expect_error(
            "atomic_apply",
            WriteFailed,
            lambda: store.atomic_apply(
                RT, session_snapshot=b"snap-2", receipt=receipt("run-1", 2, "w"), rows=[row("w", "1"), bad]
            ),
        )
        expect(_state(store) == before, "atomic_apply", "a refused atomic_apply left part of its writes")
        expect(store.load_boundary_receipt(RT, "run-1", 2) is None, "atomic_apply", "a refused receipt was stored")
        expect_error(
            "commit_machine_lifecycle",
            WriteFailed,
            lambda: store.commit_machine_lifecycle(RT, b"life-2", [row("x", "9"), bad]),
        )
        expect(_state(store) == before, "commit_machine_lifecycle", "a refused lifecycle commit left partial writes")
        expect_error("persist_input_state", WriteFailed, lambda: store.persist_input_state(RT, bad))
        expect_error("append_ops_record", WriteFailed, lambda: store.append_ops_record(RT, cast(Any, "str")))
        expect_error("persist_ops_lifecycle", WriteFailed, lambda: store.persist_ops_lifecycle(RT, cast(Any, None)))
        expect(_state(store) == before, "single writes", "a refused single write changed stored state")


def check_failure_mid_commit_changes_nothing(factory: StoreFactory) -> None:
    """When the storage fails while writing the last row of a commit, the error is a store
    error and none of the commit's earlier writes are visible, then or after reopen."""
    with fresh(factory) as backend:
        if CAP_WRITE_FAILURE not in backend.capabilities:
            raise NotApplicable("backend cannot fail a write in the middle of a commit")
        with opened(backend) as store:
            _seed(store)
            before = _state(store)
            with backend.fail_writes_to(RT, "poison"):
                expect_error(
                    "atomic_apply",
                    StoreError,
                    lambda: store.atomic_apply(
                        RT,
                        session_snapshot=b"snap-2",
                        receipt=receipt("run-1", 2, "w", "poison"),
                        rows=[row("w", "1"), row("x", "2"), row("poison", "1")],
                    ),
                )
                expect_error(
                    "commit_machine_lifecycle",
                    StoreError,
                    lambda: store.commit_machine_lifecycle(RT, b"life-2", [row("z", "2"), row("poison", "1")]),
                )
            expect(_state(store) == before, "after failure", "a commit that failed midway left partial writes")
            expect(store.load_boundary_receipt(RT, "run-1", 2) is None, "after failure", "the failed receipt is stored")
            store.atomic_apply(RT, session_snapshot=b"snap-3", receipt=receipt("run-1", 2, "poison"), rows=[])
            expect(store.load_session_snapshot(RT) == b"snap-3", "retry", "the store did not recover after a failure")
        with opened(backend) as store:
            expect(store.load_session_snapshot(RT) == b"snap-3", "reopen", "state after a failure did not persist")
            expect("w" not in as_dict(store.load_input_states(RT)), "reopen", "a failed commit's row appeared")
