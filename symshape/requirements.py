"""Conditions torch checks at run time, recorded during analysis and checked at concrete sizes.

A requirement compares an expression of the input sizes (``lhs``) with a bound (``rhs``). Its
``reason`` is a template whose ``{lhs}`` and ``{rhs}`` are filled with concrete values, so a
failure reads like ``kernel 5 needs at least 5 rows, gets 4``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Callable

import sympy

from .dims import FloorDiv, always_divisible, as_expr, smallest_value, without_ite

__all__ = ["KINDS", "MAX_CLAUSES", "RELATIONS", "Relation", "Requirement", "Rounding", "by_cases", "cases_of", "cnf",
           "innermost_cases", "literal", "remainder_of", "unless_not"]


@dataclass(frozen=True)
class Relation:
    """What a relation means, in one place: ``holds`` decides it exactly on ints and on exact
    fractions (the solver's constants); ``code`` is the same test as a Python expression over
    ``{lhs}`` and ``{rhs}`` for compiled code, written with ``&``/``|`` so that it also works
    elementwise on int64 tensors; ``text`` is how a requirement prints; ``proven_by``: the
    sympy relation of ``lhs`` and ``rhs`` whose truth makes it hold (what a side's facts must
    imply for the check to be none there; ``Eq`` for a broadcast), or None."""

    name: str
    holds: Callable[[Any, Any], bool]
    code: str
    text: str
    proven_by: type | None = None


def _divisible(lhs, rhs) -> bool:
    return rhs != 0 and lhs % rhs == 0  # for fractions too: lhs/rhs is an integer


#: every relation a requirement can state
RELATIONS: dict[str, Relation] = {r.name: r for r in (
    Relation(">=", lambda a, b: a >= b, "({lhs} >= {rhs})", "{lhs} >= {rhs}", sympy.Ge),
    Relation("==", lambda a, b: a == b, "({lhs} == {rhs})", "{lhs} == {rhs}", sympy.Eq),
    Relation("!=", lambda a, b: a != b, "({lhs} != {rhs})", "{lhs} != {rhs}", sympy.Ne),
    Relation("divisible", _divisible, "_divisible({lhs}, {rhs})", "{lhs} divisible by {rhs}"),
    Relation("broadcast", lambda a, b: a == b or a == 1 or b == 1,
             "(({lhs} == {rhs}) | ({lhs} == 1) | ({rhs} == 1))", "{lhs} == {rhs} or {lhs} == 1 or {rhs} == 1",
             sympy.Eq),
    Relation("never", lambda a, b: False, "False", "never: {reason}"),
)}
#: ``size``: torch raises at sizes that break it. ``declared``: a layer's declared feature count
#: (Linear.in_features, Conv.in_channels ...) differs from what reaches it; analysis goes on with
#: the layer's declared output so later layers are still checked. ``case``: not torch's check, but
#: the sizes one case of a forward covers whose structure depends on whether a size is 1
#: (``Analysis.cases``): the other sizes are another case's.
KINDS = ("size", "declared", "case")


@dataclass(frozen=True)
class Requirement:
    """``lhs >= rhs``, ``lhs == rhs``, ``lhs != rhs``, ``lhs`` divisible by ``rhs``, ``broadcast`` (equal, or one
    of them is 1), or ``never`` (fails at every size)."""

    lhs: sympy.Expr
    relation: str
    rhs: sympy.Expr
    reason: str
    kind: str = "size"
    #: torch skips this check where ``unless`` holds (a fast path, e.g. adaptive pooling to 1x1)
    unless: "Requirement | None" = None
    #: set when some torch backends skip this check (the text says which): symshape applies the
    #: check, as torch's reference path does, and verification reports such a size separately
    backend_dependent: str = ""
    #: set when torch's refusal depends on the tensor's values, not only its size (the text says
    #: why): symshape refuses where torch may, and verification does not count a run as a mismatch
    data_dependent: str = ""
    #: for a ``declared`` requirement, the parameter of the layer it checks, as the layer's rule
    #: names it (``in_features``, ``input_size``: ``Fixed.tag``)
    fixes: str = ""
    #: set when torch's meta kernels do not make this check (an index's values against the size:
    #: the CPU and CUDA kernels do; the text says so): verification on the meta device reports a
    #: size where the meta forward ran past it separately, not as a mismatch
    meta_unchecked: str = ""
    #: a link :func:`unless_not` puts before a check: a condition of the side of a Python
    #: branch the check is on (its ``lhs`` and ``rhs`` are the condition's, not what the reason
    #: states: :attr:`check` is the link that is)
    condition: bool = False

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown requirement kind {self.kind!r}")
        object.__setattr__(self, "lhs", as_expr(self.lhs))
        object.__setattr__(self, "rhs", as_expr(self.rhs))

    def holds(self, lhs, rhs) -> bool:
        """Whether the relation (not its ``unless``) holds for these values."""
        return RELATIONS[self.relation].holds(lhs, rhs)

    def proven_by(self) -> sympy.Rel | None:
        """The relation of ``lhs`` and ``rhs`` (unevaluated) whose truth makes this check hold
        (not its ``unless``): ``lhs >= rhs`` for ``>=``, ``lhs == rhs`` for ``==`` and for a
        broadcast; None for a divisibility and ``never``."""
        kind = RELATIONS[self.relation].proven_by
        return None if kind is None else kind(self.lhs, self.rhs, evaluate=False)

    def exprs(self) -> list[sympy.Expr]:
        """The expressions :meth:`accepts` needs, in order."""
        return [self.lhs, self.rhs, *(self.unless.exprs() if self.unless is not None else [])]

    def accepts(self, values: list[int]) -> bool:
        """Whether torch accepts, given the values of :meth:`exprs`."""
        if self.holds(values[0], values[1]):
            return True
        return self.unless is not None and self.unless.accepts(values[2:])

    def message(self, lhs: int, rhs: int) -> str:
        return self.reason.format(lhs=lhs, rhs=rhs)

    @property
    def check(self) -> "Requirement":
        """The link of this chain whose reason states it: the first that is not a side's
        :attr:`condition` (a ``Linear`` on one side of a branch on ``L > 5`` checks its
        ``in_features``, not ``L``)."""
        return self._check_at()[0]

    def failure(self, values: list[int]) -> str:
        """Why torch refuses, given the values of :meth:`exprs` where :meth:`accepts` is False:
        the :attr:`check`'s reason with its own two values."""
        link, at = self._check_at()
        return link.message(values[at], values[at + 1])

    def _check_at(self) -> tuple["Requirement", int]:
        """:attr:`check`, and where its two values start among :meth:`exprs`."""
        link, at = self, 0
        while link.condition and link.unless is not None:
            link, at = link.unless, at + 2
        return link, at

    def decided(self) -> bool | None:
        """True/False when the requirement holds/fails at every size, else None."""
        own = self._decided()
        if own is True or self.unless is None:
            return own
        other = self.unless.decided()
        if other is True:
            return True
        return False if own is False and other is False else None

    def _decided(self) -> bool | None:
        # Decided from the structure, not with sympy's relational assumptions: those are slow
        # (a tenth of a second on first use) and a wrong "decided" would drop a real check.
        lhs, rhs = self.lhs, self.rhs
        if self.relation == "never":
            return False
        if lhs.is_Integer and rhs.is_Integer:
            return self.holds(int(lhs), int(rhs))
        if self.relation == ">=":
            low = smallest_value(lhs - rhs)
            return True if low is not None and low >= 0 else None
        if self.relation in ("==", "broadcast"):
            return True if lhs == rhs else None
        if self.relation == "!=":
            low = smallest_value(lhs - rhs)
            return True if low is not None and low > 0 else None
        if rhs == 0:
            return False
        # lhs = rhs * (an integer expression): divisible wherever rhs != 0, and a
        # zero rhs is refused by its own requirement.
        return True if always_divisible(lhs, rhs) else None

    def __str__(self) -> str:
        text = self._str()
        return f"{text} unless {self.unless}" if self.unless is not None else text

    def _str(self) -> str:
        return RELATIONS[self.relation].text.format(lhs=self.lhs, rhs=self.rhs, reason=self.reason)


@dataclass(frozen=True)
class Rounding:
    """A layer computes ``floor(numerator / divisor)``: it rounds unless the division is exact.

    ``what`` says what is rounded, e.g. ``stride 2``. A divisor of 0 is a rounding that is no
    division (a double-precision product's floor): ``exact_sizes()`` refuses it by name.
    """

    numerator: sympy.Expr
    divisor: int
    what: str
    #: the conditions under which the layer divides so (one side of a branch on a size); () always
    when: tuple = ()


def literal(rel) -> tuple:
    """A relation as (lhs, relation, rhs) in Requirement's vocabulary (sizes are integers)."""
    if isinstance(rel, sympy.Eq):
        remainder = remainder_of(rel.lhs - rel.rhs)
        if remainder is not None:  # a - q*(a // q) == 0: a divisible by q
            return remainder[0], "divisible", remainder[1]
        return rel.lhs, "==", rel.rhs
    if isinstance(rel, sympy.Ne):
        return rel.lhs, "!=", rel.rhs
    if isinstance(rel, sympy.Ge):
        return rel.lhs, ">=", rel.rhs
    if isinstance(rel, sympy.Gt):
        return _strict(rel.lhs, rel.rhs)
    if isinstance(rel, sympy.Le):
        return rel.rhs, ">=", rel.lhs
    if isinstance(rel, sympy.Lt):
        return _strict(rel.rhs, rel.lhs)
    raise ValueError(f"a condition that is not a relation of sizes: {rel}")


def remainder_of(e) -> tuple | None:
    """``(a, q)`` when ``e`` is ``a % q`` (``a - q*floor(a/q)``, or ``Mod(a, q)``) or its negation
    (``Eq(e, 0)``: ``a`` divisible by ``q``)."""
    e = as_expr(e)
    for sign in (1, -1):
        f = sign * e
        if isinstance(f, sympy.Mod) and f.args[1].is_Integer and f.args[1] > 0:
            return f.args[0], f.args[1]
        floors = f.atoms(FloorDiv)
        if len(floors) == 1:
            (fd,) = floors
            p, q = fd.args
            if q.is_Integer and q > 0 and sympy.expand(f - (p - q * fd)) == 0:
                return p, q
    return None


def _strict(a, b) -> tuple:
    """``a > b`` for integer sizes as ``>=``: ``a >= b + 1`` -- after clearing the denominators
    of its numbers (sympy writes ``3*L - 5 > 0`` as ``L > 5/3``, which is ``3*L >= 6``)."""
    diff = sympy.together(as_expr(a, rational=True) - as_expr(b, rational=True))
    num, den = sympy.fraction(diff)
    if den == 1:
        return a, ">=", b + 1
    if not den.is_Integer:
        raise ValueError(f"a condition that divides by a size: {a} > {b}")
    if den < 0:
        num, den = -num, -den
    return num, ">=", 1  # num = den*(a - b) is an integer where a and b are sizes


#: the most clauses a condition's conjunctive normal form may have (each becomes a requirement)
MAX_CLAUSES = 64


def cnf(cond) -> sympy.Basic:
    """``cond`` in conjunctive normal form; ValueError where that takes more than
    :data:`MAX_CLAUSES` clauses (an Or of Ands multiplies out: sympy would run for hours)."""
    nnf = sympy.to_nnf(cond, simplify=False)

    def clauses(e) -> int:
        if isinstance(e, sympy.And):
            return sum(clauses(a) for a in e.args)
        if isinstance(e, sympy.Or):
            out = 1
            for a in e.args:
                out *= clauses(a)
                if out > MAX_CLAUSES:
                    break
            return out
        return 1

    if clauses(nnf) > MAX_CLAUSES:
        raise ValueError(f"a condition whose conjunctive normal form has more than {MAX_CLAUSES} clauses")
    return sympy.to_cnf(nnf, simplify=False)


def unless_not(req: Requirement, conds: list) -> list[Requirement]:
    """``req``, needed only where every condition in ``conds`` holds: ``req`` or one of them
    fails -- in conjunctive normal form, one requirement (``req`` unless the clause) a clause."""
    if not conds:
        return [req]
    out = []
    for clause in _failing(tuple(conds)):
        chained = req
        for lhs, relation, rhs in clause:
            chained = replace(req, lhs=lhs, relation=relation, rhs=rhs, unless=chained, condition=True)
        out.append(chained)
    return out


@functools.lru_cache(maxsize=1024)
def _failing(conds: tuple) -> tuple:
    """"One of ``conds`` fails", in conjunctive normal form: its clauses, each as the literals
    (``literal``) it chains, in order (the same for every requirement of one side)."""
    out = []
    for clause in sympy.And.make_args(cnf(sympy.Or(*(sympy.Not(c) for c in conds)))):
        if clause is sympy.true:
            continue
        out.append(tuple(literal(lit) for lit in sorted(sympy.Or.make_args(clause), key=str, reverse=True)))
    return tuple(out)


_CASES = (sympy.Piecewise, sympy.Min, sympy.Max)


def innermost_cases(exprs, kinds=_CASES):
    """A ``Piecewise`` (with ``kinds``, also a ``Min`` or ``Max``) in ``exprs`` with none inside it."""
    for e in exprs:
        for atom in as_expr(e).atoms(*kinds):
            if not any(a.has(*kinds) for a in atom.args):
                return atom
    return None


def cases_of(atom) -> list[tuple]:
    """``(value, condition)`` pairs of a ``Piecewise``, ``Min`` or ``Max``, built by hand: sympy's
    ``rewrite(Piecewise)`` of a ``Max`` solves inequalities over the reals (minutes on PiT)."""
    if isinstance(atom, sympy.Piecewise):
        return list(atom.args)
    rel = sympy.Ge if isinstance(atom, sympy.Max) else sympy.Le
    return [(a, sympy.And(*(rel(a, b) for b in atom.args if b is not a))) for a in atom.args]


def by_cases(req: Requirement, extrema: bool = False) -> list[Requirement]:
    """A requirement on a size defined by cases (a ``Piecewise``; with ``extrema``, also ``Min``
    and ``Max``), as one requirement per case, each needed only where its case holds (``unless``
    the case's condition fails): the solver then sees plain sizes."""
    pw = innermost_cases((req.lhs, req.rhs), _CASES if extrema else (sympy.Piecewise,))
    if pw is None:
        return [req]
    out: list[Requirement] = []
    earlier: list = []
    for value, cond in cases_of(pw):
        cond = without_ite(cond)
        if cond is sympy.false:  # a case no size is in
            continue
        here = [*earlier, *([] if cond is sympy.true else [cond])]
        case = replace(req, lhs=req.lhs.xreplace({pw: value}), rhs=req.rhs.xreplace({pw: value}))
        for r in by_cases(case, extrema):
            if r.decided() is not True:  # a case where the check holds at every size adds nothing
                out += [c for c in unless_not(r, here) if c.decided() is not True]
        earlier.append(sympy.Not(cond))
    return out
