"""Prove an analysis on the model itself: real torch forward passes, compared step by step.

:func:`observe` runs the model (forward hooks record every module's input and output) and then
the traced graph with a torch.fx Interpreter (recording every function and method output, and
the node where torch raises; on the meta device a node that repeats a call of the forward takes
its output: symshape.replay). :func:`verify` samples sizes -- the smallest valid size, sizes just
below it, both sides of every rounding edge, random sizes -- and compares every step's shape
(a module call that repeats an equal earlier one by its output: its ops are compared where they
were first traced), every Linear's in_features, and where torch refuses with ``valid_sizes()``.

The model is left exactly as it was: hooks are removed, the train/eval flags restored, buffers a
forward updates are restored, and a model holding uninitialized lazy modules runs on a copy.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import random
import threading
import warnings
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Iterator, Sequence

import sympy
import torch
import torch.fx
import torch.nn as nn

from .modules import attributes_kept, copy_model, has_lazy, positional_call, tensors_kept
from .dims import BATCH, MAX_TENSOR_ELEMENTS, as_expr, batch_symbol, positive_int
from .errors import BoundExceeded, InvalidArgument, SymshapeError, TraceMismatch
from .evaluation import Evaluation, Shapes
from .quasi import Unsolvable
from .records import plain_object, tensor_fields
from .render import text_table
from .replay import NOT_FOUND, KernelMemo, ModuleCalls, signature, watching
from .solve import divisible_set, smallest_tied, valid_sizes
from .trace import CONSTANT, REPEAT_CHECK, trace

__all__ = ["PROOF_SIZES", "Comparison", "Mismatch", "Observation", "VerifyReport", "compare", "disagreements",
           "observe", "prove", "sample_sizes", "torch_runs", "verify"]


@dataclass
class Observation:
    """What torch did at one input size."""

    output: Any = None  # output shape(s) of the real forward, or None if it raised
    error: BaseException | None = None  # the real forward's exception
    module_outputs: dict[str, list] = field(default_factory=dict)  # qualname -> output shapes per call
    module_inputs: dict[str, list] = field(default_factory=dict)  # qualname -> first input's shape per call
    node_outputs: dict[str, Any] = field(default_factory=dict)  # fx node name -> output shape(s)
    failed_node: str | None = None  # where the interpreted graph raised
    on_meta: bool = False  # run on the meta device: no kernel looked at a tensor's values


@dataclass(frozen=True)
class Mismatch:
    """A disagreement: at ``sizes``, ``layer`` (by ``rule``) was predicted one thing, torch did another."""

    layer: str
    sizes: dict
    predicted: Any
    actual: Any
    rule: str = ""
    what: str = "output shape"

    def __str__(self) -> str:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        rule = f", rule {self.rule}" if self.rule else ""
        return f"{self.layer} at {at} ({self.what}{rule}): predicted {self.predicted}, torch gave {self.actual}"


def _shape(value: Any, _open: set | None = None):
    """``value`` with each tensor as its shape; a container met again inside itself (a list a
    model appended to itself) is ``...``, as Python prints it."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    nested = isinstance(value, (list, tuple, dict))
    if not nested and not plain_object(value):
        return value
    _open = set() if _open is None else _open
    if id(value) in _open:
        return ...
    _open.add(id(value))
    try:
        if isinstance(value, (list, tuple)):
            return tuple(_shape(v, _open) for v in value)
        if isinstance(value, dict):  # (transformers' ModelOutput: a dict of its fields that are set)
            return {k: _shape(v, _open) for k, v in value.items()}
        # (its key cache: the fields that hold tensors, as symshape.records has them)
        return tensor_fields(value, lambda v: _shape(v, _open))
    finally:
        _open.discard(id(value))


@contextlib.contextmanager
def _mode(model: nn.Module, training: dict[str, bool]) -> Iterator[None]:
    """Every module in the train/eval mode ``training`` names (the analysis's) for the duration;
    each module's own flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        for name, m in model.named_modules():
            m.training = training.get(name, m.training)
        yield
    finally:
        for m, flag in flags:
            m.training = flag


class _Recorder(torch.fx.Interpreter):
    """Runs the traced graph node by node, recording each node's output shape. A module node
    whose inputs match the n-th call of that module in the model's own forward (same shapes,
    strides, dtypes and plain arguments) takes that call's output instead of running again
    (torch computed it already, from the same metadata: symshape.replay)."""

    def __init__(self, model: nn.Module, obs: Observation, calls: ModuleCalls, graph: torch.fx.Graph):
        super().__init__(model, graph=graph)
        self.obs = obs
        self.calls = calls
        self.seen: dict[str, int] = {}

    def run_node(self, n):
        try:
            result = super().run_node(n)
        except Exception:
            self.obs.failed_node = n.name
            raise
        if n.op not in ("placeholder", "output", "get_attr"):
            self.obs.node_outputs[n.name] = _shape(result)
        return result

    def call_module(self, target, args, kwargs):
        k = self.seen[target] = self.seen.get(target, -1) + 1
        found = self.calls.output(target, k, signature((args, kwargs)))
        return super().call_module(target, args, kwargs) if found is NOT_FOUND else found


#: held while the user's own model runs (its mode set, hooks on it, buffers restored after): two
#: verify() calls on one model from two threads would see each other's hooks and modes
MODEL_RUNS = threading.RLock()


def _as_call(x) -> tuple[tuple, dict]:
    """``x`` (one input tensor, or ``(args, kwargs)`` of a call) as ``(args, kwargs)``."""
    return ((x,), {}) if isinstance(x, torch.Tensor) else (tuple(x[0]), dict(x[1]))


def observe(model: nn.Module, x, graph: torch.fx.Graph | None = None,
            device: str = "cpu") -> Observation:
    """Run ``model(x)`` with module hooks, then its traced graph node by node, under no_grad.
    ``x`` is the input tensor, or ``(args, kwargs)`` for a call with several inputs.

    The model runs in the mode it is in. With ``device="meta"`` a meta copy runs instead (no
    kernels, only torch's meta shape checks); otherwise buffers a forward updates (batch norm's
    running statistics in training mode) and attributes it writes (``self.calls += 1``, a
    cache) are restored afterwards.
    """
    if device == "meta":
        args, kwargs = _as_call(x)
        meta = (tuple(a.to("meta") for a in args), {k: v.to("meta") for k, v in kwargs.items()})
        return _observe(copy_model(model, "meta"), meta, graph)
    if device != "cpu":
        raise InvalidArgument(f"device must be 'cpu' or 'meta', got {device!r}")
    if has_lazy(model):
        return _observe(copy_model(model), x, graph)  # a throwaway copy keeps the model lazy
    # (a forward that counts its calls or caches a tensor; one that updates its statistics or
    # rescales its weights)
    with MODEL_RUNS, attributes_kept(model), tensors_kept(model):
        return _observe(model, x, graph)


def _observe(model: nn.Module, x, graph: torch.fx.Graph | None) -> Observation:
    args, kwargs = _as_call(x)
    if any(t.device.type == "meta" for t in (*args, *kwargs.values())):
        # a meta copy: tensors the forward makes (torch.ones(h, w)) are meta too, never allocated;
        # each functional kernel runs once per metadata, in the forward and the graph's replay,
        # and the replay takes a module's output from the forward (symshape.replay)
        device = watching("meta")
        with device, KernelMemo():
            obs = _observe_here(model, x, graph, device)
        obs.on_meta = True
        return obs
    return _observe_here(model, x, graph)


def _observe_here(model: nn.Module, x, graph: torch.fx.Graph | None, watched=None) -> Observation:
    args, kwargs = _as_call(x)
    obs = Observation()
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    calls = ModuleCalls(watched)

    def pre_hook(mod, args, kwargs):
        positional, _ = positional_call(mod, args, kwargs)  # (the layer's input given by keyword)
        first = positional[0] if positional else None
        obs.module_inputs.setdefault(names[id(mod)], []).append(_shape(first))
        calls.enter(names[id(mod)], args, kwargs)

    def hook(mod, args, out):
        obs.module_outputs.setdefault(names[id(mod)], []).append(_shape(out))
        calls.leave(names[id(mod)], out)

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the model's own warnings say nothing about shapes
            try:
                obs.output = _shape(model(*args, **kwargs))
            except Exception as e:  # torch's refusal is an observation, not an error here
                obs.error = e
    finally:
        for h in handles:
            h.remove()
    graph = graph if graph is not None else trace(model).graph
    nodes = [n for n in graph.nodes if n.op == "call_module"]
    if len(nodes) == 1 and nodes[0].target == "":
        obs.node_outputs[nodes[0].name] = obs.output
        obs.failed_node = nodes[0].name if obs.error is not None else None
        return obs
    # the graph runs on the model itself (no GraphModule: its generated code is never run here),
    # with the trace's tensor constants set on it (a copy, or the model under observe()'s
    # attributes_kept: they are gone afterwards)
    with torch.no_grad(), warnings.catch_warnings():
        for node in graph.nodes:
            if CONSTANT in node.meta:
                setattr(model, node.target, node.meta[CONSTANT])
        warnings.simplefilter("ignore")
        try:
            _Recorder(model, obs, calls, graph).run(*args, *kwargs.values())  # the placeholders, in the trace's order
        except Exception:
            pass  # recorded in failed_node
    return obs


def _ran_step(analysis: Shapes, problem, obs: Observation) -> bool:
    """torch ran the step symshape refuses (one of its backends skips the check)."""
    step = analysis.steps[problem.index]
    seen = obs.module_outputs.get(step.name) if step.kind == "module" else [obs.node_outputs.get(step.node)]
    return bool(seen) and any(isinstance(o, tuple) for o in seen)


def _module_key(name: str) -> str:
    return "" if name == "(model)" else name


@dataclass
class Comparison:
    """The outcome of :func:`compare` at one size: the mismatches, how many comparisons were
    made, and ``skipped``: why the refusal was not compared (a check torch's backend or the
    data decides: see ``Requirement.backend_dependent`` and ``data_dependent``), or ``""``."""

    mismatches: list[Mismatch]
    checked: int
    skipped: str = ""


def _compare_steps(analysis: Shapes, sizes: dict, ev: Evaluation, obs: Observation, limit: int):
    """The step-by-step shape comparison before the first predicted failure."""
    out: list[Mismatch] = []
    checked = 0
    calls: dict[str, int] = {}
    repeats = _repeats(analysis, sizes)
    fixed_of: dict[str, list] = {}  # each layer's fixed sizes, in their order (asked per module step)
    for key, fixed in analysis.fixed.items():
        fixed_of.setdefault(fixed.layer, []).append((key, fixed))
    for i, (step, concrete) in enumerate(zip(analysis.steps[:limit], ev.steps)):
        for repeat in _due(repeats, i):  # a repeating call, in its place among the steps
            checked += 1
            out += _compare_repeat(repeat, sizes, obs)
        if step.output == ():  # a check without a tensor (torch._assert): only its refusal counts
            continue
        if step.copy_of and step.kind != "module":
            continue  # an op inside a call equal to an earlier one: compared there (the call's output, here)
        checked += 1
        if step.kind == "module":
            k = calls.get(step.name, 0)
            calls[step.name] = k + 1
            seen = obs.module_outputs.get(_module_key(step.name), [])
            actual = seen[k] if k < len(seen) else "<not called>"
            for key, fixed in fixed_of.get(step.name, ()):
                # the size reaching each fixed size of the layer (its first input's: the one recorded)
                if k != fixed.call or fixed.input != 0 or key not in ev.in_features:
                    continue
                inputs = obs.module_inputs.get(_module_key(step.name), [])
                first = inputs[k] if k < len(inputs) and isinstance(inputs[k], tuple) else ()
                got = first[fixed.dim] if -len(first) <= fixed.dim < len(first) else "<not called>"
                checked += 1
                if got != ev.in_features[key]:
                    out.append(Mismatch(step.name, sizes, ev.in_features[key], got, step.rule, fixed.parameter))
        else:
            actual = obs.node_outputs.get(step.node, "<not run>")
        predicted = concrete.output
        if step.variable_count:  # chunk: the pieces that do not exist at this size show as empty
            predicted = tuple(p for p in predicted if 0 not in p)
        if actual != predicted:
            out.append(Mismatch(step.name, sizes, predicted, actual, step.rule))
    for repeat in _due(repeats, min(limit, len(ev.steps))):
        checked += 1
        out += _compare_repeat(repeat, sizes, obs)
    return out, checked


def _repeats(analysis: Shapes, sizes: dict) -> list[tuple]:
    """Each module call that repeats an equal earlier one (its ops are copies of that one's,
    compared there): ``(steps before it, node name, module, output shape at sizes)``, in order."""
    if analysis.graph is None:
        return []
    subs = analysis.symbols_at(analysis.validate_sizes(sizes))
    held = [(n.meta[REPEAT_CHECK], n) for n in analysis.graph.nodes if REPEAT_CHECK in n.meta]
    return [(steps, n.name, n.target, _at_all(shape, subs)) for (steps, shape), n in held]


def _due(repeats: list[tuple], steps: int) -> list[tuple]:
    """The repeating calls (taken off ``repeats``) whose copies all come before step ``steps``."""
    due = []
    while repeats and repeats[0][0] <= steps:
        due.append(repeats.pop(0))
    return due


def _compare_repeat(repeat: tuple, sizes: dict, obs: Observation) -> list[Mismatch]:
    _, node, module, predicted = repeat
    actual = obs.node_outputs.get(node, "<not run>")
    return [] if actual == predicted else [Mismatch(module, sizes, predicted, actual, "repeat")]


def _at_all(shapes, subs: dict):
    """The shape, or the nested tuples of shapes and sizes (shapes_of), at ``subs``."""
    if isinstance(shapes, (tuple, list)):
        return tuple(_at_all(s, subs) for s in shapes)
    return shapes if shapes is None or isinstance(shapes, (bool, float, str)) else _at(shapes, subs)


def _at(size, subs: dict):
    """A size of the analysis at the sizes ``subs`` gives its symbols (Shapes.symbols_at): an int."""
    value = as_expr(size).xreplace(subs)
    return int(value) if value.is_Integer else value


def _compare_refusal(analysis: Shapes, sizes: dict, ev: Evaluation, obs: Observation) -> list[Mismatch]:
    """Where torch raised (model and traced graph alike) against where symshape predicts it."""
    problem = ev.first_problem()
    out: list[Mismatch] = []
    if (obs.error is None) != (obs.failed_node is None):
        out.append(Mismatch("(model)", sizes, "the traced graph behaves like the model",
                            f"the model {'raised' if obs.error is not None else 'ran'}, the graph "
                            f"{'raised at ' + str(obs.failed_node) if obs.failed_node else 'ran'}",
                            what="tracing"))
    if obs.error is not None:
        first = f"{type(obs.error).__name__}: {str(obs.error).splitlines()[0] if str(obs.error) else ''}"
        if problem is None:
            out.append(Mismatch(obs.failed_node or "(model)", sizes, "runs", f"raises {first}", what="refusal"))
        else:
            step = analysis.steps[problem.index]
            if obs.failed_node is not None and step.node != obs.failed_node:
                out.append(Mismatch(step.name, sizes, f"raises here ({problem.reason})",
                                    f"raises at node {obs.failed_node} ({first})", step.rule, "refusal"))
    elif problem is not None:
        out.append(Mismatch(problem.step, sizes, f"raises ({problem.reason})", f"runs, output {obs.output}",
                            analysis.steps[problem.index].rule, "refusal"))
    elif obs.output != ev.output_shape:
        out.append(Mismatch("(model)", sizes, ev.output_shape, obs.output, what="model output"))
    return out


def _undecided(analysis: Shapes, ev: Evaluation, obs: Observation) -> str:
    """Why this size's refusal is not compared, or ``""``: torch's backend ran a step its reference
    path refuses (and past it there is nothing to predict), a data-dependent check passed, or
    the meta forward ran past a check its kernels do not make (an index's values)."""
    problem = ev.first_problem()
    if problem is None:
        return ""
    req = problem.requirement
    if req.backend_dependent and _ran_step(analysis, problem, obs):
        return f"{problem.step}: {req.backend_dependent}"
    if req.data_dependent and (obs.error is None or obs.failed_node != analysis.steps[problem.index].node):
        return f"{problem.step}: {req.data_dependent}"
    if req.meta_unchecked and obs.on_meta and (obs.error is None or obs.failed_node != analysis.steps[problem.index].node):
        return f"{problem.step}: {req.meta_unchecked}"
    return ""


def compare(analysis: Shapes, sizes: dict[str, int], obs: Observation, ev: Evaluation | None = None) -> Comparison:
    """How the prediction at ``sizes`` (``ev``: the analysis evaluated there, computed when not
    given) compares with what torch did (``obs``).

    Steps before the first predicted failure are compared shape by shape (and each Linear's
    in_features); then torch must raise exactly at the step where symshape predicts the
    failure, or not at all, and a run must end with the predicted output shape.
    """
    ev = ev if ev is not None else analysis.evaluate(**sizes)
    problem = ev.first_problem()
    limit = problem.index if problem is not None else len(analysis.steps)
    out, checked = _compare_steps(analysis, sizes, ev, obs, limit)
    skipped = _undecided(analysis, ev, obs)
    if skipped:
        return Comparison(out, checked + 1, skipped)
    checked += 1 if problem is not None or obs.error is not None else 2
    return Comparison(out + _compare_refusal(analysis, sizes, ev, obs), checked)


def disagreements(analysis: Shapes, sizes: dict[str, int], obs: Observation) -> list[Mismatch]:
    """Every way the prediction at ``sizes`` differs from what torch did; empty when they agree."""
    return compare(analysis, sizes, obs).mismatches


# -- sampling -----------------------------------------------------------------------------------


def _add(out: list[dict], sizes: dict[str, int]) -> None:
    if all(v >= 1 for v in sizes.values()) and sizes not in out:
        out.append(dict(sizes))


#: random sizes whose largest predicted tensor has more elements than this are not drawn (a stack
#: of transposed convolutions and upsampling can turn a 30-cube into gigabytes)
MAX_SAMPLED_ELEMENTS = 2 ** 22


def _elements(shape) -> int:
    """The elements of a concrete shape, or the most of any shape among nested ones."""
    if isinstance(shape, (tuple, list)) and shape and all(isinstance(d, int) for d in shape):
        return math.prod(shape)
    if isinstance(shape, (tuple, list)):
        return max((_elements(s) for s in shape), default=0)
    return 0


def _largest(ev: Evaluation) -> int:
    """The most elements of any tensor the forward makes, as predicted at one size."""
    return max((_elements(step.output) for step in ev.steps), default=0)


def _rounding_edges(analysis: Shapes, base: dict[str, int]) -> list[dict[str, int]]:
    """Both sides of each rounding's next exact size from ``base``, one size name at a time."""
    names = list(analysis.size_names)
    out: list[dict[str, int]] = []
    for step in analysis.steps:
        for rd in step.roundings:
            syms = [s for s in rd.numerator.free_symbols if s.name in names]
            if len(syms) != 1 or not rd.divisor:
                continue
            n = syms[0].name
            num = rd.numerator.xreplace({s: base[s.name] for s in rd.numerator.free_symbols
                                         if s.name in names and s.name != n})
            num = num.xreplace({batch_symbol(): 1})
            try:
                exact = divisible_set(num, rd.divisor, syms[0])
            except Exception:  # an edge the solver cannot place: random sizes still cover it
                continue
            edge = next((v for v in exact.values(base[n] + 4 * rd.divisor) if v >= base[n]), None)
            if edge is not None:
                out += [{**base, n: v} for v in (edge - 1, edge, edge + 1)]
    return out


def sample_sizes(analysis: Shapes, valid, samples: int, seed: int = 0,
                 max_elements: int = MAX_SAMPLED_ELEMENTS,
                 evaluations: dict | None = None) -> list[dict[str, int]]:
    """Sizes worth checking: the smallest valid size and the sizes just below it; both sides of
    every rounding edge near it (all of these always); then random sizes up to ``samples``,
    skipping those whose largest predicted tensor exceeds ``max_elements``. The evaluations made
    to decide that are kept in ``evaluations`` (keyed by :func:`_key`), for the caller to reuse."""
    names = list(analysis.size_names)
    out: list[dict[str, int]] = []
    if not names:
        return [{}]
    smallest = valid.min() if valid is not None and not valid.is_empty else None
    base = smallest or {n: 8 for n in names}
    if smallest is not None:
        _add(out, smallest)
        for n in names:
            _add(out, {**smallest, n: smallest[n] - 1})
    for sizes in _rounding_edges(analysis, base):
        _add(out, sizes)
    evaluations = evaluations if evaluations is not None else {}
    rng = random.Random(seed)
    top = 2 * max(base.values()) + 32
    tries = 0
    while len(out) < samples and tries < 20 * samples:
        tries += 1
        candidate = {n: rng.randint(1, top) for n in names}
        try:
            ev = evaluations[_key(candidate)] = analysis.evaluate(**candidate)
        except BoundExceeded:  # a tensor past counting: not a size a forward can check
            continue
        if _largest(ev) <= max_elements:
            _add(out, candidate)
    return out


def _key(sizes: dict) -> tuple:
    return tuple(sorted(sizes.items()))


# -- the report ---------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: ``ok`` when every comparison agreed."""

    sizes: list[dict[str, int]]
    results: list[tuple[dict, bool, bool, int]]  # (sizes, torch ran, symshape predicted run, mismatches)
    mismatches: list[Mismatch]
    checked: int
    device: str
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict:
        return {"ok": self.ok, "device": self.device, "checked": self.checked,
                "results": [{"sizes": dict(s), "torch_runs": ran, "symshape_runs": predicted, "mismatches": bad}
                            for s, ran, predicted, bad in self.results],
                "mismatches": [{"layer": m.layer, "sizes": dict(m.sizes), "what": m.what, "rule": m.rule,
                                "predicted": str(m.predicted), "torch": str(m.actual)} for m in self.mismatches],
                "notes": list(self.notes)}

    def __str__(self) -> str:
        rows = []
        for sizes, ran, predicted, bad in self.results:
            at = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(fixed)"
            rows.append((at, "runs" if ran else "raises", "runs" if predicted else "raises",
                         "ok" if not bad else f"{bad} mismatch{'es' if bad > 1 else ''}"))
        head = (f"verified on {self.device}: {len(self.sizes)} sizes, {self.checked} checks, "
                f"{len(self.mismatches)} mismatches")
        out = [head, text_table(("size", "torch", "symshape", "result"), rows)]
        out += [f"mismatch: {m}" for m in self.mismatches]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    __repr__ = __str__


def _sample_input(analysis: Shapes, sizes: dict[str, int], dtype: torch.dtype, device: str = "cpu"):
    """The call's inputs at ``sizes``, as ``(args, kwargs)``: random values from a generator of
    its own (torch's global RNG is not touched); on the meta device nothing is allocated."""
    return _call_at(analysis.inputs, analysis.batched, sizes, dtype, device)


def _call_at(inputs, batched: bool, sizes: dict[str, int], dtype: torch.dtype, device: str = "cpu"):
    """:func:`_sample_input` of a call's :class:`~symshape.inputs.Inputs` (``batched``: the batch
    dim first, ``N`` in ``sizes`` or 1)."""
    generator = torch.Generator().manual_seed(0)

    def make(shape, given):
        if device == "meta":
            return torch.empty(shape, dtype=given or dtype, device="meta")
        if given is not None:  # token ids, a mask (symshape.Input): zeros, a valid id of any embedding
            return torch.zeros(shape, dtype=given)
        return torch.rand(*shape, generator=generator).to(dtype)

    return inputs.typed(make, *inputs.concrete(sizes, batched))


#: the sizes (every size name alike) at which torch's own forward is run for a call the model's
#: code refused in the trace (symshape.analysis): a refusal torch makes at each is the call's
RAISES_AT = (64, 224)


def torch_raises(model: nn.Module, inputs, batched: bool, reason: str) -> str | None:
    """Where torch's own forward of a meta-device copy of ``model`` (its modes, no_grad) raises
    exactly ``reason`` (an exception's ``"Type: message"``) at every size of :data:`RAISES_AT`:
    those sizes, said ("at H = 64, W = 64 and at H = 224, W = 224, on a meta-device copy of the
    model"); else None. Where the copy stops earlier because the model reads a tensor's values
    (``.item()``), which a meta tensor has not, the model's own forward on the CPU answers
    instead (left as it was, as :func:`prove` runs it); a model on the meta device never runs."""
    copy_ = copy_model(model, "meta")
    dtype = _dtype(model)
    said, where = [], "a meta-device copy of the model"
    for v in RAISES_AT:
        sizes = {name: v for name in inputs.size_names}
        e = _raised(copy_, *_call_at(inputs, batched, sizes, dtype, "meta"))
        if _reads_values(e) and not _on_meta(model):
            e, where = _raised_on_cpu(model, *_call_at(inputs, batched, sizes, dtype)), "the model itself"
        if e is None or f"{type(e).__name__}: {e}" != reason:
            return None
        said.append("at " + (", ".join(f"{k} = {n}" for k, n in sizes.items()) or "the fixed size"))
        if not sizes:
            break
    return " and ".join(said) + f", on {where}"


def torch_runs(model: nn.Module, inputs, batched: bool) -> dict | None:
    """A size where torch's forward runs (every size name alike, the first few of
    :data:`PROOF_SIZES`): a meta-device copy's forward, and for a model that is not on the meta
    device its own at the same size (meta kernels check less than the CPU's); None where it
    raises at each. What an analysis that refuses every size is checked against."""
    names = list(inputs.size_names)
    candidates = [{n: v for n in names} for v in PROOF_SIZES[:5]] + _made_for(inputs, batched, names, {}) \
        if names else [{}]
    copy_ = copy_model(model, "meta")
    dtype = _dtype(model)
    for sizes in candidates:
        if _raised(copy_, *_call_at(inputs, batched, sizes, dtype, "meta")) is None \
                and (_on_meta(model) or _runs_on_cpu(model, *_call_at(inputs, batched, sizes, dtype))):
            return sizes
    return None


def _raised(module: nn.Module, args, kwargs) -> Exception | None:
    """What ``module``'s forward raised on these inputs (no_grad, torch's and Python's random
    states as they were), or None where it ran."""
    state = random.getstate()  # (a forward may draw from Python's random module too)
    try:
        with torch.no_grad(), warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            module(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the refusal is any the model raises
        return e
    finally:
        random.setstate(state)
    return None


def _runs_on_cpu(model: nn.Module, args, kwargs) -> bool:
    """Whether the model's own forward runs on these inputs (see :func:`_raised_on_cpu`)."""
    return _raised_on_cpu(model, args, kwargs) is None


def _raised_on_cpu(model: nn.Module, args, kwargs) -> Exception | None:
    """What the model's own forward raised on these inputs, or None: the model left as it was
    (as :func:`observe` leaves it: a lazy one runs on a copy)."""
    if has_lazy(model):
        return _raised(copy_model(model), args, kwargs)
    with MODEL_RUNS, attributes_kept(model), tensors_kept(model):
        return _raised(model, args, kwargs)


def _dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating parameter or buffer (float32 if none)."""
    for t in chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


#: the largest tensor verify() lets a real (CPU) forward make, in elements (``device="meta"``
#: allocates nothing and takes any size)
MAX_ELEMENTS = 2 ** 30


def _countable_input(analysis: Shapes, sizes: dict) -> None:
    args, kwargs = analysis.concrete_inputs(sizes)
    for shape in (*args, *kwargs.values()):
        if _elements(shape) >= MAX_TENSOR_ELEMENTS:
            raise InvalidArgument(f"verify() at {sizes}: the input would have {_elements(shape):,} elements, more "
                                  "than torch can make a tensor of, even on the meta device")


def _fits_in_memory(analysis: Shapes, sizes: dict, ev, device: str) -> None:
    """Refuse, before anything is allocated, a size at which the input or a step's output (as
    the analysis computes them) would hold more than MAX_ELEMENTS elements on the CPU, or more
    than torch can count on any device."""
    args, kwargs = analysis.concrete_inputs(sizes)
    _countable_input(analysis, sizes)
    if device != "cpu":
        return
    biggest = max(*(_elements(shape) for shape in (*args, *kwargs.values())), _largest(ev))
    if biggest > MAX_ELEMENTS:
        raise InvalidArgument(
            f"verify() at {sizes} runs a real forward with a tensor of {biggest:,} elements (more than "
            f"{MAX_ELEMENTS:,}); check such sizes with device='meta', which allocates nothing")


def verify(analysis: Shapes, samples: int = 20, sizes: Sequence[dict] | None = None, seed: int = 0,
           device: str = "cpu", batch: int = 1) -> VerifyReport:
    """Check the analysis it is given against real torch forward passes (no_grad), in the mode
    the model was analyzed in (``analysis.training``), at batch size ``batch`` unless a size gives
    ``N``: one evaluation of the analysis and one forward per size."""
    if isinstance(samples, (list, tuple, dict)):
        raise InvalidArgument(f"verify() takes the number of sizes to sample first; to check given sizes, "
                              f"pass them as sizes=[{{'H': 28, ...}}] (got {type(samples).__name__} {samples!r:.80})")
    if sizes is None:
        samples = positive_int(samples, "samples")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise InvalidArgument(f"seed must be an int, got {seed!r}")
    if device not in ("cpu", "meta"):
        raise InvalidArgument(f"device must be 'cpu' or 'meta', got {device!r}")
    if sizes is not None and (isinstance(sizes, (str, bytes, dict)) or not all(isinstance(s, dict) for s in sizes)):
        raise InvalidArgument(f"sizes must be a list of dicts such as [{{'H': 28, 'W': 28}}], got {sizes!r:.80}")
    batch = positive_int(batch, "batch")
    if batch != 1 and not analysis.batched:
        raise InvalidArgument("batch: this analysis has no batch dim (analyzed with batch=None)")
    model = analysis.model
    notes: list[str] = []
    try:
        valid = valid_sizes(analysis, batch)
    except Unsolvable as e:
        valid = None
        notes.append(f"valid_sizes() could not be solved exactly ({e}); sizes sampled at random")
    evaluations: dict = {}
    if sizes is not None:
        todo = [dict(s) for s in sizes]
        for s in todo:
            analysis.validate_sizes(s)  # a clear error for a missing or bad size, before anything runs
    else:
        todo = sample_sizes(analysis, valid, samples, seed, evaluations=evaluations)
        if batch != 1:
            todo = [{**s, BATCH: batch} for s in todo]
            evaluations = {}
    mismatches: list[Mismatch] = []
    results = []
    checked = 0
    dtype = _dtype(model)
    with MODEL_RUNS, _mode(model, analysis.training), torch.random.fork_rng(devices=[]):  # dropout draws stay ours
        for s in todo:
            _countable_input(analysis, s)  # before evaluating: the input alone may be past counting
            ev = evaluations.get(_key(s)) or analysis.evaluate(**s)
            _fits_in_memory(analysis, s, ev, device)
            leaf = analysis.covering(analysis.validate_sizes(s))  # the case these sizes are in
            obs = observe(model, _sample_input(analysis, s, dtype, device), leaf.graph, device)
            comparison = compare(leaf, s, obs, ev)
            bad, n = comparison.mismatches, comparison.checked
            if valid is not None and s.get(BATCH, 1) == batch:
                n += 1
                says = valid.contains(**{k: v for k, v in s.items() if k != BATCH})
                if says != (obs.error is None) and not comparison.skipped:
                    bad.append(Mismatch("(model)", s, "runs" if says else "raises",
                                        "runs" if obs.error is None else "raises", what="valid_sizes()"))
            if comparison.skipped:
                notes.append(f"at {s}: {comparison.skipped}")
            mismatches += bad
            checked += n
            results.append((s, obs.error is None, ev.first_problem() is None, len(bad)))
    return VerifyReport(todo, results, mismatches, checked, device, notes)


# -- the trace proves itself ---------------------------------------------------------------------

#: the sizes tried, in order, for the one forward that proves an analysis: the first the analysis
#: accepts is used (the smallest, for a recurrent model). Each value is tried first with the
#: size names apart (``H=224, W=256``: :data:`PROOF_APART` more for each name after the first), then
#: all alike (``H=224, W=224``): a trace that swapped two sizes agrees with torch wherever they
#: are equal, and a model that takes square inputs only is proved at one.
PROOF_SIZES = (224, 64, 32, 97, 128, 16, 300, 8, 512, 4, 2, 1)
PROOF_APART = 32
#: sizes models are made for (Inception's 299, NASNet-A Large's 331, DINOv2's 518, SAM's 1024 ...):
#: where an analysis accepts none of :data:`PROOF_SIZES`, torch must refuse these too
MADE_FOR = (256, 299, 331, 384, 448, 518, 1024)
#: the most elements the inputs may hold at a size of :data:`MADE_FOR` (the model itself may run
#: there on the CPU: 1024 x 1024 x 3 is within, a volume of 1024³ is not)
MADE_FOR_ELEMENTS = 2 ** 24


def _made_for(inputs, batched: bool, names, extra: dict) -> list[dict]:
    """The sizes of :data:`MADE_FOR`, every size name alike (and ``extra``), whose inputs hold at
    most :data:`MADE_FOR_ELEMENTS` elements."""
    sizes = [{**{n: v for n in names}, **extra} for v in MADE_FOR]
    return [s for s in sizes if sum(_elements(shape) for shape in _flat_shapes(inputs.concrete(s, batched)))
            <= MADE_FOR_ELEMENTS]


def _flat_shapes(call: tuple) -> list:
    args, kwargs = call
    return [*args, *kwargs.values()]


def _where_meta_runs(analysis: Shapes, copy_: nn.Module, dtype, sizes: list[dict]) -> dict | None:
    """The first of ``sizes`` where the meta-device copy's forward runs (in the analysis's mode),
    or None: for an analysis that accepts none of them, the size to compare it with torch at."""
    with _mode(copy_, analysis.training):
        for s in sizes:
            if _raised(copy_, *_sample_input(analysis, s, dtype, "meta")) is None:
                return s
    return None


def _covering(analysis: Shapes, names: list, fixed: dict) -> list[dict]:
    """For a case of the analysis none of the usual sizes is in (``2*floor(T/8) - 1 == 1``: the
    strides of a view at one chunk), the first size every name alike that is, up to 1024."""
    if not analysis.where or not names:
        return []
    for batch in ({}, {BATCH: 2}) if BATCH not in fixed else ({},):
        for v in range(1, 1025):
            sizes = {**{n: v for n in names}, **fixed, **batch}
            if analysis.covers(sizes):
                return [sizes]
    return []


def _smallest_valid(analysis: Shapes, batch: int = 1) -> dict | None:
    """The smallest size torch should run (ignoring a wrong declared in_features): every size
    name the same, where a scan up to 1024 finds one (confirmed by evaluating it), else the
    solver's, if it finds one."""
    try:
        tied = smallest_tied(analysis, batch)
        if tied is not None and analysis.evaluate(**tied, **({BATCH: batch} if batch != 1 else {})).failure is None:
            return tied
    except SymshapeError:  # (a size past what symshape states: the solver's answer, as before)
        pass
    try:
        valid = valid_sizes(analysis, batch)
        return valid.min() if not valid.is_empty else None
    except Exception:  # noqa: BLE001 - a set the solver cannot state: the fixed candidates only
        return None


def _recurrent(model: nn.Module) -> bool:
    """Whether the model has an RNN, LSTM or GRU: torch's meta forward of one runs every step of
    its sequence (Sequencer's LSTMs: 3.1 s at 224 x 224, 0.45 s at 32 x 32), so the proof takes
    the smallest size the analysis accepts."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


#: how torch refuses floating indices (an embedding's), on the CPU and the meta device
_INDICES_REFUSED = "Expected tensor for argument #1 'indices' to have one of the following scalar types"


def _floating_indices(analysis: Shapes, error: BaseException | None) -> None:
    """Raise InvalidArgument where torch refused the forward because indices (an embedding's)
    are floating, and some input was left floating: a language model's token ids, given without
    their dtype. torch refuses that at every size; the fix is the input's dtype."""
    inputs = analysis.inputs
    floating = [label for key, (label, _) in zip([*range(len(inputs.args)), *inputs.kwargs], inputs.shapes)
                if key not in inputs.dtypes]
    if error is None or _INDICES_REFUSED not in str(error) or not floating:
        return
    if inputs.single:
        shape = inputs.spec()
        which, python, line = "the input", f"symshape.Input({shape!r}, torch.long)", ",".join(map(str, shape))
    else:
        which, python, line = " or ".join(floating), "symshape.Input(shape, torch.long)", "SHAPE"
    raise InvalidArgument(
        f"torch refuses the model's input at every size: {str(error).splitlines()[0]}. symshape's inputs hold "
        f"the model's floats unless given a dtype: where {which} holds token ids, give its dtype, {python} "
        f"(on the command line: --input {line}:int64)")


#: said where a model on the meta device reads a tensor's values (transformers' mask code:
#: ``(position_ids[:, -1] == 0).all()``), which no meta tensor has
_VALUES_ON_META = ("torch's meta forward stopped where the model reads a tensor's values ({}): a model on the "
                   "meta device has none, so nothing proves the trace; build it on the CPU, where its own "
                   "forward proves it")


_RAISED_ON_META = ("torch's forward of the model on the meta device raised {}: {} (a meta kernel's check, which "
                   "torch's CPU kernel may not make: build the model on the CPU, where its own forward proves the "
                   "trace)")


def _reads_values(error: BaseException | None) -> bool:
    """Whether a meta forward stopped because the model read a value (``.item()``, ``bool()``,
    ``.tolist()`` of a meta tensor), not at a check of sizes."""
    return isinstance(error, RuntimeError) and "meta tensors" in str(error) and "cannot be called" in str(error)


def _on_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _proof_sizes(names, v: int) -> list[dict]:
    """The candidates of :func:`prove` for the value ``v``: the names apart, then alike."""
    alike = {n: v for n in names}
    apart = {n: v + PROOF_APART * i for i, n in enumerate(names)}
    return [apart, alike] if apart != alike else [alike]


def prove(analysis: Shapes) -> str:
    """One meta-device forward at a size the analysis accepts (a wrong declared in_features
    allowed: torch must then raise at that Linear), compared step by step; when it accepts none of
    :data:`PROOF_SIZES`, torch must refuse the first two as well. Raises
    :class:`~symshape.errors.TraceMismatch` when torch contradicts the analysis; returns where it
    was checked ("H=224, W=224"), or why it could not be (a meta kernel torch lacks)."""
    names = analysis.size_names
    # a case of a size being 1 (H == 1) is proved with that size 1, the others as usual
    pinned = {str(c.lhs): int(c.rhs) for c in analysis.where
              if isinstance(c, sympy.Eq) and c.lhs.is_Symbol and c.rhs.is_Integer and str(c.lhs) in names}
    # a case of the analysis that leaves out batch 1 (a squeeze of dim N: Shapes.where) is proved at batch 2
    batch = {BATCH: 2} if not analysis.covers({BATCH: 1, **{n: 2 for n in names}, **pinned}) \
        and analysis.covers({BATCH: 2, **{n: 2 for n in names}, **pinned}) else {}
    candidates = [{**sizes, **pinned, **batch} for v in PROOF_SIZES for sizes in _proof_sizes(names, v)] \
        if names else [batch]
    covered = [c for c in candidates if analysis.covers(c)] or _covering(analysis, names, {**pinned, **batch})
    if not covered and analysis.where and names:  # (no size of its own: nothing to prove it at)
        return "not proved: no size of this case found (every size alike, up to 1024)"
    candidates = covered or candidates
    if names and _recurrent(analysis.model):  # the smallest first: its meta forward unrolls each step
        candidates.sort(key=lambda c: max(c[n] for n in names))
    evaluations = []  # evaluated one at a time: the first candidate is usually accepted
    accepted = None
    for s in candidates:
        if s is not candidates[-1] and analysis.refuses(**s):
            continue  # (a check fails: not the size to prove at, nor the fallback below)
        evaluations.append((s, analysis.evaluate(**s)))
        if evaluations[-1][1].first_problem() is None:
            accepted = s
            break
    if accepted is None and names:
        accepted = _smallest_valid(analysis, batch.get(BATCH, 1))
        accepted = {**accepted, **batch} if accepted is not None else None
    if accepted is None:  # only a wrong declared in_features fails: torch must raise right there
        accepted = next((s for s, ev in evaluations if ev.failure is None), None)
    model = analysis.model
    dtype = _dtype(model)
    copy_ = copy_model(model, "meta")
    if accepted is None and names:  # it refuses every size: where torch runs, the trace is wrong
        accepted = _where_meta_runs(analysis, copy_, dtype, [
            c for c in candidates + _made_for(analysis.inputs, analysis.batched, names, {**pinned, **batch})
            if analysis.covers(c)])
    todo = [accepted] if accepted is not None else candidates[:2]
    known = {_key(s): ev for s, ev in evaluations}  # each evaluated once
    with _mode(copy_, analysis.training):
        for sizes in todo:
            obs = _observe(copy_, _sample_input(analysis, sizes, dtype, "meta"), analysis.graph)
            if isinstance(obs.error, NotImplementedError):
                return f"not proved: torch has no meta kernel for an op ({str(obs.error).splitlines()[0][:120]})"
            comparison = compare(analysis, sizes, obs, known.get(_key(sizes)))
            if comparison.mismatches and not _on_meta(model):
                # meta kernels check less than the CPU ones (a transposed convolution's channels):
                # the real model at the same size has the last word
                with MODEL_RUNS, _mode(model, analysis.training), torch.random.fork_rng(devices=[]):
                    obs = observe(model, _sample_input(analysis, sizes, dtype), analysis.graph)
                comparison = compare(analysis, sizes, obs)
            if comparison.mismatches:
                _floating_indices(analysis, obs.error)
                why = [] if not _on_meta(model) or obs.error is None else \
                    [_VALUES_ON_META.format(str(obs.error).splitlines()[0]) if _reads_values(obs.error) else
                     _RAISED_ON_META.format(type(obs.error).__name__, str(obs.error).splitlines()[0][:200])]
                raise TraceMismatch(sizes, why + [str(m) for m in comparison.mismatches],
                                    [m.layer for m in comparison.mismatches])
    return "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in todo) or "the fixed size"
