"""Entries moved, the shape kept: roll and flip.

    roll(shifts, dims):   out = in; len(shifts) == len(dims), or no dims and one shift (the
                          flattened tensor is rolled); every dim in range
    flip(dims):           out = in; every dim in range, none twice

Neither checks a size: a shift by any amount (a size, or more than the dim) is a rotation, and an
empty tensor comes back as it is. Both allocate their output: for a contiguous input torch's
kernels return a contiguous tensor (roll: ``cat`` of two ``narrow``s, or a ``view`` of the
flattened roll; flip: ``empty_like``, which keeps the input's strides); for another input the
engine asks torch's meta kernel for the output's strides.
"""

from __future__ import annotations

import torch

from ..tensor import SymTensor
from .common import as_int, tensor_arg
from .registry import Context, function_rule, method_rule


def _ints(ctx: Context, value, what: str) -> list[int]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return [as_int(v, what, ctx) for v in items]


def _in_range(ctx: Context, x: SymTensor, dims: list[int], what: str) -> list[int]:
    try:
        return [x.dim(d) for d in dims]
    except IndexError as e:
        ctx.refuse(f"{what}: {e}")
        raise


@function_rule(torch.roll)
@method_rule("roll")
def roll(ctx: Context, input, shifts, dims=None) -> SymTensor:
    """``out = in``; one shift per dim (or one shift and no dims), every dim in range."""
    x = tensor_arg(input, "input", ctx)
    count = len(shifts) if isinstance(shifts, (list, tuple)) else 1
    axes = [] if dims is None else _ints(ctx, dims, "dims")
    if count == 0:
        ctx.refuse("roll: `shifts` required")
    if axes or count != 1:
        if count != len(axes):
            ctx.refuse(f"roll: shifts and dimensions must align. shifts: {count}, dims:{len(axes)}")
        _in_range(ctx, x, axes, "roll")
    # torch rolls a 0-dim tensor as the flattened one-element tensor it is
    return x.with_shape(x.shape, contiguous=True)


@function_rule(torch.flip)
@method_rule("flip")
def flip(ctx: Context, input, *dims, **kwargs) -> SymTensor:
    """``out = in``; every dim in range, none twice."""
    x = tensor_arg(input, "input", ctx)
    if "dims" in kwargs:
        dims = (kwargs.pop("dims"),)
    if kwargs or not dims:
        ctx.unsupported(f"flip: arguments {sorted(kwargs) or 'without dims'}")
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    axes = _in_range(ctx, x, _ints(ctx, list(dims), "dims"), "flip")
    for d in axes:
        if axes.count(d) > 1:
            ctx.refuse(f"flip: dim {d} appears multiple times in the list of dims")
    return x.with_shape(x.shape)


@function_rule(torch.fliplr, rank=2, what="fliplr")
@function_rule(torch.flipud, rank=1, what="flipud")
@method_rule("fliplr", rank=2, what="fliplr")
@method_rule("flipud", rank=1, what="flipud")
def flip_one(ctx: Context, input, rank: int, what: str) -> SymTensor:
    """``out = in``; fliplr needs at least 2 dims (flips dim 1), flipud at least 1 (dim 0)."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim < rank:
        ctx.refuse(f"{what}: Input must be >= {rank}-d.")
    return x.with_shape(x.shape)
