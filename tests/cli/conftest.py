"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from tests.cli.runtime_files import Written, write_sessions


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """A store file with the sessions of :func:`write_sessions`, written once per test module
    (tests that change it work on a :func:`~tests.cli.runtime_files.copy_file`)."""
    return write_sessions(tmp_path_factory.mktemp("written") / "store.db")
