"""``F.interpolate`` to a size computed from the input's, against torch: an output size of 0 is
refused by every mode but "area" (adaptive average pooling, which makes an empty output and
refuses only a negative size). symshape accepted it (transformers' DPT resizes its position
grid to ``(H // 16, W // 16)``): a wrong answer wherever the proof's size was not one of them."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan

_MODES = {3: ["nearest", "linear", "area", "nearest-exact"], 4: ["nearest", "bilinear", "bicubic", "area"],
          5: ["nearest", "trilinear", "area"]}


class ResizedGrid(nn.Module):
    """A fixed grid resized to ``(L // q + b)`` per spatial dim, added to the input's first
    channel's corner."""

    def __init__(self, rank: int, mode: str, q: int, b: int):
        super().__init__()
        self.rank, self.mode, self.q, self.b = rank, mode, q, b
        self.register_buffer("grid", torch.ones(1, 2, *([5] * (rank - 2))))

    def forward(self, x):
        n = x.shape[-1] // self.q + self.b
        size = (n,) * (self.rank - 2)
        y = F.interpolate(self.grid, size=size, mode=self.mode)
        return y.flatten(1).sum(1, keepdim=True) + x[:, :1, :1]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([3, 4, 5]), st.data(), st.integers(1, 4), st.integers(-2, 1))
def test_an_output_size_of_zero_is_refused_as_torch_refuses(rank, data, q, b):
    mode = data.draw(st.sampled_from(_MODES[rank]))
    assert_agrees(ResizedGrid(rank, mode, q, b), (1, "L"), grid(["L"], range(1, 13)))


@pytest.mark.parametrize("mode, runs", [("nearest", False), ("bilinear", False), ("area", True)])
def test_an_upsample_to_a_fixed_size_of_zero(mode, runs):
    """``nn.Upsample(size=(0, 3))``: torch refuses it at every size, but in "area" mode."""
    model = nn.Sequential(nn.Upsample(size=(0, 3), mode=mode), nn.Flatten())
    assert assert_agrees(model, (2, "H", "W"), grid(["H", "W"], [1, 4])) == (4 if runs else 0)


def test_dpts_position_grid_is_resized_to_at_least_one_patch():
    """DPT: ``F.interpolate(pos, size=(H // 16, W // 16), mode="bilinear")``: H and W at least 16."""

    class Dpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.randn(1, 8, 14, 14))

        def forward(self, x):
            h, w = x.shape[-2] // 16, x.shape[-1] // 16
            return F.interpolate(self.pos, size=(h, w), mode="bilinear") + x[:, :1, :h, :w]

    a = symshape.analyze(Dpt(), (3, "H", "W"))
    assert str(a.valid_sizes()) == "H ≥ 16 and W ≥ 16"
    assert members(a.valid_sizes(), ["H", "W"], 40) == scan(Dpt(), (3, "H", "W"), ["H", "W"], 40)
    with pytest.raises(symshape.InvalidInputSize, match="greater than 0"):
        a.at(H=7, W=9)
