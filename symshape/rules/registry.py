"""The rule registry: one pure shape rule per layer family.

Module rules are looked up along the class hierarchy, so a subclass of ``nn.Conv2d`` uses the
Conv2d rule -- unless the subclass (or a class between it and the registered one) defines its own
``forward``; then its forward is traced instead, because the rule no longer describes it.
Function rules are keyed by the function object (``F.max_pool2d``), method rules by the tensor
method name (``view``). A rule receives a :class:`Context` and the call's arguments, where a
tensor is a :class:`~symshape.tensor.SymTensor` and a size is a sympy expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

import sympy
import torch
import torch.nn.functional as F

from ..dims import as_expr, decide, implied, rewritten
from ..errors import InvalidInputSize, SizeCases, UnsupportedArgument
from ..requirements import Requirement, Rounding, by_cases
from ..witness import differ_somewhere

__all__ = [
    "Context",
    "Fixed",
    "Rule",
    "function_rule",
    "method_rule",
    "module_rule",
    "registered",
    "rule_for_function",
    "rule_for_method",
    "rule_for_module",
]


@dataclass(frozen=True)
class Rule:
    """A registered shape rule: ``name`` is the family (``conv``), ``fn`` the implementation."""

    name: str
    fn: Callable[..., Any]
    kind: str  # "module" | "function" | "method"
    target: Any
    bound: dict = field(default_factory=dict)
    overridable: tuple[str, ...] = ("forward",)
    #: also applies when no tensor is among the arguments (torch._assert on sizes)
    on_sizes: bool = False
    #: True: the rule sets its output's layout itself (strides, or contiguous as torch allocates
    #: it); "elementwise": torch's TensorIterator layout applies (symshape.tensor.elementwise_layout);
    #: "fresh": torch allocates the output contiguous unless it is 4D or 5D, where the inputs may
    #: suggest channels last (torch.stack): as True for other ranks, else as False;
    #: False: the engine asks torch's meta kernel for a non-contiguous input's output layout
    layout: bool | str = False
    #: the CPU kernel's output memory format by input rank (3, 4, 5): "contiguous", "suggest"
    #: (channels last where the input suggests it), "guard" (contiguous, under a guard where the
    #: input's size-1 strides are not known) ...: see symshape.tensor.kernel_layout. A rule may
    #: set Context.memory_format for a call ("none": not modelled, as for a rank not listed)
    memory_format: dict = field(default_factory=dict)

    @property
    def target_name(self) -> str:
        return target_name(self.target)


_MODULE_RULES: dict[type, Rule] = {}
_FUNCTION_RULES: dict[Any, Rule] = {}
_METHOD_RULES: dict[str, Rule] = {}


def _public_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for prefix, namespace in (("torch", torch), ("F", F)):  # F last: its spelling wins
        for name in dir(namespace):
            if not name.startswith("_"):
                names[id(getattr(namespace, name))] = f"{prefix}.{name}"
    return names


_NAMES: dict[int, str] = {}


#: the prefix of the module name a model file loaded by path gets (symshape.load)
LOADED_MODULE_PREFIX = "_symshape_model_"


def target_name(target: Any) -> str:
    """``nn.Conv2d``, ``F.max_pool2d``, ``torch.flatten``, ``Tensor.view``, ``operator.add``."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    if isinstance(target, type):
        mod = target.__module__.removeprefix(LOADED_MODULE_PREFIX)
        if mod.startswith("torch.nn.modules"):
            return f"nn.{target.__qualname__}"
        return f"{mod}.{target.__qualname__}"
    if not _NAMES:
        _NAMES.update(_public_names())
    known = _NAMES.get(id(target))
    if known is not None:
        return known
    name = getattr(target, "__name__", repr(target))
    mod = getattr(target, "__module__", None) or ""
    if mod in ("_operator", "operator"):
        return f"operator.{name}"
    return f"{mod}.{name}" if mod else name


def module_rule(*classes: type, overridable: tuple[str, ...] = ("forward",), layout: bool | str = False,
                memory_format: dict | None = None, **bound):
    """Register ``fn(ctx, module, *args, **kwargs)`` for ``classes`` and their subclasses.
    ``layout``: the rule sets its output's layout; ``memory_format``: the kernel's (see :class:`Rule`)."""

    def deco(fn):
        for cls in classes:
            _MODULE_RULES[cls] = Rule(fn.__name__, fn, "module", cls, dict(bound), overridable, layout=layout,
                                      memory_format=dict(memory_format or {}))
        return fn

    return deco


def function_rule(*functions: Any, on_sizes: bool = False, layout: bool | str = False,
                  memory_format: dict | None = None, **bound):
    """Register ``fn(ctx, *args, **kwargs)`` for calls of ``functions``; ``bound`` is passed too.
    ``on_sizes``: the rule also takes calls without a tensor argument; ``layout``,
    ``memory_format``: see :class:`Rule`."""

    def deco(fn):
        for f in functions:
            _FUNCTION_RULES[f] = Rule(fn.__name__, fn, "function", f, dict(bound), on_sizes=on_sizes, layout=layout,
                                      memory_format=dict(memory_format or {}))
        return fn

    return deco


def method_rule(*names: str, layout: bool | str = False, **bound):
    """Register ``fn(ctx, tensor, *args, **kwargs)`` for the tensor methods ``names``;
    ``layout``: see :class:`Rule`."""

    def deco(fn):
        for n in names:
            _METHOD_RULES[n] = Rule(fn.__name__, fn, "method", n, dict(bound), layout=layout)
        return fn

    return deco


def rule_for_module(module: torch.nn.Module) -> Rule | None:
    """The rule of the nearest registered class in ``type(module)``'s MRO, or None.

    None also when a class before the registered one overrides a method the rule stands for
    (``forward`` by default): the module does something else, so it is traced, not guessed.
    """
    seen: list[type] = []
    for cls in type(module).__mro__:
        rule = _MODULE_RULES.get(cls)
        if rule is not None:
            if any(name in vars(c) for c in seen for name in rule.overridable):
                return None
            return rule
        seen.append(cls)
    return None


def rule_for_function(fn: Any) -> Rule | None:
    try:
        return _FUNCTION_RULES.get(fn)
    except TypeError:  # unhashable target
        return None


def rule_for_method(name: str) -> Rule | None:
    return _METHOD_RULES.get(name)


def registered() -> list[Rule]:
    """Every registered rule, modules first, in registration order."""
    return [*_MODULE_RULES.values(), *_FUNCTION_RULES.values(), *_METHOD_RULES.values()]


def _holds_where(req: Requirement, facts: tuple) -> bool:
    """Whether ``req`` holds wherever ``facts`` do, as their multiples rewrite it
    (:func:`symshape.dims.rewritten`): decided at every size once rewritten, or implied."""
    lhs, rhs = rewritten(req.lhs, facts), rewritten(req.rhs, facts)
    if lhs == req.lhs and rhs == req.rhs:
        return False
    other = Requirement(lhs, req.relation, rhs, req.reason, req.kind)
    if other.decided() is True:
        return True
    proof = other.proven_by()
    return proof is not None and implied(facts, proof)


@dataclass(frozen=True)
class Fixed:
    """A size a layer's parameters fix: ``reaching`` (the size that reaches the layer, a formula
    of the input sizes) must equal ``declared`` (None: a lazy layer, which takes what arrives).
    ``parameter`` names it as the layer's constructor does (``in_features``, ``input_size``,
    ``embed_dim``, ``normalized_shape[-1]``, ``in_channels``); ``weight``: for a function
    (``F.linear``, ``@``, ``addmm``), the position and keyword of the tensor whose shape fixes
    it -- a fixed layer only where that tensor is one of the model's parameters or buffers.
    ``always``: listed even where the size is the same at every input size and right (as a
    Linear's in_features is); others only where the size depends on the input, or is wrong."""

    parameter: str
    reaching: sympy.Expr
    declared: int | None
    weight: tuple[int, str] | None = None
    always: bool = False
    #: the step's name (set by the engine)
    layer: str = ""
    #: where the size is: the dim of the layer's ``input``-th tensor argument (for verify)
    input: int = 0
    dim: int = -1
    #: ``parameter`` as the rule named it (``Requirement.fixes`` of its declared requirement)
    tag: str = ""
    #: which call of the layer it is (0: the first; a module called twice fixes a size per call)
    call: int = 0


class Context:
    """What a rule sees besides its arguments: the step it computes and its requirements."""

    def __init__(self, step: str, op: str, node):
        #: ``node``: the fx node's text, or a function that writes it (fx's ``format_node``),
        #: called only where an error shows it
        self.step, self.op, self._node = step, op, node
        self.requirements: list[Requirement] = []
        #: the sizes this layer's parameters fix (see :meth:`fixes`), the layer's own first
        self.fixed: list[Fixed] = []
        self.roundings: list[Rounding] = []
        self.derivations: list = []
        #: (size, limit, what): sizes past which symshape does not state this op's shapes (see
        #: :meth:`exact_below`)
        self.bounds: list[tuple] = []
        #: set by a rule whose kernel's memory format depends on its arguments (see Rule.memory_format)
        self.memory_format: str | None = None
        #: conditions that hold wherever this step runs (the answers of the side of a Python
        #: branch it is on): a requirement they imply is no requirement, sizes they make equal are
        self.facts: tuple = ()
        #: what the earlier steps' requirements say of single sizes (``floor((H + 1)/2) >= 2``):
        #: torch runs this step only where they hold, so a rule may use them to drop a case that
        #: no size reaching it has (see :meth:`proves`), and a check of its own they imply (it
        #: changes no valid size, and the earlier check is the one that fails first)
        self.earlier: tuple = ()
        #: the case of the analysis this step is in (``Eq(N, 1)`` or ``Ne(N, 1)``, see
        #: :meth:`size_case`); also among ``facts``
        self.cases: tuple = ()
        #: the tensors it was given that the call wrote into (a module run whole or traced by
        #: sides that changes its input in place), each with whether what it wrote may depend on
        #: the sizes
        self.wrote: list[tuple] = []

    @property
    def node(self) -> str:
        if callable(self._node):
            self._node = self._node()
        return self._node

    def size_case(self, size, what: str, changes: str = "the rank") -> bool:
        """Whether ``size`` is 1 here, for a rule whose output's structure depends on it (the
        rank after a squeeze): proved; or the case of the analysis this step is in, recorded as a
        requirement of kind ``case`` (the sizes this case covers); else :class:`SizeCases`, and
        ``analyze()`` analyzes the cases ``size == 1`` and ``size != 1`` each on its own."""
        size = as_expr(size)
        for holds, relation in ((sympy.Eq(size, 1), "=="), (sympy.Ne(size, 1), "!=")):
            if holds in self.cases:
                other = "!=" if relation == "==" else "=="
                self.requirements.append(Requirement(
                    size, relation, 1, f"{what}: this case of the analysis covers {size} {relation} 1; at {{lhs}} "
                    f"ask the analysis whose case is {size} {other} 1 (Analysis.cases)", "case"))
                return relation == "=="
        if self.proves(sympy.Eq(size, 1)):
            return True
        if self.proves(sympy.Ne(size, 1)) or self.proves(sympy.Ge(size, 2)):
            return False
        raise SizeCases(self.op, self.step, self.node,
                        f"{what}, whose size {size} depends on the input (1 or not changes {changes})", size)

    def proves(self, cond) -> bool:
        """Whether ``cond`` (a relation of sizes) holds wherever torch runs this step: at every
        size (symshape.dims.decide), or as the side's facts and the earlier requirements imply
        (:func:`symshape.dims.implied`, and their multiples: :func:`symshape.dims.rewritten`)."""
        if decide(cond) is True:
            return True
        known = self.facts + self.earlier
        if not known:
            return False
        if implied(known, cond):
            return True
        other = rewritten(cond, known)
        return other is sympy.true or (other != cond and isinstance(other, sympy.Rel)
                                       and (decide(other) is True or implied(known, other)))

    def settled(self, expr) -> sympy.Expr:
        """``expr`` with each ``Min`` and ``Max`` of two whose order this step's facts and the
        earlier requirements prove (:meth:`proves`) replaced by the one it is: a slice ``[:n]``
        of a table of 49 rows is ``n`` long where the side's facts make ``n``, the tokens of a
        window clamped to a small image (``floor((H + 6)/8)*floor((W + 6)/8)``), at most 49."""
        expr = as_expr(expr)
        if not (self.facts or self.earlier):
            return expr
        for _ in range(16):
            for m in expr.atoms(sympy.Min, sympy.Max):
                if len(m.args) != 2:
                    continue
                a, b = m.args
                if self.proves(sympy.Le(a, b, evaluate=False)):
                    pick = a if isinstance(m, sympy.Min) else b
                    break
                if self.proves(sympy.Le(b, a, evaluate=False)):
                    pick = b if isinstance(m, sympy.Min) else a
                    break
            else:
                return expr
            expr = expr.xreplace({m: pick})
        return expr

    def same(self, a, b) -> bool:
        """Whether two sizes are equal wherever this step runs: structurally, or as the facts
        and the earlier requirements imply (symshape.dims.implied)."""
        a, b = as_expr(a), as_expr(b)
        if sympy.expand(a - b) == 0:
            return True
        known = self.facts + self.earlier
        if not known or differ_somewhere(known, a, b):  # (a size where they differ: the quick "no")
            return False
        return implied(known, sympy.Eq(a, b, evaluate=False)) \
            or sympy.expand(rewritten(a, known) - rewritten(b, known)) == 0

    def require(self, lhs, relation: str, rhs, reason: str, kind: str = "size",
                unless: Requirement | None = None, backend_dependent: str = "", data_dependent: str = "",
                fixes: str = "", meta_unchecked: str = "", condition: bool = False) -> None:
        req = Requirement(lhs, relation, rhs, reason, kind, unless, backend_dependent, data_dependent, fixes,
                          meta_unchecked, condition)
        if req.decided() is True:
            return
        proof = req.proven_by()
        if self.facts and proof is not None and implied(self.facts, proof):
            return  # holds wherever this step runs
        if self.facts and unless is None and _holds_where(req, self.facts):
            return  # (as the facts' multiples show)
        try:
            self.requirements += by_cases(req)  # a size defined by cases: one requirement a case
        except ValueError:  # a case's condition that is not a relation of sizes: kept whole
            self.requirements.append(req)

    def at_least(self, lhs, bound, reason: str) -> None:
        """torch raises unless ``lhs >= bound``; ``reason`` may use ``{lhs}`` and ``{rhs}``."""
        self.require(lhs, ">=", bound, reason)

    def equal(self, lhs, value, reason: str, kind: str = "size") -> None:
        self.require(lhs, "==", value, reason, kind)

    def fixes(self, reaching, declared, parameter: str, reason: str, *, weight: tuple[int, str] | None = None,
              always: bool = False, input: int = 0, dim: int = -1) -> None:
        """The layer's ``parameter`` fixes the size ``reaching`` to ``declared`` (None: lazy): a
        ``declared`` requirement (analysis goes on past a wrong value, so later layers are
        checked too), and an entry of the analysis's fixed layers, which ``check``, ``formula``,
        ``solve`` and ``explain`` answer for (see :class:`Fixed`)."""
        reaching = as_expr(reaching)
        if declared is not None:
            declared = as_expr(declared)
            self.require(reaching, "==", declared, reason, "declared", fixes=parameter)
            if not declared.is_Integer:  # a size computed in the forward: not a parameter's
                return
            declared = int(declared)
        self.fixed.append(Fixed(parameter, reaching, declared, weight, always, input=input, dim=dim, tag=parameter))

    def divisible(self, lhs, divisor, reason: str) -> None:
        self.require(lhs, "divisible", divisor, reason)

    def derive(self, derivation) -> None:
        """Record how one dim was sized (see :mod:`symshape.derivations`), and its rounding."""
        self.derivations.append(derivation)
        rd = derivation.rounding
        if rd is None or (rd.numerator.is_Integer and rd.divisor and int(rd.numerator) % rd.divisor == 0):
            return  # exact at every size
        self.roundings.append(rd)

    def exact_below(self, size, limit: int, what: str) -> None:
        """The shapes this rule computes are torch's only while ``size < limit`` (a kernel that
        checks a size in 32-bit arithmetic): past it, evaluating the analysis raises
        BoundExceeded naming ``what``, instead of a number torch may not give. The inverse
        solver states sizes below such bounds."""
        self.bounds.append((as_expr(size), int(limit), what))

    def never(self, reason: str) -> None:
        """torch raises at every size (a static misconfiguration): ``analyze()`` refuses the model
        with this reason, as it does for any check that fails whatever the sizes are."""
        self.requirements.append(Requirement(0, "never", 0, reason))

    def refuse(self, reason: str) -> NoReturn:
        """For failures that leave no output shape at all (wrong rank): raise at analysis time."""
        raise InvalidInputSize(self.step, reason)

    def unsupported(self, detail: str) -> NoReturn:
        """The rule does not model these arguments (the op itself has a rule): refuse, naming it."""
        raise UnsupportedArgument(self.op, self.step, self.node, detail)
