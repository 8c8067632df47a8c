"""Factories whose size is computed from their arguments: ``torch.linspace(start, end, steps) ->
(steps,)`` (``torch.logspace`` alike), ``torch.arange(start, end, step) -> (ceil((end - start)/step),)``,
``torch.eye(n, m) -> (n, m)``, ``torch.tensor([h, w]) -> (2,)`` (``as_tensor``, ``asarray`` alike).

Other factories (``zeros``, ``ones``, ``full`` ...) take their sizes straight from their arguments
and run on torch's fake tensors with symbolic sizes (symshape.meta). linspace's meta kernel asks
for the value of ``steps``, and arange's computes its length in floating point when an argument
is a float (``torch.arange(0.5, H)``, DINOv3's position grid), so each has a rule; eye's meta
kernel branches (below).
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import sympy
import torch

from ..dims import SizeRatio, canonical
from ..tensor import SymTensor
from .registry import Context, function_rule

__all__ = ["arange", "eye", "linspace", "tensor_of_data"]


def _count(ctx: Context, value, what: str):
    """``value`` where it is an int or a size (a count of elements); refused otherwise."""
    if isinstance(value, (bool, SymTensor)) or not isinstance(value, (numbers.Integral, sympy.Basic)) \
            or isinstance(value, sympy.Basic) and not value.is_integer:
        ctx.unsupported(f"{what} must be an int or a size, got {value!r}")
    return value


@function_rule(torch.linspace, torch.logspace, on_sizes=True, layout=True)
def linspace(ctx: Context, start, end, steps, *args, **kwargs) -> SymTensor:
    """``(steps,)``; torch needs ``steps >= 0``."""
    _count(ctx, steps, "steps")
    if any(isinstance(v, SymTensor) for v in (start, end)):
        ctx.unsupported("start or end given as a tensor")
    ctx.at_least(steps, 0, "number of steps must be non-negative, gets {lhs}")
    return SymTensor((steps,))


@function_rule(torch.eye, on_sizes=True, layout=True)
def eye(ctx: Context, n, m=None, **kwargs) -> SymTensor:
    """``(n, m)``, ``m`` being ``n`` where not given; torch needs ``n >= 0`` and ``m >= 0``.

    (torch's meta kernel builds the identity from two ``arange`` compared by broadcasting, which
    branches on ``n == 1``: 24 ms a call where this takes none; BAT's attention calls it 32
    times.)"""
    if "out" in kwargs or kwargs.get("layout") not in (None, torch.strided):
        ctx.unsupported("eye with out= or a layout other than strided")
    n = _count(ctx, n, "n")
    m = n if m is None else _count(ctx, m, "m")
    ctx.at_least(n, 0, "n must be greater or equal to 0, got {lhs}")
    ctx.at_least(m, 0, "m must be greater or equal to 0, got {lhs}")
    dtype = kwargs.get("dtype")
    return SymTensor((n, m), dtype=torch.get_default_dtype() if dtype is None else dtype)


def _exact_number(ctx: Context, value, what: str) -> sympy.Expr:
    """An int, a float (its exact binary value) or a size, as an exact sympy number."""
    if isinstance(value, bool) or isinstance(value, SymTensor):
        ctx.unsupported(f"{what} given as {type(value).__name__}")
    if isinstance(value, float):
        f = Fraction(value)
        return sympy.Rational(f.numerator, f.denominator)
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, SizeRatio):
        ctx.unsupported(f"{what} {value}: a size divided with / is a float that symshape does not round here")
    if isinstance(value, sympy.Basic) and value.is_integer:
        return value
    ctx.unsupported(f"{what} must be a number or a size, got {value!r}")


@function_rule(torch.arange, on_sizes=True, layout=True)
def arange(ctx: Context, *args, **kwargs) -> SymTensor:
    """``(ceil((end - start)/step),)``; torch needs ``step != 0`` and ``end`` on ``step``'s side
    of ``start``.

    torch computes the length as ``ceil`` of a double quotient. ``end - start`` is exact in
    double for sizes below 2**52 and a float ``start`` (a binary fraction); the quotient, correctly
    rounded, lands on an integer only where the exact one is one while it is below 2**53 over the
    exact quotient's denominator: so the length is the exact ``ceil`` at every such size."""
    names = ("start", "end", "step") if len(args) >= 2 else ("end",)
    given = dict(zip(names, args))
    for k in ("start", "end", "step"):
        if k in kwargs:
            given[k] = kwargs[k]
    if "end" not in given:
        ctx.unsupported("arange without an end")
    start = _exact_number(ctx, given.get("start", 0), "start")
    end = _exact_number(ctx, given["end"], "end")
    step = _exact_number(ctx, given.get("step", 1), "step")
    if not step.is_number:
        ctx.unsupported(f"a step taken from the input's size ({step})")
    if step == 0:
        ctx.never("step must be nonzero")
    scale = sympy.fraction(start)[1]  # an integer condition: 2*H - 1 >= 0 for start 0.5
    ahead = (end - start) * scale if step > 0 else (start - end) * scale
    ctx.at_least(sympy.expand(ahead), 0, "upper bound and larger bound inconsistent with step sign")
    length = canonical(math.ceil(SizeRatio((end - start) / step)))
    dtype = kwargs.get("dtype")
    if dtype is None:
        plain = all(isinstance(given.get(k, 0), numbers.Integral) or isinstance(given.get(k, 0), sympy.Basic)
                    for k in ("start", "end", "step"))
        dtype = torch.int64 if plain else torch.get_default_dtype()
    return SymTensor((length,), dtype=dtype)


def _nesting(ctx: Context, data, kinds: set) -> tuple:
    """The shape of nested lists and tuples of numbers and sizes (what ``torch.tensor`` makes of
    them, whatever their values), noting each leaf's kind; refused for anything else in them."""
    if isinstance(data, (list, tuple)):
        shapes = [_nesting(ctx, item, kinds) for item in data]
        if any(shape != shapes[0] for shape in shapes):
            ctx.refuse(f"torch.tensor of a ragged sequence: items of shapes {sorted(set(shapes), key=len)}")
        return (len(data), *(shapes[0] if shapes else ()))
    if isinstance(data, bool):
        kinds.add("bool")
    elif isinstance(data, numbers.Integral) or isinstance(data, sympy.Basic) and data.is_integer:
        kinds.add("int")
    elif isinstance(data, (float, SizeRatio)):
        kinds.add("float")
    else:
        ctx.unsupported(f"data of type {type(data).__name__} (symshape follows a tensor, or numbers and sizes "
                        "in lists and tuples)")
    return ()


@function_rule(torch.tensor, torch.as_tensor, torch.asarray, on_sizes=True)
def tensor_of_data(ctx: Context, data, *args, dtype=None, **kwargs) -> SymTensor:
    """A tensor's shape (``torch.as_tensor(x)``, a copy with ``torch.tensor``); the nesting of
    lists of numbers and sizes (``torch.tensor([h, w]) -> (2,)``, ``torch.tensor(h) -> ()``),
    whose dtype is int64 for ints and sizes, the default float dtype where a float is among them,
    bool for bools (``dtype=`` where given)."""
    if args:
        ctx.unsupported("a positional argument after the data")
    if isinstance(data, SymTensor):
        return data if dtype is None else data.with_dtype(dtype)
    kinds: set = set()
    shape = _nesting(ctx, data, kinds)
    if dtype is None:
        dtype = torch.get_default_dtype() if "float" in kinds or not kinds else \
            torch.int64 if "int" in kinds else torch.bool
    return SymTensor(shape, dtype=dtype)
