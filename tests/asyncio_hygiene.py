"""A pytest plugin (loaded by ``tests/conftest.py``, or with ``-p tests.asyncio_hygiene``).

``--asyncio-hygiene`` (used by ``./run test`` for the asyncio runtime tests, under
``python -X dev`` with ``PYTHONASYNCIODEBUG=1``): a test fails when, by its end (after a garbage
collection), asyncio reported a task destroyed while still pending, a task or future whose
exception was never retrieved, or a coroutine that was never awaited.
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator

import pytest

ASYNCIO_PROBLEMS = (
    "Task was destroyed but it is pending",
    "exception was never retrieved",
    "was never awaited",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--asyncio-hygiene",
        action="store_true",
        default=False,
        help="fail a test after which asyncio reported a task destroyed while pending, an exception "
        "never retrieved or a coroutine never awaited (run under python -X dev, PYTHONASYNCIODEBUG=1)",
    )


class _AsyncioProblems(logging.Handler):
    """Collects what asyncio logs about abandoned tasks and futures."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(problem in message for problem in ASYNCIO_PROBLEMS):
            self.found.append(message.splitlines()[0])


_problems = _AsyncioProblems()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--asyncio-hygiene"):
        logging.getLogger("asyncio").addHandler(_problems)


@pytest.fixture(autouse=True)
def _asyncio_hygiene(request: pytest.FixtureRequest) -> Iterator[None]:
    if not request.config.getoption("--asyncio-hygiene"):
        yield
        return
    before = len(_problems.found)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
        gc.collect()
    found = _problems.found[before:]
    found += [str(w.message) for w in caught if any(p in str(w.message) for p in ASYNCIO_PROBLEMS)]
    if found:
        pytest.fail("asyncio hygiene: " + " | ".join(found[:3]), pytrace=False)
