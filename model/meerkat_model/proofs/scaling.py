"""How the induction proofs scale with the number of symbolic ids: wall time per machine and
id count, and the ratio to the smallest id count measured."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.interruptible import interruptible_queries
from meerkat_model.proofs.runner import ENCODINGS


@dataclass(frozen=True, slots=True)
class ScalingRow:
    machine: str
    ids: int
    seconds: float
    obligations: int
    proved: int
    unproved: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.proved == self.obligations

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "ids": self.ids,
            "seconds": round(self.seconds, 4),
            "obligations": self.obligations,
            "proved": self.proved,
            "unproved": list(self.unproved),
        }


def scaling(
    id_counts: Sequence[int], machines: Sequence[str] | None = None, timeout_ms: int = 10_000
) -> list[ScalingRow]:
    """Time :func:`prove_invariants` (encoding included) for each machine and id count; a
    single solver query giving up after ``timeout_ms`` leaves its obligation ``unknown``."""
    rows: list[ScalingRow] = []
    for name in machines or tuple(ENCODINGS):
        for n in id_counts:
            t0 = time.perf_counter()
            with interruptible_queries():
                results = prove_invariants(ENCODINGS[name](n), timeout_ms)
            elapsed = time.perf_counter() - t0
            proved = sum(1 for r in results if r.status == "proved")
            missing = tuple(f"{r.name} ({r.status})" for r in results if r.status != "proved")
            rows.append(ScalingRow(name, n, elapsed, len(results), proved, missing))
    return rows


def render_scaling(rows: Sequence[ScalingRow]) -> str:
    lines = [f"{'machine':<8} {'ids':>4} {'seconds':>9} {'x smallest':>11} {'proved':>9}"]
    base: dict[str, float] = {}
    for r in rows:
        base.setdefault(r.machine, r.seconds)
        ratio = r.seconds / base[r.machine] if base[r.machine] > 0 else float("nan")
        lines.append(f"{r.machine:<8} {r.ids:>4} {r.seconds:>9.3f} {ratio:>10.1f}x {r.proved:>4}/{r.obligations:<4}")
        lines.extend(f"{'':<14} not proved: {name}" for name in r.unproved)
    return "\n".join(lines)
