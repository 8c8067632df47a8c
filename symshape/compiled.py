"""Compile size expressions to plain integer code: exact and fast.

``floor(p/q)`` becomes ``p // q``; a fraction (from a ``view(-1, 320)``) becomes an exact integer
division of its numerator by its denominator (only reached where a requirement has already said
it divides); common subexpressions are computed once.

Two backends share one code generator: ``python`` (Python ints, for one size at a time) and
``torch`` (int64 tensors that broadcast, for every size of a grid at once). Both are exact: torch's
``//`` and ``%`` on integer tensors round towards minus infinity, as Python's do.
"""

from __future__ import annotations

import keyword
import math
import operator
from fractions import Fraction
from typing import Callable, Sequence

import sympy
import torch

from .dims import CeilSqrt, DoubleFloor, FloorDiv, IntSqrt, RelPosReach, as_expr, rel_pos_reach
from .requirements import RELATIONS

__all__ = ["compile_exprs", "compile_checked", "compile_method", "checks_magnitude", "magnitude", "BACKENDS"]

BACKENDS = ("python", "torch")


def _div(a: int, b: int) -> int:
    return a // b if b else 0


def _mod(a: int, b: int) -> int:
    return a % b if b else 0


def _divisible(a: int, b: int) -> bool:
    return b != 0 and a % b == 0


def _where(c, a, b):
    return a if c else b


def _not(a):
    return not a


def _sqrt_floor(n):
    return int(math.sqrt(n))


def _sqrt_ceil(n):
    return math.ceil(math.sqrt(n))


def _scaled(n, s):
    """torch's ``floor(double(n) * s)`` (``s`` a double; an exact Fraction size converts exactly)."""
    return math.floor(float(n) * s)


def _rel_pos(q, k):
    return rel_pos_reach(int(q), int(k))


def _torch_helpers() -> dict:
    def tensor(x):
        return x if isinstance(x, torch.Tensor) else torch.tensor(x)

    def nonzero(b):
        return torch.where(tensor(b) == 0, 1, b)

    def where(c, a, b):
        if not isinstance(c, torch.Tensor):
            return a if c else b
        return torch.where(c, a, b)

    def div(a, b):
        if not isinstance(b, torch.Tensor):
            return a // b if b else a * 0
        return torch.where(b == 0, 0, a // nonzero(b))

    def mod(a, b):
        if not isinstance(b, torch.Tensor):
            return a % b if b else a * 0
        return torch.where(b == 0, 0, a % nonzero(b))

    def divisible(a, b):
        if not isinstance(b, torch.Tensor):
            return (a % b == 0) if b else False
        return (b != 0) & (a % nonzero(b) == 0)

    def fold(fn, pyfn):
        def reduce(*args):
            if not any(isinstance(a, torch.Tensor) for a in args):
                return pyfn(args)
            out = tensor(args[0])
            for a in args[1:]:
                out = fn(out, tensor(a))
            return out
        return reduce

    def not_(a):
        return ~a if isinstance(a, torch.Tensor) else not a

    def root(rounding, pyfn):
        def rounded(n):  # torch's sqrt of a double is correctly rounded, as math.sqrt is
            if not isinstance(n, torch.Tensor):
                return pyfn(n)
            return rounding(torch.sqrt(n.double())).long()
        return rounded

    def scaled(n, s):  # int64 -> double as torch converts it, one double product, then the floor
        if not isinstance(n, torch.Tensor):
            return _scaled(n, s)
        return torch.floor(n.double() * s).long()

    def rel_pos(q, k):  # symshape.dims.rel_pos_reach, entry by entry: float32 products and sum, truncated
        if not any(isinstance(a, torch.Tensor) for a in (q, k)):
            return _rel_pos(q, k)
        q, k = tensor(q).long(), tensor(k).long()
        q_ratio = torch.clamp_min(k.double() / q.double(), 1.0)
        k_ratio = torch.clamp_min(q.double() / k.double(), 1.0)
        reach = ((q - 1).float() * q_ratio.float() + ((k - 1).double() * k_ratio).float()).long()
        return torch.where((q >= 1) & (k >= 1), reach, -1)

    return {"_div": div, "_fdiv": div, "_mod": mod, "_divisible": divisible, "_where": where, "_not": not_,
            "_max": fold(torch.maximum, max), "_min": fold(torch.minimum, min),
            "_sqrt_floor": root(torch.floor, _sqrt_floor), "_sqrt_ceil": root(torch.ceil, _sqrt_ceil),
            "_scaled": scaled, "_rel_pos": rel_pos}


class _Emitter:
    def __init__(self, names: dict[sympy.Symbol, str]):
        self.names = names
        self.lines: list[str] = []
        self.cache: dict[sympy.Basic, str] = {}

    def temp(self, expr: sympy.Basic, code: str) -> str:
        name = f"_t{len(self.cache)}"
        self.cache[expr] = name
        self.lines.append(f"    {name} = {code}")
        return name

    def emit(self, e) -> str:
        if isinstance(e, bool):
            return "True" if e else "False"
        if isinstance(e, int):
            return str(e)
        if e.is_Integer:
            return str(int(e))
        if e is sympy.true:
            return "True"
        if e is sympy.false:
            return "False"
        if e.is_Symbol:
            return self.names[e]
        hit = self.cache.get(e)
        if hit is not None:
            return hit
        return self.temp(e, self.code(e))

    def code(self, e) -> str:
        """The code computing ``e``: dispatched on the expression's class, along its MRO, the
        way the rules registry dispatches on a module's class."""
        for cls in type(e).__mro__:
            emit = _CODE.get(cls)
            if emit is not None:
                return emit(self, e)
        raise NotImplementedError(f"cannot compile {e!r}")

    def _floor_div(self, e) -> str:
        p, q = e.args
        return f"{self.emit(p)} // {int(q)}"

    def _arithmetic(self, e) -> str:
        num, den = e.as_numer_denom()
        if den != 1:
            return f"_div({self.emit(num)}, {self.emit(den)})"
        if isinstance(e, sympy.Add):
            return " + ".join(f"({self.emit(a)})" for a in e.args)
        if isinstance(e, sympy.Mul):
            return " * ".join(f"({self.emit(a)})" for a in e.args)
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp > 0:
            return f"({self.emit(e.base)}) ** {int(e.exp)}"
        raise NotImplementedError(f"cannot compile {e!r}")

    def _piecewise(self, e) -> str:
        code = "0"  # no case applies: a size torch refuses elsewhere
        for value, cond in reversed(e.args):
            code = f"_where({self.emit(cond)}, {self.emit(value)}, {code})"
        return code

    def _mod(self, e) -> str:
        return f"_mod({self.emit(e.args[0])}, {self.emit(e.args[1])})"

    def _extremum(self, e) -> str:
        fn = "_max" if isinstance(e, sympy.Max) else "_min"
        return f"{fn}({', '.join(self.emit(a) for a in e.args)})"

    def _floor(self, e) -> str:
        num, den = e.args[0].as_numer_denom()
        if not den.is_number:  # a size over a size (a // b of sizes): 0 where b is, as Python raises there
            return f"_fdiv({self.emit(num)}, {self.emit(den)})"
        return f"{self.emit(num)} // {self.emit(den)}"

    def _ceiling(self, e) -> str:
        num, den = e.args[0].as_numer_denom()
        if not den.is_number:
            return f"-_fdiv(-({self.emit(num)}), {self.emit(den)})"
        return f"-((-{self.emit(num)}) // {self.emit(den)})"

    def _root(self, e) -> str:
        fn = "_sqrt_ceil" if isinstance(e, CeilSqrt) else "_sqrt_floor"
        return f"{fn}({self.emit(e.args[0])})"

    def _double_floor(self, e) -> str:
        return f"_scaled({self.emit(e.args[0])}, {e.scale_text})"

    def _rel_pos(self, e) -> str:
        return f"_rel_pos({self.emit(e.args[0])}, {self.emit(e.args[1])})"

    def _relational(self, e) -> str:
        lhs, rhs = self.compared(e.lhs, e.rhs)
        return f"{lhs} {_RELATIONAL[type(e)]} {rhs}"

    def compared(self, lhs, rhs) -> tuple[str, str]:
        """Code for the two sides of a comparison, compared exactly: each as it is where both
        are integers; else the numerator of their difference against 0, over a positive number
        (``L < 4/3`` is ``3*L - 4 < 0``), or times a denominator of sizes, whose square is
        positive. (Each side's code rounds a quotient down: ``L < 4/3`` compared ``L`` with 1.)"""
        lhs, rhs = as_expr(lhs), as_expr(rhs)
        if lhs.is_integer and rhs.is_integer:
            return self.emit(lhs), self.emit(rhs)
        num, den = sympy.fraction(sympy.together(lhs - rhs))
        if not (den.is_number and den.is_positive):
            num = num * den
        return self.emit(num), "0"

    def _ite(self, e) -> str:
        c, a, b = e.args
        return f"_where({self.emit(c)}, {self.emit(a)}, {self.emit(b)})"

    def _not(self, e) -> str:
        return f"_not({self.emit(e.args[0])})"

    def _logic(self, e) -> str:
        op = " & " if isinstance(e, sympy.And) else " | "
        return op.join(f"({self.emit(a)})" for a in e.args)

    def accepts(self, r) -> str:
        """Code for "torch accepts" under requirement ``r`` (and the fast path it skips to)."""
        ordered = r.relation in (">=", "==", "!=")
        lhs, rhs = self.compared(r.lhs, r.rhs) if ordered else (self.emit(r.lhs), self.emit(r.rhs))
        code = RELATIONS[r.relation].code.format(lhs=lhs, rhs=rhs)
        if r.unless is not None:
            code = f"({code} | {self.accepts(r.unless)})"
        return code


_RELATIONAL = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Ge: ">=", sympy.Gt: ">", sympy.Le: "<=", sympy.Lt: "<"}

#: expression class -> the _Emitter method writing its code
_CODE = {
    FloorDiv: _Emitter._floor_div,
    IntSqrt: _Emitter._root, CeilSqrt: _Emitter._root, DoubleFloor: _Emitter._double_floor,
    RelPosReach: _Emitter._rel_pos,
    sympy.Add: _Emitter._arithmetic, sympy.Mul: _Emitter._arithmetic, sympy.Pow: _Emitter._arithmetic,
    sympy.Rational: _Emitter._arithmetic,
    sympy.Piecewise: _Emitter._piecewise,
    sympy.Mod: _Emitter._mod,
    sympy.Max: _Emitter._extremum, sympy.Min: _Emitter._extremum,
    sympy.floor: _Emitter._floor,
    sympy.ceiling: _Emitter._ceiling,
    **{cls: _Emitter._relational for cls in _RELATIONAL},
    sympy.And: _Emitter._logic, sympy.Or: _Emitter._logic,
    sympy.logic.boolalg.ITE: _Emitter._ite, sympy.Not: _Emitter._not,
}


def _exact_div(a, b):
    return Fraction(a, b) if b else Fraction(0)


def _namespace(backend: str, exact: bool) -> dict:
    if backend == "torch":
        if exact:
            raise ValueError("exact=True keeps Fractions, which only the python backend has")
        return _torch_helpers()
    if backend != "python":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return {"_div": _exact_div if exact else _div, "_fdiv": _div, "_mod": _mod, "_divisible": _divisible,
            "_where": _where, "_not": _not, "_max": max, "_min": min,
            "_sqrt_floor": _sqrt_floor, "_sqrt_ceil": _sqrt_ceil, "_scaled": _scaled,
            "_rel_pos": _rel_pos}


def _define(src: str, namespace: dict):
    """The function ``_compiled`` that ``src`` defines, with its source kept as ``.source``."""
    exec(compile(src, "<symshape-compiled>", "exec"), namespace)  # noqa: S102 - our own code
    fn = namespace["_compiled"]
    fn.source = src
    return fn


def _build(symbols, lines, result: str, backend: str, exact: bool):
    names = ", ".join(f"_s{i}" for i in range(len(symbols)))
    src = "\n".join([f"def _compiled({names}):", *lines, f"    return {result}"])
    return _define(src, _namespace(backend, exact))


def compile_exprs(symbols: Sequence[sympy.Symbol], exprs: Sequence, exact: bool = False,
                  backend: str = "python") -> Callable[..., list]:
    """A function ``f(*values_of_symbols) -> [value of each expr]``.

    ``backend="python"`` computes with Python ints; ``backend="torch"`` also takes int64 tensors
    that broadcast against each other (one value per element). ``exact=True`` (python only)
    keeps fractions exact (``Fraction``) instead of dividing with ``//``; floors stay floors.
    """
    em = _Emitter({s: f"_s{i}" for i, s in enumerate(symbols)})
    results = [em.emit(as_expr(e)) for e in exprs]
    if len(results) <= _LISTED:
        return _build(symbols, em.lines, f"[{', '.join(results)}]", backend, exact)
    # each distinct value returned once, the list taken from them by position: a ViT's every
    # step's sizes are thousands of names, and a literal list of them most of what compile() reads
    distinct = list(dict.fromkeys(results))
    index = {r: i for i, r in enumerate(distinct)}
    fn = _build(symbols, em.lines, f"({', '.join(distinct)},)", backend, exact)
    pick = operator.itemgetter(*(index[r] for r in results))

    def compiled(*values):
        return list(pick(fn(*values)))

    compiled.source = fn.source
    return compiled


#: the most values :func:`compile_exprs` returns as one literal list
_LISTED = 64


def compile_checked(symbols: Sequence[sympy.Symbol], requirements: Sequence, exprs: Sequence,
                    backend: str = "python") -> Callable[..., tuple]:
    """A function ``f(*values_of_symbols) -> (accepted, [value of each expr])``: ``accepted`` is
    whether every requirement (:class:`~symshape.requirements.Requirement`) holds, a bool or,
    with the torch backend and tensor arguments, a bool tensor. Values are computed at every
    size; where ``accepted`` is false they mean nothing."""
    em = _Emitter({s: f"_s{i}" for i, s in enumerate(symbols)})
    checks = [em.accepts(r) for r in requirements]
    results = [em.emit(as_expr(e)) for e in exprs]
    lines = list(em.lines)
    if backend == "python":
        # Python's `and` stops at the first refusal
        ok = " and ".join(checks) or "True"
    else:
        ok = " & ".join(checks) or "True"
    return _build(symbols, lines, f"({ok}), [{', '.join(results)}]", backend, False)


def compile_method(params: Sequence[str], symbols: Sequence[sympy.Symbol], requirements: Sequence,
                   expr, constants: dict | None = None, bound: int | None = None) -> Callable[..., int]:
    """A method ``m(self, <params>=None)`` returning ``expr`` when every argument is a positive
    int (at most ``bound``, if given) and every requirement holds, else ``self._slow(<params>)``:
    the whole fast path is one Python call with the checks and the formula inline. ``params``
    name the ``symbols`` (Python identifiers, not starting with an underscore); ``constants``
    maps other symbols to fixed ints (the batch size)."""
    for p in params:
        if not p.isidentifier() or keyword.iskeyword(p) or p.startswith("_") or p == "self":
            raise ValueError(f"cannot use {p!r} as a parameter name")
    names = dict(zip(symbols, params))
    em = _Emitter({**names, **{s: str(int(v)) for s, v in (constants or {}).items()}})
    checks = [em.accepts(r) for r in requirements]
    value = em.emit(as_expr(expr))
    # a requirement `H >= c` with c >= 1 already says H is positive
    implied = {names[r.lhs] for r in requirements if r.lhs in names and r.relation == ">="
               and r.unless is None and r.rhs.is_Integer and r.rhs >= 1}
    typed = " and ".join([f"_type({p}) is _int" for p in params]
                         + [f"{p} >= 1" for p in params if p not in implied]
                         + ([f"{p} <= {int(bound)}" for p in params] if bound is not None else [])) or "True"
    signature = ", ".join(["self", "/", *(f"{p}=None" for p in params), "*_more", "**_named"])
    given = "".join(p + ", " for p in params)
    src = [f"def _compiled({signature}):",
           f"    if _more or _named:",
           f"        return self._slow(({given}*_more,), _named)",
           f"    if {typed}:",
           *("    " + line for line in em.lines),
           f"        if {' and '.join(checks) or 'True'}:",
           f"            return {value}",
           f"    return self._slow(({''.join(p + ', ' for p in params)}))"]
    return _define("\n".join(src), {**_namespace("python", False), "_type": type, "_int": int})


def magnitude(expr, top: dict) -> int | None:
    """An upper bound on the absolute value of ``expr`` and of every value computed on the way,
    for sizes up to ``top`` (symbol -> largest value); None where it is not bounded so."""
    if expr.is_Integer:
        return abs(int(expr))
    if expr.is_Rational:
        return abs(int(expr.p))
    if expr.is_Symbol:
        return int(top[expr]) if expr in top else None
    if isinstance(expr, RelPosReach):  # below 2*max(q, k)
        parts = [magnitude(a, top) for a in expr.args]
        return None if any(p is None for p in parts) else 2 * max(parts) + 1
    if isinstance(expr, DoubleFloor):  # floor(n*s) <= n*s
        n = magnitude(expr.args[0], top)
        return None if n is None else math.ceil(n * Fraction(int(expr.args[1].p), int(expr.args[1].q))) + 1
    if isinstance(expr, sympy.Piecewise):
        exprs = [e for e, _ in expr.args]
        exprs += [side for _, c in expr.args if isinstance(c, sympy.Basic)
                  for rel in c.atoms(sympy.core.relational.Relational) for side in (rel.lhs, rel.rhs)]
    else:
        exprs = [a for a in expr.args if isinstance(a, sympy.Expr)]
    parts = [magnitude(a, top) for a in exprs]
    if any(p is None for p in parts):
        return None
    if isinstance(expr, sympy.Add):
        return sum(parts)
    if isinstance(expr, sympy.Mul):
        out = 1
        for p in parts:
            out *= max(p, 1)
        return max(out, *parts)
    if isinstance(expr, sympy.Pow) and expr.exp.is_Integer and expr.exp >= 0:
        return max(parts[0] ** int(expr.exp), parts[0])
    if isinstance(expr, (sympy.Piecewise, sympy.Min, sympy.Max, sympy.Mod, FloorDiv, IntSqrt, CeilSqrt)):
        return max(parts + [1])
    return None


def checks_magnitude(requirements, top: dict) -> int | None:
    """:func:`magnitude` over both sides of every requirement and of each one's ``unless`` (the
    checks compute in int64 too): the largest, or None where one is not bounded."""
    reach = 0
    for r in requirements:
        while r is not None:
            for side in (r.lhs, r.rhs):
                bound = magnitude(as_expr(side), top)
                if bound is None:
                    return None
                reach = max(reach, bound)
            r = r.unless
    return reach
