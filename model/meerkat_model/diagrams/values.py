"""Readable text for the values a machine's ``describe(state)`` returns."""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Mapping, Set
from typing import Any

WRAP = 64


def format_value(value: Any) -> str:
    """A short, stable text for ``value``: enums by lower-case name, mappings as ``{k: v}``,
    sets sorted, sequences as ``[a, b]``; anything else by ``str``."""
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, Mapping):
        items = sorted((format_value(k), format_value(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, Set):
        return "{" + ", ".join(sorted(format_value(v) for v in value)) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def describe_lines(description: Mapping[str, Any], *, width: int = WRAP) -> list[str]:
    """``field: value`` lines, fields sorted, long values wrapped with an indent."""
    lines: list[str] = []
    for key in sorted(description):
        text = f"{key}: {format_value(description[key])}"
        lines.extend(textwrap.wrap(text, width, subsequent_indent="    ", break_on_hyphens=False) or [text])
    return lines


def changed_lines(before: Mapping[str, Any], after: Mapping[str, Any], *, width: int = WRAP) -> list[str]:
    """``field: old -> new`` lines for the fields that differ between two descriptions."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old = format_value(before[key]) if key in before else "(absent)"
        new = format_value(after[key]) if key in after else "(absent)"
        if old != new:
            text = f"{key}: {old} -> {new}"
            lines.extend(textwrap.wrap(text, width, subsequent_indent="    ", break_on_hyphens=False) or [text])
    return lines
