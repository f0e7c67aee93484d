"""Cross-checks between each encoding and the executable model: the model's declared
transition table must equal the encoding's declared table, and the encoding's declared table
must equal the table its formulas allow (derived with z3)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from meerkat_model.machine import Bounds, TransitionDecl
from meerkat_model.proofs.report import ProofResult, ProofStatus
from meerkat_model.proofs.symbolic import SymbolicMachine
from meerkat_model.proofs.tables import declared_rows, derived_rows, differences, model_rows

ModelTable = Callable[[], Sequence[TransitionDecl]]


def model_table(machine: str) -> Sequence[TransitionDecl]:
    """The declared transitions of the executable model registered as ``machine`` in the
    catalog (raises ``KeyError`` when the catalog has no such machine)."""
    from meerkat_model.catalog import MACHINES

    return MACHINES[machine](Bounds()).transitions()


def check_against_model(encoding: SymbolicMachine, table: ModelTable | None = None) -> ProofResult:
    """``drift:<machine>``: the model's declared table equals the encoding's, row by row; any
    difference fails (the differences are listed). ``unknown`` when the model cannot be loaded."""
    t0 = time.perf_counter()
    try:
        decls = table() if table is not None else model_table(encoding.name)
    except (ImportError, KeyError, AttributeError) as exc:
        return ProofResult(
            f"drift:{encoding.name}",
            encoding.name,
            "unknown",
            time.perf_counter() - t0,
            None,
            f"model table unavailable: {exc!r}",
        )
    diffs = differences(model_rows(decls), declared_rows(encoding))
    status: ProofStatus = "failed" if diffs else "proved"
    cex = {"kind": "transition tables differ", "differences": diffs} if diffs else None
    detail = f"{len(decls)} transition rows agree" if not diffs else f"{len(diffs)} difference(s)"
    return ProofResult(f"drift:{encoding.name}", encoding.name, status, time.perf_counter() - t0, cex, detail)


def check_declared_matches_formulas(encoding: SymbolicMachine) -> ProofResult:
    """``table:<machine>``: every declared row (sources, target) is exactly what the formulas
    allow from states satisfying the invariants."""
    t0 = time.perf_counter()
    diffs = differences(declared_rows(encoding), derived_rows(encoding), left="declared", right="derived")
    status: ProofStatus = "failed" if diffs else "proved"
    cex = {"kind": "declared rows differ from the formulas", "differences": diffs} if diffs else None
    detail = f"{len(encoding.transitions)} rows derived" if not diffs else f"{len(diffs)} difference(s)"
    return ProofResult(f"table:{encoding.name}", encoding.name, status, time.perf_counter() - t0, cex, detail)
