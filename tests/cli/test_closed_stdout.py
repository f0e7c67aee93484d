"""A reader that went away before the output (``| head``): every command ends quietly (no
traceback, no "Exception ignored" at exit) with exit status 1, as ``meerkat-runtime`` does. The
real commands in subprocesses whose standard output is a pipe nobody reads: its read end is closed
before the command starts, so the first write fails, every time."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.memory import InMemoryRuntimeStore

from tests.cli.commands import ROOT, command, rt
from tests.cli.runtime_files import Written


def _with_closed_stdout(argv: list[str]) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the command's first write fails
    try:
        return subprocess.run(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)


def _quiet_exit_1(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stderr[-3000:]
    for needle in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert needle not in done.stderr, done.stderr[-3000:]


def _event_log(folder: Path) -> Path:
    async def body() -> None:
        log = EventLog(folder)
        machine = MeerkatMachine.persistent(InMemoryRuntimeStore())
        machine.events.subscribe(log)
        await machine.register_session("s")
        await machine.close()
        log.close()

    asyncio.run(body())
    return folder


@pytest.mark.parametrize(
    "argv",
    [
        [*command("meerkat-verify"), "--machine", "ops", "--no-prove", "--workers", "1", "--json"],
        [*command("meerkat-verify"), "--machine", "ops", "--no-prove", "--workers", "1"],
        [
            *command("-m meerkat_model.proofs"),
            *("--machine", "ops", "--ids", "2", "--depth", "2", "--no-reachability", "--no-tables", "--json"),
        ],
        [
            *command("meerkat-conformance"),
            *("--profile", "fast", "--machine", "ops", "--max-examples", "1", "--steps", "2"),
            *("--replay-profile", "none", "--disk", "memory", "--search-disk", "memory"),
        ],
    ],
    ids=["verify-json", "verify", "proofs-json", "conformance"],
)
def test_a_closed_stdout_ends_the_command_quietly(argv: list[str]) -> None:
    _quiet_exit_1(_with_closed_stdout(argv))


def test_check_trace_with_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    folder = _event_log(tmp_path / "events")
    for extra in ([], ["--json"]):
        _quiet_exit_1(_with_closed_stdout([*command("meerkat-conformance"), "check-trace", *extra, str(folder)]))


def test_meerkat_runtime_does_the_same(written: Written) -> None:
    _quiet_exit_1(_with_closed_stdout(rt("sessions", "--json", str(written.path))))
