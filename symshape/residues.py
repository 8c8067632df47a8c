"""Sizes by the residue of a size expression modulo a number, and of a product of such.

A window attention that folds its windows into the batch and back with a mask made for a
fixed count of windows (the copies of the original Swin; timm's Swin V2 CR, which also checks
its size: ``view(floor(N·a·b/4), 4, ...)`` with ``a = floor((H + 108)/112)`` and ``b`` the same
of W) checks a floor of a product of sizes: the count divides exactly where ``4`` divides
``a·b``. With ``r`` the product's residue, ``floor(X/m) = (X - r)/m``, so a
condition on the floor is a condition on ``X`` for each ``r``; :mod:`symshape.solve` takes each
residue the sizes can give and solves the rest there.

    residue_sets(g, m, S, x)      {s: the x in S with g(x) = s (mod m)}, each an IntSet
    product_residues(c, ...)      for each r: boxes where c·g1(x1)·g2(x2)··· = r (mod m)

``g`` is a polynomial with integer coefficients in ``x`` and floors of expressions linear in
``x`` (every size expression symshape builds for one size, but for the rounding of a float
product): shifting ``x`` by ``P·m``, ``P`` its period (:func:`symshape.quasi.period`), moves
each floor by a multiple of ``m``, so ``g mod m`` repeats with period ``P·m``. The sets are read
off one such period, value by value, and the repetition is checked at two periods more.
"""

from __future__ import annotations

import math
from typing import Sequence

import sympy

from .compiled import compile_exprs
from .dims import as_expr, integer_polynomial
from .quasi import MAX_PERIOD, Unsolvable, period
from .sizes import IntSet

__all__ = ["MAX_RESIDUE_BOXES", "product_residues", "residue_sets"]

#: the most boxes :func:`product_residues` returns for one residue
MAX_RESIDUE_BOXES = 256


def residue_sets(g, m: int, domain: IntSet, x: sympy.Symbol) -> dict[int, IntSet]:
    """``{s: {x in domain : g(x) = s (mod m)}}`` for the residues ``s`` that occur (see the
    module's docstring); Unsolvable where ``g`` is not of that form or the period is too long."""
    g = as_expr(g)
    if not integer_polynomial(g):
        raise Unsolvable(f"{g} modulo {m}: not an integer expression of floors")
    if domain.is_empty:
        return {}
    step = period(g, x) * m
    if domain.residues:  # the domain repeats from its start on, with its own period
        span = math.lcm(step, domain.period)
        if span > MAX_PERIOD:
            raise Unsolvable(f"{g} modulo {m} on {domain.describe(str(x))}: a period of {span}, beyond "
                             f"the solver's {MAX_PERIOD}")
        last = domain.start + span - 1
    else:
        span, last = 0, domain.max()
    fn = compile_exprs([x], [g])
    head: dict[int, list[int]] = {}
    tail: dict[int, list[int]] = {}
    for v in domain.values(last):
        s = int(fn(v)[0]) % m
        (tail if span and v >= domain.start else head).setdefault(s, []).append(v)
    if span:  # g mod m repeats: checked at the first members two periods on
        for v in list(domain.values(domain.start + step))[:2]:
            if any((int(fn(v + k * step)[0]) - int(fn(v)[0])) % m for k in (1, 2)):
                raise Unsolvable(f"{g} modulo {m} does not repeat every {step} values of {x}")
    out = {}
    for s in set(head) | set(tail):
        heads = [(v, v) for v in head.get(s, [])]
        if span:
            out[s] = IntSet.periodic(domain.start, span, tail.get(s, []), heads)
        else:
            out[s] = IntSet.from_intervals(heads)
    return out


def product_residues(c: int, factors: Sequence[tuple[str, sympy.Expr]], m: int, box: dict,
                     symbol) -> dict[int, list[dict]]:
    """For each residue ``r`` that ``c·∏g_n(x_n)`` takes modulo ``m`` on ``box``: the boxes
    (disjoint, inside ``box``) where it does. ``symbol(name)`` is the size's symbol.

    The factors but the last are taken residue by residue (one box for each residue of the
    product so far); the last factor then takes the union of its residues that complete
    ``r``, and boxes that differ only in the factor before it, with the same last part, merge:
    where ``m`` must divide ``a·b`` that leaves one box a divisor of ``m``, not one a residue."""
    sets = {n: residue_sets(g, m, box[n], symbol(n)) for n, g in factors}
    states: list[tuple[int, dict]] = [(c % m, dict(box))]
    for n, _ in factors[:-1]:
        grown: dict[tuple, tuple[int, dict]] = {}
        for mult, b in states:
            for s, here in sets[n].items():
                key = (mult * s % m, id(b))
                if key in grown:
                    grown[key] = (key[0], {**grown[key][1], n: grown[key][1][n] | here})
                else:
                    grown[key] = (key[0], {**b, n: here})
        states = list(grown.values())
    last = factors[-1][0]
    before = factors[-2][0] if len(factors) > 1 else None
    out: dict[int, list[dict]] = {}
    for r in sorted({mult * s % m for mult, _ in states for s in sets[last]}):
        merged: dict[tuple, dict] = {}
        for mult, b in states:
            ss = frozenset(s for s in sets[last] if mult * s % m == r)
            if not ss:
                continue
            key = (ss, tuple((k, v) for k, v in b.items() if k not in (before, last)))
            if key in merged:  # (two states: two factors at least, so ``before`` is a size)
                merged[key] = {**merged[key], before: merged[key][before] | b[before]}
                continue
            lastset = IntSet.empty()
            for s in ss:
                lastset = lastset | sets[last][s]
            merged[key] = {**b, last: lastset}
        if len(merged) > MAX_RESIDUE_BOXES:
            raise Unsolvable(f"a product modulo {m} takes {r} on {len(merged)} boxes, beyond the solver's "
                             f"{MAX_RESIDUE_BOXES}")
        out[r] = list(merged.values())
    return out
