"""Factories whose size is an argument: ``torch.linspace(start, end, steps) -> (steps,)``, and
``torch.logspace`` alike.

Other factories (``zeros``, ``ones``, ``full``, ``arange`` ...) take their sizes straight from
their arguments and run on torch's fake tensors with symbolic sizes (symshape.meta); linspace's
meta kernel asks for the value of ``steps``, so it has a rule. ``steps`` must be at least 0.
"""

from __future__ import annotations

import numbers

import sympy
import torch

from ..tensor import SymTensor
from .registry import Context, function_rule

__all__ = ["linspace"]


@function_rule(torch.linspace, torch.logspace, on_sizes=True, layout=True)
def linspace(ctx: Context, start, end, steps, *args, **kwargs) -> SymTensor:
    """``(steps,)``; torch needs ``steps >= 0``."""
    if isinstance(steps, SymTensor) or not isinstance(steps, (numbers.Integral, sympy.Basic)):
        ctx.unsupported(f"steps must be an int or a size, got {steps!r}")
    if isinstance(steps, sympy.Basic) and not steps.is_integer:
        ctx.unsupported(f"steps must be an int or a size, got {steps}")
    if any(isinstance(v, SymTensor) for v in (start, end)):
        ctx.unsupported("start or end given as a tensor")
    ctx.at_least(steps, 0, "number of steps must be non-negative, gets {lhs}")
    return SymTensor((steps,))
