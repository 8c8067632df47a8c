"""``analyze(model, input_shape)``: every step's shape and each Linear's in_features, symbolically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import sympy
import torch.nn as nn

from .compiled import compile_exprs
from .dims import size_symbol
from .engine import Propagator, Step, propagate
from .errors import InvalidInputSize, SymshapeError
from .render import text_table
from .requirements import Requirement
from .tensor import SymTensor, shape_str
from .trace import trace

__all__ = ["Analysis", "ConcreteStep", "Evaluation", "Failure", "analyze", "in_features"]

BATCH = "N"


def parse_input_shape(input_shape: Sequence) -> tuple[sympy.Expr, ...]:
    """``(1, "H", "W")`` -> ``(1, H, W)`` with positive-integer symbols; the batch dim is not included."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"input_shape must be a tuple such as (1, 'H', 'W'), got {input_shape!r}"
        )
    dims: list[sympy.Expr] = []
    for d in input_shape:
        if isinstance(d, bool):
            raise TypeError(f"input_shape entries are ints or size names, got {d!r}")
        if isinstance(d, (int, sympy.Integer)):
            if int(d) < 1:
                raise ValueError(f"input_shape sizes must be positive, got {d} in {tuple(input_shape)}")
            dims.append(sympy.Integer(int(d)))
        elif isinstance(d, str):
            if d == BATCH:
                raise ValueError(
                    f"{BATCH!r} is the batch dim, which symshape adds itself; input_shape is one "
                    f"sample's shape, e.g. (1, 'H', 'W')"
                )
            dims.append(size_symbol(d))
        elif isinstance(d, sympy.Symbol):
            dims.append(size_symbol(d.name))
        else:
            raise TypeError(f"input_shape entries are ints or size names, got {d!r}")
    return tuple(dims)


@dataclass(frozen=True)
class Failure:
    """Why torch would refuse a size: the step, its reason with the concrete values, the requirement."""

    step: str
    index: int
    reason: str
    requirement: Requirement

    @property
    def kind(self) -> str:
        return self.requirement.kind


@dataclass(frozen=True)
class ConcreteStep:
    name: str
    op: str
    inputs: tuple
    output: Any


class Evaluation:
    """An analysis at one concrete size: every step's shape, in_features and output as ints.

    ``failure`` is the first size torch would refuse (evaluation stops there); ``mismatches``
    are declared feature counts that differ (a wrong ``in_features``), after which evaluation
    goes on with the layer's declared output, as the symbolic analysis does.
    """

    def __init__(self, sizes, steps, in_features, output_shape, failure, mismatches):
        self.sizes: dict[str, int] = sizes
        self.steps: list[ConcreteStep] = steps
        self.in_features: dict[str, int] = in_features
        self.output_shape = output_shape
        self.failure: Failure | None = failure
        self.mismatches: list[Failure] = mismatches

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.mismatches

    def first_problem(self) -> Failure | None:
        problems = [*self.mismatches, *([self.failure] if self.failure else [])]
        return min(problems, key=lambda f: f.index) if problems else None

    def __str__(self) -> str:
        rows = [(s.name, s.op, shape_str(s.output)) for s in self.steps]
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        out = [f"at {at}", text_table(("step", "op", "output"), rows)]
        if self.in_features:
            out.append("in_features: " + ", ".join(f"{k}={v}" for k, v in self.in_features.items()))
        for f in self.mismatches:
            out.append(f"mismatch at {f.step}: {f.reason}")
        if self.failure:
            out.append(f"torch refuses this size at {self.failure.step}: {self.failure.reason}")
        return "\n".join(out)

    __repr__ = __str__


class Analysis:
    """The symbolic shapes of a model's forward for one input shape.

    ``steps``: one :class:`~symshape.engine.Step` per executed tensor op, in order.
    ``output_shape``: the model output's shape (sympy expressions; batch dim ``N``).
    ``in_features``: qualified name -> the last-dim size reaching each Linear, in call order.
    """

    def __init__(self, model: nn.Module, input_shape: tuple, steps: list[Step], output: Any,
                 in_features: dict[str, sympy.Expr], graph=None, rules_applied=None):
        self.model = model
        #: op name -> the rule family that handled it (size queries such as x.size() included)
        self.rules_applied: dict[str, str] = dict(rules_applied or {})
        #: the torch.fx graph the steps were computed from
        self.graph = graph
        self.input_shape = input_shape
        self.steps = steps
        self._output = output
        self.in_features = in_features
        self.batch = size_symbol(BATCH)
        names = list(dict.fromkeys(d.name for d in input_shape if isinstance(d, sympy.Symbol)))
        #: the size names a concrete evaluation needs (``N`` is optional and defaults to 1)
        self.size_names: tuple[str, ...] = tuple(names)
        self._evaluator = None

    @property
    def output_shape(self):
        return _shape_of(self._output)

    def linear(self, layer: str | None = None) -> tuple[str, sympy.Expr]:
        """``(name, in_features expression)`` of the first Linear called, or of ``layer``."""
        if not self.in_features:
            raise SymshapeError("the forward calls no nn.Linear / nn.LazyLinear")
        if layer is None:
            return next(iter(self.in_features.items()))
        if layer not in self.in_features:
            raise KeyError(f"no Linear called {layer!r}; the forward calls: {', '.join(self.in_features)}")
        return layer, self.in_features[layer]

    @property
    def requirements(self) -> list[tuple[str, Requirement]]:
        """Every runtime check torch makes, as ``(step name, requirement)``, in execution order."""
        return [(s.name, r) for s in self.steps for r in s.requirements]

    # -- concrete sizes -------------------------------------------------------------------

    def _compiled(self):
        if self._evaluator is None:
            exprs: list = []
            for s in self.steps:
                for r in s.requirements:
                    exprs += r.exprs()
                exprs += list(_flat_dims(s.inputs)) + list(_flat_dims(s.output))
            exprs += list(self.in_features.values()) + list(_flat_dims(self.output_shape))
            symbols = [self.batch, *(size_symbol(n) for n in self.size_names)]
            self._evaluator = compile_exprs(symbols, exprs)
        return self._evaluator

    def _check_sizes(self, sizes: Mapping[str, Any]) -> dict[str, int]:
        unknown = [k for k in sizes if k not in self.size_names and k != BATCH]
        if unknown:
            known = ", ".join(self.size_names) or "none"
            raise TypeError(f"unknown size name(s) {', '.join(unknown)}; this analysis has: {known}")
        missing = [n for n in self.size_names if n not in sizes]
        if missing:
            raise TypeError(f"missing size(s) {', '.join(missing)} (input_shape {shape_str(self.input_shape)})")
        out = {BATCH: 1}
        for k, v in sizes.items():
            if isinstance(v, bool) or not isinstance(v, (int, sympy.Integer)) or int(v) < 1:
                raise ValueError(f"size {k} must be a positive int, got {v!r}")
            out[k] = int(v)
        return out

    def evaluate(self, **sizes: int) -> Evaluation:
        """Every step at these sizes, recording (not raising) what torch would refuse."""
        values = self._check_sizes(sizes)
        flat = iter(self._compiled()(values[BATCH], *(values[n] for n in self.size_names)))
        steps: list[ConcreteStep] = []
        mismatches: list[Failure] = []
        failure = None
        for i, s in enumerate(self.steps):
            for r in s.requirements:
                got = [next(flat) for _ in r.exprs()]
                if failure is None and not r.check(got):
                    f = Failure(s.name, i, r.message(got[0], got[1]), r)
                    if r.kind == "declared":
                        mismatches.append(f)
                    else:
                        failure = f
            inputs = _unflatten(s.inputs, flat)
            output = _unflatten(s.output, flat)
            if failure is None:
                steps.append(ConcreteStep(s.name, s.op, inputs, output))
        in_features = {k: next(flat) for k in self.in_features}
        output_shape = _unflatten(self.output_shape, flat)
        shown = {k: v for k, v in values.items() if k != BATCH or sizes.get(BATCH)}
        if failure is not None:
            in_features = {k: v for k, v in in_features.items()
                           if any(st.name == k for st in steps)}
            output_shape = None
        return Evaluation(shown, steps, in_features, output_shape, failure, mismatches)

    def at(self, **sizes: int) -> Evaluation:
        """Every step's concrete shape; raises InvalidInputSize where torch would refuse the size."""
        ev = self.evaluate(**sizes)
        problem = ev.first_problem()
        if problem is not None:
            raise InvalidInputSize(problem.step, problem.reason, ev.sizes)
        return ev

    def formula(self, layer: str | None = None, batch: int = 1):
        """The in_features of the first Linear (or ``layer``), compiled: ``f = a.formula()``,
        then ``f(H=28, W=28)`` is 320 in microseconds (raising InvalidInputSize where torch would
        refuse the size), and ``f.grid(H=range(1, 1025), W=range(1, 1025))`` computes every size
        of the grid at once. Returns a :class:`~symshape.formula.Formula`.
        """
        from .formula import Formula

        return Formula(self, layer, batch)

    # -- the inverse problem (symshape.solve) ----------------------------------------------

    def valid_sizes(self, batch: int = 1, square: bool = False):
        """Exactly the input sizes at which torch runs the forward (at batch size ``batch``;
        ``square=True`` ties the spatial sizes, for the smallest square image and the like).

        Every check torch makes is solved exactly: kernels that must fit, shapes that must
        agree at a cat or an add, a Linear whose in_features is fixed, a view's element count.
        Returns a :class:`~symshape.sizes.SizeSet`; infinite sets are represented exactly.
        """
        from .solve import valid_sizes

        return valid_sizes(self, batch, square)

    def solve(self, flat: int, layer: str | None = None, square: bool = False, batch: int = 1):
        """The valid sizes whose in_features at the first Linear (or ``layer``) is ``flat``.

        ``square=True`` ties the spatial sizes together. When no size works, the returned empty
        set's ``note`` and ``nearest`` give the nearest achievable values and their sizes.
        """
        from .solve import solve_flat

        return solve_flat(self, flat, layer, square, batch)

    def exact_sizes(self, batch: int = 1, square: bool = False):
        """The valid sizes at which no layer rounds (every stride and adaptive pool divides)."""
        from .solve import exact_sizes

        return exact_sizes(self, batch, square=square)

    # -- wrong Linear layers (symshape.check) ----------------------------------------------

    def check(self, **sizes: int):
        """Every Linear whose in_features does not fit what reaches it, at ``sizes`` (or, with no
        sizes, for every size): torch's error, the right value and its formula, the sizes at which
        the declared value would be right, and the fix. Returns a :class:`~symshape.check.CheckReport`.
        """
        from .check import check

        return check(self, sizes)

    # -- derivations for docs (symshape.explain) --------------------------------------------

    def explain(self, format: str = "text", **sizes: int):
        """Every layer's arithmetic: symbolically, or at ``sizes`` with each formula's numbers,
        the exact value before rounding, the rounding torch applies and what it means; closing
        with each Linear's in_features, the other sizes that give it, and the no-rounding sizes.
        ``format``: ``text`` (fits 100 columns), ``markdown`` (tables and math) or ``latex``
        (an amsmath ``align*`` fragment). Returns a str that renders itself in Jupyter.
        """
        from .explain import explain

        return explain(self, format, **sizes)

    def _repr_markdown_(self) -> str:
        return self.explain("markdown")

    def _repr_latex_(self) -> str:
        return "$$" + self.explain("latex") + "$$"

    # -- proof against torch (symshape.verify) ---------------------------------------------

    def verify(self, samples: int = 20, sizes=None, seed: int = 0, device: str = "cpu"):
        """Run the real model (eval mode, no_grad, batch 1) at sampled sizes -- the smallest
        valid size, sizes just below it, both sides of every rounding edge, random sizes -- or at
        ``sizes``, and compare every step's shape, each Linear's in_features, and where torch
        refuses, with the prediction. ``device="meta"`` runs a meta copy (no kernels). The model
        is left exactly as it was. Returns a :class:`~symshape.verify.VerifyReport`.
        """
        from .verify import verify

        return verify(self, samples, sizes, seed, device)

    # -- rendering ------------------------------------------------------------------------

    def __str__(self) -> str:
        rows = [(s.name, s.op, ", ".join(shape_str(i) for i in s.inputs), shape_str(s.output))
                for s in self.steps]
        out = [f"input {shape_str((self.batch, *self.input_shape))}",
               text_table(("step", "op", "input", "output"), rows)]
        if self.in_features:
            out.append("in_features:")
            out += [f"  {k}: {v}" for k, v in self.in_features.items()]
        return "\n".join(out)

    __repr__ = __str__


def _shape_of(value):
    if isinstance(value, SymTensor):
        return value.shape
    if isinstance(value, (list, tuple)):
        return tuple(_shape_of(v) for v in value)
    return value


def _flat_dims(shape):
    if isinstance(shape, (list, tuple)):
        for d in shape:
            yield from _flat_dims(d)
    elif isinstance(shape, sympy.Basic):
        yield shape
    elif isinstance(shape, int):
        yield sympy.Integer(shape)


def _unflatten(shape, flat):
    if isinstance(shape, (list, tuple)):
        return tuple(_unflatten(d, flat) for d in shape)
    if isinstance(shape, (sympy.Basic, int)):
        return next(flat)
    return shape


def analyze(model: nn.Module, input_shape: Sequence) -> Analysis:
    """Trace ``model`` and propagate the symbolic ``input_shape`` (one sample, no batch dim).

    >>> import torch.nn as nn, symshape
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.Flatten(), nn.LazyLinear(10))
    >>> symshape.analyze(net, (1, "H", "W")).in_features["2"]
    8*floor((H - 1)/2)*floor((W - 1)/2)
    """
    dims = parse_input_shape(input_shape)
    x = SymTensor((size_symbol(BATCH), *dims))
    traced = trace(model, Propagator(model, x))
    prop = propagate(traced, x)
    _refuse_if_never_runs(prop.steps, dims)
    return Analysis(model, dims, prop.steps, prop.output, prop.in_features, traced.graph,
                    prop.rules_applied)


def _refuse_if_never_runs(steps: list[Step], dims: tuple) -> None:
    """Raise InvalidInputSize when a check fails whatever the sizes are (a Conv2d given one
    row, a pool padded more than half its kernel): torch refuses every input, and the shapes
    after that step (negative sizes) mean nothing. Checks whose outcome depends on the backend
    or on the data stay checks; a wrong declared in_features is reported by ``check``.
    """
    for step in steps:
        for r in step.requirements:
            if r.kind != "size" or r.backend_dependent or r.data_dependent or r.decided() is not False:
                continue
            names = list(dict.fromkeys(d.name for d in dims if isinstance(d, sympy.Symbol)))
            every = f" (whatever {', '.join(names)} {'is' if len(names) == 1 else 'are'})" if names else ""
            raise InvalidInputSize(step.name, r.message(r.lhs, r.rhs) + every)


def in_features(model: nn.Module, input_shape: Sequence, layer: str | None = None) -> sympy.Expr:
    """The in_features formula of the first Linear the forward calls, or of ``layer``.

    >>> import torch.nn as nn, symshape
    >>> symshape.in_features(nn.Sequential(nn.Conv1d(1, 4, 5), nn.Flatten(), nn.LazyLinear(2)), (1, "L"))
    4*L - 16
    """
    return analyze(model, input_shape).linear(layer)[1]
