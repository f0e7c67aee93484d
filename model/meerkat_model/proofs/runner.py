"""``run_proofs``: every obligation for every encoded machine, in one report."""

from __future__ import annotations

import time
from collections.abc import Callable

from meerkat_model.proofs.drift import check_against_model, check_declared_matches_formulas
from meerkat_model.proofs.induction import prove_invariants
from meerkat_model.proofs.interruptible import interruptible_queries, stop_if_interrupted
from meerkat_model.proofs.ops_encoding import build_ops_machine
from meerkat_model.proofs.ownership_encoding import build_ownership_machine
from meerkat_model.proofs.reachability import DEFAULT_DEPTH, check_enabled
from meerkat_model.proofs.report import ProofReport, ProofResult
from meerkat_model.proofs.session_encoding import build_session_machine
from meerkat_model.proofs.symbolic import SymbolicMachine
from meerkat_model.proofs.totality import check_totality

Builder = Callable[[int], SymbolicMachine]

ENCODINGS: dict[str, Builder] = {
    "ops": build_ops_machine,
    "session": build_session_machine,
    "ownership": build_ownership_machine,
}

ABSTRACT: frozenset[str] = frozenset({"ownership"})
"""Encodings that abstract their model (one encoded transition stands for many model steps):
their rows are not the model's declared table, so ``table:`` and ``drift:`` do not apply; the
differential check compares them with the model as a simulation instead."""

# Ids used for the bounded reachability and table checks. A witness found with fewer ids is a
# witness for more ids (extra ids stay untouched), and the table check reads id 0 only.
WITNESS_IDS = 2
TABLE_IDS = 2


def run_proofs(
    ids: int = 8,
    *,
    machines: tuple[str, ...] | None = None,
    depth: int = DEFAULT_DEPTH,
    reachability: bool = True,
    tables: bool = True,
    progress: Callable[[str], None] | None = None,
    finished: Callable[[str, list[ProofResult]], None] | None = None,
) -> ProofReport:
    """Prove every invariant inductive over ``ids`` symbolic ids per machine, check every
    transition is enabled in a reachable state (bounded by ``depth`` steps), cross-check
    the transition tables with the executable model (not for the ``ABSTRACT`` encodings) and
    check every transition is total (a post-state wherever its guard holds; with ``tables``).
    ``progress`` is called with a line as each machine starts, ``finished`` with the machine's
    name and its results as each machine's obligations are done: a caller interrupted with
    Ctrl-C (which interrupts a running solver query, :mod:`meerkat_model.proofs.interruptible`)
    keeps the results of the machines that finished.

    Raises ``ValueError`` for ``ids < 1``, ``depth < 0`` or an unknown machine name.
    """
    if ids < 1:
        raise ValueError(f"ids must be at least 1, got {ids}")
    if depth < 0:
        raise ValueError(f"depth must be at least 0, got {depth}")
    names = tuple(ENCODINGS) if machines is None else machines
    unknown = [m for m in names if m not in ENCODINGS]
    if unknown:
        raise ValueError(f"unknown machine(s) {', '.join(unknown)}; known: {', '.join(ENCODINGS)}")
    t0 = time.perf_counter()
    results: list[ProofResult] = []
    with interruptible_queries():
        for name in names:
            if progress is not None:
                progress(f"proofs: {name} ({ids} ids)")
            build = ENCODINGS[name]
            mine = prove_invariants(build(ids))
            stop_if_interrupted()
            if reachability:
                mine += check_enabled(build(min(ids, WITNESS_IDS)), depth)
                stop_if_interrupted()
            if tables:
                small = build(min(ids, TABLE_IDS))
                if name not in ABSTRACT:
                    mine.append(check_declared_matches_formulas(small))
                    mine.append(check_against_model(small))
                mine.append(check_totality(small))
                stop_if_interrupted()
            results += mine
            if finished is not None:
                finished(name, list(mine))
    return ProofReport(ids, results, time.perf_counter() - t0)
