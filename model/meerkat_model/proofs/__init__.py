"""z3 proofs over the lifecycle machines.

Each machine (operation registry; one session's runtime control and inputs; two workers sharing
one store, abstracted) is encoded over a fixed number of symbolic ids, and every invariant is proved inductive:
``Init ⇒ Inv`` and ``Inv ∧ guard ∧ step ⇒ Inv'`` for every transition. Failed checks come with
a counterexample-to-induction. Every declared transition is shown enabled in a reachable state
(bounded model checking), and the encodings' transition tables are cross-checked against the
executable model. Entry point: :func:`run_proofs`; CLI: ``python -m meerkat_model.proofs``.
"""

from meerkat_model.proofs.report import ProofReport, ProofResult
from meerkat_model.proofs.runner import run_proofs

__all__ = ["ProofReport", "ProofResult", "run_proofs"]
