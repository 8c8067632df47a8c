"""Univariate size expressions as quasi-polynomials, and exact integer solving.

Every size expression of one symbol ``x`` that symshape builds (sums, products, integer
multiples and ``floor(p/q)``) is a *quasi-polynomial*: there is a period ``P`` such that on each
residue class ``x = r + k*P`` it is an ordinary polynomial in ``k``. ``floor(p/q)`` with ``p``
linear on a class has period ``q`` times ``p``'s (then ``q`` divides the class slope, so the floor
is linear again); products add degrees. So solving ``e(x) >= c`` or ``e(x) == c`` over the positive
integers is: for each residue class, solve a polynomial inequality in ``k`` exactly -- giving, per
class, an eventually periodic set, and together an :class:`~symshape.sizes.IntSet`.

The polynomial of each class is found by interpolation through ``degree + 1`` exact evaluations
and confirmed at two more points; a disagreement raises rather than guesses.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import sympy

from .compiled import compile_exprs
from .dims import DoubleFloor, FloorDiv, RelPosReach, as_expr, divisors
from .errors import SymshapeError
from .sizes import IntSet

__all__ = ["QuasiPoly", "Unsolvable", "quasi"]

MAX_PERIOD = 1 << 16


class Unsolvable(SymshapeError):
    """A constraint outside what the exact solver handles (it says which; it never guesses)."""


def degree(e, x) -> int:
    if not e.has(x):
        return 0
    if e == x:
        return 1
    if isinstance(e, (FloorDiv, DoubleFloor)):
        return degree(e.args[0], x)
    if isinstance(e, RelPosReach):
        return max(degree(a, x) for a in e.args)
    if isinstance(e, sympy.Add):
        return max(degree(a, x) for a in e.args)
    if isinstance(e, sympy.Mul):
        return sum(degree(a, x) for a in e.args)
    if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) >= 0:
        return int(e.exp) * degree(e.base, x)
    raise Unsolvable(f"{e} is not a quasi-polynomial in {x}")


def _denominator(e) -> int:
    return math.lcm(1, *(int(a.q) for a in e.atoms(sympy.Rational)))


def period(e, x) -> int:
    """A period ``P`` such that ``e`` is a polynomial on each residue class modulo ``P``."""
    if not e.has(x) or e == x:
        return 1
    if isinstance(e, FloorDiv):
        p, q = e.args
        deg = degree(p, x)
        return int(q) * period(p, x) * _denominator(p) * (math.factorial(deg) if deg >= 2 else 1)
    if isinstance(e, (sympy.Add, sympy.Mul)):
        return math.lcm(*(period(a, x) for a in e.args))
    if isinstance(e, sympy.Pow):
        return period(e.base, x)
    if isinstance(e, DoubleFloor):
        raise Unsolvable(f"{e} rounds a double-precision product: it has no period (symshape solves it "
                         f"where it only needs that it grows with {x})")
    if isinstance(e, RelPosReach):
        raise Unsolvable(f"{e} is computed in float32: it has no period (symshape solves it where it only needs "
                         f"that it grows with {x})")
    raise Unsolvable(f"{e} is not a quasi-polynomial in {x}")


def _interpolate(points: list[tuple[int, Fraction]]) -> list[Fraction]:
    """Coefficients (constant first) of the polynomial through ``points`` (Lagrange, exact)."""
    n = len(points)
    coeffs = [Fraction(0)] * n
    for i, (xi, yi) in enumerate(points):
        basis = [Fraction(1)]
        denom = Fraction(1)
        for j, (xj, _) in enumerate(points):
            if j == i:
                continue
            basis = [Fraction(0)] + basis  # multiply by (k - xj)
            for t in range(len(basis) - 1):
                basis[t] -= xj * basis[t + 1]
            denom *= xi - xj
        for t in range(n):
            coeffs[t] += yi * basis[t] / denom
    while len(coeffs) > 1 and coeffs[-1] == 0:
        coeffs.pop()
    return coeffs


def _eval(coeffs: list[Fraction], k) -> Fraction:
    v = Fraction(0)
    for c in reversed(coeffs):
        v = v * k + c
    return v


def _ceil(f: Fraction) -> int:
    return -((-f.numerator) // f.denominator)


def _floor(f: Fraction) -> int:
    return f.numerator // f.denominator


def _real_root_brackets(coeffs: list[Fraction]) -> list[int]:
    """Integers next to every real root of the polynomial (each root lies within one of them)."""
    deg = len(coeffs) - 1
    if deg == 2:
        c, b, a = coeffs
        disc = b * b - 4 * a * c
        if disc < 0:
            return []
        num, den = disc.numerator, disc.denominator
        r = math.isqrt(num * den) / den  # sqrt(disc) up to rounding, bracketed below
        roots = [(-float(b) - r) / (2 * float(a)), (-float(b) + r) / (2 * float(a))]
    else:
        k = sympy.Symbol("k")
        poly = sympy.Poly(sum(sympy.Rational(c.numerator, c.denominator) * k**i for i, c in enumerate(coeffs)), k)
        roots = [float(rt.evalf(30)) for rt in poly.real_roots()]
    out: list[int] = []
    for rt in roots:
        f = math.floor(rt)
        out += [f - 1, f, f + 1, f + 2]
    return out


def _integer_roots(coeffs: list[Fraction]) -> list[int]:
    """The non-negative integer roots of a polynomial with rational coefficients.

    Scaled to integer coefficients, a root ``k > 0`` of ``k^j * q(k)`` with ``q(0) != 0`` divides
    ``q(0)`` (the rational root theorem), so the candidates are finitely many divisors.
    """
    den = math.lcm(*(c.denominator for c in coeffs))
    ints = [int(c * den) for c in coeffs]
    roots = []
    if ints[0] == 0:
        roots.append(0)
    while ints and ints[0] == 0:
        ints.pop(0)
    if len(ints) <= 1:
        return roots
    c0 = abs(ints[0])
    for d in divisors(c0):
        v = 0
        for c in reversed(ints):
            v = v * d + c
        if v == 0:
            roots.append(d)
    return roots


def _solve_poly(coeffs: list[Fraction], op: str, k0: int) -> list[tuple[int, int | None]]:
    """Integer ``k >= k0`` with ``poly(k) op 0`` (op: '>=' or '=='), as intervals (None: no end)."""
    deg = len(coeffs) - 1
    if deg == 0:
        holds = coeffs[0] >= 0 if op == ">=" else coeffs[0] == 0
        return [(k0, None)] if holds else []
    if deg == 1:
        b, a = coeffs
        root = -b / a
        if op == "==":
            return [(int(root), int(root))] if root.denominator == 1 and root >= k0 else []
        if a > 0:
            return [(max(k0, _ceil(root)), None)]
        hi = _floor(root)
        return [(k0, hi)] if hi >= k0 else []
    if op == "==":
        return [(k, k) for k in _integer_roots(coeffs) if k >= k0]
    marks = sorted({k0} | {m for m in _real_root_brackets(coeffs) if m >= k0})
    members: list[tuple[int, int | None]] = []

    def holds(k: int) -> bool:
        v = _eval(coeffs, k)
        return v >= 0 if op == ">=" else v == 0

    def add(lo: int, hi: int | None) -> None:
        if members and members[-1][1] is not None and members[-1][1] + 1 == lo:
            members[-1] = (members[-1][0], hi)
        else:
            members.append((lo, hi))

    for i, m in enumerate(marks):
        if holds(m):
            add(m, m)
        nxt = marks[i + 1] if i + 1 < len(marks) else None
        gap_lo = m + 1
        if nxt is not None and gap_lo <= nxt - 1:
            if op == ">=" and holds(gap_lo):  # no root strictly inside: constant sign
                add(gap_lo, nxt - 1)
        elif nxt is None and op == ">=" and holds(gap_lo):
            add(gap_lo, None)
    return members


class QuasiPoly:
    """``e(x)`` as one polynomial in ``k`` per residue class ``x = r + k*period``."""

    def __init__(self, expr: sympy.Expr, x: sympy.Symbol):
        self.expr, self.x = expr, x
        self.degree = degree(expr, x)
        self._period: int | Unsolvable | None = None
        #: (c0, c1, a, b, q) when e = c0 + c1*floor((a*x + b)/q) with c1, a > 0: monotone, solved
        #: (and its image taken) in closed form, whatever its period
        self.affine = _affine_floor(expr, x)
        #: e nondecreasing in x (sums and products, with positive coefficients, of x, floors of
        #: such expressions and non-negative powers): solved by bisection, whatever its period
        self.monotone = self.degree >= 1 and _nondecreasing(expr, x)
        #: e nonincreasing in x (``110 - RelPosReach(q, k)``: a bound from above on a monotone
        #: term), solved as its negation
        self.falling = self.degree >= 1 and not self.monotone and _nondecreasing(-expr, x)
        self._classes: list | None = None
        self._fn = None

    @property
    def period(self) -> int:
        """The period of the residue classes (raises Unsolvable where there is none)."""
        if self._period is None:
            try:
                self._period = period(self.expr, self.x)
            except Unsolvable as e:
                self._period = e
        if isinstance(self._period, Unsolvable):
            raise self._period
        return self._period

    @property
    def classes(self) -> list[tuple[int, int, list[Fraction]]]:
        """``(r, k0, coefficients)``: the polynomial in ``k`` on each residue class ``x = r +
        k*period`` (built on first use: a monotone affine floor never needs them)."""
        if self._classes is None:
            if self.period > MAX_PERIOD:
                raise Unsolvable(f"{self.expr} repeats only every {self.period} sizes, beyond the solver's "
                                 f"{MAX_PERIOD}")
            fn = compile_exprs([self.x], [self.expr], exact=True)
            classes = []
            npts = self.degree + 1
            for r in range(self.period):
                k0 = 0 if r >= 1 else 1
                pts = [(k, Fraction(fn(r + k * self.period)[0])) for k in range(k0, k0 + npts + 2)]
                coeffs = _interpolate(pts[:npts])
                if any(_eval(coeffs, k) != v for k, v in pts[npts:]):
                    raise Unsolvable(f"{self.expr} is not a polynomial on x = {r} (mod {self.period})")
                classes.append((r, k0, coeffs))
            self._classes = classes
        return self._classes

    def _set(self, pieces: list[tuple[int, list[tuple[int, int | None]]]]) -> IntSet:
        """Per-class k-ranges (x = r + k*period) -> one IntSet, built in a single pass."""
        P = self.period
        tails = [(r, r + lo * P) for r, ranges in pieces for lo, hi in ranges if hi is None]
        finite = [(r + lo * P, r + hi * P) for r, ranges in pieces for lo, hi in ranges if hi is not None]
        start = max([n for _, n in tails] + [hi + 1 for _, hi in finite] + [1])
        values: list[tuple[int, int]] = []
        for lo, hi in finite:
            values += [(n, n) for n in range(lo, hi + 1, P)] if P > 1 else [(lo, hi)]
        for r, n0 in tails:
            if P == 1:
                values.append((n0, start - 1))
            else:
                values += [(n, n) for n in range(n0, start, P)]
        return IntSet.periodic(start, P, [r % P for r, _ in tails], values)

    def solve(self, op: str, value) -> IntSet:
        """``{x >= 1 : e(x) op value}`` for op in ``>=``, ``<=``, ``==``, ``!=``, ``>``, ``<``."""
        value = Fraction(value)
        if self.affine is not None and op in (">=", "=="):
            return self._solve_affine(op, value)
        if self.monotone and op in (">=", "=="):
            return self._solve_monotone(op, value)
        if op in (">=", "==") and self.falling:  # e >= v is -e <= -v, of a nondecreasing -e
            return quasi(-self.expr, self.x).solve("<=" if op == ">=" else "==", -value)
        if op == "!=":
            return self.solve("==", value).complement()
        if op == ">":
            return self.solve(">=", value + 1) if value.denominator == 1 else self.solve(">=", value)
        if op == "<":
            return self.solve(">=", value).complement()
        if op == "<=":
            return self.solve(">", value).complement()
        pieces = []
        for r, k0, coeffs in self.classes:
            shifted = list(coeffs)
            shifted[0] -= value
            while len(shifted) > 1 and shifted[-1] == 0:
                shifted.pop()
            pieces.append((r, _solve_poly(shifted, op, k0)))
        return self._set(pieces)


    def _solve_affine(self, op: str, value: Fraction) -> IntSet:
        # c0 + c1*floor(y) op value, y = (a*x + b)/q, c1 > 0, a > 0: monotone, so an interval
        c0, c1, a, b, q = self.affine
        t = (value - c0) / c1
        if op == ">=":
            lo = _ceil((q * _ceil(t) - b) / Fraction(a))
            return IntSet.at_least(lo)
        if t.denominator != 1:
            return IntSet.empty()
        t = int(t)
        lo = _ceil(Fraction(q * t - b, a))
        hi = _ceil(Fraction(q * (t + 1) - b, a)) - 1
        return IntSet.interval(lo, hi)

    def _value(self, n: int) -> Fraction:
        if self._fn is None:
            self._fn = compile_exprs([self.x], [self.expr], exact=True)
        return Fraction(self._fn(n)[0])

    def _first(self, value: Fraction, strict: bool = False) -> int:
        """The least ``x >= 1`` with ``e(x) >= value`` (``> value`` if ``strict``): ``e`` is
        nondecreasing and unbounded, so a doubling search, then bisection, finds it exactly in
        O(log x) evaluations."""
        def reached(n: int) -> bool:
            v = self._value(n)
            return v > value if strict else v >= value

        if reached(1):
            return 1
        lo, hi = 1, 2
        while not reached(hi):
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # not reached(lo), reached(hi)
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if reached(mid) else (mid, hi)
        return hi

    def _solve_monotone(self, op: str, value: Fraction) -> IntSet:
        lo = self._first(value)
        if op == ">=":
            return IntSet.at_least(lo)
        if self._value(lo) != value:
            return IntSet.empty()
        return IntSet.interval(lo, self._first(value, strict=True) - 1)

    def _affine_image(self, domain: IntSet) -> IntSet:
        """The image of ``c0 + c1*floor((a*x + b)/q)`` (``a <= q``: the floor steps by at most 1,
        so it takes every value between its ends) over intervals and an unbounded tail."""
        c0, c1, a, b, q = self.affine

        def value(x: int) -> int:
            return c0 + c1 * ((a * x + b) // q)

        out = IntSet.empty()
        runs = list(domain.head) + ([(domain.start, None)] if domain.residues else [])
        for lo, hi in runs:
            first = value(lo)
            progression = IntSet.periodic(first, c1, [first % c1])
            out = out | (progression if hi is None else progression & IntSet.interval(first, value(hi)))
        return out

    def _kset(self, domain: IntSet, r: int, k0: int) -> IntSet:
        """``{k + 1 : k >= k0, r + k*period in domain}`` (shifted by one to stay positive)."""
        P = self.period
        head = []
        for lo, hi in domain.head:
            a, b = max(k0, -((r - lo) // P)), (hi - r) // P
            if a <= b:
                head.append((a + 1, b + 1))
        if not domain.residues:
            return IntSet.from_intervals(head)
        Q = domain.period
        kq = Q // math.gcd(P, Q)
        kt = max(k0, -((r - domain.start) // P))
        res = [k for k in range(kq) if (r + k * P) % Q in domain.residues]
        return IntSet.periodic(kt + 1, kq, [(k + 1) % kq for k in res], head)

    def image(self, domain: IntSet) -> IntSet | None:
        """The positive values ``{e(x) >= 1 : x in domain}`` of a quasi-linear ``e``; None if ``e``
        is not quasi-linear or decreases on some class (callers then solve value by value)."""
        if self.degree > 1:
            return None
        domain = domain & self.solve(">=", 1)
        if self.affine is not None and self.affine[2] <= self.affine[4] and (not domain.residues or domain.period == 1):
            return self._affine_image(domain)
        out = IntSet.empty()
        for r, k0, coeffs in self.classes:
            ks = self._kset(domain, r, k0)
            if ks.is_empty:
                continue
            b = coeffs[0]
            a = coeffs[1] if len(coeffs) > 1 else Fraction(0)
            if a.denominator != 1 or b.denominator != 1 or a < 0:
                return None
            a, b = int(a), int(b)
            if a == 0:
                out = out | IntSet.of([b])
                continue
            c = b - a  # value at j = k + 1 is a*j + c
            for lo, hi in ks.head:
                out = out | (IntSet.periodic(a * lo + c, a, [(a * lo + c) % a]) & IntSet.interval(1, a * hi + c))
            if ks.residues:
                out = out | IntSet.periodic(a * ks.start + c, a * ks.period,
                                            [(a * rr + c) % (a * ks.period) for rr in ks.residues])
        return out


def _nondecreasing(e, x) -> bool:
    """Whether ``e`` is, by its form, nondecreasing in ``x`` and unbounded where it has ``x``: x,
    positive multiples and sums of such terms, floors of them by positive ints, products and
    positive integer powers of such terms that are non-negative at ``x = 1``."""
    if not e.has(x):
        return True
    if e == x:
        return True
    if isinstance(e, FloorDiv):
        return bool(e.args[1].is_Integer and int(e.args[1]) > 0) and _nondecreasing(e.args[0], x)
    if isinstance(e, DoubleFloor):  # rounding a double product is monotone, and so is the floor
        return _nondecreasing(e.args[0], x)
    if isinstance(e, RelPosReach):  # nondecreasing in each argument, unbounded in the larger
        return all(_nondecreasing(a, x) for a in e.args)
    if isinstance(e, sympy.Add):
        return all(_nondecreasing(a, x) for a in e.args)
    if isinstance(e, sympy.Mul):
        coeff, rest = e.as_coeff_Mul()
        if not (coeff.is_Rational and coeff > 0):
            return False
        factors = sympy.Mul.make_args(rest)
        if len(factors) == 1:
            return _nondecreasing(factors[0], x)
        return all(_nondecreasing(f, x) and _nonnegative_at_one(f, x) for f in factors)
    if isinstance(e, sympy.Pow):
        return bool(e.exp.is_Integer and int(e.exp) >= 1) and _nondecreasing(e.base, x) and \
            _nonnegative_at_one(e.base, x)
    return False


def _nonnegative_at_one(e, x) -> bool:
    """``e(1) >= 0`` (so a nondecreasing ``e`` is non-negative for every ``x >= 1``)."""
    value = e.xreplace({x: sympy.Integer(1)})
    return bool(value.is_Rational and value >= 0)


def _affine_floor(expr, x):
    """``(c0, c1, a, b, q)`` with ``expr = c0 + c1*floor((a*x + b)/q)``, ``c1, a, q > 0`` ints."""
    c0, rest = as_expr(expr).as_coeff_Add()
    c1, core = rest.as_coeff_Mul()
    if not (c0.is_Integer and c1.is_Integer and int(c1) > 0):
        return None
    if core == x:
        return int(c0), int(c1), 1, 0, 1
    if isinstance(core, FloorDiv):
        p, q = core.args
        b, ax = p.as_coeff_Add()
        a, xx = ax.as_coeff_Mul()
        if xx == x and b.is_Integer and a.is_Integer and int(a) > 0:
            return int(c0), int(c1), int(a), int(b), int(q)
    return None


@lru_cache(maxsize=4096)
def quasi(expr: sympy.Expr, x: sympy.Symbol) -> QuasiPoly:
    return QuasiPoly(expr, x)
