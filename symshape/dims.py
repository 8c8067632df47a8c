"""Symbolic sizes and the one floor-division helper every rule uses.

Sizes are sympy expressions over positive-integer symbols (``H``, ``W``, ``L``, ``N`` ...).
Every rounding torch applies goes through :func:`floor_div` (``ceil_div`` is expressed with
it), which builds a :class:`FloorDiv` node. ``FloorDiv`` keeps the numerator whole, so the MNIST
net prints as ``20*floor((H - 12)/4)*floor((W - 12)/4)`` rather than sympy's rewritten
``(20*floor(H/4) - 60)*(floor(W/4) - 3)``, and it folds chains of divisions where that is exact:

    floor((floor((x + a)/m) + b)/n) = floor((x + a + b*m)/(m*n))     (a, b integers; m, n > 0)

Expressions built here are exact for *every* integer value of the symbols, not only for large
ones: no rewrite assumes a size is big enough.
"""

from __future__ import annotations

import functools
import keyword
import math
import numbers
import operator
import struct
from fractions import Fraction
from functools import reduce
from typing import Iterable, Iterator, Union

import sympy
from sympy import Add, Integer, Mul, S, ordered

from . import witness
from .errors import InvalidArgument, NotASize

__all__ = [
    "BATCH",
    "CeilSqrt",
    "DoubleFloor",
    "FloorDiv",
    "IntSqrt",
    "RelPosReach",
    "SizeExpr",
    "SizeRatio",
    "DoubleProduct",
    "always_divisible",
    "as_expr",
    "batch_symbol",
    "by_size",
    "canonical",
    "ceil_div",
    "decide",
    "divisors",
    "float_extremum",
    "floor_div",
    "scaled_floor",
    "integer_polynomial",
    "least_sizes",
    "maximum",
    "minimum",
    "positive_int",
    "product",
    "exact_quotient",
    "quotient",
    "rel_pos_reach",
    "size_sqrt",
    "size_symbol",
    "smallest_value",
    "smallest_value_where",
    "without_ite",
]

#: the most elements a tensor torch makes can have: it counts the bytes in int64 (8-byte dtypes)
MAX_TENSOR_ELEMENTS = 2 ** 58

#: the name of the batch dim, which symshape adds in front of one sample's shape
BATCH = "N"

SizeExpr = Union[sympy.Expr, int]


def as_expr(value, what: str = "a size", rational: bool = False) -> sympy.Expr:
    """``value`` as a sympy expression, *without parsing anything*.

    sympy expressions pass through; integers (``int``, ``bool``, numpy integers: any
    ``numbers.Integral``) become ``Integer``; with ``rational=True`` a ``Fraction`` becomes a
    ``Rational``. Anything else -- a string above all, which ``sympy.sympify`` would evaluate as
    Python code -- raises :class:`~symshape.errors.NotASize`. Every value that comes from a model
    or a user reaches sympy through here.
    """
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, numbers.Integral):
        return Integer(int(value))
    if rational and isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    raise NotASize(value, what)

_SYMBOLS: dict[str, sympy.Symbol] = {}


def positive_int(value, what: str, least: int = 1) -> int:
    """``value`` as an int, when it is a positive integer (any ``numbers.Integral`` but a bool);
    else :class:`~symshape.errors.InvalidArgument` (a ValueError and a TypeError) saying
    ``<what> must be a positive int, got <value>`` (``least=0``: a fixed dim of an input, which
    may be empty). Every size a user passes (an input shape
    entry, a size to evaluate at, a batch size) is checked here, with that one message."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least:
        return int(value)
    raise InvalidArgument(f"{what} must be {'a positive int' if least == 1 else f'an int >= {least}'}, "
                          f"got {value!r}")


def divisors(n: int) -> list[int]:
    """The positive divisors of ``|n|`` in increasing order (``n != 0``), by factorization, so a
    large ``n`` with small factors is fast (``divisors(10**18)``)."""
    return [int(d) for d in sympy.divisors(abs(int(n)))]


#: names a size cannot have: parameters of the methods that take sizes by name (``at(**sizes)``,
#: ``explain(format=..., **sizes)``)
RESERVED_NAMES = frozenset({"self", "format", "analysis"})


def batch_symbol() -> sympy.Symbol:
    """The batch dim's symbol, ``N``."""
    return size_symbol(BATCH)


def size_symbol(name: str) -> sympy.Symbol:
    """The positive-integer symbol called ``name`` (one object per name)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidArgument(f"size name {name!r} is not an identifier (use names like H, W, L)")
    if keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise InvalidArgument(f"size name {name!r} is reserved ({'a Python keyword' if keyword.iskeyword(name) else 'a parameter of symshape methods that take sizes by name'}): use names like H, W, L")
    sym = _SYMBOLS.get(name)
    if sym is None:
        sym = _SYMBOLS[name] = sympy.Symbol(name, integer=True, positive=True)
    return sym


#: divisors from which a floor prints in its natural form (``ceil(L/2**200)``): a deep chain's
NATURAL_FROM = 1 << 16


class FloorDiv(sympy.Function):
    """``floor(p/q)`` for an integer-valued expression ``p`` and a positive integer ``q``.

    Evaluation keeps a canonical, short form (each rewrite is exact for all integers):

    * ``floor((q*A + r)/q) = A + floor(r/q)`` for integer-valued ``A`` with a coefficient that is
      a multiple of ``q`` (constants stay inside, so ``floor((H - 12)/4)`` is kept as written);
    * ``floor((g*A + c)/(g*q')) = floor((A + floor(c/g))/q')`` where ``g`` divides ``q`` and
      every non-constant coefficient;
    * ``floor((floor(x/m) + b)/n) = floor((x + b*m)/(m*n))`` when the inner floor is the only
      one and ``b`` is an integer.
    """

    nargs = 2

    @classmethod
    def eval(cls, p, q):
        if not (q.is_Integer and q > 0):
            raise ValueError(f"FloorDiv needs a positive integer divisor, got {q}")
        if q == 1:
            return p
        if p.is_Integer:
            return Integer(int(p) // int(q))
        if isinstance(p, sympy.Mul) and any(isinstance(f, Add) for f in p.args):
            # (14*A + 14)*(14*B + 14) / 196: the factors' integer contents divide out
            c, rest = sympy.factor_terms(p).as_coeff_Mul()
            g = math.gcd(int(c), int(q)) if c.is_Integer else 1
            if g > 1 and integer_polynomial(rest):
                return cls(Integer(int(c) // g) * rest, Integer(int(q) // g))
        terms = Add.make_args(p)
        coeffs = [t.as_coeff_Mul() for t in terms]
        if any(not c.is_Integer for c, _ in coeffs):
            return None  # rational coefficients: leave it alone, the identities need integers
        qi = int(q)
        def pulls_out(c, m):
            return m is not S.One and int(c) % qi == 0 and integer_polynomial(m)

        whole = [c * m for c, m in coeffs if pulls_out(c, m)]
        if whole:
            rest = [c * m for c, m in coeffs if not pulls_out(c, m)]
            return Add(*[w / q for w in whole]) + cls(Add(*rest), q)
        const = sum((int(c) for c, m in coeffs if m is S.One), 0)
        variable = [(int(c), m) for c, m in coeffs if m is not S.One]
        g = reduce(math.gcd, (abs(c) for c, _ in variable), qi)
        if g > 1:
            num = Add(*[Integer(c // g) * m for c, m in variable]) + Integer(const // g)
            return cls(num, Integer(qi // g))
        floors = [(c, m) for c, m in variable if m.has(FloorDiv)]
        if len(floors) == 1 and floors[0][0] == 1 and isinstance(floors[0][1], FloorDiv):
            inner = floors[0][1]
            x, m = inner.args
            b = Add(*[Integer(c) * t for c, t in variable if t is not inner]) + Integer(const)
            return cls(x + b * m, m * q)
        return None

    def _eval_is_integer(self):
        return True

    def _eval_is_nonnegative(self):
        if self.args[0].is_nonnegative:
            return True
        return None

    def _natural(self):
        """``(numerator, divisor text, ceil?)`` for printing: a deep chain's divisor (at least
        ``2**16``) as a power of two, and ``floor((x + q - 1)/q)`` as ``ceil(x/q)``; else None."""
        p, q = self.args
        if int(q) < NATURAL_FROM:
            return None
        power = int(q).bit_length() - 1
        divisor = f"2**{power}" if 1 << power == int(q) else str(q)
        const, rest = p.as_coeff_Add()
        if const == q - 1 and rest != 0:
            return rest, divisor, True
        return p, divisor, False

    def _sympystr(self, printer):
        p, q = self.args
        natural = self._natural()
        if natural is not None:
            p, q, ceil = natural
        text = printer._print(p)
        if isinstance(p, Add):
            text = f"({text})"
        return f"{'ceil' if natural is not None and natural[2] else 'floor'}({text}/{q})"

    def _latex(self, printer, exp=None):
        p, q = self.args
        natural = self._natural()
        if natural is not None and natural[2]:
            q_text = natural[1].replace("**", "^{") + "}" if "**" in natural[1] else natural[1]
            return _power(rf"\left\lceil \frac{{{printer._print(natural[0])}}}{{{q_text}}} \right\rceil", exp)
        return _power(rf"\left\lfloor \frac{{{printer._print(p)}}}{{{printer._print(q)}}} \right\rfloor", exp)

    def _eval_rewrite_as_floor(self, p, q, **kwargs):
        return sympy.floor(p / q)


witness.FUNCTIONS[FloorDiv] = operator.floordiv  # (floor(p/q) of an int or a Fraction p)


class _RootRounded(sympy.Function):
    """The square root of an integer size, rounded to an integer as Python rounds the double
    ``math.sqrt(n)`` (``int(math.sqrt(T))``, ViT-style token grids). It is evaluated at a size by
    doing exactly that, so it is exact at every size; symbolically it is opaque (the solver
    refuses it by name)."""

    nargs = 1
    rounding = staticmethod(math.floor)

    @classmethod
    def eval(cls, n):
        if n.is_Integer:
            if n < 0:
                raise ValueError(f"math.sqrt of a negative size ({n})")
            return Integer(cls.rounding(math.sqrt(int(n))))
        return None

    def _eval_is_integer(self):
        return True

    def _eval_is_nonnegative(self):
        return True


class IntSqrt(_RootRounded):
    """``int(math.sqrt(n))`` (and ``math.floor``): ``floor(sqrt(n))`` below 2**52."""

    def _sympystr(self, printer):
        return f"floor(sqrt({printer._print(self.args[0])}))"

    def _latex(self, printer, exp=None):
        return _power(rf"\left\lfloor \sqrt{{{printer._print(self.args[0])}}} \right\rfloor", exp)


class CeilSqrt(_RootRounded):
    """``math.ceil(math.sqrt(n))``: ``ceil(sqrt(n))`` below 2**52."""

    rounding = staticmethod(math.ceil)

    def _sympystr(self, printer):
        return f"ceil(sqrt({printer._print(self.args[0])}))"

    def _latex(self, printer, exp=None):
        return _power(rf"\left\lceil \sqrt{{{printer._print(self.args[0])}}} \right\rceil", exp)


class DoubleFloor(sympy.Function):
    """``floor(double(n) * s)`` for a size ``n`` and a positive double ``s`` (kept as its exact
    binary value, a Rational): the output size of ``F.interpolate(scale_factor=s)``, which torch
    computes by multiplying in double precision and truncating.

    The double product is rounded before the floor, so this is *not* ``floor(n*s)`` in exact
    arithmetic: for ``s = 0.35`` (whose double is a little below 7/20) and ``n = 180`` the product
    is 62.99999999999999 and the size 62. It is evaluated at a size by doing exactly what torch
    does, so it is exact at every size; symbolically it is nondecreasing in ``n``, which is what
    the solver uses (by bisection); conditions that need its residue classes are refused by name.
    """

    nargs = 2

    @classmethod
    def eval(cls, n, s):
        if not (s.is_Rational and s > 0):
            raise ValueError(f"DoubleFloor needs a positive rational scale, got {s}")
        if n.is_Integer:
            return Integer(math.floor(float(int(n)) * _double(s)))
        return None

    def _eval_is_integer(self):
        return True

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_nonnegative else None

    @property
    def scale_text(self) -> str:
        """The scale as Python prints the double (``0.35``, ``0.3333333333333333``)."""
        return repr(_double(self.args[1]))

    def _sympystr(self, printer):
        n = self.args[0]
        text = printer._print(n)
        if isinstance(n, Add):
            text = f"({text})"
        return f"floor({text}*{self.scale_text})"

    def _latex(self, printer, exp=None):
        return _power(rf"\left\lfloor {printer._print(self.args[0])} \cdot {self.scale_text} \right\rfloor", exp)


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even), as torch casts a double to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _int_f32(n: int) -> float:
    """The float32 nearest a non-negative int (ties to even), as torch casts int64 to float32."""
    shift = n.bit_length() - 24
    if shift > 0:
        top, rest = divmod(n, 1 << shift)
        half = 1 << (shift - 1)
        n = (top + (rest > half or rest == half and top % 2)) << shift
    return float(n)


def rel_pos_reach(q: int, k: int) -> int:
    """The greatest entry of the relative-position index of a ``q``-long query grid and a
    ``k``-long key grid (see :class:`RelPosReach`): the entry at ``i = q - 1``, ``j = 0``, as
    torch computes it (``int64 * double`` in float32, plus the double ``(k - 1) * max(q / k,
    1.0)`` cast to float32, truncated); -1 where a grid is empty (no entry to check). Two
    float32 values' product is exact in a double and so rounded once; their sum is too, or its
    smaller term is below half a float32 step of the larger, which the sum rounds to either way."""
    if q < 1 or k < 1:
        return -1
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    first = _f32(_int_f32(q - 1) * _f32(q_ratio))
    return math.trunc(_f32(first + _f32((k - 1) * k_ratio)))


class RelPosReach(sympy.Function):
    """The greatest entry of ``(arange(q)[:, None] * max(k / q, 1.0) - arange(k)[None, :] *
    max(q / k, 1.0) + (k - 1) * max(q / k, 1.0)).long()``: the relative-position index of
    attention from a grid of ``q`` queries to one of ``k`` keys (MViTv2's ``cal_rel_pos_type``,
    SAM's and ViTDet's ``get_rel_pos``), which torch computes in float32 and truncates.

    In exact arithmetic it is ``2*m - 1 - ceil(m/n)`` (``m``, ``n`` the larger and smaller of
    ``q`` and ``k``); float32's rounding is what torch does, so it is evaluated at sizes by doing
    the same (:func:`rel_pos_reach`), exact at every size. Every float32 operation rounds
    monotonically, so the entry at ``i = q - 1``, ``j = 0`` is the greatest, and it is
    nondecreasing in ``q`` and in ``k``, which is what the solver uses (by bisection); conditions
    that need its residue classes are refused by name. (The least entry is 0: its two float32
    terms differ by less than 1 for ``q``, ``k`` below 2**22.)
    """

    nargs = 2

    @classmethod
    def eval(cls, q, k):
        if q.is_Integer and k.is_Integer:
            return Integer(rel_pos_reach(int(q), int(k)))
        return None

    def _eval_is_integer(self):
        return True

    def _eval_is_nonnegative(self):
        return True if all(a.is_positive for a in self.args) else None

    def _sympystr(self, printer):
        q, k = (printer._print(a) for a in self.args)
        return f"trunc_f32(({q} - 1)*max({k}/{q}, 1) + ({k} - 1)*max({q}/{k}, 1))"

    def _latex(self, printer, exp=None):
        q, k = (printer._print(a) for a in self.args)
        return _power(rf"\operatorname{{trunc}}_{{f32}}\left(({q} - 1) \max\left(\frac{{{k}}}{{{q}}}, 1\right) + "
                      rf"({k} - 1) \max\left(\frac{{{q}}}{{{k}}}, 1\right)\right)", exp)


def _power(tex: str, exp) -> str:
    """A bracketed size raised to ``exp`` (sympy's printer passes the exponent of a power)."""
    return tex if exp is None else f"{tex}^{{{exp}}}"


def _double(s) -> float:
    """The double a Rational holds exactly (int / int is correctly rounded: exact here)."""
    return int(s.p) / int(s.q)


#: the numerator and denominator a scale's exact binary value may have for ``floor(n*s)`` to be
#: written as a plain floor division (``floor(3*H/2)`` for 1.5): ``n*p`` stays below 2**53, so the
#: double product is exact, for every size below 2**32
SHORT_SCALE = 1 << 20


def scaled_floor(n: SizeExpr, scale) -> sympy.Expr:
    """The size ``floor(double(n) * scale)`` (``F.interpolate``, ``nn.Upsample``): a plain floor
    division where ``scale``'s double is a short binary fraction (2, 0.5, 1.5, 0.25: the product
    is exact), else :class:`DoubleFloor`."""
    value = Fraction(float(scale))
    if value <= 0:
        raise ValueError(f"a scale must be positive, got {scale}")
    if value.denominator <= SHORT_SCALE and value.numerator <= SHORT_SCALE:
        return floor_div(as_expr(n) * value.numerator, value.denominator)
    return DoubleFloor(as_expr(n), sympy.Rational(value.numerator, value.denominator))


def size_sqrt(value) -> "SizeRatio":
    """``math.sqrt`` of a size (``n ** 0.5``): a float in torch, kept as the exact root, which
    :class:`SizeRatio` rounds to :class:`IntSqrt` or :class:`CeilSqrt`."""
    n = value.expr if isinstance(value, SizeRatio) else as_expr(value, "the argument of math.sqrt")
    if not integer_polynomial(n):
        raise NotASize(value, "the argument of math.sqrt (symshape takes the root of an integer size)")
    return SizeRatio(sympy.Pow(n, S.Half, evaluate=False))  # sqrt(H*W), not sqrt(H)*sqrt(W)


def floor_div(p: SizeExpr, q: int) -> sympy.Expr:
    """``floor(p/q)``: torch's integer division of a size (``div_rtn``, round toward -inf)."""
    if not isinstance(q, numbers.Integral):
        raise NotASize(q, "a divisor")
    return FloorDiv(as_expr(p), Integer(int(q)))


def ceil_div(p: SizeExpr, q: int) -> sympy.Expr:
    """``ceil(p/q) = floor((p + q - 1)/q)`` for integer ``p`` and positive ``q``."""
    return floor_div(as_expr(p) + q - 1, q)


def canonical(expr: SizeExpr) -> sympy.Expr:
    """One short form per value: ``floor(a/q) + c`` becomes ``floor((a + c*q)/q)``.

    Applied to every size a rule produces, so that ``floor((H - 7)/2) + 1`` (a conv) and
    ``floor((H - 5)/2)`` (a different layer with the same arithmetic) compare equal.
    """
    expr = as_expr(expr)
    if expr.is_Atom:
        return expr
    return _canonical(expr)


@functools.lru_cache(maxsize=8192)
def _canonical(expr: sympy.Expr) -> sympy.Expr:
    """The body of :func:`canonical`, cached: every step's every size passes through it, and a
    stage of equal blocks gives the same sizes again and again."""
    if isinstance(expr, sympy.Mul) and any(isinstance(f, Add) for f in expr.args):
        # each factor in its own short form: (floor((H - 16)/224) + 1)*W is floor((H + 208)/224)*W
        return sympy.Mul(*(canonical(f) for f in expr.args))
    negative = {f: -FloorDiv(-f.args[0] + f.args[1] - 1, f.args[1]) for f in expr.atoms(FloorDiv)
                if _negative_numerator(f.args[0])}
    if negative:  # floor(-p/q) = -ceil(p/q) = -floor((p + q - 1)/q): a ceiling reads as one
        expr = expr.xreplace(negative)
    if expr.has(FloorDiv) and expr.has(Add):
        expr = expr.replace(lambda e: isinstance(e, Add), _rounded_up_halves)
    if isinstance(expr, Add):
        const, rest = expr.as_coeff_Add()
        if const.is_Integer and const != 0 and isinstance(rest, FloorDiv):
            p, q = rest.args
            return FloorDiv(p + const * q, q)
        k, inner = rest.as_coeff_Mul()
        if const.is_Integer and const != 0 and k.is_Integer and k > 1 and isinstance(inner, FloorDiv) \
                and int(const) % int(k) == 0:  # 7*floor((H - 1)/28) + 7 is 7*floor((H + 27)/28)
            p, q = inner.args
            return k * FloorDiv(p + (const / k) * q, q)
    return expr


def _rounded_up_halves(e):
    """``floor(a/m) - floor(a/(2m))`` is ``ceil(floor(a/m)/2) = floor((a + m)/(2m))`` (a size
    padded to even, then halved: Swin's patch merging), ``a - floor(a/2)`` with ``m = 1``; any
    common coefficient; other sums as they are."""
    terms = dict(reversed(t.as_coeff_Mul()) for t in Add.make_args(e))
    for half, neg in list(terms.items()):
        if not (isinstance(half, FloorDiv) and neg.is_Integer and neg < 0 and int(half.args[1]) % 2 == 0):
            continue
        b, d = half.args
        m = int(d) // 2
        whole = FloorDiv(b, Integer(m)) if m > 1 else b
        c = -neg
        if terms.get(whole) == c and whole != half:
            del terms[half], terms[whole]
            up = FloorDiv(b + m, d)
            terms[up] = terms.get(up, 0) + c
            return _rounded_up_halves(Add(*(k * t for t, k in terms.items())))
    return e


def _negative_numerator(p) -> bool:
    """Every non-constant term of ``p`` has a negative coefficient (``-H``, ``-2*H - W + 3``)."""
    terms = [t for t in Add.make_args(p) if not t.is_number]
    return bool(terms) and all(t.as_coeff_Mul()[0] < 0 for t in terms)


def integer_polynomial(expr: SizeExpr) -> bool:
    """Whether ``expr`` is a sum of integer multiples of products of symbols and floors -- so an
    integer at every integer size. Decided from the structure alone: sympy's ``is_integer``
    can be wrong on fractions of products (``N*(4*H - 2)/10`` claims to be an integer)."""
    expr = as_expr(expr)
    if isinstance(expr, _RootRounded):
        return integer_polynomial(expr.args[0])
    if isinstance(expr, DoubleFloor):
        return integer_polynomial(expr.args[0])
    if isinstance(expr, RelPosReach):
        return all(integer_polynomial(a) for a in expr.args)
    if expr.is_Integer or expr.is_Symbol or isinstance(expr, FloorDiv):
        return bool(expr.is_Integer or expr.is_Symbol and expr.is_integer or isinstance(expr, FloorDiv))
    if isinstance(expr, (Add, Mul)):
        return all(integer_polynomial(a) for a in expr.args)
    if isinstance(expr, sympy.Pow):
        return expr.exp.is_Integer and int(expr.exp) >= 0 and integer_polynomial(expr.base)
    return False


def always_divisible(expr: SizeExpr, divisor: SizeExpr) -> bool:
    """Whether ``divisor`` divides ``expr`` at every integer size (a sufficient test: False only
    means "not proved")."""
    expr, divisor = as_expr(expr), as_expr(divisor)
    if divisor.is_Integer:
        m = abs(int(divisor))
        if m == 0:
            return False
        if m == 1:
            return integer_polynomial(expr)
        expanded = sympy.expand(expr)
        terms = [t.as_coeff_Mul() for t in Add.make_args(expanded)]
        return all(c.is_Integer and int(c) % m == 0 and integer_polynomial(rest) for c, rest in terms)
    return integer_polynomial(expr / divisor)


@functools.lru_cache(maxsize=1024)
def least_sizes(facts: tuple) -> dict:
    """The least value of each size that ``facts`` (single-size relations: the checks of the
    steps before) allow, where that is above 1: no smaller value satisfies them (found by
    trying 1, 2, ...: exact whatever the relation's form)."""
    out: dict = {}
    for fact in facts:
        if not isinstance(fact, (sympy.Ge, sympy.Eq)) or len(fact.free_symbols) != 1:
            continue
        (size,) = fact.free_symbols
        least = next((v for v in range(1, _LEAST_TRIED + 1) if fact.xreplace({size: sympy.Integer(v)}) is sympy.true),
                     _LEAST_TRIED + 1)
        if least > out.get(size, 1):
            out[size] = least
    return out


#: how far least_sizes tries each size (beyond: at least this plus one)
_LEAST_TRIED = 64


def smallest_value_where(expr: SizeExpr, facts: tuple):
    """A lower bound of ``expr`` over the sizes where ``facts`` hold (see :func:`least_sizes`):
    :func:`smallest_value` with each size counted from its least value (a patch embedding's
    kernel: ``H >= 16``), or None."""
    expr = as_expr(expr)
    least = least_sizes(facts) if facts else {}
    return smallest_value(expr.xreplace({k: k + v - 1 for k, v in least.items() if k in expr.free_symbols}))


def smallest_value(expr: SizeExpr):
    """A lower bound of ``expr`` over all sizes, or None when none is found: sums, non-negative
    multiples and floors, products of non-negative factors, and Piecewise (the least piece). Without
    Piecewise it is the value with every size at its smallest (1), which is then the minimum."""
    expr = as_expr(expr)

    def low(e):
        if e.is_Integer:
            return int(e)
        if e.is_Symbol:
            return 1 if e.is_positive and e.is_integer else None
        if isinstance(e, FloorDiv):
            if not (e.args[1].is_Integer and e.args[1] > 0):
                return None
            v = low(e.args[0])
            return None if v is None else v // int(e.args[1])
        if isinstance(e, Add):
            parts = [low(a) for a in e.args]
            return sum(parts) if None not in parts else _low_of_remainders(e, low)
        if isinstance(e, Mul):
            c, rest = e.as_coeff_Mul()
            if not c.is_Integer or c < 0:
                return None
            parts = [low(a) for a in Mul.make_args(rest)]
            if None in parts or any(v < 0 for v in parts):
                return None  # a product is non-decreasing only while its factors are non-negative
            out = int(c)
            for v in parts:
                out *= v
            return out
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp > 0:
            v = low(e.base)
            return None if v is None or v < 0 else v ** int(e.exp)
        if isinstance(e, sympy.floor):
            # a size over a size (``a // b`` of sizes): at least 0 where both are (where ``b`` is
            # 0 Python raised, and the compiled value is 0 too)
            num, den = e.args[0].as_numer_denom()
            lows = [low(num), low(den)]
            return 0 if not den.is_number and None not in lows and min(lows) >= 0 else None
        if isinstance(e, sympy.Piecewise):
            # the value is one of the pieces: the least of their bounds bounds it (a broadcast's
            # Piecewise, e.g. ViT's class token plus patches added to a fixed position embedding)
            parts = [low(piece) for piece, _ in e.args]
            return None if None in parts else min(parts)
        return None

    return low(expr)


def _low_of_remainders(e: sympy.Expr, low):
    """A lower bound of a sum holding ``k*(u - m*floor(u/m))``, Python's ``k*(u % m)`` (from
    ``(32 - W % 32) / 2``): the remainder is at least 0 and at most m - 1, so the sum is at
    least the rest's bound plus ``min(0, k*(m - 1))``. None where no such term helps."""
    for term in e.args:
        c, f = term.as_coeff_Mul()
        if not (isinstance(f, FloorDiv) and f.args[1].is_Integer and f.args[1] > 0 and c.is_Integer):
            continue
        m = int(f.args[1])
        if int(c) % m:
            continue
        k = -int(c) // m
        rest = e - k * (f.args[0] - m * f)
        if rest.has(f):
            continue
        v = low(rest)
        if v is not None:
            return v + min(0, k * (m - 1))
    return None


def product(exprs: Iterable[SizeExpr]) -> sympy.Expr:
    return Mul(*[as_expr(e) for e in exprs])


def _factors(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Expr]] | None:
    """``expr`` as an integer coefficient and a list of factors (powers repeated), or None."""
    c, rest = expr.as_coeff_Mul()
    if not c.is_Integer:
        return None
    out: list[sympy.Expr] = []
    for f in Mul.make_args(rest):
        if isinstance(f, sympy.Pow) and f.exp.is_Integer and f.exp > 0:
            out += [f.base] * int(f.exp)
        elif isinstance(f, sympy.Pow) and f.exp.is_negative:
            return None
        elif f is not S.One:
            out.append(f)
    return c, out


def quotient(a: SizeExpr, b: SizeExpr) -> sympy.Expr:
    """``a / b``, with each factor of ``b`` cancelled against an equal factor of ``a``.

    sympy folds ``1/Piecewise(...)`` into the pieces, where nothing cancels any more: the
    element count of a tensor whose size broadcast a 1 (``N*386*Piecewise(...)``) divided by
    the product of the other view sizes kept both. Where the factors do not all cancel, the
    plain quotient."""
    a, b = as_expr(a), as_expr(b)
    fa, fb = _factors(a), _factors(b)
    if fa is None or fb is None or fb[0] == 0 or int(fa[0]) % int(fb[0]):
        return a / b
    left = list(fa[1])
    for f in fb[1]:
        if f not in left:
            return a / b
        left.remove(f)
    return Integer(int(fa[0]) // int(fb[0])) * Mul(*left)


def quotient_where(facts: tuple, a: SizeExpr, b: SizeExpr) -> sympy.Expr | None:
    """``a / b`` as a product without a fraction of sizes, where ``facts`` (relations of one size
    each) make each size's share of it a constant: a window partition's ``_assert`` that
    ``floor((H + 3)/4) == 8*floor((H + 3)/32)`` makes ``64*N*floor((H + 3)/32)*floor((W + 3)/32)
    / (floor((H + 3)/4)*floor((W + 3)/4))`` the batch size ``N``. Each share's constant is read
    at the least size the facts allow (up to 512) and proven by :func:`implied`; None where a
    share is not proven constant."""
    a, b = as_expr(a), as_expr(b)
    (ca, ga), (cb, gb) = by_size(a), by_size(b)
    if ga is None or gb is None or cb == 0 or not facts:
        return None
    out = ca / cb
    for x in set(ga) | set(gb):
        pa, pb = Mul(*ga.get(x, [])), Mul(*gb.get(x, []))
        if pa == pb:
            continue
        on_x = [f for f in facts if isinstance(f, sympy.Rel) and f.free_symbols == {x}]
        share = _share(on_x, x, pa, pb) if on_x and x.is_integer and x.is_positive else None
        if share is None:
            if pb != 1:
                return None
            out *= pa  # a size of the numerator alone (the batch size N)
            continue
        out *= share
    return out if out.as_coeff_Mul()[0].is_Integer and out.is_polynomial() else None


def split_product_equality(a: SizeExpr, b: SizeExpr, facts: tuple = ()) -> list:
    """``a == b`` for two products of sizes as one equality per size, where that is what it
    means: each size's factors on one side are at least ``k`` times its factors on the other at
    every size (decided), the ``k``s multiply to the ratio of the constants, and every factor is
    at least 1 (at every size, or wherever ``facts`` hold: what torch has checked by then) --
    then the products are equal exactly where each size's share is. A window partition's
    element count ``64*N*floor((H + 3)/4)*floor((W + 3)/4) == 4096*N*floor((H + 3)/32)*floor((W
    + 3)/32)`` is ``floor((H + 3)/4) == 8*floor((H + 3)/32)`` and the same of W; Hiera's
    ``floor(H/4)*floor(W/4) == 4*floor(H/8)*floor(W/8)``, where an earlier view has made
    ``floor(H/4)`` at least 1, is ``floor(H/4) == 2*floor(H/8)`` and the same of W. [] where
    any of that is not proven."""
    a, b = as_expr(a), as_expr(b)
    (ca, ga), (cb, gb) = by_size(a), by_size(b)
    if ga is None or gb is None or set(ga) != set(gb) or ca == 0:
        return []
    out, ratio = [], cb / ca
    for x in ga:
        pa, pb = Mul(*ga[x]), Mul(*gb[x])
        if pa == pb:
            continue
        if not (x.is_integer and x.is_positive):
            return []
        k = _ratio_far_out(pa, pb, x)
        if k is None or k <= 0:
            return []
        at_least_k = sympy.Ge(pa, k * pb)
        if not ((at_least_k is sympy.true or decide(at_least_k) is True) and _at_least_one(pa, facts)):
            return []
        out.append(sympy.Eq(pa, k * pb))
        ratio /= k
    return out if ratio == 1 and out else []


def _at_least_one(size: sympy.Expr, facts: tuple, least: int = 1) -> bool:
    """Whether ``size`` is at least ``least`` at every size, or wherever ``facts`` hold."""
    at_least = sympy.Ge(size, least)
    return at_least is sympy.true or decide(at_least) is True or implied(facts, at_least)


@functools.lru_cache(maxsize=1024)
def multiples_of(facts: tuple) -> dict:
    """The facts ``p == k*q`` (``k`` an integer above 1, ``q`` a floor division) as a rewrite
    ``p -> k*q``: Hiera's element counts make ``floor(H/4) == 2*floor(H/8)`` and
    ``floor(H/8) == 2*floor(H/16)``, with which its ``floor(floor(H/4)*floor(W/4)/64)`` windows
    are ``floor(H/32)*floor(W/32)`` (see :func:`rewritten`)."""
    out = {}
    for f in facts:
        if not isinstance(f, sympy.Eq):
            continue
        for p, other in ((f.lhs, f.rhs), (f.rhs, f.lhs)):
            k, q = other.as_coeff_Mul()
            if k.is_Integer and k > 1 and isinstance(q, FloorDiv) and q != p and not p.is_Number \
                    and p.as_coeff_Mul()[0] == 1 and p not in out:
                out[p] = other
    return out


def rewritten(expr, facts: tuple):
    """``expr`` with each fact ``p == k*q`` of :func:`multiples_of` applied until none applies
    (each rewrite is exact wherever the facts hold): an expression equal to ``expr`` there."""
    rules = multiples_of(tuple(facts))
    if not rules:
        return expr
    for _ in range(16):
        new = expr.xreplace(rules)
        if new == expr:
            break
        expr = new
    return expr


def positive_shares(a: SizeExpr, b: SizeExpr, facts: tuple = ()) -> list:
    """What ``a == b`` (two products of sizes) says of single sizes beyond the equality: where
    one side is positive (a positive constant, and each size's share at least 1), so is the
    other, and each of its shares, at least 0, is at least 1 -- Hiera's position embedding of
    ``56*56`` tokens, ``301056*N == 96*N*floor(H/4)*floor(W/4)``, makes ``floor(H/4) >= 1`` and
    ``floor(W/4) >= 1`` (what then splits the element counts of its later views:
    :func:`split_product_equality`). [] where nothing is proven."""
    a, b = as_expr(a), as_expr(b)
    (ca, ga), (cb, gb) = by_size(a), by_size(b)
    if ga is None or gb is None or not (ca.is_positive and cb.is_positive):
        return []
    if not all(f.is_integer for g in (ga, gb) for fs in g.values() for f in fs):
        return []  # (a fraction, or a factor not integer-valued: not a product of sizes)
    out = []
    for one, other in ((ga, gb), (gb, ga)):
        if all(_at_least_one(Mul(*fs), facts) for fs in one.values()):
            for fs in other.values():
                share = Mul(*fs)
                if not _at_least_one(share, facts) and _at_least_one(share, facts, 0):
                    out.append(sympy.Ge(share, 1))
    return out


def _share(facts: list, x: sympy.Symbol, pa: sympy.Expr, pb: sympy.Expr) -> sympy.Expr | None:
    """The constant ``pa / pb`` wherever the facts on ``x`` hold, if proven; else None."""
    tight = _bounds_tightened(x, facts)
    least = max([1] + [int(f.rhs) for f in tight if isinstance(f, sympy.Ge) and f.lhs == x])
    for v in range(least, 513):
        if all(_holds_at(f, x, v) for f in tight):
            den = pb.xreplace({x: v})
            if den == 0:
                continue
            q = pa.xreplace({x: v}) / den
            return q if q.is_Rational and implied(tuple(facts), sympy.Eq(pa, q * pb)) else None
    return None


def _holds_at(rel, x: sympy.Symbol, v: int) -> bool:
    """Whether ``rel``, a relation of the size ``x`` alone, holds at ``x = v``: with Python's
    exact integers where symshape.witness evaluates it (no sympy expression built: MaxViT's
    window partitions scan hundreds of sizes), else as sympy evaluates the substitution."""
    held = witness.holds(rel, {x: v})
    return held if held is not None else rel.xreplace({x: v}) is sympy.true


def exact_quotient(a: SizeExpr, b: SizeExpr) -> sympy.Expr | None:
    """``a / b`` where it is an integer at every size (:func:`always_divisible`), case by case
    for sizes defined by cases (each piece of a Piecewise in ``a`` or ``b`` substituted in
    both: SAM2's ``N*h*w // (h*w)`` where ``h`` is padded on one side of a branch); else None."""
    a, b = as_expr(a), as_expr(b)
    if always_divisible(a, b):
        return quotient(a, b)
    pieces = a.atoms(sympy.Piecewise) | b.atoms(sympy.Piecewise)
    if not pieces:
        return None
    pw = min(pieces, key=sympy.default_sort_key)
    out, before = [], set()
    for expr, cond in pw.args:
        # this piece: its condition holds, the earlier ones fail (in every Piecewise that asks)
        known = {cond: True, **{c: False for c in before}}
        q = exact_quotient(canonical(_resolved(a.xreplace({pw: expr}), known)),
                           canonical(_resolved(b.xreplace({pw: expr}), known)))
        if q is None:
            return None
        out.append((q, cond))
        before.add(cond)
    return sympy.Piecewise(*out)


def _resolved(expr: sympy.Expr, known: dict) -> sympy.Expr:
    """``expr`` with each Piecewise whose piece ``known`` (conditions -> truth) settles replaced
    by that piece."""
    while True:
        for pw in expr.atoms(sympy.Piecewise):
            piece = None
            for e, c in pw.args:
                if known.get(c) is False:
                    continue
                if c == sympy.true or known.get(c) is True:
                    piece = e
                break
            if piece is not None:
                expr = expr.xreplace({pw: piece})
                break
        else:
            return expr


class SizeRatio:
    """A size divided with ``/``: a float in torch (``H / 2``), kept here as an exact fraction.

    Python code takes ``math.ceil``/``math.floor`` of it (``math.ceil(H / 2)``, dynamic "same"
    padding, MobileViT's patch grid), compares it, or scales a tensor by it. For sizes below
    2**52 a float quotient of two integers rounds to an integer only where the exact one is
    one, so ``math.ceil(H / s)`` is exactly ``floor((H + s - 1)/s)``. It is never a size: a
    rule that reads one refuses it (:class:`~symshape.errors.NotASize`), as torch refuses a float.
    """

    __slots__ = ("expr",)

    def __init__(self, expr: sympy.Expr):
        self.expr = expr

    @staticmethod
    def _exact(value) -> sympy.Expr:
        if isinstance(value, DoubleProduct):
            raise TypeError(f"arithmetic on {value}, a double that Python rounded")
        if isinstance(value, SizeRatio):
            return value.expr
        if isinstance(value, float):
            return sympy.Rational(Fraction(value).numerator, Fraction(value).denominator)
        return as_expr(value, "a number")

    def _root(self) -> bool:
        """Whether this is the square root of an integer size (see :func:`size_sqrt`)."""
        e = self.expr
        return isinstance(e, sympy.Pow) and e.exp == S.Half and integer_polynomial(e.base)

    def _extremum(self):
        """The expression as ``Max``/``Min`` of ratios, where it is one with a positive or
        negative rational scale and a shift outside (``4*Min(3/4, H/W) + 1`` is ``Min(4, 4*H/W +
        1)``: Python's ``max``/``min`` of floats, symshape.trace's stand-in); else None."""
        e, scale, shift = self.expr, S.One, S.Zero
        if isinstance(e, sympy.Add):
            inner = [t for t in e.args if t.has(sympy.Max, sympy.Min)]
            if len(inner) != 1:
                return None
            shift, e = e - inner[0], inner[0]
        if isinstance(e, sympy.Mul):
            scale, e = e.as_coeff_Mul()
            if not scale.is_Rational or scale == 0:
                return None
        if not isinstance(e, (sympy.Max, sympy.Min)) or any(a.has(sympy.Max, sympy.Min) for a in e.args):
            return None
        kind = type(e) if scale > 0 else (sympy.Min if isinstance(e, sympy.Max) else sympy.Max)
        return kind, [SizeRatio(scale * a + shift) for a in e.args]

    def _cases(self) -> sympy.Piecewise | SizeRatio | None:
        """The ratio as cases of ratios, where it has a size defined by cases inside (a dim
        padded to a multiple of the patch on one side of a branch, divided by a window); or as
        one ratio without cases, where the cases are alike once folded (Swin's ``windows.shape[0]
        / (H * W / ws / ws)`` over a padded ``H``, ``W``: the batch in every case)."""
        if not self.expr.has(sympy.Piecewise):
            return None
        folded = sympy.piecewise_fold(self.expr)
        if isinstance(folded, sympy.Piecewise):
            return folded
        return None if folded.has(sympy.Piecewise) else SizeRatio(folded)

    def _rounded(self, up: bool) -> sympy.Expr:
        extremum = self._extremum()
        if extremum is not None:  # floor and ceil are monotone: each ratio rounded, then the extremum
            kind, ratios = extremum
            return canonical(kind(*(r._rounded(up) for r in ratios)))
        cases = self._cases()
        if isinstance(cases, SizeRatio):
            return cases._rounded(up)
        if cases is not None:  # each case rounded, under its condition
            return canonical(sympy.Piecewise(*((SizeRatio(e)._rounded(up), c) for e, c in cases.args)))
        if self._root():
            return (CeilSqrt if up else IntSqrt)(self.expr.base)
        num, den = sympy.fraction(sympy.together(self.expr))
        if not (den.is_Integer and integer_polynomial(num)):
            raise TypeError(f"rounding {self}: symshape rounds a size divided by an int")
        if den < 0:
            num, den = -num, -den
        return canonical(ceil_div(num, int(den)) if up else floor_div(num, int(den)))

    def __ceil__(self):
        return self._rounded(True)

    def __floor__(self):
        return self._rounded(False)

    def __trunc__(self):
        extremum = self._extremum()
        if extremum is not None:  # trunc is monotone too
            kind, ratios = extremum
            return canonical(kind(*(math.trunc(r) for r in ratios)))
        cases = self._cases()
        if isinstance(cases, SizeRatio):
            return math.trunc(cases)
        if cases is not None:
            return canonical(sympy.Piecewise(*((math.trunc(SizeRatio(e)), c) for e, c in cases.args)))
        num, den = sympy.fraction(sympy.together(self.expr))
        low = smallest_value(num) if den.is_Integer and den > 0 else None
        if self._root() or low is not None and low >= 0:
            return self._rounded(False)
        raise TypeError(f"int() of {self}, which may be negative")

    def _op(self, other, fn):
        if not isinstance(other, (SizeRatio, float, numbers.Integral, sympy.Expr)):
            return NotImplemented
        return SizeRatio(fn(self.expr, SizeRatio._exact(other)))

    def __add__(self, o): return self._op(o, lambda a, b: a + b)  # noqa: E704
    def __radd__(self, o): return self._op(o, lambda a, b: b + a)  # noqa: E704
    def __sub__(self, o): return self._op(o, lambda a, b: a - b)  # noqa: E704
    def __rsub__(self, o): return self._op(o, lambda a, b: b - a)  # noqa: E704
    def __mul__(self, o): return self._op(o, lambda a, b: a * b)  # noqa: E704
    def __rmul__(self, o): return self._op(o, lambda a, b: b * a)  # noqa: E704
    def __truediv__(self, o): return self._op(o, lambda a, b: a / b)  # noqa: E704
    def __rtruediv__(self, o): return self._op(o, lambda a, b: b / a)  # noqa: E704

    def __neg__(self):
        return SizeRatio(-self.expr)

    def __float__(self):
        raise TypeError(f"float() of {self}, which depends on the input size")

    def __bool__(self):
        raise TypeError(f"the truth of {self}, which depends on the input size")

    def __eq__(self, other):
        return isinstance(other, SizeRatio) and self.expr == other.expr

    def __hash__(self):
        return hash(("SizeRatio", self.expr))

    def __repr__(self) -> str:
        return f"{self.expr} (a float in torch)"


#: the longest period :func:`decide` expands a condition over
_MAX_PERIOD = 256


def without_ite(cond):
    """``cond`` with each ``ITE(a, b, c)`` (sympy writes a Piecewise of conditions so) as
    ``(a & b) | (~a & c)``, which sympy settles where it is plain: ``ITE(c, False, c)`` is False."""
    if not isinstance(cond, sympy.Basic) or not cond.has(sympy.ITE):
        return cond
    return cond.replace(lambda e: isinstance(e, sympy.ITE),
                        lambda e: sympy.Or(sympy.And(e.args[0], e.args[1]), sympy.And(sympy.Not(e.args[0]), e.args[2])))


def _extremum(a: SizeExpr, b: SizeExpr, smaller: bool) -> sympy.Expr:
    """The smaller (or larger) of ``a`` and ``b`` where :func:`decide` orders them at every size,
    else ``Min`` (``Max``)."""
    return _ordered_pair(as_expr(a), as_expr(b), smaller)


@functools.lru_cache(maxsize=8192)
def _ordered_pair(a: sympy.Expr, b: sympy.Expr, smaller: bool) -> sympy.Expr:
    """:func:`_extremum` of two expressions (cached: the sides of a branch and the slices of
    a window mask, Swin's ``img_mask[:, h, w, :]``, ask the same pairs many times over)."""
    if a.is_Number and b.is_Number:
        return min(a, b) if smaller else max(a, b)
    # (unevaluated: sympy's evaluation of the relation asks its assumptions, and decide() reads
    # only a relation it did not settle; where it did, Min and Max below settle it again)
    if a == b or _at_most(a, b):
        return a if smaller else b
    if _at_most(b, a):
        return b if smaller else a
    kind = sympy.Min if smaller else sympy.Max
    if a.has(sympy.Piecewise, sympy.Min, sympy.Max) or b.has(sympy.Piecewise, sympy.Min, sympy.Max):
        # sympy's evaluation looks for an order of such sizes through factor_terms of their
        # difference (seconds a slice in MONAI's Swin windows, and no order where _at_most found
        # none): the same expression sympy builds from arguments it cannot order -- nested ones
        # of the same kind merged, each once, in sympy's order
        args = list(ordered({e for v in (a, b) for e in (v.args if isinstance(v, kind) else (v,))}))
        return args[0] if len(args) == 1 else kind(*args, evaluate=False)
    return kind(a, b)


def _at_most(a: sympy.Expr, b: sympy.Expr) -> bool:
    """``a <= b`` at every size, as :func:`decide` finds it; for sizes defined by cases, in
    every case of ``b - a`` (a slice ``[:h]`` of ``h`` padded to whole windows, ``h`` itself a
    dim padded to a multiple of the patch on one side of a branch)."""
    if decide(sympy.Le(a, b, evaluate=False)) is True:
        return True
    if not (a.has(sympy.Piecewise) or b.has(sympy.Piecewise)):
        return False
    folded = sympy.piecewise_fold(b - a)
    if not isinstance(folded, sympy.Piecewise):
        return False
    return all(e >= 0 if e.is_number else decide(sympy.Ge(e, 0, evaluate=False)) is True for e, _ in folded.args)


@functools.lru_cache(maxsize=1024)
def float_extremum(kind, args: tuple) -> sympy.Expr:
    """Python's ``max``/``min`` of floats that are ratios of sizes (``max(k / q, 1.0)``, MViTv2's
    relative positions) as sympy's ``Max``/``Min`` (``kind``) of their exact values, built
    without sympy's evaluation, which asks its assumptions whether each pair compares (tens of
    milliseconds for two ratios of floors, to settle what only the sizes do): nested extrema of
    the same kind flattened, an argument given twice once, the numbers compared. (Cached: each
    block of a stage asks of the same grids.)"""
    flat: list = []
    for a in args:
        flat.extend(a.args if isinstance(a, kind) else (a,))
    numbers = [a for a in flat if a.is_Number]
    rest = list(dict.fromkeys(a for a in flat if not a.is_Number))
    if numbers:
        rest.append(max(numbers) if kind is sympy.Max else min(numbers))
    return rest[0] if len(rest) == 1 else kind(*rest, evaluate=False)


def minimum(a: SizeExpr, b: SizeExpr) -> sympy.Expr:
    """``min(a, b)``, as one of them where they are ordered at every size (a slice ``[:H]`` of a
    dim padded to ``7*ceil(H/7)`` is ``H`` long), else ``Min``."""
    return _extremum(a, b, smaller=True)


def maximum(a: SizeExpr, b: SizeExpr) -> sympy.Expr:
    """``max(a, b)``, decided as :func:`minimum` is."""
    return _extremum(a, b, smaller=False)


def decide(cond) -> bool | None:
    """Whether a condition on one size holds at every size >= 1 (see :func:`_decide`; cached)."""
    settled = settle(cond)
    return None if settled is DEPENDS else settled


def holds_at_every_size(cond) -> bool:
    """Whether ``cond`` -- relations of sizes joined by ``And`` and ``Or`` -- holds at every size
    (each relation as :func:`decide` reads it; False where it cannot tell)."""
    if isinstance(cond, sympy.And):
        return all(holds_at_every_size(c) for c in cond.args)
    if isinstance(cond, sympy.Or):
        return any(holds_at_every_size(c) for c in cond.args)
    return cond is sympy.true or decide(cond) is True


#: :func:`settle`'s answer for a condition that holds at some sizes and fails at others
DEPENDS = "depends on the size"


def settle(cond) -> bool | str | None:
    """:func:`decide`, telling apart a condition proven to hold at some sizes and fail at others
    (:data:`DEPENDS`) from one it cannot read (None): nothing else decides the first any better."""
    if not isinstance(cond, sympy.Rel) or len(cond.free_symbols) != 1:
        return None
    return _decide(cond)


def _period(cond) -> int | None:
    """The period of the floor divisions and remainders in ``cond`` (each of them is linear in
    ``k`` for ``x = period*k + r``), or None where that does not hold or is past _MAX_PERIOD."""
    period = 1
    for f in cond.atoms(FloorDiv):
        period = math.lcm(period, int(f.args[1]))
    for f in cond.atoms(sympy.Mod):
        if not f.args[1].is_Integer:
            return None
        period = math.lcm(period, int(f.args[1]))
    if period > _MAX_PERIOD or cond.has(sympy.floor, sympy.ceiling, sympy.Piecewise, sympy.Min, sympy.Max):
        return None
    return period


@functools.lru_cache(maxsize=8192)
def _decide(cond) -> bool | str | None:
    """Whether a relation of one size holds at every size >= 1 (True), at none (False), or
    depends on the size (:data:`DEPENDS`; None where it cannot tell). Exact for quasi-linear
    conditions: the size is written as ``L*k + r`` for each residue ``r`` modulo the period
    ``L`` of its floor divisions, which makes every floor linear in ``k``, and a linear
    condition on ``k >= 0`` is decided by its value at the smallest ``k`` and its slope."""
    (x,) = cond.free_symbols
    if not (x.is_integer and x.is_positive):
        return None
    coarse = _coarsened(x, [cond])
    if coarse is not None:
        (cond,) = coarse
        return bool(cond) if isinstance(cond, sympy.logic.boolalg.BooleanAtom) else _decide(cond)
    period = _period(cond)
    if period is None:
        return _decide_extremum(cond)
    k = sympy.Dummy("k", integer=True, nonnegative=True)
    seen = set()
    at = _residues(cond, x, period, k)
    for r in range(period):
        outcome = _decide_linear(at(r), k, 1 if r == 0 else 0)
        if outcome is None:
            return None
        seen.add(outcome)
        if len(seen) > 1:  # holds on one residue class, fails on another
            return DEPENDS
    return seen.pop()


def _decide_extremum(cond) -> bool | None:
    """:func:`_decide` of a relation with a term ``k*Max(a, b)`` (or ``Min``, ``k`` a number),
    through the arguments: ``e + k*Max(a, b) <= 0`` is ``Max(e + k*a, e + k*b) <= 0`` for
    ``k > 0`` (a ``Min`` for ``k < 0``), which holds at every size where both do and fails
    at every size where either fails (a ``Min`` where either holds, where both fail): a slice
    ``[:-1]`` clamped at 0, ``Max(0, floor(L/20) - 1)``, beside the same length written
    ``floor((L - 20)/20)``; a stride ``Max(1, T)`` beside ``T`` times a size. None where the
    arguments do not decide it."""
    if not isinstance(cond, (sympy.Le, sympy.Lt, sympy.Ge, sympy.Gt)):
        return None
    e = cond.lhs - cond.rhs if isinstance(cond, (sympy.Le, sympy.Lt)) else cond.rhs - cond.lhs
    strict = isinstance(cond, (sympy.Lt, sympy.Gt))
    for term in sympy.Add.make_args(e):
        k, extremum = term.as_coeff_Mul()
        if not isinstance(extremum, (sympy.Max, sympy.Min)) or not k.is_Number or k == 0:
            continue
        rest = e - term
        outcomes = []
        for arg in extremum.args:
            piece = rest + k * arg
            if piece.is_number:
                outcomes.append(bool(piece < 0 if strict else piece <= 0))
            else:  # (unevaluated: sympy's evaluation asks its assumptions, which settle() need not)
                outcomes.append(settle((sympy.Lt if strict else sympy.Le)(piece, 0, evaluate=False)))
        if isinstance(extremum, sympy.Max) == (k > 0):  # the larger of the two must be <= 0: both
            return False if False in outcomes else True if all(o is True for o in outcomes) else None
        return True if True in outcomes else False if all(o is False for o in outcomes) else None
    return None


def equal_where(x: SizeExpr, y: SizeExpr, cond, facts: tuple = ()) -> bool:
    """Whether ``x == y`` wherever ``cond`` holds, for ``cond`` an equality of a size and a
    number (``Eq(h*w, 1)``): both with that size replaced by the number are the same expression
    (exact: where ``cond`` holds they are those values). Where ``cond`` makes a product of sizes
    1 and ``x`` or ``y`` is 1, each of the product's factors is 1 (sizes are never negative), and
    the other one's factors, size by size, are proven 1 from that and ``facts`` (relations that
    hold there too): torch's ``1`` where ``(floor((H + 3)/8) + 1)*floor((W + 7)/8) == 1``
    beside ``floor((H + 7)/8)*floor((W + 7)/8)``, which the facts make the same product. False
    where that is not shown."""
    if not isinstance(cond, sympy.Eq):
        return False
    for old, new in ((cond.lhs, cond.rhs), (cond.rhs, cond.lhs)):
        if new.is_Number and not old.is_Number:
            x, y = as_expr(x), as_expr(y)
            if sympy.expand(x.xreplace({old: new}) - y.xreplace({old: new})) == 0:
                return True
            # (and what the facts pin there too: ``h*w`` is 16 where ``w == 4`` on the side ``h == 4``)
            pins = {**_pinned(facts), old: new}
            if len(pins) > 1 and sympy.expand(x.xreplace(pins) - y.xreplace(pins)) == 0:
                return True
            other = y if x == 1 else x if y == 1 else None
            return new == 1 and other is not None and _ones_where(old, other, facts)
    return False


def _pinned(facts: tuple) -> dict:
    """The expressions ``facts`` give a number (``Eq(floor(H/2), 4)``), each with it."""
    pins = {}
    for f in facts:
        if isinstance(f, sympy.Eq):
            for old, new in ((f.lhs, f.rhs), (f.rhs, f.lhs)):
                if new.is_Number and not old.is_Number:
                    pins[old] = new
    return pins


def _ones_where(product: sympy.Expr, other: sympy.Expr, facts: tuple) -> bool:
    """Whether ``other`` is 1 wherever ``product`` (of sizes, none negative) is 1 and ``facts``
    hold: each of its factors by size is proven 1 from each of ``product``'s being 1."""
    if not isinstance(product, sympy.Mul):
        return False
    c, groups = by_size(other)
    if c != 1 or not groups:
        return False
    lows = [smallest_value(f) for f in product.args]
    if any(low is None or low < 0 for low in lows):
        return False
    ones = tuple(sympy.Eq(f, 1) for f in product.args)
    return all(implied((*facts, *ones), sympy.Eq(sympy.Mul(*g), 1)) for g in groups.values())


@functools.lru_cache(maxsize=4096)
def solved_equality(cond):
    """An equality or inequality that is linear in one integer-valued term, solved for it:
    ``Eq(127, 2*floor(H/16) - 1)`` is ``Eq(floor(H/16), 64)``; where no integer solves it,
    ``false`` (``Eq``) or ``true`` (``Ne``). Anything else as it is. Two conditions of a branch
    that say the same (SAM's ``floor(H/16) == 64`` and ``2*floor(H/16) - 1 == 127``) compare
    equal so, and a side where one holds and the other does not is none."""
    if not isinstance(cond, (sympy.Eq, sympy.Ne)):
        return cond
    terms = sympy.expand(cond.lhs - cond.rhs).as_coefficients_dict()
    variable = [(t, c) for t, c in terms.items() if not t.is_number]
    if len(variable) != 1:
        return cond
    (term, coefficient), = variable
    if not (coefficient.is_Integer and term.is_integer):
        return cond
    constant = sum((c * t for t, c in terms.items() if t.is_number), sympy.Integer(0))
    value = -constant / coefficient
    if not value.is_Integer:
        return sympy.false if isinstance(cond, sympy.Eq) else sympy.true
    return type(cond)(term, value)


def implied(facts, cond) -> bool:
    """Whether ``cond`` (a relation) holds wherever every fact holds: True only when proven
    (see :func:`_implied`; answers are cached, the sides of one branch ask the same questions)."""
    if not facts or not isinstance(cond, sympy.Rel):
        return False
    # only a relation of one of cond's sizes alone is used (_implied reads no other fact): the
    # others left out of the key, the sides of a branch and the steps after a check that adds
    # a fact on another size ask the same question again
    symbols = cond.free_symbols
    return _implied(tuple(dict.fromkeys(f for f in _conjuncts(facts) if _size_of(f) in symbols)), cond)


def _conjuncts(facts) -> Iterator:
    """The facts, each conjunction as its parts: ``a & b``, and ``~(a | b)`` (the side where a
    branch on ``h % 2 == 1 or w % 2 == 1`` is not taken) as ``~a`` and ``~b``, a negated
    relation as the relation it is (``Ne``, ``Lt`` ...)."""
    for f in facts:
        if isinstance(f, sympy.And):
            yield from _conjuncts(f.args)
        elif isinstance(f, sympy.Not) and isinstance(f.args[0], sympy.Or):
            yield from _conjuncts([sympy.Not(a) for a in f.args[0].args])
        elif isinstance(f, sympy.Not) and isinstance(f.args[0], sympy.Rel):
            yield f.args[0].negated
        else:
            yield f


@functools.lru_cache(maxsize=4096)
def _size_of(fact) -> sympy.Symbol | None:
    """The one size a relation depends on; None for anything else."""
    if not isinstance(fact, sympy.Rel) or len(fact.free_symbols) != 1:
        return None
    return next(iter(fact.free_symbols))


@functools.lru_cache(maxsize=4096)
def _implied(facts: tuple, cond) -> bool:
    """Whether ``cond`` (a relation) holds wherever every fact holds: True only when proven.

    For the sides of a Python branch (``if pad > 0:`` answered False): a relation of one size
    that the side's facts on that size settle, residue by residue as :func:`decide` does
    (``floor((H + 7)/8) == 7*floor((H + 7)/56)`` where ``Mod(6*floor((H + 7)/8), 7) <= 0``); an
    equality of two products, factor by factor (``h*w == (7*a)*(7*b)`` from ``h == 7*a`` and
    ``w == 7*b``). ``facts``: relations of one of cond's sizes each; ``cond``: a relation.

    Two quick answers first: a bound of an expression that the facts bound as tightly
    (``floor(H/32) >= 1`` where ``floor(H/32) > 7``), and no where a size is found at which every
    fact holds and ``cond`` does not (symshape.witness)."""
    if _bounded_by(facts, cond):
        return True
    if witness.fails_somewhere(facts, cond):
        return False
    if isinstance(cond, sympy.Eq) and (isinstance(cond.lhs, sympy.Mul) or isinstance(cond.rhs, sympy.Mul)):
        if _factors_implied(facts, cond.lhs, cond.rhs):
            return True
    product = _nonzero_asked(cond)
    if product is not None and _factors_nonzero(facts, product):
        return True
    if len(cond.free_symbols) > 1:
        return _product_bounded(facts, cond)
    if len(cond.free_symbols) != 1:
        return False
    (x,) = cond.free_symbols
    if not (x.is_integer and x.is_positive):
        return False
    relevant = _bounds_tightened(x, [f for f in facts if isinstance(f, sympy.Rel) and f.free_symbols == {x}])
    if not relevant:
        return False
    coarse = _coarsened(x, [cond, *relevant])
    period = None if coarse is not None else _period(sympy.And(cond, *relevant))
    if coarse is None and period is None:
        # a bound on the size itself (the stages' checks merged into ``H >= 17``) keeps the
        # floors from being read in a coarser size, and their period is past the limit (four
        # window partitions, up to ``floor((H + 31)/384)``): without that bound -- fewer facts,
        # more sizes, so a condition proven there holds here too
        loose = [f for f in relevant if x not in (f.lhs, f.rhs)]
        coarse = _coarsened(x, [cond, *loose]) if len(loose) < len(relevant) else None
        readable = tuple(f for f in relevant if _period(f) is not None)
        if coarse is None and len(readable) < len(relevant):
            # a fact this cannot read (a pool's output size written with Max and Min): the
            # others alone -- fewer facts, more sizes, so what they prove holds here too (MONAI's
            # Swin: its padded window equals the window where the earlier pads were 0)
            return implied(readable, cond) if readable else decide(cond) is True
    if coarse is not None:
        cond, *relevant = coarse
        if isinstance(cond, sympy.logic.boolalg.BooleanAtom):
            return bool(cond)
        relevant = [f for f in relevant if isinstance(f, sympy.Rel)]  # (a fact the change settles: left out)
        return implied(tuple(relevant), cond) if relevant else decide(cond) is True
    if period is None:
        return False
    k = sympy.Dummy("k", integer=True, nonnegative=True)
    facts_at = [_residues(f, x, period, k) for f in relevant]
    cond_at = _residues(cond, x, period, k)
    for r in range(period):
        lo, hi = (1 if r == 0 else 0), None
        for f_at in facts_at:  # the k where every fact holds: an interval (a fact not linear in k is left out)
            lo, hi = _narrowed(f_at(r), k, lo, hi)
            if hi is not None and hi < lo:
                break
        if hi is not None and hi < lo:
            continue  # no size with this residue is on the side
        if not _holds_between(cond_at(r), k, lo, hi):
            return False
    return True


def _bounded_by(facts: tuple, cond) -> bool:
    """Whether facts bound an expression as tightly as ``cond`` does (each read as ``lo <= e <=
    hi`` of an integer-valued ``e``: :func:`_interval`)."""
    want = _interval(cond)
    if want is None:
        return False
    e, lo, hi = want
    known_lo, known_hi = None, None
    for f in facts:
        got = _interval(f)
        if got is None or got[0] != e:
            continue
        if got[1] is not None:
            known_lo = got[1] if known_lo is None else max(known_lo, got[1])
        if got[2] is not None:
            known_hi = got[2] if known_hi is None else min(known_hi, got[2])
    return (lo is None or (known_lo is not None and known_lo >= lo)) \
        and (hi is None or (known_hi is not None and known_hi <= hi))


@functools.lru_cache(maxsize=4096)
def _interval(rel) -> tuple | None:
    """``rel`` as ``(e, lo, hi)``: ``lo <= e <= hi`` (None: no end) for an integer-valued ``e``
    with no constant term, where the relation is one of an integer (:func:`_against_number`, or
    an equality); a floor's whole multiples of its divisor taken out of it (``floor((H - 192)/32)
    >= 1`` is ``floor(H/32) >= 7``). None for anything else (``!=``, a relation of two sizes)."""
    if isinstance(rel, sympy.Eq):
        e, n = (rel.lhs, rel.rhs) if rel.rhs.is_Integer else (rel.rhs, rel.lhs)
        bound = (e, n, None, False) if n.is_Integer else None
    else:
        bound = _against_number(rel, integer=True)
    if bound is None:
        return None
    e, n, upper, strict = bound
    k, e = e.as_coeff_Add()
    if not k.is_Integer or e.is_number:
        return None
    n = int(n) - int(k)
    if isinstance(e, FloorDiv) and e.args[0].is_Add:
        k, rest = e.args[0].as_coeff_Add()
        q = int(e.args[1])
        if k.is_Integer and int(k) // q:
            e, n = FloorDiv(rest + int(k) % q, e.args[1]), n - int(k) // q
    if not integer_polynomial(e):  # (from its structure: sympy's is_integer is slow, and may be wrong)
        return None
    if upper is None:
        return e, n, n
    return (e, None, n - strict) if upper else (e, n + strict, None)


#: the most sizes :func:`_values_where` reads one by one
_MAX_VALUES = 256


def _product_bounded(facts: tuple, cond) -> bool:
    """Whether an inequality between a number and a product of expressions of more than one
    size holds wherever ``facts`` hold, read factor by factor: each size's factors take the
    values they take at the sizes its facts leave (a finite range, read one by one), and where
    none is negative the product lies between the products of their least and greatest
    (``floor((H + 6)/8)*floor((W + 6)/8) <= 49`` where the facts bound each floor by 7: the
    tokens of a Swin window clamped to a small image)."""
    bound = _against_number(cond)
    if bound is None:
        return False
    lhs, rhs, upper, strict = bound
    c, groups = by_size(lhs)
    if groups is None or not c.is_positive:
        return False
    low = high = c
    for x, parts in groups.items():
        if not (x.is_integer and x.is_positive):
            return False
        values = _values_where(x, tuple(f for f in facts if isinstance(f, sympy.Rel) and f.free_symbols == {x}),
                               sympy.Mul(*parts))
        if not values or min(values) < 0:
            return False
        low, high = low * min(values), high * max(values)
    if upper:
        return bool(high < rhs if strict else high <= rhs)
    return bool(low > rhs if strict else low >= rhs)


def _against_number(rel, integer: bool = False) -> tuple | None:
    """An inequality with a number on one side as ``(expr, number, upper, strict)``: ``expr <
    c`` is ``(expr, c, True, True)``, ``c <= expr`` turned round ``(expr, c, False, False)``;
    None for any other relation, or where neither side is a number (an integer, with
    ``integer``)."""
    if not isinstance(rel, (sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt)):
        return None
    lhs, rhs, upper = rel.lhs, rel.rhs, isinstance(rel, (sympy.Le, sympy.Lt))
    if lhs.is_Number:
        lhs, rhs, upper = rhs, lhs, not upper
    if not (rhs.is_Integer if integer else rhs.is_Number):
        return None
    return lhs, rhs, upper, isinstance(rel, (sympy.Gt, sympy.Lt))


@functools.lru_cache(maxsize=4096)
def _values_where(x: sympy.Symbol, facts: tuple, expr: sympy.Expr) -> tuple | None:
    """The values of ``expr`` (of the size ``x`` alone) at each size where every fact (each a
    relation of ``x`` alone) holds; None where those sizes are not bounded (or more than
    :data:`_MAX_VALUES`), or a fact or the expression does not evaluate to a number there.
    Cached: the sides of branches on two sizes ask each size's question once per side of its
    own branches, not once per pair."""
    lo, hi, others = 1, None, []
    for f in _bounds_tightened(x, list(facts)):
        if f.lhs == x and f.rhs.is_Integer and isinstance(f, (sympy.Ge, sympy.Le)):
            lo, hi = (max(lo, int(f.rhs)), hi) if isinstance(f, sympy.Ge) else (lo, int(f.rhs))
        else:
            others.append(f)
    if hi is None or hi - lo >= _MAX_VALUES:
        return None
    values = []
    for v in range(lo, hi + 1):
        at = {x: sympy.Integer(v)}
        for f in others:
            held = f.xreplace(at)
            if not isinstance(held, sympy.logic.boolalg.BooleanAtom):
                return None
            if not held:
                break
        else:
            value = expr.xreplace(at)
            if not value.is_Number:
                return None
            values.append(value)
    return tuple(values)


def _bounds_tightened(x: sympy.Symbol, facts: list) -> list:
    """The same facts on the size ``x``, each bound of one floor of it stated on ``x`` itself
    (``floor((x + b)/q) >= c`` is ``x >= q*c - b``) and the bounds on ``x`` merged into the
    tightest of each direction: the twenty checks a stage's layers made of ``H`` (``floor(H/4)
    >= 8``, ``floor(H/16) >= 2`` ...) are one ``H >= 32``, and the floors they named no longer
    lengthen the period :func:`_implied` goes through."""
    lower, upper, rest = None, None, []
    for f in facts:
        bound = _bound_on(x, f)
        if bound is None:
            rest.append(f)
        elif bound[0] == ">=":
            lower = bound[1] if lower is None else max(lower, bound[1])
        else:
            upper = bound[1] if upper is None else min(upper, bound[1])
    if lower is not None:
        rest.append(sympy.Ge(x, lower, evaluate=False))
    if upper is not None:
        rest.append(sympy.Le(x, upper, evaluate=False))
    return rest


def _bound_on(x: sympy.Symbol, fact) -> tuple[str, int] | None:
    """``fact`` as ``(">=", n)`` (``x >= n``) or ``("<=", n)``, where it bounds ``x`` or one
    floor ``floor((x + b)/q)`` by an integer; else None. Exact: ``floor((x + b)/q) >= c``
    exactly where ``x + b >= q*c``, and ``<= c`` exactly where ``x + b <= q*c + q - 1``."""
    bound = _against_number(fact, integer=True)
    if bound is None:
        return None
    lhs, rhs, upper, strict = bound
    lower, c = not upper, int(rhs)
    if strict:
        c = c + 1 if lower else c - 1  # strict: the next integer
    if lhs == x:
        return (">=" if lower else "<=", c)
    if not isinstance(lhs, FloorDiv):
        return None
    p, q = lhs.args
    b = sympy.expand(p - x)
    if not b.is_Integer:
        return None
    q, b = int(q), int(b)
    return (">=", q * c - b) if lower else ("<=", q * c + q - 1 - b)


def _coarsened(x: sympy.Symbol, exprs: list) -> list | None:
    """``exprs`` (in the size ``x`` alone) in a coarser size ``v >= 1``, where ``x`` appears only
    in floors ``floor((x + b)/q)`` that are all functions of one ``u = floor((x + a)/m)``, ``m >
    1``: each ``q`` a multiple of ``m`` and each ``b - a`` a multiple of ``m``. Then
    ``floor((x + b)/(m*k)) = floor((u + (b - a)/m)/k)`` (nested floors), and ``u`` takes every
    integer value from ``floor((1 + a)/m)`` on as ``x`` runs over the sizes ``>= 1``: a condition
    holds at every ``x`` (where the facts hold) exactly when it holds at every such ``u``
    (``u = v + floor((1 + a)/m) - 1``). This keeps the period of :func:`decide` small: the
    window of a stage at stride 16 (``floor((H + 15)/16)`` against 24 and ``floor((H - 1)/384)``)
    has period 24, not 384. None where no such ``u`` exists."""
    floors = {f for e in exprs for f in e.atoms(FloorDiv) if x in f.free_symbols}
    parts = []
    for f in floors:
        p, q = f.args
        b = sympy.expand(p - x)
        if not b.is_Integer:
            return None
        parts.append((f, int(b), int(q)))
    if not parts:
        return None
    m, a = min((q, b) for _, b, q in parts)
    if m == 1 or any(q % m or (b - a) % m for _, b, q in parts):
        return None
    v = _coarser(x)
    u = v + ((1 + a) // m - 1)
    mapping = {f: FloorDiv(u + (b - a) // m, Integer(q // m)) for f, b, q in parts}
    out = [_relation(type(e), (e.lhs - e.rhs).xreplace(mapping)) if isinstance(e, sympy.Rel) else e.xreplace(mapping)
           for e in exprs]
    if any(x in e.free_symbols for e in out):
        return None
    return out


@functools.lru_cache(maxsize=1024)
def _coarser(x: sympy.Symbol) -> sympy.Dummy:
    """The coarser size :func:`_coarsened` states relations of ``x`` in: one per size (the same
    question asked again is the same expression, which :func:`_implied` has cached), and another
    for it in turn (a coarsened relation coarsened again)."""
    return sympy.Dummy("v", integer=True, positive=True)


def _relation(kind, p: sympy.Expr):
    """``p (kind) 0``: decided where ``p`` is a number, else left unevaluated (sympy's own
    evaluation of a relation asks its assumptions about ``p``, costly on floors and never
    needed here: the callers decide it themselves)."""
    return kind(p, 0) if p.is_Number else kind(p, 0, evaluate=False)


_TEST = witness.TESTS


class _Line:
    """``a*k + b (rel) 0`` for exact rationals ``a``, ``b`` (ints, or Fractions): a relation
    linear in ``k``, read off without building it in sympy."""

    __slots__ = ("rel", "a", "b")

    def __init__(self, rel: type, a, b):
        self.rel, self.a, self.b = rel, a, b

    def __repr__(self) -> str:
        return f"{self.rel.__name__}({self.a}*k + {self.b}, 0)"


def _rel_type(rel) -> type:
    return rel.rel if isinstance(rel, _Line) else type(rel)


def _line_of(e: sympy.Expr, env: dict) -> tuple | None:
    """``e`` as ``a*k + b`` (Python ints, or Fractions where a coefficient is not whole), each
    symbol of ``env`` being the line it maps to, with Python's exact arithmetic: a sum, a product
    with at most one factor in ``k``, and ``floor(p/q)`` or ``p mod q`` of a line whose slope is
    a multiple of ``q`` (for integer ``k``, ``floor((q*s*k + b)/q) = s*k + floor(b/q)``). None for
    anything else (a floor whose slope is not such a multiple, another symbol or function), which
    the caller leaves to sympy."""
    if e.is_Rational:
        return 0, (int(e.p) if e.q == 1 else Fraction(int(e.p), int(e.q)))
    if e.is_Symbol:
        return env.get(e)
    if e.is_Add or e.is_Mul:
        add = e.is_Add
        a, b = (0, 0) if add else (0, 1)
        for t in e.args:
            line = _line_of(t, env)
            if line is None:
                return None
            if add:
                a, b = a + line[0], b + line[1]
            elif a and line[0]:
                return None  # k*k
            else:
                a, b = a * line[1] + b * line[0], b * line[1]
        return a, b
    if isinstance(e, (FloorDiv, sympy.Mod)):
        q = e.args[1]
        if not (q.is_Integer and q.p > 0):
            return None
        q = int(q.p)
        inner = _line_of(e.args[0], env)
        if inner is None or inner[0] % q:
            return None
        a, b = inner
        return (a // q, b // q) if isinstance(e, FloorDiv) else (0, b % q)
    return None


_R = sympy.Dummy("r", integer=True, nonnegative=True)


def _residues(rel, x: sympy.Symbol, period: int, k):
    """``r -> rel`` with its size written ``period*k + r``: a :class:`_Line` where the relation
    is linear in ``k`` (read off by :func:`_line_of` without building a sympy expression: the
    bulk of a branching module's time was sympy's), else the relation as sympy builds it, from
    one substitution of ``x = period*k + R`` for a symbolic residue ``R`` (the floors split off
    their multiples of ``k`` once) and then of each ``R = r``."""
    if not isinstance(rel, sympy.Rel):
        return lambda r: rel.xreplace({x: period * k + r})
    template = []

    def at(r: int):
        env = {x: (period, r)}
        lhs, rhs = _line_of(rel.lhs, env), _line_of(rel.rhs, env)
        if lhs is not None and rhs is not None and type(rel) in _TEST:
            return _Line(type(rel), lhs[0] - rhs[0], lhs[1] - rhs[1])
        if not template:
            template.append((rel.lhs - rel.rhs).xreplace({x: period * k + _R}))
        quick = _relation(type(rel), template[0].xreplace({_R: r}))
        if not isinstance(quick, sympy.Rel) or _linear(quick, k) is not None:
            return quick  # left unevaluated: the callers read it off the line
        return type(rel)((rel.lhs - rel.rhs).xreplace({x: period * k + r}), 0)  # as sympy evaluates it
    return at


def _linear(rel, k) -> tuple | None:
    """``rel`` as ``a*k + b (relation) 0`` with rational ``a``, ``b`` (ints or Fractions), or None."""
    if isinstance(rel, _Line):
        return rel.a, rel.b
    if not isinstance(rel, sympy.Rel):
        return None
    terms = sympy.expand(rel.lhs - rel.rhs).as_coefficients_dict(k)  # {k: a, 1: b} (a term in another: not linear)
    if any(t is not S.One and t != k for t in terms):
        return None
    a, b = terms.get(k, S.Zero), terms.get(S.One, S.Zero)
    if not (a.is_Rational and b.is_Rational):
        return None
    return Fraction(int(a.p), int(a.q)), Fraction(int(b.p), int(b.q))


def _narrowed(fact, k, lo: int, hi: int | None) -> tuple[int, int | None]:
    """The integers ``lo <= k <= hi`` (``hi`` None: no end) where ``fact`` also holds, as an
    interval: exact for a fact linear in ``k`` other than ``!=``; any other fact leaves the
    interval as it is (a weaker hypothesis, never a wrong one)."""
    if fact is sympy.false:
        return lo, lo - 1
    line = _linear(fact, k)
    rel = _rel_type(fact)
    if line is None or rel not in _TEST:
        return lo, hi
    a, b = line
    if a == 0:  # the same at every k (a fact sympy would have evaluated: Ne(1, 1) is False)
        return (lo, hi) if _TEST[rel](b, 0) else (lo, lo - 1)
    if rel is sympy.Ne:
        return lo, hi
    if rel is sympy.Eq:
        root = Fraction(-b) / a
        if root.denominator != 1 or root < lo or (hi is not None and root > hi):
            return lo, lo - 1
        return int(root), int(root)
    # a*k + b >= 0 (> 0, <= 0, < 0): as a*k >= -b with the relation's direction and strictness
    if rel in (sympy.Le, sympy.Lt):
        a, b = -a, -b
    strict = rel in (sympy.Gt, sympy.Lt)
    bound = Fraction(-b) / a  # k >= bound (a > 0) or k <= bound (a < 0), strictly where ``strict``
    whole = bound.denominator == 1
    if a > 0:  # (floors and ceilings by integer division: fx patches math.floor while it traces)
        least = bound.numerator // bound.denominator + 1 if strict or not whole else int(bound)
        return max(lo, least), hi
    most = -(-bound.numerator // bound.denominator) - 1 if strict or not whole else int(bound)
    return lo, most if hi is None else min(hi, most)


def _holds_between(cond, k, lo: int, hi: int | None) -> bool:
    """Whether ``cond`` holds at every integer ``lo <= k <= hi`` (``hi`` None: no end); True
    only when proven (a condition linear in ``k``)."""
    if cond is sympy.true or cond is sympy.false:
        return bool(cond)
    if hi is None:
        return _decide_linear(cond, k, lo) is True
    line = _linear(cond, k)
    rel = _rel_type(cond)
    if line is None or rel not in _TEST:
        return False
    a, b = line
    if rel is sympy.Ne:
        if a == 0:
            return b != 0
        root = Fraction(-b) / a
        return not (root.denominator == 1 and lo <= root <= hi)
    # linear in k: it holds on the whole interval exactly when it holds at both ends
    test = _TEST[rel]
    return test(a * lo + b, 0) and test(a * hi + b, 0)


def _factors_implied(facts, a, b) -> bool:
    """``a == b`` for two products whose factors, grouped by the size each depends on, pair up
    into equalities the facts imply."""
    (ca, ga), (cb, gb) = by_size(a), by_size(b)
    if ga is None or gb is None or set(ga) != set(gb) or len(ga) < 2:
        return False
    ratio = cb / ca
    if not ratio.is_Integer:
        if not (1 / ratio).is_Integer:
            return False
        ga, gb, ratio = gb, ga, 1 / ratio
    ratio = int(ratio)
    *most, last = list(ga)
    for x in most:  # each group's share of the constant: a divisor of what is left of it
        pa, pb = sympy.Mul(*ga[x]), sympy.Mul(*gb[x])
        share = next((c for c in _likely_first(sympy.divisors(ratio), pa, pb, x)
                      if sympy.expand(pa - c * pb) == 0 or implied(facts, sympy.Eq(pa, c * pb, evaluate=False))), None)
        if share is None:
            return False
        ratio //= share
    pa, pb = sympy.Mul(*ga[last]), ratio * sympy.Mul(*gb[last])
    return sympy.expand(pa - pb) == 0 or implied(facts, sympy.Eq(pa, pb, evaluate=False))


def _nonzero_asked(cond) -> sympy.Mul | None:
    """The product ``cond`` says is not 0 (``Ne(a*b, 0)``, either way round); None for any other
    relation."""
    if not isinstance(cond, sympy.Ne):
        return None
    for product, other in ((cond.lhs, cond.rhs), (cond.rhs, cond.lhs)):
        if other == 0 and isinstance(product, sympy.Mul):
            return product
    return None


def _factors_nonzero(facts, product: sympy.Mul) -> bool:
    """``product != 0``: each factor is proven not 0 where the facts hold (a product of sizes
    is 0 only where one of them is). A window attention's ``B // nW`` asks this of its window
    count, ``floor((H + 12)/14)*floor((W + 12)/14)``, on the side where the model's own check made
    H and W multiples of 32."""
    for factor in product.args:
        base = factor.base if isinstance(factor, sympy.Pow) and factor.exp.is_Integer and factor.exp > 0 \
            else factor
        if base.is_number:
            if base == 0:
                return False
            continue
        nonzero = sympy.Ne(base, 0)
        if nonzero is sympy.true:  # (a size itself)
            continue
        if not isinstance(nonzero, sympy.Rel) or not (len(base.free_symbols) == 1 and decide(nonzero) is True
                                                      or implied(facts, nonzero)):
            return False
    return True


def _likely_first(divisors: list, pa: sympy.Expr, pb: sympy.Expr, x: sympy.Symbol) -> list:
    """The divisors, :func:`_ratio_far_out` of ``pa`` to ``pb`` first (the share a window
    partition's factor has: one proof instead of one a divisor); only the order changes."""
    guess = _ratio_far_out(pa, pb, x)
    return divisors if guess is None else sorted(divisors, key=lambda c: c != guess)


def _ratio_far_out(pa: sympy.Expr, pb: sympy.Expr, x: sympy.Symbol) -> sympy.Integer | None:
    """The integer nearest ``pa / pb`` at a large size that is a multiple of every small divisor,
    where the ratio is that close to one (a guess, which the callers prove or only order by)."""
    big = {x: Integer(10 ** 6 * 720720)}
    den = pb.xreplace(big)
    if not den.is_Rational or den == 0:
        return None
    k = pa.xreplace(big) / den
    return Integer(round(k)) if k.is_Rational and abs(k - round(k)) < sympy.Rational(1, 1000) else None


def by_size(product: sympy.Expr) -> tuple[sympy.Expr, dict | None]:
    """A product's constant, and its other factors grouped by the one size each depends on
    (None where a factor depends on several)."""
    c, factors = product.as_coeff_mul()
    groups: dict = {}
    for f in factors:
        if len(f.free_symbols) != 1:
            return c, None
        groups.setdefault(next(iter(f.free_symbols)), []).append(f)
    return c, groups


def _decide_linear(rel, k, k0: int) -> bool | None:
    """A relation in ``k`` alone over ``k >= k0``: always (True), never (False), or None."""
    if rel is sympy.true or rel is sympy.false:
        return bool(rel)
    line = _linear(rel, k)
    kind = _rel_type(rel)
    if line is None or kind not in _TEST:
        return None
    a, b = line
    test = _TEST[kind]
    if a == 0:
        return test(b, 0)
    if kind is sympy.Eq or kind is sympy.Ne:
        root = Fraction(-b) / a
        if root.denominator == 1 and root >= k0:  # one k where p == 0
            return None
        return kind is sympy.Ne
    first, last = test(a * k0 + b, 0), test(a, 0)  # at k0, and as k grows (the slope's sign)
    return first if first == last else None


class DoubleProduct(SizeRatio):
    """A size times a float that is no short binary fraction (``x.size(1) * 0.3``): a double in
    Python, rounded before anything else happens to it. ``int()`` and ``math.floor`` of it are
    :class:`DoubleFloor`, exactly as Python computes them; any other arithmetic on it is refused
    by name (``int(10 * 0.3)`` is 3, but ``10 * 0.3 - 3`` is not 0)."""

    __slots__ = ("size", "scale")

    def __init__(self, size: sympy.Expr, scale: float):
        super().__init__(size * sympy.Rational(Fraction(scale).numerator, Fraction(scale).denominator))
        self.size, self.scale = size, scale

    def _rounded(self, up: bool) -> sympy.Expr:
        if up:
            raise TypeError(f"math.ceil of {self}: symshape follows int() and math.floor of a double product")
        if self.scale < 0 or smallest_value(self.size) is None or smallest_value(self.size) < 0:
            raise TypeError(f"rounding {self}, which may be negative")
        return canonical(DoubleFloor(self.size, SizeRatio._exact(self.scale)))

    def __trunc__(self):
        return self._rounded(False)

    def _op(self, other, fn):
        raise TypeError(f"arithmetic on {self}, a double that Python rounded: symshape follows int() and "
                        "math.floor of it")

    def __neg__(self):
        return self._op(None, None)

    def __eq__(self, other):
        return isinstance(other, DoubleProduct) and (self.size, self.scale) == (other.size, other.scale)

    def __hash__(self):
        return hash(("DoubleProduct", self.size, self.scale))

    def __repr__(self) -> str:
        return f"{self.size} * {self.scale!r} (a double in Python)"
