"""Linear and LazyLinear, and F.linear:  ``out = (*in[:-1], out_features)``.

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

__all__ = ["linear_shape"]


def linear_shape(ctx: Context, x: SymTensor, in_features: int | None, out_features: int) -> SymTensor:
    if x.ndim == 0:
        ctx.refuse("Linear needs an input with at least 1 dim, gets a 0-dim tensor")
    ctx.linear_input = x.shape[-1]
    if in_features is not None:
        ctx.equal(
            x.shape[-1], in_features,
            "in_features is {rhs} but the input's last dim is {lhs} "
            "(torch: mat1 and mat2 shapes cannot be multiplied)",
            kind="declared",
        )
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
    return linear_shape(ctx, x, w.shape[1], w.shape[0])
