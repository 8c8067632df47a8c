"""Export a model with a spec and check what torch.export did: the guards it refused the spec
over or that its program checks, each solved exactly over the spec's sizes, and the program run
beside eager torch at sizes the spec admits."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import sympy
import torch

from .dims import BATCH, as_expr, size_symbol
from .guards import GuardReader, Unparsed, floor_divisors
from .modules import copy_model
from .requirements import Requirement
from .sizes import SizeSet
from .solve import Unsolvable, solve_requirements
from .verify import MODEL_RUNS, _dtype, _mode, _sample_input

__all__ = ["ExportCheck", "GuardFinding", "check_export", "narrowing"]


@dataclass(frozen=True)
class GuardFinding:
    """A guard of the exported program that fails at sizes the spec admits (all valid: eager
    torch runs them): torch.export refuses ``sizes``, exactly."""

    guard: str
    sizes: SizeSet
    #: ``export``: torch.export raised over the guard; ``program``: the exported program checks it
    stage: str = "program"

    def to_json(self) -> dict:
        return {"guard": self.guard, "stage": self.stage, "sizes": self.sizes.to_json()}

    def left_out(self) -> str:
        """What the spec leaves out for this guard, and why."""
        if self.sizes.is_empty:
            return (f"torch.export could not prove its guard {self.guard}, which holds at every size of the spec; "
                    "the spec keeps the example's residue class, where the guard's floors are linear")
        how = "torch.export refuses them" if self.stage == "export" else "the exported program refuses them"
        return f"{self.sizes.summary()}: {how} (torch's guard: {self.guard}), though eager torch runs them"

    def __str__(self) -> str:
        if self.sizes.is_empty:
            return f"no size (torch could not prove the guard, which holds at every size of the spec: {self.guard})"
        return f"{self.sizes.summary()}   (torch's guard: {self.guard})"


@dataclass
class ExportCheck:
    """What ``torch.export.export(model, example, dynamic_shapes=spec)`` did: ``error`` (its
    message) where it raised; otherwise ``findings`` (guards that refuse sizes symshape proves
    valid, each with the exact set), ``unsolved`` (guards symshape could not translate or solve,
    with why), and ``runs``: per sampled size, whether the program ran and agreed with eager
    torch (``"agrees"``), refused it (``"refused: ..."``) or differed (``"differs: ..."``)."""

    #: the :class:`~symshape.export.ExportSpec` exported
    spec: Any
    exported: bool
    seconds: float
    error: str = ""
    #: the ExportedProgram (None where torch.export raised)
    program: Any = field(default=None, repr=False)
    #: torch.export's whole message where it raised (``error`` is its first lines)
    message: str = field(default="", repr=False)
    findings: list[GuardFinding] = field(default_factory=list)
    unsolved: list[str] = field(default_factory=list)
    runs: list[tuple[dict, str]] = field(default_factory=list)

    @property
    def refused(self) -> list[dict]:
        """Sampled sizes the spec admits (valid: eager torch runs them) that the program refused."""
        return [s for s, what in self.runs if what.startswith("refused")]

    @property
    def differs(self) -> list[dict]:
        """Sampled sizes where the program ran but its output differed from eager torch's."""
        return [s for s, what in self.runs if what.startswith("differs")]

    @property
    def works(self) -> bool:
        """Exported, and the program agreed with eager torch at every sampled size."""
        return self.exported and all(w == "agrees" for _, w in self.runs)

    @property
    def ok(self) -> bool:
        """:attr:`works`, and no guard of the program refuses a size of the spec or is unsolved."""
        return self.works and not self.findings and not self.unsolved

    def to_json(self) -> dict:
        return {"exported": self.exported, "seconds": round(self.seconds, 3), "error": self.error,
                "findings": [f.to_json() for f in self.findings], "unsolved": list(self.unsolved),
                "runs": [{"sizes": s, "result": w} for s, w in self.runs]}

    def lines(self) -> list[str]:
        if not self.exported:
            return [f"torch.export.export refused the spec: {self.error}"]
        out = ["torch.export.export with this spec: exported"]
        agree = sum(w == "agrees" for _, w in self.runs)
        out.append(f"the exported program at {len(self.runs)} size{'s' if len(self.runs) != 1 else ''} the spec "
                   f"admits: agrees with eager torch at {agree}")
        for s, what in self.runs:
            if what != "agrees":
                out.append(f"  at {', '.join(f'{k}={v}' for k, v in s.items())}: {what}")
        if self.findings:
            out.append("torch.export refuses sizes symshape proves valid (eager torch runs them):")
            out += [f"  {f}" for f in self.findings]
        for u in self.unsolved:
            out.append(f"  guard not solved by symshape: {u}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__


def _input_dims(spec) -> dict[tuple, sympy.Expr]:
    """(guard path, dim) -> the size there: the path is the input's parameter name (or
    ``args``, index for ``*args``), as torch's guards name inputs."""
    keys, named = spec._keys()
    out = {}
    n = sympy.Integer(spec.batch)
    for i, (key, (_, shape)) in enumerate(zip(keys, spec.analysis.inputs.shapes)):
        path = (key,) if named else ("args", i)
        full = (n, *shape) if spec.analysis.batched else shape
        for d, size in enumerate(full):
            out[(*path, d)] = size
    return out


def _through_roots(spec):
    """A map of requirements over sizes to the same over sizes, simplified where the spec holds:
    each size written by its root (``W = 32*(1 + u)``, ``u >= 0``: ``max(1, W // 32)`` is ``W // 32``
    there), then each root by its first size again (``u = W/32 - 1``)."""
    down, up = {}, {}
    for name, f in spec.forms.items():
        s = size_symbol(name)
        if f.root is None:
            down[s] = sympy.Integer(f.const)
            continue
        lo, _ = spec.roots[f.root]
        u = sympy.Symbol(f"_{f.root}", integer=True, nonnegative=True)
        down[s] = f.coeff * (lo + u) + f.const
        if u not in up:
            up[u] = (s - f.const) / sympy.Integer(f.coeff) - lo

    def through(r: Requirement) -> Requirement:
        def one(e):
            return as_expr(e).xreplace(down).xreplace(up)
        return Requirement(one(r.lhs), r.relation, one(r.rhs), r.reason)
    return through


def _solve_guards(spec, guards: Sequence[str]) -> tuple[list[GuardFinding], list[str]]:
    reader = GuardReader(_input_dims(spec))
    through = _through_roots(spec)
    base = spec.requirements()
    names = spec.analysis.size_names
    findings, unsolved = [], []
    for g in guards:
        try:
            boxes = []
            for conj in reader.dnf(g, holds=False):
                boxes += solve_requirements(names, [*base, *(("guard", through(r)) for r in conj)], spec.batch).boxes
        except Unparsed as e:
            unsolved.append(f"{g}  (symshape does not read: {e})")
            continue
        except (Unsolvable, ValueError, TypeError) as e:
            unsolved.append(f"{g}  ({e})")
            continue
        fails = SizeSet(names, boxes)
        if not fails.is_empty:
            findings.append(GuardFinding(g, fails))
    return findings, unsolved


def _flat(value) -> list:
    return [t for t in torch.utils._pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def _same(a, b) -> str:
    ta, tb = _flat(a), _flat(b)
    if [tuple(t.shape) for t in ta] != [tuple(t.shape) for t in tb]:
        return f"differs: output shapes {[tuple(t.shape) for t in ta]} (program) vs {[tuple(t.shape) for t in tb]}"
    for x, y in zip(ta, tb):
        if x.is_floating_point() and not torch.allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True):
            return "differs: output values"
        if not x.is_floating_point() and not torch.equal(x, y):
            return "differs: output values"
    return "agrees"


def check_export(spec, samples: int = 6, extra: Sequence[Mapping[str, int]] = ()) -> ExportCheck:
    """Export a copy of the model with ``spec`` (torch.export.export, strict=False), solve each
    guard torch recorded over the spec's sizes, and run the program beside eager torch at
    ``samples`` sizes the spec admits, the least size of each finding and ``extra`` sizes.
    Neither the model nor torch's RNG changes."""
    analysis = spec.analysis
    model = copy_model(analysis.model)
    args, kwargs = spec.example_inputs()
    t0 = time.perf_counter()
    with MODEL_RUNS, _mode(model, analysis.training), torch.random.fork_rng(devices=[]):
        try:
            ep = torch.export.export(model, args, kwargs, dynamic_shapes=spec.dynamic_shapes(), strict=False)
        except Exception as e:  # torch's own error, reported as it is
            return ExportCheck(spec, False, time.perf_counter() - t0, f"{type(e).__name__}: {_first_lines(e)}",
                               message=str(e))
        seconds = time.perf_counter() - t0
        findings, unsolved = _solve_guards(spec, list(getattr(ep, "_guards_code", None) or []))
        program = ep.module()
        todo = []
        for sizes in [*spec.members(samples), *(f.sizes.min() for f in findings), *(dict(s) for s in extra)]:
            if sizes not in todo:
                todo.append(sizes)
        runs = []
        dtype = _dtype(analysis.model)
        for sizes in todo:
            x_args, x_kwargs = _sample_input(analysis, {**sizes, BATCH: spec.batch}, dtype)
            with torch.no_grad():
                eager = model(*x_args, **x_kwargs)
                try:
                    got = program(*x_args, **x_kwargs)
                except Exception as e:
                    runs.append((sizes, f"refused: {_first_lines(e, 1)}"))
                    continue
            runs.append((sizes, _same(got, eager)))
    return ExportCheck(spec, True, seconds, findings=findings, unsolved=unsolved, runs=runs, program=ep)


def _first_lines(e: BaseException, n: int = 3) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return " ".join(lines[:n])[:400]


def _root_values(spec) -> dict[str, sympy.Expr]:
    """Each root Dim's value in terms of the first size it makes (``h = (H - 2)/6``)."""
    out = {}
    for name, f in spec.forms.items():
        if f.root is not None and f.root not in out:
            out[f.root] = (size_symbol(name) - f.const) / sympy.Integer(f.coeff)
    return out


def narrowing(spec, guards: Sequence[str], stage: str) -> tuple[list[tuple[str, Requirement]], list[GuardFinding]]:
    """Requirements that take out of ``spec`` what each refused guard fails at, and the findings.
    A guard that holds at every size of the spec (torch could not prove it) keeps the example's
    residue class modulo the guard's divisors instead. Empty: no guard could be read or used."""
    reader = GuardReader(_input_dims(spec), _root_values(spec))
    through = _through_roots(spec)
    names = spec.analysis.size_names
    out, found = [], []
    for g in guards:
        try:
            holds = reader.dnf(g, holds=True)
            boxes = []
            for conj in reader.dnf(g, holds=False):
                boxes += solve_requirements(names, [*spec.requirements(), *(("guard", through(r)) for r in conj)],
                                            spec.batch).boxes
        except (Unparsed, Unsolvable, ValueError, TypeError):
            continue
        fails = SizeSet(names, boxes)
        found.append(GuardFinding(g, fails, stage))
        if not fails.is_empty and len(holds) == 1:
            out += [(f"torch.export: {g}", r) for r in holds[0]]
        elif fails.is_empty:
            for r in holds[0] if len(holds) == 1 else []:
                m = math.lcm(*(floor_divisors(r.lhs) + floor_divisors(r.rhs)), 1)
                for sym in sorted(as_expr(r.lhs - r.rhs).free_symbols, key=str):
                    if sym.name in spec.example and m > 1:
                        f = spec.forms[sym.name]
                        step = math.lcm(m, max(f.coeff, 1))
                        out.append((f"torch.export: {g}",
                                    Requirement(sym - spec.example[sym.name] % step, "divisible", step,
                                                f"{sym.name} in the example's residue class mod {step}")))
    return out, found
