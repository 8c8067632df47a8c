"""Python's conversions of sizes while tracing: ``int()``, ``float()``, ``math.sqrt``, ``** 0.5``,
``torch.arange`` with float bounds, library functions fx is told to leave whole, and a pool
whose kernel is ``size // c`` where the model's branch has made ``size % c == 0`` -- each
compared with torch (issue 15 point 2: arithmetic on sizes; NesT, DINOv3, MobileNetV5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan


class HalfByInt(nn.Module):
    def forward(self, x):
        return x[:, :, : int(x.shape[2] / 2), : int(x.shape[3] * 0.5) + 1]


class RoundedFloat(nn.Module):
    """``int(h * 0.3)``: Python rounds the product (int(10 * 0.3) is 3, the exact value 2.99...):
    ``DoubleFloor``, evaluated as Python does."""

    def forward(self, x):
        return x[..., : int(x.shape[-1] * 0.3)]


class RoundedFloatPlusOne(nn.Module):
    """``int(h * 0.3 + 1)``: arithmetic on the rounded double (10 * 0.3 + 1 is 4.000000000000001):
    refused by name, never guessed."""

    def forward(self, x):
        return x[..., : int(x.shape[-1] * 0.3 + 1)]


class SquareGrid(nn.Module):
    """NesT's deblockify: ``int(math.sqrt(T))`` of a token count, then a square grid."""

    def forward(self, x):
        t = x.shape[2] * x.shape[3]
        g = int(math.sqrt(t))
        return x.reshape(x.shape[0], x.shape[1], g, g)


class CeilRoot(nn.Module):
    def forward(self, x):
        side = math.ceil(math.sqrt(x.shape[-1]))
        return x[..., :side].unsqueeze(-1) * x[..., side - 1 :].sum(-1, keepdim=True).unsqueeze(-1)


class PowHalf(nn.Module):
    def forward(self, x):
        g = int(x.shape[-1] ** 0.5)
        return x[..., : g * g].reshape(x.shape[0], x.shape[1], g, g)


class FloatGrid(nn.Module):
    """DINOv3's centred grid: ``float()`` of a size and ``arange`` from 0.5."""

    def forward(self, x):
        h = x.shape[-1]
        d = float(h)
        return x + (torch.arange(0.5, h) / d)


class PlainConversions(nn.Module):
    """int() and float() of plain values and isinstance checks still act as the builtins."""

    def forward(self, x):
        k = int("3") + int(2.7) + int(x.shape[1])  # 3 + 2 + C
        assert isinstance(k, int) and not isinstance(x.shape[-1] * 1.0, int)
        assert isinstance(float(x.shape[-1]), float) and int == int
        return x.repeat(1, k // x.shape[1], 1)


IDIOMS = [
    (HalfByInt, (3, "H", "W"), ("H", "W"), range(1, 9)),
    (SquareGrid, (3, "H", "W"), ("H", "W"), range(1, 13)),
    (CeilRoot, (2, "L"), ("L",), range(1, 60)),
    (PowHalf, (2, "L"), ("L",), range(1, 60)),
    (FloatGrid, (3, "L"), ("L",), range(1, 40)),
    (PlainConversions, (3, "L"), ("L",), range(1, 10)),
    (RoundedFloat, (3, "L"), ("L",), range(1, 200)),
]


@pytest.mark.parametrize("make,shape,names,values", IDIOMS, ids=[m.__name__ for m, *_ in IDIOMS])
def test_conversions_of_sizes_agree_with_torch(make, shape, names, values):
    accepted = assert_agrees(make().eval(), shape, grid(names, values))
    assert accepted > 0


def test_arithmetic_on_a_product_python_rounded_is_refused_by_name():
    with pytest.raises(symshape.UnsupportedOperation, match="0.3"):
        symshape.analyze(RoundedFloatPlusOne(), (3, "L"))


def test_a_rounded_root_reads_as_python_computes_it():
    a = symshape.analyze(SquareGrid(), (3, "H", "W"))
    assert str(a.output_shape) == "(N, 3, floor(sqrt(H*W)), floor(sqrt(H*W)))"
    assert a.at(H=2, W=8).output_shape == (1, 3, 4, 4)
    with pytest.raises(symshape.InvalidInputSize, match="reshape"):
        a.at(H=2, W=3)
    # the solver refuses the root by name rather than guess
    with pytest.raises(symshape.SymshapeError, match="sqrt"):
        a.valid_sizes()


def test_valid_sizes_through_a_float_grid_match_a_scan():
    a = symshape.analyze(FloatGrid(), (3, "L"))
    assert members(a.valid_sizes(), ("L",), 40) == scan(FloatGrid(), (3, "L"), ("L",), 40)


def test_the_stand_ins_are_gone_after_tracing_and_the_builtins_are_untouched():
    import builtins
    symshape.analyze(SquareGrid(), (3, "H", "W"))
    assert "int" not in globals() and "float" not in globals()
    assert builtins.int is int and int("7") == 7


@settings(max_examples=40, deadline=None)
@given(start=st.sampled_from([0, 1, 3, 0.5, 2.25, -1.5, 0.75]),
       step=st.sampled_from([1, 2, 3, 0.5, 0.25, 1.5, -1, -0.5]),
       scale=st.sampled_from([1, 2]), shift=st.integers(-3, 3))
def test_arange_lengths_agree_with_torch(start, step, scale, shift):
    class Ar(nn.Module):
        def forward(self, x):
            end = scale * x.shape[-1] + shift
            a, b = (start, end) if step > 0 else (end, start)
            return torch.arange(a, b, step).float().unsqueeze(0) + 0 * x.sum()

    assert_agrees(Ar(), (3, "L"), grid(("L",), range(1, 25)))


def test_arange_refuses_a_size_torch_refuses_with_its_reason():
    class Backwards(nn.Module):
        def forward(self, x):
            return torch.arange(10.5, x.shape[-1]).unsqueeze(0) + 0 * x.sum()

    a = symshape.analyze(Backwards(), (3, "L"))
    with pytest.raises(symshape.InvalidInputSize, match="inconsistent with step sign"):
        a.at(L=4)
    assert a.at(L=11).output_shape == (1, 1)


@torch.fx.wrap
def _grid_of(shape, offset: float):
    """A library's helper fx leaves whole: it branches on a size and converts one to float."""
    h, w = shape
    if h > w:
        h, w = w, h
    ys = (torch.arange(0.5, h) + offset) / float(h)
    xs = torch.arange(w, dtype=torch.float32) / float(w)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


class WrappedGrid(nn.Module):
    def forward(self, x):
        g = _grid_of(x.shape[-2:], 0.0)
        return x.flatten(2).transpose(1, 2)[:, : g.shape[0] * g.shape[1]] + g.flatten(0, 1).sum(-1, keepdim=True)


def test_a_library_function_fx_leaves_whole_is_traced_by_sides():
    accepted = assert_agrees(WrappedGrid(), (2, "H", "W"), grid(("H", "W"), range(1, 8)))
    assert accepted == 49
    a = symshape.analyze(WrappedGrid(), (2, "H", "W"))
    assert "_grid_of" in " ".join(s.op for s in a.steps)


class FuseTo(nn.Module):
    """MobileNetV5's fusion adapter: pool an n x n map down to c x c when c divides n, else
    interpolate."""

    def __init__(self, c: int):
        super().__init__()
        self.c = c

    def forward(self, x):
        h = x.shape[-1]
        if h != self.c:
            if h % self.c != 0:
                x = F.interpolate(x, size=(self.c, self.c), mode="bilinear")
            else:
                k = h // self.c
                x = F.avg_pool2d(x, kernel_size=(k, k), stride=(k, k))
        return x


def test_a_pool_of_whole_windows_on_the_side_where_they_divide():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), FuseTo(4))
    accepted = assert_agrees(model, (3, "S", "S"), [{"S": s} for s in range(1, 70)])
    assert accepted == 69
    a = symshape.analyze(model, (3, "S", "S"))
    assert a.at(S=64).output_shape == (1, 4, 4, 4)


class ManySamePads(nn.Module):
    """More modules than symshape runs whole, each asking a question decided at every size
    (PNASNet's Conv2dSame: ``max(pad, 0)`` of a pad that is never negative)."""

    def __init__(self, n: int = 40):
        super().__init__()
        self.convs = nn.ModuleList(_SamePad() for _ in range(n))

    def forward(self, x):
        for c in self.convs:
            x = c(x)
        return x


class _SamePad(nn.Module):
    def forward(self, x):
        h = x.shape[-1]
        pad = max((math.ceil(h / 2) - 1) * 2 + 3 - h, 0)
        return F.avg_pool1d(F.pad(x, (pad // 2, pad - pad // 2)), 3, 1)


def test_a_question_with_one_answer_at_every_size_is_no_branch():
    accepted = assert_agrees(ManySamePads(40), (2, "L"), [{"L": n} for n in (1, 2, 3, 7, 64, 100)])
    assert accepted == 6


class Windows(nn.Module):
    """SAM2's window unpartition: ``windows.shape[0] // (h * w)`` with ``h = H // 4``, which
    is 0 below 4 (Python raises ZeroDivisionError there), and a quotient by a size that is not
    exact (``W // (H // 3)``)."""

    def forward(self, x):
        n, c, h, w = x.shape
        hp, wp = h // 4, w // 4
        windows = x[:, :, : hp * 4, : wp * 4].reshape(n, c, hp, 4, wp, 4).permute(0, 2, 4, 1, 3, 5)
        windows = windows.reshape(-1, c, 4, 4)
        b = windows.shape[0] // (hp * wp)
        return windows.reshape(b, -1)[:, : w // (h // 3)]


def test_a_size_divided_by_a_size_is_exact_and_refused_where_python_raises():
    a = symshape.analyze(Windows(), (2, "H", "W"))
    assert str(a.output_shape[1]) == "Max(0, Min(32*floor(H/4)*floor(W/4), floor(W/floor(H/3))))"
    with pytest.raises(symshape.InvalidInputSize, match="ZeroDivisionError"):
        a.at(H=3, W=9)
    assert members(a.valid_sizes(), ("H", "W"), 14) == scan(Windows(), (2, "H", "W"), ("H", "W"), 14)
    assert_agrees(Windows(), (2, "H", "W"), grid(["H", "W"], [1, 3, 4, 5, 8, 9, 13]))


class AfterAConv(nn.Module):
    """``x.numel() // ((h + 1) // 2)`` after a 4x4 convolution: ``h = H - 3`` is 0 nowhere torch
    gets here (the convolution needs H >= 4), so no side divides by 0."""

    def __init__(self, conv: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 4) if conv else nn.Identity()

    def forward(self, x):
        x = self.conv(x)
        h = x.shape[-2] - (0 if isinstance(self.conv, nn.Conv2d) else 3)
        return x.flatten()[: x.numel() // ((h + 1) // 2)]


@pytest.mark.parametrize("conv", [True, False])
def test_a_division_by_a_size_asks_no_question_the_checks_before_it_answer(conv):
    a = symshape.analyze(AfterAConv(conv), (2, "H", "W"))
    assert ("ZeroDivisionError" in str(a.explain())) is not conv  # without the conv: H < 2 raises
    assert_agrees(AfterAConv(conv), (2, "H", "W"), grid(["H", "W"], [1, 2, 3, 4, 5, 8]))
