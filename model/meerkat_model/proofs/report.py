"""Proof results: one :class:`ProofResult` per obligation, gathered in a :class:`ProofReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ProofStatus = Literal["proved", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class ProofResult:
    """The outcome of one obligation.

    ``name`` is ``<category>:<subject>`` (``inductive:op.terminal_outcome``,
    ``enabled:complete_operation``, ``absorbing:runtime.destroyed``); ``machine`` the encoded
    machine (``ops``, ``session``). ``counterexample`` is plain JSON-able data when the status
    is ``failed`` (a counterexample-to-induction or a dead transition) and ``None`` otherwise;
    ``detail`` is a one-line explanation (e.g. the witness path of an enabled transition).
    """

    name: str
    machine: str
    status: ProofStatus
    seconds: float
    counterexample: dict[str, Any] | None = None
    detail: str = ""
    assumes: tuple[str, ...] = ()
    """For a proof by induction: invariants it relied on that did not come back proved; the
    result is then "proved assuming" them (a conditional proof), not a proof."""

    @property
    def label(self) -> str:
        """``proved``, ``proved assuming X, Y``, ``failed`` or ``unknown``."""
        return f"proved assuming {', '.join(self.assumes)}" if self.assumes else self.status

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "machine": self.machine,
            "status": self.status,
            "seconds": round(self.seconds, 6),
            "counterexample": self.counterexample,
            "detail": self.detail,
            "assumes": list(self.assumes),
        }


@dataclass(frozen=True, slots=True)
class ProofReport:
    """All results of one run; ``ok`` when every obligation is proved."""

    ids: int
    results: list[ProofResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status == "proved" for r in self.results)

    def by_status(self, status: ProofStatus) -> list[ProofResult]:
        return [r for r in self.results if r.status == status]

    def render(self) -> str:
        """A human summary: one line per obligation, then each counterexample in full."""
        lines = [f"z3 proofs over {self.ids} symbolic ids per machine"]
        width = max((len(r.name) for r in self.results), default=10)
        for r in self.results:
            extra = f"  {r.detail}" if r.detail else ""
            status = "proved*" if r.assumes else r.status
            lines.append(f"  {status:<7} {r.machine:<8} {r.name:<{width}} {r.seconds * 1000:8.1f} ms{extra}")
        for r in self.results:
            if r.counterexample is not None:
                lines.append("")
                lines.append(f"counterexample for {r.machine}/{r.name}:")
                lines.extend("  " + line for line in render_counterexample(r.counterexample))
        proved = len(self.by_status("proved"))
        lines.append("")
        conditional = sum(1 for r in self.results if r.assumes)
        lines.append(
            f"{proved}/{len(self.results)} proved"
            + (f" ({conditional} only assuming an unproved invariant, marked proved*)" if conditional else "")
            + f", {len(self.by_status('failed'))} failed, "
            f"{len(self.by_status('unknown'))} unknown in {self.seconds:.2f} s"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "ok": self.ok,
            "seconds": round(self.seconds, 6),
            "results": [r.to_json() for r in self.results],
        }


def render_counterexample(cex: dict[str, Any]) -> list[str]:
    """Readable lines for a counterexample dict (scalars first, then per-id fields)."""
    lines: list[str] = []
    for key in ("kind", "invariant", "transition", "broken_id", "property", "reason"):
        if key in cex:
            lines.append(f"{key}: {cex[key]}")
    if cex.get("params"):
        lines.append(f"params: {cex['params']}")
    for key, value in cex.items():
        if key in (
            "kind",
            "invariant",
            "transition",
            "broken_id",
            "property",
            "reason",
            "params",
            "pre",
            "post",
            "state",
        ):
            continue
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  - {item}" for item in value)
        else:
            lines.append(f"{key}: {value}")
    for side in ("pre", "post", "state"):
        if side in cex:
            lines.append(f"{side}:")
            for name, value in cex[side].items():
                lines.append(f"  {name} = {value}")
    return lines
