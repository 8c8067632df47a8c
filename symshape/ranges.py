"""The least and greatest entry of integer tensors computed from sizes.

Relative-position models index a table whose length depends on the input with an index tensor
they compute from sizes (SAM's ``rel_pos[(arange(q)[:, None] - arange(k)[None, :] + k - 1).long()]``).
torch checks every index against the table's length; symshape cannot see the entries, but it can
follow their exact extremes:

    arange(start, end):   start … end - 1   (integer start and step)
    t + c, t - c, t * c:  shifted or scaled by a number or a size (c ≥ 0 for *)
    a + b, a - b:         lo_a ± … exactly, where a and b vary along different dims (a broadcast
                          of every pair: each combination of entries occurs)
    views, expand, .long(), .float():  unchanged

Only an exact range is kept (both ends attained wherever the tensor is not empty); anything else
drops it, and an index whose entries symshape cannot bound is refused where the size it indexes
depends on the input.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any

import sympy
import torch

from .dims import SizeRatio, canonical
from .tensor import SymTensor

__all__ = ["propagate"]

_SHAPE_METHODS = frozenset({"view", "reshape", "unsqueeze", "flatten", "expand", "expand_as", "permute",
                            "transpose", "contiguous", "clone", "t", "float", "double", "long", "int",
                            "detach", "unflatten"})
#: dtypes that hold every integer entry a size can make exactly (``.to(dtype)``)
_EXACT_DTYPES = (torch.int64, torch.float64, torch.float32, torch.int32)
_SHAPE_FUNCTIONS = (torch.unsqueeze, torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.clone)
_ADD = (operator.add, torch.add, "add", "__add__", "__radd__")
_SUB = (operator.sub, torch.sub, "sub", "__sub__")
_MUL = (operator.mul, torch.mul, "mul", "__mul__", "__rmul__")


def _number(v) -> sympy.Expr | None:
    """An exact integer-valued scalar (an int, an integral float, a size, a constant ratio), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, SizeRatio):
        v = v.expr
    if isinstance(v, float):
        if not v.is_integer():
            return None
        v = int(v)
    e = sympy.Integer(v) if isinstance(v, int) else v
    if not isinstance(e, sympy.Expr) or not e.is_integer:
        return None
    return e


def _range(v) -> tuple | None:
    if isinstance(v, SymTensor):
        if v.entry_range is not None:
            return v.entry_range
        return None
    e = _number(v)
    return None if e is None else (e, e)


def _apart(a: SymTensor, b: SymTensor) -> bool:
    """Every pair of entries occurs in ``a ± b``: at each (right-aligned) dim at most one of them
    has a size other than 1."""
    n = max(a.ndim, b.ndim)
    sa = (1,) * (n - a.ndim) + a.shape
    sb = (1,) * (n - b.ndim) + b.shape
    return all(x == 1 or y == 1 for x, y in zip(sa, sb))


def _arange(args, kwargs) -> tuple | None:
    nums = [_number(a) for a in args]
    if "start" in kwargs or "end" in kwargs or "step" in kwargs or any(n is None for n in nums):
        return None
    if len(nums) == 1:
        start, end, step = sympy.Integer(0), nums[0], sympy.Integer(1)
    elif len(nums) == 2:
        (start, end), step = nums, sympy.Integer(1)
    elif len(nums) == 3:
        start, end, step = nums
    else:
        return None
    if step != 1:
        return None  # with a step the last entry is start + step*(count - 1): not followed
    return start, end - 1


def _binary(which: str, a, b) -> tuple | None:
    ra, rb = _range(a), _range(b)
    if ra is None or rb is None:
        return None
    if isinstance(a, SymTensor) and isinstance(b, SymTensor) and not _apart(a, b):
        return None
    if which == "add":
        return ra[0] + rb[0], ra[1] + rb[1]
    if which == "sub":
        return ra[0] - rb[1], ra[1] - rb[0]
    # a product: by a scalar that is never negative
    if isinstance(a, SymTensor) and isinstance(b, SymTensor):
        return None
    (lo, hi), c = (ra, rb[0]) if isinstance(a, SymTensor) else (rb, ra[0])
    if not c.is_nonnegative:
        return None
    return lo * c, hi * c


def _unwrapped(f):
    return getattr(f, "__wrapped_factory__", f)


def _transfer(target, kind: str, args, kwargs) -> tuple | None:
    # (while symshape traces, torch.arange is a wrapper around the builtin: symshape.trace.FACTORIES)
    if kind == "function" and _unwrapped(target) is _unwrapped(torch.arange):
        return _arange(args, kwargs)
    name = target
    if kind == "method" and name == "to":
        dtypes = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.dtype)]
        keeps = len(dtypes) == 1 and dtypes[0] in _EXACT_DTYPES
        return _range(args[0]) if keeps and isinstance(args[0], SymTensor) else None
    if (kind == "method" and name in _SHAPE_METHODS) or (kind == "function" and target in _SHAPE_FUNCTIONS):
        return _range(args[0]) if args and isinstance(args[0], SymTensor) else None
    if name is operator.getitem and len(args) == 2 and isinstance(args[0], SymTensor):
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        whole = all(i is None or i is Ellipsis or i == slice(None) for i in index)
        return _range(args[0]) if whole else None  # a part may miss the extremes
    if len(args) == 2 and not kwargs:
        for which, ops in (("add", _ADD), ("sub", _SUB), ("mul", _MUL)):
            if name in ops:
                return _binary(which, *args)
    if len(args) == 1 and name in (operator.neg, torch.neg, "neg", "__neg__"):
        r = _range(args[0])
        return None if r is None else (-r[1], -r[0])
    return None


def propagate(target, kind: str, args, kwargs, value: Any) -> Any:
    """``value`` (a call's result) with its exact entry range where the call keeps one, and
    without any range a rule passed along otherwise."""
    if not isinstance(value, SymTensor):
        return value
    r = _transfer(target, kind, args, kwargs)
    if r is None or not all(isinstance(e, sympy.Expr) and e.is_integer for e in r):
        return replace(value, entry_range=None) if value.entry_range is not None else value
    return replace(value, entry_range=(canonical(r[0]), canonical(r[1])))
