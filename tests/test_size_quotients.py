"""Conditions with a quotient of sizes, against torch: a wrong answer, closed.

A fixed table reshaped to the input's grid, ``pos.reshape(h, w, -1)``, has a last dim of
``cells / (h·w)``; a later reshape that names it (``t.reshape(h // 2, 2, w // 2, 2,
t.shape[-1])``, as timm's Qwen3-ViT merger does) checks ``cells == 4·floor(h/2)·floor(w/2)·cells
/ (h·w)``. The solver read the quotient's per-size parts as integers and found no size at all
(torch runs at 15 of them up to 20 x 20); at Qwen3-ViT's 768 x 768, where its position table
needs no resizing, ``valid_sizes()`` said the model refuses what it runs. A quotient by terms
at least 1 is now multiplied out, and a per-size part that is not an integer at every size is
refused by name, never enumerated by its divisors.
"""

import pytest
import sympy
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import members, scan
from symshape import solve as S
from symshape.compiled import compile_exprs
from symshape.dims import floor_div, size_symbol
from symshape.quasi import Unsolvable
from symshape.requirements import Requirement

UPTO = 20


class TableMerge(nn.Module):
    """A table of ``cells·c`` entries viewed as the input's ``h x w`` grid, then merged 2 x 2
    with its last dim named."""

    def __init__(self, cells: int, c: int):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(cells * c))

    def forward(self, x):
        _, _, h, w = x.shape
        t = self.pos.reshape(h, w, -1)
        t = t.reshape(h // 2, 2, w // 2, 2, t.shape[-1])
        return x.sum() + t.sum()


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([4, 8, 12, 16, 36, 64]), st.integers(1, 3))
def test_a_table_merged_on_the_inputs_grid_agrees_with_torch(cells, c):
    model = TableMerge(cells, c)
    valid = symshape.analyze(model, (1, "H", "W")).valid_sizes()
    runs = scan(model, (1, "H", "W"), ("H", "W"), UPTO)
    assert members(valid, ("H", "W"), UPTO) == runs and runs


H, W = size_symbol("H"), size_symbol("W")


def _exact(reqs, upto=40):
    fns = [(r, compile_exprs([H, W], r.exprs())) for _, r in reqs]
    return {(h, w) for h in range(1, upto + 1) for w in range(1, upto + 1)
            if all(r.accepts(fn(h, w)) for r, fn in fns)}


def test_a_quotient_of_one_sizes_terms_is_no_integer_factor():
    """``floor(H/4)/floor(H/2) · W == 1`` holds at ``H = 4, W = 2`` (a half times two): the
    divisors of 1 never find it. Where ``floor(H/2)`` may be 0 the quotient stays, and the
    condition is refused rather than read as a product of integers."""
    quotient = Requirement(floor_div(H, 4) * W / floor_div(H, 2), "==", 1, "r")
    assert S._split_product(quotient.lhs, ["H", "W"]) is None
    assert S._split_sum(quotient.lhs + H, ["H", "W"]) is None
    with pytest.raises(Unsolvable):
        S.solve_requirements(["H", "W"], [("q", quotient)])


def test_a_quotient_by_sizes_at_least_one_is_multiplied_out():
    """TableMerge's check on its own, and with its sides swapped: exact, read size by size."""
    merged = 512 * floor_div(H, 2) * floor_div(W, 2) / (H * W)
    for req in (Requirement(128, "==", merged, "r"), Requirement(merged, "!=", 128, "r")):
        got = members(S.solve_requirements(["H", "W"], [("q", req)]), ["H", "W"], 40)
        assert got == _exact([("q", req)]), req
    with pytest.raises(Unsolvable):  # a difference of two products >= 0: named, not guessed
        S.solve_requirements(["H", "W"], [("q", Requirement(merged, ">=", 128, "r"))])


def test_a_condition_on_a_size_pinned_to_a_few_values_is_read_value_by_value(monkeypatch):
    """Where the other checks leave a size a few values (a patch embedding's ``H == 384``),
    each is read, exactly, rather than the condition solved over every size first (Swin V2 CR
    at 384: a third of a second): a quotient whose denominator is 0 elsewhere, a ``Min``, a
    divisibility by a size. The same answer as solving, and it is the reading that answers."""
    read = []
    by_values = S._by_values
    monkeypatch.setattr(S, "_by_values", lambda *a: read.append(by_values(*a)) or read[-1])
    pinned = [("lo", Requirement(H, ">=", 12, "r")), ("hi", Requirement(40, ">=", H, "r"))]
    for req in (Requirement(48 / floor_div(H - 8, 4), "==", 12, "r"),
                Requirement(sympy.Min(H, 30) * 2, ">=", 50, "r"),
                Requirement(360, "divisible", floor_div(H, 2), "r")):
        reqs = pinned + [("q", req)]
        got = members(S.solve_requirements(["H"], reqs), ["H"], 60)
        assert got == {(h,) for (h, _) in _exact(reqs, 60) if _ == 1} and got, req
        assert read and read[-1] is not None  # (the last condition, on H in [12, 40])
