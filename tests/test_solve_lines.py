"""Conditions that couple two sizes on lines (``f(H) == g(W)``), solved exactly as boxes with a
:class:`~symshape.sizes.Tie`, checked against every size pair in a grid with hypothesis."""

import itertools
import os

import pytest
import sympy
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from symshape.dims import floor_div, size_symbol
from symshape.quasi import Unsolvable
from symshape.requirements import Requirement
from symshape.solve import solve_requirements
from symshape.sizes import Tie

H, W = size_symbol("H"), size_symbol("W")
TOP = 48


@st.composite
def chains(draw, x):
    """An increasing size map: conv/pool-like floors, stacked, times a positive constant."""
    e = x
    for _ in range(draw(st.integers(0, 2))):
        k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        e = floor_div(e + draw(st.integers(-1, 2)) - k, s) + 1
    return draw(st.integers(1, 3)) * e + draw(st.integers(-2, 2))


def _value(e, h, w):
    return int(e.xreplace({H: h, W: w}))


@settings(max_examples=int(os.environ.get("SYMSHAPE_LINE_EXAMPLES", "150")), deadline=None)
@given(chains(H), chains(W), st.sampled_from(["only", "broadcast", "and W", "then flat"]), st.integers(2, 30))
def test_a_condition_on_a_line_is_solved_exactly(f, g, extra, t):
    reqs = [("eq", Requirement(f, "==", g, "sizes agree"))]
    if extra == "broadcast":
        reqs = [("add", Requirement(f, "broadcast", g, "sizes broadcast"))]
    reqs += [("h", Requirement(f, ">=", 1, "")), ("w", Requirement(g, ">=", 1, ""))]
    if extra == "and W":  # a later condition on the tied size alone: substituted through the tie
        reqs.append(("pool", Requirement(floor_div(W, 3), "divisible", 2, "")))
    if extra == "then flat":  # a product on the line: W's factor becomes H's
        reqs.append(("flat", Requirement(f * g, ">=", t, "")))
    try:
        got = solve_requirements(["H", "W"], reqs)
    except Unsolvable as e:
        assert "residue classes" in str(e)
        return
    for h, w in itertools.product(range(1, TOP + 1), repeat=2):
        fv, gv = _value(f, h, w), _value(g, h, w)
        ok = fv >= 1 and gv >= 1
        ok &= (fv == gv or 1 in (fv, gv)) if extra == "broadcast" else fv == gv
        if extra == "and W":
            ok &= (w // 3) % 2 == 0
        if extra == "then flat":
            ok &= fv * gv >= t
        assert got.contains(H=h, W=w) == ok, (f, g, extra, h, w, str(got))
    assert {(r["H"], r["W"]) for r in got.enumerate(TOP)} == {
        (h, w) for h, w in itertools.product(range(1, TOP + 1), repeat=2) if got.contains(H=h, W=w)}


def test_a_transpose_after_a_stride_two_conv_holds_on_three_lines():
    f, g = floor_div(H - 1, 2), floor_div(W - 1, 2)
    got = solve_requirements(["H", "W"], [("c", Requirement(f, ">=", 1, "")), ("c", Requirement(g, ">=", 1, "")),
                                          ("add", Requirement(f, "broadcast", g, ""))])
    assert got.lines() == ["H ∈ {3, 4} and W ≥ 3", "H ≥ 5 and W ∈ {3, 4}", "H ≥ 5 and W = H",
                           "H ≥ 5, H ≡ 1 (mod 2) and W = H + 1", "H ≥ 6, H ≡ 0 (mod 2) and W = H - 1"]
    assert got.min() == {"H": 3, "W": 3}
    assert got.contains(H=10**12 + 1, W=10**12 + 2) and not got.contains(H=10**12, W=10**12 + 1)


def test_three_sizes_chain_their_ties():
    D = size_symbol("D")
    reqs = [("a", Requirement(floor_div(H, 2), "==", D, "")), ("b", Requirement(W, "==", H + 1, ""))]
    got = solve_requirements(["D", "H", "W"], reqs)
    for d, h, w in itertools.product(range(1, 20), repeat=3):
        assert got.contains(D=d, H=h, W=w) == (h // 2 == d and w == h + 1)
    assert all(isinstance(b["W"], Tie) and b["W"].base == "D" for b in got.boxes)


def test_too_many_residue_classes_is_refused_by_name():
    f, g = floor_div(H, 64), floor_div(W, 64)
    with pytest.raises(Unsolvable, match="residue classes"):
        solve_requirements(["H", "W"], [("eq", Requirement(f * 1 + sympy.Integer(0), "==", g, ""))])


class _SevenWide(nn.Module):
    """A stride-2 conv, then ``x.view(n, -1, 7)`` and a Linear on the flattened rows: valid only
    where 7 divides ``4*floor((H-1)/2)*floor((W-1)/2)``."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, stride=2), nn.LazyLinear(2)

    def forward(self, x):
        x = self.conv(x)
        return self.fc(x.view(x.size(0), -1, 7).flatten(1))


def test_solving_a_view_by_seven_never_raises_on_a_candidate_and_matches_a_scan():
    model = _SevenWide().eval()
    a = symshape.analyze(model, (3, "H", "W"))
    truth = {}
    for h, w in itertools.product(range(1, 31), repeat=2):
        try:
            with torch.no_grad():
                flat = model.conv(torch.zeros(1, 3, h, w)).view(1, -1, 7).flatten(1).shape[1]
        except RuntimeError:
            continue
        truth.setdefault(flat, set()).add((h, w))
    assert {(r["H"], r["W"]) for r in a.valid_sizes().enumerate(30)} == set().union(*truth.values())
    for flat in list(truth)[:12] + [5, 41 * 7]:
        got = a.solve(flat)
        assert {(r["H"], r["W"]) for r in got.enumerate(30)} == truth.get(flat, set()), flat


@st.composite
def counts(draw, x):
    """A non-negative window count: ``floor((x + u)/q)``."""
    return floor_div(x + draw(st.integers(0, 5)), draw(st.integers(1, 8)))


@settings(max_examples=60, deadline=None)
@given(counts(H), chains(H), counts(W), chains(W), st.integers(1, 4), st.sampled_from([1, 4, 9, 12, 49]),
       st.sampled_from(["==", "!="]))
def test_products_that_share_a_factor_are_solved_exactly(a, b, c, d, k, t, relation):
    """``k·a·b·c·d == k·t·a·c`` (GC ViT's reshape: the window counts shared by both sides): equal
    where ``a`` or ``c`` is 0, and elsewhere where ``b·d == t``; against every size pair."""
    reqs = [("reshape", Requirement(k * a * b * c * d, relation, k * t * a * c, ""))]
    got = solve_requirements(["H", "W"], reqs)
    for h, w in itertools.product(range(1, 37), repeat=2):
        av, bv, cv, dv = (_value(e, h, w) for e in (a, b, c, d))
        equal = k * av * bv * cv * dv == k * t * av * cv
        assert got.contains(H=h, W=w) == (equal if relation == "==" else not equal), (a, b, c, d, t, h, w, str(got))


def test_gcvit_window_counts_cancel():
    a, b = floor_div(H + 3, 28), floor_div(H + 31, 32)
    c, d = floor_div(W + 3, 28), floor_div(W + 31, 32)
    got = solve_requirements(["H", "W"], [("reshape", Requirement(64 * a * b * c * d, "==", 3136 * a * c, ""))])
    for h, w in itertools.product(range(1, 260, 3), range(1, 260, 5)):
        av, bv, cv, dv = (_value(e, h, w) for e in (a, b, c, d))
        assert got.contains(H=h, W=w) == (64 * av * bv * cv * dv == 3136 * av * cv)
    assert got.contains(H=224, W=224) and not got.contains(H=224, W=256) and got.contains(H=20, W=500)
