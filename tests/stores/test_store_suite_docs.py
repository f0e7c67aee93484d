"""The store suite's table in docs/stores.md lists every check of the suite, once, in the order
the runner runs them, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from meerkat_conformance.stores.runner import CHECKS

DOC = Path(__file__).resolve().parents[2] / "docs" / "stores.md"


def _table_checks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("| check | what it proves |")
    rows = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    names = [re.match(r"\| `(\w+)` \|", row) for row in rows]
    assert all(names), rows
    return [m.group(1) for m in names if m]


def test_the_table_lists_every_check_of_the_suite_in_order() -> None:
    assert _table_checks() == [c.name for c in CHECKS]
