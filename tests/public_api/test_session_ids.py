"""Session ids: a new session's id is a ``str``, non-empty, at most ``MAX_SESSION_ID_BYTES``
UTF-8 bytes, without control characters (C0 and DEL) or lone surrogates, without whitespace
at either end, in Unicode NFC form, and without the runtime-id prefix. A bad id is refused with
a one-line ``ValidationFailed`` at the call. An id only the strict rules refuse is checked
against the store on the register path (an earlier release may have stored a session under it,
see ``test_legacy_session_ids``): reads only, and nothing is stored. A store called directly
takes any non-empty UTF-8 runtime id (the rule of earlier releases), so every id a machine
accepts, or ever accepted, the store accepts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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

NOT_STORABLE_TEXT = ("", "a\ud800")
"""The bad ``str`` ids a store refuses too (the others an earlier release may have stored)."""

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
    (" x", r"starts with whitespace \(U\+0020\); strip it"),
    ("x ", r"ends with whitespace \(U\+0020\); strip it"),
    ("x\u00a0", r"ends with whitespace \(U\+00A0\)"),
    ("\u3000x", r"starts with whitespace \(U\+3000\)"),
    ("e\u0301", r"is not in Unicode NFC form \('e\\u0301' is a second spelling.*unicodedata.normalize\('NFC', id\)"),
    ("caf\u0065\u0301 au lait", "not in Unicode NFC form"),
]


@pytest.mark.parametrize(("session_id", "message"), BAD_IDS, ids=lambda v: repr(v)[:24])
def test_a_bad_session_id_is_refused_at_the_call_and_nothing_is_stored(session_id: Any, message: str) -> None:
    async def body() -> None:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        async with MeerkatMachine.persistent(store) as machine:
            calls: list[Callable[[], Awaitable[object]]] = [
                lambda: machine.register_session_with_executor(session_id, ScriptedExecutor()),
                lambda: machine.register_session(session_id),
                lambda: machine.accept_input(session_id, make_prompt()),
            ]
            storable = isinstance(session_id, str) and session_id not in NOT_STORABLE_TEXT
            if storable:
                assert not await machine.contains_session(session_id)  # not registered, nothing to refuse
            else:
                calls.append(lambda: machine.contains_session(session_id))
            for call in calls:
                with pytest.raises(ValidationFailed, match=message) as info:
                    await call()
                text = str(info.value)
                assert "\n" not in text and len(text) < 300  # one short line, even for a 20 MiB id
            if storable:  # asked whether an earlier release stored it: reads only
                assert set(store.call_counts()) <= {"load_machine_lifecycle", "load_high_water"}
                assert store.call_counts()
            else:
                assert store.call_counts() == {}  # refused before the store was asked anything
            assert store.list_runtimes() == []

    run(body())


@pytest.mark.parametrize(
    "session_id",
    [
        "s",
        "a" * MAX_SESSION_ID_BYTES,
        "\u00e9" * (MAX_SESSION_ID_BYTES // 2),
        "tab-free \u2028 text",
        "\U0001f600",
        "inner spaces stay",
        "caf\u00e9",
    ],
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
def test_a_store_called_directly_takes_any_non_empty_utf8_runtime_id(tmp_path: Path, store_kind: str) -> None:
    """The rule of earlier releases, for reads and writes: ids with control characters or longer
    than a new session's may already be stored."""
    store = InMemoryRuntimeStore() if store_kind == "memory" else SqliteRuntimeStore(tmp_path / "s.sqlite")
    longest = CANONICAL_RUNTIME_PREFIX + "a" * MAX_SESSION_ID_BYTES
    assert len(longest.encode()) == MAX_RUNTIME_ID_BYTES
    stored = [longest, longest + "a", CANONICAL_RUNTIME_PREFIX + "a\nb", "rt\x00", "x" * 5000]
    for runtime_id in stored:
        lease = store.claim_lease(runtime_id, "owner", 10.0)
        store.persist_input_state(runtime_id, InputRow("i", runtime_id.encode()), fence=lease.fence)
        assert [row.payload for row in store.load_input_states(runtime_id)] == [runtime_id.encode()]
    long_bad = "x" * 5000 + "\ud800"
    cases: list[tuple[Any, str]] = [
        ("", "must not be empty"),
        ("rt\ud800", "lone surrogate"),
        (long_bad, "lone surrogate"),
        (None, "non-empty UTF-8 string"),
        (b"rt", "non-empty UTF-8 string"),
    ]
    for runtime_id, message in cases:
        with pytest.raises(WriteFailed, match=message) as info:
            store.claim_lease(runtime_id, "owner", 10.0)
        assert "\n" not in str(info.value) and len(str(info.value)) < 300  # the id's label is cut
        with pytest.raises(WriteFailed, match=message):
            store.persist_input_state(runtime_id, InputRow("i", b"x"), fence=Fence("owner", 1))
        with pytest.raises(ReadFailed, match=message):
            store.load_input_states(runtime_id)
    assert store.list_runtimes() == sorted(stored)
    store.close()


@pytest.mark.parametrize("session_id", [None, 123, b"s"], ids=repr)
def test_the_canonical_runtime_id_helper_refuses_a_non_str(session_id: Any) -> None:
    with pytest.raises(ValueError, match="session id must be a str, got"):
        canonical_runtime_id(session_id)
    assert canonical_runtime_id("s") == canonical_runtime_id("rt:session:s") == "rt:session:s"


def test_checked_ids_are_remembered_and_bad_ones_refused_on_every_call() -> None:
    """The machine remembers the ids that passed the check (a memo bounded in size, exact
    ``str`` only): a bad id is refused on every call, a good one maps to the same runtime id."""
    from meerkat_runtime.session import machine as machine_module

    async def body() -> None:
        async with MeerkatMachine.persistent(InMemoryRuntimeStore()) as machine:
            await machine.register_session("good")
            for _ in range(2):
                await machine.accept_input("good", make_prompt())
                with pytest.raises(ValidationFailed, match="starts with whitespace"):
                    await machine.accept_input(" good", make_prompt())
            limit = machine_module._CHECKED_IDS_LIMIT
            for index in range(limit + 10):
                session_id = f"session-{index}"
                assert machine._known_runtime_id(session_id) == session_runtime_id(session_id)
                assert machine._known_runtime_id(session_id) == session_runtime_id(session_id)
            assert len(machine._checked_ids) <= limit

            class Text(str):
                pass

            assert machine._known_runtime_id(Text("good")) == session_runtime_id("good")
            assert "good" not in machine._checked_ids or machine._checked_ids["good"] == session_runtime_id("good")
            assert all(type(key) is str for key in machine._checked_ids)

    run(body())
