"""Convolution: Conv1d/2d/3d, ConvTranspose1d/2d/3d (and their Lazy forms) and the F forms.

    out = floor((in + 2*padding - dilation*(kernel - 1) - 1)/stride) + 1

torch refuses a size when the padded input is shorter than the dilated kernel
(``in + 2*padding < dilation*(kernel - 1) + 1``) or when the input itself is empty. ``padding='same'`` pads ``dilation*(kernel-1)``
in total (the extra one on the right when odd) and keeps the size; ``'valid'`` pads nothing.
A ``padding_mode`` other than ``'zeros'`` is an explicit F.pad in that mode followed by an
unpadded convolution, exactly as ``nn.Conv2d._conv_forward`` does.

Transposed:  out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1,
or the ``output_size=`` given in the call, which torch accepts between that value with
output_padding 0 and ``stride - 1`` above it.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..modules import is_lazy
from ..derivations import Transposed, Window
from ..dims import as_expr, canonical, floor_div
from ..tensor import CONV_MEMORY_FORMAT, SymTensor
from .common import as_choice, as_int, check_rank, ntuple, spatial_unit, tensor_arg
from .pad import pad_shape
from .registry import Context, function_rule, module_rule

__all__ = ["conv_out", "conv_shape", "conv_transpose_out", "conv_transpose_shape"]


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


def _some_channels(ctx: Context, out_channels: int, layer: str) -> None:
    """torch refuses a convolution with no output channels (a weight without filters) at every
    size: "expected weight to be at least 1 at dimension 0" (transposed: "non-empty weight")."""
    if out_channels == 0:
        ctx.never(f"{layer}: 0 output channels (a weight with no filters): torch refuses every input")


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
    _some_channels(ctx, out_channels, layer)
    channel = x.shape[-(d + 1)]
    if in_channels is not None:
        ctx.fixes(channel, in_channels, "in_channels", "expects {rhs} input channels, gets {lhs}", dim=-(d + 1))
    if padding == "same":
        if any(s != 1 for s in stride):
            ctx.refuse(f"{layer}: padding='same' is not supported for strided convolutions")
        pads = [(t // 2, t - t // 2) for t in (dl * (k - 1) for k, dl in zip(kernel, dilation))]
    elif padding == "valid":
        pads = [(0, 0)] * d
    else:
        pads = [(p, p) for p in padding]
    spatial = list(x.shape[-d:])
    # torch runs an empty batch, or empty channels, past its kernels (ConvBackend::Empty): an
    # empty input is then no error, and empty channels give no output channels
    empty = channel == 0 or (x.ndim == d + 2 and x.shape[0] == 0)
    out = []
    for i, (size, k, s, (pl, pr), dl) in enumerate(zip(spatial, kernel, stride, pads, dilation)):
        span = dl * (k - 1) + 1
        unit = spatial_unit(i, d)
        if span - pl - pr < 1:  # padding alone would cover the kernel, but torch wants input too
            if not empty:
                ctx.at_least(size, 1, f"convolution needs a non-empty input, gets {{lhs}} {unit}")
        else:
            ctx.at_least(size, span - pl - pr, _kernel_reason(k, dl, (pl, pr), unit))
        out.append(conv_out(size, k, s, pl + pr, dl))
        ctx.derive(Window(unit, size, k, s, (pl, pr), dl, False, out[-1]))
    return SymTensor((*x.shape[: -(d + 1)], 0 if channel == 0 else out_channels, *out))


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _channels(ctx: Context, module: nn.Module, lazy: bool) -> tuple[int | None, int]:
    """A conv module's (in_channels, or None while lazy; out_channels), checked to be ints."""
    out_channels = as_int(module.out_channels, "out_channels", ctx)
    return (None if lazy else as_int(module.in_channels, "in_channels", ctx)), out_channels


def _window_args(ctx: Context, module: nn.Module, d: int) -> tuple[tuple[int, ...], ...]:
    """A conv module's kernel_size, stride and dilation, each ``d`` ints."""
    return tuple(ntuple(getattr(module, a), d, a, ctx) for a in ("kernel_size", "stride", "dilation"))


@module_rule(nn.Conv1d, d=1, memory_format=CONV_MEMORY_FORMAT)
@module_rule(nn.Conv2d, d=2, memory_format=CONV_MEMORY_FORMAT)
@module_rule(nn.Conv3d, d=3, memory_format=CONV_MEMORY_FORMAT)
def conv(ctx: Context, module: nn.Module, x, *, d: int) -> SymTensor:
    """``floor((in + 2*padding - dilation*(kernel - 1) - 1)/stride) + 1`` per spatial dim."""
    x = tensor_arg(x, "input", ctx)
    layer = type(module).__name__
    lazy = is_lazy(module)
    padding = module.padding
    if isinstance(padding, str):
        padding = as_choice(padding, ("same", "valid"), "padding", ctx)
    else:
        padding = ntuple(padding, d, "padding", ctx)
    mode = as_choice(module.padding_mode, _PADDING_MODES, "padding_mode", ctx)
    if mode != "zeros":
        # _conv_forward: F.pad(input, _reversed_padding_repeated_twice, mode) then padding 0.
        check_rank(ctx, x, (d + 1, d + 2), layer)
        pads = ntuple(module._reversed_padding_repeated_twice, 2 * d, "padding", ctx)
        x = pad_shape(ctx, x, pads, mode, layer)
        padding = (0,) * d
    kernel, stride, dilation = _window_args(ctx, module, d)
    return conv_shape(ctx, x, d, *_channels(ctx, module, lazy), kernel, stride, padding, dilation, layer)


@function_rule(F.conv1d, d=1, memory_format=CONV_MEMORY_FORMAT)
@function_rule(F.conv2d, d=2, memory_format=CONV_MEMORY_FORMAT)
@function_rule(F.conv3d, d=3, memory_format=CONV_MEMORY_FORMAT)
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


_EMPTY_TRANSPOSED = (
    "torch's CPU oneDNN path (taken for kernels over 3x3, groups > 1 or batches > 1) returns an "
    "empty output here instead of raising; its reference path, the meta kernels and symshape refuse"
)


def conv_transpose_out(size, kernel: int, stride: int, padding: int, dilation: int, output_padding: int):
    """``(in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``."""
    return canonical((size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1)


def conv_transpose_shape(ctx: Context, x: SymTensor, d: int, in_channels: int | None, out_channels: int,
                         kernel, stride, padding, dilation, output_padding, output_size, layer: str) -> SymTensor:
    check_rank(ctx, x, (d + 1, d + 2), layer)
    _some_channels(ctx, out_channels, layer)
    for op, s, dl in zip(output_padding, stride, dilation):
        if not (op < s or op < dl):
            ctx.never(f"output padding {op} must be smaller than either stride {s} or dilation {dl}")
    if in_channels is not None:
        ctx.fixes(x.shape[-(d + 1)], in_channels, "in_channels", "expects {rhs} input channels, gets {lhs}",
                  dim=-(d + 1))
    spatial = list(x.shape[-d:])
    if output_size is not None:
        sizes = list(output_size)
        if len(sizes) == d + (x.ndim - d):
            sizes = sizes[x.ndim - d:]
        if len(sizes) != d:
            ctx.refuse(f"{layer}: output_size must have {d} or {x.ndim} elements, gets {len(sizes)}")
    out = []
    for i, (size, k, s, p, dl, op) in enumerate(zip(spatial, kernel, stride, padding, dilation, output_padding)):
        unit = spatial_unit(i, d)
        ctx.at_least(size, 1, f"transposed convolution needs a non-empty input, gets {{lhs}} {unit}")
        if output_size is not None:
            low = conv_transpose_out(size, k, s, p, dl, 0)
            want = as_expr(sizes[i], "output_size")
            ctx.at_least(want, low, f"output_size {{lhs}} is below the smallest size {{rhs}} ({unit})")
            ctx.at_least(low + s - 1, want, f"output_size {{rhs}} is above the largest size {{lhs}} ({unit})")
            out.append(canonical(want))
        else:
            value = conv_transpose_out(size, k, s, p, dl, op)
            ctx.derive(Transposed(unit, size, k, s, p, dl, op, value))
            ctx.require(value, ">=", 1, f"transposed convolution output would be {{lhs}} {unit}, needs at least 1",
                        backend_dependent=_EMPTY_TRANSPOSED)
            out.append(value)
    return SymTensor((*x.shape[: -(d + 1)], out_channels, *out))


@module_rule(nn.ConvTranspose1d, d=1, memory_format=CONV_MEMORY_FORMAT)
@module_rule(nn.ConvTranspose2d, d=2, memory_format=CONV_MEMORY_FORMAT)
@module_rule(nn.ConvTranspose3d, d=3, memory_format=CONV_MEMORY_FORMAT)
def conv_transpose(ctx: Context, module: nn.Module, x, output_size=None, *, d: int) -> SymTensor:
    """``(in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1`` per spatial dim."""
    x = tensor_arg(x, "input", ctx)
    layer = type(module).__name__
    if as_choice(module.padding_mode, _PADDING_MODES, "padding_mode", ctx) != "zeros":
        ctx.refuse(f"{layer}: only 'zeros' padding mode is supported for transposed convolutions")
    lazy = is_lazy(module)
    kernel, stride, dilation = _window_args(ctx, module, d)
    return conv_transpose_shape(
        ctx, x, d, *_channels(ctx, module, lazy), kernel, stride, ntuple(module.padding, d, "padding", ctx),
        dilation, ntuple(module.output_padding, d, "output_padding", ctx), output_size, layer,
    )


@function_rule(F.conv_transpose1d, d=1, memory_format=CONV_MEMORY_FORMAT)
@function_rule(F.conv_transpose2d, d=2, memory_format=CONV_MEMORY_FORMAT)
@function_rule(F.conv_transpose3d, d=3, memory_format=CONV_MEMORY_FORMAT)
def conv_transpose_function(ctx: Context, input, weight, bias=None, stride=1, padding=0, output_padding=0,
                            groups=1, dilation=1, *, d: int) -> SymTensor:
    """The ConvTranspose rule with channels and kernel read off ``weight`` (in, out/groups, *kernel)."""
    x = tensor_arg(input, "input", ctx)
    w = tensor_arg(weight, "weight", ctx)
    if w.ndim != d + 2 or not all(s.is_Integer for s in w.shape):
        ctx.unsupported(f"weight must have a fixed {d + 2}D shape, got {w}")
    in_c, out_per_group, *kernel = (int(s) for s in w.shape)
    groups = ntuple(groups, 1, "groups", ctx)[0]
    return conv_transpose_shape(
        ctx, x, d, in_c, out_per_group * groups, tuple(kernel), ntuple(stride, d, "stride", ctx),
        ntuple(padding, d, "padding", ctx), ntuple(dilation, d, "dilation", ctx),
        ntuple(output_padding, d, "output_padding", ctx), None, f"conv_transpose{d}d",
    )
