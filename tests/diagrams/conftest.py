"""Shared fixtures of the diagram tests: one headless Chromium per test module that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.diagrams.cdp import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium page (1280 x 900), closed after the module's tests."""
    with Browser(width=1280, height=900) as page:
        yield page
