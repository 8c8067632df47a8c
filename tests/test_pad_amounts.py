"""F.pad with amounts computed from sizes (TensorFlow-"same" padding, pytorch-UNet's Up, a crop
by a fraction of the size) is sized by the padding rule itself: the amounts are size expressions
whose sign does not depend on the size, and torch's checks of each mode hold as requirements.
Checked against torch at every size of a grid, the mode, kernel and stride drawn by hypothesis."""

import math

import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid

SIZES = grid(["H", "W"], [1, 2, 3, 4, 5, 6, 7, 9, 12, 13])


def _same(x: int, k: int, s: int, d: int = 1) -> int:
    """timm's get_same_padding (TensorFlow's 'SAME')."""
    return max((math.ceil(x / s) - 1) * s + (k - 1) * d + 1 - x, 0)


class SamePad(nn.Module):
    def __init__(self, k: int, s: int, mode: str, value: float = 0.0):
        super().__init__()
        self.k, self.s, self.mode, self.value = k, s, mode, value
        self.conv = nn.Conv2d(1, 2, k, s)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        ph, pw = _same(ih, self.k, self.s), _same(iw, self.k, self.s)
        kw = {"value": self.value} if self.mode == "constant" else {}
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=self.mode, **kw)
        return self.conv(x)


class FractionCrop(nn.Module):
    """Negative amounts: crop a quarter of the columns on the left and a third of the rows below."""

    def __init__(self, a: int, b: int):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return F.pad(x, (-(x.size(3) // self.a), 0, 0, -(x.size(2) // self.b)))


class Grow(nn.Module):
    """Circular padding by a fraction of the size (wraps around at most once)."""

    def forward(self, x):
        return F.pad(x, (x.size(3) // 2, 0, 0, x.size(2) // 3), mode="circular")


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 5).flatmap(lambda k: st.tuples(st.just(k), st.integers(1, min(k, 3)))),
       st.sampled_from(["constant", "reflect", "replicate", "circular"]))
def test_same_padding_by_size_agrees_with_torch(ks, mode):
    """kernel >= stride: the amount is never negative, so ``max(…, 0)`` is decided (with a
    kernel below the stride it is a branch on the size, which the model runs by sides)."""
    k, s = ks
    model = SamePad(k, s, mode).eval()
    a = symshape.analyze(model, (1, "H", "W"))
    assert a.rules_applied.get("F.pad") == "pad_function"  # the rule, not torch's meta kernel
    assert_agrees(model, (1, "H", "W"), SIZES)


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 5), st.integers(2, 5))
def test_cropping_by_a_fraction_of_the_size_agrees_with_torch(a, b):
    model = FractionCrop(a, b)
    analysis = symshape.analyze(model, (1, "H", "W"))
    assert analysis.rules_applied.get("F.pad") == "pad_function"
    assert_agrees(model, (1, "H", "W"), SIZES)


def test_circular_padding_by_a_fraction_agrees_with_torch():
    assert_agrees(Grow(), (1, "H", "W"), SIZES)
    assert str(symshape.analyze(Grow(), (1, "H", "W")).output_shape) == "(N, 1, H + floor(H/3), W + floor(W/2))"


def test_an_amount_whose_sign_depends_on_the_size_goes_to_torchs_kernel():
    class Either(nn.Module):
        def forward(self, x):
            return F.pad(x, (x.size(3) - 4, 0))  # crops below W = 4, pads above
    a = symshape.analyze(Either(), (1, "H", "W"))
    assert a.rules_applied.get("F.pad") != "pad_function"
    assert_agrees(Either(), (1, "H", "W"), SIZES)


def test_the_derivation_shows_the_amounts():
    """Symbolically the amounts are formulas; at sizes, their values (9 + 1 + 1, not the formula)."""
    a = symshape.analyze(SamePad(3, 2, "constant"), (1, "H", "W"))
    assert "rows:       H + (-floor(H/2) + floor((H + 1)/2)) + (-H + floor(H/2) + floor((H + 1)/2) + 1)" \
        in a.explain(full=True)
    at = a.explain(H=9, W=10, full=True)
    assert "rows:       9 + 1 + 1 (constant) = 11" in at and "columns:    10 + 0 + 1 (constant) = 11" in at
