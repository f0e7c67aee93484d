"""A Ctrl-C that lands in a finalizer (Python reports it as "Exception ignored" and carries on) is
not lost by the long-running commands: it is latched and raised again at the next check point."""

from __future__ import annotations

import signal
import sys
from typing import Any

import pytest
from meerkat_conformance.cli.interrupts import latched_interrupts, raise_if_interrupted


class _TakesTheInterrupt:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C arrives while the finalizer runs


def _finalizer_takes_the_interrupt() -> None:
    doomed = _TakesTheInterrupt()
    del doomed


def test_an_interrupt_swallowed_by_a_finalizer_is_raised_at_the_next_check_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with latched_interrupts():
        _finalizer_takes_the_interrupt()
        assert reported == []  # no "Exception ignored in ..." report
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
    raise_if_interrupted()  # the latch is cleared when the block ends
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sys.unraisablehook == reported.append


def test_without_the_latch_the_same_interrupt_is_reported_and_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    _finalizer_takes_the_interrupt()
    assert [r.exc_type for r in reported] == [KeyboardInterrupt]
    raise_if_interrupted()  # nothing latched: the program would carry on


def test_an_interrupt_outside_a_finalizer_raises_at_once_as_usual() -> None:
    with latched_interrupts(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
