"""The asyncio-hygiene check that ``./run test`` applies to the asyncio runtime tests fails a
test that leaves a task pending, and passes a clean one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TESTS = textwrap.dedent(
    """
    import asyncio

    def test_leaves_a_task_pending() -> None:
        async def main() -> None:
            asyncio.get_running_loop().create_task(asyncio.sleep(10))
        loop = asyncio.new_event_loop()
        loop.run_until_complete(main())
        loop.close()

    def test_never_awaits_a_coroutine() -> None:
        async def work() -> None:
            pass
        work()

    def test_is_clean() -> None:
        asyncio.run(asyncio.sleep(0))
    """
)


def test_the_check_fails_a_leaking_test_and_passes_a_clean_one(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(TESTS)
    env = {**os.environ, "PYTHONDEVMODE": "1", "PYTHONASYNCIODEBUG": "1"}
    command = [sys.executable, "-X", "dev", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.asyncio_hygiene", "--asyncio-hygiene", "--rootdir", str(tmp_path), "-c", os.devnull]
    done = subprocess.run([*command, str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "ERROR at teardown of test_leaves_a_task_pending" in out
    assert "asyncio hygiene: Task was destroyed but it is pending" in out
    assert "ERROR at teardown of test_never_awaits_a_coroutine" in out
    assert "asyncio hygiene: coroutine" in out and "was never awaited" in out
    assert "test_is_clean" not in out and "3 passed, 2 errors" in out
