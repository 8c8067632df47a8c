"""A floor of a product of sizes, against torch: windows folded into the batch and unfolded by a
mask made for a fixed count of windows (timm's Swin V2 CR).

``t.view(t.shape[0] // m, m, ...)`` of ``a·b`` windows runs where ``m`` divides ``a·b``; the
checks after it (a reshape's ``-1`` over ``a·b`` rows, a Linear on the width it infers, a
product with the unfolded windows) hold there. The solver takes each residue of ``a·b`` modulo
``m`` (symshape.residues): hypothesis draws such models, and ``valid_sizes()`` is compared with
a scan of real forwards; the residue sets themselves with a brute-force reading.
"""

import itertools

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import members, scan
from symshape.dims import floor_div, size_symbol
from symshape.residues import product_residues, residue_sets
from symshape.sizes import IntSet

UPTO = 40


class FoldedWindows(nn.Module):
    """A conv to an ``a x b`` grid, its ``a·b`` positions folded ``m`` at a time against a mask,
    unfolded, multiplied with the unfolded grid, rows of the grid's count, and a Linear."""

    def __init__(self, k: int, s: int, m: int, c: int = 3):
        super().__init__()
        self.m = m
        self.conv = nn.Conv2d(1, c, k, stride=s)
        self.register_buffer("mask", torch.zeros(m, 1))
        self.proj = nn.Linear(c, 2)

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        t = y.permute(0, 2, 3, 1).reshape(n * h * w, c)
        rows = t.shape[0]
        folded = t.view(rows // self.m, self.m, c) + self.mask
        unfolded = folded.reshape(-1, c) * t
        return self.proj(unfolded.reshape(rows, -1))


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.sampled_from([2, 3, 4, 6, 8]))
def test_windows_folded_by_a_fixed_count_agree_with_torch(k, s, m):
    model = FoldedWindows(k, s, m)
    analysis = symshape.analyze(model, (1, "H", "W"))
    want = scan(model, (1, "H", "W"), ("H", "W"), UPTO)
    assert members(analysis.valid_sizes(), ("H", "W"), UPTO) == want
    assert want  # some sizes run: the fold is not refused everywhere


def test_swin_v2_crs_window_count_is_a_multiple_of_the_masks():
    """``m = 4``, a 2 x 2 stride: ``floor(H/2)·floor(W/2)`` a multiple of 4 (4 x 1 windows too)."""
    model = FoldedWindows(2, 2, 4)
    valid = symshape.analyze(model, (1, "H", "W")).valid_sizes()
    assert valid.contains(H=8, W=2) and valid.contains(H=4, W=4) and not valid.contains(H=6, W=6)
    assert members(valid, ("H", "W"), 30) == scan(model, (1, "H", "W"), ("H", "W"), 30)


@pytest.mark.parametrize("k,s,m,h", [(2, 2, 4, 8), (3, 1, 3, 5), (2, 2, 8, 6)])
def test_a_fold_at_a_fixed_height_agrees_with_torch(k, s, m, h):
    """One size fixed (Swin V2 CR's patch embedding checks it): the Linear's check on the width
    reshape's ``-1`` inferred, ``c·floor(a·b/m)/(a·b) == c``, is a quotient of one size, solved
    with its denominator multiplied out."""
    model = FoldedWindows(k, s, m)
    valid = symshape.analyze(model, (1, h, "W")).valid_sizes()
    assert members(valid, ("W",), 60) == scan(model, (1, h, "W"), ("W",), 60)


x = size_symbol("H")
#: ``a*floor((x + b)/p) + c``
linear = st.tuples(st.integers(-3, 4), st.integers(1, 7), st.integers(-3, 3), st.integers(-3, 3))


def _expr(t, sym=x):
    a, p, b, c = t
    return a * floor_div(sym + b, p) + c


def _value(t, n: int) -> int:
    a, p, b, c = t
    return a * ((n + b) // p) + c


domains = st.one_of(
    st.builds(IntSet.all),
    st.builds(lambda lo, hi: IntSet.interval(lo, hi), st.integers(1, 20), st.integers(1, 60)),
    st.builds(lambda start, period, rs, head: IntSet.periodic(start, period, rs, [(h, h) for h in head]),
              st.integers(1, 30), st.integers(1, 12), st.lists(st.integers(0, 11), max_size=4),
              st.lists(st.integers(1, 29), max_size=4)),
)


@settings(max_examples=200, deadline=None)
@given(linear, st.integers(2, 9), domains)
def test_residue_sets_are_the_members_with_each_residue(g, m, domain):
    got = residue_sets(_expr(g), m, domain, x)
    for n in range(1, 300):
        want = _value(g, n) % m if n in domain else None
        assert [s for s, part in got.items() if n in part] == ([] if want is None else [want]), n


@settings(max_examples=100, deadline=None)
@given(linear, linear, st.integers(-3, 3).filter(bool), st.integers(2, 8), domains, domains)
def test_product_residues_split_a_box_by_the_products_residue(f, g, c, m, dh, dw):
    y = size_symbol("W")
    box = {"H": dh, "W": dw}
    got = product_residues(c, [("H", _expr(f)), ("W", _expr(g, y))], m, box, size_symbol)
    for h, w in itertools.product(range(1, 60), repeat=2):
        where = [r for r, boxes in got.items() for b in boxes if h in b["H"] and w in b["W"]]
        want = [] if h not in dh or w not in dw else [c * _value(f, h) * _value(g, w) % m]
        assert where == want, (h, w)


def test_a_floor_of_a_product_alone_is_still_refused_where_a_residue_cannot_be_solved():
    """``c·floor(a·b/m)`` divisible by ``e·a·b`` with no fold before it: other residues than 0
    leave a condition on both sides, which the solver names rather than guesses."""
    from symshape.requirements import Requirement
    from symshape.solve import Unsolvable, solve_requirements

    a, b = floor_div(size_symbol("H"), 2), floor_div(size_symbol("W"), 2)
    req = Requirement(64 * floor_div(a * b, 4), "divisible", 2 * a * b, "reshape")
    with pytest.raises(Unsolvable):
        solve_requirements(["H", "W"], [("r", req)])
