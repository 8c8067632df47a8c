"""torch.export's ``dynamic_shapes`` from the sizes a model accepts, and what torch.export then
refuses of them.

:func:`export_spec` turns :func:`~symshape.solve.valid_sizes` into ``Dim`` s: a range
(``Dim("H", min=28, max=31)``), a derived dim for a congruence (``H = 32*h`` with
``h = Dim("h", min=1)``) or a size tied to another (``W = H + 1``). torch's Dim language has one
arithmetic progression per size, so a union of boxes, a ``≠`` hole or several residue classes
cannot all be said: the spec takes the part that covers the most sizes and states the rest
(:attr:`ExportSpec.left_out`).

:func:`check_export` exports a copy of the model with the spec and solves each guard torch
recorded (``ep._guards_code``) exactly over the spec's sizes: a size symshape proves valid that
the exported program refuses is a finding, with torch's guard and the exact set. The program is
then run at sizes the spec admits and compared with eager torch.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import sympy
import torch

from .dims import BATCH, divisors, positive_int, size_symbol
from .errors import InvalidArgument
from .exportcheck import ExportCheck, GuardFinding, check_export, narrowing
from .engine import _flat
from .guards import violated_guards
from .inputs import forward_names
from .requirements import Requirement
from .sizes import IntSet, SizeSet, Tie
from .solve import solve_requirements, valid_sizes
from .verify import _dtype, _sample_input

__all__ = ["ExportCheck", "ExportSpec", "GuardFinding", "Progression", "check_export", "export_spec"]

#: boxes of valid sizes are ranked by how many of their sizes up to this bound the spec admits
HORIZON = 4096


@dataclass(frozen=True)
class Progression:
    """The sizes ``step*t + offset`` for integer ``t`` from ``lo`` to ``hi`` (None: no end):
    what one torch ``Dim`` (``t``) says of a size, directly (``step`` 1, ``offset`` 0) or derived."""

    step: int
    offset: int
    lo: int
    hi: int | None

    def at(self, t: int) -> int:
        return self.step * t + self.offset

    @property
    def first(self) -> int:
        return self.at(self.lo)

    def as_set(self) -> IntSet:
        last = IntSet.all() if self.hi is None else IntSet.interval(1, self.at(self.hi))
        return IntSet.congruent(self.offset, self.step, self.first) & last

    def count(self, upto: int) -> int:
        top = self.hi if self.hi is not None else self.lo + upto
        top = min(top, (upto - self.offset) // self.step)
        return max(0, top - self.lo + 1)

    def __contains__(self, n: int) -> bool:
        t, r = divmod(n - self.offset, self.step)
        return r == 0 and t >= self.lo and (self.hi is None or t <= self.hi)


def _candidates(s: IntSet) -> list[Progression]:
    """The progressions a set holds that no longer one of the same step contains: per step
    dividing the period, each residue class wholly in the set (from the start on), extended
    down while its members stay in the set; and each interval of the set's head."""
    out = []
    if s.residues:
        p = s.period
        for d in sorted(divisors(p)):
            for r in range(d):
                if not all(((r + d * k) % p) in s.residues for k in range(p // d)):
                    continue
                t = max(-(-(s.start - r) // d), 0)
                while t > 0 and r + d * (t - 1) >= 1 and (r + d * (t - 1)) in s:
                    t -= 1
                if r + d * t < 1:
                    t += 1
                out.append(Progression(d, r, t, None))
    for lo, hi in s.head:
        out.append(Progression(1, 0, lo, hi))
    return out


def _best(s: IntSet, must: int | None) -> Progression | None:
    """The progression in ``s`` (holding ``must``) that says the most: no end before one with an
    end, then the smallest step, then the most members, then the smallest first one."""
    cands = [c for c in _candidates(s) if must is None or must in c]
    if not cands:
        return None
    return min(cands, key=lambda c: (c.hi is not None, c.step, -c.count(HORIZON), c.first))


# -- the spec --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A size as ``coeff*root + const`` of a root ``Dim``; ``root`` None: the size is ``const``."""

    root: str | None
    coeff: int
    const: int

    def at(self, t: int | None) -> int:
        return self.const if self.root is None else self.coeff * t + self.const

    def code(self) -> str:
        if self.root is None:
            return str(self.const)
        term = self.root if self.coeff == 1 else f"{self.coeff} * {self.root}"
        return term if not self.const else f"{term} {'+' if self.const > 0 else '-'} {abs(self.const)}"


@dataclass
class ExportSpec:
    """A ``dynamic_shapes`` argument for ``torch.export.export`` that admits only sizes the model
    accepts (:meth:`dynamic_shapes`, :meth:`code`), the example inputs to export with
    (:meth:`example_inputs`, at :attr:`example`) and what of the valid sizes it leaves out and why
    (:attr:`left_out`)."""

    analysis: Any
    batch: int
    #: size name -> its form
    forms: dict[str, Form]
    #: root Dim name -> (min, max); max None: no end
    roots: dict[str, tuple[int, int | None]]
    #: the sizes the example inputs have (each in the spec)
    example: dict[str, int]
    #: what the spec does not admit of valid_sizes(), and why (torch's Dim language cannot say it)
    left_out: list[str] = field(default_factory=list)
    #: all the sizes the model accepts (at this batch size)
    valid: SizeSet | None = None
    #: guards over which torch.export refused an earlier, wider spec: each with the exact sizes
    #: it fails at (all valid: a finding), or none where torch could not prove a guard that holds
    refusals: list = field(default_factory=list)
    #: what torch.export did with this spec (:func:`check_export`), where it was checked
    checked: Any = None
    #: every check on the way to this spec (wider specs torch refused first), this one's last
    history: list = field(default_factory=list)
    #: why torch.export still refuses the spec, where symshape sees why
    notes: list = field(default_factory=list)

    # -- what torch takes ----------------------------------------------------------------

    def _keys(self) -> tuple[list, bool]:
        """One key per input: the forward's parameter name, or None for the tuple form."""
        inputs = self.analysis.inputs
        positional = forward_names(self.analysis.model, len(inputs.args))
        named = len(positional) == len(inputs.args)
        if not named and inputs.kwargs:
            raise InvalidArgument("export_spec: the forward takes its positional inputs as *args and keyword inputs "
                                  "too; torch.export's dynamic_shapes cannot name them")
        return [*positional, *inputs.kwargs] if named else [None] * len(inputs.args), named

    def _per_input(self) -> list[dict[int, Form]]:
        shift = 1 if self.analysis.batched else 0
        out = []
        for _, shape in self.analysis.inputs.shapes:
            dims = {}
            for i, d in enumerate(shape):
                if isinstance(d, sympy.Symbol) and self.forms[d.name].root is not None:
                    dims[i + shift] = self.forms[d.name]
            out.append(dims)
        return out

    def dynamic_shapes(self) -> dict | tuple:
        """The ``dynamic_shapes`` argument: a dict by the forward's parameter names (a tuple, one
        entry per input, where the forward takes ``*args``), each input's dynamic dims by index."""
        from torch.export import Dim

        dims = {name: Dim(name, min=lo, max=hi) if hi is not None else Dim(name, min=lo)
                for name, (lo, hi) in self.roots.items()}

        def expr(f: Form):
            d = dims[f.root]
            d = d if f.coeff == 1 else f.coeff * d
            return d if not f.const else d + f.const
        per = [{i: expr(f) for i, f in one.items()} or None for one in self._per_input()]
        keys, named = self._keys()
        return dict(zip(keys, per)) if named else tuple(per)

    def example_inputs(self, dtype: torch.dtype | None = None) -> tuple[tuple, dict]:
        """``(args, kwargs)`` for ``torch.export.export`` at :attr:`example` (random values from a
        generator of their own; torch's global RNG is not touched)."""
        sizes = {**self.example, BATCH: self.batch}
        return _sample_input(self.analysis, sizes, dtype or _dtype(self.analysis.model))

    # -- the sizes it admits ---------------------------------------------------------------

    def requirements(self) -> list[tuple[str, Requirement]]:
        """The spec as requirements on the sizes: each size's range and congruence, and sizes
        that share a root tied to each other."""
        out = []
        first: dict[str, tuple[str, Form]] = {}
        for name, f in self.forms.items():
            s = size_symbol(name)
            if f.root is None:
                out.append(("spec", Requirement(s, "==", f.const, f"{name} is {f.const}")))
                continue
            lo, hi = self.roots[f.root]
            out.append(("spec", Requirement(s, ">=", f.at(lo), f"{name} >= {f.at(lo)}")))
            if hi is not None:
                out.append(("spec", Requirement(f.at(hi), ">=", s, f"{name} <= {f.at(hi)}")))
            if f.coeff > 1:
                out.append(("spec", Requirement(s - f.const, "divisible", f.coeff, f"{name} = {f.code()}")))
            if f.root in first:
                other, g = first[f.root]
                lhs = g.coeff * (s - f.const) - f.coeff * (size_symbol(other) - g.const)
                out.append(("spec", Requirement(lhs, "==", 0, f"{name} = {f.code()}, {other} = {g.code()}")))
            else:
                first[f.root] = (name, f)
        return out

    def admitted(self) -> SizeSet:
        """Exactly the sizes the spec admits (a subset of the valid sizes)."""
        return solve_requirements(self.analysis.size_names, self.requirements(), self.batch)

    def members(self, count: int) -> list[dict[str, int]]:
        """Up to ``count`` sizes the spec admits: the example, then each root at its least value
        and up, the roots apart (root ``i`` steps by ``i + 1``), within their ranges."""
        out = [dict(self.example)]
        for j in range(4 * count):
            if len(out) >= count:
                break
            ts = {}
            for i, (root, (lo, hi)) in enumerate(self.roots.items()):
                t = lo + j * (i + 1)
                ts[root] = t if hi is None else lo + (t - lo) % (hi - lo + 1)
            values = {n: f.at(ts.get(f.root)) for n, f in self.forms.items()}
            if values not in out:
                out.append(values)
        return out

    # -- rendering -------------------------------------------------------------------------

    def code(self) -> str:
        """The spec as Python to paste before ``torch.export.export(...)``."""
        lines = ["from torch.export import Dim", ""]
        for name, (lo, hi) in self.roots.items():
            args = f"min={lo}" + (f", max={hi}" if hi is not None else "")
            said = [f"{k} = {f.code()}" for k, f in self.forms.items() if f.root == name and f.code() != name]
            lines.append(f'{name} = Dim("{name}", {args})' + (f"  # {', '.join(said)}" if said else ""))
        keys, named = self._keys()
        per = []
        for one in self._per_input():
            per.append("None" if not one else "{" + ", ".join(f"{i}: {f.code()}" for i, f in one.items()) + "}")
        if named:
            body = "{" + ", ".join(f'"{k}": {v}' for k, v in zip(keys, per)) + "}"
        else:
            body = "(" + ", ".join(per) + ("," if len(per) == 1 else "") + ")"
        lines.append(f"dynamic_shapes = {body}")
        inputs = self.analysis.inputs
        args, kwargs = inputs.concrete({**self.example, BATCH: self.batch}, self.analysis.batched)

        def made(shape, dtype):  # (token ids, a mask: zeros of their dtype)
            return f"torch.randn{tuple(shape)}" if dtype is None else f"torch.zeros({tuple(shape)}, dtype={dtype})"
        args, kwargs = inputs.typed(made, args, kwargs)
        shapes = [*args, *(f"{k}={v}" for k, v in kwargs.items())]
        lines.append(f"# example inputs: {', '.join(shapes)}")
        for label, texts in (("# left out: ", self.left_out), ("# note: ", self.notes)):
            for text in texts:
                lines += textwrap.wrap(text, 100, initial_indent=label, subsequent_indent="#   ",
                                       break_long_words=False, break_on_hyphens=False)
        return "\n".join(lines)

    def to_json(self) -> dict:
        keys, named = self._keys()
        per = [{str(i): {"root": f.root, "coeff": f.coeff, "const": f.const} for i, f in one.items()}
               for one in self._per_input()]
        return {"code": self.code(),
                "dynamic_shapes": dict(zip(keys, per)) if named else per,
                "roots": {r: {"min": lo, "max": hi} for r, (lo, hi) in self.roots.items()},
                "sizes": {n: {"root": f.root, "coeff": f.coeff, "const": f.const} for n, f in self.forms.items()},
                "example": dict(self.example), "left_out": list(self.left_out), "notes": list(self.notes),
                "refusals": [f.to_json() for f in self.refusals],
                "export": self.checked.to_json() if self.checked is not None else None}

    def __str__(self) -> str:
        return self.code()

    __repr__ = __str__


def _root_name(name: str, taken: set[str]) -> str:
    for candidate in (name.lower(), f"{name.lower()}_", f"{name}_t"):
        if candidate not in taken and candidate.isidentifier():
            return candidate
    i = 2
    while f"{name}_t{i}" in taken:
        i += 1
    return f"{name}_t{i}"


def _score(box: Mapping, keys: Sequence[str], example: Mapping[str, int] | None) -> tuple | None:
    """The chosen progression per free size of ``box`` and how many sizes they admit."""
    picks = {}
    for k in keys:
        if isinstance(box[k], Tie):
            continue
        allowed = box[k]
        for tk in keys:  # a tied size must stay positive and integral: its base's set says where
            tie = box[tk]
            if isinstance(tie, Tie) and tie.base == k:
                allowed = allowed & tie.preimage(IntSet.at_least(1))
        p = _best(allowed, example.get(k) if example else None)
        if p is None:
            return None
        picks[k] = p
    if example:
        for tk in keys:
            tie = box[tk]
            if isinstance(tie, Tie) and tie.at(example[tie.base]) != example[tk]:
                return None
    count = 1
    for p in picks.values():
        count *= p.count(HORIZON)
    return count, picks


def _left_out(valid: SizeSet, chosen: int, picks: Mapping[str, Progression], box: Mapping) -> list[str]:
    """What of ``valid`` the spec of ``box`` (``picks``) leaves out, and why, per part and size."""
    notes = []
    others = len(valid.boxes) - 1
    if others:
        parts = [valid._box_text(b) for i, b in enumerate(valid.boxes) if i != chosen]
        shown = "; or ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")
        notes.append(f"{shown} ({others} other part{'s' if others > 1 else ''} of the valid sizes: a Dim holds one "
                     f"range per size, and these sizes are coupled or a union)")
    for k, p in picks.items():
        allowed = box[k]
        rest = allowed - p.as_set()
        if rest.is_empty:
            continue
        above = rest - IntSet.interval(1, p.first - 1)
        if p.step > 1 and not above.is_empty:
            why = f"one Dim states one residue class; the spec takes {k} ≡ {p.offset} (mod {p.step})"
        elif not above.is_empty:
            why = f"the valid {k} has holes above {p.first} (a Dim holds an interval)"
        elif p.step == 1 and (p.first - 1) not in allowed:
            why = f"{k} = {p.first - 1} is not valid, a hole below the spec's range (a Dim holds an interval)"
        else:
            why = f"below the spec's least {k}, {p.first}: they do not continue its progression"
        notes.append(f"{rest.describe(k)} (with the other sizes as in the spec): {why}")
    return notes


def _spec_in(analysis, batch: int, domain: SizeSet, valid: SizeSet, example: dict) -> ExportSpec:
    """The spec of the part of ``domain`` (valid sizes, perhaps narrowed) that says the most."""
    keys = domain.keys
    best = None
    for i, box in enumerate(domain.boxes):
        scored = _score(box, keys, example or None)
        if scored is None:
            continue
        # the most sizes; on a tie, the part whose least sizes are smallest and closest together
        firsts = [p.first for p in scored[1].values()] or [0]
        rank = (scored[0], -max(firsts), -sum(firsts))
        if best is None or rank > best[0]:
            best = (rank, i, scored[1])
    if best is None:
        raise InvalidArgument(f"export_spec: {', '.join(f'{k}={v}' for k, v in example.items())} is not a size the "
                              f"model accepts (valid sizes: {valid.summary()})")
    _, chosen, picks = best
    box = domain.boxes[chosen]
    taken = set(domain.names)
    forms: dict[str, Form] = {}
    roots: dict[str, tuple[int, int | None]] = {}
    for k, p in picks.items():
        if p.hi is not None and p.hi == p.lo:
            forms[k] = Form(None, 0, p.first)
            continue
        root = k if p.step == 1 and p.offset == 0 else _root_name(k, taken)
        taken.add(root)
        roots[root] = (p.lo, p.hi)
        forms[k] = Form(root, p.step, p.offset)
    for k in keys:
        tie = box[k]
        if isinstance(tie, Tie):
            base = forms[tie.base]
            c, e = tie.slope * base.coeff, tie.slope * base.const + tie.offset
            forms[k] = Form(base.root, int(c), int(e)) if base.root is not None else Form(None, 0, int(e))
    for g in domain.groups:
        for n in g[1:]:
            forms[n] = forms[g[0]]
    forms = {n: forms[n] for n in domain.names}
    sizes = dict(example) if example else _example(analysis, batch, forms, roots)
    return ExportSpec(analysis, batch, forms, roots, sizes, _left_out(domain, chosen, picks, box), valid)


#: how often export_spec narrows the spec by what torch.export refused and exports again
ROUNDS = 12


def export_spec(analysis, batch: int = 1, check: bool = True, **example: int) -> ExportSpec:
    """The ``dynamic_shapes`` for ``torch.export`` that covers the most of ``valid_sizes(batch)``
    torch's Dim language can say; ``example`` (``H=224, W=224``): a size the spec must admit,
    and the example inputs' size.

    ``check``: export a copy of the model with it (:func:`check_export`). Where torch.export
    refuses the spec over a guard, the guard is solved over the spec: the sizes where it fails
    are left out (a finding: symshape proves them valid), or, where it holds at every size but
    torch cannot prove it (a floor it does not reason about), the spec keeps the example's
    residue class, on which the floor is linear; then it exports again. The spec returned is the
    one torch exported (``spec.checked``) or the last it refused. See :class:`ExportSpec`."""
    batch = positive_int(batch, "batch")
    if example:
        values = analysis.validate_sizes(example)
        example = {k: v for k, v in values.items() if k != BATCH}
    valid = valid_sizes(analysis, batch)
    if valid.is_empty:
        raise InvalidArgument("export_spec: the model accepts no input size at this batch size: torch.export "
                              "could not run it either (see valid_sizes().note, or check())")
    spec = _spec_in(analysis, batch, valid, valid, example)
    if not check:
        return spec
    extra: list[tuple[str, Requirement]] = []
    refusals: list[GuardFinding] = []
    history: list[ExportCheck] = []
    for round_ in range(ROUNDS + 1):
        spec.refusals = list(refusals)
        spec.left_out += [f.left_out() for f in refusals]
        spec.checked = check_export(spec)
        history.append(spec.checked)
        spec.history = list(history)
        if round_ == ROUNDS:
            break
        if spec.checked.exported:
            guards = [f.guard for f in spec.checked.findings]  # the program's own guards
        else:
            guards = violated_guards(spec.checked.message)
        if not guards:
            if example and not spec.checked.exported and not _lively(analysis, example, batch):
                spec.notes.append("at the example a size-dependent dim is 0 or 1, which torch.export takes for a "
                                     "constant: an example without one (the default when none is given) avoids it")
            break
        narrower, found = narrowing(spec, guards, stage="export" if not spec.checked.exported else "program")
        if not narrower:
            break
        domain = solve_requirements(analysis.size_names, [*analysis.requirements, *extra, *narrower], batch)
        if domain.is_empty:
            break
        if example and not domain.contains(**example):
            spec.notes.append(f"the example {', '.join(f'{k}={v}' for k, v in example.items())} is among the "
                                 "sizes torch.export refuses: choose another (--size) for a spec torch exports")
            break
        refusals += found
        extra += narrower
        spec = _spec_in(analysis, batch, domain, valid, example)
    return spec


def _lively(analysis, sizes: Mapping[str, int], batch: int) -> bool:
    """Whether the model runs at ``sizes`` with every size-dependent dim of every step at least
    2: torch specializes a dim of 0 or 1 it meets while exporting (and an example that small
    makes it fix the input size), so an example should meet none."""
    try:
        ev = analysis.evaluate(**sizes, **({BATCH: batch} if analysis.batched else {}))
    except (InvalidArgument, ValueError, OverflowError):
        return False
    if ev.failure is not None:
        return False
    n = size_symbol(BATCH)
    for step, concrete in zip(analysis.steps, ev.steps):
        exprs, values = _flat(step.output), _flat(concrete.output)
        if len(exprs) != len(values):
            continue
        for e, v in zip(exprs, values):
            if isinstance(e, sympy.Expr) and (e.free_symbols - {n}) and isinstance(v, int) and v <= 1:
                return False
    return True


#: how far the example's roots are searched for sizes where no dim is 0 or 1
EXAMPLE_SEARCH = 512


def _example(analysis, batch: int, forms: Mapping[str, Form],
             roots: Mapping[str, tuple[int, int | None]]) -> dict[str, int]:
    """Sizes in the spec where the roots differ (torch would take equal sizes for one) and, the
    first such from the least, no size-dependent dim is 0 or 1 (:func:`_lively`); where none is
    found within EXAMPLE_SEARCH, the least with roots of at least 2."""
    def at(step: int) -> dict[str, int]:
        ts = {}
        for i, (name, (lo, hi)) in enumerate(roots.items()):
            t = max(lo, 2) + i + step
            ts[name] = min(t, hi) if hi is not None else t
        return {n: f.at(ts.get(f.root)) for n, f in forms.items()}
    for step in range(EXAMPLE_SEARCH):
        sizes = at(step)
        if _lively(analysis, sizes, batch):
            return sizes
        if all(hi is not None and max(lo, 2) + i + step >= hi for i, (lo, hi) in enumerate(roots.values())):
            break
    return at(0)
