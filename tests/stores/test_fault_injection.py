"""FaultInjectingStore: which calls fail, with what error, and that nothing is written."""

from __future__ import annotations

import contextlib
import threading

import pytest
from meerkat_conformance.stores.suite import MemoryBackend, StoreBackend, run_store_conformance
from meerkat_runtime.store.faults import ALL_METHODS, INJECTED, FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import ReadFailed, WriteFailed, WriteOutcomeUnknown

RT = "rt:session:faults"


def _store() -> tuple[FaultInjectingStore, InMemoryRuntimeStore]:
    inner = InMemoryRuntimeStore()
    return FaultInjectingStore(inner), inner


def _write(store: RuntimeStore, n: int) -> None:
    store.persist_input_state(RT, InputRow(f"in-{n}", b"x"))


def test_it_is_a_runtime_store() -> None:
    assert isinstance(_store()[0], RuntimeStore)


def test_fail_next_fails_only_the_next_call_and_writes_nothing() -> None:
    store, inner = _store()
    store.fail_next("persist_input_state")
    with pytest.raises(WriteFailed) as info:
        _write(store, 1)
    assert info.value.runtime_id == RT
    assert info.value.detail.startswith(INJECTED)
    assert "persist_input_state call #1" in info.value.detail
    assert inner.load_input_states(RT) == []
    _write(store, 2)
    assert [r.input_id for r in inner.load_input_states(RT)] == ["in-2"]


def test_fail_next_with_a_count() -> None:
    store, inner = _store()
    store.fail_next("append_ops_record", count=2)
    outcomes = []
    for n in range(4):
        try:
            store.append_ops_record(RT, str(n).encode())
            outcomes.append("ok")
        except WriteFailed:
            outcomes.append("failed")
    assert outcomes == ["failed", "failed", "ok", "ok"]
    loaded = inner.load_ops_lifecycle(RT)
    assert loaded is not None and loaded.appended == (b"2", b"3")


def test_fail_call_fails_exactly_the_nth_call_of_that_method() -> None:
    store, _ = _store()
    store.fail_call("persist_input_state", 3)
    store.load_input_states(RT)  # other methods do not count towards it
    outcomes = []
    for n in range(5):
        try:
            _write(store, n)
            outcomes.append("ok")
        except WriteFailed:
            outcomes.append("failed")
    assert outcomes == ["ok", "ok", "failed", "ok", "ok"]
    assert store.rules() == []


def test_fail_always_until_removed_and_reads_fail_with_read_failed() -> None:
    store, _ = _store()
    rule = store.fail_always("load_session_snapshot")
    for _ in range(3):
        with pytest.raises(ReadFailed, match="injected fault"):
            store.load_session_snapshot(RT)
    store.remove(rule)
    assert store.load_session_snapshot(RT) is None
    assert store.injected("load_session_snapshot") == 3


def test_any_method_rule_and_clear() -> None:
    store, _ = _store()
    store.fail_always()
    with pytest.raises(WriteFailed):
        store.commit_machine_lifecycle(RT, b"l", [])
    with pytest.raises(ReadFailed):
        store.load_machine_lifecycle(RT)
    store.clear()
    assert store.load_machine_lifecycle(RT) is None


def test_clear_by_method_keeps_other_rules() -> None:
    store, _ = _store()
    store.fail_always("load_input_states")
    store.fail_always("load_machine_lifecycle")
    store.clear("load_input_states")
    assert store.load_input_states(RT) == []
    with pytest.raises(ReadFailed):
        store.load_machine_lifecycle(RT)


def test_after_write_rule_lets_the_write_land_but_reports_failure() -> None:
    store, inner = _store()
    store.fail_next("atomic_apply", after_write=True)
    receipt = BoundaryReceipt("run", 1, BoundaryKind.IMMEDIATE, ("a",))
    with pytest.raises(WriteFailed, match="after the write reached the store"):
        store.atomic_apply(RT, session_snapshot=b"s", receipt=receipt, rows=[InputRow("a", b"1")])
    assert inner.load_boundary_receipt(RT, "run", 1) == receipt
    assert inner.load_session_snapshot(RT) == b"s"


def test_lost_write_rule_reports_an_unknown_outcome_without_writing() -> None:
    store, inner = _store()
    store.fail_next("atomic_apply", lost_write=True)
    receipt = BoundaryReceipt("run", 1, BoundaryKind.IMMEDIATE, ("a",))
    with pytest.raises(WriteOutcomeUnknown, match="did not land"):
        store.atomic_apply(RT, session_snapshot=b"s", receipt=receipt, rows=[InputRow("a", b"1")])
    assert inner.load_boundary_receipt(RT, "run", 1) is None
    assert inner.load_session_snapshot(RT) is None
    assert store.load_session_snapshot(RT) is None  # reads still work
    with pytest.raises(ValueError, match="not both"):
        store.fail_next("atomic_apply", after_write=True, lost_write=True)


def test_disabling_keeps_rules_without_firing_them() -> None:
    store, _ = _store()
    store.fail_always("load_input_states")
    store.enabled = False
    assert store.load_input_states(RT) == []
    store.enabled = True
    with pytest.raises(ReadFailed):
        store.load_input_states(RT)


def test_closed_mode_fails_every_method_with_the_right_error() -> None:
    store, inner = _store()
    store.closed_mode = True
    with pytest.raises(WriteFailed, match="store is closed"):
        store.delete_ops_lifecycle(RT)
    with pytest.raises(ReadFailed, match="store is closed"):
        store.load_ops_lifecycle(RT)
    store.closed_mode = False
    store.append_ops_record(RT, b"r")
    assert inner.load_ops_lifecycle(RT) is not None


def test_every_call_is_counted_failed_or_not() -> None:
    store, _ = _store()
    store.fail_next("persist_input_state")
    for n in range(3):
        with contextlib.suppress(WriteFailed):
            _write(store, n)
    store.load_input_states(RT)
    assert store.calls("persist_input_state") == 3
    assert store.call_counts() == {"persist_input_state": 3, "load_input_states": 1}
    assert store.injected() == 1


def test_bad_configuration_is_refused() -> None:
    store, _ = _store()
    with pytest.raises(ValueError, match="unknown store method 'persist'"):
        store.fail_next("persist")
    with pytest.raises(ValueError, match="count"):
        store.fail_next("atomic_apply", count=0)
    with pytest.raises(ValueError, match="nth"):
        store.fail_call("atomic_apply", 0)
    assert len(ALL_METHODS) == 24  # 6 data writes, 12 reads, 2 repair and compaction writes, 4 ownership calls


def test_a_count_rule_fires_exactly_count_times_across_threads() -> None:
    store, inner = _store()
    store.fail_next("persist_input_state", count=10)
    failures: list[int] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(20):
            try:
                _write(store, t * 100 + i)
            except WriteFailed:
                with lock:
                    failures.append(t)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(failures) == 10
    assert len(inner.load_input_states(RT)) == 150
    assert store.calls("persist_input_state") == 160


class _FaultBackend(MemoryBackend):
    name = "faults(memory)"

    def open(self) -> RuntimeStore:
        return FaultInjectingStore(super().open())


def test_the_wrapper_without_rules_passes_the_store_conformance_suite() -> None:
    def factory() -> StoreBackend:
        return _FaultBackend()

    report = run_store_conformance(factory)
    assert report.ok, report.render()
