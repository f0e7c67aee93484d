"""InMemoryRuntimeStore specifics (storage sharing between handles), and id checks both stores share."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import WriteFailed

RT = "rt:session:memory"


def test_separate_stores_do_not_share_data() -> None:
    first, second = InMemoryRuntimeStore(), InMemoryRuntimeStore()
    first.persist_input_state(RT, InputRow("a", b"1"))
    assert second.load_input_states(RT) == []


def test_handles_on_one_storage_model_a_restart() -> None:
    storage = MemoryStorage()
    with InMemoryRuntimeStore(storage) as before:
        before.commit_machine_lifecycle(RT, b"life", [InputRow("a", b"1")])
    assert before.closed
    after = InMemoryRuntimeStore(storage)
    assert after.load_machine_lifecycle(RT) == b"life"
    assert after.load_input_states(RT) == [InputRow("a", b"1")]


def test_duplicate_receipt_is_rejected_not_overwritten() -> None:
    store = InMemoryRuntimeStore()
    receipt = BoundaryReceipt("run", 1, BoundaryKind.RUN_START, ("a",))
    store.atomic_apply(RT, session_snapshot=b"one", receipt=receipt, rows=[])
    other = BoundaryReceipt("run", 1, BoundaryKind.RUN_START, ("b",))
    try:
        store.atomic_apply(RT, session_snapshot=b"two", receipt=other, rows=[])
    except WriteFailed as exc:
        assert "duplicate boundary receipt" in exc.detail
    else:
        raise AssertionError("a duplicate receipt was accepted")
    assert store.load_boundary_receipt(RT, "run", 1) == receipt
    assert store.load_session_snapshot(RT) == b"one"


def _unencodable_calls(store: RuntimeStore) -> list[Callable[[], object]]:
    bad_receipt = BoundaryReceipt("\ud800", 1, BoundaryKind.IMMEDIATE, ())
    return [
        lambda: store.persist_input_state(RT, InputRow("bad-\ud800", b"1")),
        lambda: store.persist_input_state("rt:session:\udfff", InputRow("a", b"1")),
        lambda: store.atomic_apply(RT, session_snapshot=None, receipt=bad_receipt, rows=[]),
    ]


@pytest.mark.parametrize(
    "make", [InMemoryRuntimeStore, lambda: SqliteRuntimeStore(":memory:")], ids=["memory", "sqlite"]
)
def test_ids_that_cannot_be_encoded_are_refused(make: Callable[[], RuntimeStore]) -> None:
    store = make()
    for call in _unencodable_calls(store):
        with pytest.raises(WriteFailed, match="UTF-8"):
            call()
    assert store.load_input_states(RT) == []
    store.close()
