"""A Python script run as a real child process that prints one line when it reaches the point
to crash at, and is then SIGKILLed there (no close, no lease release, nothing flushed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def first_line_then_kill(script: str, path: Path) -> str:
    """Run ``script`` with ``path`` as its argument, read its first line of stdout, SIGKILL it
    and return that line (the child must have been killed, not have exited)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"the child exited on its own ({child.returncode}) after {line!r}"
    return line
