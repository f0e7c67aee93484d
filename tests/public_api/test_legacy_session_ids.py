"""Sessions stored under ids that only earlier releases accepted (any non-empty UTF-8 string:
a newline or a tab in it, or longer than ``MAX_SESSION_ID_BYTES``) stay readable, recoverable
and runnable: the stores take every non-empty UTF-8 runtime id, ``MeerkatMachine`` applies the
strict session-id rules to new sessions only, and the ``meerkat-runtime`` commands name such
sessions as they are stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meerkat_runtime import MeerkatMachine, ScriptedExecutor, SqliteRuntimeStore
from meerkat_runtime.cli.main import main
from meerkat_runtime.session import machine as machine_module
from meerkat_runtime.store import validation
from meerkat_runtime.vocab.errors import StoreError, ValidationFailed
from meerkat_runtime.vocab.ids import MAX_SESSION_ID_BYTES, LogicalRuntimeId, SessionId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import InputLifecycleState

from tests.runtime_session.helpers import make_prompt, run

NEWLINE = "bad\nid"
TAB = "tab\tid"
LONG = "x" * 2000
LEGACY = {NEWLINE: "in-newline", TAB: "in-tab", LONG: "in-long"}
"""Each legacy session id and the id of the input queued in it."""


def earlier_release_rule(session_id: SessionId | str) -> LogicalRuntimeId:
    """How releases before the strict rules named a session's runtime id: any non-empty str."""
    assert isinstance(session_id, str) and session_id
    return canonical_runtime_id(session_id)


def earlier_release_store_rule(runtime_id: object, error: type[StoreError]) -> str:
    """The runtime-id check of the stores of those releases: any non-empty UTF-8 str."""
    assert isinstance(runtime_id, str) and runtime_id
    runtime_id.encode("utf-8")
    return runtime_id


@pytest.fixture
def legacy_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store written as an earlier release wrote it (its machine's and its store's id
    rules in place): sessions ``ok`` and the three legacy ids registered, each with one queued
    input."""
    return written_by_earlier_release(tmp_path / "legacy.sqlite", monkeypatch, {"ok": "in-ok", **LEGACY})


def written_by_earlier_release(path: Path, monkeypatch: pytest.MonkeyPatch, inputs: dict[str, str]) -> Path:
    """A SQLite store at ``path`` written with an earlier release's id rules: each session of
    ``inputs`` (session id → input id) registered, in order, with one queued input."""

    async def write() -> None:
        async with MeerkatMachine.persistent(path) as machine:
            for session_id, input_id in inputs.items():
                await machine.register_session(session_id)
                await machine.accept_input(session_id, make_prompt(input_id=input_id))

    with monkeypatch.context() as patched:
        patched.setattr(machine_module, "session_runtime_id", earlier_release_rule)
        patched.setattr(validation, "check_runtime_id", earlier_release_store_rule)
        run(write())
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_reports_a_store_with_legacy_ids_ok(legacy_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["check", str(legacy_store)], capsys)
    assert (code, err) == (0, ""), out
    assert "sessions: 4 diagnosed" in out
    assert "PROBLEM" not in out and out.rstrip().endswith("OK: no damage found")


def test_sessions_lists_legacy_ids_one_row_each(legacy_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["sessions", str(legacy_store)], capsys)
    assert (code, err) == (0, "")
    assert "PROBLEM" not in out
    lines = out.splitlines()
    assert lines[-1] == "4 session(s)"
    rows = lines[1:-1]
    assert len(rows) == 4  # a newline in an id does not split its row
    assert rows[0].startswith(repr(NEWLINE)) and rows[2].startswith(repr(TAB))
    assert any(row.startswith(LONG + " ") for row in rows)
    assert all("queued=1" in row for row in rows)
    code, out, _ = cli(["sessions", "--json", str(legacy_store)], capsys)
    listed = [s["session_id"] for s in json.loads(out)["sessions"]]
    assert code == 0 and sorted(listed) == sorted(["ok", *LEGACY])


@pytest.mark.parametrize("session_id", list(LEGACY), ids=["newline", "tab", "long"])
def test_inputs_show_and_quarantine_take_a_legacy_id(
    legacy_store: Path, capsys: pytest.CaptureFixture[str], session_id: str
) -> None:
    input_id = LEGACY[session_id]
    code, out, err = cli(["inputs", str(legacy_store), session_id], capsys)
    assert (code, err) == (0, "")
    assert input_id in out and "queued" in out
    code, out, err = cli(["show", str(legacy_store), input_id], capsys)  # reads every session
    assert (code, err) == (0, "")
    assert out.startswith(f"input {input_id} of session {session_id!r}")
    code, out, err = cli(["show", str(legacy_store), "in-ok", "--session", "ok"], capsys)
    assert (code, err) == (0, "") and "in-ok" in out
    code, out, err = cli(["quarantine", str(legacy_store), session_id, input_id, "--reason", "test"], capsys)
    assert (code, err) == (0, ""), out
    assert f"moved input {input_id!r}" in out
    code, out, _ = cli(["inputs", str(legacy_store), session_id], capsys)
    assert code == 0 and "1 quarantined" in out


def test_the_machine_recovers_and_runs_a_legacy_session(legacy_store: Path) -> None:
    async def body() -> None:
        async with MeerkatMachine.persistent(legacy_store) as machine:
            for session_id, input_id in LEGACY.items():
                assert await machine.register_session_with_executor(session_id, ScriptedExecutor())
                assert await machine.contains_session(session_id)
                await machine.settle(session_id)
                view = await machine.input_state(session_id, input_id)
                assert view is not None and view.current_state is InputLifecycleState.CONSUMED, view
                await machine.accept_input(session_id, make_prompt(input_id=f"{input_id}-again"))
                await machine.settle(session_id)
                again = await machine.input_state(session_id, f"{input_id}-again")
                assert again is not None and again.current_state is InputLifecycleState.CONSUMED, again
                await machine.unregister_session(session_id)
                assert not await machine.contains_session(session_id)

    run(body())


@pytest.mark.parametrize(
    "session_id",
    ["new\nid", "new\tid", "y" * (MAX_SESSION_ID_BYTES + 1)],
    ids=["newline", "tab", "long"],
)
def test_a_new_session_under_such_an_id_is_still_refused(legacy_store: Path, session_id: str) -> None:
    async def body() -> None:
        async with MeerkatMachine.persistent(legacy_store) as machine:
            with pytest.raises(ValidationFailed, match="session id"):
                await machine.register_session(session_id)
            with pytest.raises(ValidationFailed, match="session id"):
                await machine.accept_input(session_id, make_prompt())
            assert not await machine.contains_session(NEWLINE)  # stored, not registered here
            with pytest.raises(ValidationFailed, match="session id"):
                await machine.accept_input(NEWLINE, make_prompt())  # registered nowhere: refused as new

    run(body())
    with SqliteRuntimeStore(legacy_store) as store:
        assert canonical_runtime_id(session_id) not in store.list_runtimes()


LOOKALIKES = {"x": "in-x", " x": "in-lead", "x ": "in-trail", "\u00e9": "in-nfc", "e\u0301": "in-nfd"}
"""Session ids that look alike: only ``"x"`` and ``"\u00e9"`` (NFC) are new ids today; an earlier
release also registered the others (whitespace at an end, NFD) as sessions of their own."""


@pytest.fixture
def lookalike_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return written_by_earlier_release(tmp_path / "lookalike.sqlite", monkeypatch, LOOKALIKES)


def test_sessions_shows_lookalike_ids_apart(lookalike_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["sessions", str(lookalike_store)], capsys)
    assert (code, err) == (0, "")
    cells = [line.split("  ")[0] for line in out.splitlines()[1:-1]]
    assert sorted(cells) == sorted(["x", "' x'", "'x '", "\u00e9", "'e\\u0301'"]), cells
    for session_id, input_id in LOOKALIKES.items():  # each is reached by its own spelling
        code, out, err = cli(["inputs", str(lookalike_store), session_id], capsys)
        assert (code, err) == (0, "") and input_id in out
        assert all(other not in out for other in LOOKALIKES.values() if other != input_id)


def test_lookalike_ids_stored_earlier_still_register_but_new_ones_are_refused(lookalike_store: Path) -> None:
    async def body() -> None:
        async with MeerkatMachine.persistent(lookalike_store) as machine:
            for session_id, input_id in LOOKALIKES.items():
                assert await machine.register_session_with_executor(session_id, ScriptedExecutor())
                await machine.settle(session_id)
                view = await machine.input_state(session_id, input_id)
                assert view is not None and view.current_state is InputLifecycleState.CONSUMED, view
            for session_id, problem in (
                (" y", "starts with whitespace"),
                ("y ", "ends with whitespace"),
                ("o\u0301", "not in Unicode NFC form"),
            ):
                with pytest.raises(ValidationFailed, match=problem):
                    await machine.register_session(session_id)

    run(body())
