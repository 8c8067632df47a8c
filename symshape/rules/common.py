"""Argument parsing and wording shared by the rule modules."""

from __future__ import annotations

from typing import Any

import sympy

from ..tensor import SymTensor
from .registry import Context

__all__ = ["as_int", "check_rank", "ntuple", "spatial_unit", "tensor_arg"]

_UNITS = {1: ("positions",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}


def spatial_unit(i: int, d: int) -> str:
    """What the ``i``-th of ``d`` spatial dims counts: rows and columns for images, and so on."""
    return _UNITS.get(d, ("entries",) * d)[i] if d in _UNITS else "entries"


def as_int(value: Any, what: str, ctx: Context) -> int:
    """A static int argument (kernel size, stride ...); symbolic values are not supported there."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, sympy.Integer):
        return int(value)
    ctx.unsupported(f"{what} must be a fixed int, got {value!r}")
    raise AssertionError  # unreachable: unsupported() raises


def ntuple(value: Any, n: int, what: str, ctx: Context) -> tuple[int, ...]:
    """torch's ``_pair``/``_triple``: an int repeated ``n`` times, or a sequence of ``n`` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            ctx.unsupported(f"{what} needs {n} values, got {tuple(value)}")
        return tuple(as_int(v, what, ctx) for v in value)
    return (as_int(value, what, ctx),) * n


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
