"""scripts/ensure_browser.sh: a no-op when Chromium is there, a loud failure when it cannot help."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_browser.sh"
BASH = shutil.which("bash") or "/bin/bash"


def test_does_nothing_when_chromium_is_installed(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    done = subprocess.run(
        [BASH, str(SCRIPT)], env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_fails_loudly_without_chromium_and_without_apt(tmp_path: Path) -> None:
    done = subprocess.run(
        [BASH, str(SCRIPT)], env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert "chromium is not installed and apt-get is not available" in done.stderr
