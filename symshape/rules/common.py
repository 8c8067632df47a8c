"""Argument parsing and wording shared by the rule modules."""

from __future__ import annotations

import numbers
from typing import Any

import sympy
import torch

from ..dims import as_expr
from ..tensor import SymTensor
from .registry import Context

__all__ = ["as_bool", "as_choice", "as_flag", "as_int", "as_real", "check_rank", "ntuple", "require_layout",
           "size_value", "spatial_unit", "tensor_arg"]

_UNITS = {1: ("positions",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}


def spatial_unit(i: int, d: int) -> str:
    """What the ``i``-th of ``d`` spatial dims counts: rows and columns for images, and so on."""
    return _UNITS.get(d, ("entries",) * d)[i] if d in _UNITS else "entries"


def as_int(value: Any, what: str, ctx: Context) -> int:
    """A static int argument (kernel size, stride ...); symbolic values are not supported there.
    Any ``numbers.Integral`` (bool, numpy ints) converts; nothing is parsed."""
    if isinstance(value, (numbers.Integral, sympy.Integer)):
        return int(value)
    ctx.unsupported(f"{what} must be a fixed int, got {value!r}")


def as_bool(value: Any, what: str, ctx: Context) -> bool:
    """A flag (``ceil_mode``, ``batch_first`` ...): torch's argument parser takes a bool only
    (``ceil_mode=1`` raises TypeError), so anything else is refused, not read as truthy."""
    if isinstance(value, bool):
        return value
    ctx.unsupported(f"{what} must be a bool, got {value!r} (torch refuses it too)")


def as_flag(value: Any, what: str, ctx: Context) -> bool:
    """A flag that Python code may compute from sizes (``is_causal = q_len > 1 and mask is
    None``: where ``q_len > 1`` is false, Python's ``and`` gives that condition itself): a bool, or a
    condition on the sizes that holds, or fails, wherever torch runs this step (the side of the
    branch that asked it decides it); else refused, as :func:`as_bool` refuses."""
    if isinstance(value, sympy.logic.boolalg.Boolean):
        if value in (sympy.true, sympy.false):
            return bool(value)
        negated = sympy.Not(value)
        if value in ctx.facts or ctx.proves(value):  # (the side's own answer: of two sizes, too)
            return True
        if negated in ctx.facts or ctx.proves(negated):
            return False
        ctx.unsupported(f"{what} is a condition on the sizes, {value}, that holds at some sizes only")
    return as_bool(value, what, ctx)


def as_real(value: Any, what: str, ctx: Context) -> float:
    """A real number (``scale_factor``, ``norm_type``); a string is refused, never parsed."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    ctx.unsupported(f"{what} must be a number, got {value!r}")


def as_choice(value: Any, choices: tuple, what: str, ctx: Context):
    """One of torch's named options (``padding_mode``, ``mode``)."""
    if isinstance(value, str) and value in choices:
        return value
    ctx.unsupported(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def ntuple(value: Any, n: int, what: str, ctx: Context) -> tuple[int, ...]:
    """torch's ``_pair``/``_triple``: an int repeated ``n`` times, or a sequence of ``n`` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            ctx.unsupported(f"{what} needs {n} values, got {tuple(value)}")
        return tuple(as_int(v, what, ctx) for v in value)
    return (as_int(value, what, ctx),) * n


def size_value(value: Any, what: str, ctx: Context):
    """A size as torch's argument parser reads it: a one-element integer tensor is its value
    (``__index__``: Longformer's ``torch.div(T, 2*w, rounding_mode="trunc")`` as a size in a
    ``view``), where symshape knows it exactly; a float or bool tensor, or one of several
    elements, is refused as torch refuses it; anything else is returned as it is."""
    if not isinstance(value, SymTensor):
        return value
    dtype = value.dtype
    integral = dtype is not None and not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    fixed = all(as_expr(d).is_Integer for d in value.shape)
    if dtype is not None and not integral or fixed and value.numel() != 1:
        ctx.refuse(f"{what} must be an int or a one-element integer tensor, got a {dtype} tensor of "
                   f"shape {tuple(value.shape)}")
    one = value.single_value()
    if one is None:
        ctx.unsupported(f"{what} given as a tensor whose value symshape does not know")
    return one


def tensor_arg(value: Any, what: str, ctx: Context) -> SymTensor:
    if not isinstance(value, SymTensor):
        ctx.unsupported(f"{what} must be a tensor, got {value!r}")
    return value


def check_rank(ctx: Context, x: SymTensor, ranks: tuple[int, ...], layer: str) -> None:
    """Refuse at analysis time when the rank is wrong: no output shape exists then."""
    if x.ndim not in ranks:
        expected = " or ".join(f"{r}D" for r in ranks)
        ctx.refuse(
            f"{layer} expects a {expected} input, gets {x.ndim}D {x} "
            "(input_shape excludes the batch dim N, which symshape adds)"
        )


def require_layout(ctx: Context, x: SymTensor) -> None:
    """Where the layout of ``x`` holds only under a guard (symshape.tensor.kernel_layout), an op
    that depends on it (a view) requires the guard."""
    seen = set()
    for g in x.guard:
        if (g.lhs, g.relation, g.rhs, g.unless) not in seen:  # the same size guarded by two kernels: once
            seen.add((g.lhs, g.relation, g.rhs, g.unless))
            ctx.require(g.lhs, g.relation, g.rhs, g.reason, unless=g.unless, data_dependent=g.data_dependent)
