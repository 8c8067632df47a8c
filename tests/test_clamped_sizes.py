"""Sizes clamped at a bound (``Max(0, n - 1)`` of a slice ``[:-1]``, a stride ``Max(1, T)`` past a dim
that may be empty) beside the same size computed another way: decided through the arguments of
the ``Max`` (symshape.dims.decide), settled by the earlier checks where the step runs, and a
tensor laid out row-major through them (WavLM's gated relative-position bias)."""

from __future__ import annotations

import sympy
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from symshape.dims import DEPENDS, batch_symbol, floor_div, settle, size_symbol
from oracle import assert_agrees

L = size_symbol("L")
TOP = 200


def _floor_term(draw):
    q = draw(st.integers(1, 6))
    return floor_div(draw(st.integers(1, 3)) * L + draw(st.integers(-12, 12)), q)


@st.composite
def clamped_relations(draw):
    """``a <= k*Max(b, c) + d`` (or Min, either side), each of a, b, c a floor of L or a number."""
    def part():
        return _floor_term(draw) if draw(st.booleans()) else sympy.Integer(draw(st.integers(-3, 3)))
    a, b, c = part(), part(), part()
    kind = draw(st.sampled_from([sympy.Max, sympy.Min]))
    k = draw(st.sampled_from([-2, -1, 1, 2, 3]))
    rel = draw(st.sampled_from([sympy.Le, sympy.Lt, sympy.Ge, sympy.Gt]))
    extremum = kind(b, c)
    rhs = k * extremum + draw(st.integers(-2, 2))
    return rel(a, rhs, evaluate=False) if draw(st.booleans()) else rel(rhs, a, evaluate=False)


@settings(max_examples=150, deadline=None)
@given(clamped_relations())
def test_a_relation_decided_through_a_max_holds_or_fails_at_every_size(cond):
    if len(cond.free_symbols) != 1:
        return
    outcome = settle(cond)
    values = [bool(cond.subs(L, v)) for v in range(1, TOP)]
    if outcome is True:
        assert all(values), cond
    elif outcome is False:
        assert not any(values), cond
    elif outcome == DEPENDS:
        assert any(values) and not all(values), cond


def test_a_max_beside_the_same_size_written_otherwise_is_decided():
    hand, clamped = floor_div(L - 20, 20), sympy.Max(0, floor_div(L, 20) - 1)
    assert settle(sympy.Le(hand, clamped, evaluate=False)) is True
    assert settle(sympy.Ge(2 * sympy.Max(1, hand) - 2 * hand, 0, evaluate=False)) is True


class GatedRelativePositions(nn.Module):
    """WavLM's encoder, shrunk: strided features, a positional convolution of even kernel with
    its extra position sliced off (``[:, :, :-1]`` of ``floor(L/20)``, 0 below L = 20), and the
    relative-position gate, a chunk of a projection, viewed across heads."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv1d(1, 16, 40, stride=20)
        self.pos_conv = nn.Conv1d(16, 16, 16, padding=8, groups=4)
        self.gru = nn.Linear(4, 8)
        self.const = nn.Parameter(torch.ones(1, 4, 1, 1))

    def forward(self, x):
        h = self.features(x[:, None]).transpose(1, 2)            # (N, T, 16), T = floor((L - 20)/20)
        p = self.pos_conv(h.transpose(1, 2))[:, :, :-1]           # (N, 16, T)
        h = h + p.transpose(1, 2)
        g = h.view(h.shape[:-1] + (4, -1)).permute(0, 2, 1, 3)    # (N, 4, T, 4)
        g = self.gru(g).view(g.shape[:-1] + (2, 4)).sum(-1)      # (N, 4, T, 2)
        a, b = torch.sigmoid(g).chunk(2, dim=-1)
        gate = a * (b * self.const - 1.0) + 2.0                   # (N, 4, T, 1), from a chunk
        return gate.view(h.shape[0] * 4, -1, 1)


def test_the_gate_of_a_sliced_positional_convolution_views_as_torch_does():
    model = GatedRelativePositions()
    # layer by layer (once the view was refused and the model ran whole on the meta kernels)
    steps = {s.name: s for s in symshape.analyze(model, ("L",)).steps}
    assert steps["getitem_1"].output[-1] == steps["features"].output[-1]  # the slice settled: L >= 40 there
    assert steps["view_2"].rule == "view"
    assert steps["view_2"].output == (4 * batch_symbol(), steps["features"].output[-1], 1)
    sizes = [{"L": n} for n in (1, 19, 20, 39, 40, 41, 59, 60, 99, 400)]
    assert assert_agrees(model, ("L",), sizes) == 6
