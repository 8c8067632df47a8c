"""``Analysis.formula(layer)``: a Linear's in_features, compiled, for one size or a whole grid.

Once a model is analyzed, its in_features at a concrete size is a few integer operations: the
formula plus every check torch makes on the way (kernels that fit, shapes that agree at a cat).
:class:`Formula` compiles both into one function, so a size costs microseconds rather than a
forward pass, and :meth:`Formula.grid` evaluates every size of a grid at once with int64 tensors
(a million sizes in a fraction of a second).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import sympy
import torch

from .compiled import compile_checked, compile_method
from .dims import BATCH, positive_int, size_symbol
from .errors import InvalidInputSize

if TYPE_CHECKING:  # pragma: no cover
    from .evaluation import Shapes

__all__ = ["Formula", "Grid"]


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
        linears = set(analysis.in_features)
        self._requirements = [r for s in analysis.steps for r in s.requirements
                              if r.kind == "size" or s.name not in linears]
        self._symbols = [analysis.batch, *(size_symbol(n) for n in self.size_names)]
        self._scalar = compile_checked(self._symbols, self._requirements, [self.expr])
        self._vector = None
        try:
            # the fast path: one generated method with the checks and the formula inline, the
            # batch size a constant (a method must live on the class: a class per formula)
            call = compile_method(self.size_names, self._symbols[1:], self._requirements, self.expr,
                                  constants={analysis.batch: batch})
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
                raise TypeError(f"expected the sizes {', '.join(names)} (positional or by name), "
                                f"got {len(sizes)} positional and {', '.join(named) or 'none'} by name")
            named = {**dict(zip(names, sizes)), **named}
        if len(named) != len(names) or not all(n in named for n in names):
            unknown = [k for k in named if k not in names]
            if unknown:
                raise TypeError(f"unknown size name(s) {', '.join(unknown)}; this analysis has: "
                                f"{', '.join(names) or 'none'}")
            raise TypeError(f"missing size(s) {', '.join(n for n in names if n not in named)}")
        return [positive_int(named[n], f"size {n}") for n in names]

    def __call__(self, *sizes: int, **named: int) -> int:
        return self._slow(sizes, named)

    def _slow(self, sizes: tuple, named: dict | None = None) -> int:
        """Validate the arguments (with the errors users should see), then evaluate."""
        if any(v is None for v in sizes):  # from the fast path: its unset parameters
            given = dict(zip(self.size_names, sizes))
            named = {**{k: v for k, v in given.items() if v is not None}, **(named or {})}
            sizes = ()
        values = self._values(sizes, named or {})
        ok, (value,) = self._scalar(self.batch, *values)
        if ok:
            return value
        self._refuse(values)

    def accepts(self, *sizes: int, **named: int) -> bool:
        """Whether torch runs the forward at these sizes (a declared in_features aside)."""
        return bool(self._scalar(self.batch, *self._values(sizes, named))[0])

    def _refuse(self, values: list[int]):
        sizes = dict(zip(self.size_names, values))
        ev = self.analysis.evaluate(**sizes, **({BATCH: self.batch} if self.batch != 1 else {}))
        linears = set(self.analysis.in_features)
        problems = [m for m in ev.mismatches if m.step not in linears]
        problems += [ev.failure] if ev.failure is not None else []
        if not problems:  # pragma: no cover - the compiled checks are the same requirements
            raise AssertionError(f"compiled checks refuse {sizes} but evaluation accepts it")
        first = min(problems, key=lambda p: p.index)
        raise InvalidInputSize(first.step, first.reason, ev.sizes)

    # -- a grid of sizes ---------------------------------------------------------------------

    def grid(self, **sizes) -> Grid:
        """in_features at every combination of the given sizes, computed with int64 tensors.

        Each size is an int (fixed) or a range / sequence / 1-D tensor of ints (varying):
        ``f.grid(H=range(1, 1025), W=range(1, 1025))`` gives ``values`` of shape (1024, 1024)
        with ``values[h - 1, w - 1]`` the in_features at ``H=h, W=w``, and ``valid`` marking the
        sizes torch accepts.
        """
        missing = [n for n in self.size_names if n not in sizes]
        unknown = [k for k in sizes if k not in self.size_names]
        if missing or unknown:
            raise TypeError(f"grid() needs every size of {', '.join(self.size_names) or 'none'}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        varying = [n for n in self.size_names if not isinstance(sizes[n], numbers.Integral)]
        args, axes = [], []
        for n in self.size_names:
            v = sizes[n]
            if isinstance(v, numbers.Integral):
                args.append(positive_int(v, f"size {n}"))
                continue
            t = torch.as_tensor(list(v) if isinstance(v, range) else v, dtype=torch.int64)
            if t.dim() != 1 or t.numel() == 0:
                raise ValueError(f"size {n} must be a non-empty 1-D sequence of ints")
            if int(t.min()) < 1:
                positive_int(int(t.min()), f"size {n}")  # raises, with the one message
            shape = [1] * len(varying)
            shape[varying.index(n)] = t.numel()
            args.append(t.reshape(shape))
            axes.append(t)
        if self._vector is None:
            self._vector = compile_checked(self._symbols, self._requirements, [self.expr], backend="torch")
        ok, (value,) = self._vector(self.batch, *args)
        full = tuple(a.numel() for a in axes)
        ok = torch.as_tensor(ok, dtype=torch.bool).expand(full)
        value = torch.as_tensor(value, dtype=torch.int64).expand(full)
        return Grid(torch.where(ok, value, 0), ok.clone(), tuple(varying), tuple(axes))
