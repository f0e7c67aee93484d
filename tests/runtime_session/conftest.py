"""Fixtures of the session runtime tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime_session.disks import Disk


@pytest.fixture(params=["memory", "sqlite"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    """A :class:`Disk` of each kind (in memory, a SQLite file under ``tmp_path``), closed after."""
    d = Disk(request.param, tmp_path / "runtime.sqlite")
    yield d
    d.close()
