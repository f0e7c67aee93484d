"""The runtime example of README.md, extracted exactly as printed: it passes ``mypy --strict``
and runs, printing what its comments say, and leaves nothing open."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Using the runtime in an application"


def readme_example() -> str:
    """The first Python block of the README's runtime section, byte for byte."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the runtime section of README.md has no python example"
    return found.group(1)


def test_the_example_imports_only_the_public_package() -> None:
    imports = [line for line in readme_example().splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "import asyncio",
        "from meerkat_runtime import CoreApplyOutput, MeerkatMachine, RunPrimitive, RunResult, prompt, success_output",
    ]


def test_the_example_passes_mypy_strict_and_runs(tmp_path: Path) -> None:
    example = tmp_path / "example.py"
    example.write_text(readme_example())
    # The package as pip installs it (an editable install's import hook is invisible to mypy).
    env = {**os.environ, "MYPYPATH": str(ROOT / "impl")}
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"), str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    first, second = ran.stdout.splitlines()
    assert first.startswith("Accepted(") and "state=<InputLifecycleState.QUEUED" in first, first
    assert second.startswith("Completed(result=RunResult(text='echo: hello'"), second
    # The machine closed the store it opened (no connection left: the write-ahead log was
    # checkpointed away on the last close), and the file holds the input.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("runtime")) == ["runtime.sqlite"]
    db = sqlite3.connect(f"file:{tmp_path / 'runtime.sqlite'}?mode=ro", uri=True)
    try:
        (rows,) = db.execute("SELECT count(*) FROM runtime_input_states").fetchone()
    finally:
        db.close()
    assert rows == 1
