"""Requirements that hold on every side of a branch, and checks settled by a side's conditions.

A branch on the sizes traced by sides leaves each side's checks as chains: ``check unless
(this side's condition fails) unless ...`` (:class:`~symshape.requirements.Requirement`'s
``unless``). Two facts about such chains let the solver answer where the sides' conditions
themselves are no union of boxes (``floor(H/16) >= floor(W/16)``: NaFlexViT's patch grid):

* **a check every side makes** holds everywhere: chains ``h_i or C`` that share a link ``C``
  hold together exactly where ``C`` does when the ``h_i`` cannot all hold at once. That is
  read from the links alone, as propositions (a link and its negation -- ``a == b`` and
  ``a != b``, ``a >= b`` and ``b - a >= 1`` -- one atom; any other link an atom of its own,
  which can only make the heads look satisfiable): :func:`settled_tails`.
* **where a chain fails** every link fails, so each negated link ``e >= 0`` is a fact there,
  and a ``Min`` or ``Max`` of two sizes whose difference such a fact bounds is one of them
  (``Min(gh, gw)`` is ``gw`` where ``gh >= gw``): :func:`settled_extrema`.

Both only rewrite a requirement into one that holds at exactly the same sizes.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Sequence

import sympy

from .dims import as_expr, integer_polynomial, smallest_value
from .requirements import Requirement

__all__ = ["MAX_ATOMS", "links", "settled_extrema", "settled_tails"]

#: the most distinct propositions :func:`settled_tails` reads a group of chains with
MAX_ATOMS = 12


def links(req: Requirement) -> list[Requirement]:
    """``req`` and each of its ``unless`` in turn, each without its own ``unless``."""
    out = []
    while req is not None:
        out.append(replace(req, unless=None))
        req = req.unless
    return out


def _atom(link: Requirement, seen: dict) -> tuple:
    """``(atom, truth)``: the proposition a link states, one for a relation and its negation."""
    if link.relation in ("==", "!="):
        e = sympy.expand(link.lhs - link.rhs)
        e = -e if e.could_extract_minus_sign() else e
        return ("==", e), link.relation == "=="
    if link.relation == ">=" and integer_polynomial(link.lhs) and integer_polynomial(link.rhs):
        e = sympy.expand(link.lhs - link.rhs)  # e >= 0; its negation is -e - 1 >= 0
        other = sympy.expand(-e - 1)
        if (">=", other) in seen:
            return (">=", other), False
        return (">=", e), True
    return (link.relation, link.lhs, link.rhs), True


def _satisfiable(clauses: list[list[tuple]]) -> bool:
    """Whether some truth of the atoms makes every clause (a disjunction) hold; True where
    there are too many atoms to try them all."""
    atoms = sorted({a for c in clauses for a, _ in c}, key=str)
    if len(atoms) > MAX_ATOMS:
        return True
    index = {a: i for i, a in enumerate(atoms)}
    for truth in itertools.product((False, True), repeat=len(atoms)):
        if all(any(truth[index[a]] == t for a, t in c) for c in clauses):
            return True
    return False


def settled_tails(reqs: Sequence[tuple[str, Requirement]]) -> list[tuple[str, Requirement]]:
    """``reqs`` with each group of chains that share a link, whose other links cannot all hold
    at once, replaced by that link alone (where the first of them came)."""
    chains = {i: links(r) for i, (_, r) in enumerate(reqs) if r.unless is not None}
    if len(chains) < 2:
        return list(reqs)
    seen: dict = {}
    atoms: dict[int, list] = {}
    for i, chain in chains.items():
        atoms[i] = []
        for link in chain:
            atom = _atom(link, seen)
            seen.setdefault(atom[0], True)
            atoms[i].append(atom)
    keys = {i: [(link.lhs, link.relation, link.rhs) for link in chain] for i, chain in chains.items()}
    sharing: dict = {}  # a link -> the chains that have it, in order
    for i in chains:
        for k in dict.fromkeys(keys[i]):
            sharing.setdefault(k, []).append(i)
    replaced: dict[int, Requirement | None] = {}
    for k, members in sharing.items():
        members = [i for i in members if i not in replaced]
        if len(members) < 2:
            continue
        if _satisfiable([[a for kk, a in zip(keys[i], atoms[i]) if kk != k] for i in members]):
            continue
        first = members[0]
        replaced[first] = chains[first][keys[first].index(k)]
        replaced.update({i: None for i in members[1:]})
    out = []
    for i, (where, r) in enumerate(reqs):
        if i not in replaced:
            out.append((where, r))
        elif replaced[i] is not None:
            out.append((where, replaced[i]))
    return out


def _known(d, facts: list) -> bool:
    """Whether ``d >= 0`` follows from a fact ``e >= 0`` (``d - e`` a number at least 0), or
    from ``d``'s own least value."""
    if any((d - e).is_number and d - e >= 0 for e in facts):
        return True
    low = smallest_value(d)
    return low is not None and low >= 0


def settled_extrema(req: Requirement, facts: list) -> Requirement:
    """``req`` (a link, no ``unless``) with each two-argument ``Min``/``Max`` whose arguments'
    order follows from ``facts`` (expressions known to be at least 0) replaced by the argument
    it is; ``req`` itself where none is."""
    exprs = (as_expr(req.lhs), as_expr(req.rhs))
    extrema = {m for e in exprs for m in e.atoms(sympy.Min, sympy.Max) if len(m.args) == 2}
    if not extrema:
        return req
    subs = {}
    for m in sorted(extrema, key=sympy.count_ops):  # inner ones first: an outer one then reads them
        a, b = (arg.xreplace(subs) for arg in m.args)
        d = sympy.expand(a - b)
        if _known(d, facts):  # a >= b
            subs[m] = b if isinstance(m, sympy.Min) else a
        elif _known(-d, facts):
            subs[m] = a if isinstance(m, sympy.Min) else b
    if not subs:
        return req
    lhs, rhs = (e.xreplace(subs) for e in exprs)
    return replace(req, lhs=lhs, rhs=rhs)
