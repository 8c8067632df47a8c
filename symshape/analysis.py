"""``analyze(model, input_shape)``: every step's shape and each Linear's in_features, symbolically.

:class:`Analysis` is the user's handle: the propagated shapes (:class:`~symshape.evaluation.Shapes`)
plus the questions asked of them, each answered by its own module (``formula``, ``solve``,
``check``, ``explain``, ``verify``), none of which imports this one.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import sys
from functools import partial
from typing import Iterator, Sequence

import sympy
import torch.nn as nn

from . import check, explain, export, solve, verify
from .dims import BATCH, batch_symbol, positive_int, size_symbol
from .engine import Propagator, Step
from .requirements import Requirement
from .errors import (BoundExceeded, ForwardRaises, InvalidArgument, InvalidInputSize, SizeCases, SymshapeError,
                     TraceMismatch, UnsupportedOperation, UntraceableModel)
from .evaluation import ConcreteStep, Evaluation, Failure, Shapes, case_text
from .formula import formula_of
from .sizes import NearestSizes
from .inputs import Inputs, check_call, parse_inputs, parse_shape
from .modules import copy_model
from .trace import HINT, HINT_WHY, trace

__all__ = ["Analysis", "ConcreteStep", "Evaluation", "Failure", "analyze", "in_features", "parse_input_shape"]


def parse_input_shape(input_shape: Sequence) -> tuple[sympy.Expr, ...]:
    """``(1, "H", "W")`` -> ``(1, H, W)`` with positive-integer symbols; the batch dim is not included."""
    return parse_shape(input_shape)


class Analysis(Shapes):
    """The symbolic shapes of a model's forward for one input shape (see
    :class:`~symshape.evaluation.Shapes`), and the questions asked of them."""

    def formula(self, layer: str | None = None, batch: int = 1):
        """The in_features of the first Linear (or ``layer``), compiled: ``f = a.formula()``,
        then ``f(H=28, W=28)`` is 320 in microseconds (raising InvalidInputSize where torch would
        refuse the size), and ``f.grid(H=range(1, 1025), W=range(1, 1025))`` computes every size
        of the grid at once. Returns a :class:`~symshape.formula.Formula`.
        """
        return formula_of(self, layer, batch)

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

    def nearest_sizes(self, batch: int = 1, **sizes: int):
        """The accepted sizes nearest to ``sizes`` (an image of 500×375: ``H=500, W=375``), for
        padding (every size at or above) and for cropping (at or below), with the smallest total
        change where sizes are coupled; exact, from :meth:`valid_sizes`, with no scan. Returns a
        :class:`~symshape.sizes.NearestSizes` (``.pad``, ``.crop``, ``.pad_amounts`` ...)."""
        values = {k: v for k, v in self.validate_sizes(sizes).items() if k != BATCH}
        valid = self.valid_sizes(batch)
        return NearestSizes(values, valid.closest(values, up=True), valid.closest(values, up=False))

    def export_spec(self, batch: int = 1, check: bool = True, **sizes: int):
        """A ``dynamic_shapes`` for ``torch.export.export`` from :meth:`valid_sizes`: Dims with
        ranges and derived dims (``H = 32*h``) covering the largest part of the valid sizes that
        torch's Dim language can say, what it leaves out and why, and the example inputs to
        export with (``sizes``: the example, ``H=224, W=224``; by default one where no
        size-dependent dim is 0 or 1, which torch would specialize).

        ``check`` (default): export a copy of the model with it. Where torch.export refuses the
        spec, or the exported program guards sizes the spec admits, the guard is solved exactly:
        the sizes it refuses (all valid: eager torch runs them) are findings, left out, and the
        model is exported again. Returns a :class:`~symshape.export.ExportSpec`
        (``.dynamic_shapes()``, ``.example_inputs()``, ``.code()``, ``.left_out``, ``.refusals``,
        ``.checked``)."""
        leaf = self.for_batch(positive_int(batch, "batch")) if self.cases else None  # the batch's case
        return export.export_spec(leaf or self, batch, check, **sizes)

    def dynamic_shapes(self, batch: int = 1, check: bool = True, **sizes: int):
        """The ``dynamic_shapes`` argument of :meth:`export_spec`, to pass as it is with an example
        the spec admits::

            spec = a.export_spec()
            ep = torch.export.export(model, *spec.example_inputs(), dynamic_shapes=spec.dynamic_shapes())
        """
        return self.export_spec(batch, check, **sizes).dynamic_shapes()

    def exact_sizes(self, batch: int = 1, square: bool = False):
        """The valid sizes at which no layer rounds (every stride and adaptive pool divides)."""
        return solve.exact_sizes(self, batch, square=square)

    # -- wrong Linear layers (symshape.check) ----------------------------------------------

    def check(self, /, **sizes: int):
        """Every Linear whose in_features does not fit what reaches it, at ``sizes`` (or, with no
        sizes, for every size): torch's error, the right value and its formula, the sizes at which
        the declared value would be right, and the fix. Returns a :class:`~symshape.check.CheckReport`.
        """
        leaf = self.covering(self.validate_sizes(sizes)) if sizes and self.cases else self  # their case
        report = check.check_linears(leaf, sizes, leaf._unbatched())
        if sizes:
            return report
        for case in self.leaves()[1:]:  # for every size: what a case finds besides
            seen = {f.layer for f in report.findings}
            report.findings += [f for f in check.check_linears(case).findings if f.layer not in seen]
        return report

    def _unbatched(self) -> "Analysis | None":
        """The same call without the batch dim, for check()'s warnings (None where the model
        cannot be analyzed so, or this analysis has no batch dim)."""
        if not self.batched or self.inputs.single and not self.input_shape:
            return None
        try:
            return analyze(self.model, self.inputs, batch=None)
        except SymshapeError:
            return None

    # -- derivations for docs (symshape.explain) --------------------------------------------

    def explain(self, /, format: str = "text", full: bool = False, layer: str | None = None,
                summary_only: bool = False, **sizes: int):
        """Every layer's arithmetic: symbolically, or at ``sizes`` with each formula's numbers,
        the exact value before rounding, the rounding torch applies and what it means; closing
        with each Linear's in_features, the other sizes that give it, and the no-rounding sizes.
        ``format``: ``text`` (fits 100 columns), ``markdown`` (tables and math) or ``latex``
        (an amsmath ``align*`` fragment). By default only the steps that change a size or round
        are shown, and repeated blocks that keep every size are one line with their count;
        ``full=True`` shows every step; ``layer`` stops at that fixed layer and summarizes it
        alone; ``summary_only`` gives the summary alone. Returns a str that renders itself in
        Jupyter.
        """
        if sizes or not self.cases:  # at sizes: the case they are in
            leaf = self.covering(self.validate_sizes(sizes)) if sizes and self.cases else self
            return explain.explain(leaf, format, full, layer, summary_only, **sizes)
        text = explain.explain(self, format, full, layer, summary_only)
        parts = [f"Where {case_text(self.where)}:\n\n{text}"] + [f"Where {case_text(case.where)} (a case of its own):\n\n"
                          + case.explain(format, full, layer, summary_only) for case in self.cases]
        out = explain.Explanation("\n\n".join(parts))
        out.analysis, out.full = self, full
        return out

    def _repr_markdown_(self) -> str:
        """In Jupyter: the steps as a compact table (``explain()`` gives the derivation)."""
        return explain.step_table(self)

    def plot(self, layer: str | None = None, upto: int = 96):
        """A matplotlib Figure: the first Linear's (or ``layer``'s) in_features for square sizes
        up to ``upto``, and, with two size names, a map over H × W of the sizes torch refuses,
        accepts, accepts with no rounding, and that give the declared in_features
        (:mod:`symshape.plot`; needs matplotlib)."""
        from . import plot
        return plot.plot(self, layer, positive_int(upto, "upto"))

    # -- proof against torch (symshape.verify) ---------------------------------------------

    def verify(self, samples: int = 20, sizes=None, seed: int = 0, device: str = "cpu", batch: int = 1):
        """Run the real model (in the mode it was analyzed in, no_grad, at batch size ``batch``) at sampled
        sizes -- the smallest valid size, sizes just below it, both sides of every rounding edge, random
        sizes -- or at ``sizes``, and compare every step's shape, each Linear's in_features, and where torch
        refuses, with the prediction. ``device="meta"`` runs a meta copy (no kernels). The model
        is left exactly as it was. Returns a :class:`~symshape.verify.VerifyReport`.
        """
        return verify.verify(self, samples, sizes, seed, device, batch)


def analyze(model: nn.Module, input_shape, prove: bool = True, batch: str | None = BATCH) -> Analysis:
    """Trace ``model`` and propagate the symbolic ``input_shape`` (one sample, no batch dim).

    The model is called with a batch of such samples, its batch dim ``N`` first (``batch="N"``,
    the default). ``batch=None`` analyzes the call exactly as given, ``model(x)`` with
    ``x.shape == input_shape``: an unbatched call, where ``nn.Flatten()`` keeps dim 0.

    A model called with several tensors takes a tuple of shapes, one per positional input
    (``((3, "H", "W"), (1, "H", "W"))`` for ``model(image, mask)``), or a dict of shapes by
    keyword (``{"x": (3, "H", "W"), "mask": (1, "H", "W")}``); a size name is the same size in
    every input, and all inputs share the batch dim (see :mod:`symshape.inputs`).

    With ``prove`` (the default) the trace proves itself: one forward of a meta-device copy of
    the model at a size the analysis accepts (see :func:`symshape.verify.prove`) must agree step
    by step, else :class:`~symshape.errors.TraceMismatch` is raised instead of an answer;
    ``Analysis.proof`` says where it was checked.

    >>> import torch.nn as nn, symshape
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.Flatten(), nn.LazyLinear(10))
    >>> symshape.analyze(net, (1, "H", "W")).in_features["2"]
    8*floor((H - 1)/2)*floor((W - 1)/2)
    """
    inputs = parse_inputs(input_shape, model)
    check_call(model, inputs)
    if batch is not None and (not isinstance(batch, str) or batch != BATCH):
        raise InvalidArgument(f"batch must be {BATCH!r} (a batch dim N before input_shape, the default) or None "
                              f"(the call exactly as input_shape gives it), got {batch!r}")
    if batch is None and any(not shape for _, shape in inputs.shapes):
        raise InvalidArgument("input_shape () with batch=None is a 0-dim tensor: give at least one dim")
    try:
        with _collector_paused():
            return _by_cases(model, inputs, prove, batch is not None, (), [MAX_CASES])
    except (UnsupportedOperation, UntraceableModel) as e:
        refused = _refused_by_torch(e, model, inputs, batch is not None)
        if refused is not None:
            raise refused from e
        _advise(e, model, inputs, batch is not None)
        raise
    except RecursionError:
        raise BoundExceeded(f"Python's recursion limit, {sys.getrecursionlimit()}",
                            f"{type(model).__name__} nests modules, or its sizes nest expressions, deeper than "
                            "symshape follows") from None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the while, and on again after where it was
    on. An analysis makes many small objects that live on (sympy's caches, the graph, each
    layer's expressions), and each collection walks every object the process holds (torch's,
    the model's): a ViT's analysis takes half the time without. Objects freed by reference
    counting go as usual; cycles wait for the next collection."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: the most analyses one call splits into (Analysis.cases): each is a whole analysis of the model
MAX_CASES = 16


def _by_cases(model: nn.Module, inputs: Inputs, prove: bool, batched: bool, where: tuple, budget: list) -> "Analysis":
    """The analysis of the sizes where every condition of ``where`` holds. Where an op's output
    structure depends on whether a size ``s`` of the input is 1 (a squeeze of dim ``N``:
    symshape.errors.SizeCases), the cases ``s != 1`` and ``s == 1`` are analyzed each on its own
    (each proved by a forward of its own); the first is returned with the second among its
    ``cases``, which ``at()``, ``formula()``, ``valid_sizes()``, ``verify()`` ... consult by size."""
    try:
        return _analyze(model, inputs, prove, batched, where)
    except SizeCases as e:
        size = e.size
        known = {size_symbol(n) for n in inputs.size_names} | ({batch_symbol()} if batched else set())
        if size is None or not size.free_symbols or not size.free_symbols <= known:
            raise
        one, other = sympy.Eq(size, 1), sympy.Ne(size, 1)
        if one in where or other in where:  # pragma: no cover - Context.size_case answers these
            raise
        budget[0] -= 1  # one more analysis
        if budget[0] < 1:
            e.detail += f"; symshape analyzes at most {MAX_CASES} cases of one call"
            raise
        cases, refusals = [], []
        for case in (other, one):
            try:
                cases.append(_by_cases(model, inputs, prove, batched, where + (case,), budget))
            except InvalidInputSize as refused:  # the case's tensors reach a step that refuses them all
                cases.append(_refused_case(model, inputs, batched, where + (case,), refused))
                refusals.append(refused)
        if len(refusals) == 2:
            raise refusals[0]  # torch refuses every size of every case
        general, special = cases
        general.cases = (*general.cases, special)
        return general


def _refused_case(model: nn.Module, inputs: Inputs, batched: bool, where: tuple, refused: InvalidInputSize) -> "Analysis":
    """A case of the analysis in which torch refuses every size (after a squeeze of dim ``N``,
    ``bn`` gets a tensor of the wrong rank): one step, the one that raises, refusing every size
    of the case (``where``: the analysis it belongs to asks it only there)."""
    step = Step(refused.layer, "(refuses every size of this case)", (), (), "cases",
                (Requirement(0, "never", 0, refused.reason),), node=getattr(refused, "node", ""), kind="function")
    training = {name: m.training for name, m in model.named_modules()}
    analysis = Analysis(model, inputs, [step], None, {}, None, {}, training, {}, batched)
    analysis.where = where
    analysis.proof = f"not proved: torch refuses every size of this case ({refused.layer}: {refused.reason})"
    return analysis


def _analyze(model: nn.Module, inputs: Inputs, prove: bool, batched: bool = True, where: tuple = ()) -> "Analysis":
    args, kwargs = inputs.symbolic(batched)
    # one input: the forward's first placeholder; several: the root's call, traced as given
    call = None if inputs.single and not _bound_by_python(model) else (args, kwargs)
    values = (*args, *kwargs.values())
    training = {name: m.training for name, m in model.named_modules()}
    whole: frozenset = frozenset()
    mismatch: TraceMismatch | None = None
    while True:
        try:
            traced = trace(model, partial(_propagator, model, values[0] if call is None else None,
                                          () if call is None else values, where, {}), whole, call=call)
        except SymshapeError as e:
            if mismatch is None:
                _refusal_proved(e, model, inputs, batched, where)
                raise
            raise mismatch from e  # running the module whole did not work either: no answer
        prop = traced.propagation
        analysis = Analysis(model, inputs, prop.steps, prop.output, prop.in_features, traced.graph,
                            prop.rules_applied, training, prop.fixed, batched)
        analysis.where = where
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
    _refuse_if_never_runs(prop.steps, inputs.size_names)
    return analysis


def _refusal_proved(e: SymshapeError, model: nn.Module, inputs: Inputs, batched: bool, where: tuple) -> None:
    """A trace that refuses every size (``InvalidInputSize`` at a step) proves itself too: where
    torch's forward runs at a size (verify.torch_runs), the trace took a path torch does not take,
    and the refusal never reaches the user (raises TraceMismatch instead). Not for one case of the
    analysis (``where``), which covers some sizes only."""
    if not isinstance(e, InvalidInputSize) or where:
        return
    ran = verify.torch_runs(model, inputs, batched)
    if ran is not None:
        raise TraceMismatch(ran, [f"symshape's trace refuses every size ({e}), and torch's forward runs here"],
                            [e.layer]) from e


def _bound_by_python(model: nn.Module) -> bool:
    """Whether the model's input is bound to its forward by a Python call, as several inputs
    are, rather than by fx's placeholders: a forward that takes ``*args`` or ``**kwargs``
    (empty with one input; fx would make them inputs nobody gives), or one wrapped by a
    decorator (fx reads the parameters of the function inside and calls the wrapper with
    them). transformers' models are both."""
    forward = getattr(type(model), "forward", None)
    if forward is None or inspect.unwrap(forward) is not forward:
        return forward is not None
    try:
        params = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _propagator(model: nn.Module, x, values: tuple, where: tuple, caches: dict) -> Propagator:
    prop = Propagator(model, x, values)
    prop.share(caches)  # trace() makes one propagator per attempt: what they computed is kept
    prop.cases = where
    return prop


#: said of an op whose output size comes from the tensor's values
_DATA_DEPENDENT = ("depends on the data", "entries symshape does not know", "number of True entries")


def _advise(e: UnsupportedOperation | UntraceableModel, model: nn.Module, inputs: Inputs, batched: bool) -> None:
    """Put the next steps that work for this model in place of a refusal's generic hint: eval
    mode where the refused code runs only in training, a part of the model that analyzes on its
    own (tried, not guessed), a module_rule for the module that holds the refused code. A hint
    written for the case (a hooked model's) stays."""
    untraceable = isinstance(e, UntraceableModel)
    if e.hint not in ("", HINT):
        return
    steps: list[str] = []
    if not untraceable and any(w in str(e.detail) for w in _DATA_DEPENDENT):
        steps.append("this size depends on the tensor's values, so no formula of the input size gives it")
    if any(m.training for m in model.modules()) and _reads_training(model) \
            and _analyzes(copy_model(model, "meta").eval(), inputs, batched):
        steps.append("in eval mode symshape analyzes this model (the refused code runs only in training): "
                     "call model.eval() first (the symshape command analyzes in eval mode unless --train)")
    else:
        part = _part_that_analyzes(model, inputs, batched, e.module_path)
        if part:
            steps.append(f"model.{part} analyzes on its own: symshape.analyze(model.{part}, {inputs.spec()!r}) "
                         f"(on the command line: MODEL.{part})")
        elif untraceable:
            steps.append("analyze a part that traces, e.g. symshape.analyze(model.features, input_shape) "
                         "(on the command line: MODEL.features)")
    if e.module_path:
        cls = type(model.get_submodule(e.module_path)).__name__
        steps.append(f"describe {cls}'s shapes in a few lines with @symshape.module_rule({cls}) "
                     f"(docs/extending.md): symshape then uses it wherever {cls} is called")
    elif e.module_path == "":
        steps.append("move the refused code into an nn.Module of its own and describe its shapes with "
                     "@symshape.module_rule (docs/extending.md)")
    if untraceable:
        steps.append("express the size arithmetic with tensor ops (x.flatten(1), x.view(x.size(0), -1)) "
                     "instead of Python control flow on sizes")
    e.hint = ("  " + HINT_WHY + "\n" if untraceable else "") + "what you can do:\n" + "\n".join(f"  - {s}" for s in steps)


def _refused_by_torch(e: SymshapeError, model: nn.Module, inputs: Inputs, batched: bool) -> ForwardRaises | None:
    """The trace stopped where the model's own code raised, and torch's forward raises the same
    (verify.torch_raises): the call is refused, which no trace can change. What to do is then
    about the call (the inputs it gives), not about tracing."""
    if not isinstance(e, UntraceableModel) or isinstance(e, ForwardRaises) \
            or not getattr(e, "model_raised", False):
        return None
    where = verify.torch_raises(model, inputs, batched, e.reason)
    if where is None:
        return None
    steps = [_inputs_step(model, inputs)]
    part = _part_that_analyzes(model, inputs, batched, e.module_path)
    if part:
        steps.append(f"model.{part} analyzes on its own: symshape.analyze(model.{part}, {inputs.spec()!r}) "
                     f"(on the command line: MODEL.{part})")
    hint = "what you can do:\n" + "\n".join(f"  - {s}" for s in steps)
    return ForwardRaises(e.module, e.reason, e.line, hint, e.module_path, where)


def _inputs_step(model: nn.Module, inputs: Inputs) -> str:
    """The forward's parameters beside the inputs the call gives them."""
    try:
        found = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # a builtin forward: no parameters to name
        found = []
    params = [{p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name for p in found]
    positional = [p.name for p in found if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    given = [positional[i] if i < len(positional) else label
             for i, (label, _) in enumerate(inputs.shapes[:len(inputs.args)])] + list(inputs.kwargs)
    takes = f"{type(model).__name__}'s forward takes {', '.join(params)}; " if params else ""
    return (f"give the forward the inputs it needs ({takes}this call gives {', '.join(given)}): several inputs "
            "are a tuple of shapes, or a dict of shapes by parameter name, symshape.Input for token ids "
            "(docs/api.md)")


def _reads_training(model: nn.Module) -> bool:
    """Whether any module's forward (or a method it is made of) mentions ``training``, read from
    its source text (never run): only then can eval mode change what the forward does, and is
    it worth analyzing again. A class whose source Python cannot read counts as one that does."""
    seen: set[type] = set()
    for m in model.modules():
        cls = type(m)
        if cls in seen:
            continue
        seen.add(cls)
        for klass in cls.__mro__:
            if klass in (nn.Module, object):
                break
            try:
                source = inspect.getsource(klass)
            except (OSError, TypeError):
                return True
            if "training" in source:
                return True
    return False


def _analyzes(model: nn.Module, inputs: Inputs, batched: bool) -> bool:
    try:
        _analyze(model, inputs, True, batched)
        return True
    except (SymshapeError, RecursionError):
        return False


def _part_that_analyzes(model: nn.Module, inputs: Inputs, batched: bool, failing: str | None) -> str | None:
    """The first child of ``model`` (registered before the one holding the refused code, or
    any where the model's own forward refused), if it analyzes on the model's input."""
    children = [n for n, _ in model.named_children()]
    if not children or failing is None:
        return None
    top = failing.split(".")[0] if failing else None
    if top == children[0]:
        return None
    first = children[0]
    return first if _analyzes(model.get_submodule(first), inputs, batched) else None


def _scope_of_step(analysis: Analysis, name: str) -> str:
    """The module whose forward made the step ``name`` ("" for the model itself)."""
    if name in ("", "(model)"):
        return ""
    if any(s.name == name for s in analysis.steps):
        return name.rpartition(".")[0]
    try:  # a module call that repeats an earlier one (its output the mismatch): that module
        analysis.model.get_submodule(name)
        return name
    except AttributeError:
        return ""


def _refuse_if_never_runs(steps: list[Step], names: tuple[str, ...]) -> None:
    """Raise InvalidInputSize when a check fails whatever the sizes are (a Conv2d given one
    row, a pool padded more than half its kernel): torch refuses every input, and the shapes
    after that step (negative sizes) mean nothing. Checks whose outcome depends on the backend
    or on the data stay checks; a wrong declared in_features is reported by ``check``.
    """
    for step in steps:
        for r in step.requirements:
            if r.kind != "size" or r.backend_dependent or r.data_dependent or r.decided() is not False:
                continue
            every = f" (whatever {', '.join(names)} {'is' if len(names) == 1 else 'are'})" if names else ""
            check = r.check
            raise InvalidInputSize(step.name, check.message(check.lhs, check.rhs) + every)


def in_features(model: nn.Module, input_shape: Sequence, layer: str | None = None) -> sympy.Expr:
    """The in_features formula of the first Linear the forward calls, or of ``layer``.

    >>> import torch.nn as nn, symshape
    >>> symshape.in_features(nn.Sequential(nn.Conv1d(1, 4, 5), nn.Flatten(), nn.LazyLinear(2)), (1, "L"))
    4*L - 16
    """
    return analyze(model, input_shape).linear(layer)[1]
