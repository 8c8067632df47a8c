"""``Analysis.check``: every Linear whose in_features does not fit, before anything runs.

For each wrong Linear the report gives the error torch would raise, the value that reaches the
layer and its formula, the input sizes at which the declared value would be right (or the
nearest values when none), and the fix. The analysis does not stop at a wrong Linear: it goes on
with the layer's out_features, so later Linears are checked too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy
import torch.nn as nn

from .modules import is_lazy
from .dims import BATCH
from .errors import InvalidInputSize
from .evaluation import Shapes
from .quasi import Unsolvable
from .sizes import SizeSet
from .solve import solve_flat

__all__ = ["CheckReport", "LinearFinding", "check_linears", "torch_linear_error"]


def torch_linear_error(input_shape: tuple, in_features: int, out_features: int) -> str:
    """The message torch raises for a Linear whose in_features does not match its input."""
    rows = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
    return (f"mat1 and mat2 shapes cannot be multiplied "
            f"({rows}x{input_shape[-1]} and {in_features}x{out_features})")


@dataclass
class LinearFinding:
    """One Linear whose declared in_features does not fit what reaches it."""

    layer: str
    declared: int
    out_features: int
    bias: bool
    formula: sympy.Expr  # what reaches the layer, as a formula of the input size
    value: int | None  # ... at the checked sizes (None when checking symbolically)
    error: str  # the RuntimeError torch would raise ("" when checking symbolically)
    fits: SizeSet | None  # the sizes at which the declared value would be right
    sizes: dict = field(default_factory=dict)

    @property
    def fix(self) -> str:
        bias = "" if self.bias else ", bias=False"
        value = self.value if self.value is not None else self.formula
        return f"nn.Linear({value}, {self.out_features}{bias})"

    @property
    def lazy_fix(self) -> str:
        bias = "" if self.bias else ", bias=False"
        return f"nn.LazyLinear({self.out_features}{bias})"

    def to_json(self) -> dict:
        return {"layer": self.layer, "declared": self.declared, "in_features": str(self.formula),
                "value": self.value, "error": self.error or None, "sizes": dict(self.sizes),
                "fits": self.fits.to_json() if self.fits is not None else None,
                "fix": self.fix if self.value is not None else self.lazy_fix}

    def lines(self) -> list[str]:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        out = []
        if self.value is not None:
            out.append(f"{self.layer}: in_features is {self.declared}, but {self.value} reach it"
                       + (f" at {at}" if at else ""))
            out.append(f"  torch would raise: {self.error}")
            if self.formula.free_symbols:
                out.append(f"  in_features = {self.formula}, which is {self.value} here")
        else:
            out.append(f"{self.layer}: in_features is {self.declared}, but {self.formula} reach it")
        if self.fits is not None:
            if self.fits.is_empty:
                out.append(f"  {self.declared} is right at no input size")
                for label in ("below", "above"):
                    if label in self.fits.nearest:
                        value, where = self.fits.nearest[label]
                        out.append(f"  nearest {label}: {value} at {where}")
            else:
                out.append(f"  {self.declared} would be right at: {self.fits.summary()}")
        if self.value is not None:
            out.append(f"  fix: {self.fix}, or {self.lazy_fix} if the model must accept other sizes")
        else:
            out.append(f"  fix: {self.lazy_fix} (in_features depends on the input size)")
        return out


@dataclass
class CheckReport:
    """``ok`` when every Linear fits; ``findings`` lists the ones that do not. Checked without
    sizes, ``fits`` says at which sizes each fixed Linear fits."""

    findings: list[LinearFinding]
    linears: list[str]
    sizes: dict
    fits: dict[str, SizeSet] = field(default_factory=dict)
    #: LazyLinear layers (nothing to check: they take in_features from their first call)
    lazy: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"ok": self.ok, "linears": list(self.linears), "lazy": list(self.lazy), "sizes": dict(self.sizes),
                "findings": [f.to_json() for f in self.findings],
                "fits_only_at": {k: v.to_json() for k, v in self.fits.items()}}

    def __str__(self) -> str:
        out = [line for f in self.findings for line in f.lines()]
        for name, where in self.fits.items():
            out.append(f"{name}: fits only at {where.summary()}")
        lazy = f"{', '.join(self.lazy)} {'is' if len(self.lazy) == 1 else 'are'} lazy (in_features is set at the first call)"
        if self.ok and self.linears:
            names = ", ".join(self.linears)
            out.append((f"all Linear layers fit ({names})" if not self.fits else
                        f"every Linear fits at some size ({names})") + (f"; {lazy}" if self.lazy else ""))
        elif self.ok:
            out.append(f"nothing to check: {lazy}" if self.lazy else "nothing to check: the forward calls no nn.Linear")
        return "\n".join(out)

    __repr__ = __str__


def _declared(analysis: Shapes) -> dict[str, nn.Linear]:
    out = {}
    for step in analysis.steps:
        m = step.module
        if step.name in analysis.in_features and isinstance(m, nn.Linear):
            if not is_lazy(m):
                out.setdefault(step.name, m)
    return out


def check_linears(analysis: Shapes, sizes: dict[str, int] | None = None) -> CheckReport:
    """Check every Linear at ``sizes`` (all size names), or for every size when none are given."""
    linears = _declared(analysis)
    lazy = [name for name in analysis.in_features if name not in linears]
    findings = []
    if sizes or not analysis.size_names:
        ev = analysis.evaluate(**(sizes or {}))
        if ev.failure is not None and ev.failure.index <= min(
                (i for i, s in enumerate(analysis.steps) if s.name in linears), default=len(analysis.steps)):
            raise InvalidInputSize(ev.failure.step, ev.failure.reason, ev.sizes)
        inputs = {s.name: s.inputs[0] for s in ev.steps if s.name in linears}
        for name, m in linears.items():
            value = ev.in_features.get(name)
            if value is None or name not in inputs or value == m.in_features:
                continue
            fits = _fits(analysis, name, m.in_features)
            error = torch_linear_error(inputs[name], m.in_features, m.out_features)
            findings.append(LinearFinding(name, m.in_features, m.out_features, m.bias is not None,
                                          analysis.in_features[name], value, error, fits,
                                          {k: v for k, v in ev.sizes.items() if k != BATCH}))
    else:
        fitting = {}
        for name, m in linears.items():
            formula = analysis.in_features[name]
            if formula == m.in_features:
                continue
            fits = _fits(analysis, name, m.in_features)
            if fits is not None and not fits.is_empty:
                fitting[name] = fits  # right at some sizes: only a concrete size can say it is wrong
                continue
            findings.append(LinearFinding(name, m.in_features, m.out_features, m.bias is not None,
                                          formula, None, "", fits))
        return CheckReport(findings, list(linears), {}, fitting, lazy)
    return CheckReport(findings, list(linears), dict(sizes or {}), lazy=lazy)


def _fits(analysis: Shapes, layer: str, value: int) -> SizeSet | None:
    if not analysis.size_names:
        return None
    try:
        return solve_flat(analysis, value, layer)
    except Unsolvable:
        return None
