"""Linear and LazyLinear, and F.linear:  ``out = (*in[:-1], out_features)``; Bilinear and F.bilinear:
``out = (*in1[:-1], out_features)``.

torch requires the last dim to equal ``in_features`` ("mat1 and mat2 shapes cannot be
multiplied"); an uninitialized LazyLinear takes whatever arrives. A mismatch is recorded as a
``declared`` requirement and analysis goes on with ``out_features``, so later layers are checked.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..modules import is_lazy
from ..tensor import SymTensor
from .common import tensor_arg
from .registry import Context, function_rule, module_rule

__all__ = ["bilinear_shape", "linear_shape"]


def linear_shape(ctx: Context, x: SymTensor, in_features, out_features, parameter: str = "in_features",
                 weight: tuple[int, str] | None = None) -> SymTensor:
    if x.ndim == 0:
        ctx.refuse("Linear needs an input with at least 1 dim, gets a 0-dim tensor")
    ctx.fixes(x.shape[-1], in_features, parameter,
              f"{parameter} is {{rhs}} but the input's last dim is {{lhs}} "
              "(torch: mat1 and mat2 shapes cannot be multiplied)", weight=weight, always=True)
    return SymTensor((*x.shape[:-1], out_features))


@module_rule(nn.Linear, layout=True)
def linear(ctx: Context, module: nn.Linear, x) -> SymTensor:
    """``out = (*in[:-1], out_features)``; needs ``in[-1] == in_features`` unless lazy."""
    x = tensor_arg(x, "input", ctx)
    lazy = is_lazy(module)
    return linear_shape(ctx, x, None if lazy else module.in_features, module.out_features)


@function_rule(F.linear, layout=True)
def linear_function(ctx: Context, input, weight, bias=None) -> SymTensor:
    """``F.linear(x, weight)``: ``out = (*in[:-1], weight.shape[0])``, ``in[-1] == weight.shape[-1]``."""
    x = tensor_arg(input, "input", ctx)
    w = tensor_arg(weight, "weight", ctx)
    if w.ndim == 1:
        ctx.equal(x.shape[-1], w.shape[0], "weight has {rhs} entries, the input's last dim is {lhs}")
        return SymTensor(x.shape[:-1])
    if w.ndim != 2:
        ctx.unsupported(f"F.linear with a {w.ndim}D weight")
    return linear_shape(ctx, x, w.shape[1], w.shape[0], "shape[1]", weight=(1, "weight"))


def bilinear_shape(ctx: Context, x1: SymTensor, x2: SymTensor, weight_shape: tuple, weight=None) -> SymTensor:
    if x1.ndim != x2.ndim:
        ctx.refuse(f"bilinear(): input dimensions do not match: got {x1.ndim} and {x2.ndim}")
    if x1.ndim == 0:
        ctx.refuse("bilinear(): inputs need at least 1 dim, get 0-dim tensors")
    for i in range(x1.ndim - 1):
        ctx.equal(x1.shape[i], x2.shape[i],
                  f"bilinear(): input batch dimensions do not match at dim {i}: got {{lhs}} and {{rhs}}")
    out, in1, in2 = weight_shape
    ctx.fixes(x1.shape[-1], in1, "in1_features" if weight is None else "shape[1]",
              "bilinear(): input1 size does not match weight size: got {lhs} but expected {rhs}",
              weight=weight, always=True)
    ctx.fixes(x2.shape[-1], in2, "in2_features" if weight is None else "shape[2]",
              "bilinear(): input2 size does not match weight size: got {lhs} but expected {rhs}",
              weight=weight, always=True, input=1)
    return SymTensor((*x1.shape[:-1], out))


@module_rule(nn.Bilinear)
def bilinear(ctx: Context, module: nn.Bilinear, input1, input2) -> SymTensor:
    """``out = (*in1[:-1], out_features)``; ``in1[:-1] == in2[:-1]``, ``in1[-1] == in1_features``,
    ``in2[-1] == in2_features``."""
    x1, x2 = tensor_arg(input1, "input1", ctx), tensor_arg(input2, "input2", ctx)
    return bilinear_shape(ctx, x1, x2, (module.out_features, module.in1_features, module.in2_features))


@function_rule(F.bilinear)
def bilinear_function(ctx: Context, input1, input2, weight, bias=None) -> SymTensor:
    """``F.bilinear(x1, x2, weight)``: ``out = (*in1[:-1], weight.shape[0])``, ``in1[-1] ==
    weight.shape[1]``, ``in2[-1] == weight.shape[2]``."""
    x1, x2 = tensor_arg(input1, "input1", ctx), tensor_arg(input2, "input2", ctx)
    w = tensor_arg(weight, "weight", ctx)
    if w.ndim != 3:
        ctx.unsupported(f"F.bilinear with a {w.ndim}D weight")
    return bilinear_shape(ctx, x1, x2, w.shape, weight=(2, "weight"))
