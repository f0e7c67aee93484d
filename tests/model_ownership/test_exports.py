"""Each model package exports its machine, and every ``meerkat_model`` name the documentation
gives in backquotes resolves (a module, or an attribute reached from the longest importable
module prefix)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import meerkat_model.ops
import meerkat_model.ownership
import meerkat_model.session
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.session.machine import SessionMachine

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
NAME = re.compile(r"`(meerkat_model(?:\.\w+)+)")


def test_each_model_package_exports_its_machine() -> None:
    assert meerkat_model.ops.OpsMachine is OpsMachine and meerkat_model.ops.__all__ == ["OpsMachine"]
    assert meerkat_model.session.SessionMachine is SessionMachine
    assert meerkat_model.session.__all__ == ["SessionMachine"]
    assert meerkat_model.ownership.OwnershipMachine is OwnershipMachine
    assert meerkat_model.ownership.__all__ == ["OwnershipMachine"]


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_every_model_name_the_documentation_gives_resolves() -> None:
    named = {(doc.name, m.group(1)) for doc in DOCS for m in NAME.finditer(doc.read_text(encoding="utf-8"))}
    assert len(named) > 20  # the pattern finds the names
    assert [f"{doc}: {name}" for doc, name in sorted(named) if not _resolves(name)] == []
