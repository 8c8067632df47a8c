"""Exact sets of input sizes: :class:`IntSet` for one size, :class:`SizeSet` for several.

Every set symshape computes is *eventually periodic*: below some start it is a finite list of
intervals, from the start on membership depends only on the size modulo a period. That covers
intervals (``H >= 16``), congruences (``H = 0 (mod 4)``), finite sets (``{31, 32}``) and their
unions, intersections and complements, and it never cuts an infinite set off.

A condition that couples two sizes without separating them (``floor((H - 1)/2) ==
floor((W - 1)/2)``: a tensor added to its own transpose) holds on lines, not boxes: a box of a
:class:`SizeSet` may then fix a size by another with a :class:`Tie` (``W = H + 1`` on odd H).
"""

from __future__ import annotations

import functools
import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Iterator, Mapping, Sequence

import sympy

from .dims import divisors, positive_int, size_symbol
from .errors import InvalidArgument

__all__ = ["IntSet", "NearestSizes", "SizeSet", "Tie"]

Interval = tuple[int, int]  # inclusive


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> tuple[Interval, ...]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _complement(a: Sequence[Interval], lo: int, hi: int) -> tuple[Interval, ...]:
    out, cur = [], lo
    for x, y in a:
        if x > cur:
            out.append((cur, min(x - 1, hi)))
        cur = max(cur, y + 1)
    if cur <= hi:
        out.append((cur, hi))
    return tuple(i for i in out if i[0] <= i[1])


def _runs(period: int, residues: frozenset[int], lo: int, hi: int) -> list[Interval]:
    """The members of ``{n : n % period in residues}`` in ``[lo, hi]``, as intervals."""
    if hi < lo or not residues:
        return []
    if len(residues) == period:
        return [(lo, hi)]
    out: list[Interval] = []
    base = lo - lo % period
    for start in range(base, hi + 1, period):
        for r in sorted(residues):
            n = start + r
            if lo <= n <= hi:
                if out and out[-1][1] == n - 1:
                    out[-1] = (out[-1][0], n)
                else:
                    out.append((n, n))
    return out


@functools.lru_cache(maxsize=4096)
def _divisors(n: int) -> tuple[int, ...]:
    return tuple(divisors(n))


def _least_period(period: int, residues: frozenset[int]) -> tuple[int, frozenset[int]]:
    """The least period of the residues modulo ``period`` (a divisor ``d`` of it whose shift
    maps the residues onto themselves), and the residues modulo it. Only a ``d`` with
    ``period // d`` dividing how many residues there are can be one (the residues are then
    whole classes modulo ``d``, each ``period // d`` of them)."""
    n = len(residues)
    for d in _divisors(period):
        if d < period and n % (period // d) == 0 and all(((r + d) % period) in residues for r in residues):
            return d, frozenset(r % d for r in residues)
    return period, residues


#: set operations, cached: the sides of a branch give the solver the same conditions over the
#: same boxes many times over (every IntSet is a frozen value; these are functions of them)
_CACHED = 8192


@dataclass(frozen=True)
class IntSet:
    """A set of positive integers: the intervals ``head`` below ``start``, and from ``start`` on
    every ``n`` with ``n % period in residues``."""

    head: tuple[Interval, ...] = ()
    start: int = 1
    period: int = 1
    residues: frozenset[int] = field(default_factory=frozenset)

    # -- construction ---------------------------------------------------------------------

    @staticmethod
    def all() -> "IntSet":
        return IntSet((), 1, 1, frozenset({0}))

    @staticmethod
    def empty() -> "IntSet":
        return IntSet()

    @staticmethod
    def at_least(lo: int) -> "IntSet":
        lo = max(lo, 1)
        return IntSet((), lo, 1, frozenset({0})).normalized()

    @staticmethod
    def interval(lo: int, hi: int | None = None) -> "IntSet":
        if hi is None:
            return IntSet.at_least(lo)
        lo = max(lo, 1)
        if hi < lo:
            return IntSet.empty()
        return IntSet(((lo, hi),), hi + 1, 1, frozenset()).normalized()

    @staticmethod
    def of(values: Iterable[int]) -> "IntSet":
        vals = [v for v in values if v >= 1]
        if not vals:
            return IntSet.empty()
        return IntSet(_merge((v, v) for v in vals), max(vals) + 1, 1, frozenset()).normalized()

    @staticmethod
    def from_intervals(intervals: Iterable[Interval]) -> "IntSet":
        """A finite set: the union of inclusive intervals."""
        head = _merge((max(lo, 1), hi) for lo, hi in intervals)
        if not head:
            return IntSet.empty()
        return IntSet(head, head[-1][1] + 1, 1, frozenset()).normalized()

    @staticmethod
    def periodic(start: int, period: int, residues: Iterable[int], head: Iterable[Interval] = ()) -> "IntSet":
        start = max(start, 1)
        head = _intersect(_merge(head), ((1, start - 1),)) if start > 1 else ()
        return IntSet(head, start, period, frozenset(r % period for r in residues)).normalized()

    @staticmethod
    def congruent(residue: int, modulus: int, lo: int = 1) -> "IntSet":
        return IntSet.periodic(lo, modulus, [residue])

    # -- normal form ----------------------------------------------------------------------

    def normalized(self) -> "IntSet":
        period, residues = self.period, self.residues
        if not residues:
            period = 1
        elif len(residues) == period:
            period, residues = 1, frozenset({0})
        else:
            period, residues = _least_period(period, residues)
        head = list(_merge(self.head))
        start = self.start

        def periodic_member(n: int) -> bool:
            return (n % period) in residues

        # move start down while the head agrees with the periodic rule just below it
        while start > 1:
            n = start - 1
            in_head = bool(head) and head[-1][1] == n
            if in_head != periodic_member(n):
                break
            if period == 1:  # a whole interval (all residues) or a whole gap (none) agrees
                if in_head:
                    start = head.pop()[0]
                else:
                    start = head[-1][1] + 1 if head else 1
                continue
            if in_head:
                lo = head.pop()[0]
                if lo <= n - 1:
                    head.append((lo, n - 1))
            start = n
        if not residues and not head:
            start = 1
        return IntSet(tuple(head), start, period, residues)

    def _aligned(self, start: int, period: int) -> tuple[tuple[Interval, ...], frozenset[int]]:
        """This set with the periodic part from ``start`` on, with ``period`` (a multiple of ours)."""
        head = _merge([*self.head, *_runs(self.period, self.residues, self.start, start - 1)])
        # lifted residue by residue: linear in how many there are, not in the period
        residues = frozenset(r + j * self.period for r in self.residues for j in range(period // self.period))
        return head, residues

    def _combine(self, other: "IntSet", op) -> "IntSet":
        return _combined(self, other, op)

    def _combined(self, other: "IntSet", op) -> "IntSet":
        start = max(self.start, other.start)
        period = math.lcm(self.period, other.period)
        h1, r1 = self._aligned(start, period)
        h2, r2 = other._aligned(start, period)
        if op == "and":
            head, res = _intersect(h1, h2), r1 & r2
        else:
            head, res = _merge([*h1, *h2]), r1 | r2
        return IntSet(head, start, period, frozenset(res)).normalized()

    def __and__(self, other: "IntSet") -> "IntSet":
        return self._combine(other, "and")

    def __or__(self, other: "IntSet") -> "IntSet":
        return self._combine(other, "or")

    def complement(self) -> "IntSet":
        return _complemented(self)

    def _complemented(self) -> "IntSet":
        head = _complement(self.head, 1, self.start - 1)
        residues = frozenset(range(self.period)) - self.residues
        return IntSet(head, self.start, self.period, residues).normalized()

    def __sub__(self, other: "IntSet") -> "IntSet":
        return self & other.complement()

    # -- queries --------------------------------------------------------------------------

    def __contains__(self, n: int) -> bool:
        if n < 1:
            return False
        if n >= self.start:
            return (n % self.period) in self.residues
        i = bisect_right(self.head, (n, math.inf)) - 1
        return i >= 0 and self.head[i][0] <= n <= self.head[i][1]

    @property
    def is_empty(self) -> bool:
        """Whether no integer is in the set."""
        return not self.head and not self.residues

    @property
    def is_finite(self) -> bool:
        """Whether the set has finitely many members (no periodic tail)."""
        return not self.residues

    def min(self) -> int | None:
        if self.head:
            return self.head[0][0]
        if not self.residues:
            return None
        return self._first_periodic()

    def least_from(self, n: int) -> int | None:
        """The least member ``>= n`` (None: there is none)."""
        n = max(n, 1)
        if n < self.start:
            for lo, hi in self.head:
                if hi >= n:
                    return max(lo, n)
        m = max(n, self.start)
        if not self.residues:
            return None
        return min(m + (r - m) % self.period for r in self.residues)

    def greatest_upto(self, n: int) -> int | None:
        """The greatest member ``<= n`` (None: there is none)."""
        if n < 1:
            return None
        if n >= self.start and self.residues:
            found = [c for c in (n - (n - r) % self.period for r in self.residues) if c >= self.start]
            if found:
                return max(found)
        top = min(n, self.start - 1)
        for lo, hi in reversed(self.head):
            if lo <= top:
                return min(hi, top)
        return None

    def _first_periodic(self) -> int:
        """The least member from ``start`` on (one step per residue, not per size of the period)."""
        return min(self.start + (r - self.start) % self.period for r in self.residues)

    def max(self) -> int | None:
        """The largest member, or None when the set is empty or infinite."""
        if self.residues or not self.head:
            return None
        return self.head[-1][1]

    def intervals(self, upto: int) -> list[Interval]:
        """The members up to ``upto`` as intervals."""
        head = list(_intersect(self.head, ((1, upto),)))
        return list(_merge([*head, *_runs(self.period, self.residues, self.start, upto)]))

    def values(self, upto: int) -> Iterator[int]:
        for lo, hi in self.intervals(upto):
            yield from range(lo, hi + 1)

    def count(self, upto: int) -> int:
        return sum(hi - lo + 1 for lo, hi in self.intervals(upto))

    def to_json(self) -> dict:
        """The set as JSON: ``{"intervals": [[lo, hi], ...], "from": start, "period": p,
        "residues": [...], "text": ...}`` -- the intervals below ``from``, then every ``n >= from``
        with ``n % period`` among the residues (none: nothing from there on)."""
        return {"intervals": [list(i) for i in self.head], "from": self.start, "period": self.period,
                "residues": sorted(self.residues), "text": self.describe("n")}

    def is_subset(self, other: "IntSet") -> bool:
        return (self - other).is_empty

    # -- rendering ------------------------------------------------------------------------

    def describe(self, name: str) -> str:
        """``H ∈ [28, 31]``, ``H ≥ 16, H ≡ 0 (mod 4)``, ``H ∈ {31, 32}``, joined by ``or``."""
        if self.is_empty:
            return f"no {name}"
        parts = _head_text(name, self.head)
        if self.residues:
            first = self._first_periodic()
            tail = f"{name} ≥ {_num(first)}"
            if self.period > 1:
                if len(self.residues) == 1:
                    tail += f", {name} ≡ {_num(next(iter(self.residues)))} (mod {_num(self.period)})"
                else:
                    tail += f", {_residues_text(name, self.period, self.residues)}"
            parts.append(tail)
        if len(parts) > 1 and all(hi - lo <= 1 for lo, hi in self.head) and not self.residues:
            values = [v for lo, hi in self.head for v in range(lo, hi + 1)]
            return f"{name} ∈ {{{', '.join(_num(v) for v in values)}}}"
        return " or ".join(parts)

    def __str__(self) -> str:
        return self.describe("n")


@functools.lru_cache(maxsize=_CACHED)
def _combined(a: IntSet, b: IntSet, op: str) -> IntSet:
    return a._combined(b, op)


@functools.lru_cache(maxsize=_CACHED)
def _complemented(a: IntSet) -> IntSet:
    return a._complemented()


def _residues_text(name: str, period: int, residues) -> str:
    """``H mod 64 ≤ 31`` for the residues 0 … 31; runs of three or more as intervals, the rest
    listed: ``H mod 12 ∈ [0, 3] ∪ {6, 9}``."""
    rs = sorted(residues)
    runs: list[list[int]] = []
    for r in rs:
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    mod = f"{name} mod {_num(period)}"
    if len(runs) == 1 and runs[0][1] - runs[0][0] >= 2:
        lo, hi = runs[0]
        if lo == 0:
            return f"{mod} ≤ {hi}"
        if hi == period - 1:
            return f"{mod} ≥ {lo}"
        return f"{mod} ∈ [{lo}, {hi}]"
    spans = [f"[{lo}, {hi}]" for lo, hi in runs if hi - lo >= 2]
    singles = [str(v) for lo, hi in runs if hi - lo < 2 for v in range(lo, hi + 1)]
    parts = spans + ([f"{{{', '.join(singles)}}}"] if singles else [])
    return f"{mod} ∈ {' ∪ '.join(parts)}"


def _num(n: int) -> str:
    """An int as printed in a size set: a power of two from ``2**16`` on as ``2**k`` (a deep
    chain's period), one more than such a power as ``2**k + 1``."""
    for offset in (0, 1):
        m = n - offset
        if m >= 1 << 16 and m & (m - 1) == 0:
            return f"2**{m.bit_length() - 1}" + (" + 1" if offset else "")
    return str(n)


#: the fewest intervals of one width, one period apart, written as one progression
_PROGRESSION = 4


def _head_text(name: str, head) -> list[str]:
    """The intervals below the periodic part, each as text; a run of at least _PROGRESSION of one
    width, one period apart, as one bounded progression (``H ∈ [16, 163840], H ≡ 0 (mod 16)``:
    a one-hot table's 10,240 rows past a stride of 16)."""
    out, i = [], 0
    while i < len(head):
        j = i + 1
        if i + 1 < len(head):
            width, step = head[i][1] - head[i][0], head[i + 1][0] - head[i][0]
            while j < len(head) and head[j][1] - head[j][0] == width and head[j][0] - head[j - 1][0] == step:
                j += 1
        if j - i >= _PROGRESSION:
            lo, hi, step = head[i][0], head[j - 1][1], head[i + 1][0] - head[i][0]
            residues = {(lo + k) % step for k in range(head[i][1] - lo + 1)}
            congruence = (f"{name} ≡ {_num(next(iter(residues)))} (mod {_num(step)})" if len(residues) == 1
                          else _residues_text(name, step, residues))
            out.append(f"{name} ∈ [{_num(lo)}, {_num(hi)}], {congruence}")
        else:
            out += [_interval_text(name, lo_, hi_) for lo_, hi_ in head[i:j]]
        i = j
    return out


def _interval_text(name: str, lo: int, hi: int) -> str:
    if lo == hi:
        return f"{name} = {_num(lo)}"
    if hi == lo + 1:
        return f"{name} ∈ {{{_num(lo)}, {_num(hi)}}}"
    return f"{name} ∈ [{_num(lo)}, {_num(hi)}]"


Box = Mapping[str, IntSet]


def _affine_preimage(s: IntSet, h: int, m: int, w: int, c: int) -> IntSet:
    """``{h + m*t >= 1 : w + c*t in s}`` over the integers ``t`` (``0 <= h < m``, ``c > 0``): the
    sizes on one residue class whose image on a line lies in ``s`` -- intervals map to intervals,
    and each residue of ``s``'s periodic part to one residue, by a modular inverse (linear in the
    residues, not in the period)."""
    def t_at_least(v: int) -> int:  # least t with w + c*t >= v
        return -((w - v) // c)

    head = []
    for lo, hi in s.head:
        t0, t1 = t_at_least(lo), (hi - w) // c
        if t0 <= t1:
            head.append((h + m * t0, h + m * t1))
    start = h + m * t_at_least(s.start)
    period, residues = 1, []
    if s.residues:
        g = math.gcd(c, s.period)
        tp = s.period // g
        inverse = pow(c // g, -1, tp) if tp > 1 else 0
        period = m * tp
        for rho in s.residues:
            if (rho - w) % g == 0:
                t = ((rho - w) // g * inverse) % tp
                residues.append((h + m * t) % period)
    out = IntSet.periodic(start, period, residues, head)
    return out & IntSet.congruent(h, m) if m > 1 else out


@dataclass(frozen=True)
class Tie:
    """A size fixed by another one in a box of a :class:`SizeSet`: ``slope*base + offset``
    (``W = H + 1``). Within its box the value is a positive integer for every ``base`` the box
    holds; ``slope > 0``."""

    base: str
    slope: Fraction
    offset: Fraction

    def at(self, value: int) -> int:
        v = self.slope * value + self.offset
        if v.denominator != 1:
            raise ValueError(f"{self.text()} is not an integer at {self.base} = {value}")
        return int(v)

    def expr(self) -> sympy.Expr:
        """The value as a sympy expression of the base size."""
        return sympy.Rational(self.slope.numerator, self.slope.denominator) * size_symbol(self.base) \
            + sympy.Rational(self.offset.numerator, self.offset.denominator)

    def preimage(self, s: IntSet) -> IntSet:
        """The bases whose value lies in ``s`` (and is an integer)."""
        c, m = self.slope.numerator, self.slope.denominator
        # integral where c*x + m*offset == 0 (mod m): one class h mod m (c, m coprime)
        mo = self.offset * m
        h = (-int(mo) * pow(c, -1, m)) % m if m > 1 else 0
        return _affine_preimage(s, h, m, int(self.slope * h + self.offset), c)

    def then(self, inner: "Tie") -> "Tie":
        """This tie with its base itself tied (``base = inner``): one tie to ``inner.base``."""
        return Tie(inner.base, self.slope * inner.slope, self.slope * inner.offset + self.offset)

    def text(self) -> str:
        """``H + 1``, ``2*H - 3``, ``(2*H + 1)/3``."""
        den = self.slope.denominator * self.offset.denominator // math.gcd(self.slope.denominator,
                                                                           self.offset.denominator)
        a, b = int(self.slope * den), int(self.offset * den)
        term = self.base if a == 1 else f"{a}*{self.base}"
        if b:
            term += f" {'+' if b > 0 else '-'} {_num(abs(b))}"
        return term if den == 1 else f"({term})/{den}"

    def to_json(self) -> dict:
        return {"base": self.base, "slope": str(self.slope), "offset": str(self.offset), "text": self.text()}


def _value_of(box: "Box", k: str, values: Mapping[str, int]) -> int | None:
    """The size ``k`` takes in ``box`` when the other sizes are ``values`` (None: not tied)."""
    v = box[k]
    return v.at(values[v.base]) if isinstance(v, Tie) else None


class SizeSet:
    """A set of input sizes: a union of boxes, each box one :class:`IntSet` per size name, or a
    :class:`Tie` for a size fixed by an earlier one (``W = H + 1``).

    ``groups`` ties names that must be equal (``square=True``): a box then holds one IntSet per
    group, keyed by the group's first name.
    """

    def __init__(self, names: Sequence[str], boxes: Iterable[Box], groups: Sequence[Sequence[str]] | None = None,
                 note: str = ""):
        self.names = tuple(names)
        self.groups = tuple(tuple(g) for g in (groups or [[n] for n in self.names]))
        self.keys = tuple(g[0] for g in self.groups)
        kept = [dict(b) for b in boxes if all(isinstance(b[k], Tie) or not b[k].is_empty for k in self.keys)]
        self.boxes: tuple[dict[str, IntSet], ...] = tuple(_merge_boxes(kept, self.keys))
        #: more about the set (why it is empty, the nearest achievable values ...)
        self.note = note
        self.nearest: dict = {}

    # -- queries --------------------------------------------------------------------------

    def _values(self, sizes: Mapping[str, int]) -> dict[str, int] | None:
        missing = [n for n in self.names if n not in sizes]
        unknown = [n for n in sizes if n not in self.names]
        if missing or unknown:
            raise InvalidArgument(f"sizes must name exactly {', '.join(self.names) or 'nothing'}"
                                  + (f"; missing {', '.join(missing)}" if missing else "")
                                  + (f"; unknown {', '.join(map(str, unknown))}" if unknown else ""))
        out = {}
        for g in self.groups:
            vals = {positive_int(sizes[n], f"size {n}") for n in g}
            if len(vals) != 1:
                return None
            out[g[0]] = vals.pop()
        return out

    def closest(self, sizes: Mapping[str, int], up: bool) -> dict[str, int] | None:
        """The member at or above (``up``) or at or below ``sizes`` in every size with the
        smallest total change (the first box's on a tie), exactly, without a scan: per box each
        free size's nearest member, a tied size through its base (``W = H + 1``: the base's
        members whose tied value is on the right side, the nearest of them). None: there is none."""
        target = {n: positive_int(sizes[n], f"size {n}") for n in self.names if n in sizes}
        missing = [n for n in self.names if n not in target]
        if missing or set(sizes) - set(self.names):
            raise InvalidArgument(f"sizes must name exactly {', '.join(self.names)}")
        pick = max if up else min
        goal = {g[0]: pick(target[n] for n in g) for g in self.groups}
        best: tuple[int, dict] | None = None
        for box in self.boxes:
            values = _closest_in_box(box, self.keys, goal, up)
            if values is None:
                continue
            cost = sum(abs(values[g[0]] - target[n]) for g in self.groups for n in g)
            if best is None or cost < best[0]:
                best = (cost, values)
        if best is None:
            return None
        return {n: best[1][g[0]] for g in self.groups for n in g}

    def contains(self, /, **sizes: int) -> bool:
        vals = self._values(sizes)
        if vals is None:
            return False
        return any(all(vals[k] == box[k].at(vals[box[k].base]) if isinstance(box[k], Tie) else vals[k] in box[k]
                       for k in self.keys) for box in self.boxes)

    def __contains__(self, sizes: Mapping[str, int]) -> bool:
        return self.contains(**sizes)

    @property
    def is_empty(self) -> bool:
        """Whether no size is in the set (the model refuses every size, or no size solves it)."""
        return not self.boxes

    @property
    def is_finite(self) -> bool:
        """Whether the set has finitely many sizes (every box bounded in every size)."""
        return all(all(isinstance(box[k], Tie) or box[k].is_finite for k in self.keys) for box in self.boxes)

    def enumerate(self, max_size: int) -> list[dict[str, int]]:
        """Every member with all sizes <= max_size, sorted (by the sizes in name order)."""
        return list(self.members(max_size))

    def members(self, max_size: int) -> Iterator[dict[str, int]]:
        """Every member with all sizes <= max_size, in the order of :meth:`enumerate`, one at a
        time: memory stays proportional to the boxes, not to the members (``--max 1500`` of two
        sizes is 2.25 M of them)."""
        order = sorted(range(len(self.keys)), key=lambda i: self.names.index(self.keys[i]))
        keys = [self.keys[i] for i in order]

        def walk(i: int, boxes: list, prefix: dict):
            if i == len(keys):
                yield {n: prefix[g[0]] for g in self.groups for n in g}
                return
            k = keys[i]
            values: set[int] = set()
            for b in boxes:  # a tied size's one value follows from the sizes before it
                tied = _value_of(b, k, prefix)
                values |= set(b[k].values(max_size)) if tied is None else {tied} if 1 <= tied <= max_size else set()
            for v in sorted(values):
                yield from walk(i + 1, [b for b in boxes if (_value_of(b, k, prefix) == v if isinstance(b[k], Tie)
                                                             else v in b[k])], {**prefix, k: v})

        if self.boxes:
            yield from walk(0, list(self.boxes), {})

    def count(self, max_size: int) -> int:
        """How many members have all sizes <= max_size (without listing them)."""
        return sum(1 for _ in self.members(max_size))

    def min(self) -> dict[str, int] | None:
        """The smallest member: fewest elements (product of sizes), then the smallest largest
        size (the squarest), then the smallest in name order."""
        best = None
        for box in self.boxes:  # a tie grows with its base (slope > 0): the least base is the corner
            corner = {k: box[k].min() for k in self.keys if not isinstance(box[k], Tie)}
            corner.update({k: box[k].at(corner[box[k].base]) for k in self.keys if isinstance(box[k], Tie)})
            full = {n: corner[g[0]] for g in self.groups for n in g}
            key = (math.prod(full.values()), max(full.values()), tuple(full[n] for n in self.names))
            if best is None or key < best[0]:
                best = (key, full)
        return None if best is None else best[1]

    # -- rendering ------------------------------------------------------------------------

    def _box_text(self, box: Box) -> str:
        parts = []
        for g in self.groups:
            s = box[g[0]]
            if isinstance(s, Tie):
                continue
            if s == IntSet.all():
                continue
            name = " = ".join(g)
            text = s.describe(name)
            parts.append(f"({text})" if " or " in text and len(self.groups) > 1 else text)
        parts += [f"{' = '.join(g)} = {box[g[0]].text()}" for g in self.groups if isinstance(box[g[0]], Tie)]
        if not parts:
            return "any " + " and ".join(" = ".join(g) for g in self.groups)
        return " and ".join(parts)

    def to_json(self) -> dict:
        """The set as JSON: ``{"names": [...], "boxes": [{name: IntSet.to_json(), ...}, ...],
        "text": ...}``; the set is the union of the boxes, each the product of its names' sets
        (names tied equal by ``square`` share one). A size fixed by another in a box is
        ``{"tie": {"base": "H", "slope": "1", "offset": "1", "text": "H + 1"}}``: its value is
        ``slope*base + offset``."""
        return {"names": list(self.names), "text": str(self),
                "boxes": [{n: ({"tie": box[g[0]].to_json()} if isinstance(box[g[0]], Tie) else box[g[0]].to_json())
                           for g in self.groups for n in g} for box in self.boxes]}

    def lines(self) -> list[str]:
        """One line per box (the set is their union)."""
        return [self._box_text(b) for b in self.boxes]

    def summary(self, max_boxes: int = 3) -> str:
        """Like ``str``, with at most ``max_boxes`` boxes written out and a count of the rest."""
        lines = self.lines()
        if len(lines) <= max_boxes:
            return str(self) if not self.note else "; or ".join(lines)
        return "; or ".join(lines[:max_boxes]) + f"; or {len(lines) - max_boxes} more boxes"

    def __str__(self) -> str:
        if self.is_empty:
            return "no input size" + (f" ({self.note})" if self.note else "")
        text = "; or ".join(self.lines())
        return text + (f"\n{self.note}" if self.note else "")

    def latex(self, max_boxes: int | None = 3) -> str:
        """The set as LaTeX math (``H \\in \\{31, 32\\} \\text{ and } W \\geq 7``), with at most
        ``max_boxes`` boxes written out (None: all)."""
        if self.is_empty:
            return r"\text{no input size}"
        lines = self.lines()
        shown = lines if max_boxes is None or len(lines) <= max_boxes else lines[:max_boxes]
        text = "; or ".join(shown) + (f"; or {len(lines) - len(shown)} more boxes" if len(shown) < len(lines) else "")
        return latex_of(text)

    def __repr__(self) -> str:
        return f"SizeSet({str(self)!r})"

    def _repr_markdown_(self) -> str:
        return f"${self.latex(None)}$" if not self.note else str(self)


#: the words and symbols of a size set's text (SizeSet.lines, IntSet.describe), and their LaTeX
_LATEX_TOKENS = re.compile(r"; or |\band\b|\bor\b|\bany\b|\(mod ([^)]*)\)| mod |(\d+) more boxes|no input size|"
                           r"(\d+)\*\*(\d+)|[∈≥≤≡∪≠{}*_]")
_LATEX_SYMBOLS = {"; or ": r"\text{; or }", "and": r"\text{ and }", "or": r"\text{ or }", "any": r"\text{any }",
                  " mod ": r" \bmod ", "no input size": r"\text{no input size}", "∈": r"\in", "≥": r"\geq",
                  "≤": r"\leq", "≡": r"\equiv", "∪": r"\cup", "≠": r"\neq", "{": r"\{", "}": r"\}",
                  "*": r" \cdot ", "_": r"\_"}


def latex_of(text: str) -> str:
    """A size set's text as LaTeX math: its words in ``\\text``, ``∈ ≥ ≡ (mod m)`` as ``\\in \\geq
    \\equiv \\pmod{m}``, braces escaped, ``2**16`` as ``2^{16}``, products with ``\\cdot``. The
    text is symshape's own (the grammar of ``IntSet.describe`` and ``SizeSet.lines``)."""
    def one(m: re.Match) -> str:
        token = m.group(0)
        if m.group(1) is not None:
            return rf"\pmod{{{latex_of(m.group(1))}}}"
        if m.group(2) is not None:
            return rf"\text{{{m.group(2)} more boxes}}"
        if m.group(3) is not None:
            return f"{m.group(3)}^{{{m.group(4)}}}"
        return _LATEX_SYMBOLS[token]
    return _LATEX_TOKENS.sub(one, text)


def _closest_in_box(box: Box, keys: Sequence[str], goal: Mapping[str, int], up: bool) -> dict[str, int] | None:
    """One box's nearest member to ``goal`` on one side (see SizeSet.closest); slopes are positive,
    so the nearest base gives the nearest tied value too."""
    ties = {k: box[k] for k in keys if isinstance(box[k], Tie)}
    values: dict[str, int] = {}
    for k in keys:
        if k in ties:
            continue
        allowed = box[k]
        for tk, tie in ties.items():
            if tie.base == k:
                side = IntSet.at_least(goal[tk]) if up else IntSet.interval(1, goal[tk])
                allowed = allowed & tie.preimage(side)
        v = allowed.least_from(goal[k]) if up else allowed.greatest_upto(goal[k])
        if v is None:
            return None
        values[k] = v
    for tk, tie in ties.items():
        values[tk] = tie.at(values[tie.base])
    return values


@dataclass(frozen=True)
class NearestSizes:
    """The sizes nearest to ``target`` that a model accepts: ``pad`` (every size at or above the
    target: pad the input up to it) and ``crop`` (at or below: crop down to it), each a dict of
    sizes or None where there is none; ``pad_amounts``/``crop_amounts``: by how much, per size."""

    target: dict
    pad: dict | None
    crop: dict | None

    @property
    def pad_amounts(self) -> dict | None:
        return None if self.pad is None else {k: self.pad[k] - v for k, v in self.target.items()}

    @property
    def crop_amounts(self) -> dict | None:
        return None if self.crop is None else {k: v - self.crop[k] for k, v in self.target.items()}

    def to_json(self) -> dict:
        return {"target": dict(self.target), "pad": self.pad, "crop": self.crop,
                "pad_amounts": self.pad_amounts, "crop_amounts": self.crop_amounts}

    def __str__(self) -> str:
        def one(sizes, amounts, verb):
            if sizes is None:
                return f"{verb + ':':<6}no accepted size on this side"
            at = ", ".join(f"{k}={v}" for k, v in sizes.items())
            by = ", ".join(f"{k} {'+' if verb == 'pad' else '-'}{a}" for k, a in amounts.items() if a)
            return f"{verb + ':':<6}{at}" + (f"  ({by})" if by else "  (accepted as it is)")
        return "\n".join([one(self.pad, self.pad_amounts, "pad"), one(self.crop, self.crop_amounts, "crop")])

    __repr__ = __str__


def _merge_boxes(boxes: list[dict[str, IntSet]], keys: Sequence[str]) -> list[dict[str, IntSet]]:
    """Merge boxes that differ in one component (a readable, equal union), until no two do.

    Each pass buckets the boxes by all components but one (IntSets are hashable), so the work is
    linear in the number of boxes per pass: 7,290 boxes of ``D*H*W == 720720`` merge in
    milliseconds (pairwise, it was a minute)."""
    boxes = [dict(b) for b in boxes]
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        for k in keys:
            buckets: dict[tuple, dict[str, IntSet]] = {}
            for b in boxes:
                rest = tuple(b[x] for x in keys if x != k)
                if isinstance(b[k], Tie):  # a tied size merges only with the same tie
                    rest += (b[k],)
                kept = buckets.get(rest)
                if kept is None:
                    buckets[rest] = b
                elif isinstance(b[k], Tie):
                    changed = True
                else:
                    if kept[k] != b[k]:
                        kept[k] = kept[k] | b[k]
                    changed = True
            boxes = list(buckets.values())
    return sorted(boxes, key=lambda b: (sum(isinstance(b[k], Tie) for k in keys),
                                        tuple((0 if isinstance(b[k], Tie) else b[k].min() or 0) for k in keys)))
