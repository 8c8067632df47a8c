"""The solver on deep strided chains: a monotone condition on one size is solved in closed form
(an affine floor) or by bisection (any nondecreasing composition), whatever its period -- checked
against direct evaluation and against real torch forwards at sizes past a million."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from symshape.compiled import compile_exprs
from symshape.dims import canonical, floor_div, size_symbol
from symshape.quasi import MAX_PERIOD, quasi

x = size_symbol("x")


@st.composite
def monotone_exprs(draw):
    """Stride chains with strides up to 2**12 (periods far beyond MAX_PERIOD), products and
    squares of such floors: nondecreasing in x."""
    e = x
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["floor", "floor", "scale", "square"]))
        if kind == "floor":
            e = canonical(floor_div(e + draw(st.integers(0, 5000)), draw(st.integers(2, 1 << 12))))
        elif kind == "scale":
            e = draw(st.integers(1, 5)) * e + draw(st.integers(0, 4))
        elif e.free_symbols:
            e = e * floor_div(x + draw(st.integers(0, 9)), draw(st.integers(1, 7)))
    return e


@settings(max_examples=150, deadline=None)
@given(monotone_exprs(), st.sampled_from([">=", "==", "!=", "<=", ">", "<"]), st.integers(0, 3000))
def test_monotone_conditions_match_evaluation_beyond_the_period_limit(e, op, value):
    q = quasi(e, x)
    got = q.solve(op, value)
    fn = compile_exprs([x], [e])
    holds = {">=": lambda v: v >= value, "==": lambda v: v == value, "!=": lambda v: v != value,
             "<=": lambda v: v <= value, ">": lambda v: v > value, "<": lambda v: v < value}[op]
    # every edge of the answer, one either side, and random sizes up to far past the period
    points = {1, 2}
    for lo, hi in got.intervals(1 << 40):
        points |= {lo - 1, lo, lo + 1, hi - 1, hi, hi + 1}
    points |= {got.start - 1, got.start, got.start + 1}
    rng = random.Random(str(e))
    points |= {rng.randrange(1, 1 << 24) for _ in range(50)}
    for n in sorted(p for p in points if p >= 1):
        assert (n in got) == holds(fn(n)[0]), (e, op, value, n)


def _chain(k: int) -> nn.Module:
    return nn.Sequential(*[nn.Conv1d(1, 1, 3, stride=2, padding=1) for _ in range(k)], nn.Flatten(), nn.LazyLinear(2))


def _flat(model: nn.Module, length: int) -> int:
    with torch.no_grad():
        return model[:-1](torch.zeros(1, 1, length)).shape[-1]


def test_twenty_stride_two_layers_solve_exactly_and_agree_with_torch():
    model = _chain(20)
    a = symshape.analyze(model, (1, "L"))
    assert str(a.in_features["21"]) == "ceil(L/2**20)"  # floor((L + 1048575)/1048576), printed naturally
    assert 1 << 20 > MAX_PERIOD
    assert str(a.solve(2)) == "L ∈ [2**20 + 1, 2**21]"
    assert str(a.solve(1)) == "L ∈ [1, 2**20]"
    assert str(a.valid_sizes()) == "any L"
    for length, flat in [(1, 1), (1 << 20, 1), ((1 << 20) + 1, 2), (1 << 21, 2), ((1 << 21) + 1, 3)]:
        assert _flat(model, length) == flat
        assert {"L": length} in a.solve(flat) and {"L": length} not in a.solve(flat + 1)


def test_square_solve_on_a_deep_2d_chain_is_closed_form():
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, stride=2, padding=1) for _ in range(20)], nn.Flatten(),
                          nn.LazyLinear(2))
    a = symshape.analyze(model, (1, "H", "W"))
    assert str(a.solve(4, square=True)) == "H = W ∈ [2**20 + 1, 2**21]"
    report = a.verify(sizes=[{"H": h, "W": h} for h in (1 << 20, (1 << 20) + 1, 1 << 21, (1 << 21) + 1)],
                      device="meta")
    assert report.ok, report
    assert [a.at(H=h, W=h).in_features["21"] for h in (1 << 20, (1 << 20) + 1, 1 << 21)] == [1, 4, 4]


def _exact_by_hand(h: int, k: int) -> bool:
    """No layer of the chain rounds: each conv's (h + 2*1 - 3) is even."""
    for _ in range(k):
        if (h - 1) % 2:
            return False
        h = (h - 1) // 2 + 1
    return True


def test_exact_sizes_of_twenty_layers_is_one_congruence():
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, stride=2, padding=1) for _ in range(20)], nn.Flatten(),
                          nn.LazyLinear(2))
    a = symshape.analyze(model, (1, "H", "W"))
    exact = a.exact_sizes()
    assert str(exact) == "H ≥ 1, H ≡ 1 (mod 2**20) and W ≥ 1, W ≡ 1 (mod 2**20)"
    assert str(a.exact_sizes(square=True)) == "H = W ≥ 1, H = W ≡ 1 (mod 2**20)"
    rng = random.Random(0)
    for h in [1, 2, 3, (1 << 20) + 1, (1 << 20) - 1, (1 << 21) + 1, 3 * (1 << 20) + 1] + \
            [rng.randrange(1, 1 << 23) for _ in range(200)]:
        assert ({"H": h, "W": 1} in exact) == _exact_by_hand(h, 20), h


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(0, 3), st.integers(1, 3), st.integers(2, 5), st.integers(0, 3))
def test_divisibility_along_a_chain_matches_evaluation(depth, pad, kernel_less, stride, shift):
    """Random strided chains, each layer required exact in turn (as exact_sizes does), the
    congruence shortcut against evaluating every size up to four periods."""
    from symshape.requirements import Requirement
    from symshape.solve import solve_requirements

    h = size_symbol("H")
    e, reqs, period = h + shift, [], 1
    for i in range(depth):
        kernel = max(1, stride + 1 - kernel_less)
        num = e + 2 * pad - kernel
        reqs.append((f"{i}", Requirement(num, ">=", 0, "fits")))
        reqs.append((f"{i}", Requirement(num, "divisible", stride, "exact")))
        e = canonical(floor_div(num, stride) + 1)
        period *= stride
        if period > 1 << 14:
            break
    got = solve_requirements(["H"], reqs).boxes
    fns = compile_exprs([h], [r.lhs for _, r in reqs])
    for n in range(1, 4 * period + 40):
        values = fns(n)
        want = all((v >= 0) if r.relation == ">=" else (v % stride == 0) for v, (_, r) in zip(values, reqs))
        assert any(n in b["H"] for b in got) == want, (n, reqs)


def test_deep_chains_print_naturally_and_explain_stays_fast():
    """500 ceil_mode pools: ``ceil(L/2**500)``, not a 150-digit numerator; explain() and at() stay
    linear in depth (the least member of a residue class is found per residue, not per size)."""
    model = nn.Sequential(*[nn.MaxPool1d(2, ceil_mode=True) for _ in range(500)], nn.Flatten(), nn.LazyLinear(2))
    a = symshape.analyze(model, (1, "L"), prove=False)
    assert str(a.in_features["501"]) == "ceil(L/2**500)"
    text = a.explain()
    assert "in_features of 501:  ceil(L/2**500)" in text
    assert "no layer rounds at:  L ≥ 2**500, L ≡ 0 (mod 2**500)" in text
    assert a.in_features["501"].xreplace({size_symbol("L"): (1 << 500) + 1}) == 2
    with pytest.raises(symshape.BoundExceeded):  # an input of 2**500 elements: torch cannot count it
        a.at(L=(1 << 500) + 1)
    for length in (1, 2, 3, 1000):
        with torch.no_grad():
            assert model[:-1](torch.zeros(1, 1, length)).shape[-1] == a.at(L=length).in_features["501"] == 1
