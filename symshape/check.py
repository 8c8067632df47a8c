"""``Analysis.check``: every fixed layer whose declared size does not fit, before anything runs.

A fixed layer is one whose parameters fix the size reaching it: a Linear's in_features, and
``F.linear``, ``x @ self.W``, ``addmm``, Bilinear, an RNN/GRU/LSTM's input_size, a
MultiheadAttention's embed_dim, a LayerNorm's normalized_shape, a conv's in_channels where it
depends on the input size (``Shapes.fixed``). For each wrong one the report gives the error torch would raise, the value that reaches the
layer and its formula, the input sizes at which the declared value would be right (or the
nearest values when none), and the fix. The analysis does not stop at a wrong Linear: it goes on
with the layer's out_features, so later Linears are checked too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy
import torch
import torch.fx
import torch.nn as nn

from .modules import copy_model, is_lazy
from .dims import BATCH
from .errors import InvalidInputSize
from .evaluation import Shapes
from .tensor import shape_str
from .quasi import Unsolvable
from .sizes import SizeSet
from .solve import solve_flat

__all__ = ["CheckReport", "LayerFinding", "LinearFinding", "check_linears", "torch_linear_error"]


def torch_linear_error(input_shape: tuple, in_features: int, out_features: int) -> str:
    """The message torch raises for a Linear whose in_features does not match its input."""
    rows = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
    return (f"mat1 and mat2 shapes cannot be multiplied "
            f"({rows}x{input_shape[-1]} and {in_features}x{out_features})")


#: the lazy counterpart of a layer class whose size torch can take from the first call
_LAZY = {nn.Linear: "LazyLinear", nn.Conv1d: "LazyConv1d", nn.Conv2d: "LazyConv2d", nn.Conv3d: "LazyConv3d",
         nn.ConvTranspose1d: "LazyConvTranspose1d", nn.ConvTranspose2d: "LazyConvTranspose2d",
         nn.ConvTranspose3d: "LazyConvTranspose3d", nn.BatchNorm1d: "LazyBatchNorm1d",
         nn.BatchNorm2d: "LazyBatchNorm2d", nn.BatchNorm3d: "LazyBatchNorm3d"}


@dataclass
class LayerFinding:
    """One fixed layer whose declared size does not fit what reaches it: a Linear's in_features,
    an ``F.linear`` weight's shape, a GRU's input_size (see ``Shapes.fixed``)."""

    layer: str
    declared: int
    out_features: int | None  # a Linear's (for its fix), else None
    bias: bool
    formula: sympy.Expr  # what reaches the layer, as a formula of the input size
    value: int | None  # ... at the checked sizes (None when checking symbolically)
    error: str  # the error torch would raise ("" when checking symbolically)
    fits: SizeSet | None  # the sizes at which the declared value would be right
    sizes: dict = field(default_factory=dict)
    #: the parameter that fixes the size (``in_features``, ``input_size``, ``w.shape[1]`` ...)
    parameter: str = "in_features"
    #: the layer's class (``nn.Linear``, ``nn.GRU``) or, for a function, its weight's name
    kind: str = "nn.Linear"
    #: for a function (``F.linear``, ``@``), the shape of the parameter that fixes the size
    weight_shape: tuple | None = None
    #: the step (module path) the layer is; ``layer`` adds the parameter for a layer's second
    #: fixed size (``"b (in2_features)"``)
    step: str = ""

    @property
    def right_value(self) -> int | None:
        """The value the layer needs: at the checked sizes, or the one it needs at every size."""
        if self.value is not None:
            return self.value
        return int(self.formula) if self.formula.is_Integer else None

    @property
    def fix(self) -> str:
        value = self.right_value if self.right_value is not None else self.formula
        if self.kind == "nn.Linear":
            bias = "" if self.bias else ", bias=False"
            return f"nn.Linear({value}, {self.out_features}{bias})"
        if self.kind.startswith("nn."):
            return f"{self.kind}({self.parameter}={value}, ...)"
        name, _, index = self.parameter.partition(".shape")
        if self.weight_shape is not None and self.value is not None:
            shape = list(self.weight_shape)
            shape[int(index.strip("[]"))] = value
            return f"give {name} the shape ({', '.join(map(str, shape))})"
        return f"give {name} {value} in dim {index.strip('[]')}"

    @property
    def lazy_fix(self) -> str | None:
        if self.kind == "nn.Linear":
            bias = "" if self.bias else ", bias=False"
            return f"nn.LazyLinear({self.out_features}{bias})"
        lazy = next((v for k, v in _LAZY.items() if f"nn.{k.__name__}" == self.kind), None)
        return f"nn.{lazy}(...)" if lazy else None

    def to_json(self) -> dict:
        return {"layer": self.layer, "parameter": self.parameter, "kind": self.kind, "declared": self.declared,
                "in_features": str(self.formula), "value": self.value, "error": self.error or None,
                "sizes": dict(self.sizes), "fits": self.fits.to_json() if self.fits is not None else None,
                "fix": self.fix if self.right_value is not None else self.lazy_fix}

    def lines(self) -> list[str]:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        out = []
        if self.value is not None:
            out.append(f"{self.layer}: {self.parameter} is {self.declared}, but {self.value} reach it"
                       + (f" at {at}" if at else ""))
            out.append(f"  torch would raise: {self.error}")
            if self.formula.free_symbols:
                out.append(f"  {self.parameter} = {self.formula}, which is {self.value} here")
        else:
            out.append(f"{self.layer}: {self.parameter} is {self.declared}, but {self.formula} reach it")
        if self.fits is not None:
            if self.fits.is_empty:
                out.append(f"  {self.declared} is right at no input size")
                for label in ("below", "above"):
                    if label in self.fits.nearest:
                        value, where = self.fits.nearest[label]
                        out.append(f"  nearest {label}: {value} at {where}")
            else:
                out.append(f"  {self.declared} would be right at: {self.fits.summary()}")
        lazy = self.lazy_fix
        if self.right_value is not None:
            out.append(f"  fix: {self.fix}" + (f", or {lazy} if the model must accept other sizes" if lazy else ""))
        elif lazy:
            out.append(f"  fix: {lazy} ({self.parameter} depends on the input size)")
        else:
            out.append(f"  fix: {self.parameter} depends on the input size: give the input a size it fits "
                       "(above), or make the size reaching it fixed (e.g. an adaptive pool before it)")
        return out


#: the name this class had when only nn.Linear was checked
LinearFinding = LayerFinding


@dataclass
class CheckReport:
    """``ok`` when every fixed layer fits; ``findings`` lists the ones that do not. Checked
    without sizes, ``fits`` says at which sizes each fits that fits only at some."""

    findings: list[LayerFinding]
    #: the fixed layers checked (Linears, F.linear, a GRU's input_size ...: see ``Shapes.fixed``)
    linears: list[str]
    sizes: dict
    fits: dict[str, SizeSet] = field(default_factory=dict)
    #: lazy layers (nothing to check: they take their size from their first call)
    lazy: list[str] = field(default_factory=list)
    #: the fixed layers' kinds by name (``nn.Linear`` ...), for the wording
    kinds: dict[str, str] = field(default_factory=dict)
    #: what differs when the model is called without its batch dim (``_unbatched_warnings``);
    #: warnings only: ``ok`` does not depend on them
    warnings: list[str] = field(default_factory=list)
    #: views that fold the batch dim into another at the checked sizes (a finding: the model
    #: returns several outputs for one sample, or torch refuses the view): ``{step, op, rows, message}``
    views: list[dict] = field(default_factory=list)
    #: at the checked sizes, a layer's parameter torch refuses where no fixed layer above answers
    #: for it (torch's message): a Linear on a side of a Python branch that sizes reach
    #: differently on each side has no one in_features formula, nor a fix symshape writes
    refused: list[str] = field(default_factory=list)
    #: such layers, checked without sizes: named, as checked at a size only
    by_sides: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.views and not self.refused

    def to_json(self) -> dict:
        return {"ok": self.ok, "linears": list(self.linears), "lazy": list(self.lazy), "sizes": dict(self.sizes),
                "findings": [f.to_json() for f in self.findings],
                "fits_only_at": {k: v.to_json() for k, v in self.fits.items()}, "warnings": list(self.warnings),
                "views": list(self.views), "refused": list(self.refused), "by_sides": list(self.by_sides)}

    def __str__(self) -> str:
        out = [v["message"] for v in self.views]
        out += [line for f in self.findings for line in f.lines()]
        out += [f"{r} at {_at(self.sizes)}" for r in self.refused]
        for name, where in self.fits.items():
            out.append(f"{name}: fits only at {where.summary()}")
        lazy = f"{', '.join(self.lazy)} {'is' if len(self.lazy) == 1 else 'are'} lazy (in_features is set at the first call)"
        what = "Linear layers" if all(self.kinds.get(n, "nn.Linear") == "nn.Linear" for n in self.linears) else "layers"
        failed_view = any(v["rows"] is None for v in self.views)
        if not self.findings and self.linears and self.views:
            if not failed_view:
                out.append(f"the {what} fit what reaches them ({', '.join(self.linears)}), but see the view above")
        elif not self.findings and self.linears:
            names = ", ".join(self.linears)
            out.append((f"all {what} fit ({names})" if not self.fits else
                        f"every {what[:-1]} fits at some size ({names})") + (f"; {lazy}" if self.lazy else ""))
        elif not self.findings and not self.refused and not self.by_sides:
            out.append(f"nothing to check: {lazy}" if self.lazy else
                       "nothing to check: the forward calls no nn.Linear (nor another layer whose parameters fix "
                       "an input size)")
        one = len(self.by_sides) == 1
        names = ", ".join(self.by_sides)
        if self.by_sides and self.sizes and not self.refused:
            out.append(f"{names} {'fits' if one else 'fit'} what reaches {'it' if one else 'them'} at "
                       f"{_at(self.sizes)} (on the sides of a Python branch)")
        elif self.by_sides and not self.sizes:
            out.append(f"not checked for every size: {names} {'is' if one else 'are'} reached by different sizes "
                       "on the sides of a Python branch (no one in_features formula); check() answers for "
                       f"{'it' if one else 'them'} at given sizes (the sizes as keywords, or --input)")
        out += [f"note: {w}" for w in self.warnings]
        return "\n".join(out)

    __repr__ = __str__


def _kind(analysis: Shapes, fixed) -> tuple[str, nn.Module | None]:
    step = next((s for s in analysis.steps if s.name == fixed.layer), None)
    module = step.module if step is not None and step.kind == "module" else None
    if module is not None:
        return f"nn.{type(module).__name__}" if type(module).__module__.startswith("torch.nn") else \
            type(module).__name__, module
    return fixed.parameter.partition(".shape")[0], None


def _declared(analysis: Shapes) -> dict[str, tuple]:
    """The fixed layers with a declared size: name -> (Fixed, kind, module or None)."""
    return {name: (f, *_kind(analysis, f)) for name, f in analysis.fixed.items() if f.declared is not None}


def _torch_error(analysis: Shapes, fixed, module, ev, message: str) -> str:
    """The error torch raises for the fixed layer at the evaluated sizes: an nn.Linear's from its
    formula; another's as torch raises it on the CPU (its meta kernels word some checks
    differently), running the layer -- a copy of the module, or the function -- on zero-stride
    tensors of the shapes that reach it (no memory), which fails at its first check; where it
    does not raise, ``message`` (symshape's own, from the layer's rule)."""
    step = next((s for s in ev.steps if s.name == fixed.layer), None)
    if step is None:
        return message
    if isinstance(module, nn.Linear) and not is_lazy(module):
        return torch_linear_error(step.inputs[0], module.in_features, module.out_features)
    tensors = iter([torch.zeros(()).expand(shape) for shape in step.inputs if isinstance(shape, tuple)])
    try:
        with torch.no_grad():
            if module is not None:
                copy_model(module, "meta").to_empty(device="cpu")(*tensors)
            else:
                node = next((n for n in analysis.graph.nodes if n.name == _node_of(analysis, fixed.layer)), None)
                if node is None or node.op not in ("call_function", "call_method"):
                    return message
                args = torch.fx.node.map_arg(node.args, lambda n: next(tensors))
                kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: next(tensors))
                if node.op == "call_function":
                    node.target(*args, **kwargs)
                else:
                    getattr(args[0], node.target)(*args[1:], **kwargs)
    except StopIteration:
        return message
    except Exception as e:  # noqa: BLE001 - torch's error, whatever its class
        text = str(e).strip()
        return text.splitlines()[0] if text else message
    return message


def _node_of(analysis: Shapes, layer: str) -> str:
    step = next((s for s in analysis.steps if s.name == layer), None)
    return step.node if step is not None else ""


def check_linears(analysis: Shapes, sizes: dict[str, int] | None = None, unbatched: Shapes | None = None) -> CheckReport:
    """Check every fixed layer (each Linear, F.linear, a GRU's input_size ...) at ``sizes`` (all
    size names), or for every size when none are given. ``unbatched``: the same model analyzed
    without the batch dim (``analyze(..., batch=None)``), for the warnings of
    :func:`unbatched_warnings`."""
    report = _check(analysis, sizes)
    if unbatched is not None:
        report.warnings += unbatched_warnings(analysis, unbatched, sizes or {}, {f.layer for f in report.findings})
    return report


def unbatched_warnings(batched: Shapes, unbatched: Shapes, sizes: dict, skip=()) -> list[str]:
    """Where calling the model on one sample without the batch dim (``model(x)`` with
    ``x.shape == input_shape``) reaches a fixed layer with another size than a batched call
    does: the step that first merges the dims differently (an ``nn.Flatten()`` keeps dim 0, a
    ``view(x.size(0), -1)`` takes a channel count for the batch), what the layer gets, torch's
    error there, and the fix."""
    steps, seen = {}, {}
    for s in unbatched.steps:  # a module called twice is two steps of one name: matched in order
        seen[s.name] = seen.get(s.name, -1) + 1
        steps[s.name, seen[s.name]] = s
    first, seen = None, {}
    for step in batched.steps:
        seen[step.name] = seen.get(step.name, -1) + 1
        other = steps.get((step.name, seen[step.name]))
        ours, theirs = step.output, getattr(other, "output", None)
        if other is None or not _plain(ours) or not _plain(theirs):
            continue
        one = tuple(sympy.expand(d.xreplace({batched.batch: 1})) for d in ours[1:])
        if one != tuple(sympy.expand(d) for d in theirs):
            first = step
            break
    if first is None:
        return []
    out = []
    concrete = bool(sizes) or not unbatched.size_names
    at = {k: v for k, v in sizes.items() if k != BATCH}
    shape = unbatched.concrete_input(at) if concrete else batched.input_shape
    call = (f"model(x) with x.shape == {shape_str(shape)}" if batched.inputs.single else
            f"the call with inputs {unbatched.inputs}")
    ours = batched.evaluate(**at) if concrete else None
    theirs_ev = unbatched.evaluate(**at) if concrete else None
    unbatched_declared = _declared(unbatched)
    for key, f in batched.fixed.items():
        if key not in unbatched.in_features or f.declared is None or key in skip:
            continue
        mine, theirs = batched.in_features[key], unbatched.in_features[key]
        if sympy.expand(mine.xreplace({batched.batch: 1}) - theirs) == 0:
            continue
        got, want = theirs, mine.xreplace({batched.batch: 1})
        error = ""
        if concrete:
            ev = theirs_ev
            got, want = ev.in_features.get(key, theirs), ours.in_features.get(key, want)
            if got != f.declared and key in unbatched_declared:
                message = next((m.reason for m in ev.mismatches if m.step == f.layer), "")
                error = f"; torch raises: {_torch_error(unbatched, f, unbatched_declared[key][2], ev, message)}"
        fix = ("nn.Flatten(0)" if first.op == "nn.Flatten" else "flatten(x, 0)" if "flatten" in first.op else "")
        out.append(f"unbatched, {call} gives {key} {f.parameter} {got}, not {want} ({first.name}, {first.op}, "
                   f"merges other dims){error}: call model(x.unsqueeze(0))"
                   + ("" if batched.inputs.single else " (each input with a batch dim)")
                   + (f", or use {fix} if the model is meant for unbatched input" if fix else ""))
    return out


def _plain(shape) -> bool:
    return isinstance(shape, tuple) and all(isinstance(d, sympy.Expr) for d in shape)


def _check(analysis: Shapes, sizes: dict[str, int] | None = None) -> CheckReport:
    declared = _declared(analysis)
    kinds = {name: kind for name, (_, kind, _) in declared.items()}
    lazy = [name for name, f in analysis.fixed.items() if f.declared is None]
    findings = []
    merges = analysis.batch_merges()
    if sizes or not analysis.size_names:
        ev = analysis.evaluate(**(sizes or {}))
        views = merged_views(analysis, merges, ev)
        if views and ev.failure is not None and ev.failure.step in {m.step for m in merges}:
            # the view torch refuses here is the batch-folding one: a finding with its fix, not a usage error
            return CheckReport([], list(declared), dict(sizes or {}), lazy=lazy, kinds=kinds, views=views)
        layers = {f.layer for f, _, _ in declared.values()}
        if ev.failure is not None and ev.failure.index <= min(
                (i for i, s in enumerate(analysis.steps) if s.name in layers), default=len(analysis.steps)):
            raise InvalidInputSize(ev.failure.step, ev.failure.reason, ev.sizes)
        reached = {s.name for s in ev.steps}
        refused = [m.reason for m in ev.mismatches if m.step not in layers]
        for name, (f, kind, module) in declared.items():
            value = ev.in_features.get(name)
            if value is None or f.layer not in reached or value == f.declared:
                continue
            message = next((m.reason for m in ev.mismatches if m.step == f.layer), "")
            error = _torch_error(analysis, f, module, ev, message)
            findings.append(_finding(analysis, name, f, kind, module, value, error,
                                     {k: v for k, v in ev.sizes.items() if k != BATCH}))
    else:
        fitting = {}
        for name, (f, kind, module) in declared.items():
            if analysis.in_features[name] == f.declared:
                continue
            finding = _finding(analysis, name, f, kind, module, None, "", {})
            if finding.fits is not None and not finding.fits.is_empty:
                fitting[name] = finding.fits  # right at some sizes: only a concrete size can say it is wrong
                continue
            findings.append(finding)
        return CheckReport(findings, list(declared), {}, fitting, lazy, kinds, [m.text() for m in merges],
                           by_sides=_by_sides(analysis, {f.layer for f, _, _ in declared.values()}))
    return CheckReport(findings, list(declared), dict(sizes or {}), lazy=lazy, kinds=kinds, views=views,
                       refused=refused, by_sides=_by_sides(analysis, layers))


def _by_sides(analysis: Shapes, layers: set) -> list[str]:
    """The Linears the sides of a module's Python branches call that are not among the fixed
    layers (sizes reach them differently on each side), by name."""
    found: dict = {}
    for step in analysis.steps:
        where = "" if step.name == "(model)" else f"{step.name}."
        for _conditions, steps, _error, _shapes in step.sides:
            for s in steps or ():
                name = f"{where}{s.name}"
                if isinstance(s.module, nn.Linear) and not is_lazy(s.module) and name not in layers:
                    found[name] = None
    return list(found)


def merged_views(analysis: Shapes, merges: list, ev) -> list[dict]:
    """The batch-folding views (Shapes.batch_merges) that matter at the evaluated sizes: one that
    makes other than one row of one sample, or that torch refuses there."""
    out = []
    at = {k: v for k, v in ev.sizes.items() if k != BATCH}
    batch = ev.sizes.get(BATCH, 1)
    for m in merges:
        if ev.failure is not None and ev.failure.step == m.step:
            out.append({"step": m.step, "op": m.op, "rows": None,
                        "message": f"{m.step} ({m.op}) fails at {_at(at)}: torch raises: {ev.failure.reason}; it "
                                   f"folds the batch dim into -1, which works only where one sample fills whole "
                                   f"rows; fix: {m.FIX}, then the Linear takes what reaches it"})
            break
        if m.rows is None or m.index >= len(ev.steps):
            continue
        lead = ev.steps[m.index].output[0] if isinstance(ev.steps[m.index].output, tuple) else None
        if lead is None or lead == batch:
            continue
        rows = sympy.Rational(lead, batch)
        out.append({"step": m.step, "op": m.op, "rows": str(rows), "message": m.text(at, rows)})
    return out


def _at(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "this input size"


def _finding(analysis: Shapes, name: str, f, kind: str, module, value, error: str, sizes: dict) -> LayerFinding:
    linear = isinstance(module, nn.Linear)
    weight = None
    if module is None and ".shape[" in f.parameter:
        try:
            tensor = analysis.model.get_parameter(kind)
        except AttributeError:
            try:
                tensor = analysis.model.get_buffer(kind)
            except AttributeError:
                tensor = None
        weight = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None
    return LayerFinding(name, f.declared, module.out_features if linear else None,
                        linear and module.bias is not None, analysis.in_features[name], value, error,
                        _fits(analysis, name, f.declared), sizes, f.parameter, kind, weight, f.layer)


def _fits(analysis: Shapes, layer: str, value: int) -> SizeSet | None:
    if not analysis.size_names:
        return None
    try:
        return solve_flat(analysis, value, layer)
    except Unsolvable:
        return None
