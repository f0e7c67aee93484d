"""``quiet_when_stdout_closes`` in process: only a standard output whose reader went away ends
the command quietly; a ``BrokenPipeError`` of another pipe propagates, and nothing is leaked."""

from __future__ import annotations

import os
import sys

import pytest
from meerkat_model.cli.usage import EXIT_FAILED, quiet_when_stdout_closes


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _write_to_a_pipe_nobody_reads() -> int:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        os.write(write_end, b"to a child that went away")
    finally:
        os.close(write_end)
    return 0


def test_a_broken_pipe_of_another_pipe_is_not_swallowed() -> None:
    with pytest.raises(BrokenPipeError):
        quiet_when_stdout_closes(_write_to_a_pipe_nobody_reads)


def test_a_standard_output_without_a_reader_ends_quietly_and_leaks_no_descriptor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed_stdout:
        monkeypatch.setattr(sys, "stdout", closed_stdout)
        before = _open_descriptors()

        def report() -> int:
            print("a report line")
            return 0

        assert quiet_when_stdout_closes(report) == EXIT_FAILED
        assert _open_descriptors() == before
        monkeypatch.undo()
