"""Reading an explorer page's embedded data back in Python, to check what the page shows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meerkat_model.diagrams.explorer_data import unpack


def embedded(page: str) -> dict[str, Any]:
    """The ``meerkat.explorer`` document embedded in an explorer page."""
    found = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.DOTALL)
    assert found is not None, "no embedded explorer data"
    document: dict[str, Any] = json.loads(found.group(1))
    return document


def show(value: Any) -> str:
    """A value as the page writes it (the page's ``show``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(value[k])}" for k in sorted(value)) + "}"
    return str(value)


class Decoded:
    """One machine's graph decoded: field texts per state, parents, edges by transition."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.n: int = raw["states"]
        self.names = [f["name"] for f in raw["fields"]]
        rows, nf = unpack(raw["rows"]), len(self.names)
        texts = [show(v) for v in raw["values"]]
        self.fields = [
            {self.names[f]: texts[rows[s * nf + f] - 1] for f in range(nf) if rows[s * nf + f]} for s in range(self.n)
        ]
        self.depths = unpack(raw["depths"])
        self.parents = [p - 1 for p in unpack(raw["parents"])]
        start, target, kind = unpack(raw["out_start"]), unpack(raw["out_target"]), unpack(raw["out_kind"])
        self.out = [
            [(raw["transitions"][raw["kinds"][kind[e]][1]], target[e]) for e in range(start[s], start[s + 1])]
            for s in range(self.n)
        ]

    def where(self, test: Callable[[dict[str, str]], bool]) -> list[int]:
        return [s for s in range(self.n) if test(self.fields[s])]

    def enabling(self, transition: str) -> list[int]:
        return [s for s in range(self.n) if any(t == transition for t, _ in self.out[s])]

    def path(self, state: int) -> list[int]:
        path = [state]
        while self.parents[path[-1]] >= 0:
            path.append(self.parents[path[-1]])
        return path[::-1]


def counterexample_page(folder: Path) -> tuple[Path, Path, int]:
    """Write an explorer page of the ops model with a planted bug (a cancel that keeps its slot)
    and the ``meerkat.trace`` of its first violation into ``folder``; return both paths and the
    number of the shallowest state in the page that violates the same invariant."""
    from meerkat_model.diagrams.explorer_data import explorer_graph
    from meerkat_model.diagrams.explorer_page import build_explorer_page
    from meerkat_model.diagrams.groupings import GROUPINGS
    from meerkat_model.verifier import explore, shortest_trace
    from meerkat_model.verifier.trace_json import trace_document

    from tests.verifier.toys import SMALL_OPS, LeakyCancel

    exploration = explore(LeakyCancel(SMALL_OPS))
    grouping = GROUPINGS["ops"]
    graph = explorer_graph(
        "ops", exploration, profile="small", bounds=SMALL_OPS.values, phase=(grouping.meaning, grouping.of)
    )
    page = folder / "explorer-counterexample.html"
    page.write_text(build_explorer_page([graph], intro="The ops model with a planted bug."), encoding="utf-8")
    violation = exploration.violations[0]
    steps = shortest_trace(exploration, exploration.state_list[violation.state_index])
    document = trace_document(exploration, violation, steps, profile="small", bounds=SMALL_OPS.values, key="ops")
    trace = folder / "trace.json"
    trace.write_text(json.dumps(document, indent=1), encoding="utf-8")
    decoded = Decoded(graph)
    violating = [v["state"] for v in graph["violations"] if v["invariant"] == violation.invariant]
    return page, trace, min(violating, key=lambda s: (decoded.depths[s], s))
