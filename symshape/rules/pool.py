"""Pooling: MaxPool/AvgPool 1d/2d/3d, AdaptiveMaxPool/AdaptiveAvgPool 1d/2d/3d, F forms.

torch's ``pooling_output_shape`` (``p`` is the padding on each side, ``d`` the dilation)::

    out = floor((in + 2p - d(k-1) - 1 + (s-1 if ceil_mode else 0))/s) + 1
    if ceil_mode and (out - 1)*s >= in + p:  out -= 1    # the last window must start in the input

For ``ceil_mode`` the correction has a closed form, decided by the layer's own parameters (with
``e = p - d(k-1) - 1``, which torch's ``p <= k//2`` check keeps negative):

* ``s <= d(k-1) + 1 - p``: the correction never fires: ``out = ceil((in + 2p - d(k-1) - 1)/s) + 1``;
* otherwise it fires exactly when the unclamped count overshoots: ``out = ceil((in + p)/s)``.

torch also needs ``out >= 1``, ``p <= k//2`` and non-empty input dims; avg_pool3d alone also needs
every input dim at least as large as the kernel, padding aside (``pool3d_shape_check``). Adaptive pooling maps any
non-empty size to its ``output_size`` (``None`` keeps the size).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..derivations import Adaptive, Window
from ..dims import canonical, ceil_div, floor_div, product
from ..requirements import Requirement
from ..tensor import SymTensor
from .common import as_int, check_rank, ntuple, spatial_unit, tensor_arg
from .registry import Context, function_rule, module_rule

__all__ = ["pool_out", "pool_min_size", "pool_shape", "adaptive_shape"]


def pool_out(size, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool):
    """torch's pooled size, ceil_mode's last-window rule included (see the module docstring)."""
    span = dilation * (kernel - 1) + 1
    if not ceil_mode:
        return canonical(floor_div(size + 2 * pad - span, stride) + 1)
    if stride <= span - pad:
        return canonical(ceil_div(size + 2 * pad - span, stride) + 1)
    return canonical(ceil_div(size + pad, stride))


def pool_min_size(kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """The smallest input size with ``pool_out >= 1`` (the formulas above are monotone)."""
    span = dilation * (kernel - 1) + 1
    if not ceil_mode:
        need = span - 2 * pad
    elif stride <= span - pad:
        need = span - 2 * pad - stride + 1
    else:
        need = 1 - pad
    return max(need, 1)


def pool_shape(ctx: Context, x: SymTensor, d: int, kernel, stride, padding, dilation,
               ceil_mode: bool, layer: str, short: str, unpadded_kernel: bool = False) -> SymTensor:
    """Pooled shape; ``unpadded_kernel``: torch's avg_pool3d also wants ``in >= kernel`` unpadded."""
    check_rank(ctx, x, (d + 1, d + 2), layer)
    for k, s, p, dl in zip(kernel, stride, padding, dilation):
        if k <= 0 or s <= 0 or dl <= 0:
            ctx.never(f"kernel, stride and dilation must be positive, gets {k}, {s}, {dl}")
        elif p < 0:
            ctx.never(f"pad must be non-negative, gets {p}")
        elif p > k // 2:
            ctx.never(f"pad should be at most half of kernel size, gets padding {p} and kernel {k}")
    ctx.at_least(x.shape[-(d + 1)], 1, f"{short} needs at least 1 channel, gets {{lhs}}")
    out = []
    for i, (size, k, s, p, dl) in enumerate(zip(x.shape[-d:], kernel, stride, padding, dilation)):
        if k <= 0 or s <= 0 or dl <= 0:
            out.append(size)
            continue
        need = pool_min_size(k, s, p, dl, ceil_mode)
        if unpadded_kernel and k > need:
            ctx.at_least(size, k, f"{short} needs an input at least as large as its kernel {k} "
                                  f"(padding aside), gets {{lhs}} {spatial_unit(i, d)}")
        text = f"kernel {k}"
        if dl != 1:
            text += f" with dilation {dl}"
        if p:
            text += f" and padding {p}" if dl != 1 else f" with padding {p}"
        if ceil_mode:
            text += " (ceil_mode)"
        ctx.at_least(size, need, f"{short} {text} needs at least {{rhs}} {spatial_unit(i, d)}, gets {{lhs}}")
        out.append(pool_out(size, k, s, p, dl, ceil_mode))
        ctx.derive(Window(spatial_unit(i, d), size, k, s, (p, p), dl, ceil_mode, out[-1]))
    return SymTensor((*x.shape[:-d], *out))


def _pool_args(ctx, d, kernel_size, stride, padding, dilation):
    kernel = ntuple(kernel_size, d, "kernel_size", ctx)
    if stride is None or (isinstance(stride, (list, tuple)) and not stride):
        stride = kernel  # torch's default: stride = kernel_size
    else:
        stride = ntuple(stride, d, "stride", ctx)
    return kernel, stride, ntuple(padding, d, "padding", ctx), ntuple(dilation, d, "dilation", ctx)


def _maybe_indices(out: SymTensor, return_indices: bool):
    return (out, out) if return_indices else out


@module_rule(nn.MaxPool1d, d=1)
@module_rule(nn.MaxPool2d, d=2)
@module_rule(nn.MaxPool3d, d=3)
def max_pool(ctx: Context, module: nn.Module, x, *, d: int):
    """``floor((in + 2p - d(k-1) - 1)/s) + 1``; ceil_mode: ceil, and the last window must start in the input."""
    x = tensor_arg(x, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, module.kernel_size, module.stride, module.padding, module.dilation)
    out = pool_shape(ctx, x, d, k, s, p, dl, bool(module.ceil_mode), type(module).__name__, "max pooling")
    return _maybe_indices(out, bool(module.return_indices))


@module_rule(nn.AvgPool1d, d=1)
@module_rule(nn.AvgPool2d, d=2)
@module_rule(nn.AvgPool3d, d=3)
def avg_pool(ctx: Context, module: nn.Module, x, *, d: int) -> SymTensor:
    """``floor((in + 2p - k)/s) + 1``; ceil_mode: ceil, and the last window must start in the input."""
    x = tensor_arg(x, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, module.kernel_size, module.stride, module.padding, 1)
    return pool_shape(ctx, x, d, k, s, p, dl, bool(module.ceil_mode), type(module).__name__,
                      "average pooling", unpadded_kernel=d == 3)


@function_rule(F.max_pool1d, torch.max_pool1d, d=1)
@function_rule(F.max_pool2d, torch.max_pool2d, d=2)
@function_rule(F.max_pool3d, torch.max_pool3d, d=3)
@function_rule(F.max_pool1d_with_indices, d=1, indices=True)
@function_rule(F.max_pool2d_with_indices, d=2, indices=True)
@function_rule(F.max_pool3d_with_indices, d=3, indices=True)
def max_pool_function(ctx: Context, input, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False, return_indices=False, *, d: int, indices: bool = False):
    """The MaxPool rule for ``F.max_pool{d}d`` (``_with_indices``: always a pair)."""
    x = tensor_arg(input, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, kernel_size, stride, padding, dilation)
    out = pool_shape(ctx, x, d, k, s, p, dl, bool(ceil_mode), f"max_pool{d}d", "max pooling")
    return _maybe_indices(out, indices or bool(return_indices))


@function_rule(F.avg_pool1d, d=1)
@function_rule(F.avg_pool2d, d=2)
@function_rule(F.avg_pool3d, d=3)
def avg_pool_function(ctx: Context, input, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, *, d: int) -> SymTensor:
    """The AvgPool rule for ``F.avg_pool{d}d``."""
    x = tensor_arg(input, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, kernel_size, stride, padding, 1)
    return pool_shape(ctx, x, d, k, s, p, dl, bool(ceil_mode), f"avg_pool{d}d", "average pooling",
                      unpadded_kernel=d == 3)


def adaptive_shape(ctx: Context, x: SymTensor, d: int, output_size, layer: str, kind: str) -> SymTensor:
    """``out = output_size`` per dim (``None`` keeps ``in``).

    torch checks the rank and that dims are non-empty (average pooling in 1d/2d: the pooled dims;
    otherwise every non-batch dim) -- except on average pooling's fast path: when every output
    size resolves to 1, torch takes a mean over the pooled dims and checks no size (nor, in 2d and
    3d, the rank).
    """
    if isinstance(output_size, (list, tuple)):
        sizes = list(output_size)
        if len(sizes) != d:
            ctx.unsupported(f"output_size needs {d} values, got {tuple(sizes)}")
    else:
        sizes = [output_size] * d
    if d == 1 and sizes[0] is None:
        ctx.refuse(f"{layer}: output_size must be an int")
    sizes = [None if o is None else as_int(o, "output_size", ctx) for o in sizes]
    if x.ndim < d:
        ctx.refuse(f"{layer} pools {d} dims, gets a {x.ndim}D input {x}")
    out = [size if o is None else o for size, o in zip(x.shape[-d:], sizes)]
    fast = None  # where average pooling takes its fast path
    if kind == "avg" and all(o in (None, 1) for o in sizes):
        kept = [size for size, o in zip(x.shape[-d:], sizes) if o is None]
        fast = Requirement(product(kept), "==", 1, "every output size is 1")
    if d == 1 or fast is None:
        check_rank(ctx, x, (d + 1, d + 2), layer)
    elif x.ndim not in (d + 1, d + 2):
        ctx.require(0, ">=", 1, f"{layer} expects a {d + 1}D or {d + 2}D input, gets {x.ndim}D",
                    unless=fast)
    for i, (size, o) in enumerate(zip(x.shape[-d:], sizes)):
        if o is not None:
            ctx.derive(Adaptive(spatial_unit(i, d), size, o))
    first = x.ndim - d if kind == "avg" and d < 3 else max(x.ndim - d - 1, 0)
    for i in range(first, x.ndim):
        unit = spatial_unit(i - (x.ndim - d), d) if i >= x.ndim - d else "channels"
        ctx.require(x.shape[i], ">=", 1,
                    f"adaptive pooling needs a non-empty input, gets {{lhs}} {unit}", unless=fast)
    return SymTensor((*x.shape[:-d], *out))


@module_rule(nn.AdaptiveAvgPool1d, d=1, kind="avg")
@module_rule(nn.AdaptiveAvgPool2d, d=2, kind="avg")
@module_rule(nn.AdaptiveAvgPool3d, d=3, kind="avg")
@module_rule(nn.AdaptiveMaxPool1d, d=1, kind="max")
@module_rule(nn.AdaptiveMaxPool2d, d=2, kind="max")
@module_rule(nn.AdaptiveMaxPool3d, d=3, kind="max")
def adaptive_pool(ctx: Context, module: nn.Module, x, *, d: int, kind: str):
    """``out = output_size`` (``None`` entries keep the input size)."""
    x = tensor_arg(x, "input", ctx)
    out = adaptive_shape(ctx, x, d, module.output_size, type(module).__name__, kind)
    return _maybe_indices(out, bool(getattr(module, "return_indices", False)))


@function_rule(F.adaptive_avg_pool1d, d=1, kind="avg")
@function_rule(F.adaptive_avg_pool2d, d=2, kind="avg")
@function_rule(F.adaptive_avg_pool3d, d=3, kind="avg")
@function_rule(F.adaptive_max_pool1d, d=1, kind="max")
@function_rule(F.adaptive_max_pool2d, d=2, kind="max")
@function_rule(F.adaptive_max_pool3d, d=3, kind="max")
@function_rule(F.adaptive_max_pool1d_with_indices, d=1, kind="max", indices=True)
@function_rule(F.adaptive_max_pool2d_with_indices, d=2, kind="max", indices=True)
@function_rule(F.adaptive_max_pool3d_with_indices, d=3, kind="max", indices=True)
def adaptive_pool_function(ctx: Context, input, output_size, return_indices=False, *, d: int,
                           kind: str, indices: bool = False):
    """The adaptive pooling rule for the F forms (``_with_indices``: always a pair)."""
    x = tensor_arg(input, "input", ctx)
    out = adaptive_shape(ctx, x, d, output_size, f"adaptive_{kind}_pool{d}d", kind)
    return _maybe_indices(out, indices or bool(return_indices))
