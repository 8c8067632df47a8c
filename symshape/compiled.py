"""Compile size expressions to plain Python integer code: exact and fast.

``floor(p/q)`` becomes ``p // q``; a fraction (from a ``view(-1, 320)``) becomes an exact integer
division of its numerator by its denominator (only reached where a requirement has already said
it divides); common subexpressions are computed once.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Sequence

import sympy

from .dims import FloorDiv

__all__ = ["compile_exprs"]


def _div(a: int, b: int) -> int:
    return a // b if b else 0


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
        if isinstance(e, FloorDiv):
            p, q = e.args
            return f"{self.emit(p)} // {int(q)}"
        if isinstance(e, (sympy.Add, sympy.Mul, sympy.Pow)) or e.is_Rational:
            num, den = e.as_numer_denom()
            if den != 1:
                return f"_div({self.emit(num)}, {self.emit(den)})"
            if isinstance(e, sympy.Add):
                return " + ".join(f"({self.emit(a)})" for a in e.args)
            if isinstance(e, sympy.Mul):
                return " * ".join(f"({self.emit(a)})" for a in e.args)
            if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp > 0:
                return f"({self.emit(e.base)}) ** {int(e.exp)}"
        if isinstance(e, sympy.Piecewise):
            code = "None"
            for value, cond in reversed(e.args):
                code = f"({self.emit(value)} if {self.emit(cond)} else {code})"
            return code
        if isinstance(e, sympy.Mod):
            return f"{self.emit(e.args[0])} % {self.emit(e.args[1])}"
        if isinstance(e, (sympy.Max, sympy.Min)):
            fn = "max" if isinstance(e, sympy.Max) else "min"
            return f"{fn}({', '.join(self.emit(a) for a in e.args)})"
        if isinstance(e, sympy.floor):
            num, den = e.args[0].as_numer_denom()
            return f"{self.emit(num)} // {self.emit(den)}"
        if isinstance(e, sympy.ceiling):
            num, den = e.args[0].as_numer_denom()
            return f"-((-{self.emit(num)}) // {self.emit(den)})"
        ops = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Ge: ">=", sympy.Gt: ">", sympy.Le: "<=", sympy.Lt: "<"}
        for cls, op in ops.items():
            if isinstance(e, cls):
                return f"{self.emit(e.lhs)} {op} {self.emit(e.rhs)}"
        if isinstance(e, sympy.And):
            return " and ".join(f"({self.emit(a)})" for a in e.args)
        if isinstance(e, sympy.Or):
            return " or ".join(f"({self.emit(a)})" for a in e.args)
        raise NotImplementedError(f"cannot compile {e!r}")


def _exact_div(a, b):
    return Fraction(a, b) if b else Fraction(0)


def compile_exprs(symbols: Sequence[sympy.Symbol], exprs: Sequence, exact: bool = False) -> Callable[..., list]:
    """A function ``f(*values_of_symbols) -> [value of each expr]`` computed with Python ints.

    ``exact=True`` keeps fractions exact (``Fraction``) instead of dividing with ``//``; floors
    stay floors either way.
    """
    names = {s: f"_s{i}" for i, s in enumerate(symbols)}
    em = _Emitter(names)
    results = [em.emit(sympy.sympify(e)) for e in exprs]
    src = [f"def _compiled({', '.join(names.values())}):", *em.lines, f"    return [{', '.join(results)}]"]
    namespace = {"_div": _exact_div if exact else _div}
    exec(compile("\n".join(src), "<symshape-compiled>", "exec"), namespace)  # noqa: S102 - our own code
    fn = namespace["_compiled"]
    fn.source = "\n".join(src)
    return fn
