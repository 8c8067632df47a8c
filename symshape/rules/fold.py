"""Sliding blocks: Unfold (im2col) and Fold (col2im), and their F forms.

    Unfold(k, d, p, s):  (N, C, H, W) -> (N, C*kh*kw, L),  L = oh*ow,  o = floor((in + 2p - d(k-1) - 1)/s) + 1
    Fold(out, k, ...):   (N, C*kh*kw, L) -> (N, C, out_h, out_w);  L must equal oh*ow for ``out``

torch needs every block count at least 1, and for Fold the channels divisible by kh*kw. Both
allocate their output contiguous (im2col and col2im, whatever the input's layout).
"""

from __future__ import annotations

import numbers

import sympy
import torch.nn as nn
import torch.nn.functional as F

from ..dims import canonical, floor_div
from ..tensor import SymTensor
from .common import ntuple, tensor_arg
from .registry import Context, function_rule, module_rule


def _blocks(ctx: Context, sizes, kernel, dilation, padding, stride, what: str):
    out = []
    for i, (n, k, dl, p, s) in enumerate(zip(sizes, kernel, dilation, padding, stride)):
        o = canonical(floor_div(n + 2 * p - dl * (k - 1) - 1, s) + 1)
        ctx.at_least(o, 1, f"{what}: the array of sliding blocks would have {{lhs}} along dim {i}, needs at least 1")
        out.append(o)
    return out


def _output_size(ctx: Context, output_size) -> tuple:
    """Fold's ``output_size``: an int or a size (VOLO folds back to its input's ``(H, W)``), or
    two of them."""
    values = tuple(output_size) if isinstance(output_size, (list, tuple)) else (output_size,) * 2
    if len(values) != 2:
        ctx.unsupported(f"output_size needs 2 values, got {values}")
    for v in values:
        if isinstance(v, bool) or not (isinstance(v, numbers.Integral) or isinstance(v, sympy.Basic) and v.is_integer):
            ctx.unsupported(f"output_size must be ints or sizes, got {v!r}")
    return tuple(sympy.Integer(v) if isinstance(v, numbers.Integral) else v for v in values)


def _params(ctx, kernel_size, dilation, padding, stride):
    return (ntuple(kernel_size, 2, "kernel_size", ctx), ntuple(dilation, 2, "dilation", ctx),
            ntuple(padding, 2, "padding", ctx), ntuple(stride, 2, "stride", ctx))


def unfold_shape(ctx: Context, x: SymTensor, kernel_size, dilation, padding, stride) -> SymTensor:
    if x.ndim not in (3, 4):
        ctx.refuse(f"unfold expects a 3D (unbatched) or 4D input, gets {x.ndim}D {x}")
    k, dl, p, s = _params(ctx, kernel_size, dilation, padding, stride)
    for i, n in enumerate(x.shape[-3:]):
        ctx.at_least(n, 1, f"unfold needs non-empty channels and spatial dims, gets {{lhs}} at dim {i}")
    oh, ow = _blocks(ctx, x.shape[-2:], k, dl, p, s, "unfold")
    return SymTensor((*x.shape[:-3], x.shape[-3] * k[0] * k[1], canonical(oh * ow)))


def fold_shape(ctx: Context, x: SymTensor, output_size, kernel_size, dilation, padding, stride) -> SymTensor:
    if x.ndim not in (2, 3):
        ctx.refuse(f"fold expects a 2D (unbatched) or 3D input, gets {x.ndim}D {x}")
    out = _output_size(ctx, output_size)
    k, dl, p, s = _params(ctx, kernel_size, dilation, padding, stride)
    c, length = x.shape[-2:]
    ctx.divisible(c, k[0] * k[1], f"fold: dimension {{lhs}} must be divisible by the kernel's {k[0]}*{k[1]} = {{rhs}}")
    oh, ow = _blocks(ctx, out, k, dl, p, s, "fold")
    ctx.equal(length, oh * ow, "fold: the input has {lhs} blocks, output_size and kernel_size make {rhs}")
    return SymTensor((*x.shape[:-2], c / (k[0] * k[1]), *out))


@module_rule(nn.Unfold, layout=True)
def unfold(ctx: Context, module: nn.Unfold, x) -> SymTensor:
    """``(N, C, H, W) -> (N, C*kh*kw, oh*ow)``."""
    return unfold_shape(ctx, tensor_arg(x, "input", ctx), module.kernel_size, module.dilation, module.padding,
                        module.stride)


@function_rule(F.unfold, layout=True)
def unfold_function(ctx: Context, input, kernel_size, dilation=1, padding=0, stride=1) -> SymTensor:
    """``(N, C, H, W) -> (N, C*kh*kw, oh*ow)``."""
    return unfold_shape(ctx, tensor_arg(input, "input", ctx), kernel_size, dilation, padding, stride)


@module_rule(nn.Fold, layout=True)
def fold(ctx: Context, module: nn.Fold, x) -> SymTensor:
    """``(N, C*kh*kw, L) -> (N, C, out_h, out_w)``, ``L`` the blocks of ``output_size``."""
    return fold_shape(ctx, tensor_arg(x, "input", ctx), module.output_size, module.kernel_size, module.dilation,
                      module.padding, module.stride)


@function_rule(F.fold, layout=True)
def fold_function(ctx: Context, input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> SymTensor:
    """``(N, C*kh*kw, L) -> (N, C, out_h, out_w)``."""
    return fold_shape(ctx, tensor_arg(input, "input", ctx), output_size, kernel_size, dilation, padding, stride)
