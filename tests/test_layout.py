"""Layouts, fallbacks to torch's own semantics, and the forward's defaults (issues 15 and 16).

Every model here is compared with real torch forwards on a grid that includes sizes torch
refuses: a view decided from strides, a hand rule that hands over to torch's meta kernels, an
optional argument left at its default, a tensor created with symbolic sizes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid
from symshape.tensor import SymTensor, standard_strides


class TransposeView(nn.Module):
    """Slice, transpose, view: torch splits a strided dim, so the view is legal (CoaT's idiom)."""

    def forward(self, x):  # x: (N, 1 + H*W, C) as (N, L, C)
        n, length, c = x.shape
        tokens = x[:, 1:]
        return tokens.transpose(1, 2).view(n, c, 2, (length - 1) // 2)


class TransposeMergeView(nn.Module):
    """A view that merges dims of a transposed tensor: torch refuses it unless a dim is 1."""

    def forward(self, x):
        y = x.transpose(1, 2)
        return y.view(y.size(0), -1)


class PointwiseThenView(nn.Module):
    """An elementwise op keeps the transposed layout (torch's TensorIterator), so the view fails."""

    def forward(self, x):
        y = x.transpose(1, 2) * 2
        return y.view(y.size(0), -1)


class ReshapeThenView(nn.Module):
    """reshape of a transposed tensor is a view (it splits a dim); the later merge is not."""

    def forward(self, x):
        y = x.transpose(1, 2).reshape(x.size(0), x.size(2), 2, -1)
        return y.view(y.size(0), -1)


class NormThenView(nn.Module):
    """LayerNorm allocates a contiguous output: a view after it is legal at every size."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)

    def forward(self, x):  # (N, 4, L)
        y = self.norm(x.transpose(1, 2))
        return y.view(y.size(0), -1)


class CatThenView(nn.Module):
    """A 3D cat allocates a contiguous output, even of an expanded token."""

    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, 4))

    def forward(self, x):  # (N, 4, L)
        x = x.transpose(1, 2)
        y = torch.cat([self.token.expand(x.size(0), -1, -1), x], dim=1)
        return y.view(y.size(0), -1)


class OptionalMask(nn.Module):
    """``if mask is not None`` must take the default's branch, as torch does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)

    def forward(self, x, mask=None, flag=False, *, scale=2):
        x = self.conv(x)
        if mask is not None:
            x = x * mask.view(1, 1, -1)
        if flag:
            x = x[:, :1]
        return x * scale


class CreatesWithSizes(nn.Module):
    """torch.zeros / arange / ones with sizes taken from the input."""

    def forward(self, x):
        h = x.shape[-1] // 2
        z = torch.zeros((x.shape[0], x.shape[1], h), device=x.device, dtype=x.dtype)
        a = torch.arange(h, device=x.device)
        return x[..., : x.shape[-1] // 2 * 2].reshape(x.shape[0], x.shape[1], h, 2).sum(-1) + z + a


class ComputedPad(nn.Module):
    """F.pad with amounts computed from the size (DaViT's stem): pad W up to a multiple of 4."""

    def forward(self, x):
        w = x.shape[-1]
        return F.pad(x, (0, (4 - w % 4) % 4)).view(x.shape[0], x.shape[1], -1, 4)


class DeviceAndDtype(nn.Module):
    """Tensor attributes that do not depend on sizes (a hand rule hands them to torch)."""

    def forward(self, x):
        mask = torch.ones(x.shape[-1], device=x.device, dtype=x.dtype)
        if x.is_cuda:
            raise RuntimeError("not on this machine")
        return x * mask


LAYOUT_MODELS = [
    pytest.param(TransposeView, (5, "L"), id="slice-transpose-view"),
    pytest.param(TransposeMergeView, (4, "L"), id="transpose-merge-view"),
    pytest.param(PointwiseThenView, (4, "L"), id="pointwise-then-view"),
    pytest.param(ReshapeThenView, (4, "L"), id="reshape-then-view"),
    pytest.param(NormThenView, (4, "L"), id="layernorm-then-view"),
    pytest.param(CatThenView, (4, "L"), id="cat-then-view"),
    pytest.param(OptionalMask, (4, "L"), id="optional-mask-default"),
    pytest.param(CreatesWithSizes, (3, "L"), id="creation-with-sizes"),
    pytest.param(ComputedPad, (3, "L"), id="computed-pad"),
    pytest.param(DeviceAndDtype, (3, "L"), id="device-and-dtype"),
]


@pytest.mark.parametrize("make,shape", LAYOUT_MODELS)
def test_layout_and_fallback_models_agree_with_torch(make, shape):
    accepted = assert_agrees(make(), shape, grid(["L"], range(1, 14)))
    assert accepted >= 1  # each model runs somewhere; a model refused everywhere tests nothing


def test_views_that_torch_refuses_are_requirements_not_refusals():
    """The merge of transposed dims: valid only where a merged dim is 1 (torch's own check)."""
    a = symshape.analyze(TransposeMergeView(), (4, "L"))
    assert str(a.valid_sizes()) == "L = 1"


def test_strides_of_layout_ops_match_torch():
    """permute / transpose / slicing / expand / unsqueeze compute torch's strides."""
    import sympy

    from symshape.rules import rule_for_method, Context

    L = sympy.Symbol("L", positive=True, integer=True)
    x = SymTensor((2, 3, L))
    ctx = Context("t", "t", "t")
    cases = [
        ("permute", (2, 0, 1), lambda t: t.permute(2, 0, 1)),
        ("transpose", (0, 2), lambda t: t.transpose(0, 2)),
        ("unsqueeze", (1,), lambda t: t.unsqueeze(1)),
    ]
    for name, args, real in cases:
        out = rule_for_method(name).fn(ctx, x, *args)
        for n in (1, 2, 5):
            want = real(torch.empty(2, 3, n)).stride()
            got = tuple(int(s.subs(L, n)) for s in out.known_strides)
            assert got == want, (name, n, got, want)
    sliced = rule_for_method("expand").fn(ctx, SymTensor((2, 1, L)), 2, 4, L)
    assert tuple(int(s.subs(L, 5)) for s in sliced.known_strides) == torch.empty(2, 1, 5).expand(2, 4, 5).stride()
    assert standard_strides((2, 3, 4)) == (12, 4, 1)


def test_pixel_unshuffle_of_an_empty_tensor_returns_it_unchanged():
    """torch's CPU kernel returns an empty input as it is (found by the 10,000-model fuzz)."""
    model = nn.Sequential(nn.Upsample(scale_factor=0.5), nn.ConstantPad2d((0, 0, 0, -1), 0.0),
                          nn.PixelUnshuffle(2), nn.PixelUnshuffle(2))
    assert assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [1, 2, 4, 8])) >= 1


class DaVitShortcut(nn.Module):
    """DaViT's block: tokens as a transposed view, added to a contiguous tensor (the first
    operand's layout wins), transposed back and split by a view; then a channels-last conv
    input flattened (a view: its dims merge) and viewed again."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):  # (N, 4, H, W)
        n, c, h, w = x.shape
        shortcut = x.flatten(2).transpose(1, 2)  # (N, HW, C), strides (CHW, 1, HW)
        y = shortcut + x.new_zeros(n, h * w, c)  # the transposed layout survives the add
        y = self.proj(y.transpose(1, 2).view(n, c, h, w))  # contiguous again: a split is a view
        z = y.permute(0, 2, 3, 1).permute(0, 3, 1, 2)  # same layout, strided description
        t = (z + 1).flatten(2).transpose(1, 2)
        return t.transpose(1, 2).view(n, c, h, w)


class PadToWindows(nn.Module):
    """Pad H and W up to multiples of 7 with Python's %, window-partition, crop back ([:H, :W])."""

    def forward(self, x):  # (N, H, W, C)
        n, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, (7 - w % 7) % 7, 0, (7 - h % 7) % 7))
        hp, wp = x.shape[1], x.shape[2]
        windows = x.view(n, hp // 7, 7, wp // 7, 7, c).permute(0, 1, 3, 2, 4, 5).contiguous()
        x = windows.view(-1, hp // 7, wp // 7, 7, 7, c).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, hp, wp, c)
        return x[:, :h, :w, :].contiguous().view(n, h * w, c)


@pytest.mark.parametrize("make, shape, names", [
    (DaVitShortcut, (4, "H", "W"), ("H", "W")),
    (PadToWindows, ("H", "W", 3), ("H", "W")),
])
def test_layouts_through_adds_flattens_and_splitting_views_agree_with_torch(make, shape, names):
    a = symshape.analyze(make(), shape)
    whole = [s.name for s in a.steps if s.kind == "module" and s.rule in ("meta", "cases")]
    assert not whole, whole  # traced op by op: no module had to run whole
    assert_agrees(make(), shape, grid(names, [1, 2, 5, 7, 8, 15]))


def test_padded_windows_are_sized_as_ceilings_and_cropped_to_the_input():
    a = symshape.analyze(PadToWindows(), ("H", "W", 3))
    sizes = {str(d) for s in a.steps for d in s.output if not isinstance(d, tuple)}
    assert "7*floor((H + 6)/7)" in sizes and not any("Min" in d or "Max" in d for d in sizes), sizes
    assert a.output_shape[1] == a.input_shape[0] * a.input_shape[1]


def test_strides_of_elementwise_flatten_and_split_views_match_torch():
    """The first operand's dense layout decides an elementwise op's; a flatten whose dims chain
    is a view with the innermost stride; a view that splits dims strides them as torch does."""
    import sympy

    from symshape.rules import Context, rule_for_function, rule_for_method
    from symshape.tensor import elementwise_layout

    L = sympy.Symbol("L", positive=True, integer=True)
    ctx = Context("t", "t", "t")
    tr = rule_for_method("transpose").fn(ctx, SymTensor((2, 3 * L, 4)), 1, 2)  # (2, 4, 3L)
    added = elementwise_layout([tr, SymTensor((2, 4, 3 * L))], SymTensor((2, 4, 3 * L)))
    cl = rule_for_method("permute").fn(ctx, SymTensor((2, L, 5, 4)), 0, 3, 1, 2)  # channels last
    flat = rule_for_function(torch.flatten).fn(ctx, cl, 2)
    split = rule_for_method("view").fn(ctx, tr, 2, 4, 3, L, what="view")
    for n in (1, 2, 5):
        t = torch.empty(2, 3 * n, 4).transpose(1, 2)
        want = [(t + torch.empty(2, 4, 3 * n)).stride(),
                torch.empty(2, n, 5, 4).permute(0, 3, 1, 2).flatten(2).stride(),
                t.view(2, 4, 3, n).stride()]
        got = [tuple(int(as_int) for as_int in (sympy.sympify(s).subs(L, n) for s in v.known_strides))
               for v in (added, flat, split)]
        for g, w, shape in zip(got, want, [(2, 4, 3 * n), (2, 4, 5 * n), (2, 4, 3, n)]):
            # torch ignores the stride of a dim of size 1: compare the others
            assert [a for a, d in zip(g, shape) if d != 1] == [b for b, d in zip(w, shape) if d != 1], (n, g, w)


class PatchMerging(nn.Module):
    """Swin's patch merging: pad H and W to even with Python's %, take the four strided halves,
    concatenate and project (channels last)."""

    def __init__(self, c: int = 2):
        super().__init__()
        self.reduction = nn.Linear(4 * c, 2 * c)

    def forward(self, x):  # (N, H, W, C)
        n, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        x = torch.cat(parts, -1)
        return self.reduction(x.reshape(n, -1, 4 * c))


def test_swin_patch_merging_halves_with_one_floor_and_agrees_with_torch():
    a = symshape.analyze(PatchMerging(), ("H", "W", 2))
    assert str(a.output_shape) == "(N, floor((H + 1)/2)*floor((W + 1)/2), 4)", a.output_shape
    assert_agrees(PatchMerging(), ("H", "W", 2), grid(("H", "W"), [1, 2, 3, 6, 7]))
