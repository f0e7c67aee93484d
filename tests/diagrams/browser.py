"""Loading a page in headless Chromium and reading back the DOM after its scripts ran.

Where no Chromium can be found, a page test is skipped with the reason (a developer's machine
without apt-get, say), except under CI (``CI`` set), where it fails: CI always runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def under_ci() -> bool:
    """``CI`` is set (to anything but empty, ``0`` or ``false``): the page tests must run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def find_chromium() -> str:
    """The Chromium executable (``MEERKAT_CHROMIUM`` overrides). Without one, the calling test
    fails under CI and is skipped elsewhere, in both cases saying how to get one."""
    for candidate in (os.environ.get("MEERKAT_CHROMIUM", ""), "chromium", "chromium-browser"):
        if candidate and (path := shutil.which(candidate)):
            return path
    how = "install Chromium (scripts/ensure_browser.sh does it with apt-get) or set MEERKAT_CHROMIUM"
    if under_ci():
        raise AssertionError(f"headless Chromium is required under CI for the browser page tests: {how}")
    pytest.skip(f"browser page test NOT RUN: no headless Chromium on this machine ({how})")


def dump_dom(page: Path, *, timeout: float = 90.0) -> str:
    """The serialised DOM of ``page`` after load (its inline scripts have run)."""
    with tempfile.TemporaryDirectory(prefix="meerkat-chromium-") as profile:
        done = subprocess.run(
            [find_chromium(), *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
    return done.stdout.decode()


class _BodyAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and not self.attrs:
            self.attrs = {key: value or "" for key, value in attrs}


def body_attributes(dom: str) -> dict[str, str]:
    """The attributes of ``<body>`` in a serialised DOM."""
    parser = _BodyAttrs()
    parser.feed(dom)
    return parser.attrs
