"""Bounds on the entries of a tensor computed element by element from tensors symshape follows.

T5 (and MT5, MPNet ...) index their relative-position bias table with a bucket computed from
``memory_position - context_position`` through a comparison, ``abs``, a float ``log`` and a
``where``:

    is_small = |r| < 8
    large    = min(8 + long(log(float(|r|) / 8) / log(16) * 8), 15)
    bucket   = 16*(r > 0) + where(is_small, |r|, large)

``r``'s exact extremes are known (symshape.ranges: ``1 - T … T - 1``) but no exact range is kept
past ``abs`` and ``log``, and a plain bound of ``large`` is useless: at ``r = 0`` torch computes
``log(0) = -inf``, whose conversion to an integer is ``-2**63``. That entry is never picked:
``where`` takes ``large`` only where ``|r| >= 8``. A :class:`Form` records how each entry is
computed from the entries *at the same position* of the tensors it comes from, so that
:func:`bounds` can read ``where(X < 8, a, b)`` as ``a`` over the entries where ``X <= 7`` and
``b`` over those where ``X >= 8``: on those, ``log(|r| / 8) >= 0`` and ``large`` lies in
``8 … 15``. The bucket lies in ``0 … 31``: every index into the table of 32 rows is in bounds,
at every length.

A bound is sound, not exact (an end need not be attained): it proves an index in bounds, never
that torch refuses one (symshape.rules.layout refuses the analysis where the bound does not
fit). What a form follows:

- leaves: a tensor with exact extremes (``entry_range``), a bound (``index_bound``), known
  entries (a constant), a bool (``0 … 1``); any other integer or float tensor of a known dtype,
  unbounded;
- integers, exactly in sympy (the ends may be sizes): ``+``, ``-``, unary ``-``, ``*`` (by a
  number of known sign, or of two tensors that are never negative), ``//`` and ``%`` by a
  positive number, ``abs``, ``min``/``max``/``minimum``/``maximum`` of two, ``clamp``, the
  comparisons (a bool, decided where the bounds decide it), ``where``, and the casts between
  bool, integer and float dtypes (a float's conversion truncates toward zero; a NaN, an
  infinity, or a value past int64 may give any integer, and does give ``-2**63`` on x86);
- floats, at concrete ends only, by torch itself: each monotone op (``log``, ``exp``, ``sqrt``,
  ``floor`` ..., ``+``, ``-``, ``*``, ``/`` by a number, ``clamp`` by numbers) is run on a tensor of
  the two ends, and its result widened by :data:`ULPS` units in the last place each way (a
  vectorized ``log`` and a scalar one may differ in the last place; a division by a number may
  be a multiplication by its reciprocal); a NaN at an end marks the interval as possibly NaN. An
  integer end that is a size becomes ``∓2**63`` on its way to a float: every int64 lies within.
  ``where`` and ``masked_fill`` join their branches (numbers as torch converts them to the
  dtype), narrowing a float compared with a number on each side; a product of two float tensors
  is bounded by the rounded products of their ends, taken apart by the sides of a ``where``
  among them (:func:`_float_product`); ``==``, ``!=`` and a cast to bool (``!= 0``) are decided
  where the bounds decide them;
- structure: a constant pad (``F.pad(x, p, value=v)``) is x's entries and ``v``, and keeps the
  sizes it was padded from, through elementwise ops with numbers (:func:`padded`,
  :func:`unpadded`); ``any``/``all`` of a tensor none of whose entries may be nonzero (zero) are
  ``False``/``True`` (:func:`reduced`).

Correlation is kept by identity: a form is one object per tensor, and ``where``'s condition
refines the intervals of the very form it compares wherever it appears in the branches. That
holds through broadcasting too: an elementwise op maps each position of its result to one
position of each operand (the dims where the operand has size 1 set to 0, right-aligned), and
these maps compose, so every occurrence of a tensor in a form stands for its entry at one and
the same position. Only elementwise ops are composed (a view, a transpose, a ``flip`` or an
index starts a new leaf). An in-place write drops what is known (as for exact extremes); the
output of a module call reused for an equal call carries no form.
"""

from __future__ import annotations

import math
import operator

import sympy
import torch

from .dims import FloorDiv, as_expr, holds_at_every_size

__all__ = ["Form", "ReadValue", "at_least", "at_most", "bounds", "leaf", "compose", "describe", "from_data", "padded",
           "reduced", "subset", "unpadded"]

#: units in the last place a float op's result is widened by each way (see the module's doc)
ULPS = 4
_I64_MIN, _I64_MAX = -2 ** 63, 2 ** 63 - 1
_INF = sympy.oo


class Form:
    """How each entry of a tensor is computed from the entries at its position of others: an
    ``op`` on ``args`` (forms, or numbers: ints, floats, sympy expressions of the sizes), in
    ``dtype``. Compared by identity: one form is one tensor's entries."""

    __slots__ = ("op", "args", "dtype", "call", "_plain")

    def __init__(self, op: str, args: tuple, dtype: torch.dtype, call: tuple | None = None):
        self.op, self.args, self.dtype, self.call = op, args, dtype, call
        self._plain = None

    @property
    def kind(self) -> str:
        return _kind(self.dtype)

    def __repr__(self) -> str:
        return f"Form({self.op}, {self.dtype})"


class ReadValue:
    """A number ``.item()`` read from a tensor's entries: data, not a size, of which only bounds
    are known (every value lies in ``lo … hi``, sympy expressions of the sizes). A comparison its
    bounds decide at every size is Python's ``True`` or ``False`` (``assert lengths.max().item()
    <= slen``: XLM's count of the tokens that are not padding, at most the length); any other
    use is refused by name (symshape.arithmetic). Two are equal where their bounds and dtype are:
    nothing tells them apart but those."""

    __slots__ = ("lo", "hi", "dtype")

    def __init__(self, lo, hi, dtype: torch.dtype):
        self.lo, self.hi, self.dtype = as_expr(lo), as_expr(hi), dtype

    def __eq__(self, other) -> bool:
        return isinstance(other, ReadValue) and (self.lo, self.hi, self.dtype) == (other.lo, other.hi, other.dtype)

    def __hash__(self) -> int:
        return hash((ReadValue, self.lo, self.hi, self.dtype))

    def __repr__(self) -> str:
        return f"a value read from a tensor's entries, in {self.lo} … {self.hi}"


def _kind(dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "int"


def leaf(lo, hi, dtype: torch.dtype, nan: bool = False) -> Form:
    """A tensor whose entries lie in ``lo … hi`` (sympy expressions for an integer dtype, ``±oo``
    where unbounded; floats for a float dtype, ``nan``: some may be NaN)."""
    if _kind(dtype) == "float":  # (an end that is a size: unbounded that way)
        lo, hi = (float(e) if isinstance(e, (int, float)) or as_expr(e).is_number else far
                  for e, far in ((lo, -math.inf), (hi, math.inf)))
        return Form("leaf", (lo, hi, nan), dtype)
    return Form("leaf", (as_expr(lo), as_expr(hi)), dtype)


# -- the interval of a form ------------------------------------------------------------------------


def bounds(form: Form) -> tuple:
    """``(lo, hi)``: every entry lies in ``lo … hi`` (sympy; ``±oo`` where unbounded). A float
    form's ends are floats, and a third item says whether an entry may be NaN."""
    if form._plain is None:
        form._plain = _interval(form, {}, {})
    return form._plain


def _interval(form, over: dict, memo: dict) -> tuple:
    if not isinstance(form, Form):
        return _number_interval(form)
    key = id(form)
    if key in over:
        return over[key]
    if key in memo:
        return memo[key]
    if not over and form._plain is not None:
        return form._plain
    out = _INTERVALS[form.op](form, over, memo)
    if form.kind != "float":
        out = _wrapped(form.dtype, out)
    memo[key] = out
    return out


def _wrapped(dtype, ends: tuple) -> tuple:
    """An integer interval as ``dtype`` holds it: where an end is a number past its range, the
    arithmetic may have wrapped around, and any entry of the dtype may occur. (An end that
    depends on the sizes is taken as it is: no size comes near.)"""
    lo, hi = ends
    least, most = (-2 ** 31, 2 ** 31 - 1) if dtype == torch.int32 else (_I64_MIN, _I64_MAX)
    if (lo.is_number and lo < least) or (hi.is_number and hi > most):
        return sympy.Integer(least), sympy.Integer(most)
    return ends


def _number_interval(v, dtype=None) -> tuple:
    """A number's interval; in a float ``dtype``, the number as torch converts it (rounded to
    the nearest the dtype holds: ``0.1`` is ``0.100000001...`` in float32)."""
    if dtype is not None and dtype.is_floating_point and isinstance(v, (int, float)) and not isinstance(v, bool):
        v = float(torch.tensor(v, dtype=torch.float64).to(dtype))
    if isinstance(v, float):  # (a NaN: no number, only the NaN, which compares false with all)
        return (v, v, False) if not math.isnan(v) else (math.inf, -math.inf, True)
    e = as_expr(v)
    return e, e


def _leaf(form: Form, over, memo) -> tuple:
    return form.args


def _subset(form: Form, over, memo) -> tuple:
    """Entries moved, repeated or picked from another tensor's: within its bounds, read plainly
    (its positions are not this tensor's, so no narrowing of a ``where`` applies to them)."""
    inner = bounds(form.args[0])
    return inner if form.kind == "float" else inner[:2]


def _padded(form: Form, over, memo) -> tuple:
    """A constant pad's entries: the padded tensor's and the value (``F.pad(x, p, value=v)``):
    the least interval holding both, read plainly (as :func:`_subset`)."""
    parts = [bounds(form.args[0]), _number_interval(form.args[1], form.dtype)]
    return _joined(parts, form.kind == "float", form.dtype)


def _joined(parts: list, floating: bool, dtype) -> tuple:
    """The least interval holding each of ``parts`` (float ones with their NaN flag)."""
    if floating:
        parts = [_to_float(p, dtype) if len(p) == 2 else p for p in parts]
        return min(p[0] for p in parts), max(p[1] for p in parts), any(p[2] for p in parts)
    lo, hi = parts[0][:2]
    for plo, phi in parts[1:]:
        lo, hi = sympy.Min(lo, plo), sympy.Max(hi, phi)
    return lo, hi


def _sum(form: Form, over, memo) -> tuple:
    (alo, ahi), (blo, bhi) = (_interval(a, over, memo)[:2] for a in form.args)
    return (alo + blo, ahi + bhi) if form.op == "add" else (alo - bhi, ahi - blo)


def _neg(form: Form, over, memo) -> tuple:
    lo, hi = _interval(form.args[0], over, memo)[:2]
    return -hi, -lo


def _sign(e) -> int | None:
    """1 where ``e`` is never negative at any size, -1 where never positive, else None."""
    e = as_expr(e)
    if e.is_nonnegative or _holds(sympy.Ge(e, 0)):
        return 1
    if e.is_nonpositive or _holds(sympy.Le(e, 0)):
        return -1
    return None


def _holds(cond) -> bool:
    if cond is sympy.true or cond is sympy.false:
        return bool(cond)
    return holds_at_every_size(cond)


def _product(form: Form, over, memo) -> tuple:
    a, b = form.args
    if isinstance(a, Form) and isinstance(b, Form):
        (alo, ahi), (blo, bhi) = _interval(a, over, memo)[:2], _interval(b, over, memo)[:2]
        if _sign(alo) == 1 and _sign(blo) == 1:
            return alo * blo, ahi * bhi
        return -_INF, _INF
    (lo, hi), c = (_interval(a, over, memo), b) if isinstance(a, Form) else (_interval(b, over, memo), a)
    if as_expr(c) == 0:
        return sympy.Integer(0), sympy.Integer(0)
    sign = _sign(c)
    if sign == 1:
        return lo * c, hi * c
    if sign == -1:
        return hi * c, lo * c
    return -_INF, _INF


def _quotient(form: Form, over, memo) -> tuple:
    """``x // c`` and ``x % c`` for a positive number ``c`` (the floor is monotone; a remainder
    lies in ``0 … c - 1``)."""
    x, c = form.args
    if form.op == "mod":
        return sympy.Integer(0), as_expr(c) - 1
    lo, hi = _interval(x, over, memo)[:2]
    return _floor_by(lo, c), _floor_by(hi, c)


def _floor_by(e, c):
    if e in (_INF, -_INF):
        return e
    return FloorDiv(e, c) if as_expr(c).is_Integer else sympy.floor(e / c)


def _abs(form: Form, over, memo) -> tuple:
    lo, hi = _interval(form.args[0], over, memo)[:2]
    if _sign(lo) == 1:
        return lo, hi
    if _sign(hi) == -1:
        return -hi, -lo
    return sympy.Integer(0), sympy.Max(-lo, hi)


def _extremum(form: Form, over, memo) -> tuple:
    """``min``/``max`` of two, and ``clamp(x, a, b)`` (a ``max`` then a ``min``): monotone."""
    f = sympy.Min if form.op == "min" else sympy.Max
    (alo, ahi), (blo, bhi) = (_interval(a, over, memo)[:2] for a in form.args)
    return f(alo, blo), f(ahi, bhi)


def _compare(form: Form, over, memo) -> tuple:
    """A comparison's bool: 1 (or 0) where the bounds decide it at every size, else ``0 … 1``."""
    rel = form.op[4:]
    floats = [v.dtype for v in form.args if isinstance(v, Form) and v.kind == "float"]
    # (a number is compared in the float tensor's dtype: 0.1 is 0.100000001... in float32)
    a, b = (_interval(v, over, memo) if isinstance(v, Form) else _number_interval(v, floats[0] if floats else None)
            for v in form.args)
    (alo, ahi), (blo, bhi) = a[:2], b[:2]
    nan = any(len(v) == 3 and v[2] for v in (a, b))  # (a NaN compares false: never "always")
    apart = sympy.Or(sympy.Lt(ahi, blo), sympy.Lt(bhi, alo))  # (no entry of one equals one of the other)
    one = sympy.And(sympy.Eq(alo, ahi), sympy.Eq(ahi, blo), sympy.Eq(blo, bhi))  # (each side one and the same value)
    always, never = {"lt": (sympy.Lt(ahi, blo), sympy.Ge(alo, bhi)), "le": (sympy.Le(ahi, blo), sympy.Gt(alo, bhi)),
                     "gt": (sympy.Gt(alo, bhi), sympy.Le(ahi, blo)), "ge": (sympy.Ge(alo, bhi), sympy.Lt(ahi, blo)),
                     "eq": (one, apart), "ne": (apart, one)}[rel]
    if rel == "ne":  # (a NaN is unequal to everything: never "never")
        always, never = (always, never) if not nan else (always, sympy.false)
    if (not nan or rel == "ne") and _holds(always):
        return sympy.Integer(1), sympy.Integer(1)
    if _holds(never):
        return sympy.Integer(0), sympy.Integer(0)
    return sympy.Integer(0), sympy.Integer(1)


def _where(form: Form, over, memo) -> tuple:
    """``where(c, a, b)``: ``a`` over the entries where ``c`` holds, ``b`` over the others; where
    ``c`` compares a form ``X`` with a number, ``X``'s interval is narrowed to each side first."""
    cond, a, b = form.args
    sides = _narrowed(cond, over, memo)
    parts = []
    for branch, narrowed in zip((a, b), sides):
        if narrowed is None:
            continue  # (no entry takes this side)
        where_over = over if not narrowed else {**over, **narrowed}
        parts.append(_interval(branch, where_over, {} if narrowed else memo) if isinstance(branch, Form)
                     else _number_interval(branch, form.dtype))
    if not parts:
        return _interval(a, over, memo)  # (an empty tensor: any bound is true)
    return _joined(parts, form.kind == "float", form.dtype)


def _narrowed(cond, over, memo) -> tuple:
    """``(true, false)``: for each side of ``cond``, the overrides that hold there (``{}``: none
    known), or None where no entry can take it (the bounds decide ``cond``)."""
    plain = _interval(cond, over, memo)
    if plain[0] == 1:
        return {}, None
    if plain[1] == 0:
        return None, {}
    if not isinstance(cond, Form) or not cond.op.startswith("cmp_"):
        return {}, {}
    rel = cond.op[4:]
    x, k = cond.args
    if not isinstance(x, Form):  # k OP X: X FLIPPED k
        x, k, rel = k, x, {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(rel, rel)
    if isinstance(k, Form) or not isinstance(x, Form):
        return {}, {}
    if x.kind == "float":
        return _float_sides(x, rel, k, _interval(x, over, memo))
    if x.kind != "int" or rel not in ("lt", "le", "gt", "ge"):
        return {}, {}
    k = as_expr(k)
    lo, hi = _interval(x, over, memo)[:2]
    below = sympy.ceiling(k) - 1 if rel in ("lt", "ge") else sympy.floor(k)  # X <= below  <=>  X < k / X <= k
    low_side, high_side = (lo, _capped(hi, below, sympy.Min)), (_capped(lo, below + 1, sympy.Max), hi)
    true, false = (low_side, high_side) if rel in ("lt", "le") else (high_side, low_side)
    return tuple(None if _holds(sympy.Gt(s[0], s[1])) else {id(x): s} for s in (true, false))


def _float_sides(x: Form, rel: str, k, inner: tuple) -> tuple:
    """:func:`_narrowed` for a float ``x`` compared with a number ``k`` (closed ends: sound): a
    NaN entry compares false, so it lies on the false side (the true side of ``!=``)."""
    k = _float_number(k)
    if k is None:
        return {}, {}
    lo, hi, nan = inner
    if math.isnan(k):  # (every comparison with a NaN is false, but !=)
        return ({id(x): inner}, None) if rel == "ne" else (None, {id(x): inner})
    k = _number_interval(k, x.dtype)[0]
    low, high = (lo, min(hi, k), False), (max(lo, k), hi, False)  # x <= k, x >= k
    equal = (k, k, False) if lo <= k <= hi else None
    true = {"lt": low, "le": low, "gt": high, "ge": high, "eq": equal, "ne": (lo, hi, nan)}[rel]
    false = {"lt": (*high[:2], nan), "le": (*high[:2], nan), "gt": (*low[:2], nan), "ge": (*low[:2], nan),
             "eq": (lo, hi, nan), "ne": equal}[rel]
    return tuple(None if s is None or s[0] > s[1] else {id(x): s} for s in (true, false))


def _capped(end, k, f):
    """An end narrowed by ``k``: ``f(end, k)`` (``Min`` for an upper end, ``Max`` for a lower
    one), or ``k`` itself where ``end`` is no number and ``k`` is (a sound, simpler end)."""
    return k if k.is_number and not end.is_number else f(end, k)


def _cast(form: Form, over, memo) -> tuple:
    """A conversion between bool, integer and float dtypes (see the module's doc)."""
    src = form.args[0]
    inner = _interval(src, over, memo)
    to = form.kind
    source = src.kind if isinstance(src, Form) else "int"
    if to == "float":
        if source == "float":
            return _through_torch(form, inner, lambda t: t.to(form.dtype), 1)
        return _to_float(inner, form.dtype)
    if source != "float":
        return _narrowed_to(form.dtype, inner[:2])
    lo, hi, nan = inner
    if nan or not (_I64_MIN < lo and hi < 2.0 ** 63):
        return sympy.Integer(_I64_MIN), sympy.Integer(_I64_MAX)
    return sympy.Integer(math.trunc(lo)), sympy.Integer(math.trunc(hi))


def _narrowed_to(dtype, ends: tuple) -> tuple:
    """An integer interval in ``dtype`` (int32 wraps past its range: any int32 then)."""
    if dtype != torch.int32:
        return ends
    lo, hi = ends
    if lo.is_Integer and hi.is_Integer and -2 ** 31 <= int(lo) and int(hi) < 2 ** 31:
        return ends
    return sympy.Integer(-2 ** 31), sympy.Integer(2 ** 31 - 1)


def _to_float(inner: tuple, dtype) -> tuple:
    ends = []
    for e, far in zip(inner[:2], (-(2.0 ** 63), 2.0 ** 63)):
        e = as_expr(e)
        ends.append(float(torch.tensor(int(e), dtype=torch.int64).to(dtype)) if e.is_Integer
                    and _I64_MIN <= int(e) <= _I64_MAX else far)
    return ends[0], ends[1], False


def _float_op(form: Form, over, memo) -> tuple:
    """A monotone float op (``form.call``: how to run it on a tensor of the ends, and its
    direction), run by torch on the two ends and widened by :data:`ULPS`."""
    run, direction = form.call
    inner = _interval(form.args[0], over, memo)
    if len(inner) == 2:  # (an integer operand: a float op promotes it)
        inner = _to_float(inner, form.dtype)
    return _through_torch(form, inner, run, direction)


def _through_torch(form: Form, inner: tuple, run, direction: int) -> tuple:
    lo, hi, nan = inner
    ends = torch.tensor([lo, hi], dtype=form.dtype if form.dtype.is_floating_point else torch.float32)
    with torch.no_grad():
        out = run(ends).to(torch.float64)
    a, b = float(out[0]), float(out[1])
    if direction < 0:
        a, b = b, a
    nan = nan or math.isnan(a) or math.isnan(b)
    if math.isnan(a) or math.isnan(b):
        return -math.inf, math.inf, True
    return _widened(a, form.dtype, -1), _widened(b, form.dtype, 1), nan


def _float_product(form: Form, over, memo) -> tuple:
    """``a * b`` of two float tensors: the least and greatest product of their ends, each
    rounded by torch in the dtype (rounding is monotone, so they bound every rounded product); a
    NaN among them (``0 * inf``) leaves it unbounded. Where one is a ``where`` whose condition
    compares a tensor with a number, each side is taken apart with that tensor narrowed, so that
    ``where(x != 0, min, x) * x`` of an ``x`` in ``0 … 1`` lies in ``min … 0`` (LED's inverted
    attention mask): its ``x`` is 0 wherever the ``where`` picks ``x``."""
    a, b = form.args
    split = next((f for f in (a, b) if f.op == "where"), None)
    if split is not None:
        other = b if split is a else a
        parts = []
        for branch, narrowed in zip(split.args[1:], _narrowed(split.args[0], over, memo)):
            if narrowed is not None:
                here = {**over, **narrowed}
                parts.append(_ends_product(_float_operand(branch, here, form.dtype),
                                           _float_operand(other, here, form.dtype), form.dtype))
        if parts:
            return _joined(parts, True, form.dtype)
    return _ends_product(*(_float_operand(v, over, form.dtype) for v in (a, b)), form.dtype)


def _float_operand(v, over, dtype) -> tuple:
    inner = _interval(v, over, {}) if isinstance(v, Form) else _number_interval(v, dtype)
    return _to_float(inner, dtype) if len(inner) == 2 else inner


def _ends_product(a: tuple, b: tuple, dtype) -> tuple:
    ends = torch.tensor([[a[0], a[1]]], dtype=dtype).T * torch.tensor([[b[0], b[1]]], dtype=dtype)
    if bool(ends.isnan().any()):
        return -math.inf, math.inf, True
    return float(ends.min()), float(ends.max()), a[2] or b[2]


def _widened(v: float, dtype, way: int) -> float:
    """``v`` moved :data:`ULPS` units in the last place toward ``way`` (-1 down, 1 up), but never
    past zero: the ops followed get the sign of their result right (a product, a quotient and
    a sum are correctly rounded; ``log(x)`` is negative exactly below 1), and a zero stays."""
    if math.isinf(v) or v == 0.0:
        return v
    t = torch.tensor([v], dtype=dtype)
    toward = torch.tensor([math.inf * way], dtype=dtype)
    for _ in range(ULPS):
        t = torch.nextafter(t, toward)
    out = float(t[0])
    return out if (out > 0) == (v > 0) or out == 0.0 else 0.0


_INTERVALS = {"leaf": _leaf, "subset": _subset, "pad": _padded, "add": _sum, "sub": _sum, "neg": _neg,
              "mul": _product, "floordiv": _quotient, "mod": _quotient, "abs": _abs, "min": _extremum,
              "max": _extremum, "where": _where, "cast": _cast, "float_op": _float_op, "fmul": _float_product,
              **{f"cmp_{r}": _compare for r in ("lt", "le", "gt", "ge", "eq", "ne")}}


# -- building forms from a call --------------------------------------------------------------------

#: float ops that are monotone in their one tensor: 1 increasing, -1 decreasing
_MONOTONE = {"log": 1, "log2": 1, "log10": 1, "log1p": 1, "exp": 1, "exp2": 1, "expm1": 1, "sqrt": 1,
             "floor": 1, "ceil": 1, "trunc": 1, "round": 1, "relu": 1, "sigmoid": 1, "tanh": 1, "neg": -1,
             "__neg__": -1}
_ADD = frozenset({"add", "__add__", "__radd__", "__iadd__", "add_"})
_SUB = frozenset({"sub", "__sub__", "__isub__", "sub_", "subtract"})
_RSUB = frozenset({"__rsub__", "rsub"})
_MUL = frozenset({"mul", "__mul__", "__rmul__", "__imul__", "mul_", "multiply"})
_DIV = frozenset({"div", "true_divide", "__truediv__", "__itruediv__", "div_", "divide"})
_FLOORDIV = frozenset({"floor_divide", "__floordiv__", "__ifloordiv__"})
_COMPARE = {"lt": "lt", "__lt__": "lt", "less": "lt", "le": "le", "__le__": "le", "less_equal": "le", "gt": "gt",
            "__gt__": "gt", "greater": "gt", "ge": "ge", "__ge__": "ge", "greater_equal": "ge", "eq": "eq",
            "__eq__": "eq", "ne": "ne", "__ne__": "ne", "not_equal": "ne"}
_EXTREMA = {"minimum": "min", "maximum": "max", "min": "min", "max": "max", "fmin": "min", "fmax": "max"}
_CASTS = frozenset({"to", "long", "int", "float", "double", "half", "bfloat16", "bool", "type", "type_as"})
_INTEGER_DTYPES = (torch.int64, torch.int32)


def compose(name: str, values: list, kwargs: dict, dtype) -> Form | None:
    """The form of a call's result in ``dtype`` (``name``: the op's name; ``values``: its
    positional arguments, each tensor replaced by its form, see symshape.ranges); None where the
    op is not followed."""
    if dtype is None or not (dtype in _INTEGER_DTYPES or dtype == torch.bool or dtype in (torch.float32, torch.float64)):
        return None
    if name in ("clamp", "clip") and kwargs and set(kwargs) <= {"min", "max"}:  # (clamp(x, max=7))
        values = [*values, *[None] * (3 - len(values))][:3]
        values = [values[0], kwargs.get("min", values[1]), kwargs.get("max", values[2])]
        kwargs = {}
    if kwargs and not (name in _CASTS and set(kwargs) <= {"dtype", "copy", "non_blocking"}):
        return None
    if name in ("masked_fill", "masked_fill_") and len(values) == 3 and isinstance(values[1], Form):
        name, values = "where", [values[1], values[2], values[0]]  # (x.masked_fill(m, v): where(m, v, x))
    forms = [v for v in values if isinstance(v, Form)]
    if not forms:
        return None
    if forms[0].op == "pad" and values[0] is forms[0]:
        through = _through_pad(name, values, kwargs, dtype)
        if through is not None:
            return through
    if name in _COMPARE:
        return Form(f"cmp_{_COMPARE[name]}", tuple(values), dtype) if dtype == torch.bool and len(values) == 2 else None
    if name in _CASTS:
        if not isinstance(values[0], Form):
            return None  # (a cast to bool is a test for nonzero: a NaN is True)
        return Form("cast", (values[0],), dtype) if dtype != torch.bool else Form("cmp_ne", (values[0], 0), dtype)
    if _kind(dtype) == "float":
        return _float_form(name, values, dtype)
    if any(f.kind == "float" for f in forms):
        return None  # (an integer result of a float op)
    return _integer_form(name, values, dtype)


def _integer_form(name: str, values: list, dtype) -> Form | None:
    n = len(values)
    if dtype == torch.bool:
        return None
    if n == 2 and all(_integer_operand(v) for v in values):
        a, b = values
        if name in _ADD:
            return Form("add", (a, b), dtype)
        if name in _SUB:
            return Form("sub", (a, b), dtype)
        if name in _RSUB:
            return Form("sub", (b, a), dtype)
        if name in _MUL:
            return Form("mul", (a, b), dtype)
        if name in _EXTREMA and isinstance(a, Form) and isinstance(b, Form):  # (min(x, dim) returns a pair)
            return Form(_EXTREMA[name], (a, b), dtype)
        if (name in _FLOORDIV or name in ("remainder", "__mod__")) and isinstance(a, Form) \
                and not isinstance(b, Form) and _sign(b) == 1 and as_expr(b).is_Integer and b != 0:
            return Form("floordiv" if name in _FLOORDIV else "mod", (a, as_expr(b)), dtype)
    if n == 1 and name in ("abs", "absolute", "__abs__"):
        return Form("abs", (values[0],), dtype)
    if n == 1 and name in ("neg", "negative", "__neg__"):
        return Form("neg", (values[0],), dtype)
    if name in ("clamp", "clip", "clamp_min", "clamp_max") and isinstance(values[0], Form) and n in (2, 3):
        return _clamp(name, values, dtype)
    if name == "where" and n == 3 and isinstance(values[0], Form) and all(_integer_operand(v) for v in values[1:]):
        return Form("where", tuple(values), dtype)
    return None


def _integer_operand(v) -> bool:
    if isinstance(v, Form):
        return v.kind in ("int", "bool")
    if isinstance(v, bool) or isinstance(v, float):
        return False
    try:
        return as_expr(v).is_integer is True
    except Exception:  # (anything that is no size: a string, a dtype)
        return False


def _clamp(name: str, values: list, dtype) -> Form | None:
    x, rest = values[0], values[1:]
    lo, hi = (rest + [None])[:2] if name in ("clamp", "clip") else \
        ((rest[0], None) if name == "clamp_min" else (None, rest[0]))
    if any(v is not None and not _integer_operand(v) for v in (lo, hi)):
        return None
    if lo is not None:
        x = Form("max", (x, lo), dtype)
    if hi is not None:
        x = Form("min", (x, hi), dtype)
    return x


def _float_form(name: str, values: list, dtype) -> Form | None:
    if name == "where" and len(values) == 3 and isinstance(values[0], Form) and values[0].kind == "bool" \
            and all(isinstance(v, Form) or _float_number(v) is not None for v in values[1:]):
        return Form("where", tuple(values), dtype)
    if name in ("clamp", "clip", "clamp_min", "clamp_max") and isinstance(values[0], Form) and len(values) in (2, 3):
        return _float_clamp(name, values, dtype)
    forms = [v for v in values if isinstance(v, Form)]
    if name in _MUL and len(values) == 2 and len(forms) == 2:
        return Form("fmul", tuple(values), dtype)
    if len(forms) != 1:
        return None
    x = forms[0]
    at = next(i for i, v in enumerate(values) if v is x)
    numbers = [_float_number(v) for i, v in enumerate(values) if i != at]
    if any(v is None for v in numbers):
        return None
    direction = _direction(name, at, numbers)
    if direction is None:
        return None
    op = _TORCH_OPS[_family(name)]

    def run(t, op=op, at=at, numbers=tuple(numbers)):
        full = list(numbers)
        full.insert(at, t)
        return op(*full)

    return Form("float_op", (x,), dtype, (run, direction))


def _float_clamp(name: str, values: list, dtype) -> Form | None:
    """``clamp(x, lo, hi)`` of floats, by numbers (either may be None): monotone in ``x``."""
    rest = values[1:] if name in ("clamp", "clip") else \
        ([values[1], None] if name == "clamp_min" else [None, values[1]])
    lo, hi = (rest + [None])[:2]
    if any(v is not None and _float_number(v) is None for v in (lo, hi)):
        return None
    lo, hi = (None if v is None else _float_number(v) for v in (lo, hi))
    if lo is None and hi is None:
        return None  # (torch refuses it)
    return Form("float_op", (values[0],), dtype, (lambda t, lo=lo, hi=hi: torch.clamp(t, min=lo, max=hi), 1))


def _float_number(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    e = as_expr(v) if isinstance(v, sympy.Basic) else None
    if e is not None and e.is_number:
        return int(e) if e.is_Integer else float(e)
    return None


def _family(name: str) -> str:
    for family, names in (("add", _ADD), ("sub", _SUB), ("rsub", _RSUB), ("mul", _MUL), ("div", _DIV)):
        if name in names:
            return family
    return name.strip("_")


def _direction(name: str, at: int, numbers: list) -> int | None:
    family = _family(name)
    if family in _MONOTONE or name in _MONOTONE:
        return _MONOTONE.get(family, _MONOTONE.get(name)) if not numbers else None
    if len(numbers) != 1:
        return None
    c = numbers[0]
    if family == "add":
        return 1
    if family in ("sub", "rsub"):
        return 1 if (family == "sub") == (at == 0) else -1
    if family == "mul":
        return 1 if c > 0 else -1 if c < 0 else None
    if family == "div" and at == 0:
        return 1 if c > 0 else -1 if c < 0 else None
    return None


_TORCH_OPS = {"add": operator.add, "sub": operator.sub, "rsub": lambda a, b: b - a, "mul": operator.mul,
              "div": operator.truediv, **{n: getattr(torch, n) for n in _MONOTONE if not n.startswith("_")}}


def padded(form: Form, value, dtype, sizes: tuple, grows: bool) -> Form:
    """``F.pad(x, amounts, value=value)`` in the constant mode, ``form`` x's entries: bounded by
    both when asked, a new tensor for correlation. ``sizes``: x's; ``grows``: every amount is
    at least 0, so that along each dim at most ``sizes[d]`` entries are x's, the others
    ``value`` (:func:`unpadded`). An elementwise op with numbers keeps the structure: ``pad(x,
    v) != v`` is ``pad(x != v, False)``."""
    return Form("pad", (form, value), dtype, (tuple(sizes), grows))


def unpadded(form: Form | None) -> tuple | None:
    """The sizes of the tensor a pad of zeros padded (at most that many entries along each dim
    may be nonzero: Longformer's ``cumsum(pad(ids, p, value=1).ne(1))`` counts the real tokens
    only), or None where ``form`` is not such a pad."""
    if form is None or form.op != "pad" or not form.call[1]:
        return None
    value = form.args[1]
    return form.call[0] if not isinstance(value, bool) and value == 0 or value is False else None


def _through_pad(name: str, values: list, kwargs: dict, dtype) -> Form | None:
    """``op(pad(x, v), numbers)`` as ``pad(op(x, numbers), op(v, numbers))``: the op run by torch
    on a 0-dim tensor of ``v`` gives the new value, in ``dtype`` (else None)."""
    pad, rest = values[0], values[1:]
    if name not in _THROUGH_PAD or any(isinstance(v, Form) for v in rest) \
            or not callable(getattr(torch.Tensor, name, None)):
        return None
    inner = compose(name, [pad.args[0], *rest], kwargs, dtype)
    if inner is None:
        return None
    try:
        with torch.no_grad():
            image = getattr(torch.tensor(pad.args[1], dtype=pad.dtype), name)(*rest, **kwargs)
    except Exception:  # (an argument torch takes only in another form)
        return None
    if not isinstance(image, torch.Tensor) or image.dtype != dtype or image.numel() != 1:
        return None
    return Form("pad", (inner, image.item()), dtype, pad.call)


#: the elementwise ops :func:`_through_pad` takes through a pad: methods of one tensor and numbers
_THROUGH_PAD = frozenset({*_COMPARE, *_CASTS, *_ADD, *_SUB, *_RSUB, *_MUL, *_DIV, *_FLOORDIV, *_MONOTONE, "abs",
                          "clamp", "clip", "clamp_min", "clamp_max", "remainder", "__mod__"})


def reduced(name: str, form: Form, dtype, nonempty: bool) -> Form | None:
    """``any`` (``all``) of a tensor, over one dim or all: False (True) where no entry may be
    nonzero (zero), an empty reduction's answer included; True (False) where every entry is
    nonzero (zero) and each reduction ``nonempty``; else None. (A NaN is nonzero.)"""
    lo, hi, *nan = bounds(form)
    nan = bool(nan and nan[0])
    zero = _holds(sympy.Eq(lo, 0)) and _holds(sympy.Eq(hi, 0)) and not nan
    nonzero = _holds(sympy.Gt(lo, 0)) or _holds(sympy.Lt(hi, 0))
    if name == "any" and (zero or nonzero and nonempty) or name == "all" and (nonzero or zero and nonempty):
        one = int(name == "all" and nonzero or name == "any" and not zero)
        return Form("leaf", (sympy.Integer(one), sympy.Integer(one)), dtype)
    return None


def subset(form: Form, dtype) -> Form:
    """A tensor of entries moved, repeated or picked from ``form``'s (a view, ``expand``,
    ``x[i]``, ``gather``): bounded by its bounds when asked, a new tensor for correlation."""
    return Form("subset", (form,), dtype)


def at_least(e, c, proves) -> bool:
    """Whether ``e >= c`` wherever ``proves`` (a step's :meth:`Context.proves`) says: a ``Min`` by
    each of its arguments, a ``Max`` by any (an end of a bound is often one: DeBERTa's
    ``Min(127, Max(0, 65 - T))``)."""
    if isinstance(e, sympy.Min):
        return all(at_least(a, c, proves) for a in e.args)
    if isinstance(e, sympy.Max):
        return any(at_least(a, c, proves) for a in e.args)
    return _proved(sympy.Ge(e, c), proves)


def at_most(e, c, proves) -> bool:
    """Whether ``e <= c`` (see :func:`at_least`)."""
    if isinstance(e, sympy.Max):
        return all(at_most(a, c, proves) for a in e.args)
    if isinstance(e, sympy.Min):
        return any(at_most(a, c, proves) for a in e.args)
    return _proved(sympy.Le(e, c), proves)


def _proved(cond, proves) -> bool:
    if cond is sympy.true or cond is sympy.false:
        return bool(cond)
    return isinstance(cond, sympy.Rel) and proves(cond)


def from_data(form: Form) -> bool:
    """Whether ``form`` reads a tensor whose entries symshape does not bound (a leaf unbounded
    at an end: token ids, the input's values): then its bounds are the data's, not computed from
    sizes and constants alone."""
    seen, stack = set(), [form]
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        if f.op == "leaf" and any(e in (_INF, -_INF) or isinstance(e, float) and math.isinf(e) for e in f.args[:2]):
            return True
        stack.extend(a for a in f.args if isinstance(a, Form))
    return False


def describe(form: Form) -> str:
    """``lo … hi`` of a form's bounds, for a message."""
    lo, hi = bounds(form)[:2]
    return f"{lo} … {hi}"
