"""Hypothesis strategies for random models built from the supported layers.

A model is a stack of layer specs drawn for a spatial rank d (1, 2 or 3), written either as an
nn.Sequential of modules or as a module whose forward makes functional calls (F.max_pool2d,
F.pad, F.conv2d with its own weight, x.view(x.size(0), -1) ...). Some stacks carry residual
adds or cat skips around a block; most end in a Linear that is lazy, right at some size, or wrong.
Parameters may be invalid for torch on purpose (a pool padding above half its kernel, a wrong
channel count): symshape must refuse exactly where torch does.
"""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st

NAMES = {1: ("L",), 2: ("H", "W"), 3: ("T", "H", "W")}
MAX_SIZE = {1: 48, 2: 32, 3: 9}

from layers import ADAPT, AVGPOOL, BN, CONV, CONVT, F_AVG, F_CONV, F_CONVT, F_MAX, IN, MAXPOOL  # noqa: E402
from layers import PADS as _PADS  # noqa: E402

PAD = {mode: by_d for mode, by_d in _PADS.items() if mode != "zero"}


class WeightConv(nn.Module):
    """F.conv{d}d with the module's own weight (a get_attr in the traced graph)."""

    def __init__(self, d, c_in, c_out, k, **kwargs):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, *(k,) * d) * 0.1)
        self.fn, self.kwargs = F_CONV[d], kwargs

    def forward(self, x):
        return self.fn(x, self.weight, **self.kwargs)

    def extra_repr(self):
        return f"{self.fn.__name__}, weight={tuple(self.weight.shape)}, {self.kwargs}"


class WeightConvT(nn.Module):
    """F.conv_transpose{d}d with the module's own weight."""

    def __init__(self, d, c_in, c_out, k, **kwargs):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_in, c_out, *(k,) * d) * 0.1)
        self.fn, self.kwargs = F_CONVT[d], kwargs

    def forward(self, x):
        return self.fn(x, self.weight, **self.kwargs)

    def extra_repr(self):
        return f"{self.fn.__name__}, weight={tuple(self.weight.shape)}, {self.kwargs}"


class Functional(nn.Module):
    """A forward made of functional calls and submodules, in order."""

    def __init__(self, ops):
        super().__init__()
        self.mods = nn.ModuleList()
        self.plan = []
        for op in ops:
            if isinstance(op, nn.Module):
                self.plan.append(("m", len(self.mods)))
                self.mods.append(op)
            else:
                self.plan.append(("f", op))

    def extra_repr(self):
        return "plan: " + ", ".join(f"mods[{op}]" if kind == "m" else repr(op) for kind, op in self.plan)

    def forward(self, x):
        for kind, op in self.plan:
            x = self.mods[op](x) if kind == "m" else op(x)
        return x


class Skip(nn.Module):
    """``combine(x, block(x))``: a residual add or a cat along channels."""

    def __init__(self, block: nn.Module, cat: bool):
        super().__init__()
        self.block, self.cat = block, cat

    def forward(self, x):
        y = self.block(x)
        return torch.cat([x, y], dim=1) if self.cat else x + y


def _view_flat(x):
    return x.view(x.size(0), -1)


def _view_rows(x, k):
    return x.view(-1, k)  # the batch dim becomes numel / k: it must divide


def _flatten_fn(x):
    return torch.flatten(x, 1)


def _flatten_method(x):
    return x.flatten(1)


@st.composite
def conv_layer(draw, d, c, functional):
    out_c = draw(st.integers(1, 4))
    k = draw(st.integers(1, 5))
    mode = draw(st.sampled_from(["int", "int", "same", "valid"]))
    stride = 1 if mode == "same" else draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = {"int": draw(st.integers(0, 3)), "same": "same", "valid": "valid"}[mode]
    groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0 and out_c % g == 0]))
    c_in = c if draw(st.integers(0, 19)) else c + 1  # a wrong channel count now and then
    if functional:
        op = WeightConv(d, c_in // groups if c_in % groups == 0 else c_in, out_c, k,
                        stride=stride, padding=padding, dilation=dilation, groups=groups)
        return op, out_c
    padding_mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    return CONV[d](c_in, out_c, k, stride=stride, padding=padding, dilation=dilation,
                   groups=groups if c_in % groups == 0 else 1, padding_mode=padding_mode), out_c


@st.composite
def conv_transpose_layer(draw, d, c, functional):
    out_c = draw(st.integers(1, 3))
    k, stride, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, 3))
    output_padding = draw(st.integers(0, max(stride, dilation) - 1))
    if functional:
        op = WeightConvT(d, c, out_c, k, stride=stride, padding=padding, output_padding=output_padding,
                         dilation=dilation)
        return op, out_c
    return CONVT[d](c, out_c, k, stride=stride, padding=padding, output_padding=output_padding,
                    dilation=dilation), out_c


@st.composite
def pool_layer(draw, d, c, functional):
    k = draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.integers(1, 3)))
    padding = draw(st.integers(0, k // 2 + (1 if draw(st.integers(0, 14)) == 0 else 0)))
    ceil_mode = draw(st.booleans())
    if draw(st.booleans()):
        dilation = draw(st.integers(1, 2))
        if functional:
            return functools.partial(F_MAX[d], kernel_size=k, stride=stride, padding=padding,
                                     dilation=dilation, ceil_mode=ceil_mode), c
        return MAXPOOL[d](k, stride, padding, dilation, ceil_mode=ceil_mode), c
    if functional:
        return functools.partial(F_AVG[d], kernel_size=k, stride=stride, padding=padding,
                                 ceil_mode=ceil_mode), c
    return AVGPOOL[d](k, stride, padding, ceil_mode=ceil_mode,
                      count_include_pad=draw(st.booleans())), c


@st.composite
def adaptive_layer(draw, d, c, functional):
    sizes = tuple(draw(st.one_of(st.none(), st.integers(1, 4))) for _ in range(d))
    cls = ADAPT[d][draw(st.integers(0, 1))]
    return cls(sizes if d > 1 else (sizes[0] or 2)), c


@st.composite
def pad_layer(draw, d, c, functional):
    mode = draw(st.sampled_from(sorted(PAD)))
    low = {"constant": -3, "reflect": -2, "replicate": -2, "circular": 0}[mode]
    pads = tuple(draw(st.integers(low, 3)) for _ in range(2 * d))
    if functional:
        return functools.partial(F.pad, pad=pads, mode=mode), c
    if mode == "constant":
        return PAD[mode][d](pads, 0.0), c
    return PAD[mode][d](pads), c


@st.composite
def pointwise_layer(draw, d, c, functional):
    kind = draw(st.sampled_from(["relu", "bn", "bn_eval", "instance", "group", "dropout", "identity",
                                 "softmax", "prelu", "gelu", "glu", "lrn", "layernorm", "rmsnorm",
                                 "dropout_nd", "softmax2d", "hardtanh", "leaky"]))
    if kind == "glu":
        if c % 2:
            return nn.GLU(dim=draw(st.sampled_from([-1, 1]))), c  # halving an odd size: refused, or the last dim
        return (F.glu if functional else nn.GLU(dim=1)), c // 2
    if kind in ("layernorm", "rmsnorm"):
        size = draw(st.integers(1, 6))  # runs only where the last dim has that size
        return (nn.LayerNorm(size) if kind == "layernorm" else nn.RMSNorm(size)), c
    if kind == "lrn":
        return nn.LocalResponseNorm(draw(st.integers(1, 3))), c
    if kind == "dropout_nd":
        return {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}[d](0.0), c
    if kind == "softmax2d":
        return nn.Softmax2d(), c
    if kind in ("hardtanh", "leaky"):
        return (nn.Hardtanh() if kind == "hardtanh" else nn.LeakyReLU(0.1)), c
    if functional and kind in ("relu", "dropout", "softmax", "gelu"):
        fn = {"relu": F.relu, "dropout": functools.partial(F.dropout, p=0.0),
              "softmax": functools.partial(F.softmax, dim=1), "gelu": F.gelu}[kind]
        return fn, c
    if kind == "bn":
        return BN[d](c), c
    if kind == "bn_eval":
        return BN[d](c).eval(), c
    if kind == "instance":
        return IN[d](c, affine=draw(st.booleans())), c
    if kind == "group":
        return nn.GroupNorm(draw(st.sampled_from([g for g in (1, 2) if c % g == 0])), c), c
    if kind == "prelu":
        return nn.PReLU(draw(st.sampled_from([1, c]))), c
    return {"relu": nn.ReLU(), "dropout": nn.Dropout(0.0), "identity": nn.Identity(),
            "softmax": nn.Softmax(dim=1), "gelu": nn.GELU()}[kind], c


class Rearrange(nn.Module):
    """A forward of dim ops: permute + reshape round trips, slicing, chunks, reductions."""

    def __init__(self, kind: str, arg: int, d: int):
        super().__init__()
        self.kind, self.arg, self.d = kind, arg, d

    def extra_repr(self):
        return f"{self.kind}, {self.arg}"

    def forward(self, x):
        k = self.arg
        if self.kind == "permute":  # channels last and back, through a reshape
            n = self.d + 2
            y = x.permute(0, *range(2, n), 1)
            return y.reshape(y.shape).permute(0, n - 1, *range(1, n - 1)).contiguous()
        if self.kind == "slice":  # slicing the last dim keeps a later view(N, -1) decidable
            return x[..., k:-1].contiguous()
        if self.kind == "step":
            return x[..., ::k].contiguous()
        if self.kind == "chunk":
            return torch.cat(x.chunk(k, dim=-1), -1)
        if self.kind == "mean":
            return x.mean(-1, keepdim=True)
        if self.kind == "index":
            return x[..., k].unsqueeze(-1).contiguous()
        raise ValueError(self.kind)


@st.composite
def resample_layer(draw, d, c, functional):
    kind = draw(st.sampled_from(["upsample", "upsample", "pixel", "unshuffle", "channel", "lp", "rearrange"]))
    if kind == "upsample":
        scale = draw(st.sampled_from([2, 0.5, 1.5, 0.75, 3]))
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[d] if draw(st.booleans()) else "nearest"
        if functional:
            return functools.partial(F.interpolate, scale_factor=scale, mode=mode), c
        return nn.Upsample(scale_factor=scale, mode=mode), c
    if kind == "pixel" and d == 2:
        return nn.Sequential(CONV[2](c, 4 * c, 1), nn.PixelShuffle(2)), c
    if kind == "unshuffle" and d == 2:
        return nn.PixelUnshuffle(2), 4 * c
    if kind == "channel" and c % 2 == 0:
        return nn.ChannelShuffle(2), c
    if kind == "lp":
        lp = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}[d]
        return lp(draw(st.sampled_from([1.0, 2.0])), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
                  ceil_mode=draw(st.booleans())), c
    rearrange = draw(st.sampled_from(["permute", "slice", "step", "chunk", "mean", "index"]))
    return Rearrange(rearrange, draw(st.integers(1, 3)), d), c


LAYERS = [conv_layer, conv_layer, pool_layer, pool_layer, pad_layer, pointwise_layer, adaptive_layer,
          conv_transpose_layer, resample_layer]


@st.composite
def stack(draw, d, c, functional, n_min=1, n_max=5):
    ops = []
    for _ in range(draw(st.integers(n_min, n_max))):
        make = draw(st.sampled_from(LAYERS))
        op, c = draw(make(d, c, functional))
        ops.append(op)
    return ops, c


@st.composite
def models(draw):
    """(model, input_shape, [sizes, ...], description)."""
    d = draw(st.sampled_from([1, 2, 2, 3]))
    c = draw(st.integers(1, 3))
    functional = draw(st.booleans())
    ops, c_out = draw(stack(d, c, functional))
    if draw(st.integers(0, 3)) == 0:
        # a skip around a channel-keeping block
        block_ops, c_block = draw(stack(d, c_out, False, 1, 2))
        if c_block != c_out:
            block_ops.append(CONV[d](c_block, c_out, 1))
        ops.append(Skip(nn.Sequential(*block_ops), cat=draw(st.booleans())))
        if ops[-1].cat:
            c_out *= 2
    tail = draw(st.sampled_from(["none", "flatten", "view", "flatten_fn", "flatten_method", "unflatten",
                                 "view_fixed"]))
    linear = None
    if tail != "none":
        flat = {"flatten": nn.Flatten(), "view": _view_flat, "flatten_fn": _flatten_fn,
                "flatten_method": _flatten_method, "unflatten": nn.Flatten(),
                "view_fixed": functools.partial(_view_rows, k=draw(st.integers(1, 12)))}[tail]
        ops.append(flat if functional or tail in ("flatten", "unflatten") else nn.Flatten())
        if tail == "unflatten":  # a round trip through Unflatten, whose sizes must multiply up
            ops += [nn.Unflatten(1, (c_out, -1)), nn.Flatten()]
    names = NAMES[d]
    n_sizes = draw(st.integers(2, 4))
    sizes = [dict(zip(names, draw(st.tuples(*[st.integers(1, MAX_SIZE[d])] * d)))) for _ in range(n_sizes)]
    build = Functional if functional else nn.Sequential
    if tail != "none":
        linear = draw(st.sampled_from(["lazy", "right", "wrong"]))
        if linear == "lazy":
            ops.append(nn.LazyLinear(3))
        else:
            # "right": the flat size torch produces at the first drawn size, when it runs there
            flat = draw(st.integers(1, 64))
            if linear == "right":
                try:
                    with torch.no_grad():
                        x = torch.rand(1, c, *(sizes[0][n] for n in names))
                        flat = build(*ops)(x).shape[-1] if not functional else build(ops)(x).shape[-1]
                except Exception:
                    pass
            ops.append(nn.Linear(flat, 3))
    model = build(ops) if functional else build(*ops)
    return model, (c, *names), sizes, f"d={d} functional={functional} tail={tail} linear={linear}"
