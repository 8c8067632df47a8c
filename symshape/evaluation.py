"""What an analysis computed, and its value at concrete sizes.

:class:`Shapes` holds the propagated forward (steps, requirements, each Linear's in_features)
and evaluates it at one size (:meth:`Shapes.evaluate`, :meth:`Shapes.at`). It sits below every
module that works on an analysis (solve, explain, verify, check, formula), which take a
``Shapes``; :class:`symshape.Analysis` is the user's handle that adds their methods.
"""

from __future__ import annotations

import math
from itertools import islice
from dataclasses import dataclass
from typing import Any, Mapping

import sympy
import torch.nn as nn

from .compiled import compile_exprs
from .dims import BATCH, MAX_TENSOR_ELEMENTS, as_expr, batch_symbol, positive_int, size_symbol
from .engine import Step
from .errors import BoundExceeded, InvalidArgument, InvalidInputSize, SymshapeError, UnknownName
from .inputs import Inputs
from .render import text_table
from .requirements import Requirement
from .tensor import Pieces, RepeatedShape, shape_str, shapes_of

__all__ = ["ConcreteStep", "Evaluation", "Failure", "Shapes"]


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

    def __str__(self) -> str:
        """The refusal as a sentence: torch refuses the size, or may (a check that reads the
        tensor's values, ``Requirement.data_dependent``: then why)."""
        why = self.requirement.data_dependent
        if why:
            return f"torch may refuse this size at {self.step}: {self.reason} ({why})"
        return f"torch refuses this size at {self.step}: {self.reason}"


@dataclass(frozen=True)
class ConcreteStep:
    name: str
    op: str
    inputs: tuple
    output: Any


#: the steps that may fold the batch dim into another (Shapes.batch_merges)
_VIEW_OPS = frozenset({"Tensor.view", "Tensor.reshape", "torch.reshape", "Tensor.view_as", "Tensor.reshape_as"})


@dataclass(frozen=True)
class BatchMerge:
    """A view or reshape whose output's first dim is not the batch dim (see Shapes.batch_merges)."""

    step: str
    op: str
    index: int
    output: tuple
    #: the rows one sample becomes (the first dim at batch 1), or None where the batch went elsewhere
    rows: sympy.Expr | None

    FIX = "x.flatten(1) (or x.view(x.size(0), -1))"

    def text(self, sizes: Mapping[str, int] | None = None, rows: int | None = None) -> str:
        """What the view does, at ``sizes`` (its ``rows`` there) or for every size."""
        call = f"{self.step} ({self.op})"
        if self.rows is None:
            return (f"{call} moves the batch dim N out of dim 0 ({shape_str(self.output)}): "
                    f"keep it first: {self.FIX}")
        if rows is not None:
            at = ", ".join(f"{k}={v}" for k, v in (sizes or {}).items() if k != BATCH) or "this input size"
            row = ", ".join(str(d) for d in self.output[1:])
            return (f"{call} folds the batch dim into -1: at {at} one sample becomes {rows} rows of {row}, "
                    f"so the layers after it see {rows} samples for 1 (torch raises nothing); fix: {self.FIX}")
        return (f"{call} folds the batch dim into -1: one sample becomes {self.rows} rows "
                f"({shape_str(self.output)}), right only where that is 1; fix: {self.FIX}")


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
            out.append(str(self.failure))
        return "\n".join(out)

    __repr__ = __str__


class Shapes:
    """The symbolic shapes of a model's forward for one input shape.

    ``steps``: one :class:`~symshape.engine.Step` per executed tensor op, in order.
    ``output_shape``: the model output's shape (sympy expressions; batch dim ``N``).
    ``in_features``: qualified name -> the size reaching each fixed layer, in call order: each
    Linear's in_features, and the sizes other layers' parameters fix (``F.linear``, ``x @ self.W``,
    ``addmm``, Bilinear, RNN/GRU/LSTM's input_size, MultiheadAttention's embed_dim, LayerNorm's
    normalized_shape; a conv's in_channels and a norm's num_features where they depend on the
    input size); ``fixed`` says which parameter each is, and its declared value.
    ``training``: the train/eval flag of every module (by qualified name) when it was analyzed:
    the mode the analysis describes, and the mode :func:`~symshape.verify.verify` runs it in.
    """

    def __init__(self, model: nn.Module, input_shape: "tuple | Inputs", steps: list[Step], output: Any,
                 in_features: dict[str, sympy.Expr], graph=None, rules_applied=None,
                 training: Mapping[str, bool] | None = None, fixed: Mapping | None = None,
                 batched: bool = True):
        self.model = model
        #: op name -> the rule family that handled it (size queries such as x.size() included)
        self.rules_applied: dict[str, str] = dict(rules_applied or {})
        #: the torch.fx graph the steps were computed from
        self.graph = graph
        #: the shapes of the call's inputs (:class:`~symshape.inputs.Inputs`; one for ``model(x)``)
        self.inputs: Inputs = input_shape if isinstance(input_shape, Inputs) else Inputs((tuple(input_shape),))
        #: the (first) input's shape, one sample's, without the batch dim
        self.input_shape = self.inputs.first
        self.steps = steps
        self._output = output
        self.in_features = in_features
        #: the fixed layers, keyed as ``in_features``: each :class:`~symshape.rules.Fixed` says
        #: which parameter fixes the size (``in_features``, ``input_size``, ``W.shape[0]`` ...),
        #: its declared value (None for a lazy layer) and the step (``layer``) it belongs to
        self.fixed = dict(fixed or {})
        self.batch = batch_symbol()
        #: whether the analyzed call has a batch dim ``N`` before ``input_shape`` (``analyze(...,
        #: batch=None)``: the model is called with a tensor of exactly ``input_shape``)
        self.batched = batched
        self.training: dict[str, bool] = dict(training if training is not None else
                                              ((n, m.training) for n, m in model.named_modules()))
        #: the size names a concrete evaluation needs (``N`` is optional and defaults to 1)
        self.size_names: tuple[str, ...] = self.inputs.size_names
        self._evaluator = None
        self._checker = None  # (the checks torch makes, and their values compiled: see refuses)
        self._shape_values: list[int] = []  # (set with _evaluator: see _compiled)
        #: where one forward of the real model confirmed the trace ("H=224, W=224"), or why not
        self.proof: str = ""
        #: the sizes this analysis covers, where the forward's structure depends on whether a
        #: size is 1 (a squeeze of dim ``N``): conditions such as ``Ne(N, 1)``; () for all sizes
        self.where: tuple = ()
        #: the analyses of the other cases (``Eq(N, 1)`` ...), each covering the sizes its
        #: ``where`` says; evaluation, formulas, the solver and verification consult them by size
        self.cases: tuple["Shapes", ...] = ()

    def covers(self, sizes: Mapping[str, int]) -> bool:
        """Whether this analysis's case (``where``) holds at ``sizes`` (validated, with ``N``)."""
        if not self.where:
            return True
        subs = self.symbols_at(sizes)
        return all(bool(c.xreplace(subs)) for c in self.where)

    def symbols_at(self, sizes: Mapping[str, int]) -> dict:
        """``{symbol: Integer}`` for the sizes (``N`` 1 where not given): what an expression of the
        analysis is at them, by ``xreplace``."""
        return {self.batch: sympy.Integer(sizes.get(BATCH, 1)),
                **{size_symbol(n): sympy.Integer(sizes[n]) for n in self.size_names}}

    def covering(self, sizes: Mapping[str, int]) -> "Shapes":
        """The analysis (this one, or one of its ``cases``) whose case holds at ``sizes``."""
        return next((leaf for leaf in self.leaves() if leaf.covers(sizes)), self)

    def for_batch(self, batch: int) -> "Shapes | None":
        """The case whose conditions can hold at batch ``batch``, where that settles the case (a
        squeeze of dim ``N``: ``N == 1`` or not); None where it does not."""
        n = sympy.Integer(batch)
        possible = [leaf for leaf in self.leaves()
                    if all(c.xreplace({self.batch: n}) is not sympy.false for c in leaf.where)]
        return possible[0] if len(possible) == 1 else None

    def leaves(self) -> list["Shapes"]:
        """This analysis and every case under it: together they cover every size, each once."""
        return [self, *(leaf for case in self.cases for leaf in case.leaves())]

    @property
    def mode(self) -> str:
        """``"train"``, ``"eval"`` or ``"mixed"``: the mode the model was analyzed in."""
        flags = set(self.training.values())
        return "mixed" if len(flags) > 1 else ("train" if flags == {True} else "eval")

    @property
    def output_shape(self):
        return shapes_of(self._output)

    def batch_merges(self) -> list["BatchMerge"]:
        """Every view or reshape that folds the batch dim into another (``x.view(-1, 9216)``
        where 9216 is not the per-sample size): at batch 1 it makes ``rows`` rows of one sample,
        so a Linear after it returns that many outputs for one image. ``rows`` is a formula of
        the sizes; the view keeps the batch only where it is 1."""
        if not self.batched:
            return []
        n = batch_symbol()
        out = []
        for i, step in enumerate(self.steps):
            if step.op not in _VIEW_OPS or not step.inputs or not isinstance(step.output, tuple):
                continue
            first = step.inputs[0][0] if step.inputs[0] else None
            if first != n or not step.output or not all(isinstance(d, sympy.Expr) for d in step.output):
                continue
            lead = step.output[0]
            if lead == n or n not in lead.free_symbols and not any(n in d.free_symbols for d in step.output[1:]):
                continue
            rows = sympy.simplify(lead.xreplace({n: 1})) if n in lead.free_symbols else None
            out.append(BatchMerge(step.name, step.op, i, step.output, rows))
        return out

    def linear(self, layer: str | None = None) -> tuple[str, sympy.Expr]:
        """``(name, in_features expression)`` of the first fixed layer called (a Linear, an
        ``F.linear`` ... see ``in_features``), or of ``layer``."""
        if not self.in_features:
            raise SymshapeError("the forward calls no layer whose parameters fix an input size (nn.Linear, "
                                "F.linear, x @ parameter, RNN/GRU/LSTM, MultiheadAttention, LayerNorm, Bilinear)")
        if layer is None:
            return next(iter(self.in_features.items()))
        if layer not in self.in_features:
            raise UnknownName(f"no fixed layer called {layer!r}; the forward calls: {', '.join(self.in_features)}")
        return layer, self.in_features[layer]

    def fixed_by(self, step: str, requirement: Requirement) -> str | None:
        """The name (in ``fixed``) of the fixed layer whose declared size ``requirement`` (one of
        ``step``'s) checks, or None."""
        if requirement.kind != "declared" or not requirement.fixes:
            return None
        return next((k for k, f in self.fixed.items() if f.layer == step and f.tag == requirement.fixes), None)

    @property
    def requirements(self) -> list[tuple[str, Requirement]]:
        """Every runtime check torch makes, as ``(step name, requirement)``, in execution order."""
        return [(s.name, r) for s in self.steps for r in s.requirements]

    # -- concrete sizes -------------------------------------------------------------------

    def _compiled(self):
        if self._evaluator is None:
            exprs: list = []
            self._shape_values = []  # how many values each step's shapes take (evaluate skips them)
            for s in self.steps:
                for r in s.requirements:
                    exprs += r.exprs()
                exprs += [b[0] for b in s.bounds]
                shapes = list(_flat_dims(s.inputs)) + list(_flat_dims(s.output))
                self._shape_values.append(len(shapes))
                exprs += shapes
            exprs += list(self.in_features.values()) + list(_flat_dims(self.output_shape))
            exprs += [e for r in self._counted_output() for e in r[:2]]
            symbols = [self.batch, *(size_symbol(n) for n in self.size_names)]
            self._evaluator = compile_exprs(symbols, exprs)
        return self._evaluator

    def refuses(self, /, **sizes: int) -> bool:
        """Whether torch refuses these sizes at a check of its own (a declared feature count
        that differs is not one): ``evaluate(**sizes).failure is not None``, without computing
        every step's shapes (only the checks' values: a tenth of them in a deep model)."""
        values = self.validate_sizes(sizes)
        leaf = self.covering(values)
        if leaf is not self:
            return leaf.refuses(**sizes)
        if self._checker is None:
            checks = [r for s in self.steps for r in s.requirements if r.kind != "declared"]
            symbols = [self.batch, *(size_symbol(n) for n in self.size_names)]
            self._checker = checks, compile_exprs(symbols, [e for r in checks for e in r.exprs()])
        checks, fn = self._checker
        flat = iter(fn(values[BATCH], *(values[n] for n in self.size_names)))
        return not all(r.accepts([next(flat) for _ in r.exprs()]) for r in checks)

    def validate_sizes(self, sizes: Mapping[str, Any]) -> dict[str, int]:
        """``sizes`` checked: every size name given, no unknown one, each a positive int; the
        batch ``N`` defaults to 1. The one validator of sizes passed to an analysis."""
        unknown = [k for k in sizes if k not in self.size_names and k != BATCH]
        if unknown:
            known = ", ".join(self.size_names) or "none"
            raise InvalidArgument(f"unknown size name(s) {', '.join(unknown)}; this analysis has: {known}")
        missing = [n for n in self.size_names if n not in sizes]
        if missing:
            raise InvalidArgument(f"missing size(s) {', '.join(missing)} (input {self.inputs})")
        out = {BATCH: 1}
        for k, v in sizes.items():
            out[k] = positive_int(v, f"size {k}")
        return out

    def evaluate(self, /, **sizes: int) -> Evaluation:
        """Every step at these sizes, recording (not raising) what torch would refuse (in the
        analysis of the case these sizes are in: see ``cases``)."""
        values = self.validate_sizes(sizes)
        leaf = self.covering(values)
        if leaf is not self:
            return leaf.evaluate(**sizes)
        args, kwargs = self.concrete_inputs(values)
        _countable("the input", (*args, *kwargs.values()), values)
        flat = iter(self._compiled()(values[BATCH], *(values[n] for n in self.size_names)))
        steps: list[ConcreteStep] = []
        mismatches: list[Failure] = []
        failure = None
        for i, s in enumerate(self.steps):
            for r in s.requirements:
                got = [next(flat) for _ in r.exprs()]
                if failure is None and not r.accepts(got):
                    f = Failure(s.name, i, r.failure(got), r)
                    if r.kind == "declared":
                        mismatches.append(f)
                    else:
                        failure = f
            for size, limit, what in s.bounds:
                value = next(flat)
                if failure is None and value >= limit:
                    at = ", ".join(f"{k}={v}" for k, v in values.items() if k != BATCH or v != 1)
                    raise BoundExceeded(f"{limit:,}", f"at {at}, {s.name}: {what} is {value:,}; symshape states "
                                                      f"this op's shapes only below {limit:,}")
            if failure is None:
                inputs = _unflatten(s.inputs, flat)
                output = _unflatten(s.output, flat)
                _countable(f"{s.name}'s output", output, values)
                steps.append(ConcreteStep(s.name, s.op, inputs, output))
            else:  # from the refused step on no shape is shown: its values are passed over
                next(islice(flat, self._shape_values[i], self._shape_values[i]), None)
        in_features = {k: next(flat) for k in self.in_features}
        output_shape = _unflatten(self.output_shape, flat)
        count = None  # the model returns chunk()'s pieces: only those that exist at these sizes
        for i, (lhs, rhs, _) in enumerate(self._counted_output()):
            exists = next(flat) >= next(flat)
            if not exists and count is None:
                count = i
        if count is not None and output_shape is not None:
            output_shape = output_shape[:count]
        shown = {k: v for k, v in values.items() if k != BATCH or sizes.get(BATCH)}
        if failure is not None:
            in_features = {k: v for k, v in in_features.items()
                           if any(st.name == k for st in steps)}
            output_shape = None
        return Evaluation(shown, steps, in_features, output_shape, failure, mismatches)

    def _counted_output(self) -> list[tuple]:
        """When the forward returns chunk()'s pieces whose number depends on the size: each
        piece's existence condition ``(lhs, rhs, reason)`` (``lhs >= rhs``; the first always
        exists)."""
        out = self._output
        if not isinstance(out, Pieces) or not any(out.requires):
            return []
        return [r if r is not None else (sympy.Integer(1), sympy.Integer(1), "") for r in out.requires]

    def concrete_input(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The shape of the tensor the model is called with at ``sizes`` (its batch ``N``, 1 by
        default, first where the analysis has a batch dim); the first input's, where it has several."""
        args, kwargs = self.concrete_inputs(sizes)
        return (*args, *kwargs.values())[0]

    def concrete_inputs(self, sizes: Mapping[str, int]) -> tuple[tuple, dict]:
        """``(args, kwargs)``: the shape of each input of the call at ``sizes``."""
        return self.inputs.concrete(sizes, self.batched)

    def at(self, /, **sizes: int) -> Evaluation:
        """Every step's concrete shape; raises InvalidInputSize where torch would refuse the size."""
        ev = self.evaluate(**sizes)
        problem = ev.first_problem()
        if problem is not None:
            raise InvalidInputSize(problem.step, problem.reason, ev.sizes)
        return ev

    def __str__(self) -> str:
        rows = [(s.name, s.op, ", ".join(shape_str(i) for i in s.inputs), shape_str(s.output))
                for s in self.steps]
        out = [f"input{'s' if not self.inputs.single else ''} {self.inputs.render(self.batched)}, {self.mode} mode",
               text_table(("step", "op", "input", "output"), rows)]
        if self.in_features:
            out.append("in_features:")
            out += [f"  {k}: {v}" for k, v in self.in_features.items()]
        if self.cases:
            out[0] += f"; where {case_text(self.where)} (the other sizes are cases of their own, below)"
            for case in self.cases:
                out += ["", f"case {case_text(case.where)}:", str(case)]
        return "\n".join(out)

    __repr__ = __str__


def case_text(where: tuple) -> str:
    """``(Ne(N, 1),)`` -> ``N != 1``: a case's conditions as they print."""
    return " and ".join(f"{c.lhs} {'==' if isinstance(c, sympy.Eq) else '!='} {c.rhs}" for c in where) or "every size"


def shapes_in(value):
    """Every shape (a tuple of ints or size expressions) in a step's input or output value."""
    if isinstance(value, RepeatedShape):
        yield from (value.item, value.last)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(d, (int, sympy.Basic)) for d in value):
        yield tuple(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from shapes_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from shapes_in(v)


def _countable(what: str, value, sizes: Mapping[str, int]) -> None:
    """Raise BoundExceeded where a tensor would hold ``MAX_TENSOR_ELEMENTS`` or more elements:
    torch counts a tensor's bytes in int64 and refuses one past it ("Storage size calculation
    overflowed"; 2**58 elements of 8 bytes), so symshape states shapes only below that, for
    every dtype -- an error, never a size torch would refuse reported as valid."""
    for shape in shapes_in(value):
        n = math.prod(int(d) for d in shape)
        if n >= MAX_TENSOR_ELEMENTS:
            at = ", ".join(f"{k}={v}" for k, v in sizes.items() if k != BATCH or v != 1)
            raise BoundExceeded("dims.MAX_TENSOR_ELEMENTS = 2**58",
                                f"at {at}, {what} {shape_str(shape)} would hold {n:,} elements (about "
                                f"2**{n.bit_length() - 1}); torch counts a tensor's bytes in int64 and refuses "
                                f"one past that, so symshape states shapes only for tensors of fewer than "
                                f"2**58 elements")


def _flat_dims(shape):
    if isinstance(shape, RepeatedShape):  # the count first, then one item's shape and the last's
        yield as_expr(shape.count)
        yield from _flat_dims(shape.item)
        yield from _flat_dims(shape.last)
    elif isinstance(shape, (list, tuple)):
        for d in shape:
            yield from _flat_dims(d)
    elif isinstance(shape, dict):
        for d in shape.values():
            yield from _flat_dims(d)
    elif isinstance(shape, sympy.Basic):
        yield shape
    elif isinstance(shape, int):
        yield sympy.Integer(shape)


def _unflatten(shape, flat):
    if isinstance(shape, RepeatedShape):
        count = next(flat)
        return shape.concrete(count, _unflatten(shape.item, flat), _unflatten(shape.last, flat))
    if isinstance(shape, (list, tuple)):
        return tuple(_unflatten(d, flat) for d in shape)
    if isinstance(shape, dict):
        return {k: _unflatten(d, flat) for k, d in shape.items()}
    if isinstance(shape, (sympy.Basic, int)):
        return next(flat)
    return shape
