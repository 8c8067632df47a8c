"""Views that only a count makes exact, and torch's named pairs (issue 15, transformers' Hiera).

Hiera (transformers) "unrolls" its tokens: it views ``(N, h, w, C)`` as ``(N, h//2, 2, w//2, 2,
C)``, permutes the strides into the batch and flattens them there, and repeats that on the
result. The flatten copies at most sizes, so the next view's strides are not known; it is a view
at any strides only where it splits each dim, which holds wherever its element count does (``h
>= 2*(h//2)`` at every size, so equal products make each equal). Its mask-unit attention takes
``x.max(dim=3).values``. Every answer here is checked against real torch forwards: the sizes
``valid_sizes()`` states against a brute-force scan, the shapes at sizes torch runs and refuses.
"""

from __future__ import annotations

import math

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan
from symshape.dims import FloorDiv, positive_shares, rewritten, size_symbol, split_product_equality


class Unroll(nn.Module):
    """transformers' ``unroll`` (modeling_hiera.py) after a patch embedding of stride ``patch``,
    with ``rounds`` rounds of strides ``stride`` x ``stride``; ``tokens`` (if given) adds a
    position embedding of that many tokens, as Hiera's does."""

    def __init__(self, patch: int, stride: int, rounds: int, tokens: int | None = None, final: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, patch, patch)
        self.patch, self.schedule, self.final = patch, [[stride, stride]] * rounds, final
        self.pos = nn.Parameter(torch.zeros(1, tokens, 4)) if tokens else None

    def forward(self, x):
        image_shape = (x.shape[-2], x.shape[-1])
        h = self.conv(x).flatten(2).transpose(1, 2)
        if self.pos is not None:
            h = h + self.pos
        batch, _, channels = h.shape
        size = [i // self.patch for i in image_shape]
        current = size
        h = h.view(*([batch] + current + [channels]))
        for strides in self.schedule:
            current = [i // s for i, s in zip(current, strides)]
            shape = [batch] + [item for pair in zip(current, strides) for item in pair] + [channels]
            h = h.view(shape)
            n = len(shape)
            h = h.permute([0] + list(range(2, n - 1, 2)) + list(range(1, n - 1, 2)) + [n - 1])
            h = h.flatten(0, len(strides))
            batch *= math.prod(strides)
        return h.reshape(-1, math.prod(size), channels) if self.final else h


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(2, 3), st.integers(1, 2), st.booleans())
def test_unrolled_tokens_are_exact_where_torch_runs(patch, stride, rounds, final):
    model = Unroll(patch, stride, rounds, final=final).eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    upto = 2 * patch * stride ** rounds + 3
    assert members(analysis.valid_sizes(), ["H", "W"], upto) == scan(model, (3, "H", "W"), ["H", "W"], upto)
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [upto - 4, upto - 3, upto])) >= 0
    if final:  # the element count made the batch share of ``-1`` the batch size
        assert analysis.output_shape[0] == size_symbol("N")


def test_hieras_position_embedding_and_unrolling_leave_three_sizes():
    # 56*56 tokens after a stride-4 patch embedding, three rounds of 2 x 2: 8 divides h//4 and
    # w//4, and (h//4)*(w//4) == 3136, so h//4, w//4 in {8, 56, 392}, with a product of 3136
    model = Unroll(4, 2, 3, tokens=3136).eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert analysis.valid_sizes().summary() == (
        "H ∈ [32, 35] and W ∈ [1568, 1571]; or H ∈ [224, 227] and W ∈ [224, 227]; "
        "or H ∈ [1568, 1571] and W ∈ [32, 35]")
    sizes = [{"H": h, "W": w} for h, w in ((32, 1568), (227, 224), (1571, 35), (36, 1568), (224, 228), (64, 784))]
    assert assert_agrees(model, (3, "H", "W"), sizes) == 3
    H, W = size_symbol("H"), size_symbol("W")
    assert analysis.output_shape == (size_symbol("N"), FloorDiv(H, 4) * FloorDiv(W, 4), 4)  # 3136 where it runs


def test_a_view_that_merges_what_the_count_alone_leaves_open_is_still_refused():
    class Merges(nn.Module):
        def forward(self, x):  # (N, h, w, C) after a flatten of a permuted tensor
            y = x.permute(0, 2, 1, 3).flatten(0, 1)
            return y.view(y.shape[0] // 2, 2 * y.shape[1], -1)  # merges the batch's halves

    with pytest.raises(symshape.UnsupportedOperation, match="view"):
        symshape.analyze(Merges(), ("C", "H", "W"))


def test_element_counts_split_into_single_sizes_where_earlier_checks_make_each_share_positive():
    H, W, N = (size_symbol(n) for n in "HWN")
    f4, f8 = (lambda x: FloorDiv(x, 4)), (lambda x: FloorDiv(x, 8))
    count = (8 * N * f4(H) * f4(W), 32 * N * f8(H) * f8(W))
    assert split_product_equality(*count) == []  # floor(H/4) = 0 at H < 4 empties both sides
    positive = positive_shares(301056 * N, 96 * N * f4(H) * f4(W))
    assert set(positive) == {sympy.Ge(f4(H), 1), sympy.Ge(f4(W), 1)}
    assert positive_shares(6 * N, N * (H / 2 + sympy.Rational(1, 2)) * W) == []  # (H + 1)/2 may be 1/2: no size
    assert set(split_product_equality(*count, tuple(positive))) == {
        sympy.Eq(f4(H), 2 * f8(H)), sympy.Eq(f4(W), 2 * f8(W))}
    facts = (sympy.Eq(f4(H), 2 * f8(H)), sympy.Eq(f8(H), 2 * FloorDiv(H, 16)))
    assert rewritten(FloorDiv(f4(H) * f4(W), 4), facts) == FloorDiv(H, 16) * f4(W)


class Named(nn.Module):
    """torch's named pairs: ``max(dim)`` and ``min(dim)`` return ``(values, indices)`` with
    ``.values`` and ``.indices``; the indices are int64 (one_hot takes them)."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.LazyLinear(5)

    def forward(self, x):
        y = self.conv(x)
        if self.how == "values":
            y = y.max(dim=2).values
        elif self.how == "indices":
            y = F.one_hot(torch.min(y, 3, keepdim=True).indices, 16).flatten(2).float()
        else:
            y = y.max(3)[0] + y.min(dim=3)[1]
        return self.fc(y.flatten(1))


@pytest.mark.parametrize("how", ["values", "indices", "items"])
def test_named_pairs_of_max_and_min_are_followed_layer_by_layer(how):
    model = Named(how)
    analysis = symshape.analyze(model, (3, "H", "W"))
    # traced op by op (not the whole model run through torch's meta kernels): the Linear's
    # in_features is a formula
    assert analysis.in_features, analysis.steps
    assert any(s.rule == "max_min" for s in analysis.steps)
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 5, 8])) > 0


def test_an_attribute_a_value_does_not_have_is_refused_by_name_at_once():
    class Missing(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(torch.broadcast_tensors(x, x).values)  # a plain tuple: torch raises

    with pytest.raises(symshape.UnsupportedOperation, match="'values'"):
        symshape.analyze(Missing(), (4, "L"))
