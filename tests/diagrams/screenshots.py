"""The screenshots shown in docs/diagrams.md, taken in headless Chromium from the committed pages.

    .venv/bin/python -m tests.diagrams.screenshots [DIR]     (default: docs/img)

Writes ``explorer-state.png`` (a search, a state with its fields, meanings and enabled
transitions), ``explorer-trace.png`` (a counterexample stepped to its violating step) and
``input-lifecycle.png`` (the input lifecycle as a browser draws it). Run it after ``./run render``
when the pages change.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.diagrams.cdp import Browser
from tests.diagrams.explorer_pages import counterexample_page

ROOT = Path(__file__).resolve().parents[2]
EXPLORER = ROOT / "diagrams" / "explorer.html"
PAGE = ROOT / "diagrams" / "index.html"
READY = "document.body.dataset.explorerReady"


def take(out: Path) -> list[Path]:
    """Take every screenshot into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with Browser(width=1360, height=1180) as browser:
        browser.open(EXPLORER, ready=READY)
        browser.type_into("#search", "op[*]~cancelled active_count=1 barrier!=none")
        browser.wait_for("+document.body.dataset.explorerResults > 0")
        browser.click("#results li:nth-child(2)")
        browser.screenshot(out / "explorer-state.png")
        written.append(out / "explorer-state.png")
        with tempfile.TemporaryDirectory() as folder:
            page, trace, _ = counterexample_page(Path(folder))
            browser.open(page, ready=READY)
            browser.set_files("#trace-file", [trace])
            browser.wait_for("document.body.dataset.explorerTraceSteps")
            browser.click("#trace-last")
            browser.screenshot(out / "explorer-trace.png")
            written.append(out / "explorer-trace.png")
    with Browser(width=1100, height=900) as browser:
        browser.open(PAGE, ready="document.body.dataset.diagramsRendered")
        browser.screenshot(out / "input-lifecycle.png", clip_selector="#diagram-input-lifecycle figure svg")
        written.append(out / "input-lifecycle.png")
    if browser.page_errors:
        raise SystemExit(f"page script errors: {browser.page_errors}")
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs" / "img"
    for path in take(out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
