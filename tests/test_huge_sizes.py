"""Sizes near 2**24, 2**31 and 2**40: ``at()``, ``formula()`` and ``formula().grid`` agree with
torch's int64 arithmetic (a meta-device forward, which allocates nothing), and where a tensor of
the forward would be too large to count they raise a clear error instead of a number."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape


class Stack1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 7, stride=3, padding=2)
        self.pool = nn.MaxPool1d(3, stride=2, ceil_mode=True)
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        x = self.pool(self.conv(x))
        x = F.interpolate(x, scale_factor=0.35)
        return self.fc(F.avg_pool1d(x, 5, stride=4).flatten(1))


def _meta_features(model, n):
    with torch.device("meta"):
        m = Stack1d()
    x = torch.empty(1, 2, n, device="meta")
    y = m.pool(m.conv(x))
    y = F.interpolate(y, scale_factor=0.35)
    return F.avg_pool1d(y, 5, stride=4).flatten(1).shape[1]


SIZES = [2**p + d for p in (24, 31) for d in (-2, -1, 0, 1, 2)] + [3**20]


def test_every_entry_point_agrees_with_torch_at_huge_sizes():
    a = symshape.analyze(Stack1d(), (2, "L"))
    f = a.formula()
    grid = f.grid(L=SIZES)
    for n, g in zip(SIZES, grid.values.tolist()):
        want = _meta_features(None, n)
        assert a.at(L=n).in_features["fc"] == f(L=n) == g == want, n


@pytest.mark.parametrize("n", [2**34, 2**34 + 11, 2**40, 5**17 + 4])
def test_max_pool1d_checks_its_length_in_32_bits_and_symshape_says_so(n):
    """torch's max_pool1d (without indices) raises where its output length wraps to <= 0 in 32
    bits and runs where it wraps to a positive value: symshape raises BoundExceeded from 2**31
    (after the stride-3 conv, the pool's output passes 2**31 from L = 6 * 2**31 on)."""
    a = symshape.analyze(Stack1d(), (2, "L"))
    for call in (lambda: a.at(L=n), lambda: a.formula()(L=n)):
        with pytest.raises(symshape.BoundExceeded, match="32 bits"):
            call()
    with pytest.raises(symshape.InvalidArgument):
        a.formula().grid(L=[5, n])
    assert symshape.analyze(nn.MaxPool1d(3, 2, return_indices=True), (2, "L")).at(L=n)  # its own kernel: exact
    with torch.device("meta"):
        pooled = nn.MaxPool1d(3, 2, return_indices=True)(torch.empty(1, 2, n))[0].shape[-1]
    assert symshape.analyze(nn.MaxPool1d(3, 2, return_indices=True), (2, "L")).at(L=n).output_shape[0][-1] == pooled


class Image(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.conv(x), 4).flatten(1))


@pytest.mark.parametrize("side", [2**30, 2**31, 2**40])
def test_a_tensor_too_large_to_count_is_a_clear_error_never_a_number(side):
    a = symshape.analyze(Image(), (1, "H", "W"))
    f = a.formula()
    assert f(H=2**14, W=2**14) == 128  # in_features stays small: the conv's output is what grows
    for call in (lambda: a.at(H=side, W=side), lambda: f(H=side, W=side), lambda: f.accepts(H=side, W=side)):
        with pytest.raises(symshape.BoundExceeded, match="2\\*\\*58"):
            call()
    with pytest.raises(symshape.InvalidArgument, match="more than torch counts"):
        f.grid(H=[8, side], W=[8, side])
    with torch.device("meta"):
        m = Image()
    if side >= 2**31:  # and torch itself refuses these: its byte count overflows int64
        with pytest.raises(RuntimeError, match="overflow"):
            m(torch.empty(1, 1, side, side, device="meta"))


def test_the_fast_path_bound_leaves_ordinary_sizes_fast_and_exact():
    a = symshape.analyze(Image(), (1, "H", "W"))
    f = a.formula()
    assert f._countable == 2**16
    for h in (4, 100, 2**16, 2**16 + 1, 3 * 2**16):
        assert f(H=h, W=h) == 128
    assert math.prod(a.at(H=2**16 + 1, W=5).steps[0].output) == 8 * (2**16 - 1) * 3
