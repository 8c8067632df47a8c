"""torchvision's fx-wrapped functions (registered when torchvision is already imported).

    stochastic_depth(x):            out = in
    _patch_merging_pad(x):          (..., H, W, C) -> (..., ceil(H/2), ceil(W/2), 4C)
    _get_relative_position_bias:    (1, heads, ws0*ws1, ws0*ws1), from the bias table's shape
    shifted_window_attention(x):    out = in (B, H, W, C); pads to whole windows, then crops back
"""

from __future__ import annotations

import sys

from ..dims import ceil_div
from ..tensor import SymTensor
from .common import as_int, tensor_arg
from .registry import Context, function_rule


_registered = False


def register() -> bool:
    """Register the rules if torchvision is imported (never imports it: that is slow, and can fail).

    Called before every trace: fx swaps the wrapped functions for patches while it traces, and
    the rules must be keyed by the originals. Returns whether the rules are registered.
    """
    global _registered
    if _registered:
        return True
    if "torchvision" not in sys.modules:
        return False
    from torchvision.models import swin_transformer as swin
    from torchvision.ops.stochastic_depth import stochastic_depth as sd

    function_rule(sd)(stochastic_depth)
    function_rule(swin._patch_merging_pad)(patch_merging_pad)
    function_rule(swin._get_relative_position_bias)(relative_position_bias)
    function_rule(swin.shifted_window_attention)(shifted_window_attention)
    _registered = True
    return True


def stochastic_depth(ctx: Context, input, p, mode, training=True) -> SymTensor:
    """``out = in`` (whole rows or the batch zeroed at random while training)."""
    return tensor_arg(input, "input", ctx)


def patch_merging_pad(ctx: Context, x) -> SymTensor:
    """``(..., H, W, C) -> (..., ceil(H/2), ceil(W/2), 4C)``: pads to even, then 2x2 patches."""
    x = tensor_arg(x, "x", ctx)
    if x.ndim < 3:
        ctx.refuse(f"patch merging needs at least 3 dims (..., H, W, C), gets {x}")
    h, w, c = x.shape[-3:]
    return SymTensor((*x.shape[:-3], ceil_div(h, 2), ceil_div(w, 2), 4 * c))


def relative_position_bias(ctx: Context, table, index, window_size) -> SymTensor:
    """``(1, heads, N, N)`` with ``N = window_size[0] * window_size[1]``."""
    t = tensor_arg(table, "relative_position_bias_table", ctx)
    n = as_int(window_size[0], "window_size", ctx) * as_int(window_size[1], "window_size", ctx)
    return SymTensor((1, t.shape[-1], n, n))


def shifted_window_attention(ctx: Context, input, qkv_weight, proj_weight, relative_position_bias, window_size,
                             num_heads, shift_size, *args, **kwargs) -> SymTensor:
    """``out = in`` for a (B, H, W, C) input; C must split into ``num_heads`` heads."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim != 4:
        ctx.refuse(f"shifted window attention expects (B, H, W, C), gets {x}")
    ctx.divisible(x.shape[-1], as_int(num_heads, "num_heads", ctx), "channels {lhs} must split into {rhs} heads")
    return x.with_shape(x.shape, contiguous=True)
