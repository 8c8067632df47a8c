"""Layouts, fallbacks to torch's own semantics, and the forward's defaults (issues 15 and 16).

Every model here is compared with real torch forwards on a grid that includes sizes torch
refuses: a view decided from strides, a hand rule that hands over to torch's meta kernels, an
optional argument left at its default, a tensor created with symbolic sizes.
"""

from __future__ import annotations

import pytest
import sympy
from hypothesis import given, settings, strategies as st
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from cases import Fn
from oracle import assert_agrees, grid, members, scan
from symshape.dims import FloorDiv, size_symbol
from symshape.tensor import SymTensor, same_stride, standard_strides


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


# -- views of strided tensors, decided from their strides as torch's computeStride does --------

STRIDED = {
    "nhwc": lambda x: x.permute(0, 2, 3, 1),  # (N, H, W, C): H and W form one block
    "channels_last": lambda x: x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),  # (N, C, H, W)
    "transposed": lambda x: x.transpose(2, 3),  # (N, C, W, H): W and H do not merge
    "stepped": lambda x: x[..., ::2],  # (N, C, H, ceil(W/2))
    "cropped": lambda x: x[:, 1:],  # (N, C - 1, H, W): all but the batch form one block
}
VIEWS = {
    "merge_last": lambda a, b, c, d: (a, b, c * d),
    "merge_middle": lambda a, b, c, d: (a, b * c, d),
    "merge_first": lambda a, b, c, d: (a * b, c, d),
    "merge_three": lambda a, b, c, d: (a, b * c * d),
    "all": lambda a, b, c, d: (-1,),
    "same": lambda a, b, c, d: (a, b, c, d),
    "split_ones": lambda a, b, c, d: (a, 1, b, c, d, 1),
    "merge_and_one": lambda a, b, c, d: (a, 1, b * c, d),
    "swap_block": lambda a, b, c, d: (a, b, d, c),
}


class StridedView(nn.Module):
    def __init__(self, source: str, view: str, then: str):
        super().__init__()
        self.source, self.view, self.then = source, view, then

    def forward(self, x):
        y = STRIDED[self.source](x)
        y = y.view(*VIEWS[self.view](*y.shape)) if self.then != "reshape" else y.reshape(*VIEWS[self.view](*y.shape))
        if self.then == "view_again":  # needs the strides of the first view
            return y.view(y.shape[0], -1)
        return y


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(STRIDED)), st.sampled_from(sorted(VIEWS)),
       st.sampled_from(["none", "view_again", "reshape"]))
def test_views_of_strided_tensors_agree_with_torch(source, view, then):
    """A view that merges or splits dims of a permuted, stepped or cropped tensor: where its
    chunks are blocks at every size, symshape computes torch's strides (a later view follows
    them); elsewhere torch's own semantics decide. Batch 1 on a grid with refusals, and batch 2."""
    model = StridedView(source, view, then)
    try:
        assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))
        an = symshape.analyze(model, (3, "H", "W"))
    except symshape.InvalidInputSize:
        return  # torch refuses every size: checked by assert_agrees
    report = an.verify(sizes=[{"N": 2, "H": h, "W": w} for h, w in ((2, 3), (3, 3), (1, 2))])
    assert report.ok, report


class TinyVitTokens(nn.Module):
    """TinyViT's block: tokens as an image, a depthwise convolution (channels last on the CPU,
    from the permuted input), ``reshape(B, C, H*W).transpose(1, 2)``, then ``view(B, H, W, C)``."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(c, c, 3, padding=1, groups=c), nn.BatchNorm2d(c), nn.Linear(c, c)

    def forward(self, x):
        b, h, w, c = x.shape
        y = self.bn(self.conv(x.permute(0, 3, 1, 2)))
        y = y.reshape(b, c, h * w).transpose(1, 2)
        y = y + self.fc(y)
        return y.view(b, h, w, c)


def test_a_view_of_a_block_of_a_permuted_tensor_is_a_view_with_torchs_strides():
    """The reshape merges H and W of a channels-last tensor (one block): a view with stride C,
    so the transpose is contiguous and the final view needs no meta kernel."""
    model = TinyVitTokens().eval()
    an = symshape.analyze(model, ("H", "W", 8))
    assert [s.rule for s in an.steps][-5:] == ["view", "transpose", "linear", "elementwise", "view"]
    assert str(an.valid_sizes()) == "any H and W"
    assert an.verify(sizes=[{"N": n, "H": h, "W": w} for n in (1, 2) for h, w in ((1, 1), (1, 5), (3, 4))]).ok


SETITEMS = {
    "shifted_block": lambda x, y: y.__setitem__((slice(None), slice(None), slice(1, None), slice(1, None)),
                                                x[:, :, :-1, :-1] * 2),
    "column_into_channel": lambda x, y: y.__setitem__((slice(None), 0), x[:, 1, :, :1]),
    "number": lambda x, y: y.__setitem__((Ellipsis, 0), 3.0),
    "leading_ones": lambda x, y: y.__setitem__((slice(None), slice(None), slice(None, 2)),
                                               torch.ones(1, 1, 1, 2, x.shape[-1])),
    "row_from_column": lambda x, y: y.__setitem__((slice(None), slice(None), 0), x[:, :, :, 0]),
}


class SetItem(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x):
        y = x.clone()
        SETITEMS[self.name](x, y)  # y[index] = value, as the model's code writes it
        return y.view(-1)


@pytest.mark.parametrize("name", sorted(SETITEMS))
def test_item_assignment_checks_the_value_against_the_region(name):
    """``y[index] = v`` (MViTv2's relative position bias): a step whose requirement is torch's
    broadcast of v to the indexed region (a 1 broadcasts, a region of 1 does not grow)."""
    assert_agrees(SetItem(name), (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))


class _PadsAndReturnsSize(nn.Module):
    def forward(self, x):
        if x.shape[-1] % 2:  # a branch on a size: traced by sides, the sides merged
            x = F.pad(x, (0, 1))
        return x, x.shape[-2:]  # a torch.Size among the results


class UsesReturnedSize(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _PadsAndReturnsSize()

    def forward(self, x):
        y, (h, w) = self.inner(x)
        return y.reshape(y.shape[0], -1, h * w)


def test_a_size_returned_by_a_branching_module_is_a_size():
    """A torch.Size in a merged result (MViTv2's ``x.shape[-2:]``) comes back as sizes."""
    an = symshape.analyze(UsesReturnedSize(), (3, "H", "W"))
    assert an.at(H=3, W=5).output_shape == (1, 3, 18)
    assert_agrees(UsesReturnedSize(), (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))


class SplitsAfterUnknownLayout(nn.Module):
    """EfficientViT's windows: tokens reshaped to windows (a view at batch 1, a copy at batch 2:
    the layout symshape does not follow), a convolution, then a view that only splits dims (or
    keeps them): torch's computeStride succeeds whatever the strides."""

    def __init__(self, after: str):
        super().__init__()
        self.conv, self.after = nn.Conv2d(8, 16, 1, bias=False), after

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b * 2, h // 2, w, c).permute(0, 3, 1, 2)
        y = self.conv(x)
        if self.after == "same":
            return y.view(b * 2, -1, h // 2, w)
        if self.after == "split":
            return y.view(b * 2, 4, 4, h // 2, 1, w)
        return y.view(b * 2, 16, -1)  # merges H and W: depends on the strides


@pytest.mark.parametrize("after", ["same", "split", "merge"])
def test_a_view_that_only_splits_needs_no_strides(after):
    model = SplitsAfterUnknownLayout(after).eval()
    sizes = grid(["H", "W"], [1, 2, 3, 4])
    try:
        an = symshape.analyze(model, (8, "H", "W"))
    except symshape.UnsupportedOperation as refused:
        assert after == "merge" and "view" in str(refused), refused
        return
    assert_agrees(model, (8, "H", "W"), sizes)
    if after != "merge":
        assert [s.rule for s in an.steps][-1] == "view"
    assert an.verify(sizes=[{"N": 2, **s} for s in sizes]).ok


class Unfolded(nn.Module):
    def __init__(self, dim: int, size: int, step: int, then: str):
        super().__init__()
        self.dim, self.size, self.step, self.then = dim, size, step, then

    def forward(self, x):
        y = x.permute(0, 1, 3, 2) if self.then == "permuted" else x
        y = y.unfold(self.dim, self.size, self.step)
        if self.then == "view":
            return y.view(-1)  # a view of the windows: torch's strides decide
        return y.reshape(y.shape[0], -1)


@settings(max_examples=30, deadline=None)
@given(st.integers(-4, 3), st.integers(0, 4), st.integers(1, 3), st.sampled_from(["view", "reshape", "permuted"]))
def test_unfold_agrees_with_torch(dim, size, step, then):
    """HaloNet's windows: ``(n - size) // step + 1`` windows of ``size``, refused below ``size``,
    a view whose strides are dim ``d``'s times ``step`` and dim ``d``'s (a later view is exact
    where torch's is, or refused by name)."""
    model = Unfolded(dim, size, step, then)
    try:
        assert_agrees(model, (2, "H", "W"), grid(["H", "W"], [1, 2, 3, 5]))
        an = symshape.analyze(model, (2, "H", "W"))
    except (symshape.UnsupportedOperation, symshape.TraceMismatch) as refused:
        # a view that merges windows, viewable at some sizes only: torch's meta kernel decides,
        # and where symshape's reading of it is not exact the proof refuses it (never an answer)
        assert then == "view" and "view" in str(refused), refused
        return
    except symshape.InvalidInputSize:
        return  # torch refuses every size: checked by assert_agrees
    assert an.verify(sizes=[{"N": 2, "H": h, "W": w} for h, w in ((3, 5), (5, 2), (4, 4))]).ok


class Expanded(nn.Module):
    def __init__(self, *sizes):
        super().__init__()
        self.sizes = sizes

    def forward(self, x):
        return x.expand(*self.sizes).reshape(-1)


@pytest.mark.parametrize("sizes", [(-1, -1, 5, -1), (-1, -1, 5, 5), (-1, -1, -1, 1), (1, -1, -1, -1),
                                   (2, 1, -1, 3, -1), (-1, 1, -1, -1)])
def test_expand_grows_a_size_that_is_1_and_keeps_one_that_is_asked_for(sizes):
    """``x.expand(-1, -1, 5, -1)`` runs where H is 5 and where H is 1 (issue 22: it was "H = 5");
    valid_sizes() is compared with a scan of real forwards."""
    model = Expanded(*sizes)
    assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [1, 2, 5]))
    try:
        an = symshape.analyze(model, (1, "H", "W"))
    except symshape.InvalidInputSize:
        return  # torch refuses every size: checked above
    assert members(an.valid_sizes(), ["H", "W"], 7) == scan(model, (1, "H", "W"), ["H", "W"], 7)


class RelPosBias(nn.Module):
    """MViT's relative positions: a slice of an attention matrix past its class token, viewed as
    ``(B, heads, qh, qw, kh, kw)``, plus biases broadcast along one dim each (from an einsum,
    whose layout symshape does not follow), then viewed back (merging dims): torch's
    TensorIterator keeps the slice's dim order, so the sum is contiguous and the view legal."""

    def forward(self, x):  # x: (N, 2, H, W)
        n, heads, h, w = x.shape
        q = torch.cat([x.flatten(2)[:, :, :1], x.flatten(2)], dim=2).unsqueeze(-1)  # (N, 2, 1+HW, 1)
        attn = q @ q.transpose(-2, -1)  # (N, 2, 1+HW, 1+HW)
        bias_h = torch.einsum("bnhw,hk->bnhwk", x, x[0, 0, :, :1].expand(-1, h))
        bias_w = torch.einsum("bnhw,wk->bnhwk", x, x[0, 0, :1, :].t().expand(-1, w))
        rel = attn[:, :, 1:, 1:].view(n, -1, h, w, h, w) + bias_h.unsqueeze(-1) + bias_w.unsqueeze(-2)
        return rel.view(n, -1, h * w, h * w)


def test_a_sum_whose_first_operand_is_a_row_major_slice_is_contiguous():
    assert_agrees(RelPosBias(), (2, "H", "W"), grid(["H", "W"], [1, 2, 3, 5, 6, 7]))
    an = symshape.analyze(RelPosBias(), (2, "H", "W"))
    assert an.at(H=3, W=4).output_shape == (1, 2, 12, 12)
    # op by op, the view by its own rule (before, the view was refused and the model ran whole
    # under torch's meta kernels)
    assert [s.rule for s in an.steps][-4:] == ["elementwise", "unsqueeze", "elementwise", "view"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=4), st.data())
def test_row_major_first_operands_give_torch_a_contiguous_sum(shape, data):
    """Sound against torch: wherever ``row_major`` holds for the first operand's strides (a
    slice with steps, of a tensor that may be transposed), torch's sum with an operand of any
    layout (broadcast in some dims, transposed) is contiguous, and symshape says so."""
    from symshape.tensor import elementwise_layout, row_major

    base = torch.zeros([n + 2 for n in shape])
    if data.draw(st.booleans()):
        base = base.transpose(0, -1).contiguous().transpose(0, -1)
    index = tuple(slice(data.draw(st.integers(0, 2)), None, data.draw(st.integers(1, 2))) for _ in shape)
    a = base[index]
    b_shape = [n if data.draw(st.booleans()) else 1 for n in a.shape]
    b = torch.zeros(b_shape[::-1]).permute(*range(len(b_shape) - 1, -1, -1))  # a transposed layout
    if not row_major(a.shape, a.stride()):
        return
    assert (a + b).is_contiguous(), (a.shape, a.stride(), b.shape, b.stride())
    first = SymTensor(tuple(a.shape), False, strides=tuple(a.stride()))
    assert elementwise_layout([first, SymTensor(tuple(b.shape), False)], SymTensor(tuple(a.shape))).contiguous


def test_row_major_is_decided_symbolically():
    import sympy
    from symshape.dims import size_symbol
    from symshape.tensor import row_major

    h, w = size_symbol("H"), size_symbol("W")
    n = 1 + h * w
    assert row_major((2, h, w, h, w), (2 * n * n, n * w, n, w, 1))  # the slice of RelPosBias, viewed
    assert not row_major((h, w), (1, h))  # a transpose
    assert not row_major((h, w), (w - 1, 1))  # overlaps where W > 1 ... and is not row-major
    assert row_major((h, w), (sympy.Integer(2) * w, 1))

    a = FloorDiv(h + 21, 16)  # a slice ``[1:, 1:]`` of a map one row and column larger (NASNet)
    b = FloorDiv(w + 21, 16)
    assert row_major((2, 336, FloorDiv(h + 5, 16), FloorDiv(w + 5, 16)), (336 * a * b, a * b, b, 1))


class PaddedSliceSum(nn.Module):
    """pretrainedmodels' NASNet-A cells: a map padded on the top and left, a convolution, its
    first row and column sliced off (``x[:, :, 1:, 1:]``), added to a plain branch,
    concatenated, pooled and viewed flat. The slice's strides are in ``floor((H + 3)/2)``, its
    sizes ``floor((H + 1)/2)``: row-major, so torch's sum is contiguous and the view legal."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.padded = nn.Conv2d(2, 3, 1)
        self.plain = nn.Conv2d(2, 3, 1)
        self.pool = nn.AvgPool2d(2, stride=1)

    def forward(self, x):
        x = self.stem(x)
        y = self.padded(F.pad(x, (1, 0, 1, 0)))[:, :, 1:, 1:]
        z = self.plain(x)
        out = self.pool(torch.cat([y + z, z + y, z], 1))
        return out.view(out.size(0), -1)


def test_a_sliced_padded_branch_added_to_a_plain_one_is_viewed_as_torch_does():
    assert_agrees(PaddedSliceSum(), (2, "H", "W"), grid(["H", "W"], [1, 2, 3, 4, 5, 8, 9]))
    an = symshape.analyze(PaddedSliceSum(), (2, "H", "W"))
    assert an.steps[-1].rule == "view"  # by its rule, not the model run whole on torch's meta kernels
    assert an.at(H=8, W=10).output_shape == (1, 9 * 3 * 4)  # 4 x 5 maps, pooled to 3 x 4


def test_a_view_whose_minus_one_has_a_fraction_inside_cases_is_one_integer_size():
    """Gemma 4's attention: ``x.reshape(B, N, -1)`` where the token count is defined by cases
    after a broadcast (``1`` where ``h*w == 1``, else ``h*w``, nested once more): the inferred
    size ``768*Piecewise((1, ...), (1/(h*w), True))*Piecewise(...)`` is 768 at every size, and
    evaluates so (a fraction inside a case once evaluated, with integers, to 0)."""
    import sympy

    from symshape.compiled import compile_exprs
    from symshape.dims import floor_div, size_symbol
    from symshape.rules import Context, rule_for_method
    from symshape.tensor import SymTensor

    n, h, w = size_symbol("N"), size_symbol("H"), size_symbol("W")
    hw = floor_div(h, 16) * floor_div(w, 16)
    inner = sympy.Piecewise((1, sympy.Eq(hw, 1)), (hw, True))
    outer = sympy.Piecewise((hw, sympy.Eq(hw, 1)), (inner, True))
    out = rule_for_method("reshape").fn(Context("r", "Tensor.reshape", "r"), SymTensor((n, outer, 12, 64)),
                                        n, inner, -1, what="reshape")
    values = compile_exprs([n, h, w], out.shape)
    for sizes in [(1, 16, 16), (1, 224, 224), (2, 17, 100), (1, 40, 16)]:
        tokens = (sizes[1] // 16) * (sizes[2] // 16)
        assert values(*sizes) == list(torch.empty(sizes[0], tokens, 12, 64).reshape(sizes[0], tokens, -1).shape)


class ReducesPermuted(nn.Module):
    """A reduction of a channels-last view (and of an expanded one), then views that merge
    dims: torch allocates a reduction's output contiguous, so each view is one."""

    def __init__(self, op: str, keepdim: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.op, self.keepdim = op, keepdim

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)  # (N, h, w, 4), channels last
        reduce = {"mean": lambda t, d: t.mean(d, keepdim=self.keepdim),
                  "amax": lambda t, d: torch.amax(t, d, keepdim=self.keepdim),
                  "std": lambda t, d: t.std(d, keepdim=self.keepdim),
                  "norm": lambda t, d: t.norm(dim=d, keepdim=self.keepdim),
                  "vector_norm": lambda t, d: torch.linalg.vector_norm(t, dim=d, keepdim=self.keepdim)}[self.op]
        a = reduce(y, 1)  # (N, 1?, w, 4)
        b = reduce(y[:, :1].expand(-1, 3, -1, -1), -1)  # an expanded input: stride 0
        return a.view(a.shape[0], -1), b.reshape(-1).view(-1, 1)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["mean", "amax", "std", "norm", "vector_norm"])
def test_a_reduction_of_a_permuted_tensor_is_contiguous_as_torch_allocates_it(op, keepdim, monkeypatch):
    from symshape.engine import Propagator

    asked = []  # the ops whose output layout the engine asks torch's meta kernel for (slow)
    layout = Propagator._layout
    monkeypatch.setattr(Propagator, "_layout", lambda self, rule, node, name, op, *rest:
                        asked.append(op) or layout(self, rule, node, name, op, *rest))
    model = ReducesPermuted(op, keepdim)
    a = symshape.analyze(model, (3, "H", "W"))
    assert not [o for o in asked if o.endswith((op, "amax"))], asked
    assert {s.rule for s in a.steps if s.op.endswith((op, "amax"))} <= {"reduction", "norm", "vector_norm",
                                                                         "std_var"}
    assert str(a.valid_sizes()) == "H ≥ 3 and W ≥ 3"
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 4, 7])) == 9


class Ternary(nn.Module):
    """``addcmul`` / ``addcdiv`` / ``lerp`` of a channels-last view with operands that
    broadcast to it: a per-position tensor, a per-channel parameter or a number, and (with
    ``shifted``) a crop one row off, which broadcasts only where a height is 1."""

    def __init__(self, op: str, shifted: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.scale = nn.Parameter(torch.ones(4))
        self.op, self.shifted = op, shifted

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)  # (N, H - 2, W - 2, 4)
        crop = x.permute(0, 2, 3, 1)[:, 1 if self.shifted else 2:, 2:, :1]  # (N, H - 1 or H - 2, W - 2, 1)
        if self.op == "addcmul":
            out = torch.addcmul(y, crop, self.scale, value=0.5)
        elif self.op == "addcdiv":
            out = y.addcdiv(self.scale, crop)
        else:
            out = torch.lerp(y, crop, 0.25)
        return out.reshape(out.shape[0], -1)


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("op", ["addcmul", "addcdiv", "lerp"])
def test_three_operands_broadcast_together_as_torch_does(op, shifted, monkeypatch):
    from symshape import engine

    asked = []  # the ops the engine hands to torch's meta kernels
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    a = symshape.analyze(Ternary(op, shifted), (3, "H", "W"))
    assert {s.rule for s in a.steps if s.op.endswith(op)} == {"elementwise3"}
    assert not [o for o in asked if o.endswith(op)]  # its shape and layout: no meta kernel asked
    assert str(a.valid_sizes()) == ("H = 3 and W ≥ 3" if shifted else "H ≥ 3 and W ≥ 3")
    accepted = assert_agrees(Ternary(op, shifted), (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 4, 6]))
    assert accepted == (3 if shifted else 9)


class Scans(nn.Module):
    """EdgeNeXt's and DETR's positional grid: a cumulative sum of a bool mask (int64 unless a
    dtype is given: the branch on it shows a wrong dtype as a wrong shape), and a scan of a
    channels-last view followed by a view that needs it contiguous. ``dim=4`` does not exist."""

    def __init__(self, op: str, dim: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.op, self.dim = op, dim

    def forward(self, x):
        y = self.conv(x)
        mask = torch.ones(y.shape[0], y.shape[2], y.shape[3], dtype=torch.bool, device=y.device)
        counted = getattr(mask, self.op)(1)
        counted = counted.flatten(1) if counted.dtype == torch.int64 else counted
        scanned = getattr(y.permute(0, 2, 3, 1), self.op)(self.dim, dtype=torch.float64)
        return counted, scanned.view(y.shape[0], -1)


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_a_scan_is_contiguous_and_counts_bools_in_int64_as_torch_does(op, monkeypatch):
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    a = symshape.analyze(Scans(op), (3, "H", "W"))
    assert not [o for o in asked if o.endswith(op)]
    assert str(a.steps[-1].output) == "(N, 4*(H - 2)*(W - 2))"
    assert assert_agrees(Scans(op), (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 5])) == 4
    with pytest.raises(symshape.InvalidInputSize, match="out of range"):
        symshape.analyze(Scans(op, dim=4), (3, "H", "W"))
    assert assert_agrees(Scans(op, dim=4), (3, "H", "W"), grid(["H", "W"], [3, 5])) == 0


class Normalized(nn.Module):
    """``F.normalize`` of a channels-last view is laid out as its input: permuted back, it is
    the convolution's contiguous map again, whose channels and rows merge in a view (they would
    not, were it laid out contiguous as a new tensor)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.dim = dim

    def forward(self, x):
        y = F.normalize(self.conv(x).permute(0, 2, 3, 1), dim=self.dim).permute(0, 3, 1, 2)
        return y.view(y.shape[0], -1, y.shape[3])


@pytest.mark.parametrize("dim", [-1, 1, 3])
def test_normalize_keeps_its_input_layout_as_torch_does(dim, monkeypatch):
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    a = symshape.analyze(Normalized(dim), (3, "H", "W"))
    assert asked == []
    assert str(a.steps[-1].output) == "(N, 4*H - 8, W - 2)"
    assert str(a.valid_sizes()) == "H ≥ 3 and W ≥ 3"
    assert assert_agrees(Normalized(dim), (3, "H", "W"), grid(["H", "W"], [2, 3, 4, 6])) == 9
    with pytest.raises(symshape.InvalidInputSize, match="normalize"):
        symshape.analyze(Normalized(4), (3, "H", "W"))


class PatchTokens(nn.Module):
    """timm's NHWC patch embedding and ``x.view(B, -1, C)`` (EVA, DINOv3): a view of a permuted
    map whose strides torch writes ``Max(1, w)`` (the map is empty below one patch)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 16, stride=16, padding=4)

    def forward(self, x):
        y = self.proj(x).permute(0, 2, 3, 1)
        B, h, w, C = y.shape
        return y.view(B, -1, C)


def test_a_view_of_a_permuted_patch_map_is_a_view_by_structure(monkeypatch):
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    a = symshape.analyze(PatchTokens(), (3, "H", "W"))
    assert asked == []  # the view, and y.shape of the permuted map, without torch's meta kernels
    assert str(a.steps[-1].output) == "(N, floor((H + 8)/16)*floor((W + 8)/16), 8)"
    assert assert_agrees(PatchTokens(), (3, "H", "W"), grid(["H", "W"], [1, 7, 8, 9, 23, 24, 40])) == 25


class TokensToFixedGrid(nn.Module):
    """LeViT's ``q.view(B, 14, 14, C)`` of transposed tokens and CoaT's tokens without the class
    token viewed as a ``(N, C, 4, 4)`` map: fixed sizes that the view's element count pins."""

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)  # (N, H*W, 2): the H*W dim of stride 1
        with_class = torch.cat([t[:, :1], t], 1)
        return t.view(x.shape[0], 4, 4, 2), with_class[:, 1:].transpose(1, 2).view(x.shape[0], 2, 4, 4)


def test_a_view_to_sizes_its_element_count_pins_is_decided_from_both_ends(monkeypatch):
    """The chunks of equal product are found from the front and from the back; the dims left
    between are equal wherever the view runs. No meta kernel is asked; torch agrees at every size."""
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    symshape.analyze(TokensToFixedGrid(), (2, "H", "W"))
    assert asked == []
    assert assert_agrees(TokensToFixedGrid(), (2, "H", "W"), grid(["H", "W"], [1, 2, 4, 8, 16])) == 5  # H*W == 16


class BlocksOfAPermutedMap(nn.Module):
    """VOLO's outlook attention: Unfold of a permuted NHWC map, Fold of transposed blocks, each
    followed by a view that torch accepts only of a contiguous tensor."""

    def __init__(self, functional: bool, grow: int = 0):
        super().__init__()
        self.functional, self.grow = functional, grow
        self.unfold = nn.Unfold(3, padding=1, stride=2)

    def forward(self, x):  # (N, H, W, 4)
        n, h, w, c = x.shape
        y = x.permute(0, 3, 1, 2)
        blocks = F.unfold(y, 3, padding=1, stride=2) if self.functional else self.unfold(y)
        flat = blocks.view(n, -1)
        back = (blocks.transpose(1, 2) * 1).transpose(1, 2)  # (N, 36, L) laid out as (N, L, 36)
        folded = F.fold(back, (h + self.grow, w), 3, padding=1, stride=2)
        return flat.sum() + folded.view(n, -1).sum(1)


@pytest.mark.parametrize("functional", [False, True])
def test_unfold_and_fold_allocate_their_output_contiguous(monkeypatch, functional):
    """im2col and col2im write a new contiguous tensor whatever the input's layout: the views
    after them are legal at every size, known without asking torch's meta kernels."""
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    monkeypatch.setattr(engine.Propagator, "_meta_module", lambda self, ctx, *rest: asked.append(ctx.op))
    a = symshape.analyze(BlocksOfAPermutedMap(functional), ("H", "W", 4))
    assert asked == []
    unfolded = next(s for s in a.steps if s.op in ("nn.Unfold", "F.unfold"))
    assert str(unfolded.output) == "(N, 36, floor((H + 1)/2)*floor((W + 1)/2))"
    assert assert_agrees(BlocksOfAPermutedMap(functional), ("H", "W", 4), grid(["H", "W"], [1, 2, 3, 5, 8])) == 25
    # folded back to one row more: the blocks agree only where H is odd (torch refuses even H)
    grown = BlocksOfAPermutedMap(functional, grow=1)
    assert assert_agrees(grown, ("H", "W", 4), grid(["H", "W"], [1, 2, 3, 4, 8])) == 10


class AtLeastSeven(nn.Module):
    """timm's VGG head: inputs under 7x7 are pooled up to ``max(7, size)`` per dim."""

    def forward(self, x):
        if x.shape[-2] < 7 or x.shape[-1] < 7:
            x = F.adaptive_avg_pool2d(x, (max(7, x.shape[-2]), max(7, x.shape[-1])))
        return x.flatten(1)


def test_adaptive_pooling_to_the_inputs_own_size_keeps_it(monkeypatch):
    """``max(7, w)`` on the side where ``w >= 7`` is ``w``: the pooling keeps that dim, as
    torch's None does, without asking torch's meta kernels; exact at every size."""
    from symshape import engine

    asked = []
    meta = engine._meta
    monkeypatch.setattr(engine, "_meta", lambda ctx, *rest: asked.append(ctx.op) or meta(ctx, *rest))
    a = symshape.analyze(AtLeastSeven(), (2, "H", "W"))
    assert asked == []
    assert [a.at(H=h, W=w).output_shape[-1] for h, w in ((3, 9), (9, 3), (8, 8), (1, 1))] == [126, 126, 128, 98]
    assert assert_agrees(AtLeastSeven(), (2, "H", "W"), grid(["H", "W"], [1, 3, 6, 7, 8, 12])) == 36


def test_pixel_unshuffle_keeps_later_sizes_whole():
    """PixelUnshuffle's ``H/2`` is ``floor(H/2)`` wherever torch runs it (H must be even): a
    later stride and an Unflatten's ``-1`` see whole floors, not a fraction inside one (a random
    model the fuzz found refused)."""
    model = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, 1, 1, stride=2), nn.Flatten(),
                          nn.Unflatten(1, (1, -1)), nn.Flatten(), nn.Linear(4, 3))
    a = symshape.analyze(model, (1, "H", "W"))
    assert str(a.formula()) == "floor((H + 2)/4)*floor((W + 2)/4)"
    # torch runs where H and W are even and the Linear gets its 4: H, W in {6, 8}
    assert assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [1, 2, 4, 6, 7, 8])) == 4


@pytest.mark.parametrize("glu", [lambda: nn.GLU(dim=-1), lambda: Fn(F.glu, -1)])
def test_glu_keeps_later_sizes_whole(glu):
    """GLU's half is ``floor(L/2)`` wherever torch runs it (L must be even), as PixelUnshuffle's:
    a stride-2 convolution after it and an Unflatten's ``-1`` see whole floors (a random model
    the fuzz found refused)."""
    model = nn.Sequential(glu(), nn.Conv1d(1, 1, 1, stride=2), nn.Flatten(), nn.Unflatten(1, (1, -1)),
                          nn.Flatten(), nn.Linear(3, 2))
    a = symshape.analyze(model, (1, "L"))
    assert str(a.formula()) == "floor((L + 2)/4)"
    # torch runs where L is even and the Linear gets its 3: L in {10, 12}
    assert assert_agrees(model, (1, "L"), [{"L": n} for n in range(1, 15)]) == 2


def test_the_chunks_from_the_back_stay_within_what_the_front_left():
    """Each dim of both shapes is in exactly one chunk, in order: a chunk found from the back
    never takes a dim a chunk from the front already has (``a*b`` of ``(a, b)`` against the last
    dim of ``(a, a*b)``, after ``a`` matched ``a``)."""
    import sympy
    from symshape.rules.reshape import _chunks

    a, b, c = sympy.symbols("a b c", positive=True, integer=True)
    for xshape, shape in (((a, b), (a, a * b)), ((a, b), (a, c, a * b)), ((a, b, c), (a, b * c)), ((a, 2 * b), (a, 2, b))):
        chunks = _chunks(xshape, shape)
        if chunks is None:
            continue
        assert [d for i, n, _, _ in chunks for d in range(i, i + n)] == list(range(len(xshape))), chunks
        assert [d for _, _, k, n in chunks for d in range(k, k + n)] == list(range(len(shape))), chunks


class StackedWindows(nn.Module):
    """MaxViT's stages in miniature: each halves the map (its shortcut pooled, as MbConv's
    downsampling checks the map's size) and splits it into w x w windows and back twice, the
    second time after a residual add; four stages make the last window a 32*w-th of the input."""

    def __init__(self, w: int = 12, stages: int = 4):
        super().__init__()
        self.w = w
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.down = nn.ModuleList(nn.Conv2d(4, 4, 3, 2, 1) for _ in range(stages))
        self.pool = nn.MaxPool2d(2, 2)

    def _windows(self, x):
        B, H, W, C = x.shape
        torch._assert(H % self.w == 0, "height must be divisible by the window")
        torch._assert(W % self.w == 0, "width must be divisible by the window")
        x = x.view(B, H // self.w, self.w, W // self.w, self.w, C)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, self.w, self.w, C)

    def _back(self, windows, H, W):
        x = windows.view(-1, H // self.w, W // self.w, self.w, self.w, windows.shape[-1])
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, windows.shape[-1])

    def forward(self, x):
        x = self.stem(x)
        for down in self.down:
            self.pool(x)  # (its checks of the map's size only)
            x = down(x).permute(0, 2, 3, 1)
            H, W = x.shape[1:3]
            x = x + self._back(self._windows(x) * 2, H, W)
            x = (x + self._back(self._windows(x) * 2, H, W)).permute(0, 3, 1, 2)
        return x


def test_stacked_window_partitions_reverse_to_the_batch_and_agree_with_torch():
    """The window count of the last stage is proven a w-th of its map from the partitions'
    checks, so each reversal gives back the batch N (not a fraction of sizes, which the next
    stage's view refused before), and torch agrees on either side of every window multiple."""
    analysis = symshape.analyze(StackedWindows(), (3, "H", "W"))
    assert analysis.output_shape[0] == symshape.dims.size_symbol("N")
    sizes = [{"H": h, "W": w} for h, w in [(381, 384), (384, 383), (385, 384), (380, 384), (768, 381), (383, 400)]]
    assert assert_agrees(StackedWindows(), (3, "H", "W"), sizes) == 3



def test_strides_written_in_other_forms_are_the_standard_ones_where_every_case_agrees():
    """A stride torch's meta kernel wrote by cases, in other forms than symshape's (``7*floor((H -
    4)/28) + 7`` for ``7*floor((H + 24)/28)``, ``Max(1, ...)`` of a size, a ``Piecewise`` inside a
    product), is the standard one: proven case by case, and its tensor is contiguous (a view of
    it was refused before). A stride that differs in one case is not. Both against their values
    at every size up to 60 (H a multiple of 4: the case the stride was written in)."""
    H, W, N = size_symbol("H"), size_symbol("W"), size_symbol("N")
    odd = sympy.Ne(W - 4 * FloorDiv(W, 4), 0)
    hp = 7 * FloorDiv(H + 24, 28)
    wp = sympy.Piecewise((7 * FloorDiv(W + 28, 28), odd), (7 * FloorDiv(W + 24, 28), True))
    by_torch = 8 * sympy.Max(1, 7 * FloorDiv(H - 4, 28) + 7) * sympy.Piecewise(
        (7 * FloorDiv(W + 28, 28), odd), (sympy.Max(1, 7 * FloorDiv(W + 24, 28)), True))
    other = 8 * hp * sympy.Piecewise((7 * FloorDiv(W + 28, 28), odd), (7 * FloorDiv(W + 31, 28), True))
    standard = standard_strides((N, hp, wp, 8))
    assert same_stride(by_torch, standard[0])
    assert not same_stride(other, standard[0])
    assert SymTensor((N, hp, wp, 8), False, strides=(by_torch, *standard[1:])).contiguous
    assert not SymTensor((N, hp, wp, 8), False, strides=(other, *standard[1:])).contiguous
    values = {(h, w): (int(by_torch.subs({H: h, W: w})), int(other.subs({H: h, W: w})),
                       int(standard[0].subs({H: h, W: w}))) for h in range(4, 61, 4) for w in range(1, 61)}
    assert all(a == s for a, _, s in values.values())
    assert any(b != s for _, b, s in values.values())


class StoredWeights(nn.Module):
    """A parameter or a buffer stored transposed: its own strides, not the standard ones (a
    view of it that merges dims is refused by torch at every size)."""

    def __init__(self, transposed=None):
        super().__init__()
        self.transposed = transposed
        self.w = nn.Parameter(torch.randn(6, 4).t() if transposed == "parameter" else torch.randn(4, 6))
        self.register_buffer("bias", torch.zeros(6, 3).t() if transposed == "buffer" else torch.zeros(3, 6))

    def forward(self, x):  # x: (N, T, 4)
        return x @ self.w + self.bias.view(-1)[:6] + self.w.view(-1)[:6]


@pytest.mark.parametrize("transposed", ["parameter", "buffer", None])
def test_parameters_and_buffers_have_their_own_strides(transposed):
    accepted = assert_agrees(StoredWeights(transposed), ("T", 4), [{"T": t} for t in (1, 2, 5)])
    assert accepted == (3 if transposed is None else 0)


_H, _W = size_symbol("H"), size_symbol("W")
#: output sizes an operand is laid out over: fixed ones, and sizes that are 1 at some sizes or never
_SIZES = [sympy.Integer(2), sympy.Integer(3), _H, _W, _H + 1, 2 * _W]


@st.composite
def _operand(draw, out_shape):
    """An operand of an elementwise op with output ``out_shape``, built as torch builds one: a
    dense tensor in some dim order (a permutation), each dim maybe a slice of a larger one,
    maybe of size 1 (expanded, or broadcast), leading dims maybe missing. Returns
    ``(make, symbolic)``: ``make(sizes)`` the torch tensor at those sizes, and the SymTensor."""
    n = len(out_shape)
    ndim = draw(st.integers(max(1, n - 2), n))
    dims = out_shape[n - ndim:]
    # (expanded only to a size never 1: torch keeps a stride that ``expand`` leaves at size 1)
    kinds = [draw(st.sampled_from(["full", "full", "sliced", "one"] + ["expanded"] * (d not in (_H, _W))))
             for d in dims]
    order = draw(st.permutations(range(ndim)))  # outermost first, in memory
    base = [sympy.Integer(1) if k in ("one", "expanded") else d + 2 if k == "sliced" else d
            for k, d in zip(kinds, dims)]

    def layout(sizes):  # the base's strides, dense in ``order``
        strides, step = [None] * ndim, 1
        for i in reversed(order):
            strides[i] = step
            step = step * sympy.Max(1, sizes[i])
        return strides

    def make(at):
        sizes = [int(as_sized.xreplace(at)) for as_sized in base]
        full = [int(d.xreplace(at)) for d in dims]
        t = torch.empty([sizes[i] for i in order]).permute(*[order.index(i) for i in range(ndim)])
        t = t[tuple(slice(1, 1 + f) if k == "sliced" else slice(None) for k, f in zip(kinds, full))]
        return t.expand([f if k == "expanded" else -1 for k, f in zip(kinds, full)])

    strides = [0 if k == "expanded" else s for k, s in zip(kinds, layout(base))]
    shape = [1 if k == "one" else d for k, d in zip(kinds, dims)]
    return make, SymTensor(tuple(shape), False, strides=tuple(strides))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SIZES), min_size=2, max_size=4), st.integers(1, 3), st.data())
def test_an_elementwise_ops_layout_is_torchs_wherever_symshape_says_it(out_shape, count, data):
    """TensorIterator's dim order, against torch's CPU strides: operands dense in any order,
    sliced, expanded, broadcast in any dims; one, two or three of them (``neg``, ``+``,
    ``addcmul``). Where symshape gives a layout, the strides of the dims not of size 1 are
    torch's at every size; where it follows ``reorder_dimensions`` itself (``_reordered``),
    those of every dim too, unless it says they may differ there (``loose``)."""
    from symshape.tensor import _reordered, elementwise_layout

    operands = [data.draw(_operand(out_shape)) for _ in range(count)]
    n = len(out_shape)  # the broadcast shape: 1 where every operand has 1 or no dim
    full = [d if any(t.ndim >= n - i and t.shape[i - n + t.ndim] != 1 for _, t in operands) else sympy.Integer(1)
            for i, d in enumerate(out_shape)]
    out = elementwise_layout([t for _, t in operands], SymTensor(tuple(full)))
    order = _reordered([t for _, t in operands], SymTensor(tuple(full)))
    op = {1: torch.neg, 2: torch.add, 3: torch.addcmul}[count]
    for h, w in [(1, 1), (1, 3), (2, 1), (2, 5), (4, 4)]:
        at = {_H: sympy.Integer(h), _W: sympy.Integer(w)}
        ts = [make(at) for make, _ in operands]
        real = op(*ts)
        sizes = [int(d.xreplace(at)) for d in full]
        if list(real.shape) != sizes:
            continue  # the operands do not broadcast at these sizes
        for laid, every in [(out, False), (order, True)]:
            if laid is None or not laid.contiguous and laid.strides is None:
                continue  # not known: a view of it is refused, or decided by torch's meta kernels
            got = [int(s if isinstance(s, int) else s.xreplace(at)) for s in laid.known_strides]
            keep = [i for i, d in enumerate(sizes) if d != 1 or every and not laid.loose]
            assert [got[i] for i in keep] == [real.stride()[i] for i in keep], \
                (h, w, every, [(tuple(t.shape), t.stride()) for t in ts], got, real.stride(), laid)


class SinePositions(nn.Module):
    """MaskFormer's (and DETR's) sine position embedding without a mask: grids of ``arange``
    expanded over the map, divided by per-channel frequencies (broadcast in every dim but one),
    every other channel's ``sin`` and ``cos`` stacked, flattened, concatenated, permuted to
    channels first and viewed as a sequence. TensorIterator orders the broadcast quotient's
    dims as the grid's own (contiguous), so every view is legal."""

    def forward(self, x):  # x: (N, 8, H, W)
        b, c, h, w = x.shape
        y_embed = torch.arange(1, h + 1, dtype=x.dtype)[None, :, None].expand(b, h, w)
        x_embed = torch.arange(1, w + 1, dtype=x.dtype)[None, None, :].expand(b, h, w)
        dim_t = torch.arange(c // 2, dtype=torch.int64).to(x.dtype)
        dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / (c // 2))
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return pos.view(b, c, h * w).transpose(1, 2) + x.view(b, c, h * w).transpose(1, 2)


def test_a_sine_position_embedding_is_traced_op_by_op_and_viewed_as_torch_does():
    assert_agrees(SinePositions(), (8, "H", "W"), grid(["H", "W"], [1, 2, 3, 5]))
    an = symshape.analyze(SinePositions(), (8, "H", "W"))
    # every op by its rule: before, the quotient's layout was not known, and the model ran whole
    # under torch's meta kernels
    assert [s.rule for s in an.steps if s.op.endswith("view")] == ["view", "view"]
    assert an.at(H=3, W=5).output_shape == (1, 15, 8)
