"""``python -m meerkat_runtime`` is the ``meerkat-runtime`` command: the same help, the same
output and the same exit statuses."""

from __future__ import annotations

from pathlib import Path

from meerkat_runtime.store.sqlite import SqliteRuntimeStore

from tests.cli.commands import command, run


def _same(args: list[str]) -> int:
    script = run([*command("meerkat-runtime"), *args])
    module = run([*command("-m meerkat_runtime"), *args])
    assert (module.returncode, module.stdout, module.stderr) == (script.returncode, script.stdout, script.stderr)
    return module.returncode


def test_python_m_meerkat_runtime_runs_the_command(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    SqliteRuntimeStore(path).close()
    assert _same(["--help"]) == 0
    assert _same(["sessions", str(path)]) == 0
    assert _same(["sessions", str(tmp_path / "missing.sqlite")]) == 2
    done = run([*command("-m meerkat_runtime"), "--help"])
    assert done.stdout.startswith("usage: meerkat-runtime ") and "quarantine" in done.stdout
