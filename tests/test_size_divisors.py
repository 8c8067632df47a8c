"""A reshape's ``-1`` over a divisor that depends on the size, against torch.

``t.view(f, -1)`` runs where ``f`` divides ``t.numel()``; where both are computed from the
size (SAM's attention: ``128*floor(H/16) - 64`` elements in rows of ``2*floor(H/16) - 1``),
the solver reads the condition class by class of the two expressions' period
(``symshape.solve.size_divisible_set``). hypothesis draws such a pair, and the valid sizes are
compared with a scan of real forwards; the set itself with a brute-force reading.
"""

import pytest
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import members, scan
from symshape.dims import floor_div, size_symbol
from symshape.quasi import Unsolvable
from symshape.solve import size_divisible_set

UPTO = 150


class ViewBySize(nn.Module):
    """``numel = c*floor(L/q) + d`` elements viewed as rows of ``a*floor(L/p) + e``."""

    def __init__(self, p: int, a: int, e: int, q: int, c: int, d: int):
        super().__init__()
        self.p, self.a, self.e, self.q, self.c, self.d = p, a, e, q, c, d

    def forward(self, x):
        n = x.shape[-1]
        t = x.new_zeros(self.c * (n // self.q) + self.d)
        return x[..., :1] * t.view(self.a * (n // self.p) + self.e, -1).sum()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(-2, 3), st.integers(1, 6), st.integers(1, 130),
       st.integers(-4, 4))
def test_a_view_by_a_size_dependent_row_length_agrees_with_torch(p, a, e, q, c, d):
    model = ViewBySize(p, a, e, q, c, d)
    try:
        analysis = symshape.analyze(model, (3, "L"))
    except symshape.InvalidInputSize:  # refused at every size: torch too
        assert not scan(model, (3, "L"), ("L",), UPTO)
        return
    assert members(analysis.valid_sizes(), ("L",), UPTO) == scan(model, (3, "L"), ("L",), UPTO)


def test_sams_rows_divide_their_elements_wherever_they_are_not_empty():
    """SAM's relative-position attention: ``64*(2*a - 1)`` elements in rows of ``2*a - 1``."""
    model = ViewBySize(16, 2, -1, 16, 128, -64)
    analysis = symshape.analyze(model, (3, "L"))
    runs = scan(model, (3, "L"), ("L",), 100)
    assert members(analysis.valid_sizes(), ("L",), 100) == runs and (16,) in runs


x = size_symbol("x")
#: ``a*floor((x + b)/p) + c``
linear = st.tuples(st.integers(-3, 4), st.integers(1, 7), st.integers(-3, 3), st.integers(-3, 3))


def _expr(t):
    a, p, b, c = t
    return a * floor_div(x + b, p) + c


def _value(t, n: int) -> int:
    a, p, b, c = t
    return a * ((n + b) // p) + c


@settings(max_examples=200, deadline=None)
@given(linear, linear, st.integers(0, 5))
def test_size_divisible_set_is_the_set_of_sizes_where_the_divisor_divides(f, g, scale):
    """The dividend ``scale*g + (scale % 2)*f``: some multiples of the divisor, some not."""
    got = size_divisible_set(scale * _expr(g) + (scale % 2) * _expr(f), _expr(f), x)
    want = set()
    for n in range(1, 400):
        fv, gv = _value(f, n), scale * _value(g, n) + (scale % 2) * _value(f, n)
        if fv != 0 and gv % fv == 0:
            want.add(n)
    assert {n for n in range(1, 400) if n in got} == want, (f, g, scale)


def test_a_divisor_of_higher_degree_is_unsolvable_by_name():
    with pytest.raises(Unsolvable, match="degree above 1"):
        size_divisible_set(x * x + 1, x * x, x)
