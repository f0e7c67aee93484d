"""Session ids: a ``str``, non-empty, at most ``MAX_SESSION_ID_BYTES`` UTF-8 bytes, without
control characters (C0 and DEL) or lone surrogates, and without the runtime-id prefix. A bad id
is refused with a one-line ``ValidationFailed`` at the call, before the store is asked; a store
called directly applies the same rules to runtime ids, so every id a machine accepts the store
accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime import InMemoryRuntimeStore, MeerkatMachine, ScriptedExecutor, SqliteRuntimeStore
from meerkat_runtime.session.machine import session_runtime_id
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.lease import Fence
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.errors import ReadFailed, ValidationFailed, WriteFailed
from meerkat_runtime.vocab.ids import (
    CANONICAL_RUNTIME_PREFIX,
    MAX_RUNTIME_ID_BYTES,
    MAX_SESSION_ID_BYTES,
    canonical_runtime_id,
)

from tests.runtime_session.helpers import make_prompt, run

BAD_IDS: list[tuple[Any, str]] = [
    (None, "must be a str, got NoneType"),
    (123, "must be a str, got int"),
    (b"s", "must be a str, got bytes"),
    ("", "must not be empty"),
    ("a\x00b", r"control character \(U\+0000 at index 1\)"),
    ("a\nb", r"control character \(U\+000A at index 1\)"),
    ("a\tb", r"control character \(U\+0009"),
    ("\x7f", r"control character \(U\+007F"),
    ("a\ud800", "lone surrogate"),
    ("a" * (MAX_SESSION_ID_BYTES + 1), f"is {MAX_SESSION_ID_BYTES + 1} UTF-8 bytes long; at most 1024"),
    ("\u00e9" * (MAX_SESSION_ID_BYTES // 2 + 1), "UTF-8 bytes long; at most 1024"),
    ("x" * (20 << 20), "at most 1024"),
]


@pytest.mark.parametrize(("session_id", "message"), BAD_IDS, ids=lambda v: repr(v)[:24])
def test_a_bad_session_id_is_refused_at_the_call_and_nothing_is_stored(session_id: Any, message: str) -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        async with MeerkatMachine.persistent(store) as machine:
            for call in (
                lambda: machine.register_session_with_executor(session_id, ScriptedExecutor()),
                lambda: machine.register_session(session_id),
                lambda: machine.accept_input(session_id, make_prompt()),
                lambda: machine.contains_session(session_id),
            ):
                with pytest.raises(ValidationFailed, match=message) as info:
                    await call()
                text = str(info.value)
                assert "\n" not in text and len(text) < 300  # one short line, even for a 20 MiB id
            assert store.call_counts() == {}  # refused before the store was asked anything
            assert store.list_runtimes() == []

    run(body())


@pytest.mark.parametrize(
    "session_id",
    ["s", "a" * MAX_SESSION_ID_BYTES, "\u00e9" * (MAX_SESSION_ID_BYTES // 2), "tab-free \u2028 text", "\U0001f600"],
    ids=lambda v: repr(v)[:24],
)
def test_every_id_the_machine_accepts_the_sqlite_store_accepts(tmp_path: Path, session_id: str) -> None:
    async def body() -> None:
        async with MeerkatMachine.persistent(tmp_path / "store.sqlite") as machine:
            assert await machine.register_session_with_executor(session_id, ScriptedExecutor())
            await machine.accept_input(session_id, make_prompt())
            store = machine.store
            assert store is not None and store.list_runtimes() == [session_runtime_id(session_id)]

    run(body())


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_a_store_called_directly_applies_the_same_rules_to_runtime_ids(tmp_path: Path, store_kind: str) -> None:
    store = InMemoryRuntimeStore() if store_kind == "memory" else SqliteRuntimeStore(tmp_path / "s.sqlite")
    longest = CANONICAL_RUNTIME_PREFIX + "a" * MAX_SESSION_ID_BYTES
    assert len(longest.encode()) == MAX_RUNTIME_ID_BYTES
    lease = store.claim_lease(longest, "owner", 10.0)
    store.persist_input_state(longest, InputRow("i", b"x"), fence=lease.fence)
    cases: list[tuple[Any, str]] = [
        (CANONICAL_RUNTIME_PREFIX + "a\nb", "control character"),
        ("rt\x00", "control character"),
        (longest + "a", f"at most {MAX_RUNTIME_ID_BYTES}"),
        ("", "must not be empty"),
        (None, "non-empty UTF-8 string"),
    ]
    for runtime_id, message in cases:
        with pytest.raises(WriteFailed, match=message) as info:
            store.claim_lease(runtime_id, "owner", 10.0)
        assert "\n" not in str(info.value)
        with pytest.raises(WriteFailed, match=message):
            store.persist_input_state(runtime_id, InputRow("i", b"x"), fence=Fence("owner", 1))
        with pytest.raises(ReadFailed, match=message):
            store.load_input_states(runtime_id)
    assert store.list_runtimes() == [longest]
    store.close()


@pytest.mark.parametrize("session_id", [None, 123, b"s"], ids=repr)
def test_the_canonical_runtime_id_helper_refuses_a_non_str(session_id: Any) -> None:
    with pytest.raises(ValueError, match="session id must be a str, got"):
        canonical_runtime_id(session_id)
    assert canonical_runtime_id("s") == canonical_runtime_id("rt:session:s") == "rt:session:s"
