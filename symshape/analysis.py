"""``analyze(model, input_shape)``: every step's shape and each Linear's in_features, symbolically.

:class:`Analysis` is the user's handle: the propagated shapes (:class:`~symshape.evaluation.Shapes`)
plus the questions asked of them, each answered by its own module (``formula``, ``solve``,
``check``, ``explain``, ``verify``), none of which imports this one.
"""

from __future__ import annotations

import sys
from typing import Sequence

import sympy
import torch.nn as nn

from . import check, explain, solve, verify
from .dims import BATCH, MAX_TENSOR_ELEMENTS, batch_symbol, positive_int, size_symbol
from .engine import Propagator, Step
from .errors import BoundExceeded, InvalidArgument, InvalidInputSize, SymshapeError, TraceMismatch
from .evaluation import ConcreteStep, Evaluation, Failure, Shapes
from .formula import Formula
from .tensor import SymTensor
from .trace import trace

__all__ = ["Analysis", "ConcreteStep", "Evaluation", "Failure", "analyze", "in_features", "parse_input_shape"]


def parse_input_shape(input_shape: Sequence) -> tuple[sympy.Expr, ...]:
    """``(1, "H", "W")`` -> ``(1, H, W)`` with positive-integer symbols; the batch dim is not included."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise InvalidArgument(
            f"input_shape must be a tuple such as (1, 'H', 'W'), got {input_shape!r}"
        )
    dims: list[sympy.Expr] = []
    for i, d in enumerate(input_shape):
        if isinstance(d, str):
            if d == BATCH:
                raise InvalidArgument(
                    f"{BATCH!r} is the batch dim, which symshape adds itself; input_shape is one "
                    f"sample's shape, e.g. (1, 'H', 'W')"
                )
            dims.append(size_symbol(d))
        elif isinstance(d, sympy.Symbol):
            dims.append(size_symbol(d.name))
        else:
            dims.append(sympy.Integer(positive_int(d, f"input_shape {tuple(input_shape)}: entries are ints or size names; entry {i}")))
    fixed = 1
    for d in dims:
        fixed *= int(d) if d.is_Integer else 1
    if fixed >= MAX_TENSOR_ELEMENTS:
        raise InvalidArgument(f"input_shape {tuple(input_shape)}: {fixed:,} elements per sample, more than torch can "
                              "make a tensor of (its size in bytes must fit in int64)")
    return tuple(dims)


class Analysis(Shapes):
    """The symbolic shapes of a model's forward for one input shape (see
    :class:`~symshape.evaluation.Shapes`), and the questions asked of them."""

    def formula(self, layer: str | None = None, batch: int = 1):
        """The in_features of the first Linear (or ``layer``), compiled: ``f = a.formula()``,
        then ``f(H=28, W=28)`` is 320 in microseconds (raising InvalidInputSize where torch would
        refuse the size), and ``f.grid(H=range(1, 1025), W=range(1, 1025))`` computes every size
        of the grid at once. Returns a :class:`~symshape.formula.Formula`.
        """
        return Formula(self, layer, batch)

    # -- the inverse problem (symshape.solve) ----------------------------------------------

    def valid_sizes(self, batch: int = 1, square: bool = False):
        """Exactly the input sizes at which torch runs the forward (at batch size ``batch``;
        ``square=True`` ties the spatial sizes, for the smallest square image and the like).

        Every check torch makes is solved exactly: kernels that must fit, shapes that must
        agree at a cat or an add, a Linear whose in_features is fixed, a view's element count.
        Returns a :class:`~symshape.sizes.SizeSet`; infinite sets are represented exactly.
        """
        return solve.valid_sizes(self, batch, square)

    def solve(self, flat: int, layer: str | None = None, square: bool = False, batch: int = 1):
        """The valid sizes whose in_features at the first Linear (or ``layer``) is ``flat``.

        ``square=True`` ties the spatial sizes together. When no size works, the returned empty
        set's ``note`` and ``nearest`` give the nearest achievable values and their sizes.
        """
        return solve.solve_flat(self, flat, layer, square, batch)

    def exact_sizes(self, batch: int = 1, square: bool = False):
        """The valid sizes at which no layer rounds (every stride and adaptive pool divides)."""
        return solve.exact_sizes(self, batch, square=square)

    # -- wrong Linear layers (symshape.check) ----------------------------------------------

    def check(self, /, **sizes: int):
        """Every Linear whose in_features does not fit what reaches it, at ``sizes`` (or, with no
        sizes, for every size): torch's error, the right value and its formula, the sizes at which
        the declared value would be right, and the fix. Returns a :class:`~symshape.check.CheckReport`.
        """
        return check.check_linears(self, sizes, self._unbatched())

    def _unbatched(self) -> "Analysis | None":
        """The same call without the batch dim, for check()'s warnings (None where the model
        cannot be analyzed so, or this analysis has no batch dim)."""
        if not self.batched or not self.input_shape:
            return None
        try:
            return analyze(self.model, tuple(str(d) if isinstance(d, sympy.Symbol) else int(d)
                                             for d in self.input_shape), batch=None)
        except SymshapeError:
            return None

    # -- derivations for docs (symshape.explain) --------------------------------------------

    def explain(self, /, format: str = "text", **sizes: int):
        """Every layer's arithmetic: symbolically, or at ``sizes`` with each formula's numbers,
        the exact value before rounding, the rounding torch applies and what it means; closing
        with each Linear's in_features, the other sizes that give it, and the no-rounding sizes.
        ``format``: ``text`` (fits 100 columns), ``markdown`` (tables and math) or ``latex``
        (an amsmath ``align*`` fragment). Returns a str that renders itself in Jupyter.
        """
        return explain.explain(self, format, **sizes)

    def _repr_markdown_(self) -> str:
        return self.explain("markdown")

    def _repr_latex_(self) -> str:
        return "$$" + self.explain("latex") + "$$"

    # -- proof against torch (symshape.verify) ---------------------------------------------

    def verify(self, samples: int = 20, sizes=None, seed: int = 0, device: str = "cpu", batch: int = 1):
        """Run the real model (in the mode it was analyzed in, no_grad, at batch size ``batch``) at sampled
        sizes -- the smallest valid size, sizes just below it, both sides of every rounding edge, random
        sizes -- or at ``sizes``, and compare every step's shape, each Linear's in_features, and where torch
        refuses, with the prediction. ``device="meta"`` runs a meta copy (no kernels). The model
        is left exactly as it was. Returns a :class:`~symshape.verify.VerifyReport`.
        """
        return verify.verify(self, samples, sizes, seed, device, batch)


def analyze(model: nn.Module, input_shape: Sequence, prove: bool = True, batch: str | None = BATCH) -> Analysis:
    """Trace ``model`` and propagate the symbolic ``input_shape`` (one sample, no batch dim).

    The model is called with a batch of such samples, its batch dim ``N`` first (``batch="N"``,
    the default). ``batch=None`` analyzes the call exactly as given, ``model(x)`` with
    ``x.shape == input_shape``: an unbatched call, where ``nn.Flatten()`` keeps dim 0.

    With ``prove`` (the default) the trace proves itself: one forward of a meta-device copy of
    the model at a size the analysis accepts (see :func:`symshape.verify.prove`) must agree step
    by step, else :class:`~symshape.errors.TraceMismatch` is raised instead of an answer;
    ``Analysis.proof`` says where it was checked.

    >>> import torch.nn as nn, symshape
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.Flatten(), nn.LazyLinear(10))
    >>> symshape.analyze(net, (1, "H", "W")).in_features["2"]
    8*floor((H - 1)/2)*floor((W - 1)/2)
    """
    dims = parse_input_shape(input_shape)
    if batch is not None and (not isinstance(batch, str) or batch != BATCH):
        raise InvalidArgument(f"batch must be {BATCH!r} (a batch dim N before input_shape, the default) or None "
                              f"(the call exactly as input_shape gives it), got {batch!r}")
    if batch is None and not dims:
        raise InvalidArgument("input_shape () with batch=None is a 0-dim tensor: give at least one dim")
    try:
        return _analyze(model, dims, prove, batch is not None)
    except RecursionError:
        raise BoundExceeded(f"Python's recursion limit, {sys.getrecursionlimit()}",
                            f"{type(model).__name__} nests modules, or its sizes nest expressions, deeper than "
                            "symshape follows") from None


def _analyze(model: nn.Module, dims: tuple, prove: bool, batched: bool = True) -> "Analysis":
    x = SymTensor((batch_symbol(), *dims) if batched else dims)
    training = {name: m.training for name, m in model.named_modules()}
    whole: frozenset = frozenset()
    mismatch: TraceMismatch | None = None
    while True:
        try:
            traced = trace(model, lambda: Propagator(model, x), whole)
        except SymshapeError as e:
            if mismatch is None:
                raise
            raise mismatch from e  # running the module whole did not work either: no answer
        prop = traced.propagation
        analysis = Analysis(model, dims, prop.steps, prop.output, prop.in_features, traced.graph,
                            prop.rules_applied, training, prop.fixed, batched)
        # first the proof: a trace that took a path torch does not take must not be reported
        # as a model that refuses every size
        try:
            analysis.proof = verify.prove(analysis) if prove else "not proved (prove=False)"
            break
        except TraceMismatch as e:
            # the module whose Python fx followed wrongly (an isinstance of a traced value ...)
            # runs whole under torch's meta kernels, where its Python sees tensors; at last the model
            scope = _scope_of_step(analysis, e.layers[0] if e.layers else "")
            mismatch = mismatch or e
            if "" in whole:
                raise mismatch from None
            whole = whole | {scope if scope not in whole else ""}
    _refuse_if_never_runs(prop.steps, dims)
    return analysis


def _scope_of_step(analysis: Analysis, name: str) -> str:
    """The module whose forward made the step ``name`` ("" for the model itself)."""
    step = next((s for s in analysis.steps if s.name == name), None)
    if step is None or name == "(model)":
        return ""
    if step.kind == "module":
        return name.rpartition(".")[0]
    return name.rpartition(".")[0]


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
