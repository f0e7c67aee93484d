"""Structural difference of two plain-data values (dicts, lists, tuples, scalars).

Used to show *where* the model's and the runtime's observations part ways, as dotted paths
such as ``ops.op-1.status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Difference:
    """One leaf where the two sides differ. ``model`` / ``runtime`` are ``None`` and the
    matching ``*_missing`` flag is set when the key exists only on the other side."""

    path: str
    model: Any
    runtime: Any
    model_missing: bool = False
    runtime_missing: bool = False

    def render(self) -> str:
        left = "<absent>" if self.model_missing else repr(self.model)
        right = "<absent>" if self.runtime_missing else repr(self.runtime)
        return f"{self.path or '<root>'}: model {left} | runtime {right}"


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def diff_values(model: Any, runtime: Any, path: str = "") -> list[Difference]:
    """Every differing leaf between ``model`` and ``runtime``; empty when they are equal.
    A list and a tuple with equal items are equal here."""
    if model == runtime:
        return []
    if isinstance(model, Mapping) and isinstance(runtime, Mapping):
        out: list[Difference] = []
        keys = list(model.keys()) + [k for k in runtime if k not in model]
        for key in keys:
            left = model.get(key, _MISSING)
            right = runtime.get(key, _MISSING)
            sub = _join(path, key)
            if left is _MISSING:
                out.append(Difference(sub, None, right, model_missing=True))
            elif right is _MISSING:
                out.append(Difference(sub, left, None, runtime_missing=True))
            else:
                out.extend(diff_values(left, right, sub))
        return out
    if _is_seq(model) and _is_seq(runtime) and len(model) == len(runtime):
        out = []
        for index, (left, right) in enumerate(zip(model, runtime, strict=True)):
            out.extend(diff_values(left, right, _join(path, index)))
        return out
    if model == runtime:
        return []
    return [Difference(path, model, runtime)]
