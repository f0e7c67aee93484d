"""Explorations shared by the session-model tests (each profile is explored once per run)."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_model.session import SessionMachine
from meerkat_model.verifier.explore import explore

from .profiles import session_bounds


@pytest.fixture(scope="session")
def ci_exploration() -> Any:
    return explore(SessionMachine(session_bounds("ci")))


@pytest.fixture(scope="session")
def tiny_exploration() -> Any:
    return explore(SessionMachine(session_bounds("tiny")))
