"""torch.export's guards read as requirements on symshape's sizes.

torch states a guard as Python text over its inputs (``(L['x'].size()[3] // 32) != 1``), in its
``Constraints violated`` errors and in an exported program's ``_guards_code``. :class:`GuardReader`
parses such text with ``ast.parse`` and translates the few forms a shape guard takes; it never
evaluates it. A form it does not know raises :class:`Unparsed`.
"""

from __future__ import annotations

import ast
import re
from typing import Mapping

import sympy

from .dims import FloorDiv, as_expr, divisors, floor_div, maximum, minimum
from .requirements import Requirement

__all__ = ["GuardReader", "Unparsed", "floor_divisors", "violated_guards"]


class Unparsed(Exception):
    """A guard in a form this reader does not translate."""


_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _requirement(lhs, op: str, rhs, text: str) -> Requirement:
    if op in ("==", "!=", ">="):
        return Requirement(lhs, op, rhs, text)
    if op == ">":
        return Requirement(lhs, ">=", rhs + 1, text)
    if op == "<=":
        return Requirement(rhs, ">=", lhs, text)
    return Requirement(rhs, ">=", lhs + 1, text)  # <


class GuardReader:
    """One of torch.export's guard strings (``(L['x'].size()[3] // 32) != 1``) as requirements
    over symshape's size symbols. The text is parsed (``ast.parse``), never evaluated: only
    integer arithmetic, comparisons, ``and``/``or``/``not``, ``max``/``min`` and an input's
    ``size()[i]`` translate; anything else leaves the guard unsolved."""

    def __init__(self, dims: Mapping[tuple, sympy.Expr], names: Mapping[str, sympy.Expr] | None = None):
        #: (input key, dim index) -> the size there (a symbol or a constant)
        self.dims = dims
        #: a root Dim's name -> its value in sizes (torch names a Dim by its name in some messages)
        self.names = dict(names or {})

    def dnf(self, text: str, holds: bool) -> list[list[Requirement]]:
        """The sizes where the guard holds (``holds``) or fails, as a union of conjunctions."""
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError as e:
            raise Unparsed(str(e)) from None
        return self._bool(tree, holds, text)

    def _bool(self, node, holds: bool, text: str) -> list[list[Requirement]]:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self._bool(node.operand, not holds, text)
        if isinstance(node, ast.BoolOp):
            parts = [self._bool(v, holds, text) for v in node.values]
            conjunctive = isinstance(node.op, ast.And) == holds
            if not conjunctive:
                return [c for p in parts for c in p]
            out = [[]]
            for p in parts:
                out = [a + b for a in out for b in p]
            return out
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            op = _COMPARE[type(node.ops[0])]
            left, right = node.left, node.comparators[0]
            if _is_infinity(right) or _is_infinity(left):  # x <= IntInfinity(): a range with no end
                if (op in ("<", "<=")) == _is_infinity(right) and op not in ("==", "!="):
                    return [[]] if holds else []
                raise Unparsed("a comparison with infinity")
            divides = self._divides(left, op, right, holds, text)
            if divides is not None:
                return divides
            lhs, rhs = self._int(left), self._int(right)
            return [[_requirement(lhs, op if holds else _NEGATED[op], rhs, text)]]
        raise Unparsed(ast.dump(node)[:80])

    def _divides(self, left, op: str, right, holds: bool, text: str) -> list[list[Requirement]] | None:
        """``c % e == 0`` (or ``!= 0``) for a constant ``c`` and a size expression ``e`` (torch's
        guard of a reshape): ``e`` is one of ``c``'s divisors (``e >= 1``: a size)."""
        if not (isinstance(left, ast.BinOp) and isinstance(left.op, ast.Mod) and op in ("==", "!=")
                and isinstance(right, ast.Constant) and right.value == 0
                and isinstance(left.left, ast.Constant) and isinstance(left.left.value, int)
                and left.left.value > 0):
            return None
        e = self._int(left.right)
        if e.is_Integer:
            return None
        is_divisor = (op == "==") == holds
        values = divisors(left.left.value)
        if is_divisor:  # e == d for one of the divisors
            return [[Requirement(e, "==", d, text)] for d in values]
        return [[Requirement(e, "!=", d, text) for d in values]]

    def _int(self, node) -> sympy.Expr:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return sympy.Integer(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self._int(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = self._int(node.left), self._int(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div) and a.is_Integer and b.is_Integer and b != 0:
                return sympy.Rational(int(a), int(b))
            if isinstance(node.op, ast.FloorDiv) and b.is_Integer and b > 0:
                return floor_div(a, int(b))
            if isinstance(node.op, ast.Mod) and b.is_Integer and b > 0:
                return a - b * floor_div(a, int(b))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min")
                and node.args and not node.keywords):
            args = [self._int(a) for a in node.args]
            pick = maximum if node.func.id == "max" else minimum
            out = args[0]
            for a in args[1:]:
                out = pick(out, a)
            return out
        if isinstance(node, ast.Subscript):
            return self._size(node)
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.names[node.id]
        raise Unparsed(ast.dump(node)[:80])

    def _size(self, node) -> sympy.Expr:
        # L['x'].size()[3], L['x'].shape[3], L['args'][0].size()[3]
        index = node.slice
        if not (isinstance(index, ast.Constant) and isinstance(index.value, int)):
            raise Unparsed("index")
        base = node.value
        if isinstance(base, ast.Call) and not base.args and isinstance(base.func, ast.Attribute) \
                and base.func.attr == "size":
            base = base.func.value
        elif isinstance(base, ast.Attribute) and base.attr == "shape":
            base = base.value
        else:
            raise Unparsed("not a size")
        path = []
        while isinstance(base, ast.Subscript) and isinstance(base.slice, ast.Constant):
            path.append(base.slice.value)
            base = base.value
        if not (isinstance(base, ast.Name) and base.id == "L"):
            raise Unparsed("not an input")
        key = (*reversed(path), index.value)
        if key not in self.dims:
            raise Unparsed(f"unknown input dim {key}")
        return self.dims[key]


def _is_infinity(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "IntInfinity"
            and not node.args and not node.keywords)


_VIOLATED = re.compile(r"satisfy the generated guard (.+?)\.?(?=\s+-\s|\s+(?:The|Suggested|For|If)\b|\s*$)", re.S)


#: torch's report of a violation can fail itself on a guard that is not an equality
#: (pytorch/pytorch#121286): the guard, in the Dims' names, is then in that message
_UNREPORTED = re.compile(r"Expected op to be '==', got \S+ for (.+?)\s*$", re.S)


def violated_guards(message: str) -> list[str]:
    """The guards a ``Constraints violated`` error of torch.export names (the order kept)."""
    found = _VIOLATED.findall(message) or _UNREPORTED.findall(message)
    return list(dict.fromkeys(g.strip() for g in found))


def floor_divisors(e: sympy.Expr) -> list[int]:
    return [int(f.args[1]) for f in as_expr(e).atoms(FloorDiv) if f.args[1].is_Integer]
