"""Memory formats: which layout convolution and pooling give their output on the CPU, and the
strides of dims of size 1 that decide it, against real torch.

A ``view`` after a convolution is where it shows: an image tensor permuted from NHWC is channels
last, a 2D convolution's output then is too, and ``view(N, -1)`` of it fails; a tensor that is
contiguous but whose size-1 dims carry odd strides (a permute round trip, ``contiguous()`` of a
tensor contiguous only at some sizes) can make the CPU kernels pick channels last at the sizes
where those dims are 1.
"""

import functools
import itertools

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch._prims_common import suggest_memory_format

import symshape
from oracle import assert_agrees, grid
from strategies import Functional
from symshape.tensor import channels_last


# -- channels_last: torch's is_channels_last_strides, decided symbolically -------------------------


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_channels_last_matches_torch_on_concrete_strides(data):
    nd = data.draw(st.sampled_from([4, 5]))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    perm = data.draw(st.permutations(range(nd)))
    t = torch.empty([sizes[p] for p in perm]).permute([perm.index(i) for i in range(nd)])
    if data.draw(st.booleans()):  # a view of it: computeStride's strides on dims of size 1
        try:
            t = t.view(t.shape)
        except RuntimeError:
            pass
    answer, ones = channels_last(tuple(t.shape), tuple(t.stride()))
    assert ones == ()
    expected = suggest_memory_format(t) in (torch.channels_last, torch.channels_last_3d)
    assert answer == expected, (tuple(t.shape), t.stride())


def test_channels_last_symbolic_with_its_guard():
    """(N, 1, H, W) from NHWC: channels last unless H = W = 1; (N, 3, H, W) from NHWC: always."""
    H, W = sympy.symbols("H W", integer=True, positive=True)
    for c, expected_guard in ((1, (H * W,)), (3, ())):
        answer, ones = channels_last((2, c, H, W), (c * H * W, 1, c * W, c))
        assert answer is True and ones == expected_guard
        for h, w in itertools.product(range(1, 4), repeat=2):
            t = torch.empty(2, h, w, c).permute(0, 3, 1, 2)
            held = all(g.subs({H: h, W: w}) >= 2 for g in ones)
            if held:
                assert suggest_memory_format(t) == torch.channels_last, (c, h, w)
            else:
                assert suggest_memory_format(t) == torch.contiguous_format, (c, h, w)
    assert channels_last((2, 3, H, W), (3 * H * W, H * W, W, 1)) == (False, ())


# -- the kernels, end to end: a view after them runs exactly where torch's does --------------------


class Permuted(nn.Module):
    """The input arrives with its channels last (NHWC, or NLC / NDHWC) and is permuted to channels
    first; ``odd``: then through the fuzz's round trip (a reshape of the permuted tensor, and back),
    which leaves odd strides on dims of size 1."""

    def __init__(self, nd: int, odd: bool):
        super().__init__()
        self.nd, self.odd = nd, odd

    def extra_repr(self):
        return f"nd={self.nd}, odd={self.odd}"

    def forward(self, x):
        n = self.nd
        y = x.permute(0, n - 1, *range(1, n - 1))
        if self.odd:
            y = y.permute(0, *range(2, n), 1)
            y = y.reshape(y.shape).permute(0, n - 1, *range(1, n - 1)).contiguous()
        return y


def _flat(x):
    return x.view(x.size(0), -1)


def _kernels(d: int, c: int):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[d]
    conv_t = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[d]
    maxp = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[d]
    avgp = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[d]
    adapt = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[d]
    adapt_max = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[d]
    return {
        "conv": conv(c, 4, 1),
        "conv_pad": conv(c, 4, 3, padding=1),
        "conv_t": conv_t(c, 4, 2, stride=2),
        "max_pool": functools.partial(maxp, kernel_size=1),
        "max_pool_pad": functools.partial(maxp, kernel_size=3, stride=1, padding=1),
        "max_pool_indices": nn.Sequential(
            {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[d](1, return_indices=True), _First()),
        "avg_pool": functools.partial(avgp, kernel_size=1),
        "avg_pool_pad": functools.partial(avgp, kernel_size=3, stride=1, padding=1),
        "adaptive": functools.partial(adapt, output_size=2),
        "adaptive_max": adapt_max(3),
        "lp_pool": {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}[d](2, 1),
        "batch_norm": {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[d](c).eval(),
        "group_norm": nn.GroupNorm(1, c),
        "instance_norm": {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[d](c),
        "interpolate": functools.partial(F.interpolate, scale_factor=2),
        "interpolate_linear": functools.partial(F.interpolate, scale_factor=2,
                                                mode={1: "linear", 2: "bilinear", 3: "trilinear"}[d]),
        "interpolate_area": functools.partial(F.interpolate, size=(2,) * d, mode="area"),
        "pad": functools.partial(F.pad, pad=(1, 1) * d),
        "pad_replicate": functools.partial(F.pad, pad=(1, 1) * d, mode="replicate"),
        "pad_circular": functools.partial(F.pad, pad=(1, 1) * d, mode="circular"),
        "pad_shrink": functools.partial(F.pad, pad=(0, -1) * d),
        **({"pixel_shuffle": nn.PixelShuffle(1), "pixel_unshuffle": nn.PixelUnshuffle(1),
            "channel_shuffle": nn.ChannelShuffle(1)} if d == 2 else {}),
    }


class _First(nn.Module):
    def forward(self, pair):
        return pair[0]


KINDS = list(_kernels(2, 1))
#: the kinds that apply to every rank (the chains' first kernel)
EVERY_RANK = [k for k in KINDS if k in _kernels(1, 1) and k in _kernels(3, 1)]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_kernel_output_layout_decides_a_later_view(kind, d):
    if kind not in _kernels(d, 1):
        pytest.skip(f"{kind} takes 2D inputs only")
    names = ["L"] if d == 1 else ["H", "W"] if d == 2 else ["D", "H", "W"]
    values = [1, 2, 3] if d < 3 else [1, 2]
    for c, odd in ((3, False), (1, False), (2, True)):
        model = Functional([Permuted(d + 2, odd), _kernels(d, c)[kind], _flat])
        if (kind, d, c) == ("pad_shrink", 3, 3):
            continue  # refused by name: test_a_narrowed_ndhwc_view_is_refused_by_name (slow)
        assert_agrees(model, (*names, c), grid(names, values))


@pytest.mark.slow
def test_a_narrowed_ndhwc_view_is_refused_by_name():
    """A narrowed NDHWC tensor: torch's view of it branches on the sizes more than 64 ways, and
    symshape refuses it, naming the view, rather than guess (40 s: every branch is explored)."""
    model = Functional([Permuted(5, False), _kernels(3, 3)["pad_shrink"], _flat])
    with pytest.raises(symshape.UnsupportedOperation, match="view"):
        symshape.analyze(model, ("D", "H", "W", 3))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(EVERY_RANK), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 3]), st.booleans(),
       st.booleans())
def test_kernel_chains_agree_with_torch(kind, d, c, odd, twice):
    """Two kernels in a row (the second sees the first's layout), then a view."""
    names = ["L"] if d == 1 else ["H", "W"] if d == 2 else ["D", "H", "W"]
    first = _kernels(d, c)[kind]
    channels = 4 if kind.startswith("conv") else c
    ops = [Permuted(d + 2, odd), first]
    if twice:
        ops.append(_kernels(d, channels)["conv"])
    ops.append(_flat)
    if (kind, d, odd, twice) == ("pad_shrink", 3, False, False) and c > 1:
        # the narrowed NDHWC tensor of test_kernel_output_layout_decides_a_later_view: refused,
        # naming the view, rather than guessed (torch's view of it branches more than 64 ways)
        with pytest.raises(symshape.UnsupportedOperation, match="view"):
            symshape.analyze(Functional(ops), (*names, c))
        return
    assert_agrees(Functional(ops), (*names, c), grid(names, [1, 2, 3] if d < 3 else [1, 2]))


class _TokensAndBack(nn.Module):
    """DaViT's pattern: image -> tokens -> image by a view of the transposed tokens, a depthwise
    convolution of that (channels last at batch 2, contiguous at batch 1 on the CPU), tokens
    again, and a view that works for either memory format."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.head = nn.LazyLinear(3)

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) * 2.0
        y = self.proj(t.transpose(1, 2).view(n, c, h, w))
        t = y.view(n, c, h * w).transpose(1, 2)  # merges H and W: a view in either memory format
        return self.head(t.mean(1))


def test_a_convolution_of_a_view_of_transposed_tokens_agrees_at_batch_1_and_2():
    model = _TokensAndBack()
    assert_agrees(model, (4, "H", "W"), grid(["H", "W"], [1, 2, 3, 5]))
    a = symshape.analyze(model, (4, "H", "W"))
    report = a.verify(sizes=[{"N": n, "H": h, "W": w} for n in (1, 2) for h, w in ((3, 5), (4, 4))])
    assert report.ok, report
