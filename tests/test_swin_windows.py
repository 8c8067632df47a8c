"""MONAI's Swin windows (SwinUNETR), each idiom in a small model compared with torch.

Its patch embedding pads each dim to a multiple of the patch on one side of a branch, so the
sizes after it are defined by cases; its blocks clip the window to a size that is smaller
(``get_window_size``), pad to whole windows, count the windows of the attention mask from the
padded size (``int(np.ceil(h / window)) * window``) and divide the windows of the input by them
(``B_ // nW``); its attention gathers a fixed 49 x 49 table of biases and reshapes it by the
window (``reshape(n, n, -1)``). Each test fails on the code before the change it names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid, members, scan

LENGTHS = list(range(1, 31))


class PatchEmbed(nn.Module):
    """``L`` padded to a multiple of 2 where it is odd, then a stride-2 patch: ``floor((L + 2)/2)``
    or ``floor(L/2)`` by cases, inside the modules after it."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv1d(2, 2, 2, stride=2)

    def forward(self, x):
        if x.shape[2] % 2 != 0:
            x = F.pad(x, (0, 2 - x.shape[2] % 2))
        return self.proj(x)


class ClippedWindow(nn.Module):
    """The window is the size itself where the size is at most 3: ``h / window`` is ``h / h``."""

    def forward(self, x):
        h = x.shape[2]
        window = h if h <= 3 else 3
        padded = int(np.ceil(h / window)) * window
        return F.pad(x, (0, padded - h))[:, :, :h]


class Embedded(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.embed, self.block = PatchEmbed(), block

    def forward(self, x):
        return self.block(self.embed(x))


def test_a_window_clipped_to_a_size_defined_by_cases_rounds_case_by_case():
    """``math.ceil`` / ``np.ceil`` of a size defined by cases over the window: ``h / h`` is the
    exact quotient 1 (sympy kept a Piecewise times its own reciprocal, which no rounding reads:
    refused before), ``h / 3`` is rounded in each case; the slice ``[:h]`` of ``h`` padded to
    whole windows is ``h`` in each case (no ``Min`` left, no side for it)."""
    model = Embedded(ClippedWindow())
    assert assert_agrees(model, (2, "L"), grid(["L"], LENGTHS)) == len(LENGTHS)
    out = symshape.analyze(model, (2, "L")).output_shape
    assert out == symshape.analyze(PatchEmbed(), (2, "L")).output_shape
    assert "Min" not in str(out)


class WindowsOverMaskWindows(nn.Module):
    """The input's windows (``N * floor(L/3)``, counted from the unpadded size on the side where
    no pad is needed) divided by the mask's (``ceil(L/3)``, counted from the padded size)."""

    def forward(self, x):
        n, c, length = x.shape
        if (3 - length % 3) % 3 > 0:
            return x
        windows = x.reshape(n * (length // 3), c, 3)
        mask_windows = math.ceil(length / 3)
        return windows.view(windows.shape[0] // mask_windows, mask_windows, -1)


def test_windows_counted_two_ways_divide_exactly_where_the_side_makes_them_equal():
    """``B_ // nW`` where the side's facts make ``floor(L/3) == ceil(L/3)``: the quotient is the
    batch size, not ``floor(N*floor(L/3)/floor((L + 2)/3))`` -- which left valid_sizes() unsolvable
    (a floor of a quotient of sizes) and every shape after it a nest of cases."""
    model = WindowsOverMaskWindows()
    assert assert_agrees(model, (2, "L"), grid(["L"], LENGTHS)) == len(LENGTHS)
    analysis = symshape.analyze(model, (2, "L"))
    assert "floor(N" not in str(analysis.output_shape)
    assert members(analysis.valid_sizes(), ["L"], 40) == scan(model, (2, "L"), ["L"], 40)


class BiasTable(nn.Module):
    """A fixed table of 48 entries reshaped by the size (MONAI's relative position biases,
    ``table[index[:n, :n]].reshape(n, n, -1)`` where the window ``n`` may be smaller than 7)."""

    def __init__(self, entries: int = 48):
        super().__init__()
        self.register_buffer("table", torch.arange(float(entries)))

    def forward(self, x):
        return x * self.table.reshape(x.shape[2], -1).sum()


@pytest.mark.parametrize("entries", [48, 1, 97, 360])
def test_a_fixed_number_of_elements_reshaped_by_a_size_is_valid_at_its_divisors(entries):
    """``c divisible by L``: the sizes are exactly ``c``'s divisors (valid_sizes() raised
    Unsolvable, "a size-dependent divisor", before); compared with a scan of torch."""
    model = BiasTable(entries)
    valid = symshape.analyze(model, (2, "L")).valid_sizes()
    assert members(valid, ["L"], 400) == scan(model, (2, "L"), ["L"], 400)
    assert members(valid, ["L"], 400) == {(d,) for d in range(1, entries + 1) if entries % d == 0}
