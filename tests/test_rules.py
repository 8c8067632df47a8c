"""Every registered rule against torch: a grid of sizes, including sizes torch refuses."""

import pytest

import symshape
from cases import CASES
from oracle import assert_agrees
from symshape.rules import registered


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_case_agrees_with_torch(case):
    assert_agrees(case.make(), case.input_shape, case.sizes)


def test_every_registered_rule_has_a_cross_checked_case():
    exercised = set()
    for case in CASES:
        try:
            analysis = symshape.analyze(case.make(), case.input_shape)
        except symshape.InvalidInputSize:
            continue
        exercised |= set(analysis.rules_applied)
    ours = [r for r in registered() if (r.fn.__module__ or "").startswith("symshape.rules")]
    missing = sorted({r.target_name for r in ours} - exercised)
    assert not missing, f"registered rules without a cross-checked case: {missing}"
