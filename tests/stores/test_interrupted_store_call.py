"""A store call interrupted between entering the store's call gate and handing its write over
(a KeyboardInterrupt lands between two statements: Ctrl-C) must not leave the gate entered:
``close`` waits for the calls in flight, and waited for ever on one that was never completed
(a benchmark interrupted with Ctrl-C then hung in its ``finally``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from meerkat_runtime.store.group_commit import GroupCommitter
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore


def _closes(store: SqliteRuntimeStore) -> bool:
    """Whether ``close`` returns (given 20 s: a leaked call makes it wait for ever)."""
    closer = threading.Thread(target=store.close, daemon=True)
    closer.start()
    closer.join(20)
    return not closer.is_alive()


@pytest.mark.parametrize("where", ["try_lead", "submit"])
def test_a_write_interrupted_before_its_hand_over_leaves_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    store = SqliteRuntimeStore(tmp_path / "s.db")
    store.persist_input_state("rt-1", InputRow("before", b"x"))

    def interrupted(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt

    if where == "submit":  # the writer is busy: the write would be queued
        monkeypatch.setattr(GroupCommitter, "try_lead", lambda self: False)
    monkeypatch.setattr(GroupCommitter, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.persist_input_state("rt-1", InputRow("interrupted", b"y"))
    monkeypatch.undo()
    assert _closes(store), "close() waits for a call that was interrupted before its hand-over"
    with SqliteRuntimeStore(tmp_path / "s.db") as again:
        assert [row.input_id for row in again.load_input_states("rt-1")] == ["before"]
