"""The SQL stores' deferred payload check on a real SQLite file: an active row carrying ``queued``
comes back before its payload is verified (``InputRow.check``), any other row is verified as it
is read; ``verified_payload()`` fails closed on a damaged payload, and a store refuses to write
such a row back (a damaged payload is never stored under a fresh checksum)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from meerkat_runtime.store.integrity import DeferredCheck
from meerkat_runtime.store.records import InputRow, unverified_row
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.tables import INPUTS
from meerkat_runtime.vocab.errors import Corrupt, WriteFailed

from tests.stores.damage import damage_payload

RT = "rt:session:s"
FIELDS = b"\x01" * 46


def test_an_unverified_row_is_the_row_its_fields_make() -> None:
    check = DeferredCheck(INPUTS, RT)
    built = unverified_row("a", b"one", "k", 3, FIELDS, "sum", check)
    plain = InputRow("a", b"one", None, "k", 3, FIELDS, "sum", check)
    names = [f.name for f in dataclasses.fields(InputRow)]
    assert [getattr(built, n) for n in names] == [getattr(plain, n) for n in names] and built == plain
    assert hash(built) == hash(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.payload = b"two"  # type: ignore[misc]


def test_a_row_with_fields_is_returned_unverified_and_checked_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(
            RT, b"life", [InputRow("a", b"one", None, None, 1, FIELDS), InputRow("b", b"two")]
        )
        a, b = store.load_active_input_states(RT)
        assert a.check is not None and a.checksum is not None and a.verified_payload() == b"one"
        assert b.check is None and b.checksum is None  # verified as it was read
    damage_payload(path, RT, "a")
    with SqliteRuntimeStore(path) as store:
        a, b = store.load_active_input_states(RT)  # the damaged payload is not read as checked
        assert a.payload == b"one\x00"
        with pytest.raises(Corrupt, match=r"runtime_input_states\[a\].*checksum mismatch"):
            a.verified_payload()
        with pytest.raises(WriteFailed, match="read unverified"):  # never stored again under a fresh checksum
            store.persist_input_state(RT, a)
        with pytest.raises(WriteFailed, match="read unverified"):
            store.commit_machine_lifecycle(RT, b"life", [dataclasses.replace(b, payload=b"new"), a])
        assert store.scan_input_states(RT)[0].intact is False  # nothing was written
        assert store.load_input_state(RT, "b") == InputRow("b", b"two")
        with pytest.raises(Corrupt, match=r"\[a\]"):
            store.load_input_state(RT, "a")


def test_a_damaged_row_without_fields_still_fails_the_read(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteRuntimeStore(path) as store:
        store.commit_machine_lifecycle(
            RT, b"life", [InputRow("a", b"one", None, None, 1, FIELDS), InputRow("b", b"two")]
        )
    damage_payload(path, RT, "b")
    with SqliteRuntimeStore(path) as store, pytest.raises(Corrupt, match=r"\[b\]"):
        store.load_active_input_states(RT)
