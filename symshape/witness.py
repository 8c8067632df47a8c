"""A size where every fact holds and a condition fails: a quick, exact "no".

Under a Python branch's answers and the earlier checks, rules ask whether two sizes are equal
(``Context.same``: a view matching its dims against the input's, chunk by chunk) and whether a
relation holds (symshape.dims.implied). Most such questions have the answer no, and finding that
out the long way (residue by residue) costs a millisecond each: TinyViT asked 550 of them. One
size where every fact holds and the condition does not settles it at once: :func:`witness`
looks for one among a few candidate sizes, evaluating with Python's exact integer and fraction
arithmetic (:func:`value`). It never says yes: where no such size is found (no candidate
satisfies the facts, or an expression holds a function it does not evaluate) the answer is
"not known", and the caller asks the long way.
"""

from __future__ import annotations

import functools
import math
import operator
from fractions import Fraction
from typing import Iterable

import sympy


#: the values tried for each size: common image sizes and multiples of common windows first,
#: then small and odd ones
CANDIDATES = (224, 448, 256, 97, 131, 512, 1000, 896, 33, 160, 320, 672, 64, 1, 2, 3, 5, 7, 14, 28, 56, 112)


class _Unknown(Exception):
    """An expression this module does not evaluate."""


#: integer functions of symshape's own (symshape.dims registers FloorDiv's ``p // q``): each
#: called with the values of its arguments
FUNCTIONS: dict = {}


def value(e: sympy.Basic, point: dict) -> int | Fraction | bool:
    """``e`` at ``point`` (symbols to ints), exactly; raises _Unknown for what it cannot evaluate."""
    if e.is_Integer:
        return int(e.p)
    if e.is_Rational:
        return Fraction(int(e.p), int(e.q))
    if e.is_Symbol:
        try:
            return point[e]
        except KeyError:
            raise _Unknown(e) from None
    if e.is_Add:
        return sum((value(a, point) for a in e.args), 0)
    if e.is_Mul:
        out = 1
        for a in e.args:
            out *= value(a, point)
        return out
    if e.is_Pow:
        base, exp = value(e.base, point), e.exp
        if not exp.is_Integer or (exp < 0 and base == 0):
            raise _Unknown(e)
        return Fraction(base) ** int(exp) if exp < 0 else base ** int(exp)
    own = FUNCTIONS.get(type(e))
    if own is not None:
        return own(*(value(a, point) for a in e.args))
    if isinstance(e, sympy.floor):
        return math.floor(value(e.args[0], point))
    if isinstance(e, sympy.ceiling):
        return math.ceil(value(e.args[0], point))
    if isinstance(e, sympy.Mod):
        q = value(e.args[1], point)
        if q == 0:
            raise _Unknown(e)
        return value(e.args[0], point) % q
    if isinstance(e, (sympy.Max, sympy.Min)):
        return (max if isinstance(e, sympy.Max) else min)(value(a, point) for a in e.args)
    if isinstance(e, sympy.Piecewise):
        for expr, cond in e.args:
            if value(cond, point):
                return value(expr, point)
        raise _Unknown(e)
    if isinstance(e, sympy.Rel):
        return _compare(type(e), value(e.lhs, point), value(e.rhs, point))
    if e is sympy.true or e is sympy.false:
        return bool(e)
    if isinstance(e, sympy.And):
        return all(value(a, point) for a in e.args)
    if isinstance(e, sympy.Or):
        return any(value(a, point) for a in e.args)
    if isinstance(e, sympy.Not):
        return not value(e.args[0], point)
    raise _Unknown(e)


#: each relation as the Python test of its two sides
TESTS = {sympy.Eq: operator.eq, sympy.Ne: operator.ne, sympy.Ge: operator.ge, sympy.Gt: operator.gt,
         sympy.Le: operator.le, sympy.Lt: operator.lt}


def _compare(kind: type, a, b) -> bool:
    try:
        return TESTS[kind](a, b)
    except KeyError:
        raise _Unknown(kind) from None


def holds(rel: sympy.Basic, point: dict) -> bool | None:
    """Whether ``rel`` holds at ``point``, exactly; None where it holds what :func:`value` does
    not evaluate."""
    try:
        return bool(value(rel, point))
    except _Unknown:
        return None


def _holds(facts: Iterable, point: dict) -> bool:
    return all(value(f, point) for f in facts)


def _sizes(symbols: Iterable) -> bool:
    """Whether each symbol stands for a size (a positive integer): only then are the candidates
    values it takes."""
    return all(s.is_integer and s.is_positive for s in symbols)


@functools.lru_cache(maxsize=4096)
def witness(facts: tuple) -> dict | None:
    """Values of the facts' symbols at which every fact holds (cached: the steps of one side of a
    branch ask under the same facts): each size the first candidate its own facts allow, then
    the facts on several sizes checked there. None where none is found this way."""
    symbols = set().union(*(f.free_symbols for f in facts))
    if not _sizes(symbols):
        return None
    alone: dict = {s: [] for s in symbols}
    joint = []
    for f in facts:
        (alone[next(iter(f.free_symbols))] if len(f.free_symbols) == 1 else joint).append(f)
    point = {}
    try:
        for s in sorted(symbols, key=str):
            point[s] = next((v for v in CANDIDATES if _holds(alone[s], {s: v})), None)
            if point[s] is None:
                return None
        return point if _holds(joint, point) else None
    except _Unknown:
        return None


def _point(facts: tuple, symbols: set) -> dict | None:
    """A point where every fact holds, the sizes no fact constrains at the first candidate."""
    point = witness(tuple(facts))
    if point is None:
        return None
    others = symbols - point.keys()
    if not _sizes(others):
        return None
    return {**point, **dict.fromkeys(others, CANDIDATES[0])}


def differ_somewhere(facts: tuple, a: sympy.Expr, b: sympy.Expr) -> bool:
    """True where a size is found at which every fact holds and ``a`` and ``b`` differ: then
    they are not equal wherever the facts hold. False says nothing (none was found)."""
    point = _point(facts, a.free_symbols | b.free_symbols)
    try:
        return point is not None and value(a, point) != value(b, point)
    except _Unknown:
        return False


def fails_somewhere(facts: tuple, cond: sympy.Basic) -> bool:
    """True where a size is found at which every fact holds and ``cond`` does not: then the
    facts do not imply it. False says nothing."""
    point = _point(facts, cond.free_symbols)
    try:
        return point is not None and not value(cond, point)
    except _Unknown:
        return False
