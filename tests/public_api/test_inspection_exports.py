"""``meerkat_runtime.inspection`` is a public submodule: every name the documentation lists for it
(``meerkat_runtime.inspection`` followed by names in parentheses, in README.md and docs/) is
exported by the package itself, in its ``__all__``."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import meerkat_runtime.inspection as inspection

ROOT = Path(__file__).resolve().parents[2]
_LISTED = re.compile(r"`meerkat_runtime\.inspection`\s*\(([^)]*)\)")
_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def _documented() -> dict[str, set[str]]:
    """The names each document lists for the submodule."""
    found: dict[str, set[str]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = " ".join(doc.read_text(encoding="utf-8").split())
        names = {name for listed in _LISTED.findall(text) for name in _NAME.findall(listed)}
        if names:
            found[doc.name] = names
    return found


def test_the_documented_names_are_exported() -> None:
    documented = _documented()
    named = set().union(*documented.values())
    assert {"summarize_sessions", "session_inputs", "find_input", "stored_operations"} <= named, documented
    assert named <= set(inspection.__all__), named - set(inspection.__all__)


def test_every_exported_name_imports_from_the_package() -> None:
    module = importlib.import_module("meerkat_runtime.inspection")
    assert sorted(module.__all__) == module.__all__ and len(set(module.__all__)) == len(module.__all__)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    names = ", ".join(module.__all__)
    code = f"from meerkat_runtime.inspection import {names}; print('ok')"  # a fresh interpreter
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr
