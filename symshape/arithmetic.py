"""Python's arithmetic on sizes: a call the model's forward makes without a tensor
(``x.size(0) * 4``, ``h // 2``, ``H % 32``, ``int(H / 2)``, ``math.sqrt(T)``, ``max(k / q, 1.0)``,
``h < 7``), evaluated as Python evaluates it, on symbolic sizes.

- ``+ - *`` of sizes are sizes, and so are ``//`` and ``%`` by a positive int (``floor_div``);
  ``//`` of sizes that divide exactly is their quotient (``x.numel() // x.size(0)``; the engine
  divides by a size that may be 0 itself, as a branch);
- ``/`` is a float in Python: an exact fraction here (``SizeRatio``), never a size, until
  ``int()`` or a rounding reads it; a size times or plus a float is exact where the float is a
  short binary fraction (0.5, 0.25), and any other float is followed only through ``int()`` or
  ``math.floor`` of a size times it (``DoubleProduct``: the double Python rounds);
- ``max``/``min`` of such floats is their exact extremum; a comparison stays a relation, for a
  branch or ``torch._assert`` to decide;
- a value ``.item()`` read from a tensor's entries (``ReadValue``: data, bounds known) is read
  only by a comparison its bounds decide at every size, which is then ``True`` or ``False``.

Anything else raises ``UnsupportedOperation`` naming the call.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

import sympy
import torch.fx

from .bounds import ReadValue
from .dims import (DoubleProduct, SizeRatio, as_expr, canonical, exact_quotient, float_extremum, floor_div,
                   holds_at_every_size, integer_polynomial, size_sqrt, smallest_value)
from .errors import NotASize, UnsupportedOperation
from .rules import target_name

__all__ = ["SIZE_MODULES", "by_a_size", "size_arithmetic"]


_COMPARISONS = {operator.eq: sympy.Eq, operator.ne: sympy.Ne, operator.ge: sympy.Ge, operator.gt: sympy.Gt,
                operator.le: sympy.Le, operator.lt: sympy.Lt}


def _number(v):
    """A size or a plain number for a comparison (never parsed: a float converts exactly)."""
    if isinstance(v, float):
        return sympy.Rational(Fraction(v).numerator, Fraction(v).denominator)
    if isinstance(v, SizeRatio):
        return v.expr
    return as_expr(v, "a compared value")


#: arithmetic that keeps a SizeRatio one (sympy would otherwise ask it for a float)
_RATIO_ARITHMETIC = frozenset({operator.add, operator.sub, operator.mul, operator.truediv, operator.neg})


def _symbolic(v) -> bool:
    return isinstance(v, SizeRatio) or isinstance(v, sympy.Basic) and not v.is_number


#: math's functions as imported (fx patches the math module's own names while it traces)
_TRUNC, _SQRT, _FLOOR = math.trunc, math.sqrt, math.floor


def _converted(target, args):
    """``int()``, ``float()``, ``math.sqrt`` or ``** 0.5`` of a size, as Python computes them
    (None for any other call): ``int(H / 2)`` truncates, ``int(math.sqrt(T))`` is IntSqrt."""
    v = args[0]
    if (target is int or target is _TRUNC) and len(args) == 1:
        return canonical(math.trunc(v)) if isinstance(v, SizeRatio) else as_expr(v, "the argument of int()")
    if target is float and len(args) == 1:
        return v if isinstance(v, SizeRatio) else SizeRatio(as_expr(v, "the argument of float()"))
    if target is _SQRT and len(args) == 1 or target is operator.pow and len(args) == 2 and args[1] == 0.5:
        return size_sqrt(v)  # a float in torch, rounded later
    return None


def _short_binary(f: float) -> bool:
    """Whether sizes below 2**32 times, plus or over ``f`` are exact in a double (or round to an
    integer only where the exact value is one): a binary fraction with a short numerator."""
    num, den = Fraction(f).as_integer_ratio()
    return den & (den - 1) == 0 and den <= 2 ** 20 and abs(num).bit_length() <= 20


def _extremum_of_floats(target, args) -> SizeRatio:
    """``max(k / q, 1.0)``: floats, recorded as one call by symshape.trace's stand-in (no branch
    on the comparison); its value is the extremum, exactly, as every SizeRatio is. (Only such
    calls reach here: any other ``max`` or ``min`` ran as Python's.)"""
    kind = sympy.Max if target is max else sympy.Min
    return SizeRatio(float_extremum(kind, tuple(SizeRatio._exact(v) for v in args)))


def by_a_size(a, b) -> bool:
    """Whether ``a // b`` (``a % b``) divides a size by a size: ``b`` depends on the input size
    and ``a`` is an int or a size (not a float, not a ratio: those are Python's own floats)."""
    return (isinstance(b, sympy.Expr) and bool(b.free_symbols) and isinstance(a, (int, sympy.Expr))
            and not isinstance(a, (bool, sympy.Float)))


def _true_quotient(args, node: torch.fx.Node, where: str) -> SizeRatio:
    """``a / b`` of sizes: a float in torch (``H / 2``), an exact fraction here, never a size."""
    a, b = (SizeRatio._exact(v) for v in args)
    if b == 0:
        raise UnsupportedOperation("operator.truediv", where, node.format_node(), f"{a} / 0")
    if b.free_symbols and not any(isinstance(v, (SizeRatio, float)) for v in args):
        # h / window where the window is h on one side of a branch (MONAI's Swin: get_window_size):
        # sympy keeps a Piecewise over its own reciprocal, which no rounding reads; an exact
        # quotient is the same number
        exact = exact_quotient(a, b)
        if exact is not None:
            return SizeRatio(canonical(exact))
    return SizeRatio(a / b)


def _read_compared(target, args, kwargs, node: torch.fx.Node, where: str) -> sympy.Basic:
    """A comparison of a value read from a tensor's entries (:class:`~symshape.bounds.ReadValue`)
    with a number, a size or another such value, where their bounds decide it at every size:
    ``lo … hi <= x`` holds where ``hi <= x`` does, and fails where ``lo > x`` does. Anything else
    it takes part in is refused: its value depends on the data, not on the sizes."""
    read = next(v for v in args if isinstance(v, ReadValue))
    if target not in _COMPARISONS or len(args) != 2 or kwargs:
        raise UnsupportedOperation(target_name(target), where, node.format_node(),
                                   f"{target_name(target)} of {read}: a value that depends on the data, which "
                                   "symshape reads only in a comparison its bounds decide")
    (alo, ahi), (blo, bhi) = ((v.lo, v.hi) if isinstance(v, ReadValue) else (_number(v),) * 2 for v in args)
    # (a < b) always holds where ahi < blo, never where alo >= bhi; the others alike
    always, never = {operator.lt: (sympy.Lt(ahi, blo), sympy.Ge(alo, bhi)),
                     operator.le: (sympy.Le(ahi, blo), sympy.Gt(alo, bhi)),
                     operator.gt: (sympy.Gt(alo, bhi), sympy.Le(ahi, blo)),
                     operator.ge: (sympy.Ge(alo, bhi), sympy.Lt(ahi, blo)),
                     operator.eq: (sympy.And(sympy.Eq(alo, bhi), sympy.Eq(ahi, blo), sympy.Eq(alo, ahi)),
                                   sympy.Or(sympy.Lt(ahi, blo), sympy.Gt(alo, bhi))),
                     operator.ne: (sympy.Or(sympy.Lt(ahi, blo), sympy.Gt(alo, bhi)),
                                   sympy.And(sympy.Eq(alo, bhi), sympy.Eq(ahi, blo), sympy.Eq(alo, ahi)))}[target]
    for answer, cond in ((sympy.true, always), (sympy.false, never)):
        if holds_at_every_size(cond):
            return answer
    raise UnsupportedOperation(target_name(target), where, node.format_node(),
                               f"a comparison of {read} that its bounds do not decide at every size: a branch on "
                               "a value that depends on the data, not on the sizes")


def size_arithmetic(target, args, kwargs, node: torch.fx.Node, where: str):
    """Evaluate a call on sizes (no tensor involved): ``x.size(0) * 4``, ``shape[1:]`` ..."""
    if any(isinstance(v, ReadValue) for v in args):
        return _read_compared(target, args, kwargs, node, where)
    if args and _symbolic(args[0]) and not kwargs:
        try:
            converted = _converted(target, args)
        except (TypeError, NotASize) as e:
            raise UnsupportedOperation(target_name(target), where, node.format_node(), str(e)) from e
        if converted is not None:
            return converted
    rounded = next((v for v in args if isinstance(v, DoubleProduct)), None)
    if rounded is not None and len(args) == 1 and not kwargs and target in (int, _TRUNC, _FLOOR):
        try:
            return rounded._rounded(False)  # int(h * 0.3), math.floor(h * 0.3): floor(double(h) * 0.3)
        except TypeError as e:
            raise UnsupportedOperation(target_name(target), where, node.format_node(), str(e)) from e
    if rounded is not None:  # h * 0.3 + 1: a double Python rounded, then more arithmetic
        raise UnsupportedOperation(target_name(target), where, node.format_node(),
                                   f"arithmetic on {rounded}: symshape follows int() and math.floor of a size "
                                   "times a float, not further arithmetic on the rounded double")
    if target is operator.mul and len(args) == 2 and any(isinstance(v, float) and not _short_binary(v) for v in args):
        size, scale = args if isinstance(args[1], float) else args[::-1]
        if isinstance(scale, float) and isinstance(size, (int, sympy.Basic)) and not isinstance(size, bool) \
                and integer_polynomial(as_expr(size)) and math.isfinite(scale):
            return DoubleProduct(as_expr(size), scale)  # x.size(1) * 0.3: int() of it is floor(double(n)*0.3)
    if target in _RATIO_ARITHMETIC and any(_symbolic(v) for v in args):
        for v in args:
            if isinstance(v, float) and not _short_binary(v):
                raise UnsupportedOperation(
                    target_name(target), where, node.format_node(),
                    f"a size times or plus the float {v!r}, which Python rounds: symshape follows floats "
                    "that are short binary fractions (0.5, 0.25, 1.5, 2.0)")
        if any(isinstance(v, float) for v in args) and target is not operator.truediv:
            return SizeRatio(target(*(SizeRatio._exact(v) for v in args)))  # x.shape[3] * 0.5
    if target in (max, min) and not kwargs and all(isinstance(v, (SizeRatio, float)) for v in args):
        return _extremum_of_floats(target, args)
    if target is operator.truediv and any(_symbolic(v) for v in args):
        return _true_quotient(args, node, where)
    if target in _RATIO_ARITHMETIC and any(isinstance(v, SizeRatio) for v in args):
        return SizeRatio(target(*(SizeRatio._exact(v) for v in args)))
    if target is operator.floordiv and isinstance(args[0], SizeRatio):
        return math.floor(args[0] / args[1])
    if target is operator.floordiv:
        a, b = args
        if all(isinstance(v, (int, sympy.Integer)) for v in (a, b)):
            return int(a) // int(b)
        if isinstance(b, (int, sympy.Integer)) and int(b) > 0:
            return canonical(floor_div(a, int(b)))
        a, b = canonical(a), canonical(b)
        exact = exact_quotient(a, b)  # x.numel() // x.size(0): the batch size cancels exactly
        if exact is not None:
            return canonical(exact)
        raise UnsupportedOperation(
            "operator.floordiv", where, node.format_node(),
            f"{a} // {b}: symshape divides sizes by a positive int, or exactly",
        )
    if target is operator.mod:
        a, b = args
        if isinstance(a, sympy.Basic) and not a.is_number and isinstance(b, (int, sympy.Integer)) and int(b) > 0:
            return canonical(as_expr(a) - int(b) * floor_div(a, int(b)))  # Python's %: a - b*(a // b)
    if target in _COMPARISONS and any(_symbolic(v) for v in args):
        # a comparison of sizes stays symbolic, for torch._assert to turn into a requirement
        a, b = (_number(v) for v in args)
        if any(isinstance(v, SizeRatio) for v in args):
            # k / q < 1 with q > 0 is k < q: a relation of integer sizes, which symshape decides
            num, den = sympy.fraction(sympy.together(a - b))
            low = smallest_value(den)
            if low is not None and low > 0:
                a, b = num, sympy.Integer(0)
        return _COMPARISONS[target](a, b)
    if target is operator.truediv:  # fixed sizes: a float, as in Python
        return float(args[0]) / float(args[1])
    try:
        return target(*args, **kwargs)
    except Exception as e:
        raise UnsupportedOperation(target_name(target), where, node.format_node(), f"{type(e).__name__}: {e}") from e


#: modules whose functions, called on sizes alone, are size arithmetic
SIZE_MODULES = frozenset({"_operator", "operator", "builtins", "math", None})
