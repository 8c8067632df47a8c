"""The inverse problem: which input sizes the model accepts, which give a flat size, which round.

Every requirement torch checks (a kernel must fit, a Linear's in_features must match, shapes
must agree at a cat ...) is a condition on the input sizes. Conditions on one size are solved
exactly as quasi-polynomials (:mod:`symshape.quasi`); conditions that couple sizes are solved
when they separate:

* a product ``c * g1(H) * g2(W) == K`` splits through the divisors of ``K/c``, each factor
  value giving one box (an interval per size, a preimage of a monotone floor map);
* ``c * g1 * g2 >= K`` is a staircase of boxes; ``!=`` is a box difference;
* ``c * g1 * g2`` divisible by ``m`` splits by ``gcd(g1, m)``;
* a sum ``g1(H) + g2(W) >= K`` of non-negative terms is a staircase too;
* ``c * f1(H) * f2(W) == d * g1(H) * g2(W)`` where one side dominates size by size
  (``f_n >= k_n * g_n``, ``prod(k_n) = d/c``) holds exactly where each ``f_n == k_n * g_n``;
* a size that the other requirements confine to a few values is tried value by value;
* ``f(H) == g(W)`` with each side linear on residue classes (a tensor added to its transpose
  after a stride-2 conv: ``floor((H - 1)/2) == floor((W - 1)/2)``) holds on lines: for each pair
  of classes, a linear Diophantine equation gives ``W = slope*H + offset`` on one class of H, a
  box with a :class:`~symshape.sizes.Tie`. Later conditions substitute the tie and solve on H.

Anything else raises :class:`~symshape.quasi.Unsolvable` naming the requirement: symshape does
not sample sizes to answer.
"""

from __future__ import annotations

import functools
import math
from functools import partial
from dataclasses import replace
from fractions import Fraction
import numbers
from typing import Iterable, Sequence

import sympy
import torch

from .compiled import checks_magnitude, compile_checked, compile_exprs
from .dims import (FloorDiv, as_expr, without_ite, batch_symbol, divisors, floor_div, integer_polynomial, positive_int,
                   size_symbol)
from .errors import InvalidArgument
from .quasi import MAX_PERIOD, Unsolvable, quasi
from .chains import settled_extrema, settled_tails
from .residues import product_residues
from .requirements import RELATIONS, Requirement, by_cases, cases_of, innermost_cases, remainder_of, unless_not
from .sizes import IntSet, SizeSet, Tie

__all__ = ["Unsolvable", "divisible_set", "exact_sizes", "smallest_tied", "solve_flat", "solve_requirements", "valid_sizes"]

Box = dict  # symbol name -> IntSet

#: the most boxes a staircase (a product or sum >= K) may produce before symshape gives up
MAX_STAIRS = 20000


def _signed_divisors(n: int) -> list[int]:
    pos = divisors(n)
    return pos + [-d for d in pos]


# -- one size ---------------------------------------------------------------------------------


#: the most Min/Max a condition on one size may hold for the solver to split it into cases
MAX_EXTREMA_ONE_SIZE = 16


@functools.lru_cache(maxsize=4096)
def _univariate(expr: sympy.Expr, op: str, value, x: sympy.Symbol) -> IntSet:
    """``{x >= 1 : expr(x) op value}``, with Piecewise (broadcasting), Min and Max split into their
    cases (cached: the sides of a branch ask the same conditions many times over)."""
    pw = innermost_cases([expr])
    if pw is not None and len(expr.atoms(sympy.Min, sympy.Max)) > MAX_EXTREMA_ONE_SIZE:
        raise Unsolvable(f"{expr}: more than {MAX_EXTREMA_ONE_SIZE} Min/Max to split into cases")
    if pw is not None:
        out, rest = IntSet.empty(), IntSet.all()
        for branch, cond in cases_of(pw):
            where = rest & _condition(cond, x)
            out = out | (where & _univariate(expr.xreplace({pw: branch}), op, value, x))
            rest = rest - where
        return out
    if not expr.has(x):
        v = as_expr(expr)
        ok = {">=": v >= value, "==": v == value, "!=": v != value}[op]
        return IntSet.all() if bool(ok) else IntSet.empty()
    return quasi(as_expr(expr), x).solve(op, value)


def _condition(cond, x) -> IntSet:
    cond = without_ite(cond)
    if isinstance(cond, sympy.Not) and isinstance(cond.args[0], sympy.Rel):
        cond = cond.args[0].negated
    elif isinstance(cond, sympy.Not):
        return IntSet.all() - _condition(cond.args[0], x)
    if cond is sympy.true:
        return IntSet.all()
    if cond is sympy.false:
        return IntSet.empty()
    if isinstance(cond, sympy.And):
        out = IntSet.all()
        for c in cond.args:
            out = out & _condition(c, x)
        return out
    if isinstance(cond, sympy.Or):
        out = IntSet.empty()
        for c in cond.args:
            out = out | _condition(c, x)
        return out
    rel = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Ge: ">=", sympy.Gt: ">", sympy.Le: "<=", sympy.Lt: "<"}
    for cls, op in rel.items():
        if isinstance(cond, cls):
            diff = cond.lhs - cond.rhs
            if op in (">", "<", "<="):
                q = quasi(diff, x)
                return q.solve(op, 0)
            return _univariate(diff, op, 0, x)
    raise Unsolvable(f"condition {cond}")


def divisible_set(expr, m: int, x) -> IntSet:
    """``{x : m divides expr(x)}``."""
    if m == 1:
        return IntSet.all()
    return _univariate(expr - m * floor_div(expr, m), "==", 0, x)


#: the most values of a class :func:`size_divisible_set` reads one by one
_MAX_DIVISOR_READS = 1 << 16


def size_divisible_set(expr, divisor, x) -> IntSet:
    """``{x : divisor(x) divides expr(x)}`` for a divisor that depends on ``x`` (a reshape's
    ``-1`` over a window count: SAM's ``128*floor(H/16) - 64`` by ``2*floor(H/16) - 1``, Swin V2's
    ``768*floor(b/8)`` by ``b``). Where the quotient is an integer polynomial, wherever the divisor
    is not 0; else class by class of the two expressions' common period, on which both are
    linear, ``f = a1*k + b1`` and ``g = a2*k + b2``: ``f | g`` implies ``f | a1*g - a2*f``, the
    number ``D = a1*b2 - a2*b1``, so where ``D != 0`` only the ``k`` where ``f`` is one of
    ``D``'s divisors can hold, each read; where ``D == 0``, ``g/f`` is ``a2/a1`` wherever ``f != 0``; a
    constant ``f = c`` divides ``g`` on residues of ``k`` modulo ``c``. Anything else (a divisor
    of higher degree) is Unsolvable."""
    expr, divisor = as_expr(expr), as_expr(divisor)
    if integer_polynomial(sympy.cancel(expr / divisor)):
        return _univariate(divisor, "!=", 0, x)
    qf, qg = quasi(divisor, x), quasi(expr, x)
    if qf.degree > 1 or qg.degree > 1:
        raise Unsolvable(f"{expr} divisible by {divisor}: a size-dependent divisor of degree above 1")
    period = math.lcm(qf.period, qg.period)
    if period > MAX_PERIOD:
        raise Unsolvable(f"{expr} divisible by {divisor}: a period of {period}, beyond the solver's {MAX_PERIOD}")
    fn = compile_exprs([x], [divisor, expr], exact=True)
    out = IntSet.empty()
    for r in range(period):
        out = out | _divisible_class(fn, r, period)
    return out


def _divisible_class(fn, r: int, period: int) -> IntSet:
    """The sizes ``x = r + k*period`` (``x >= 1``) where the first of ``fn``'s values divides the
    second (see :func:`size_divisible_set`)."""
    k0 = 0 if r >= 1 else 1
    points = [tuple(int(v) for v in fn(r + k * period)) for k in range(k0, k0 + 4)]
    (f0, g0), (f1, g1) = points[:2]
    a1, a2 = f1 - f0, g1 - g0
    b1, b2 = f0 - a1 * k0, g0 - a2 * k0
    if any((a1 * k + b1, a2 * k + b2) != p for k, p in zip(range(k0, k0 + 4), points)):
        raise Unsolvable(f"the divisor or the dividend is not linear on x = {r} (mod {period})")

    def size(k: int) -> int:
        return r + k * period

    if a1 == 0:  # a constant divisor on the class: g's residues modulo it repeat every |b1| values of k
        if b1 == 0 or abs(b1) > _MAX_DIVISOR_READS:
            if b1 == 0:
                return IntSet.empty()
            raise Unsolvable(f"a divisor of {b1} on x = {r} (mod {period}): too many residues to read")
        m = abs(b1)
        good = [k for k in range(k0, k0 + m) if (a2 * k + b2) % m == 0]
        return IntSet.periodic(size(k0), period * m, [size(k) for k in good]) if good else IntSet.empty()
    d = a1 * b2 - a2 * b1
    if d == 0:  # g = (a2/a1)*f: wherever f != 0, divisible exactly when a1 divides a2
        if a2 % a1:
            return IntSet.empty()
        zero = Fraction(-b1, a1)
        tail = IntSet.periodic(size(k0), period, [r])
        return tail - IntSet.of([size(int(zero))]) if zero.denominator == 1 and zero >= k0 else tail
    if sympy.divisor_count(abs(d)) > _MAX_DIVISOR_READS:
        raise Unsolvable(f"a divisor that divides {d} on x = {r} (mod {period}): too many divisors to read")
    ks = {(sign * int(e) - b1) // a1 for e in sympy.divisors(abs(d)) for sign in (1, -1)
          if (sign * int(e) - b1) % a1 == 0}  # f(k) is one of d's divisors, of either sign
    return IntSet.of(size(k) for k in ks if k >= k0 and (a2 * k + b2) % (a1 * k + b1) == 0)


def _divisible_on_class(expr, m: int, x, domain: IntSet) -> IntSet | None:
    """``{x in domain : m divides expr(x)}`` where ``domain`` is one residue class ``x = r (mod
    P)`` from some size on and, on it, every floor in ``expr`` is exact (``floor((a*x + c)/q)``
    with ``q | a*P``: its remainder is the same for the whole class) so ``expr`` is linear there
    -- as in a chain of strided layers, each required not to round: one congruence (the Chinese
    remainder theorem), whatever the period. None where that does not apply."""
    if domain.head or len(domain.residues) != 1:
        return None
    r, P = next(iter(domain.residues)), domain.period
    linear = _on_class(as_expr(expr), x, r, P)
    if linear is None:
        return None
    poly = sympy.Poly(linear, x) if linear.has(x) else None
    if poly is not None and poly.degree() != 1:
        return None
    a, b = (poly.all_coeffs() if poly is not None else [sympy.Integer(0), linear])
    den = math.lcm(int(sympy.Rational(a).q), int(sympy.Rational(b).q))
    A, B = int(a * den), int(b * den)  # expr = (A*x + B) / den on the class, an integer there
    M = m * den  # m | (A*x + B)/den  <=>  A*x + B = 0 (mod m*den)
    g = math.gcd(A, M)
    if B % g:
        return IntSet.empty()
    step = M // g
    x0 = (-B // g) * pow(A // g, -1, step) % step if step > 1 else 0
    return domain & IntSet.congruent(x0, step, domain.start)


def _on_class(e, x, r: int, P: int):
    """``e`` with each floor made exact on ``x = r (mod P)`` (None where one is not: a floor
    whose remainder varies over the class, or a numerator that is not linear in ``x``)."""
    if not e.has(x) or e == x:
        return e
    if isinstance(e, FloorDiv):
        p = _on_class(e.args[0], x, r, P)
        q = int(e.args[1])
        if p is None:
            return None
        poly = sympy.Poly(p, x)
        if poly.degree() > 1:
            return None
        a, c = (poly.all_coeffs() if poly.degree() == 1 else [sympy.Integer(0), p])
        if not (sympy.Rational(a).q == 1 and sympy.Rational(c).q == 1) or (int(a) * P) % q:
            return None
        rem = (int(a) * r + int(c)) % q  # the same for every x in the class
        return (p - rem) / q
    if isinstance(e, (sympy.Add, sympy.Mul)):
        args = [_on_class(a, x, r, P) for a in e.args]
        return None if any(a is None for a in args) else sympy.expand(e.func(*args))
    if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) >= 0:
        base = _on_class(e.base, x, r, P)
        return None if base is None else sympy.expand(base ** e.exp)
    return None


def _gcd_is(expr, a: int, m: int, x) -> IntSet:
    """``{x : gcd(expr(x), m) == a}`` for a divisor ``a`` of ``m``."""
    out = divisible_set(expr, a, x)
    for b in divisors(m):
        if b > a and b % a == 0:
            out = out - divisible_set(expr, b, x)
    return out


# -- several sizes ----------------------------------------------------------------------------


def _integer_valued(e) -> bool:
    """Whether ``e`` is an integer at every size (:func:`~symshape.dims.integer_polynomial`, and
    ``Min``/``Max``/``Piecewise`` of such): what the product and sum solvers below assume of each
    per-size term. ``floor(H/32)/floor(H/16)`` is not (``1/2`` at ``H = 768``), and a product
    of such terms may be a fraction, or an integer no divisor enumeration finds."""
    if integer_polynomial(e):
        return True
    if isinstance(e, (sympy.Min, sympy.Max)):
        return all(_integer_valued(a) for a in e.args)
    if isinstance(e, sympy.Piecewise):
        return all(_integer_valued(piece) for piece, _ in e.args)
    return False


def _split_product(expr: sympy.Expr, names: Sequence[str]):
    """``expr = c * prod(g_i(x_i))`` -> (c, {name: g}) or None when some factor mixes sizes or is
    not an integer at every size (a quotient of sizes: :func:`_integer_valued`)."""
    c, factors = sympy.Integer(1), {}
    for f in sympy.Mul.make_args(expr):
        syms = [s for s in f.free_symbols if s.name in names]
        if not syms:
            c *= f
        elif not _integer_valued(f):
            return None
        elif len(syms) == 1:
            n = syms[0].name
            factors[n] = factors.get(n, sympy.Integer(1)) * f
        else:
            return None
    return c, factors


def _split_sum(expr: sympy.Expr, names: Sequence[str]):
    """``expr = c + sum(g_i(x_i))`` -> (c, {name: g}) or None (a term that mixes sizes, or one
    that is not an integer at every size)."""
    c, terms = sympy.Integer(0), {}
    for t in sympy.Add.make_args(expr):
        syms = [s for s in t.free_symbols if s.name in names]
        if not syms:
            c += t
        elif not _integer_valued(t):
            return None
        elif len(syms) == 1:
            n = syms[0].name
            terms[n] = terms.get(n, sympy.Integer(0)) + t
        else:
            return None
    return c, terms


def _at_least_everywhere(g, lo: int, domain: IntSet, x) -> bool:
    return domain.is_subset(_univariate(g, ">=", lo, x))


def _product_eq(factors: list[tuple[str, sympy.Expr]], target: int, box: Box) -> list[Box]:
    """Boxes inside ``box`` where ``prod(g_i) == target`` (target an int)."""
    if not factors:
        return [dict(box)] if target == 1 else []
    (name, g), rest = factors[0], factors[1:]
    x = size_symbol(name)
    if target == 0:
        out = []
        here = box[name] & _univariate(g, "==", 0, x)
        if not here.is_empty:
            out.append({**box, name: here})
        others = box[name] - here
        if not others.is_empty:
            out += _product_eq(rest, 0, {**box, name: others})
        return out
    if not rest:
        here = box[name] & _univariate(g, "==", target, x)
        return [] if here.is_empty else [{**box, name: here}]
    nonneg = _at_least_everywhere(g, 0, box[name], x)
    out = []
    for v in divisors(target) if nonneg else _signed_divisors(target):
        here = box[name] & _univariate(g, "==", v, x)
        if not here.is_empty:
            out += _product_eq(rest, target // v, {**box, name: here})
    return out


def _staircase(terms: list[tuple[str, sympy.Expr]], target: int, box: Box, budget: list[int],
               lowest: int, rest_target) -> list[Box]:
    """Boxes where ``combine(g_i) >= target`` for a product (``lowest`` 1, ``rest_target`` =
    ceil(target / v)) or a sum (``lowest`` 0, ``target - v``) of terms that are all at least
    ``lowest`` on the box (checked by the caller): the first term is either already large
    enough, or one of the values below ``target`` and the rest make up the difference."""
    if target <= lowest:
        return [dict(box)]
    (name, g), rest = terms[0], terms[1:]
    x = size_symbol(name)
    big = box[name] & _univariate(g, ">=", target, x)
    out = [] if big.is_empty else [{**box, name: big}]
    if not rest:
        return out
    for v in range(lowest, target):
        budget[0] -= 1
        if budget[0] < 0:
            raise Unsolvable(f"a condition >= {target} needs more than {MAX_STAIRS} boxes")
        here = box[name] & _univariate(g, "==", v, x)
        if not here.is_empty:
            out += _staircase(rest, rest_target(target, v), {**box, name: here}, budget, lowest, rest_target)
    return out


def _product_ge(factors, target: int, box: Box) -> list[Box]:
    return _staircase(factors, target, box, [MAX_STAIRS], 1, lambda t, v: -(-t // v))


def _sum_ge(terms, target: int, box: Box) -> list[Box]:
    return _staircase(terms, target, box, [MAX_STAIRS], 0, lambda t, v: t - v)


def _product_le(factors, target: int, box: Box, names: Sequence[str]) -> list[Box]:
    """Boxes where ``prod(g_i) <= target`` for factors that are at least 0 on the box: the box
    minus where every factor is at least 1 and the product at least ``target + 1``."""
    if target < 0:
        return []
    positive = dict(box)
    for n, g in factors:
        positive[n] = positive[n] & _univariate(g, ">=", 1, size_symbol(n))
    if any(v.is_empty for v in positive.values()):
        return [dict(box)]
    return _difference(box, _product_ge(factors, target + 1, positive), names)


def _divides_constant(lhs, rhs, box: Box, names: Sequence[str]) -> list[Box] | None:
    """Boxes where ``rhs`` divides ``lhs`` for ``lhs = k·∏f`` and ``rhs = c·∏f·∏g`` (a view's
    element count by the sizes it keeps): factors both share, at least 1 on the box, cancel, and
    ``c·∏g`` (factors at least 0) divides ``k`` exactly where ``∏g`` is one of ``k``'s divisors
    over ``c``. None where this does not apply."""
    sl, sr = _split_product(lhs, names), _split_product(rhs, names)
    if sl is None or sr is None or not sl[0].is_Integer or not sr[0].is_Integer or sl[0] == 0 or sr[0] == 0:
        return None
    fs, gs = dict(sl[1]), dict(sr[1])
    for n in list(fs):
        if gs.get(n) != fs[n] or not _at_least_everywhere(fs[n], 1, box[n], size_symbol(n)):
            return None
        del fs[n], gs[n]
    factors = sorted(gs.items())
    if not all(_at_least_everywhere(g, 0, box[n], size_symbol(n)) for n, g in factors):
        return None
    k, c = abs(int(sl[0])), abs(int(sr[0]))
    out: list[Box] = []
    for d in divisors(k):  # the product's values are distinct: the boxes are disjoint
        if d % c == 0:
            out += _product_eq(factors, d // c, box)
    return out


def _floor_of_many(lhs, relation: str, rhs_value, box: Box, names: Sequence[str], text: _Said) -> list[Box] | None:
    """``floor(X/q) + a`` compared with a number, ``X`` of several sizes: the same condition on
    ``X`` (``floor(X/q) >= t`` is ``X >= q·t``; ``==`` is ``>= q·t`` and not ``>= q·t + q``)."""
    const, rest = lhs.as_coeff_Add()
    coeff, rest = rest.as_coeff_Mul()
    if not isinstance(rest, FloorDiv) or relation not in ("==", "!=", ">=") or coeff == 0:
        return None
    x, q = rest.args
    t = (rhs_value - const) / coeff
    if coeff < 0 and relation == ">=":  # c·floor(X/q) >= r with c < 0: floor(X/q) <= r/c
        t = sympy.Integer(math.floor(t))
        return _difference(box, _multivariate(x, ">=", q * t + q, box, names, text), names)
    if t.q != 1:  # an integer never equals a fraction; >= rounds up
        if relation == ">=":
            t = sympy.Integer(math.ceil(t))
        else:
            return [] if relation == "==" else [dict(box)]
    at_least = _multivariate(x, ">=", q * t, box, names, text)
    if relation == ">=":
        return at_least
    above = _multivariate(x, ">=", q * t + q, box, names, text)
    hit = [b for a in at_least for b in _difference(a, above, names)]
    return hit if relation == "==" else _difference(box, hit, names)


def _product_divisible(factors: list[tuple[str, sympy.Expr]], m: int, box: Box) -> list[Box]:
    """Boxes where ``m`` divides ``prod(g_i)``; split by ``gcd(g_1, m)`` so boxes are disjoint."""
    if m == 1:
        return [dict(box)]
    if not factors:
        return []
    (name, g), rest = factors[0], factors[1:]
    x = size_symbol(name)
    if not rest:  # the last factor takes whatever is left of m
        here = box[name] & divisible_set(g, m, x)
        return [] if here.is_empty else [{**box, name: here}]
    out = []
    for a in divisors(m):
        here = box[name] & _gcd_is(g, a, m, x)
        if not here.is_empty:
            out += _product_divisible(rest, m // a, {**box, name: here})
    return out


def _ties(box: Box) -> dict[str, Tie]:
    return {n: v for n, v in box.items() if isinstance(v, Tie)}


def _linear(box: Box, name: str) -> tuple[str, Fraction, Fraction]:
    """The size ``name`` in ``box`` as ``slope*free + offset`` of one untied size."""
    v = box[name]
    return (v.base, v.slope, v.offset) if isinstance(v, Tie) else (name, Fraction(1), Fraction(0))


def _pullback(r: Box, t: Box) -> Box | None:
    """The untied sizes of ``t`` whose point lies in ``r``, as a box over them (None: none does).
    Raises Unsolvable where that is not a box (``r`` ties two sizes that ``t`` leaves free)."""
    out = {n: v for n, v in t.items() if not isinstance(v, Tie)}
    for n, rv in r.items():
        if isinstance(rv, Tie):  # n == slope*base + offset, both sides in t's free sizes
            a, sa, oa = _linear(t, n)
            b, sb, ob = _linear(t, rv.base)
            sb, ob = rv.slope * sb, rv.slope * ob + rv.offset
            if a == b:
                if sa == sb:
                    if oa != ob:
                        return None
                    continue
                x = (ob - oa) / (sa - sb)
                out[a] = out[a] & (IntSet.of([int(x)]) if x.denominator == 1 else IntSet.empty())
            else:
                raise Unsolvable("a set of sizes on two different lines: symshape cannot subtract them")
        elif isinstance(t[n], Tie):
            out[t[n].base] = out[t[n].base] & t[n].preimage(rv)
        else:
            out[n] = out[n] & rv
        if any(v.is_empty for v in out.values()):
            return None
    return out


def _attach(piece: Box, ties: dict[str, Tie]) -> Box:
    """A solved piece of a tied box's free sizes with the box's ties put back (a tie whose base
    the piece has tied in turn is composed with it)."""
    out = dict(piece)
    for n, tie in ties.items():
        inner = piece[tie.base]
        out[n] = tie.then(inner) if isinstance(inner, Tie) else tie
    return out


def _difference(box: Box, remove: list[Box], names: Sequence[str]) -> list[Box]:
    """``box`` minus a union of boxes, as disjoint boxes."""
    ties = _ties(box)
    if ties or any(_ties(r) for r in remove):
        free = [n for n in names if n not in ties]
        pieces = [{n: box[n] for n in free}]
        for r in remove:
            inside = _pullback(r, box)
            if inside is not None:
                pieces = [q for p in pieces for q in _difference(p, [inside], free)]
        return [_attach(p, ties) for p in pieces]
    pieces = [dict(box)]
    for r in remove:
        nxt = []
        for p in pieces:
            cur = dict(p)
            for n in names:
                outside = cur[n] - r[n]
                if not outside.is_empty:
                    nxt.append({**cur, n: outside})
                cur[n] = cur[n] & r[n]
                if cur[n].is_empty:
                    break
        pieces = nxt
    return pieces


def _not_unsolvable(special, *args):
    """A special case's boxes, or None where it does not apply (a term it cannot solve)."""
    try:
        return special(*args)
    except Unsolvable:
        return None


def _split_primitive(expr: sympy.Expr, names: Sequence[str]):
    """:func:`_split_product` with every factor's integer content in the coefficient: ``2*H - 2``
    is ``2*(H - 1)``, ``(4*H + 4)*H`` is ``4*(H + 1)*H``."""
    parts = _split_product(expr, names)
    if parts is None:
        return None
    c, out = parts[0], {}
    for n, g in parts[1].items():
        out[n] = sympy.Integer(1)
        for f in sympy.Mul.make_args(as_expr(g)):
            content, primitive = f.as_content_primitive()
            c *= content
            out[n] *= primitive
    return c, out


def _dominated(lhs, rhs, box: Box, names: Sequence[str]) -> list[Box] | None:
    """Boxes where ``lhs == rhs`` for products of per-size terms ``c·∏f_n == d·∏g_n`` in which one
    side dominates the other size by size: with ``d/c = ∏k_n`` (rational ``k_n``, see
    :func:`_shares`), ``f_n >= k_n·g_n >= 0`` on the box. Then the products are equal exactly
    where every ``f_n == k_n·g_n``, or where some ``f_n`` is 0 (a view that merges ``H·W`` into
    ``16·floor(H/4)·floor(W/4)``: H and W divisible by 4). None where this does not apply."""
    for a, b in ((lhs, rhs), (rhs, lhs)):
        sa, sb = _split_primitive(a, names), _split_primitive(b, names)
        if sa is None or sb is None or not sa[0].is_number or not sb[0].is_number or sa[0] <= 0 or sb[0] <= 0:
            continue
        fs, gs = dict(sa[1]), dict(sb[1])
        for n in list(fs):  # a factor both sides share (the batch size), positive: it cancels
            if gs.get(n) == fs[n] and _at_least_everywhere(fs[n], 1, box[n], size_symbol(n)):
                del fs[n], gs[n]
        if set(gs) - set(fs) or not fs:
            continue
        ks = _shares(sympy.Rational(sb[0], sa[0]), fs, gs, box)
        if ks is None:
            continue
        out, zero = dict(box), []
        for n, f in fs.items():
            x, g = size_symbol(n), ks[n] * gs.get(n, sympy.Integer(1))
            out[n] = out[n] & _univariate(f - g, "==", 0, x)
            zero.append({**box, n: box[n] & _univariate(f, "==", 0, x)})
        hit: list[Box] = []  # equal where every f_n == k_n·g_n, or where some f_n is 0 (both sides are)
        for b in [out] + zero:
            if not any(v.is_empty for v in b.values()):
                hit = _union(hit, [b])
        return hit
    return None


def _cancelled(lhs, rhs, box: Box, names: Sequence[str], text: _Said) -> list[Box] | None:
    """Boxes where ``lhs == rhs`` for products of per-size terms that share a factor on some size
    (structurally), non-negative on the box: both products are 0 where a shared factor is, and
    elsewhere equal exactly where they are without the shared factors. GC ViT's reshape checks
    ``64·N·a·b·c·d == 3136·N·a·c`` with ``a = floor((H + 3)/28)``, ``b = floor((H + 31)/32)``
    (and ``c``, ``d`` of W): where ``a`` and ``c`` are at least 1 that is ``b·d == 49``. None where
    no factor is shared or one may be negative."""
    sa, sb = _split_primitive(lhs, names), _split_primitive(rhs, names)
    if sa is None or sb is None:
        return None
    (ca, fa), (cb, fb) = sa, sb
    shared = {}  # size -> {base: the power both sides have of it}
    for n in set(fa) & set(fb):
        pa, pb = as_expr(fa[n]).as_powers_dict(), as_expr(fb[n]).as_powers_dict()
        common = {f: min(pa[f], pb[f]) for f in set(pa) & set(pb)
                  if not f.is_number and pa[f].is_Integer and pb[f].is_Integer and min(pa[f], pb[f]) > 0}
        if common:
            shared[n] = common
    if not shared:
        return None
    hit: list[Box] = []
    rest = dict(box)  # where no shared factor is 0
    for n, common in shared.items():
        x = size_symbol(n)
        for c in common:
            if not _at_least_everywhere(c, 0, box[n], x):
                return None
            zero = {**box, n: box[n] & _univariate(c, "==", 0, x)}
            if not any(v.is_empty for v in zero.values()):
                hit = _union(hit, [zero])
            rest[n] = rest[n] & _univariate(c, ">=", 1, x)

    def without(c, fs):
        return c * sympy.Mul(*[g / sympy.Mul(*[f ** e for f, e in shared.get(n, {}).items()]) for n, g in fs.items()])

    if not any(v.is_empty for v in rest.values()):
        reduced = without(ca, fa) - without(cb, fb)
        hit = _union(hit, _multivariate(reduced, "==", sympy.Integer(0), rest, names, text))
    return hit


#: the most share values :func:`_shares` tries for one size
MAX_SHARES = 64


def _shares(ratio: sympy.Rational, fs: dict, gs: dict, box: Box) -> dict | None:
    """One rational ``k_n`` per size with ``∏k_n == ratio`` and ``f_n >= k_n·g_n >= 0`` on the
    box, or None. The candidates are the quotients of divisors of the ratio's numerator and
    denominator (``49·ceil(h/7)·ceil(w/7)`` against ``h·w``: ``k = 1/7`` each; a view merging
    ``16·floor(H/4)·floor(W/4)``: ``k = 4``). ``f_n >= k·g_n`` fails for every larger ``k`` once it
    fails for one (``g_n >= 0``), so each size's candidates are tried in increasing order until
    the first that fails, and the product is then matched by arithmetic alone."""
    if ratio <= 0:
        return None
    values = sorted({sympy.Rational(a, b) for a in divisors(int(ratio.p)) for b in divisors(int(ratio.q))})
    if len(values) > MAX_SHARES:
        return None
    names = sorted(fs)
    feasible: dict[str, list] = {}
    for n in names:
        x, g = size_symbol(n), gs.get(n, sympy.Integer(1))
        if not _at_least_everywhere(g, 0, box[n], x):
            return None
        feasible[n] = []
        for k in values:
            if not _at_least_everywhere(fs[n] - k * g, 0, box[n], x):
                break
            feasible[n].append(k)

    def pick(i: int, rest: sympy.Rational) -> dict | None:
        if i == len(names) - 1:
            return {names[i]: rest} if rest in feasible[names[i]] else None
        for k in reversed(feasible[names[i]]):
            tail = pick(i + 1, rest / k)
            if tail is not None:
                return {names[i]: k, **tail}
        return None

    return pick(0, ratio)


#: a size confined to at most this many values is tried value by value when a condition couples it
MAX_ENUMERATED = 256


def _multivariate(req_lhs, relation: str, rhs, box: Box, names: Sequence[str], text: _Said) -> list[Box]:
    try:
        return _separable(req_lhs, relation, rhs, box, names, text)
    except Unsolvable:
        factored = sympy.factor(req_lhs) if rhs.is_Integer and not req_lhs.has(sympy.floor) else req_lhs
        if factored != req_lhs:  # a product written out (``H*W - H - W + 1``, a count divisible by 3)
            try:
                return _separable(factored, relation, rhs, box, names, text)
            except Unsolvable:
                pass
        syms = {s.name for s in as_expr(req_lhs).free_symbols | as_expr(rhs).free_symbols} & set(names)
        few = [n for n in sorted(syms) if box[n].is_finite and box[n].count(box[n].max()) <= MAX_ENUMERATED]
        if not few:
            hit = _by_residues(req_lhs, relation, rhs, box, names, text)
            if hit is not None:
                return hit
            lines = _tied(as_expr(req_lhs) - as_expr(rhs), box, names) if relation == "==" else None
            if lines is None:
                raise
            return lines
    # a size the other conditions confine to a few values (a position embedding of 27 x 27
    # tokens): the condition on the others, one value at a time; equal boxes merge afterwards
    name = min(few, key=lambda n: box[n].count(box[n].max()))
    out: list[Box] = []
    lhs, rhs = as_expr(req_lhs), as_expr(rhs)
    floors = _floor_divisions if lhs.has(sympy.floor) or rhs.has(sympy.floor) else (lambda e: e)
    for v in box[name].values(box[name].max()):
        here = {size_symbol(name): sympy.Integer(v)}
        req = Requirement(floors(lhs.xreplace(here)), relation, floors(rhs.xreplace(here)), text.req.reason)
        where = f"{text.where} at {name} = {v}"
        out += _accepting_plain(req, [{**box, name: IntSet.of([v])}], names, {}, where)
    return _merged(out, names)


def _floor_divisions(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each ``floor(p/q)`` whose divisor was a size, now a number (``floor(h/w)``
    at ``w = 2``), as the floor division of sizes the solver reads (FloorDiv)."""
    def as_floor_div(f):
        p, q = f.args[0].as_numer_denom()
        return FloorDiv(p, q) if q.is_Integer and q > 0 and integer_polynomial(p) else f
    return expr.replace(lambda e: isinstance(e, sympy.floor), as_floor_div)


#: the largest divisor of a floor of a product whose residues :func:`_by_residues` takes in turn
MAX_MODULUS = 256


def _by_residues(lhs, relation: str, rhs, box: Box, names: Sequence[str], text: _Said) -> list[Box] | None:
    """Boxes where a condition on ``floor(X/m)`` holds, ``X = c·∏g_n`` a product of per-size
    terms (windows folded by a mask made for a fixed count, as a copied Swin does:
    ``4·floor(a·b/4) == a·b``, ``a = floor((H + 108)/112)``): for each residue ``r`` of ``X`` modulo ``m`` that the box
    gives (:func:`symshape.residues.product_residues`), ``floor(X/m) = (X - r)/m``, and the
    condition, free of that floor, is solved on the boxes of that residue (a quotient by a
    product of positive terms multiplied out first). None where this does not apply, or one
    residue's condition cannot be solved."""
    lhs, rhs = as_expr(lhs), as_expr(rhs)
    floors = {f for e in (lhs, rhs) for f in e.atoms(FloorDiv)
              if len({s.name for s in f.free_symbols} & set(names)) >= 2}
    if len(floors) != 1:
        return None
    floor = floors.pop()
    if any(floor in f.args[0].atoms(FloorDiv) for e in (lhs, rhs) for f in e.atoms(FloorDiv)):
        return None  # inside another floor, (X - r)/m would be a floor's fraction of a numerator
    X, m = floor.args
    split = _split_product(X, names)
    if split is None or not split[0].is_Integer or not 2 <= int(m) <= MAX_MODULUS:
        return None
    out: list[Box] = []
    where = text.where if isinstance(text, _Said) else str(text)
    try:
        regions = product_residues(int(split[0]), sorted(split[1].items()), int(m), box, size_symbol)
        for r, boxes in regions.items():
            sub = {floor: (X - r) / m}
            for b in boxes:
                left, right = lhs.xreplace(sub), rhs.xreplace(sub)
                if relation in ("==", "!=", ">="):  # the floor gone, the two sides may cancel
                    left, right = sympy.factor(sympy.expand(left - right)), sympy.Integer(0)
                out += _accepting_plain(Requirement(left, relation, right, str(text)), [b], names, {}, where)
    except Unsolvable:
        return None
    return out


def _cleared(lhs, relation: str, rhs, boxes: list[Box], names: Sequence[str]):
    """``lhs`` and ``rhs`` of a comparison with a quotient's denominator multiplied out, where it
    is a positive number or a product of per-size terms at least 1 on every box: ``6144·(X -
    r)/(64·X) == 96`` (a Linear's in_features against a last dim that reshape's ``-1`` inferred)
    is ``-96·r == 0``. As they are for ``divisible``, without a quotient, or another denominator."""
    if relation not in ("==", "!=", ">=") or not any(
            p.exp.is_negative for e in (lhs, rhs) for p in e.atoms(sympy.Pow)):
        return lhs, rhs
    num, den = sympy.fraction(sympy.together(lhs - rhs))
    if den.is_number:
        return (num, sympy.Integer(0)) if den > 0 else (lhs, rhs)
    split = _split_product(den, names)
    if split is None or not split[0].is_number or split[0] <= 0 or not all(
            _at_least_everywhere(g, 1, b[n], size_symbol(n)) for b in boxes for n, g in split[1].items()):
        return lhs, rhs
    return num, sympy.Integer(0)


#: the most pairs of residue classes :func:`_tied` solves (periods of the two sides multiplied)
MAX_TIE_CLASSES = 1024


def _tied(expr, box: Box, names: Sequence[str]) -> list[Box] | None:
    """Boxes with a :class:`~symshape.sizes.Tie` where ``expr == 0`` for ``expr = f(a) - g(b)``,
    ``f`` and ``g`` increasing and linear on residue classes (None where it is not of that form).

    On classes ``a = r + k*P`` and ``b = s + j*Q`` the sides are ``f0 + f1*k`` and ``g0 + g1*j``:
    a linear Diophantine equation whose solutions are ``k = k* + t*g1'``, ``j = j* + t*f1'``, so
    ``b`` is a linear function of ``a`` on one class of ``a`` -- exactly, for every size."""
    split = _split_sum(as_expr(expr), names)
    if split is None or len(split[1]) != 2:
        return None
    c, terms = split
    a, b = sorted(terms, key=list(names).index)  # the later size is tied to the earlier
    qf, qg = quasi(terms[a], size_symbol(a)), quasi(-terms[b] - c, size_symbol(b))
    if qf.degree != 1 or qg.degree != 1:
        return None
    P, Q = qf.period, qg.period
    if P * Q > MAX_TIE_CLASSES:
        raise Unsolvable(f"{expr} == 0 couples {a} and {b} on {P} x {Q} residue classes, beyond the "
                         f"solver's {MAX_TIE_CLASSES}")
    if qf.classes[0][2][1] < 0:  # -D + floor(H/2) == 0: D == floor(H/2)
        qf, qg = quasi(-terms[a], size_symbol(a)), quasi(terms[b] + c, size_symbol(b))
    if any(f[2][1] <= 0 for f in qf.classes) or any(g[2][1] <= 0 for g in qg.classes):
        return None  # H + W == 5: one side falls as the other grows (not a line this solves)
    out: list[Box] = []
    for r, _, (f0, f1) in qf.classes:
        for s_, _, (g0, g1) in qg.classes:
            den = math.lcm(f0.denominator, f1.denominator, g0.denominator, g1.denominator)
            A, B, C, D = (int(v * den) for v in (f0, f1, g0, g1))
            g = math.gcd(B, D)
            if (C - A) % g:
                continue
            # B*k - D*j == C - A: one solution from B*u == g (mod D)
            u = pow(B // g, -1, D // g) if D // g > 1 else 0
            k = u * ((C - A) // g)
            j = (A + B * k - C) // D
            m, step = P * (D // g), Q * (B // g)
            h, w = r + P * k, s_ + Q * j  # one point (a, b) = (h, w); then (h + m*t, w + step*t)
            slope = Fraction(step, m)
            tie = Tie(a, slope, w - slope * h)
            here = box[a] & IntSet.congruent(h % m, m) & tie.preimage(box[b])
            if not here.is_empty:
                out.append({**box, a: here, b: tie})
    return out


def _two_products(lhs, rhs, box: Box, names: Sequence[str], text: _Said) -> list[Box] | None:
    """Boxes where ``lhs == rhs`` for two terms of opposite sign (``c·∏f_n == d·∏g_n``): where one
    side dominates size by size (:func:`_dominated`), or the two share a factor
    (:func:`_cancelled`); None where neither applies."""
    terms = sympy.Add.make_args(as_expr(lhs) - as_expr(rhs))
    if len(terms) != 2 or not any(t.could_extract_minus_sign() for t in terms) \
            or all(t.could_extract_minus_sign() for t in terms):
        return None
    pos, neg = sorted(terms, key=lambda t: t.could_extract_minus_sign())
    hit = _not_unsolvable(_dominated, pos, -neg, box, names)
    return hit if hit is not None else _not_unsolvable(_cancelled, pos, -neg, box, names, text)


def _separable(req_lhs, relation: str, rhs, box: Box, names: Sequence[str], text: _Said) -> list[Box]:
    remainder = remainder_of(req_lhs) if relation in ("==", "!=") and rhs == 0 else None
    if remainder is not None:  # a % q != 0 (a check on the side where a view's count is odd): not divisible
        hit = _multivariate(remainder[0], "divisible", remainder[1], box, names, text)
        return hit if relation == "==" else _difference(box, hit, names)
    if relation in ("==", "!="):
        hit = _two_products(req_lhs, rhs, box, names, text)
        if hit is not None:
            return hit if relation == "==" else _difference(box, hit, names)
    if relation == "divisible" and not rhs.is_number:
        hit = _not_unsolvable(_divides_constant, as_expr(req_lhs), as_expr(rhs), box, names)
        if hit is not None:
            return hit
    if not rhs.is_number:
        raise Unsolvable(_Later(text, ": both sides depend on the input size"))
    rhs_value = sympy.Rational(rhs)
    floored = _floor_of_many(as_expr(req_lhs), relation, rhs_value, box, names, text)
    if floored is not None:
        return floored
    if relation in ("==", "!=", ">="):  # a constant term moves to the right: c*g1*g2 + 1 == 197
        const, rest = as_expr(req_lhs).as_coeff_Add()
        if const != 0 and isinstance(rest, sympy.Mul):
            req_lhs, rhs_value = rest, rhs_value - const
    if relation in ("==", "!="):
        num, den = sympy.fraction(sympy.together(as_expr(req_lhs)))
        if num.is_number and not den.is_number and rhs_value != 0:
            # k / prod(g) == t: prod(g) == k / t (a size inferred by reshape's -1, then checked)
            quotient = sympy.Rational(num) / rhs_value
            hit = _multivariate(den, "==", quotient, box, names, text) if quotient.q == 1 else []
            return hit if relation == "==" else _difference(box, hit, names)
        split = _split_product(req_lhs, names)
        if split is not None:
            c, fs = split
            factors = sorted(fs.items())
            if c == 0:
                hit = [dict(box)] if rhs_value == 0 else []
            elif rhs_value == 0:
                hit = _product_eq(factors, 0, box)
            else:
                q = rhs_value / c
                hit = _product_eq(factors, int(q), box) if q.q == 1 else []
            return hit if relation == "==" else _difference(box, hit, names)
        split = _split_sum(req_lhs, names)
        if split is not None and relation == "!=":
            c, ts = split
            if all(_at_least_everywhere(g, 0, box[n], size_symbol(n)) for n, g in ts.items()) \
                    and rhs_value - c == 0:
                zeros = {**box, **{n: box[n] & _univariate(g, "==", 0, size_symbol(n)) for n, g in ts.items()}}
                return _difference(box, [zeros], names)
    if relation == ">=":
        split = _split_product(req_lhs, names)
        if split is not None:
            c, fs = split
            factors = sorted(fs.items())
            if c > 0 and all(_at_least_everywhere(g, 1, box[n], size_symbol(n)) for n, g in factors):
                return _product_ge(factors, math.ceil(rhs_value / c), box)
            if c < 0 and all(_at_least_everywhere(g, 0, box[n], size_symbol(n)) for n, g in factors):
                return _product_le(factors, math.floor(rhs_value / c), box, names)
            if c > 0 and all(_at_least_everywhere(g, 0, box[n], size_symbol(n)) for n, g in factors):
                # factors that may be 0: the product is at least 1 only where each of them is
                target = math.ceil(rhs_value / c)
                if target <= 0:
                    return [dict(box)]
                positive = {**box, **{n: box[n] & _univariate(g, ">=", 1, size_symbol(n)) for n, g in factors}}
                return [] if any(v.is_empty for v in positive.values()) else _product_ge(factors, target, positive)
        split = _split_sum(req_lhs, names)
        if split is not None:
            c, ts = split
            terms = sorted(ts.items())
            if all(_at_least_everywhere(g, 0, box[n], size_symbol(n)) for n, g in terms):
                return _sum_ge(terms, math.ceil(rhs_value - c), box)
    if relation == "divisible" and rhs_value.q == 1 and rhs_value != 0:
        split = _split_product(req_lhs, names)
        if split is not None:
            c, fs = split
            if c.is_Integer:
                m = abs(int(rhs_value)) // math.gcd(abs(int(rhs_value)), int(c))
                return _product_divisible(sorted(fs.items()), m, box)
    raise Unsolvable(_Later(text, ": symshape solves conditions on one size, products of per-size terms (==, >=, "
                                  "!=, divisible) and sums of non-negative per-size terms (>=)"))


def _restrict(req: Requirement, boxes: list[Box], names: Sequence[str], subs: dict, where: str) -> list[Box]:
    """The part of ``boxes`` where torch accepts ``req`` (and its ``unless`` fast path)."""
    return _tie_aware(_restrict_untied, req, boxes, names, subs, where)


def _tie_aware(solve, req: Requirement, boxes: list[Box], names: Sequence[str], subs: dict,
               where: str) -> list[Box]:
    """``solve(req, boxes, names, subs, where)`` of boxes that may tie a size to another (``W =
    H``, a side of a branch on ``h == w``): in such a box the tie is substituted and the rest of
    the box solved, the tie put back."""
    plain = [b for b in boxes if not _ties(b)]
    out = solve(req, plain, names, subs, where) if plain else []
    for b in boxes:
        ties = _ties(b)
        if ties:
            free = [n for n in names if n not in ties]
            here = {**subs, **{size_symbol(n): t.expr() for n, t in ties.items()}}
            core = {n: b[n] for n in free}
            out += [_attach(p, ties) for p in solve(req, [core], free, here, where)]
    return out


def _restrict_untied(req: Requirement, boxes: list[Box], names: Sequence[str], subs: dict, where: str) -> list[Box]:
    if req.unless is not None:
        failing = _chain_failing(req, boxes, names, subs, where)
        if failing is not None:
            try:
                return _merged([p for b, fails in zip(boxes, failing)
                                for p in (_difference(b, _merged(fails, names), names) if fails else [b])], names)
            except Unsolvable:  # a box minus a line (``H == W`` of a plain box): link by link
                pass
    try:
        accepted = _accepting(req, boxes, names, subs, where)
        if req.unless is not None:  # a chain: req, or unless, or its unless ...
            accepted = _union(accepted, _restrict(req.unless, boxes, names, subs, where))
        return accepted
    except Unsolvable:
        if req.unless is None:
            raise
        links = []
        while req is not None:
            links.append(replace(req, unless=None))
            req = req.unless
        found = _disjunction(boxes, links, names, subs, where)
        if found is None:
            raise
        return found


def _disjunction(boxes: list[Box], links: list[Requirement], names: Sequence[str], subs: dict,
                 where: str) -> list[Box] | None:
    """The part of ``boxes`` where at least one of ``links`` holds (a chain: a check, unless a
    side's conditions do not hold), or None where one cannot be solved on what the others leave.
    A link the solver cannot solve on the whole box (``floor(h/w)`` of two sizes) waits until
    the others have taken their part: what they leave may hold a size to a few values, which
    the solver takes one at a time (transformers' Swin, whose window is ``min(h, w)`` on the
    side where that is at most 7: the rest of the chain holds for ``w >= 8``)."""
    accepted: list[Box] = []
    rest, pending = list(boxes), list(links)
    while pending and rest:
        waiting = []
        for link in pending:
            try:
                held = _tie_aware(_accepting, link, rest, names, subs, where)
                if held:
                    accepted = _union(accepted, held)
                    rest = [p for b in rest for p in _difference(b, held, names)]
            except Unsolvable:
                waiting.append(link)
            if not rest:
                break
        if len(waiting) == len(pending):
            return None if rest else accepted
        pending = waiting
    return accepted


def _chain_failing(req: Requirement, boxes: list[Box], names: Sequence[str], subs: dict,
                   where: str) -> list[list[Box]] | None:
    """Where a chain ``req``, or its fast path, or that one's ... fails, in each box: where every
    link fails, each link's negation narrowing the last's (a conjunction: no union of boxes to
    take). The chains the sides of a branch leave (a check, unless the side's conditions do
    not hold) mostly fail nowhere, which the first negations already show. A link with no
    negation of the solver's relations (``divisible``) is taken out of what the others leave
    (where it holds there: a few sizes once a side's ``floor(H/16) == 48`` has narrowed them).
    None where no link has a negation, or one cannot be solved: the chain is then solved link
    by link."""
    negations, plain = [], []
    link = req
    while link is not None:
        negated = _negation(link)
        if negated is None:
            plain.append(replace(link, unless=None))
        else:
            negations += negated
        link = link.unless
    if not negations:
        return None
    facts = [sympy.expand(sign * (n.lhs - n.rhs)) for n in negations  # each >= 0 where the chain fails
             for sign in ((1,) if n.relation == ">=" else (1, -1) if n.relation == "==" else ())]
    negations = [settled_extrema(n, facts) for n in negations]
    out = []
    try:
        for b in boxes:
            fails = _conjunction([b], negations, names, subs, where)
            if fails is None:
                return None
            for link in plain:
                if fails:
                    held = _tie_aware(_accepting, link, fails, names, subs, where)
                    fails = [p for f in fails for p in _difference(f, held, names)] if held else fails
            out.append(fails)
    except Unsolvable:  # (a box minus a line, too)
        return None
    return out


def _conjunction(boxes: list[Box], reqs: list[Requirement], names: Sequence[str], subs: dict,
                 where: str) -> list[Box] | None:
    """The part of ``boxes`` where every one of ``reqs`` holds, or None where one cannot be
    solved. A conjunction holds the same in any order, so a requirement the solver cannot solve
    on the whole box (``floor(H/16) >= floor(W/16)``: no union of boxes) waits until the others
    have narrowed it, where it may be solved or nothing may be left (NaFlexViT's patch grid: a
    side's checks on ``H`` and ``W`` that hold wherever both are multiples of 16)."""
    pending = list(reqs)
    while pending and boxes:
        waiting = []
        for req in pending:  # (a link's negation may tie a size to another: W = H)
            try:
                boxes = _tie_aware(_accepting, req, boxes, names, subs, where)
            except Unsolvable:
                waiting.append(req)
                continue
            if not boxes:
                return []
        if len(waiting) == len(pending):
            return None
        pending = waiting
    return boxes


def _negation(req: Requirement) -> list[Requirement] | None:
    """Requirements that all hold exactly where ``req`` fails, or None: ``a >= b`` fails where
    ``b - a >= 1`` (both integers at every size), ``==`` where ``!=``, and back; a broadcast of
    ``a`` and ``b`` where ``a != b``, ``a != 1`` and ``b != 1``."""
    if req.relation == "==" or req.relation == "!=":
        return [Requirement(req.lhs, "!=" if req.relation == "==" else "==", req.rhs, req.reason)]
    if req.relation == ">=" and integer_polynomial(req.lhs) and integer_polynomial(req.rhs):
        return [Requirement(as_expr(req.rhs) - as_expr(req.lhs), ">=", 1, req.reason)]
    if req.relation == "broadcast":
        return [Requirement(req.lhs, "!=", req.rhs, req.reason), Requirement(req.lhs, "!=", 1, req.reason),
                Requirement(req.rhs, "!=", 1, req.reason)]
    return None


def _union(a: list[Box], b: list[Box]) -> list[Box]:
    # a and b are both parts of the same boxes; keep a, add what b adds
    if any(_ties(x) for x in (*a, *b)):  # boxes first, then each line minus what is kept
        kept = _union([x for x in a if not _ties(x)], [x for x in b if not _ties(x)])
        for x in (*a, *b):
            if _ties(x):
                kept += _difference(x, kept, list(x)) if kept else [x]
        return kept
    out = list(a)
    for box in b:
        out += _difference(box, a, list(box)) if a else [box]
    return out


def _accepting(req: Requirement, boxes: list[Box], names, subs, where: str) -> list[Box]:
    try:
        return _accepting_plain(req, boxes, names, subs, where)
    except Unsolvable:
        cases = _by_cases(req, subs)
        if cases is None:
            raise
    for case in cases:  # each case's requirement, needed only where its condition holds
        boxes = _restrict(case, boxes, names, {}, where)
    return boxes


#: the most Min/Max a requirement may hold for the solver to split it into cases
MAX_EXTREMA = 4


def _by_cases(req: Requirement, subs) -> list[Requirement] | None:
    """A requirement on a size defined by cases (``Piecewise``, ``Min``, ``Max``: a slice of a
    buffer by a size, a broadcast that depends on a size of 1) as one plain requirement a case."""
    lhs, rhs = as_expr(req.lhs).xreplace(subs), as_expr(req.rhs).xreplace(subs)
    if not any(e.has(sympy.Piecewise, sympy.Min, sympy.Max) for e in (lhs, rhs)):
        return None
    extrema = [m for e in (lhs, rhs) for m in e.atoms(sympy.Min, sympy.Max)]
    if len(extrema) > MAX_EXTREMA or any(len(m.args) > 3 for m in extrema):
        return None  # the cases grow exponentially with nested Min/Max
    try:
        return by_cases(replace(req, lhs=lhs, rhs=rhs, unless=None), extrema=True)
    except ValueError:  # a case's condition that is not a relation of sizes
        return None


class _Said:
    """``where: requirement``, for the message of an :class:`Unsolvable`, written only when one
    is raised (most requirements are solved: writing each out took half of a SwinUNETR's
    ``valid_sizes()``)."""

    __slots__ = ("where", "req")

    def __init__(self, where: str, req: Requirement):
        self.where, self.req = where, req

    def __str__(self) -> str:
        return f"{self.where}: {self.req}"


class _Later:
    """An :class:`Unsolvable`'s message, written when it is read: the solver catches most of
    them and tries another way (a size of a few values, one at a time), and writing each
    condition out was half of Swin V2 CR's ``valid_sizes()`` (0.023 s, 0.013 s without)."""

    __slots__ = ("text", "tail")

    def __init__(self, text: _Said, tail: str):
        self.text, self.tail = text, tail

    def __str__(self) -> str:
        return f"{self.text}{self.tail}"


def _accepting_plain(req: Requirement, boxes: list[Box], names, subs, where: str) -> list[Box]:
    text = _Said(where, req)
    if req.relation == "never":
        return []
    lhs = as_expr(req.lhs).xreplace(subs)
    rhs = as_expr(req.rhs).xreplace(subs)
    lhs, rhs = _cleared(lhs, req.relation, rhs, boxes, names)
    if req.relation == "broadcast":
        parts = [Requirement(lhs - rhs, "==", 0, req.reason), Requirement(lhs, "==", 1, req.reason),
                 Requirement(rhs, "==", 1, req.reason)]
        out: list[Box] = []
        for p in parts:
            out = _union(out, _accepting(p, boxes, names, {}, where))
        return out
    syms = {s.name for s in (lhs.free_symbols | rhs.free_symbols)} & set(names)
    if req.relation in ("==", "!=", ">=") and rhs.free_symbols:
        lhs, rhs = lhs - rhs, sympy.Integer(0)
    out = []
    if len(syms) == 0:
        value = _constant_holds(req.relation, lhs, rhs)
        return [dict(b) for b in boxes] if value else []
    if len(syms) == 1:
        name = syms.pop()
        x = size_symbol(name)
        read = _by_values(req.relation, lhs, rhs, boxes, name, x)
        if read is not None:
            return read
        if req.relation == "divisible":
            if not rhs.is_Integer and lhs.is_Integer:
                return _constant_divisible(req, int(lhs), rhs, boxes, names, where, text)
            if not rhs.is_Integer:
                accepted = size_divisible_set(lhs, rhs, x)
                parts = [(b, b[name] & accepted) for b in boxes]
                return [{**b, name: part} for b, part in parts if not part.is_empty]
            m = abs(int(rhs))
            accepted = None  # solved once, where no box lets the congruence shortcut answer
            for b in boxes:
                part = _divisible_on_class(lhs, m, x, b[name]) if m else IntSet.empty()
                if part is None:
                    if accepted is None:
                        accepted = divisible_set(lhs, m, x)
                    part = b[name] & accepted
                if not part.is_empty:
                    out.append({**b, name: part})
            return out
        accepted = _univariate(lhs, req.relation, rhs, x)
        for b in boxes:
            part = b[name] & accepted
            if not part.is_empty:
                out.append({**b, name: part})
        return out
    for b in boxes:
        out += _multivariate(lhs, req.relation, rhs, b, names, text)
    return out


def _by_values(relation: str, lhs, rhs, boxes: list[Box], name: str, x) -> list[Box] | None:
    """The boxes' values of ``name`` where the relation holds, each read (exact arithmetic),
    where every box allows at most ``MAX_ENUMERATED`` of them (a size its patch embedding pins:
    solving the condition over every size first took Swin V2 CR at 384 a third of a second);
    None where a box allows more, or a value divides by 0."""
    if not all(b[name].is_finite and b[name].count(b[name].max()) <= MAX_ENUMERATED for b in boxes):
        return None
    fn = compile_exprs([x], [lhs, rhs], exact=True)
    holds = RELATIONS[relation].holds
    out = []
    try:
        for b in boxes:
            part = IntSet.of(v for v in b[name].values(b[name].max()) if holds(*fn(v)))
            if not part.is_empty:
                out.append({**b, name: part})
    except ZeroDivisionError:
        return None
    return out


#: the most divisors :func:`_constant_divisible` splits a requirement into
_MAX_DIVISORS = 256


def _constant_divisible(req: Requirement, c: int, divisor: sympy.Expr, boxes: list[Box], names, where: str,
                        text: _Said) -> list[Box]:
    """``c`` divisible by a size's expression (a reshape's ``-1`` over a fixed number of
    elements: MONAI's Swin gathers a 49 x 49 bias table for a window that may be smaller): the
    expression is one of ``c``'s divisors, of either sign (any value but 0 where ``c`` is 0)."""
    if c == 0:
        return _accepting(Requirement(divisor, "!=", 0, req.reason), boxes, names, {}, where)
    if sympy.divisor_count(abs(c)) > _MAX_DIVISORS:
        raise Unsolvable(f"{text}: a size-dependent divisor of a number with more than {_MAX_DIVISORS} divisors")
    out: list[Box] = []
    for d in sympy.divisors(abs(c)):
        for value in (d, -d):
            out = _union(out, _accepting(Requirement(divisor, "==", value, req.reason), boxes, names, {}, where))
    return out


def _constant_holds(relation: str, lhs, rhs) -> bool:
    """A relation between constants (exact rationals here), by the requirement's own semantics."""
    return bool(RELATIONS[relation].holds(sympy.Rational(lhs), sympy.Rational(rhs)))


def solve_requirements(names: Sequence[str], requirements: Iterable[tuple[str, Requirement]],
                       batch: int = 1, ties: dict[str, str] | None = None,
                       groups: Sequence[Sequence[str]] | None = None) -> SizeSet:
    """The sizes (each >= 1) where every requirement holds, with the batch size fixed.

    ``ties`` maps a name to the name it equals (square inputs); the solve runs over the rest.
    """
    ties = ties or {}
    free = [n for n in names if n not in ties]
    subs: dict = {batch_symbol(): sympy.Integer(batch)}
    for n, to in ties.items():
        subs[size_symbol(n)] = size_symbol(to)
    first: dict = {}  # each condition once, where it first comes
    for where, r in requirements:
        first.setdefault(_condition_key(r), (where, r))
    reqs = settled_tails(list(first.values()))

    def order(item):  # one-size conditions first: they make the coupled ones easier
        where, r = item
        syms = {s.name for s in (as_expr(r.lhs).free_symbols | as_expr(r.rhs).free_symbols)}
        return len(syms & set(names))

    boxes: list[Box] = [{n: IntSet.all() for n in free}]
    for where, req in sorted(reqs, key=order):
        boxes = _merged(_restrict(req, boxes, free, subs, where), free)
        if not boxes:
            break
    return SizeSet(names, boxes, groups=groups)


def _merged(boxes: list[Box], names: Sequence[str]) -> list[Box]:
    """The same union of (disjoint) boxes in fewer: boxes alike in every size but one are one
    box, that size's sets joined. A condition solved one value of a size at a time leaves a box
    per value (transformers' Swin: a window ``min(h, w)`` of each size up to 7), which every
    later condition would otherwise take one by one."""
    if len(boxes) < 2 or any(_ties(b) for b in boxes):
        return boxes
    for n in names:
        joined: dict[tuple, IntSet] = {}
        for b in boxes:
            key = tuple(b[m] for m in names if m != n)
            joined[key] = joined[key] | b[n] if key in joined else b[n]
        if len(joined) < len(boxes):
            others = [m for m in names if m != n]
            boxes = [{**dict(zip(others, key)), n: s} for key, s in joined.items()]
    return boxes


def _condition_key(req: Requirement) -> tuple:
    """What of a requirement decides where it holds: its relation and its chain of fast paths,
    not its reason. The sides of a branch each carry the checks of the steps they share, so the
    same condition comes many times over (SwinUNETR-2d: 947 requirements, 25 conditions); each is
    solved once."""
    return (req.lhs, req.relation, req.rhs, None if req.unless is None else _condition_key(req.unless))


# -- the questions users ask -----------------------------------------------------------------


def _over_cases(analysis, answer) -> SizeSet:
    """``answer`` (a SizeSet of one analysis) for an analysis and each of its cases
    (``Shapes.cases``, which cover disjoint sizes): their union."""
    sets = [answer(leaf) for leaf in analysis.leaves()]
    return sets[0] if len(sets) == 1 else _union_of(sets)


def _union_of(sets: list[SizeSet]) -> SizeSet:
    return SizeSet(sets[0].names, [b for s in sets for b in s.boxes], groups=sets[0].groups)


def valid_sizes(analysis, batch: int = 1, square: bool = False) -> SizeSet:
    """Exactly the sizes at which the forward runs (batch ``batch``; ``square``: spatial sizes tied)."""
    return _over_cases(analysis, partial(_valid_sizes, batch=batch, square=square))


def _valid_sizes(analysis, batch: int = 1, square: bool = False) -> SizeSet:
    batch = positive_int(batch, "batch")
    ties, groups = _square_ties(analysis) if square else ({}, None)
    return solve_requirements(analysis.size_names, analysis.requirements, batch, ties, groups)


def smallest_tied(analysis, batch: int = 1, upto: int = 1024) -> dict[str, int] | None:
    """The smallest ``s <= upto`` at which every check of ``analysis`` holds with every size
    name ``s`` (``H = W = s``), found by brute force: the checks compiled for int64 tensors and
    run for every ``s`` at once. Exact where no value computed on the way can pass int64; None
    where one could, where no such ``s`` is accepted, and for an analysis with cases (the
    solver's questions).

    Milliseconds where :func:`valid_sizes` can take seconds (the window conditions of MaxViT at
    384, whose smallest valid size is none of the proof's usual candidates: 3 s)."""
    if analysis.cases or analysis.where or not analysis.size_names:
        return None
    symbols = [batch_symbol(), *(size_symbol(n) for n in analysis.size_names)]
    top = {symbols[0]: positive_int(batch, "batch"), **{s: upto for s in symbols[1:]}}
    checks = [r for _, r in analysis.requirements]
    reach = checks_magnitude(checks, top)
    if reach is None or reach >= 2 ** 62:
        return None
    accepted, _ = compile_checked(symbols, checks, [], backend="torch")(
        batch, *([torch.arange(1, upto + 1)] * len(analysis.size_names)))
    hits = torch.as_tensor(accepted, dtype=torch.bool).expand(upto).nonzero()
    return {n: int(hits[0]) + 1 for n in analysis.size_names} if len(hits) else None


def exact_sizes(analysis, batch: int = 1, ignore_declared: bool = False, square: bool = False) -> SizeSet:
    """The valid sizes at which no layer rounds (``ignore_declared``: whatever the Linear layers'
    declared in_features, as when choosing them; ``square``: spatial sizes tied)."""
    return _over_cases(analysis, partial(_exact_sizes, batch=batch, ignore_declared=ignore_declared, square=square))


def _exact_sizes(analysis, batch: int = 1, ignore_declared: bool = False, square: bool = False) -> SizeSet:
    batch = positive_int(batch, "batch")
    reqs = [(w, r) for w, r in analysis.requirements if not (ignore_declared and r.kind == "declared")]
    for step in analysis.steps:
        for rd in step.roundings:
            if not rd.divisor:
                raise Unsolvable(f"{step.name}: whether {rd.what} rounds does not repeat with the size: symshape "
                                 f"does not state the sizes where it is exact")
            exact = Requirement(rd.numerator, "divisible", rd.divisor, rd.what)
            try:
                reqs += [(step.name, r) for r in unless_not(exact, list(rd.when))]
            except ValueError as e:
                raise Unsolvable(f"{step.name}: {rd.what} on a side whose conditions symshape cannot state: {e}") from e
    ties, groups = _square_ties(analysis) if square else ({}, None)
    return solve_requirements(analysis.size_names, reqs, batch, ties, groups)


def _square_ties(analysis) -> tuple[dict[str, str], list[list[str]]]:
    # the dims after each input's channels
    spatial = [d.name for _, shape in analysis.inputs.shapes for d in shape[1:] if isinstance(d, sympy.Symbol)]
    spatial = list(dict.fromkeys(spatial))
    if len(spatial) < 2:
        return {}, [[n] for n in analysis.size_names]
    ties = {n: spatial[0] for n in spatial[1:]}
    groups = [spatial] + [[n] for n in analysis.size_names if n not in spatial]
    return ties, groups


def _settle_piecewise(expr, box: Box, names: Sequence[str]):
    """Replace each Piecewise whose condition is decided on ``box`` by its branch."""
    for pw in expr.atoms(sympy.Piecewise):
        for branch, cond in pw.args:
            syms = [s for s in cond.free_symbols if s.name in names]
            if cond is sympy.true:
                expr = expr.xreplace({pw: branch})
                break
            if len(syms) != 1:
                return expr
            where = _condition(cond, syms[0])
            if box[syms[0].name].is_subset(where):
                expr = expr.xreplace({pw: branch})
                break
            if not (box[syms[0].name] & where).is_empty:
                return expr  # undecided on this box
    return expr


def _value_test(expr, boxes: list[Box], free: Sequence[str], subs: dict):
    """A fast exact test "does some size in ``boxes`` give ``expr == t``?" for many ``t >= 1``.

    For a product of non-negative per-size terms it precomputes each term's positive values on
    each box and tests ``t`` through its divisors; a single size is solved directly; anything
    else solves ``expr == t`` on the boxes (slower).
    """
    expr = as_expr(expr).xreplace(subs)
    plans: list = []
    for b in boxes:
        if _ties(b):
            plans.append(("solve", expr, b))
            continue
        e = _settle_piecewise(expr, b, free)
        split = _split_product(e, free)
        if split is None or e.has(sympy.Piecewise) or not split[0].is_Integer or int(split[0]) <= 0:
            plans.append(("solve", e, b))
            continue
        c, fs = int(split[0]), sorted(split[1].items())
        if not all(_at_least_everywhere(g, 0, b[n], size_symbol(n)) for n, g in fs):
            plans.append(("solve", e, b))
            continue
        images = [quasi(g, size_symbol(n)).image(b[n]) for n, g in fs]
        if any(img is None for img in images):
            plans.append(("solve", e, b))
        else:
            plans.append(("images", c, images))

    def reachable(m: int, images) -> bool:
        if not images:
            return m == 1
        if len(images) == 1:
            return m in images[0]
        return any(v in images[0] and reachable(m // v, images[1:]) for v in divisors(m))

    def test(t: int) -> bool:
        for plan in plans:
            if plan[0] == "images":
                _, c, images = plan
                if t % c == 0 and reachable(t // c, images):
                    return True
            else:
                _, e, b = plan
                if _restrict(Requirement(e, "==", t, ""), [b], free, {}, "flat"):
                    return True
        return False

    return test


def solve_flat(analysis, flat: int, layer: str | None = None, square: bool = False, batch: int = 1,
               search: int = 100000) -> SizeSet:
    """The valid sizes whose in_features at ``layer`` (default: the first Linear) equals ``flat``.

    The Linear's own declared in_features is left out (it is the number being chosen); every other
    check stays. When no size works, ``SizeSet.nearest`` holds the nearest achievable values below
    and above with the sizes that give them (searched up to ``search`` away; the note says if that
    ran out).
    """
    if isinstance(flat, bool) or not isinstance(flat, numbers.Integral) or flat < 0:
        raise InvalidArgument(f"flat must be a non-negative int, got {flat!r}")
    flat, batch = int(flat), positive_int(batch, "batch")
    name, _ = analysis.linear(layer)
    leaves = [leaf for leaf in analysis.leaves() if name in leaf.in_features]
    results = [_solve_flat(leaf, flat, name, square, batch, search) for leaf in leaves]
    if len(results) == 1:
        return results[0]
    out = _union_of(results)
    if out.is_empty:  # the nearest values over every case
        for r in results:
            for label, (value, sizes) in r.nearest.items():
                best = out.nearest.get(label)
                if best is not None and best[0] == value:
                    sizes = _union_of([best[1], sizes])
                elif best is not None and (value < best[0] if label == "below" else value > best[0]):
                    continue
                out.nearest[label] = (value, sizes)
        fixed = analysis.fixed.get(name)
        out.note = _nearest_note(name, fixed, flat, out.nearest, search,
                                 all(r.note.startswith("the model accepts no") for r in results))
    return out


def _solve_flat(analysis, flat: int, name: str, square: bool, batch: int, search: int) -> SizeSet:
    name, expr = analysis.linear(name)
    ties, groups = _square_ties(analysis) if square else ({}, None)
    names = analysis.size_names
    free = [n for n in names if n not in ties]
    subs: dict = {batch_symbol(): sympy.Integer(batch)}
    subs.update({size_symbol(n): size_symbol(to) for n, to in ties.items()})
    fixed = analysis.fixed.get(name)
    base = [(w, r) for w, r in analysis.requirements if analysis.fixed_by(w, r) != name]
    valid = solve_requirements(names, base, batch, ties, groups)
    boxes = [dict(b) for b in valid.boxes]

    def restrict(value: int) -> SizeSet:
        req = Requirement(expr, "==", value, f"{fixed.parameter if fixed else 'in_features'} of {name} is {value}")
        return SizeSet(names, _restrict(req, boxes, free, subs, name), groups=groups)

    result = restrict(flat)
    if not result.is_empty:
        return result
    if valid.is_empty:
        result.note = "the model accepts no input size at all"
        return result
    nearest = {}
    fixed_value = as_expr(expr).xreplace(subs)
    if fixed_value.is_Integer:  # the same at every size (view(-1, 3)): the one value there is, no search
        hit = int(fixed_value)
        if abs(hit - flat) <= search:
            nearest["below" if hit < flat else "above"] = (hit, restrict(hit))
    else:
        test = _value_test(expr, boxes, free, subs)
        for label, values in (("below", range(flat - 1, max(-1, flat - search - 1), -1)),
                              ("above", range(flat + 1, flat + search + 1))):
            hit = next((v for v in values if test(v)), None)
            if hit is not None:
                nearest[label] = (hit, restrict(hit))
    result.nearest = nearest
    result.note = _nearest_note(name, fixed, flat, nearest, search, False)
    return result


def _nearest_note(name: str, fixed, flat: int, nearest: dict, search: int, nothing_valid: bool) -> str:
    if nothing_valid:
        return "the model accepts no input size at all"
    parts = [f"no valid input size gives {name} {fixed.parameter if fixed else 'in_features'} = {flat}"]
    for label in ("below", "above"):
        if label in nearest:
            value, sizes = nearest[label]
            parts.append(f"nearest {label}: {value} at {sizes}")
        elif label == "below" and flat <= search:
            parts.append("nothing smaller is reachable")
        else:
            parts.append(f"nearest {label}: none within {search}")
    return "; ".join(parts)
