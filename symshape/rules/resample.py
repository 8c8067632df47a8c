"""Resampling: Upsample / F.interpolate, PixelShuffle / PixelUnshuffle, ChannelShuffle.

    interpolate(size=s):          out = s
    interpolate(scale_factor=f):  out = floor(double(in) * f)   (the product rounded to a double first)
    PixelShuffle(r):              (C, H, W) -> (C/r^2, H*r, W*r);  C must be a multiple of r^2
    PixelUnshuffle(r):            (C, H, W) -> (C*r^2, H/r, W/r);  H and W multiples of r
    ChannelShuffle(g):            out = in;  C a multiple of g

torch computes a scaled size in double precision, in every mode and whatever
``recompute_scale_factor`` is: C++ ``compute_output_size`` truncates ``double(in) * f``, and the
Python path (``recompute_scale_factor=True``, and ``mode="area"``) takes ``math.floor(float(in *
f))`` -- the same double product. Where ``f``'s double is a short binary fraction (2, 0.5, 1.5,
0.25) that product is exact and the size is a plain floor division, ``floor(3*H/2)``. Any other
factor (0.1, 0.35, 1/3, 2.2) rounds the product before the floor -- for 0.35 at 180 it is
62.99999999999999, so the size is 62, not 63 -- and the size is
:class:`~symshape.dims.DoubleFloor`, evaluated exactly as torch does it.
"""

from __future__ import annotations

import math

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..derivations import Scaled
from ..dims import canonical, floor_div, scaled_floor
from ..tensor import SymTensor
from ..dims import as_expr
from .common import as_choice, as_int, as_real, spatial_unit, tensor_arg
from .registry import Context, function_rule, module_rule

_MODE_RANKS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_MODES = ("nearest", "nearest-exact", "area", *_MODE_RANKS)
# the CPU kernels' output memory format by input rank (symshape.tensor.kernel_layout), measured:
# interpolation, pixel and channel shuffles follow the input (1D interpolation: contiguous;
# "area" is adaptive average pooling: 1D as 2D, 3D contiguous)
_FOLLOWS = {3: "contiguous", 4: "suggest", 5: "suggest"}


def _scale(ctx: Context, f) -> float:
    value = float(as_real(f, "scale_factor", ctx))
    if not value > 0 or math.isinf(value):
        ctx.refuse(f"scale_factor must be positive and finite, gets {f}")
    return value


def interpolate_shape(ctx: Context, x: SymTensor, size, scale_factor, mode: str, layer: str) -> SymTensor:
    d = x.ndim - 2
    if d < 1:
        ctx.refuse(f"{layer} expects a 3D, 4D or 5D input (batch, channels, spatial), gets {x.ndim}D {x}")
    mode = as_choice(mode, _MODES, "mode", ctx)
    if mode == "area" and x.ndim in (3, 5):
        ctx.memory_format = "suggest" if x.ndim == 3 else "contiguous"
    if mode in _MODE_RANKS and x.ndim != _MODE_RANKS[mode]:
        ctx.refuse(f"{layer}: mode {mode!r} expects a {_MODE_RANKS[mode]}D input, gets {x.ndim}D")
    if (size is None) == (scale_factor is None):
        ctx.refuse(f"{layer}: give exactly one of size and scale_factor")
    out = []
    if size is not None:
        sizes = list(size) if isinstance(size, (list, tuple, torch.Size)) else [size] * d
        if len(sizes) != d:
            ctx.refuse(f"{layer}: size has {len(sizes)} entries for {d} spatial dims")
        out = [canonical(as_expr(s, f"{layer} size")) for s in sizes]
        for i, o in enumerate(out):  # ("area" is adaptive average pooling: an empty output is one)
            if mode == "area":
                ctx.at_least(o, 0, f"{layer}: output {spatial_unit(i, d)} {{lhs}}: elements of output_size must be "
                                   "greater than or equal to 0")
            else:
                ctx.at_least(o, 1, f"{layer}: Input and output sizes should be greater than 0: output "
                                   f"{spatial_unit(i, d)} is {{lhs}}")
    else:
        factors = list(scale_factor) if isinstance(scale_factor, (list, tuple)) else [scale_factor] * d
        if len(factors) != d:
            ctx.refuse(f"{layer}: scale_factor has {len(factors)} entries for {d} spatial dims")
        for i, (n, f) in enumerate(zip(x.shape[2:], factors)):
            value = _scale(ctx, f)
            o = canonical(scaled_floor(n, value))
            ctx.derive(Scaled(spatial_unit(i, d), n, value, o))
            if mode != "area":  # "area" is adaptive average pooling, which makes an empty output
                ctx.at_least(o, 1, f"{layer}: scaling {spatial_unit(i, d)} by {f} leaves {{lhs}}, needs at least 1")
            out.append(o)
    for i, n in enumerate(x.shape[2:]):
        ctx.at_least(n, 1, f"{layer}: input {spatial_unit(i, d)} must be non-empty, gets {{lhs}}")
    return SymTensor((*x.shape[:2], *out))


@module_rule(nn.Upsample, memory_format=_FOLLOWS)
def upsample(ctx: Context, module: nn.Upsample, x) -> SymTensor:
    """``out = size``, or ``floor(double(in) * scale_factor)`` (the product rounded to a double
    first); each at least 1 (in "area" mode, adaptive average pooling, a size of 0 is an empty
    output)."""
    x = tensor_arg(x, "input", ctx)
    return interpolate_shape(ctx, x, module.size, module.scale_factor, module.mode, type(module).__name__)


@function_rule(F.interpolate, memory_format=_FOLLOWS)
def interpolate(ctx: Context, input, size=None, scale_factor=None, mode="nearest", *args, **kwargs) -> SymTensor:
    """``out = size``, or ``floor(double(in) * scale_factor)`` (the product rounded to a double
    first); each at least 1 (in "area" mode, adaptive average pooling, a size of 0 is an empty
    output)."""
    return interpolate_shape(ctx, tensor_arg(input, "input", ctx), size, scale_factor, mode, "interpolate")


# (F.upsample, F.upsample_nearest and F.upsample_bilinear call F.interpolate, which is what fx records)


@function_rule(torch.ops.aten._upsample_bilinear2d_aa, torch.ops.aten._upsample_bilinear2d_aa.vec,
               memory_format=_FOLLOWS)
def upsample_bilinear2d_aa(ctx: Context, input, output_size=None, align_corners=False, scale_factors=None):
    """``out = output_size``, or ``floor(double(in) * scale_factor)`` (antialiased bilinear,
    ``F.interpolate(..., antialias=True)``'s kernel called directly)."""
    x = tensor_arg(input, "input", ctx)
    size = None if output_size is None else list(output_size)
    return interpolate_shape(ctx, x, size, scale_factors, "bilinear", "_upsample_bilinear2d_aa")


def _pixel_shuffle(ctx: Context, x: SymTensor, r: int, layer: str) -> SymTensor:
    if x.ndim < 3:
        ctx.refuse(f"{layer} expects at least a 3D input, gets {x.ndim}D {x}")
    c, h, w = x.shape[-3:]
    ctx.divisible(c, r * r, f"{layer}: channels {{lhs}} must be a multiple of {r}^2 = {{rhs}}")
    return SymTensor((*x.shape[:-3], c / (r * r), h * r, w * r))


def _pixel_unshuffle(ctx: Context, x: SymTensor, r: int, layer: str) -> SymTensor:
    if x.ndim < 3:
        ctx.refuse(f"{layer} expects at least a 3D input, gets {x.ndim}D {x}")
    c, h, w = x.shape[-3:]
    ctx.divisible(h, r, f"{layer}: rows {{lhs}} must be a multiple of {r}")
    ctx.divisible(w, r, f"{layer}: columns {{lhs}} must be a multiple of {r}")
    # floor(h/r) is h/r wherever torch gets past the checks above, and keeps later floors whole
    out = (*x.shape[:-3], c * r * r, canonical(floor_div(h, r)), canonical(floor_div(w, r)))
    n = x.numel()
    if n.is_positive:
        return SymTensor(out)
    # torch's CPU kernel returns an empty input unchanged (its meta kernel does not)
    empty = sympy.Eq(n, 0)
    return SymTensor(tuple(a if a == b else sympy.Piecewise((a, empty), (b, True)) for a, b in zip(x.shape, out)))


@module_rule(nn.PixelShuffle, memory_format=_FOLLOWS)
def pixel_shuffle(ctx: Context, module: nn.PixelShuffle, x) -> SymTensor:
    """``(C, H, W) -> (C/r^2, H*r, W*r)``."""
    return _pixel_shuffle(ctx, tensor_arg(x, "input", ctx), as_int(module.upscale_factor, "upscale_factor", ctx), "PixelShuffle")


@function_rule(F.pixel_shuffle, memory_format=_FOLLOWS)
def pixel_shuffle_function(ctx: Context, input, upscale_factor) -> SymTensor:
    """``(C, H, W) -> (C/r^2, H*r, W*r)``."""
    return _pixel_shuffle(ctx, tensor_arg(input, "input", ctx), as_int(upscale_factor, "upscale_factor", ctx),
                          "pixel_shuffle")


@module_rule(nn.PixelUnshuffle, memory_format=_FOLLOWS)
def pixel_unshuffle(ctx: Context, module: nn.PixelUnshuffle, x) -> SymTensor:
    """``(C, H, W) -> (C*r^2, H/r, W/r)``."""
    return _pixel_unshuffle(ctx, tensor_arg(x, "input", ctx), as_int(module.downscale_factor, "downscale_factor", ctx), "PixelUnshuffle")


@function_rule(F.pixel_unshuffle, memory_format=_FOLLOWS)
def pixel_unshuffle_function(ctx: Context, input, downscale_factor) -> SymTensor:
    """``(C, H, W) -> (C*r^2, H/r, W/r)``."""
    return _pixel_unshuffle(ctx, tensor_arg(input, "input", ctx),
                            as_int(downscale_factor, "downscale_factor", ctx), "pixel_unshuffle")


def _channel_shuffle(ctx: Context, x: SymTensor, groups: int, layer: str) -> SymTensor:
    if x.ndim < 3:
        ctx.refuse(f"{layer} expects at least a 3D input, gets {x.ndim}D {x}")
    ctx.divisible(x.shape[1], groups, f"{layer}: channels {{lhs}} must be a multiple of groups={{rhs}}")
    return x


@module_rule(nn.ChannelShuffle, memory_format=_FOLLOWS)
def channel_shuffle(ctx: Context, module: nn.ChannelShuffle, x) -> SymTensor:
    """``out = in``; the channels must split into ``groups``."""
    return _channel_shuffle(ctx, tensor_arg(x, "input", ctx), as_int(module.groups, "groups", ctx), "ChannelShuffle")


@function_rule(torch.channel_shuffle, torch.native_channel_shuffle, memory_format=_FOLLOWS)
def channel_shuffle_function(ctx: Context, input, groups) -> SymTensor:
    """``out = in``; the channels must split into ``groups``."""
    return _channel_shuffle(ctx, tensor_arg(input, "input", ctx), as_int(groups, "groups", ctx), "channel_shuffle")

