"""The scaled relative-position index against torch.

MViTv2's ``cal_rel_pos_type`` (and SAM's and ViTDet's ``get_rel_pos`` where the grids differ)
index a table of relative positions between a grid of ``q`` queries and one of ``k`` keys with

    dist = arange(q)[:, None] * max(k / q, 1.0) - arange(k)[None, :] * max(q / k, 1.0)
    dist += (k - 1) * max(q / k, 1.0)
    table[dist.long()]

in float32, and torch's CPU kernel raises for an index past the table. symshape follows the
float32 arithmetic exactly (``symshape.dims.RelPosReach``, evaluated as torch computes it), so
the sizes past the table are refused and every other size runs. hypothesis draws the two grids'
strides and the table's length; every size in 1..96 is compared with a CPU forward, and the
valid sizes with a scan. Variations of the idiom that symshape does not follow stay refused.
"""

import itertools

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import members, scan
from symshape.compiled import compile_exprs
from symshape.dims import RelPosReach, rel_pos_reach, size_symbol

LENGTHS = 96


def _dist(q: int, k: int, q_ratio: float, k_ratio: float, shift: float) -> torch.Tensor:
    dist = torch.arange(q, dtype=torch.long).unsqueeze(-1) * q_ratio - torch.arange(k, dtype=torch.long).unsqueeze(0) * k_ratio
    dist += shift
    return dist


def _sam_coords(q: int, k: int) -> torch.Tensor:
    """timm's and SAM's ``get_rel_pos``: the same index, written with ``[:, None]`` and a sum."""
    q_coords = torch.arange(q)[:, None] * max(k / q, 1.0)
    k_coords = torch.arange(k)[None, :] * max(q / k, 1.0)
    return (q_coords - k_coords) + (k - 1) * max(q / k, 1.0)


class ScaledRelPos(nn.Module):
    """Attention from a grid pooled by ``q_stride`` to one pooled by ``k_stride`` (ceil mode, as
    MViTv2's pooling convolutions give), with a relative-position table of ``table`` rows;
    MViTv2's code, or SAM's (``sam``)."""

    def __init__(self, q_stride: int, k_stride: int, table: int, sam: bool = False):
        super().__init__()
        self.q_stride, self.k_stride, self.sam = q_stride, k_stride, sam
        self.rel_pos = nn.Parameter(torch.zeros(table, 2))

    def forward(self, x):
        q = (x.shape[-1] + self.q_stride - 1) // self.q_stride
        k = (x.shape[-1] + self.k_stride - 1) // self.k_stride
        q_ratio = max(k / q, 1.0)
        k_ratio = max(q / k, 1.0)
        dist = _sam_coords(q, k) if self.sam else _dist(q, k, q_ratio, k_ratio, (k - 1) * k_ratio)
        rel = self.rel_pos[dist.long()]  # (q, k, 2)
        return x[..., :1] * rel.sum() + rel.new_zeros(k).sum()


@settings(max_examples=16, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 60), st.booleans())
def test_the_scaled_relative_position_index_agrees_with_torch(q_stride, k_stride, table, sam):
    model = ScaledRelPos(q_stride, k_stride, table, sam)
    analysis = symshape.analyze(model, (3, "L"))
    runs = scan(model, (3, "L"), ("L",), LENGTHS)
    for n in range(1, LENGTHS + 1):
        try:
            got = tuple(int(d) for d in analysis.at(L=n).output_shape)
        except symshape.InvalidInputSize:
            got = None
        assert (got is not None) == ((n,) in runs), (q_stride, k_stride, table, sam, n, got)
        if got is not None:
            assert got == (1, 3, 1)
    assert members(analysis.valid_sizes(), ("L",), LENGTHS) == runs


def test_mvitv2_sizes_are_refused_past_the_table_and_accepted_below():
    """MViTv2-T's first stage: tokens at stride 4, keys pooled to stride 16, a table of 111 rows
    (made for 224): at 228 the greatest index is 109 (q = 57, k = 15: 2*57 - 1 - 57/15 = 109.2,
    truncated), at 229 it is 111 (q = 58), and torch's CPU raises."""
    model = ScaledRelPos(4, 16, 111)
    analysis = symshape.analyze(model, (3, "L"))
    assert str(analysis.valid_sizes()) == "L ∈ [1, 228]"
    assert members(analysis.valid_sizes(), ("L",), 240) == scan(model, (3, "L"), ("L",), 240)
    with pytest.raises(symshape.InvalidInputSize, match="out of bounds"):
        analysis.at(L=229)


def test_rel_pos_reach_is_the_greatest_entry_torch_computes():
    """The entry at (q - 1, 0) is the greatest of the whole grid, in float32 as torch rounds it;
    the compiled code (Python and torch backends) computes the same."""
    q_size, k_size = size_symbol("q"), size_symbol("k")
    on_python = compile_exprs([q_size, k_size], [RelPosReach(q_size, k_size)])
    on_torch = compile_exprs([q_size, k_size], [RelPosReach(q_size, k_size)], backend="torch")
    pairs = list(itertools.product(range(1, 41), repeat=2)) + [(100, 7), (7, 100), (224, 56), (999, 1000)]
    for q, k in pairs:
        q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
        dist = _dist(q, k, q_ratio, k_ratio, (k - 1) * k_ratio).long()
        assert int(dist.max()) == rel_pos_reach(q, k) == int(RelPosReach(q, k)) == on_python(q, k)[0], (q, k)
        assert int(dist.min()) == 0
    qs, ks = torch.tensor([q for q, _ in pairs]), torch.tensor([k for _, k in pairs])
    assert on_torch(qs, ks)[0].tolist() == [rel_pos_reach(q, k) for q, k in pairs]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**61), st.integers(1, 2**61))  # (entries below 2**63: an int64)
def test_rel_pos_reach_is_the_entry_torch_computes_at_any_size(q, k):
    """The one entry, (q - 1, 0), computed by torch as the model's code computes it, at sizes no
    grid has (float32's rounding is what matters there): the same as symshape's."""
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    entry = torch.tensor([q - 1]) * q_ratio - torch.tensor([0]) * k_ratio
    entry += (k - 1) * k_ratio
    assert rel_pos_reach(q, k) == int(entry.long()[0])


def test_rel_pos_reach_grows_with_each_grid():
    """What the solver's bisection relies on (symshape.quasi): nondecreasing in q and in k."""
    for q, k in itertools.product(range(1, 80), repeat=2):
        assert rel_pos_reach(q + 1, k) >= rel_pos_reach(q, k) <= rel_pos_reach(q, k + 1)


class Varied(nn.Module):
    """The idiom with one part changed: entries symshape does not follow exactly."""

    def __init__(self, change: str):
        super().__init__()
        self.change = change
        self.rel_pos = nn.Parameter(torch.zeros(40, 2))

    def forward(self, x):
        q, k = x.shape[-1], (x.shape[-1] + 3) // 4
        q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
        shift = (k - 1) * k_ratio
        if self.change == "ratio":
            q_ratio = max(k / q, 1.5)
        elif self.change == "shift":
            shift = (k - 2) * k_ratio
        dist = _dist(q, k, q_ratio, k_ratio, shift)
        if self.change == "double":
            dist = dist.double()
        return x[..., :1] * self.rel_pos[dist.long()].sum()


@pytest.mark.parametrize("change", ["ratio", "shift", "double"])
def test_a_changed_idiom_is_refused(change):
    with pytest.raises(symshape.UnsupportedOperation, match="indices computed from the input's sizes"):
        symshape.analyze(Varied(change), (3, "L"))
