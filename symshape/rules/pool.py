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


import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..derivations import Adaptive, Window
from ..dims import FloorDiv, as_expr, canonical, ceil_div, floor_div, implied, product, scaled_floor
from ..requirements import Requirement
from ..tensor import SymTensor
from .common import as_bool, as_int, as_real, check_rank, ntuple, spatial_unit, tensor_arg
from .registry import Context, function_rule, module_rule

# the CPU kernels' output memory format by input rank (symshape.tensor.kernel_layout), measured:
# max pooling and interpolation keep 1D outputs contiguous; avg and adaptive pooling run 1D as 2D
# and 3D contiguous; lp pooling pools x ** p, whose layout the elementwise power decides
_MAX = {3: "contiguous", 4: "suggest", 5: "suggest"}
_AVG = {3: "suggest", 4: "suggest", 5: "contiguous"}
_LP = {3: "guard", 4: "guard", 5: "guard"}

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


def _maybe_indices(out: SymTensor, return_indices: bool, x: SymTensor | None = None, d: int = 0):
    """``(out, indices)`` when asked; the indices point into the pooled dims of ``x``."""
    if not return_indices:
        return out
    bound = product(x.shape[-d:]) if x is not None and d else None
    return out, (out.as_indices(bound) if bound is not None else out)


@module_rule(nn.MaxPool1d, d=1, memory_format=_MAX)
@module_rule(nn.MaxPool2d, d=2, memory_format=_MAX)
@module_rule(nn.MaxPool3d, d=3, memory_format=_MAX)
def max_pool(ctx: Context, module: nn.Module, x, *, d: int):
    """``floor((in + 2p - d(k-1) - 1)/s) + 1``; ceil_mode: ceil, and the last window must start in the input."""
    x = tensor_arg(x, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, module.kernel_size, module.stride, module.padding, module.dilation)
    out = pool_shape(ctx, x, d, k, s, p, dl, as_bool(module.ceil_mode, "ceil_mode", ctx), type(module).__name__, "max pooling")
    with_indices = as_bool(module.return_indices, "return_indices", ctx)
    if d == 1 and not with_indices:
        _int32_length(ctx, out)
    return _maybe_indices(out, _indices(ctx, with_indices, d), x, d)


def _indices(ctx: Context, return_indices: bool, d: int) -> bool:
    """max_pool1d with indices runs as max_pool2d_with_indices (channels last where the input
    suggests it); without, torch's own 1D kernel (contiguous)."""
    if return_indices and d == 1:
        ctx.memory_format = "suggest"
    return return_indices


@module_rule(nn.AvgPool1d, d=1, memory_format=_AVG)
@module_rule(nn.AvgPool2d, d=2, memory_format=_AVG)
@module_rule(nn.AvgPool3d, d=3, memory_format=_AVG)
def avg_pool(ctx: Context, module: nn.Module, x, *, d: int) -> SymTensor:
    """``floor((in + 2p - k)/s) + 1``; ceil_mode: ceil, and the last window must start in the input."""
    x = tensor_arg(x, "input", ctx)
    k, s, p, dl = _pool_args(ctx, d, module.kernel_size, module.stride, module.padding, 1)
    return pool_shape(ctx, x, d, k, s, p, dl, as_bool(module.ceil_mode, "ceil_mode", ctx), type(module).__name__,
                      "average pooling", unpadded_kernel=d == 3)


def _sized_kernel(kernel_size) -> bool:
    """Whether the kernel is taken from the input's size (``F.avg_pool2d(x, x.size(2))``)."""
    ks = kernel_size if isinstance(kernel_size, (list, tuple)) else (kernel_size,)
    return any(isinstance(k, sympy.Expr) and not k.is_Integer for k in ks)


def _whole_windows(ctx: Context, size, k) -> int | None:
    """``c`` where the kernel is ``size // c`` and this side of the model's branches has
    ``size % c == 0`` (MobileNetV5's fusion adapter pools its map down to c x c so): then
    ``floor((size - k)/k) + 1 = c``. None where the facts do not prove it."""
    if not isinstance(k, FloorDiv):
        return None
    p, q = k.args
    if size == p:
        c = int(q)
    elif isinstance(size, FloorDiv) and size.args[0] == p and int(q) % int(size.args[1]) == 0:
        c = int(q) // int(size.args[1])  # floor(floor(p/m)/c) is floor(p/(m*c))
    else:
        return None
    return c if implied(ctx.facts, sympy.Eq(size, c * k)) else None


def _window_of_a_size(ctx: Context, x: SymTensor, d: int, kernel_size, stride, padding, dilation,
                      ceil_mode, layer: str) -> SymTensor:
    """A kernel taken from the input's size, stride = kernel (torch's default, or given so), no
    padding: ``out = floor((in - k)/k) + 1 = floor(in/k)`` -- 1 where the kernel is the whole
    dim, ``c`` where it is ``in // c`` on a side of the model's branches where ``c`` divides
    ``in``; torch needs ``in >= k``."""
    check_rank(ctx, x, (d + 1, d + 2), layer)
    ks = list(kernel_size) if isinstance(kernel_size, (list, tuple)) else [kernel_size]
    ks = ks * d if len(ks) == 1 else ks
    same_stride = stride is None or (isinstance(stride, (list, tuple)) and not stride) or list(
        stride if isinstance(stride, (list, tuple)) else [stride] * d) == ks
    plain = same_stride and not as_bool(
        ceil_mode, "ceil_mode", ctx) and all(v == 0 for v in ntuple(padding, d, "padding", ctx)) and all(
        v == 1 for v in ntuple(dilation, d, "dilation", ctx))
    if len(ks) != d or not plain:
        ctx.unsupported("a kernel size taken from the input's size, with a stride, padding, dilation or ceil_mode")
    out = []
    for i, (size, k) in enumerate(zip(x.shape[-d:], ks)):
        k = as_expr(k, "kernel_size")
        if k.is_Integer:
            out.append(pool_out(size, int(k), int(k), 0, 1, False))
        elif size == k or sympy.expand(size - k) == 0:
            out.append(sympy.Integer(1))  # the window is the whole dim
        elif (c := _whole_windows(ctx, size, k)) is not None:
            out.append(sympy.Integer(c))  # c windows of size // c, on a side where c divides the size
        elif sympy.simplify(size - k) == 0:  # (sympy's slowest proof last: MobileNetV5 pools c x c)
            out.append(sympy.Integer(1))
        else:
            ctx.unsupported(f"kernel size {k} over a dim of size {size} (a window of the whole dim is modelled)")
        ctx.at_least(size, k, f"{layer}: kernel {{rhs}} needs at least {{rhs}} {spatial_unit(i, d)}, gets {{lhs}}")
    return SymTensor((*x.shape[:-d], *out))


@function_rule(F.max_pool1d, torch.max_pool1d, d=1, memory_format=_MAX)
@function_rule(F.max_pool2d, torch.max_pool2d, d=2, memory_format=_MAX)
@function_rule(F.max_pool3d, torch.max_pool3d, d=3, memory_format=_MAX)
@function_rule(F.max_pool1d_with_indices, d=1, memory_format=_MAX, indices=True)
@function_rule(F.max_pool2d_with_indices, d=2, memory_format=_MAX, indices=True)
@function_rule(F.max_pool3d_with_indices, d=3, memory_format=_MAX, indices=True)
def max_pool_function(ctx: Context, input, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False, return_indices=False, *, d: int, indices: bool = False):
    """The MaxPool rule for ``F.max_pool{d}d`` (``_with_indices``: always a pair)."""
    x = tensor_arg(input, "input", ctx)
    if _sized_kernel(kernel_size):
        out = _window_of_a_size(ctx, x, d, kernel_size, stride, padding, dilation, ceil_mode, f"max_pool{d}d")
        return _maybe_indices(out, _indices(ctx, indices or as_bool(return_indices, "return_indices", ctx), d), x, d)
    k, s, p, dl = _pool_args(ctx, d, kernel_size, stride, padding, dilation)
    out = pool_shape(ctx, x, d, k, s, p, dl, as_bool(ceil_mode, "ceil_mode", ctx), f"max_pool{d}d", "max pooling")
    with_indices = indices or as_bool(return_indices, "return_indices", ctx)
    if d == 1 and not with_indices:
        _int32_length(ctx, out)
    return _maybe_indices(out, _indices(ctx, with_indices, d), x, d)


def _int32_length(ctx: Context, out: SymTensor) -> None:
    """1-D max pooling without indices checks its output length in 32 bits: torch raises
    "max_pool1d() Invalid computed output size" where that wraps to 0 or below, and passes where
    it wraps to a positive value -- so symshape states its shapes only below 2**31."""
    ctx.exact_below(out.shape[-1], 2**31, "max_pool1d's output length (torch checks it in 32 bits)")


@function_rule(F.avg_pool1d, d=1, memory_format=_AVG)
@function_rule(F.avg_pool2d, d=2, memory_format=_AVG)
@function_rule(F.avg_pool3d, d=3, memory_format=_AVG)
def avg_pool_function(ctx: Context, input, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, *, d: int) -> SymTensor:
    """The AvgPool rule for ``F.avg_pool{d}d``."""
    x = tensor_arg(input, "input", ctx)
    if _sized_kernel(kernel_size):
        return _window_of_a_size(ctx, x, d, kernel_size, stride, padding, 1, ceil_mode, f"avg_pool{d}d")
    k, s, p, dl = _pool_args(ctx, d, kernel_size, stride, padding, 1)
    return pool_shape(ctx, x, d, k, s, p, dl, as_bool(ceil_mode, "ceil_mode", ctx), f"avg_pool{d}d", "average pooling",
                      unpadded_kernel=d == 3)


def _adaptive_size(ctx: Context, o, size):
    """An output size: an int, or None to keep the input's size -- as a size that equals the
    input's wherever the step runs is (VGG's head pools to ``max(7, w)``, ``w`` on the side
    where ``w >= 7``: every window one entry wide, as torch's None)."""
    if o is None:
        return None
    if isinstance(o, sympy.Basic) and not o.is_Integer and o.is_integer and ctx.same(o, size):
        return None
    return as_int(o, "output_size", ctx)


def adaptive_shape(ctx: Context, x: SymTensor, d: int, output_size, layer: str, kind: str) -> SymTensor:
    """``out = output_size`` per dim (``None``, or a size equal to ``in``, keeps ``in``).

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
    if x.ndim < d:
        ctx.refuse(f"{layer} pools {d} dims, gets a {x.ndim}D input {x}")
    sizes = [_adaptive_size(ctx, o, size) for o, size in zip(sizes, x.shape[-d:])]
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


@module_rule(nn.AdaptiveAvgPool1d, d=1, memory_format=_AVG, kind="avg")
@module_rule(nn.AdaptiveAvgPool2d, d=2, memory_format=_AVG, kind="avg")
@module_rule(nn.AdaptiveAvgPool3d, d=3, memory_format=_AVG, kind="avg")
@module_rule(nn.AdaptiveMaxPool1d, d=1, memory_format=_AVG, kind="max")
@module_rule(nn.AdaptiveMaxPool2d, d=2, memory_format=_AVG, kind="max")
@module_rule(nn.AdaptiveMaxPool3d, d=3, memory_format=_AVG, kind="max")
def adaptive_pool(ctx: Context, module: nn.Module, x, *, d: int, kind: str):
    """``out = output_size`` (``None`` entries keep the input size)."""
    x = tensor_arg(x, "input", ctx)
    out = adaptive_shape(ctx, x, d, module.output_size, type(module).__name__, kind)
    return _maybe_indices(out, as_bool(getattr(module, "return_indices", False), "return_indices", ctx))


@function_rule(F.adaptive_avg_pool1d, d=1, memory_format=_AVG, kind="avg")
@function_rule(F.adaptive_avg_pool2d, d=2, memory_format=_AVG, kind="avg")
@function_rule(F.adaptive_avg_pool3d, d=3, memory_format=_AVG, kind="avg")
@function_rule(F.adaptive_max_pool1d, d=1, memory_format=_AVG, kind="max")
@function_rule(F.adaptive_max_pool2d, d=2, memory_format=_AVG, kind="max")
@function_rule(F.adaptive_max_pool3d, d=3, memory_format=_AVG, kind="max")
@function_rule(F.adaptive_max_pool1d_with_indices, d=1, memory_format=_AVG, kind="max", indices=True)
@function_rule(F.adaptive_max_pool2d_with_indices, d=2, memory_format=_AVG, kind="max", indices=True)
@function_rule(F.adaptive_max_pool3d_with_indices, d=3, memory_format=_AVG, kind="max", indices=True)
def adaptive_pool_function(ctx: Context, input, output_size, return_indices=False, *, d: int,
                           kind: str, indices: bool = False):
    """The adaptive pooling rule for the F forms (``_with_indices``: always a pair)."""
    x = tensor_arg(input, "input", ctx)
    out = adaptive_shape(ctx, x, d, output_size, f"adaptive_{kind}_pool{d}d", kind)
    return _maybe_indices(out, indices or as_bool(return_indices, "return_indices", ctx))


# -- LPPool: avg_pool of x**p (max pooling of |x| for p = inf), no padding ----------------------


@module_rule(nn.LPPool1d, d=1, memory_format=_LP)
@module_rule(nn.LPPool2d, d=2, memory_format=_LP)
@module_rule(nn.LPPool3d, d=3, memory_format=_LP)
def lp_pool(ctx: Context, module: nn.Module, x, *, d: int) -> SymTensor:
    """``floor((in - k)/s) + 1`` (ceil_mode too): torch computes it as an average pooling."""
    x = tensor_arg(x, "input", ctx)
    return _lp_pool(ctx, x, d, module.norm_type, module.kernel_size, module.stride, as_bool(module.ceil_mode, "ceil_mode", ctx),
                    type(module).__name__)


@function_rule(F.lp_pool1d, d=1, memory_format=_LP)
@function_rule(F.lp_pool2d, d=2, memory_format=_LP)
@function_rule(F.lp_pool3d, d=3, memory_format=_LP)
def lp_pool_function(ctx: Context, input, norm_type, kernel_size, stride=None, ceil_mode=False, *, d: int):
    """``floor((in - k)/s) + 1`` (ceil_mode too)."""
    return _lp_pool(ctx, tensor_arg(input, "input", ctx), d, norm_type, kernel_size, stride, as_bool(ceil_mode, "ceil_mode", ctx),
                    f"lp_pool{d}d")


def _lp_pool(ctx, x, d, norm_type, kernel_size, stride, ceil_mode, layer):
    k, s, p, dl = _pool_args(ctx, d, kernel_size, stride, 0, 1)
    is_max = as_real(norm_type, "norm_type", ctx) in (float("inf"), float("-inf"))
    return pool_shape(ctx, x, d, k, s, p, dl, ceil_mode, layer, "max pooling" if is_max else "average pooling",
                      unpadded_kernel=d == 3 and not is_max)


# -- MaxUnpool ------------------------------------------------------------------------------------


def _unpool(ctx: Context, x: SymTensor, indices, d: int, kernel, stride, padding, output_size, layer: str):
    check_rank(ctx, x, (d + 1, d + 2), layer)
    idx = tensor_arg(indices, "indices", ctx)
    if idx.ndim != x.ndim:
        ctx.refuse(f"{layer}: indices must have the input's shape, gets {idx} for {x}")
    for i, (a, b) in enumerate(zip(idx.shape, x.shape)):
        ctx.equal(a, b, f"{layer}: indices have {{lhs}} at dim {i}, the input {{rhs}}")
    default = [canonical((n - 1) * s + k - 2 * p) for n, k, s, p in zip(x.shape[-d:], kernel, stride, padding)]
    if output_size is None:
        out = default
    else:
        sizes = list(output_size)
        if len(sizes) == d + 2:
            sizes = sizes[2:]
        if len(sizes) != d:
            ctx.refuse(f"{layer}: output_size must have {d} or {d + 2} entries, gets {len(sizes)}")
        out = []
        for i, (want, base, s) in enumerate(zip(sizes, default, stride)):
            ctx.at_least(want, base - s + 1, f"{layer}: output_size {{lhs}} must be above {{rhs}} - 1 (dim {i})")
            ctx.at_least(base + s - 1, want, f"{layer}: output_size {{rhs}} must be below {{lhs}} + 1 (dim {i})")
            out.append(canonical(want))
    for i, o in enumerate(out):
        ctx.at_least(o, 1, f"{layer}: the output would have {{lhs}} {spatial_unit(i, d)}")
    if idx.index_bound is not None:
        ctx.require(product(out), ">=", idx.index_bound,
                    f"{layer}: the output holds {{lhs}} positions, the indices may point up to {{rhs}} - 1",
                    data_dependent="torch raises 'invalid max index' only if a maximum actually lies beyond "
                                   "the output, which depends on the values")
    return SymTensor((*x.shape[:-d], *out))


@module_rule(nn.MaxUnpool1d, d=1)
@module_rule(nn.MaxUnpool2d, d=2)
@module_rule(nn.MaxUnpool3d, d=3)
def max_unpool(ctx: Context, module: nn.Module, x, indices, output_size=None, *, d: int) -> SymTensor:
    """``(in - 1)*stride + kernel - 2*padding``, or ``output_size`` within ``stride`` of that."""
    x = tensor_arg(x, "input", ctx)
    k, s, p, _ = _pool_args(ctx, d, module.kernel_size, module.stride, module.padding, 1)
    return _unpool(ctx, x, indices, d, k, s, p, output_size, type(module).__name__)


@function_rule(F.max_unpool1d, d=1)
@function_rule(F.max_unpool2d, d=2)
@function_rule(F.max_unpool3d, d=3)
def max_unpool_function(ctx: Context, input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                        d: int) -> SymTensor:
    """``(in - 1)*stride + kernel - 2*padding``, or ``output_size`` within ``stride`` of that."""
    x = tensor_arg(input, "input", ctx)
    k, s, p, _ = _pool_args(ctx, d, kernel_size, stride, padding, 1)
    return _unpool(ctx, x, indices, d, k, s, p, output_size, f"max_unpool{d}d")


# -- FractionalMaxPool ---------------------------------------------------------------------------


def _random_samples(ctx: Context, x: SymTensor, samples, d: int) -> None:
    """torch's checks of fixed ``_random_samples`` against the input: (batch, channels, d), with
    at least as many rows as the batch (an unbatched input is a batch of 1)."""
    if samples is None:
        return
    shape = tuple(samples.shape) if isinstance(samples, (torch.Tensor, SymTensor)) else None
    if shape is None:
        ctx.refuse(f"_random_samples must be a tensor, gets {type(samples).__name__}")
    if len(shape) != 3:
        ctx.never(f"Expect _random_samples to have 3 dimensions, got {len(shape)}")
        return
    batch = x.shape[0] if x.ndim == d + 2 else sympy.Integer(1)
    channels = x.shape[-d - 1]
    ctx.at_least(shape[0], batch, "Expect _random_samples.size(0) no less then input batch size ({lhs} < {rhs}).")
    ctx.equal(shape[1], channels, "Expect _random_samples.size(1) equals to input channel size ({lhs} vs {rhs}).")
    ctx.equal(shape[2], d, f"Expect _random_samples.size(2) equals to {d}; got {{lhs}}.")


def _fractional(ctx: Context, x: SymTensor, d: int, kernel, output_size, output_ratio, return_indices, layer: str,
                samples=None):

    check_rank(ctx, x, (d + 1, d + 2), layer)
    _random_samples(ctx, x, samples, d)
    kernel = ntuple(kernel, d, "kernel_size", ctx)
    if output_size is not None:
        out = [as_int(o, "output_size", ctx) for o in ntuple(output_size, d, "output_size", ctx)]
        out = [sympy.Integer(o) for o in out]
    elif output_ratio is not None:
        ratios = list(output_ratio) if isinstance(output_ratio, (list, tuple)) else [output_ratio] * d
        out = []
        for n, r in zip(x.shape[-d:], ratios):
            f = float(as_real(r, "output_ratio", ctx))
            if not 0 < f < 1:
                ctx.refuse(f"{layer}: output_ratio must be between 0 and 1, gets {r}")
            out.append(canonical(scaled_floor(n, f)))  # Python's int(in * ratio): a double product
    else:
        ctx.refuse(f"{layer} requires either an output_size or an output_ratio")
    slack = 0 if d == 2 else 1  # torch: out + k - 1 <= in in 2d, but < in in 3d
    for i, (n, o, k) in enumerate(zip(x.shape[-d:], out, kernel)):
        unit = spatial_unit(i, d)
        ctx.at_least(n, 1, f"{layer}: needs a non-empty input, gets {{lhs}} {unit}")
        ctx.at_least(n - k + 1 - slack, o, f"{layer}: kernel {k} is too large for {{rhs}} outputs from "
                                           f"{{lhs}} + {k - 1 + slack} {unit}")
    for c in x.shape[1:-d]:  # torch checks every dim but the first (a batch, or unbatched channels)
        ctx.at_least(c, 1, f"{layer}: Expected input to have non-zero size for non-batch dimensions, gets {{lhs}}")
    y = SymTensor((*x.shape[:-d], *out))
    return (y, y) if return_indices else y


@module_rule(nn.FractionalMaxPool2d, d=2)
@module_rule(nn.FractionalMaxPool3d, d=3)
def fractional_max_pool(ctx: Context, module: nn.Module, x, *, d: int):
    """``out = output_size``, or ``int(in * output_ratio)``; ``out + kernel - 1 <= in``."""
    x = tensor_arg(x, "input", ctx)
    return _fractional(ctx, x, d, module.kernel_size, module.output_size, module.output_ratio,
                       module.return_indices, type(module).__name__, getattr(module, "_random_samples", None))


@function_rule(F.fractional_max_pool2d, d=2)
@function_rule(F.fractional_max_pool3d, d=3)
@function_rule(F.fractional_max_pool2d_with_indices, d=2, indices=True)
@function_rule(F.fractional_max_pool3d_with_indices, d=3, indices=True)
def fractional_max_pool_function(ctx: Context, input, kernel_size, output_size=None, output_ratio=None,
                                 return_indices=False, _random_samples=None, *, d: int, indices: bool = False):
    """``out = output_size``, or ``int(in * output_ratio)``; ``out + kernel - 1 <= in``."""
    x = tensor_arg(input, "input", ctx)
    if d == 2 and output_size is None and output_ratio is not None and not isinstance(output_ratio, (list, tuple)):
        ctx.never("F.fractional_max_pool2d takes len() of output_ratio: give a tuple (torch raises TypeError)")
    return _fractional(ctx, x, d, kernel_size, output_size, output_ratio, indices or return_indices,
                       f"fractional_max_pool{d}d", _random_samples)
