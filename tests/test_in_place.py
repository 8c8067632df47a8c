"""In-place arithmetic against torch: ``x += y`` (``-=``, ``*=``, ``/=``, ``//=``, ``%=``, ``**=``, ``&=``,
``|=``, ``^=``), ``x.add_(y)`` and friends write ``x``, so ``y`` must
broadcast to x's shape, which x keeps (out of place, ``x + y`` may grow ``x``).

fx has no in-place dunders: Python fell back to ``x = x + y``, and symshape accepted sizes where
``y`` is longer than ``x`` (x of length 1 broadcasting to y's), which torch refuses -- a wrong
answer wherever the proof's size was not one of them. symshape.trace records ``x += y`` on a
tensor as ``add_``, and the rule (symshape.rules.combine.elementwise_in_place) requires it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan

_DIMS = st.sampled_from(["L", "L8", 2, 1])
_OPS = st.sampled_from(["+=", "-=", "*=", "/=", "//=", "%=", "**=", "add_", "mul_"])


class InPlace(nn.Module):
    """``t op= u`` of tensors made from the input's size L (``L8`` is ``L // 8``): ``t`` of dtype
    ``dtype`` (None: the input's own, floating), ``u`` floating or a number. (An integer ``t``
    with a floating ``u`` is torch's refusal at every size, a dtype check symshape leaves to the
    proof.)"""

    def __init__(self, dims, other, op, dtype=None):
        super().__init__()
        self.dims, self.other, self.op, self.dtype = dims, other, op, dtype

    def _shape(self, dims, n):
        return [n if d == "L" else n // 8 if d == "L8" else d for d in dims]

    def forward(self, x):
        n = x.shape[-1]
        t = x.new_zeros(self._shape(self.dims, n)) if self.dtype is None else \
            torch.zeros(self._shape(self.dims, n), dtype=self.dtype)
        u = self.other if isinstance(self.other, (int, float)) else x.new_ones(self._shape(self.other, n))
        if self.op == "+=":
            t += u
        elif self.op == "-=":
            t -= u
        elif self.op == "*=":
            t *= u
        elif self.op == "/=":
            t /= u
        elif self.op == "//=":
            t //= u
        elif self.op == "%=":
            t %= u
        elif self.op == "**=":
            t **= u
        else:
            t = getattr(t, self.op)(u)
        return t.reshape(1, -1)


@settings(max_examples=80, deadline=None)
@given(st.lists(_DIMS, min_size=1, max_size=3), st.one_of(st.lists(_DIMS, min_size=0, max_size=3), st.just(2.0)),
       _OPS, st.sampled_from([None, torch.float64]))
def test_in_place_arithmetic_agrees_with_torch(dims, other, op, dtype):
    assume(any(d in ("L", "L8") for d in (*dims, *(other if isinstance(other, list) else ()))))
    assert_agrees(InPlace(dims, other, op, dtype), (1, "L"), grid(["L"], range(1, 25)))


def test_a_shorter_tensor_plus_equals_a_longer_one_is_refused_where_torch_refuses():
    """``a += b`` with ``a`` ``L // 8`` long and ``b`` 2 long: torch runs only where ``L // 8``
    is 2 (or 0, beside b's 1 at L = 1); ``a + b`` would have run at L // 8 = 1 too. The proof
    runs at L = 16, where both agree: the sizes 8 to 15 were the wrong answer."""

    class ShortPlusLong(nn.Module):
        def forward(self, x):
            a = x[:, :, : x.size(2) // 8]
            a += x[:, :, :2]
            return a.flatten(1)

    model = ShortPlusLong()
    analysis = symshape.analyze(model, (3, "L"))
    assert [s.rule for s in analysis.steps if s.name == "add_"] == ["elementwise_in_place"]
    assert members(analysis.valid_sizes(), ["L"], 40) == scan(model, (3, "L"), ["L"], 40)
    assert not any(analysis.valid_sizes().contains(L=n) for n in range(8, 16))


def test_a_mask_and_equals_a_longer_mask_is_refused_where_torch_refuses():
    """``m &= other`` of bool masks is ``bitwise_and_``: the other must broadcast to ``m``."""

    class MaskAnd(nn.Module):
        def forward(self, x):
            m = x[:, :, : x.size(2) // 8] > 0
            m &= x[:, :, :2] > 0
            m |= x[:, :, :1] > 0
            return m.flatten(1)

    model = MaskAnd()
    analysis = symshape.analyze(model, (3, "L"))
    assert members(analysis.valid_sizes(), ["L"], 40) == scan(model, (3, "L"), ["L"], 40)


def test_an_in_place_op_on_torchs_meta_kernel_refuses_where_the_cpu_kernel_does():
    """``x.fmod_(y)`` has no hand rule: torch's Python meta kernel resizes ``x`` to the
    broadcast shape with a warning where the CPU kernel refuses; for an in-place op that warning
    is torch's refusal on that side (symshape.meta._in_place_refuses)."""

    class Fmod(nn.Module):
        def forward(self, x):
            a = x[:, :, : x.size(2) // 8].clone()
            a.fmod_(x[:, :, :2] + 1)
            return a.flatten(1)

    model = Fmod()
    analysis = symshape.analyze(model, (3, "L"))
    assert [s.rule for s in analysis.steps if s.name == "fmod_"] == ["meta"]
    assert members(analysis.valid_sizes(), ["L"], 40) == scan(model, (3, "L"), ["L"], 40)


def test_a_tensor_scaled_in_place_by_a_ratio_of_sizes_keeps_its_shape():
    """MViTv2: ``dist += (k - 1) * ratio`` of a ratio of sizes (a float in torch) -- a number,
    which broadcasts to anything."""

    class Scaled(nn.Module):
        def __init__(self, dtype=None):
            super().__init__()
            self.dtype = dtype

        def forward(self, x):
            t = x.clone() if self.dtype is None else torch.ones(x.shape, dtype=self.dtype)
            t *= x.size(2) / 4
            t += x.size(2) / 3
            return t.flatten(1)

    assert assert_agrees(Scaled(), (3, "L"), grid(["L"], range(1, 9))) == 8
    assert assert_agrees(Scaled(torch.float64), (3, "L"), grid(["L"], range(1, 9))) == 8
