"""Propagate symbolic shapes through a traced graph, one rule per op, recording every step."""

from __future__ import annotations

import operator
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch
import torch.fx
import torch.nn as nn

from .dims import always_divisible, as_expr, canonical, floor_div
from .errors import NotASize, SymshapeError, UnsupportedArgument, UnsupportedOperation
from .requirements import Requirement, Rounding
from .rules import Context, Rule, rule_for_function, rule_for_method, rule_for_module, target_name
from .tensor import SymTensor
from .trace import Traced, scope_of

__all__ = ["Propagation", "Propagator", "Step", "propagate"]


@dataclass(frozen=True)
class Step:
    """One executed tensor op: where it ran, what it is, its input shapes and output shape."""

    name: str  # module qualified name, or the traced node name for functions and methods
    op: str  # nn.Conv2d, F.max_pool2d, Tensor.view ...
    inputs: tuple  # input shapes (tuples of sympy expressions)
    output: Any  # output shape, or a tuple of shapes for ops returning several tensors
    rule: str  # the rule family that computed it
    requirements: tuple[Requirement, ...] = ()
    node: str = ""  # the fx node name
    kind: str = "module"  # module | function | method
    module: nn.Module | None = field(default=None, repr=False, compare=False)
    roundings: tuple[Rounding, ...] = ()  # the divisions the op rounds (exact where they divide)
    derivations: tuple = ()  # how each dim was sized (symshape.derivations), for explanations
    #: the op returns a number of tensors that depends on the size (chunk): missing ones show as empty
    variable_count: bool = False


@dataclass
class Propagation:
    steps: list[Step]
    output: Any
    in_features: dict[str, sympy.Expr]
    #: op name -> rule family, for every op a rule handled (size queries included)
    rules_applied: dict[str, str] = field(default_factory=dict)


def _shapes(value: Any):
    if isinstance(value, SymTensor):
        return value.shape
    if isinstance(value, (list, tuple)):
        return tuple(_shapes(v) for v in value)
    return value


def _tensors_in(value: Any) -> list[SymTensor]:
    if isinstance(value, SymTensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


def _has_tensor(value: Any) -> bool:
    return bool(_tensors_in(value))


def _canonical_value(value: Any) -> Any:
    if isinstance(value, SymTensor):
        return value.with_shape(canonical(s) for s in value.shape)
    if isinstance(value, tuple):
        items = [_canonical_value(v) for v in value]
        return type(value)(items, value.requires, value.dim) if hasattr(value, "requires") else tuple(items)
    return value


_COMPARISONS = {operator.eq: sympy.Eq, operator.ne: sympy.Ne, operator.ge: sympy.Ge, operator.gt: sympy.Gt,
                operator.le: sympy.Le, operator.lt: sympy.Lt}


def _number(v):
    """A size or a plain number for a comparison (never parsed: a float converts exactly)."""
    if isinstance(v, float):
        return sympy.Rational(Fraction(v).numerator, Fraction(v).denominator)
    return as_expr(v, "a compared value")


def _size_arithmetic(target, args, kwargs, node: torch.fx.Node, where: str):
    """Evaluate a call on sizes (no tensor involved): ``x.size(0) * 4``, ``shape[1:]`` ..."""
    if target is operator.floordiv:
        a, b = args
        if all(isinstance(v, (int, sympy.Integer)) for v in (a, b)):
            return int(a) // int(b)
        if isinstance(b, (int, sympy.Integer)) and int(b) > 0:
            return canonical(floor_div(a, int(b)))
        if always_divisible(a, b):  # e.g. x.numel() // x.size(0): the batch size cancels exactly
            return canonical(as_expr(a) / as_expr(b))
        raise UnsupportedOperation(
            "operator.floordiv", where, node.format_node(),
            f"{a} // {b}: symshape divides sizes by a positive int, or exactly",
        )
    if target in _COMPARISONS and any(isinstance(v, sympy.Basic) and not v.is_number for v in args):
        # a comparison of sizes stays symbolic, for torch._assert to turn into a requirement
        return _COMPARISONS[target](*(_number(v) for v in args))
    if target is operator.truediv and any(isinstance(v, sympy.Basic) for v in args):
        raise UnsupportedOperation(
            "operator.truediv", where, node.format_node(),
            "dividing sizes with / gives a float, which view/reshape reject; use //",
        )
    try:
        return target(*args, **kwargs)
    except Exception as e:
        raise UnsupportedOperation(target_name(target), where, node.format_node(), f"{type(e).__name__}: {e}") from e


def _plain_getattr(obj: Any, name: str) -> Any:
    """``getattr`` that reads a module's parameters, buffers and children from their dicts:
    while fx traces, ``nn.Module.__getattr__`` is patched to make proxies."""
    if isinstance(obj, nn.Module):
        for table in ("_parameters", "_buffers", "_modules"):
            d = obj.__dict__.get(table, {})
            if name in d:
                return d[name]
    return getattr(obj, name)


def _attr(root: nn.Module, target: str, node: torch.fx.Node):
    obj: Any = root
    for part in target.split("."):
        obj = _plain_getattr(obj, part)
    if isinstance(obj, torch.nn.parameter.UninitializedParameter) or isinstance(obj, torch.nn.parameter.UninitializedBuffer):
        raise UnsupportedOperation("get_attr", target, node.format_node(), "an uninitialized lazy parameter has no shape yet")
    if isinstance(obj, torch.Tensor):
        return SymTensor(tuple(obj.shape))
    return obj


class Propagator:
    """Computes each node's value (a SymTensor, a size, a tuple ...) as the nodes come, in
    execution order: after a trace (:func:`propagate`), or while torch.fx traces, so the tracer
    can answer questions about ranks and sizes (``len(x.shape)``, ``for s in x.size()``).
    """

    def __init__(self, root: nn.Module, x: SymTensor):
        self.root = root
        self.x = x
        self.env: dict[torch.fx.Node, Any] = {}
        self.steps: list[Step] = []
        self.in_features: dict[str, sympy.Expr] = {}
        self.rules_applied: dict[str, str] = {}
        self.output: Any = None
        self._first_input = True

    def result(self) -> Propagation:
        return Propagation(self.steps, self.output, self.in_features, self.rules_applied)

    def _load(self, a):
        return torch.fx.node.map_arg(a, lambda n: self.env[n])

    def feed(self, node: torch.fx.Node) -> None:
        """Compute ``node``'s value from its inputs' (already fed). Raises UnsupportedOperation
        for an op without a rule."""
        env = self.env
        if node.op == "placeholder":
            if self._first_input:
                env[node], self._first_input = self.x, False
            elif node.args:
                env[node] = node.args[0]
            else:
                raise SymshapeError(
                    f"forward takes a second input {node.target!r} without a default; symshape "
                    "analyzes models called with one tensor"
                )
            return
        if node.op == "get_attr":
            env[node] = _attr(self.root, node.target, node)
            return
        if node.op == "output":
            self.output = self._load(node.args[0])
            return
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        scope = scope_of(node)
        module = None
        if node.op == "call_module":
            module = self.root.get_submodule(node.target)
            name, op, kind = node.target or "(model)", target_name(type(module)), "module"
            rule = rule_for_module(module)
            call_args = (module, *args)
        else:
            name = f"{scope}.{node.name}" if scope else node.name
            if node.op == "call_function":
                op, kind = target_name(node.target), "function"
                rule = rule_for_function(node.target)
                if not _has_tensor((args, kwargs)) and not (rule is not None and rule.on_sizes):
                    env[node] = _size_arithmetic(node.target, args, kwargs, node, scope or "(model)")
                    return
            else:
                op, kind = f"Tensor.{node.target}", "method"
                if not isinstance(args[0], SymTensor):
                    env[node] = _size_arithmetic(
                        lambda s, *a, **k: getattr(s, node.target)(*a, **k), args, kwargs, node, scope or "(model)"
                    )
                    return
                rule = rule_for_method(node.target)
            call_args = args
        if rule is None:
            raise UnsupportedOperation(op, name, node.format_node())
        ctx = Context(name, op, node.format_node())
        value = _apply(rule, ctx, call_args, kwargs)
        self.rules_applied[op] = rule.name
        value = _canonical_value(value)
        env[node] = value
        if _has_tensor(value):
            inputs = tuple(t.shape for t in _tensors_in((args, kwargs)))
            self.steps.append(Step(ctx.step, op, inputs, _shapes(value), rule.name,
                                   tuple(ctx.requirements), node.name, kind, module, tuple(ctx.roundings),
                                   tuple(ctx.derivations), bool(getattr(value, "requires", ()))))
            if ctx.linear_input is not None and kind == "module":
                self.in_features.setdefault(name, canonical(ctx.linear_input))
        elif ctx.requirements:
            # a size query with a requirement (rare): attach it to a step so it is still checked
            self.steps.append(Step(ctx.step, op, tuple(t.shape for t in _tensors_in(args)), (), rule.name,
                                   tuple(ctx.requirements), node.name, kind, module))


def propagate(traced: Traced, x: SymTensor) -> Propagation:
    """Run the graph on symbolic shapes. Raises UnsupportedOperation for an op without a rule.

    A graph traced with a propagator (``traced.propagation``) is not run again.
    """
    if traced.propagation is not None:
        return traced.propagation
    prop = Propagator(traced.root, x)
    for node in traced.graph.nodes:
        prop.feed(node)
    return prop.result()


def _apply(rule: Rule, ctx: Context, args, kwargs):
    try:
        return rule.fn(ctx, *args, **kwargs, **rule.bound)
    except (NotASize, sympy.SympifyError) as e:
        # a string, float or object where a size belongs (a module attribute, an argument):
        # refused with the layer's name, never parsed
        raise UnsupportedArgument(ctx.op, ctx.step, ctx.node, str(e)) from e
    except TypeError as e:
        # The call does not fit the signature the rule implements: refuse rather than guess.
        if e.__traceback__ is not None and e.__traceback__.tb_next is None:
            raise UnsupportedArgument(ctx.op, ctx.step, ctx.node, f"unexpected arguments: {e}") from e
        # an argument or module attribute of a type the rule cannot compute with (a string
        # kernel size): the layer is named, the value never evaluated
        raise UnsupportedArgument(ctx.op, ctx.step, ctx.node, f"an argument of an unexpected type: {e}") from e
