"""Convolution: Conv1d/2d/3d (and their Lazy forms) and F.conv1d/2d/3d.

    out = floor((in + 2*padding - dilation*(kernel - 1) - 1)/stride) + 1

torch refuses a size when the padded input is shorter than the dilated kernel
(``in + 2*padding < dilation*(kernel - 1) + 1``) or when the input itself is empty. ``padding='same'`` pads ``dilation*(kernel-1)``
in total (the extra one on the right when odd) and keeps the size; ``'valid'`` pads nothing.
A ``padding_mode`` other than ``'zeros'`` is an explicit F.pad in that mode followed by an
unpadded convolution, exactly as ``nn.Conv2d._conv_forward`` does.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..dims import canonical, floor_div
from ..tensor import SymTensor
from .common import check_rank, ntuple, spatial_unit, tensor_arg
from .pad import pad_shape
from .registry import Context, function_rule, module_rule

__all__ = ["conv_out", "conv_shape"]


def conv_out(size, kernel: int, stride: int, pad_total: int, dilation: int):
    """``floor((size + pad_total - dilation*(kernel - 1) - 1)/stride) + 1``."""
    return canonical(floor_div(size + pad_total - dilation * (kernel - 1) - 1, stride) + 1)


def _kernel_reason(kernel: int, dilation: int, pads: tuple[int, int], unit: str) -> str:
    span = dilation * (kernel - 1) + 1
    text = f"kernel {kernel}"
    if dilation != 1:
        text += f" with dilation {dilation} (spans {span})"
    if pads[0] or pads[1]:
        sep = " and" if dilation != 1 else " with"
        text += f"{sep} padding {pads[0]}" if pads[0] == pads[1] else f"{sep} padding {pads}"
    return text + f" needs at least {{rhs}} {unit}, gets {{lhs}}"


def conv_shape(
    ctx: Context,
    x: SymTensor,
    d: int,
    in_channels: int | None,
    out_channels: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding,  # tuple of ints, or "same" / "valid"
    dilation: tuple[int, ...],
    layer: str,
) -> SymTensor:
    """The output of a ``d``-dim convolution with zero padding (``padding_mode`` handled by callers)."""
    check_rank(ctx, x, (d + 1, d + 2), layer)
    channel = x.shape[-(d + 1)]
    if in_channels is not None:
        ctx.equal(channel, in_channels, f"expects {{rhs}} input channels, gets {{lhs}}", kind="declared")
    if padding == "same":
        if any(s != 1 for s in stride):
            ctx.refuse(f"{layer}: padding='same' is not supported for strided convolutions")
        pads = [(t // 2, t - t // 2) for t in (dl * (k - 1) for k, dl in zip(kernel, dilation))]
    elif padding == "valid":
        pads = [(0, 0)] * d
    else:
        pads = [(p, p) for p in padding]
    spatial = list(x.shape[-d:])
    out = []
    for i, (size, k, s, (pl, pr), dl) in enumerate(zip(spatial, kernel, stride, pads, dilation)):
        span = dl * (k - 1) + 1
        unit = spatial_unit(i, d)
        if span - pl - pr < 1:  # padding alone would cover the kernel, but torch wants input too
            ctx.at_least(size, 1, f"convolution needs a non-empty input, gets {{lhs}} {unit}")
        else:
            ctx.at_least(size, span - pl - pr, _kernel_reason(k, dl, (pl, pr), unit))
        out.append(conv_out(size, k, s, pl + pr, dl))
    return SymTensor((*x.shape[: -(d + 1)], out_channels, *out))


@module_rule(nn.Conv1d, d=1)
@module_rule(nn.Conv2d, d=2)
@module_rule(nn.Conv3d, d=3)
def conv(ctx: Context, module: nn.Module, x, *, d: int) -> SymTensor:
    """``floor((in + 2*padding - dilation*(kernel - 1) - 1)/stride) + 1`` per spatial dim."""
    x = tensor_arg(x, "input", ctx)
    layer = type(module).__name__
    lazy = getattr(module, "has_uninitialized_params", lambda: False)()
    padding = module.padding
    if module.padding_mode != "zeros":
        # _conv_forward: F.pad(input, _reversed_padding_repeated_twice, mode) then padding 0.
        check_rank(ctx, x, (d + 1, d + 2), layer)
        x = pad_shape(ctx, x, tuple(module._reversed_padding_repeated_twice), module.padding_mode, layer)
        padding = (0,) * d
    return conv_shape(
        ctx, x, d, None if lazy else module.in_channels, module.out_channels,
        tuple(module.kernel_size), tuple(module.stride), padding, tuple(module.dilation), layer,
    )


@function_rule(F.conv1d, d=1)
@function_rule(F.conv2d, d=2)
@function_rule(F.conv3d, d=3)
def conv_function(ctx: Context, input, weight, bias=None, stride=1, padding=0, dilation=1,
                  groups=1, *, d: int) -> SymTensor:
    """The Conv rule with channels and kernel read off ``weight`` (out, in/groups, *kernel)."""
    x = tensor_arg(input, "input", ctx)
    w = tensor_arg(weight, "weight", ctx)
    if w.ndim != d + 2 or not all(s.is_Integer for s in w.shape):
        ctx.unsupported(f"weight must have a fixed {d + 2}D shape, got {w}")
    out_c, in_per_group, *kernel = (int(s) for s in w.shape)
    groups = ntuple(groups, 1, "groups", ctx)[0]
    if not isinstance(padding, str):
        padding = ntuple(padding, d, "padding", ctx)
    return conv_shape(
        ctx, x, d, in_per_group * groups, out_c, tuple(kernel),
        ntuple(stride, d, "stride", ctx), padding, ntuple(dilation, d, "dilation", ctx),
        f"conv{d}d",
    )
