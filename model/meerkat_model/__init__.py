"""meerkat_model: the executable reference model of the Meerkat lifecycle machines.

Pure transition functions over immutable, hashable states; invariants; the reachable-state
verifier, z3 proofs and diagram rendering. Clarity first inside a transition.
"""

__version__ = "0.1.0"
