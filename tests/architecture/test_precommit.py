"""The pre-commit hooks run the same static checks, with the same arguments, as ``./run test``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hook_commands() -> list[str]:
    text = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    return [entry.removeprefix(".venv/bin/") for entry in re.findall(r"^\s+entry: (.+)$", text, re.M)]


def _ci_commands() -> list[str]:
    text = (ROOT / "run").read_text(encoding="utf-8")
    test_section = text[text.index("    test)") : text.index(";;", text.index("    test)"))]
    return [
        line.strip().removeprefix('"$VENV/bin/').replace('" ', " ", 1)
        for line in test_section.splitlines()
        if line.strip().startswith('"$VENV/bin/') and "pytest" not in line
    ]


def test_the_hooks_are_the_ci_checks() -> None:
    ci = _ci_commands()
    assert len(ci) == 3, ci  # ruff check, ruff format --check, mypy --strict
    assert sorted(_hook_commands()) == sorted(ci)
