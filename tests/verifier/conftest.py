"""Fixtures of the verifier tests."""

from __future__ import annotations

import pytest
from meerkat_model import catalog

from tests.verifier.toys import SMALL_OPS, LeakyCancel


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a machine with a known violation (:class:`LeakyCancel`), put in the catalogue
    for every profile for the test's duration."""
    monkeypatch.setitem(catalog.MACHINES, "leaky", LeakyCancel)
    for profile in catalog.PROFILES:
        monkeypatch.setitem(catalog.PROFILES[profile], "leaky", SMALL_OPS)
    return "leaky"
