"""The map from the models' checks to the z3 invariants is complete both ways."""

from __future__ import annotations

import pytest
from meerkat_model.catalog import MACHINES
from meerkat_model.machine import Bounds
from meerkat_model.proofs.invariant_map import PYTHON_TO_Z3, Z3_ONLY
from meerkat_model.proofs.runner import ENCODINGS
from meerkat_model.verifier.search import check_names


@pytest.mark.parametrize("machine", sorted(ENCODINGS))
def test_every_model_check_is_mapped_or_explained(machine: str) -> None:
    model = MACHINES[machine](Bounds())
    assert set(PYTHON_TO_Z3[machine]) == set(check_names(model))
    for check, target in PYTHON_TO_Z3[machine].items():
        assert target, check


@pytest.mark.parametrize("machine", sorted(ENCODINGS))
def test_every_z3_invariant_is_mapped_or_explained(machine: str) -> None:
    encoding = ENCODINGS[machine](2)
    z3_names = {inv.name for inv in encoding.invariants} | {p.name for p in encoding.step_properties}
    mapped = {name for target in PYTHON_TO_Z3[machine].values() if isinstance(target, tuple) for name in target}
    assert mapped <= z3_names, mapped - z3_names
    assert set(Z3_ONLY[machine]) <= z3_names
    assert z3_names - mapped <= set(Z3_ONLY[machine]), z3_names - mapped - set(Z3_ONLY[machine])
