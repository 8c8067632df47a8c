"""``Analysis.formula(layer)``: a Linear's in_features, compiled, for one size or a whole grid.

Once a model is analyzed, its in_features at a concrete size is a few integer operations: the
formula plus every check torch makes on the way (kernels that fit, shapes that agree at a cat).
:class:`Formula` compiles both into one function, so a size costs microseconds rather than a
forward pass, and :meth:`Formula.grid` evaluates every size of a grid at once with int64 tensors
(a million sizes in a fraction of a second).
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import sympy
import torch

from .compiled import checks_magnitude, compile_checked, compile_method, magnitude
from .dims import BATCH, MAX_TENSOR_ELEMENTS, as_expr, positive_int, size_symbol
from .errors import InvalidArgument, InvalidInputSize, SymshapeError
from .evaluation import case_text, shapes_in

if TYPE_CHECKING:  # pragma: no cover
    from .evaluation import Shapes

__all__ = ["CaseFormula", "Formula", "Grid", "formula_of"]


class Grid(NamedTuple):
    """``values[i, j, ...]``: in_features at the i-th size of the first varying dim, the j-th of the
    second, ...; ``valid``: where torch accepts that size (``values`` is 0 elsewhere);
    ``names``: the varying dims, in axis order; ``sizes``: each one's sizes (int64 tensors)."""

    values: "torch.Tensor"
    valid: "torch.Tensor"
    names: tuple[str, ...]
    sizes: tuple["torch.Tensor", ...]


class Formula:
    """in_features reaching ``layer`` as a function of the input sizes, compiled.

    ``f(H=28, W=28)`` (or ``f(28, 28)`` in the order of ``f.size_names``) is the value; where
    torch would refuse the size it raises :class:`~symshape.InvalidInputSize` naming the layer and
    the reason, as :meth:`Analysis.at <symshape.Analysis.at>` does. A Linear whose declared
    in_features is wrong does not count as a refusal here: the value that reaches it is what the
    formula is for (:meth:`Analysis.check <symshape.Analysis.check>` reports wrong Linears). ``f.grid(...)`` evaluates
    a whole grid of sizes at once.
    """

    def __init__(self, analysis: "Shapes", layer: str | None = None, batch: int = 1):
        self.analysis = analysis
        self.layer, self.expr = analysis.linear(layer)
        self.batch = positive_int(batch, "batch")
        self.size_names: tuple[str, ...] = analysis.size_names
        self._requirements = [r for s in analysis.steps for r in s.requirements if not self._aside(s.name, r)]
        self._symbols = [analysis.batch, *(size_symbol(n) for n in self.size_names)]
        self._scalar = compile_checked(self._symbols, self._requirements, [self.expr])
        self._vector = None
        #: every size at most this keeps every tensor of the forward countable (fewer than
        #: MAX_TENSOR_ELEMENTS elements): larger sizes take the slow path, which checks them
        up_to = dict.fromkeys(self._symbols[1:], COUNTABLE_UP_TO)
        self._countable = COUNTABLE_UP_TO if _largest_tensor(analysis, up_to, batch) < MAX_TENSOR_ELEMENTS \
            and _bounds_hold(analysis, up_to, batch) else 0
        self._bounds = [b for s in analysis.steps for b in s.bounds]
        try:
            # the fast path: one generated method with the checks and the formula inline, the
            # batch size a constant (a method must live on the class: a class per formula)
            call = compile_method(self.size_names, self._symbols[1:], self._requirements, self.expr,
                                  constants={analysis.batch: batch}, bound=self._countable)
        except ValueError:  # size names that are not identifiers: keyword calls go the slow way
            return
        self.__class__ = type("Formula", (Formula,), {"__call__": call, "__module__": __name__,
                                                      "__doc__": Formula.__doc__})

    def __repr__(self) -> str:
        return f"<Formula {self.layer}: in_features = {self.expr}>"

    def __str__(self) -> str:
        return str(self.expr)

    # -- one size ----------------------------------------------------------------------------

    def _values(self, sizes: Sequence[Any], named: dict[str, Any]) -> list[int]:
        names = self.size_names
        if sizes:
            if len(sizes) > len(names) or set(names[:len(sizes)]) & set(named):
                raise InvalidArgument(f"expected the sizes {', '.join(names)} (positional or by name), "
                                f"got {len(sizes)} positional and {', '.join(named) or 'none'} by name")
            named = {**dict(zip(names, sizes)), **named}
        if len(named) != len(names) or not all(n in named for n in names):
            unknown = [k for k in named if k not in names]
            if unknown:
                raise InvalidArgument(f"unknown size name(s) {', '.join(unknown)}; this analysis has: "
                                f"{', '.join(names) or 'none'}")
            raise InvalidArgument(f"missing size(s) {', '.join(n for n in names if n not in named)}")
        return [positive_int(named[n], f"size {n}") for n in names]

    def __call__(self, /, *sizes: int, **named: int) -> int:
        return self._slow(sizes, named)

    def _slow(self, sizes: tuple, named: dict | None = None) -> int:
        """Validate the arguments (with the errors users should see), then evaluate."""
        if len(sizes) > len(self.size_names):
            raise InvalidArgument(f"expected the sizes {', '.join(self.size_names)} (positional or by name), "
                                  f"got {len(sizes)} positional")
        if any(v is None for v in sizes):  # from the fast path: its unset parameters
            given = dict(zip(self.size_names, sizes))
            named = {**{k: v for k, v in given.items() if v is not None}, **(named or {})}
            sizes = ()
        values = self._values(sizes, named or {})
        self._check_countable(values)
        ok, (value,) = self._scalar(self.batch, *values)
        if ok:
            return value
        self._refuse(values)

    def _check_countable(self, values: list[int]) -> None:
        """Raise BoundExceeded where a tensor of the forward would be too large to count (the
        evaluation says which), for sizes past the fast path's bound."""
        if values and max(values) > self._countable:
            self.analysis.evaluate(**dict(zip(self.size_names, values)),
                                   **({BATCH: self.batch} if self.batch != 1 else {}))

    def _aside(self, step: str, requirement) -> bool:
        """Whether a failed check is not a refusal here: the declared size of this formula's own
        layer (the value reaching it is what the formula is for), or a Linear's in_features
        (``check()`` reports those)."""
        key = self.analysis.fixed_by(step, requirement)
        return key is not None and (key == self.layer or self.analysis.fixed[key].tag == "in_features")

    def accepts(self, /, *sizes: int, **named: int) -> bool:
        """Whether torch runs the forward at these sizes (a declared in_features aside)."""
        values = self._values(sizes, named)
        self._check_countable(values)
        return bool(self._scalar(self.batch, *values)[0])

    def _refuse(self, values: list[int]):
        sizes = dict(zip(self.size_names, values))
        ev = self.analysis.evaluate(**sizes, **({BATCH: self.batch} if self.batch != 1 else {}))
        problems = [m for m in ev.mismatches if not self._aside(m.step, m.requirement)]
        problems += [ev.failure] if ev.failure is not None else []
        if not problems:  # pragma: no cover - the compiled checks are the same requirements
            raise AssertionError(f"compiled checks refuse {sizes} but evaluation accepts it")
        first = min(problems, key=lambda p: p.index)
        raise InvalidInputSize(first.step, first.reason, ev.sizes)

    # -- a grid of sizes ---------------------------------------------------------------------

    def grid(self, /, **sizes) -> Grid:
        """in_features at every combination of the given sizes, computed with int64 tensors.

        Each size is an int (fixed) or a range / sequence / 1-D tensor of ints (varying):
        ``f.grid(H=range(1, 1025), W=range(1, 1025))`` gives ``values`` of shape (1024, 1024)
        with ``values[h - 1, w - 1]`` the in_features at ``H=h, W=w``, and ``valid`` marking the
        sizes torch accepts.
        """
        missing = [n for n in self.size_names if n not in sizes]
        unknown = [k for k in sizes if k not in self.size_names]
        if missing or unknown:
            raise InvalidArgument(f"grid() needs every size of {', '.join(self.size_names) or 'none'}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        varying = [n for n in self.size_names if not isinstance(sizes[n], numbers.Integral)]
        args, axes = [], []
        for n in self.size_names:
            v = sizes[n]
            if isinstance(v, numbers.Integral):
                args.append(positive_int(v, f"size {n}"))
                continue
            t = _int_axis(v, n)
            if int(t.min()) < 1:
                positive_int(int(t.min()), f"size {n}")  # raises, with the one message
            shape = [1] * len(varying)
            shape[varying.index(n)] = t.numel()
            args.append(t.reshape(shape))
            axes.append(t)
        top = {size_symbol(n): (int(a.max()) if isinstance(a, torch.Tensor) else a)
               for n, a in zip(self.size_names, args)}
        top[self._symbols[0]] = self.batch
        reach, checks = magnitude(self.expr, top), checks_magnitude(self._requirements, top)
        reach = None if reach is None or checks is None else max(reach, checks)
        if reach is None or reach >= 2 ** 62:
            raise InvalidArgument(
                f"grid(): in_features {self.expr} can reach {'an unbounded value' if reach is None else f'about 2**{reach.bit_length() - 1}'}"
                f" at these sizes, past what int64 tensors hold; call the formula per size (Python ints)")
        biggest = _largest_tensor(self.analysis, top, self.batch)
        if biggest >= MAX_TENSOR_ELEMENTS:
            raise InvalidArgument(
                f"grid(): a tensor of the forward can hold {'an unbounded number of' if biggest == math.inf else f'about 2**{int(biggest).bit_length() - 1}'}"
                f" elements at these sizes, more than torch counts; call the formula per size (it names the step)")
        if self._vector is None:
            self._vector = compile_checked(self._symbols, self._requirements, [self.expr] + [b[0] for b in self._bounds],
                                           backend="torch")
        ok, (value, *bounded) = self._vector(self.batch, *args)
        for (size, limit, what), got in zip(self._bounds, bounded):
            past = torch.as_tensor(got) >= limit
            if bool((past & torch.as_tensor(ok, dtype=torch.bool)).any()):
                raise InvalidArgument(f"grid(): at some of these sizes {what} reaches {limit:,}, past which symshape "
                                      f"states no shapes; call the formula per size (it names the size)")
        full = tuple(a.numel() for a in axes)
        ok = torch.as_tensor(ok, dtype=torch.bool).expand(full)
        value = torch.as_tensor(value, dtype=torch.int64).expand(full)
        return Grid(torch.where(ok, value, 0), ok.clone(), tuple(varying), tuple(axes))


class CaseFormula:
    """The formula of an analysis whose forward has cases (``Analysis.cases``: the structure
    after a squeeze of a size that may be 1): one :class:`Formula` per case, each used at the
    sizes its case covers. ``expr`` is a Piecewise of the cases' formulas (one formula where they
    agree); calls, :meth:`accepts` and :meth:`grid` behave as :class:`Formula`'s."""

    def __init__(self, analysis: "Shapes", layer: str | None = None, batch: int = 1):
        self.analysis = analysis
        self.layer, _ = analysis.linear(layer)
        self.batch = positive_int(batch, "batch")
        self.size_names: tuple[str, ...] = analysis.size_names
        self.parts = [(leaf, Formula(leaf, self.layer, batch)) for leaf in analysis.leaves()
                      if self.layer in leaf.in_features]
        exprs = [f.expr for _, f in self.parts]
        if all(e == exprs[0] for e in exprs):
            self.expr = exprs[0]
        else:  # the general case (the analysis itself) last, as the otherwise
            ordered = self.parts[1:] + self.parts[:1]
            self.expr = sympy.Piecewise(*((f.expr, sympy.And(*leaf.where) if leaf is not analysis else True)
                                          for leaf, f in ordered))

    def __repr__(self) -> str:
        return f"<Formula {self.layer}: in_features = {self.expr}>"

    def __str__(self) -> str:
        return str(self.expr)

    def _part(self, sizes: tuple, named: dict) -> tuple[Formula, dict]:
        values = dict(zip(self.size_names, self.parts[0][1]._values(sizes, named)))
        leaf = self.analysis.covering({**values, BATCH: self.batch})
        formula = next((f for part, f in self.parts if part is leaf), None)
        if formula is None:
            raise SymshapeError(f"{self.layer} is not called where {case_text(leaf.where)}")
        return formula, values

    def __call__(self, /, *sizes: int, **named: int) -> int:
        formula, values = self._part(sizes, named)
        return formula(**values)

    def accepts(self, /, *sizes: int, **named: int) -> bool:
        formula, values = self._part(sizes, named)
        return formula.accepts(**values)

    def grid(self, /, **sizes) -> Grid:
        """As :meth:`Formula.grid`: each case's grid, where its case holds (the cases' checks
        include the case, so their valid sizes do not overlap)."""
        grids = [f.grid(**sizes) for _, f in self.parts]
        valid = grids[0].valid.clone()
        values = grids[0].values.clone()
        for g in grids[1:]:
            valid |= g.valid
            values += g.values  # 0 where a case does not hold or torch refuses
        return Grid(values, valid, grids[0].names, grids[0].sizes)


def formula_of(analysis: "Shapes", layer: str | None = None, batch: int = 1):
    """:class:`Formula`, or :class:`CaseFormula` for an analysis with cases whose batch does not
    settle which one holds."""
    if not analysis.cases:
        return Formula(analysis, layer, batch)
    batch = positive_int(batch, "batch")
    leaf = analysis.for_batch(batch)
    if leaf is not None:  # a case of the batch (a squeeze of dim N): its own formula
        name = analysis.linear(layer)[0]
        if name not in leaf.in_features:
            raise SymshapeError(f"{name} is not called at batch {batch} ({case_text(leaf.where)}): "
                                + (leaf.proof.removeprefix("not proved: ") if leaf.proof else "a case without it"))
        return Formula(leaf, name, batch)
    return CaseFormula(analysis, layer, batch)


def _int_axis(values, name: str) -> torch.Tensor:
    """A grid axis: a non-empty 1-D range, sequence or integer tensor of ints (never floats,
    which int64 would truncate, nor bools)."""
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
            raise InvalidArgument(f"size {name} must hold ints, got a {values.dtype} tensor")
        t = values.to(torch.int64)
    else:
        items = list(values) if isinstance(values, (range, list, tuple)) else None
        if items is None or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            raise InvalidArgument(f"size {name} must be an int or a 1-D sequence of ints, got {values!r:.80}")
        if any(abs(int(v)) >= 2 ** 62 for v in items):
            raise InvalidArgument(f"size {name} is past what int64 tensors hold")
        t = torch.tensor([int(v) for v in items], dtype=torch.int64)
    if t.dim() != 1 or t.numel() == 0:
        raise InvalidArgument(f"size {name} must be a non-empty 1-D sequence of ints")
    return t


#: the sizes below which a formula's fast path runs, where every tensor of the forward stays
#: countable (checked once per formula); larger sizes are checked size by size
COUNTABLE_UP_TO = 1 << 16


def _largest_tensor(analysis: "Shapes", top: dict, batch: int) -> float:
    """An upper bound on the elements of any tensor of the forward (input and every step's
    output) for sizes up to ``top`` (symbol -> largest value); ``math.inf`` where unbounded."""
    top = {**top, analysis.batch: batch}
    biggest = 0
    shapes = [shape for _, shape in analysis.inputs.shapes] + [sh for s in analysis.steps for sh in shapes_in(s.output)]
    for shape in shapes:
        n = magnitude(sympy.Mul(*(as_expr(d) for d in shape)), top)
        biggest = max(biggest, math.inf if n is None else n)
    return biggest


def _bounds_hold(analysis: "Shapes", top: dict, batch: int) -> bool:
    """Whether every step's own bound (Context.exact_below) holds for sizes up to ``top``."""
    top = {**top, analysis.batch: batch}
    for s in analysis.steps:
        for size, limit, _ in s.bounds:
            n = magnitude(size, top)
            if n is None or n >= limit:
                return False
    return True
