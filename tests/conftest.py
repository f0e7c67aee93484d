"""Suite-wide options: ``--asyncio-hygiene`` (:mod:`tests.asyncio_hygiene`)."""

from __future__ import annotations

from tests.asyncio_hygiene import _asyncio_hygiene, pytest_addoption, pytest_configure

__all__ = ["_asyncio_hygiene", "pytest_addoption", "pytest_configure"]
