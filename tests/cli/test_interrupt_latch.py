"""A Ctrl-C that lands in a finalizer (Python reports it as "Exception ignored" and carries on) is
not lost by the long-running commands: it is latched and raised again at the next check point."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from typing import Any

import pytest
from meerkat_model.cli.interrupts import latched_interrupts, raise_if_interrupted


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


def _loop_task_takes_the_interrupt() -> None:
    """Ctrl-C arrives inside a task of an event loop: the interrupt propagates out of the
    loop, the task keeps it as its exception, and the loop and task are abandoned."""

    async def work() -> None:
        signal.raise_signal(signal.SIGINT)

    loop = asyncio.new_event_loop()
    task = loop.create_task(work())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(loop.create_future())  # the caller waits for something else
    assert task.done()
    loop.close()


def _never_retrieved(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "never retrieved" in r.getMessage()]


def test_an_interrupt_left_in_an_event_loop_task_is_not_reported_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"), latched_interrupts():
        _loop_task_takes_the_interrupt()
    assert _never_retrieved(caplog.records) == []


def test_without_the_latch_the_abandoned_task_is_reported_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _loop_task_takes_the_interrupt()
        gc.collect()
    assert len(_never_retrieved(caplog.records)) == 1


def test_a_benchmark_whose_finalizer_swallowed_ctrl_c_ends_as_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meerkat_model.cli.usage import EXIT_INTERRUPTED, interruptible

    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def main() -> int:
        _finalizer_takes_the_interrupt()
        print("row measured before")
        return 0

    assert interruptible(main, "bench_x.py") == EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    assert out == "row measured before\n" and err.startswith("bench_x.py: interrupted")
    assert reported == []


def test_asyncio_reports_without_an_interrupt_are_kept_whatever_their_exc_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio logs some reports with ``exc_info=False``: the filter keeps them (and every report
    not caused by an interrupt) and drops only those of a ``KeyboardInterrupt``."""
    log = logging.getLogger("asyncio")
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = sys.exc_info()
    with caplog.at_level(logging.ERROR, logger="asyncio"), latched_interrupts():
        log.error("no exc_info", exc_info=False)
        log.error("another error", exc_info=(ValueError, ValueError("x"), None))
        log.error("an interrupt", exc_info=interrupted)
    assert [r.getMessage() for r in caplog.records] == ["no exc_info", "another error"]
