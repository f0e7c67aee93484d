"""A second process opening the same runtime's ops state on one SQLite file: it is refused
(``LeaseHeld``) and every completion acknowledged to the first stays readable."""

from __future__ import annotations

from pathlib import Path

from meerkat_runtime.store.sqlite import SqliteRuntimeStore

from tests.runtime_ops.dual_writer import run_two_writers


def test_a_second_process_cannot_write_the_same_runtime(tmp_path: Path) -> None:
    path = str(tmp_path / "ops.sqlite")
    first, second = run_two_writers(["sqlite", path], lambda: SqliteRuntimeStore(path))
    assert first["opened"] and len(first["acked"]) == 10  # type: ignore[arg-type]
    assert second == {"opened": False, "error": "lease_held", "type": "LeaseHeld", "acked": {}, "errors": []}
