"""Propagate symbolic shapes through a traced graph, one rule per op, recording every step."""

from __future__ import annotations

from collections import Counter
import math
import operator
import types
from functools import lru_cache, partial
from dataclasses import dataclass, field, fields, replace
from typing import Any

import sympy
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from .arithmetic import SIZE_MODULES, by_a_size, size_arithmetic
from .bounds import leaf
from .dims import (FloorDiv, SizeRatio, as_expr, canonical, exact_quotient, positive_shares, split_product_equality,
                   decide, implied, smallest_value, smallest_value_where)
from .errors import (InvalidArgument, InvalidInputSize, NotASize, ObjectArgument, SizeCases, UnsupportedArgument, UnsupportedOperation,
                     UnsupportedWhereMetaDiffers, UntraceableModel)
from .requirements import Requirement, Rounding
from . import dtypes, ranges
from .dtypes import NOT_PROBED
from .meta import MetaRefusal, Side, merge_sides, merged_writes, run_meta, storage_key, substitute
from .modules import attribute_at, attributes_of, copy_model, is_lazy_parameter, module_fingerprint, positional_call
from .rules import Context, Fixed, Rule, rule_for_function, rule_for_method, rule_for_module, target_name
from .rules.common import require_layout
from .rules.reshape import view_shape
from .rules.pointwise import DTYPE_BY_RULE
from .rules.strides import laid_out, resolved, with_source
from .records import Record
from .tensor import Pieces, Repeated, SymTensor, elementwise_layout, has_tensor, kernel_layout, loosened, shapes_of, tensors_in, tuple_like
from .trace import MAX_SIDES, REPEAT, REPEAT_CHECK, ModelRaised, Path, SizeBranch, is_dynamic, library_function, scope_of, trace, user_line

__all__ = ["Propagation", "Propagator", "Step"]


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
    #: a module traced by the sides of its Python branches: per side, its conditions, the steps
    #: it ran (None where the model's code or torch raised there), that message, and its output
    sides: tuple = field(default=(), compare=False)
    #: (size, limit, what): past ``limit`` symshape does not state this step's shapes (Context.exact_below)
    bounds: tuple = ()
    #: a step of a module call that repeats an equal earlier call (Propagator.repeat_key): the name of
    #: the step it is a copy of, which the proof checked step by step ("" for a step computed here)
    copy_of: str = ""


@dataclass
class Propagation:
    steps: list[Step]
    output: Any
    in_features: dict[str, sympy.Expr]
    #: op name -> rule family, for every op a rule handled (size queries included)
    rules_applied: dict[str, str] = field(default_factory=dict)
    #: the fixed layers (keys as in ``in_features``): what each layer's parameter is, and its value
    fixed: dict[str, Fixed] = field(default_factory=dict)
    #: the inputs an op wrote into (Propagator.wrote)
    wrote: dict = field(default_factory=dict)


def _single_size_facts(requirements, known=()) -> dict:
    """The plain ``>=`` and ``==`` size requirements of one size each, as relations (keys of a
    dict: an ordered set): what torch has checked of the sizes by then. An equality of products
    is one per size where each share is (split_product_equality), with ``known`` (single-size
    facts torch checked before these) and the facts found so far to show a share is not 0."""
    out = {}
    for r in requirements:
        if not (r.kind == "size" and r.unless is None and not r.backend_dependent and not r.data_dependent
                and r.relation in (">=", "==")):
            continue
        facts = _size_facts(r.lhs, r.relation, r.rhs)
        if r.relation == "==" and (known or out) and not any(isinstance(f, sympy.Eq) for f in facts):
            facts = split_product_equality(r.lhs, r.rhs, (*known, *out)) or facts
        out.update(dict.fromkeys(facts))
    return out


@lru_cache(maxsize=8192)
def _size_facts(lhs, relation: str, rhs) -> tuple:
    """:func:`_single_size_facts` of one requirement ``lhs (relation) rhs``, cached: a stage's
    blocks, and the sides of a branch, check the same sizes."""
    if len((lhs - rhs).free_symbols) == 1:
        # (unevaluated: a requirement kept is one its rule did not settle, and sympy's attempt
        # asks its assumptions of each floor -- a tenth of VGG's analysis, to find nothing)
        return ((sympy.Ge if relation == ">=" else sympy.Eq)(lhs, rhs, evaluate=False),)
    if relation == "==":
        return tuple(split_product_equality(lhs, rhs) or positive_shares(lhs, rhs))
    return ()


def _on_every_side(sides: list[Side]) -> list:
    """The single-size facts (see :func:`_single_size_facts`) that every side that returns
    requires: wherever the module returns a value, they hold."""
    returning = [_single_size_facts(s.requirements) for s in sides if not s.error]
    return [f for f in returning[0] if all(f in other for other in returning[1:])] if returning else []


class _Unhashable:
    """Stands for a value that cannot be a key: never equal to anything, so never found."""

    __hash__ = None


def _hashable(value: Any) -> Any:
    """``value`` with its lists and dicts as tuples, each plain value with its type (``True`` and
    ``1`` differ to the module's Python)."""
    if isinstance(value, Pieces):  # its pieces, and when each exists
        return ("Pieces", tuple(_hashable(v) for v in value), _hashable(value.requires), value.dim)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (bool, int, float, str)) or value is None:
        return (type(value).__name__, value)
    if isinstance(value, (SymTensor, Repeated, sympy.Basic, torch.dtype, torch.device)):
        return value
    return _Unhashable()


def _symbols_of(value: Any, out: set) -> bool:
    """Add the size symbols in ``value`` (a call's arguments) to ``out``; False where it holds
    something whose symbols this cannot list."""
    if isinstance(value, sympy.Basic):
        out |= value.free_symbols
        return True
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        return True
    if isinstance(value, Pieces):  # its pieces, and when each exists
        return all(_symbols_of(v, out) for v in (*value, value.requires))
    if isinstance(value, SizeRatio):
        return _symbols_of(value.expr, out)
    if isinstance(value, (list, tuple)):
        return all(_symbols_of(v, out) for v in value)
    if isinstance(value, dict):
        return all(_symbols_of(v, out) for v in value.values())
    if type(value) is SymTensor:
        # (kept on the tensor, frozen: DenseNet's layers each take the list of every feature
        # map before, and a block's keys walked each tensor again)
        known = value.__dict__.get("_symbols")
        if known is None:
            found: set = set()
            known = frozenset(found) if _fields_symbols(value, found) else False
            object.__setattr__(value, "_symbols", known)
        out |= known or set()
        return known is not False
    if isinstance(value, (SymTensor, Repeated, Requirement)):
        return _fields_symbols(value, out)
    return False


def _fields_symbols(value, out: set) -> bool:
    return all(_symbols_of(getattr(value, f.name), out) for f in fields(value))


@lru_cache(maxsize=16384)
def _free(fact) -> frozenset:
    """A fact's sizes (cached: sympy walks the expression at each ask, and every call's key asks
    it of every fact of the side)."""
    return frozenset(fact.free_symbols)


def _connected(facts: list, symbols: set) -> set:
    """``symbols`` and every symbol a fact relates to them, directly or through other facts
    (``N*H >= 10`` relates N to H, then ``H <= 2`` bounds N too)."""
    bound, todo = set(symbols), [_free(f) for f in facts]
    grew = True
    while grew:
        grew = False
        for s in todo:
            if s & bound and not s <= bound:
                bound |= s
                grew = True
    return bound


def _unknown_layout(value: Any) -> Any:
    """``value`` with every tensor's strides marked unknown."""
    if isinstance(value, SymTensor):
        return value.with_shape(value.shape, contiguous=False)
    if isinstance(value, Repeated):
        return replace(value, item=_unknown_layout(value.item), last=_unknown_layout(value.last))
    if isinstance(value, tuple):
        return tuple_like(value, (_unknown_layout(v) for v in value))
    if isinstance(value, list):
        return [_unknown_layout(v) for v in value]
    return value


def _with_layouts_resolved(ctx: Context, value: Any) -> Any:
    """``value`` with each tensor's layout computed where symshape recorded how
    (symshape.rules.strides.resolved)."""
    if isinstance(value, SymTensor):
        return resolved(ctx, value)
    if isinstance(value, tuple):
        return tuple_like(value, (_with_layouts_resolved(ctx, v) for v in value))
    if isinstance(value, list):
        return [_with_layouts_resolved(ctx, v) for v in value]
    if isinstance(value, dict):
        return {k: _with_layouts_resolved(ctx, v) for k, v in value.items()}
    return value


def _with_layout_of(value: Any, other: Any) -> Any:
    """``value`` with the layout of ``other`` (of the same structure and shapes)."""
    if isinstance(value, SymTensor):
        return replace(value, contiguous=other.contiguous, strides=other.strides)
    if isinstance(value, tuple):
        return tuple_like(value, (_with_layout_of(v, o) for v, o in zip(value, other)))
    if isinstance(value, list):
        return [_with_layout_of(v, o) for v, o in zip(value, other)]
    return value


def _memory_format(rule: Rule, ctx: Context, inputs: list[SymTensor]) -> str:
    """The CPU kernel's output memory format for this call (Rule.memory_format), or ``""``."""
    if not inputs or not (rule.memory_format or ctx.memory_format):
        return ""
    x = inputs[0]
    if "d" in rule.bound and x.ndim != rule.bound["d"] + 2:
        return ""  # an unbatched input
    policy = ctx.memory_format or rule.memory_format.get(x.ndim, "")
    return "" if policy == "none" else policy


def _kernel_value(value: Any, x: SymTensor, policy: str, op: str) -> Any:
    """Each output tensor of a convolution or pooling with the layout its CPU kernel gives it."""
    if isinstance(value, SymTensor):
        return kernel_layout(x, value, x.ndim - 2, policy, op) if value.ndim == x.ndim else value
    if isinstance(value, tuple) and not isinstance(value, Pieces):
        return tuple_like(value, (_kernel_value(v, x, policy, op) for v in value))
    return value


def _canonical_value(value: Any) -> Any:
    if isinstance(value, SymTensor):
        strides = value.strides and tuple(canonical(s) for s in value.strides)
        return replace(value, shape=tuple(canonical(s) for s in value.shape), strides=strides, values=None)
    if isinstance(value, Repeated):
        return replace(value, item=_canonical_value(value.item), count=canonical(value.count),
                       last=_canonical_value(value.last))
    if isinstance(value, tuple):
        return tuple_like(value, (_canonical_value(v) for v in value))
    return value


def _attr(root: nn.Module, target: str, node: torch.fx.Node):
    obj = attribute_at(root, target)
    if is_lazy_parameter(obj):
        raise UnsupportedOperation("get_attr", target, node.format_node(), "an uninitialized lazy parameter has no shape yet")
    if isinstance(obj, torch.Tensor):
        values = _constant_values(obj)
        # (its own strides, exactly: a parameter stored transposed is no contiguous tensor)
        strides = None if obj.is_contiguous() or obj.layout != torch.strided else tuple(obj.stride())
        return SymTensor(tuple(obj.shape), strides is None, dtype=obj.dtype, values=values, strides=strides,
                         entry_range=_constant_range(obj) if values is None else None, entry_form=_float_entries(obj))
    return obj


def _constant_tensor(root: nn.Module, node: torch.fx.Node) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node reads, or None."""
    if node.op != "get_attr":
        return None
    try:
        obj = attribute_at(root, node.target)
    except AttributeError:
        return None
    return obj if isinstance(obj, torch.Tensor) else None


#: the largest integer constant whose entries symshape reads (index lists, sections)
CONSTANT_ENTRIES = 256


def _constant_values(t: torch.Tensor):
    """The entries of a small integer or bool buffer or constant (not a parameter, not on the
    meta device), as nested tuples; else None."""
    if (isinstance(t, nn.Parameter) or t.is_meta or t.numel() > CONSTANT_ENTRIES
            or not (t.dtype == torch.bool or not (t.dtype.is_floating_point or t.dtype.is_complex))):
        return None
    try:
        entries = t.detach().cpu().tolist()
    except Exception:  # a tensor subclass without data (fake, functional)
        return None

    def frozen(v):
        return tuple(frozen(e) for e in v) if isinstance(v, list) else v
    return frozen(entries)


#: the most entries of an integer constant whose least and greatest entry symshape reads
CONSTANT_RANGE_ENTRIES = 1 << 20


def _float_entries(t: torch.Tensor):
    """A leaf of the least and greatest entry of a small float32 or float64 constant (the
    ``torch.tensor(0.0)`` of ``where(mask, torch.tensor(0.0), min)``: symshape.bounds), marked
    where one may be NaN; None for a parameter, a larger one, or one without data."""
    if isinstance(t, nn.Parameter) or t.is_meta or t.dtype not in (torch.float32, torch.float64) \
            or not 0 < t.numel() <= CONSTANT_ENTRIES:
        return None
    try:
        entries = t.detach()
        nan = bool(entries.isnan().any())
        numbers = entries[~entries.isnan()] if nan else entries
        ends = (float(numbers.min()), float(numbers.max())) if numbers.numel() else (math.inf, -math.inf)
    except Exception:  # a tensor subclass without data (fake, functional)
        return None
    return leaf(*ends, t.dtype, nan=nan)


def _constant_range(t: torch.Tensor) -> tuple | None:
    """The least and greatest entry of an int64 or int32 buffer or constant too large for
    :func:`_constant_values` (RoBERTa's zero ``token_type_ids`` of 514 entries: ``(0, 0)``); None
    for a parameter, a tensor on the meta device or without data, or one with no entry."""
    if isinstance(t, nn.Parameter) or t.is_meta or t.dtype not in (torch.int64, torch.int32) \
            or not 0 < t.numel() <= CONSTANT_RANGE_ENTRIES:
        return None
    try:
        return sympy.Integer(int(t.detach().min())), sympy.Integer(int(t.detach().max()))
    except Exception:  # a tensor subclass without data (fake, functional)
        return None


class Propagator:
    """Computes each node's value (a SymTensor, a size, a tuple ...) as the nodes come, in
    execution order: after a trace (:func:`propagate`), or while torch.fx traces, so the tracer
    can answer questions about ranks and sizes (``len(x.shape)``, ``for s in x.size()``).
    """

    def __init__(self, root: nn.Module, x: SymTensor | None, inputs: tuple = (), shared: "Propagator | None" = None):
        self.root = root
        self.x = x
        #: the values of the placeholders after ``x`` (a module's call traced on its own)
        self.inputs = list(inputs)
        #: ids of the modules whose Python branches on a size (set by symshape.trace)
        self.forking: frozenset = frozenset()
        #: the side of the Python branches this propagator follows (symshape.trace.Path), if any
        self.path: Path | None = None
        #: the case of the analysis it computes (``Eq(N, 1)``, ``Ne(N, 1)`` ...: Context.size_case)
        self.cases: tuple = ()
        self.env: dict[torch.fx.Node, Any] = {}
        self.steps: list[Step] = []
        #: how many of ``steps`` each layer has, counted up to ``_counted`` (see _calls_of)
        self._step_names: Counter = Counter()
        self._counted = 0
        self.in_features: dict[str, sympy.Expr] = {}
        self.fixed: dict[str, Fixed] = {}
        self.rules_applied: dict[str, str] = {}
        self.output: Any = None
        self._first_input = True
        #: the fixed layers of the branching module just traced by sides (_fixed_on_every_side)
        self._side_linears: list = []
        self._side_steps: tuple = ()
        #: relations of one size that the requirements of the steps so far state (Context.earlier)
        self._earlier: dict = {}
        self._meta_copies: dict[int, nn.Module] = shared._meta_copies if shared is not None else {}
        # meta results by call signature (see _meta)
        self._meta_cache: dict = shared._meta_cache if shared is not None else {}
        #: the results of modules traced by sides, by call (_sides_key): trace() starts again each
        #: time another module branches, and those before it are asked the same again
        self._sides_cache: dict = shared._sides_cache if shared is not None else {}
        self._fingerprints: dict = shared._fingerprints if shared is not None else {}
        #: each module's name in the trace, by identity (see _module_name)
        self._module_names: dict | None = None
        #: kept calls' modules' fingerprints as the calls found them (Propagator._fingerprint_then)
        self._fingerprints_then: dict = shared._fingerprints_then if shared is not None else {}
        #: module calls computed once, by call (repeat_key): the steps and output of the first
        self._repeats: dict = shared._repeats if shared is not None else {}
        #: the ops each module call still being traced has applied (rules_applied of that call)
        self._open_calls: list[dict] = []
        #: nodes whose values may share storage, each to its group (one list object): a write into
        #: one changes them all (see _bind)
        self._storage: dict[torch.fx.Node, list] = {}
        #: the storages of the trace's constant tensors a traced op wrote into, and whether the
        #: entries it wrote may depend on the sizes
        self._written: dict[int, bool] = {}
        #: the placeholders (in order) and those an op wrote into (by their place), each with
        #: whether what it wrote may depend on the sizes: a module's call traced by sides changed
        #: the caller's tensor
        self._placeholders: list[torch.fx.Node] = []
        self.wrote: dict[int, bool] = {}
        #: every node whose value an op's write changed (what was known of its entries), in order
        #: (close_call asks which came before the call)
        self._write_log: list[torch.fx.Node] = []

    def share(self, caches: dict) -> None:
        """Take the caches of results that depend only on their keys (meta copies, meta results,
        modules traced by sides) from ``caches``: one dict shared by the attempts of one trace."""
        self._meta_copies = caches.setdefault("meta_copies", self._meta_copies)
        self._meta_cache = caches.setdefault("meta", self._meta_cache)
        self._sides_cache = caches.setdefault("sides", self._sides_cache)
        self._fingerprints = caches.setdefault("fingerprints", self._fingerprints)
        self._repeats = caches.setdefault("repeats", self._repeats)
        self._fingerprints_then = caches.setdefault("fingerprints_then", self._fingerprints_then)

    def result(self) -> Propagation:
        return Propagation(self.steps, self.output, self.in_features, self.rules_applied, self.fixed,
                           self.wrote)

    def _load(self, a):
        value = torch.fx.node.map_arg(a, lambda n: self.env[n])
        if self.path is not None and self.path.zeros:
            # on a side of a Python branch: what its answers made 0 is 0 from here on
            return substitute(value, self.path.zeros)
        return value

    def feed(self, node: torch.fx.Node) -> None:
        """Compute ``node``'s value from its inputs' (already fed), dispatching on the node's kind
        as ``torch.fx.Interpreter.run_node`` does. Raises UnsupportedOperation for an op without
        a rule."""
        try:
            getattr(self, f"_{node.op}")(node)
        except UnsupportedOperation as e:
            self._locate(e, node)
            raise
        except InvalidInputSize as e:  # a size no input reaches the step with: the node that raises
            e.node = getattr(e, "node", "") or node.name
            raise

    def _locate(self, e: UnsupportedOperation, node: torch.fx.Node) -> None:
        """Say where a refused op is: the module whose forward called it, and the source line."""
        if not e.module:
            path = node.target if node.op == "call_module" else scope_of(node)
            try:
                module = self.root.get_submodule(path)
            except AttributeError:
                module = None
            if module is not None:
                e.module = type(module).__name__
                if self.path is None:  # not one side of a branch traced alone: a path in the model
                    e.module_path = path
        if not e.line:
            e.line = user_line(e)

    def _placeholder(self, node: torch.fx.Node) -> None:
        self._placeholders.append(node)
        if self._first_input and self.x is not None:
            self.env[node], self._first_input = self.x, False
        elif self.inputs:
            self.env[node] = self.inputs.pop(0)
        elif node.args:
            self.env[node] = node.args[0]
        else:
            raise InvalidArgument(
                f"forward takes another input, {node.target!r}, without a default: give a shape for each input, "
                "a tuple of shapes such as ((3, 'H', 'W'), (1, 'H', 'W')) or a dict by name (on the command line, "
                "--input once per input)"
            )

    def _get_attr(self, node: torch.fx.Node) -> None:
        value = _attr(self.root, node.target, node)
        if self._written and isinstance(value, SymTensor):
            key = storage_key(_constant_tensor(self.root, node))
            if key in self._written:  # a traced op wrote into it: its entries now are not these
                value = ranges.overwritten(value, self._written[key])
        self.env[node] = value

    def _output(self, node: torch.fx.Node) -> None:
        self.output = self._load(node.args[0])

    def _call_module(self, node: torch.fx.Node) -> None:
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        module = self.root.get_submodule(node.target)
        _refuse_records(node, target_name(type(module)), args, kwargs)
        name = node.target or "(model)"
        if REPEAT in node.meta:
            self._repeat(node, module, name, node.meta[REPEAT])
            return
        rule = rule_for_module(module)
        if rule is not None:
            args, kwargs = positional_call(module, args, kwargs)
        self._apply_rule(node, rule, name, target_name(type(module)), "module", (module, *args), kwargs, module)

    def _call_function(self, node: torch.fx.Node) -> None:
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        if getattr(node.target, "record_of", None) is not None:  # an object the model returns (symshape.records)
            self.env[node] = node.target(*args)
            return
        if node.target not in (operator.getitem, getattr):  # (reading a field of an output is no call)
            _refuse_records(node, target_name(node.target), args, kwargs)
        rule = rule_for_function(node.target)
        scope = scope_of(node)
        # a call without tensors: arithmetic on sizes (operator, builtins, math) is symshape's own;
        # any other function (torch.zeros, a library's grid builder) runs on torch's fake tensors
        creates = rule is None and getattr(node.target, "__module__", None) not in SIZE_MODULES
        if not has_tensor((args, kwargs)) and not (rule is not None and rule.on_sizes) and not creates:
            if node.target in (operator.floordiv, operator.mod) and len(args) == 2 and not kwargs \
                    and by_a_size(*args):
                self.env[node] = self._divided(node.target, *args)
                return
            self.env[node] = size_arithmetic(node.target, args, kwargs, node, scope or "(model)")
            return
        name = f"{scope}.{node.name}" if scope else node.name
        self._apply_rule(node, rule, name, target_name(node.target), "function", args, kwargs)

    def _divided(self, target, a, b) -> sympy.Expr:
        """``a // b`` or ``a % b`` of sizes by a size, as Python computes them: ``floor(a/b)``
        and ``a - b*floor(a/b)`` where ``b != 0``; where ``b`` may be 0 a branch (Python raises
        ZeroDivisionError there: on that side the model raised). SAM2's ``windows.shape[0] //
        (H * W // 8 // 8)``, whose windows are padded on one side of a branch."""
        a, b = canonical(as_expr(a)), canonical(as_expr(b))
        nonzero = sympy.Ne(b, 0)
        low = smallest_value(b)
        if (low is None or low <= 0) and self._earlier:
            # each size from its least value the checks so far allow (a patch embedding's kernel:
            # H >= 16), where b is 0 only below them: no branch whose one side torch refused before
            low = smallest_value_where(b, tuple(self._earlier))
        if low is not None and low > 0:  # (a product of sizes: decide() does not bound it)
            holds = True
        elif self.path is not None:
            holds = self.path.decide(nonzero)
        else:
            holds = decide(nonzero)
            if holds is None:
                raise SizeBranch(nonzero)
        if not holds:
            raise ModelRaised("ZeroDivisionError: integer division or modulo by zero")
        exact = exact_quotient(a, b)
        if exact is None:
            exact = self._quotient_of_equal_factors(a, b)
        quotient = exact if exact is not None else sympy.floor(a / b)
        return canonical(quotient if target is operator.floordiv else a - b * quotient)

    def _quotient_of_equal_factors(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        """``a / b`` where it is exact once each factor of ``b`` that this side's facts prove
        equal to a factor of ``a`` is written as that factor (the same number wherever the side
        runs); else None. MONAI's Swin: ``B_ // nW``, windows of the input over windows of the
        mask, which count ``floor(W/14)`` and ``floor((W + 12)/14)`` -- equal where the pad
        before is 0."""
        facts = (*(self.path.conditions() if self.path is not None else ()), *self.cases, *self._earlier)
        if not facts:
            return None
        left, out, changed = list(sympy.Mul.make_args(a)), [], False
        for d in sympy.Mul.make_args(b):
            match = d if d in left else None
            if match is None and not d.is_number:
                match = next((n for n in left if not n.is_number and implied(facts, sympy.Eq(n, d, evaluate=False))),
                             None)
                changed = changed or match is not None
            if match is not None:
                left.remove(match)
            out.append(d if match is None else match)
        return exact_quotient(a, sympy.Mul(*out)) if changed else None

    def _call_method(self, node: torch.fx.Node) -> None:
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        _refuse_records(node, f"Tensor.{node.target}", args, kwargs)
        scope = scope_of(node)
        if not isinstance(args[0], SymTensor):
            self.env[node] = size_arithmetic(
                lambda s, *a, **k: getattr(s, node.target)(*a, **k), args, kwargs, node, scope or "(model)"
            )
            return
        name = f"{scope}.{node.name}" if scope else node.name
        self._apply_rule(node, rule_for_method(node.target), name, f"Tensor.{node.target}", "method", args, kwargs)

    # -- equal module calls computed once ----------------------------------------------------------

    def repeat_key(self, module: nn.Module, args, kwargs) -> tuple | None:
        """What a module call's steps and output depend on, as for a module traced by sides
        (:meth:`_sides_key`), but the module's fingerprint: its class, its arguments' values, the
        case, the side and the checks before it (symshape.trace asks this of every call of a
        module it traces through; the fingerprint is asked only of calls with an equal key, see
        :meth:`repeat_of`). None where an argument is not hashable."""
        return self._call_key(("call", type(module)), args, kwargs)

    def repeat_of(self, module: nn.Module, key: tuple) -> tuple | None:
        """An equal call computed before (the same key, a module of the same fingerprint: the
        twelve blocks of a ViT, each called with the same shapes), as ``(key, index)``; None."""
        found = self._equal_call(module, key)
        if found is None:
            known = set(key[-1])
            for k in self._under_fewer_facts(key):
                found = self._equal_call(module, k) if set(k[-1]) <= known else None
                if found is not None:
                    break
        return found

    def _equal_call(self, module: nn.Module, key: tuple) -> tuple | None:
        mine = None
        for i, (other, _, _, state) in enumerate(self._repeats.get(key, ())):
            # the module's attributes as that call found them: the same module only where they
            # still are (a forward that sets ``self.block.h = h`` before each call changes what
            # the call computes), another one where its fingerprint equals theirs
            if other is module:
                if state.unchanged():
                    return key, i
                continue
            if mine is None:
                mine = self._fingerprint(module)
            if self._fingerprint_then(key, i) == mine:
                return key, i
        return None

    def _fingerprint_then(self, key: tuple, i: int):
        """The fingerprint of the module of the call kept as ``(key, i)``, as the call found it:
        its fingerprint now where its attributes are unchanged since, else computed on them put
        back as they were for the moment (ConViT's attention writes a buffer of its own during
        the call: its blocks are equal as each call finds them). Computed once: what a call found
        stays what it found (the twelfth block of a stage asks it of the eleven before)."""
        then = self._fingerprints_then.get((key, i))
        if then is None:
            other, _, _, state = self._repeats[key][i]
            if state.unchanged():
                then = self._fingerprint(other)
            else:
                now = attributes_of(other)
                state.restore()
                try:
                    then = module_fingerprint(other)
                finally:
                    now.restore()
            self._fingerprints_then[(key, i)] = then
        return then

    def _under_fewer_facts(self, key: tuple) -> list:
        """The keys of the calls kept that differ from ``key`` only in their earlier checks (its
        last item): where those are fewer than this call's, the steps and output are exact here
        too (see :meth:`_traced_under_fewer_facts`)."""
        return [k for k in self._repeats.get(("fewer", key[:-1]), ()) if k != key]

    def open_call(self, module: nn.Module) -> tuple:
        """Where a call of ``module`` that may repeat starts: what :meth:`close_call` needs (the
        module's attributes as the call finds them among it)."""
        self._open_calls.append({})
        return (len(self.steps), set(self.fixed), len(self.path.decisions) if self.path is not None else 0,
                attributes_of(module), len(self.env), len(self._write_log))

    def close_call(self, key: tuple, module: nn.Module, name: str, start: tuple, value: Any, form: Any) -> None:
        """The call ``name`` of ``module`` from ``start`` on (:meth:`open_call`) returned
        ``value``, of the form ``form`` (symshape.trace's: a tensor, or tuples and lists of tensors
        and sizes, as MViTv2's attention returns ``(x, [h, w])``): kept for an equal later call
        where its output holds a tensor and it took no new side of a branch (a later call would not
        take it again, and the answers of a side come in order)."""
        used = self._open_calls.pop()
        first, fixed_before, decisions, state, bound, writes = start
        if not tensors_in(value) or (self.path is not None and len(self.path.decisions) != decisions):
            return
        if len(self._write_log) > writes:  # it wrote into a tensor from before it: one node would not
            inside = set(list(self.env)[bound:])
            if any(n not in inside for n in self._write_log[writes:]):
                return
        fixed = tuple((k, f) for k, f in self.fixed.items() if k not in fixed_before)
        # (what its checks state of single sizes, Context.earlier: made when first repeated)
        entry = (name, tuple(self.steps[first:]), value, fixed, dict(used), None)
        if key not in self._repeats:
            self._repeats.setdefault(("fewer", key[:-1]), []).append(key)
        self._repeats.setdefault(key, []).append((module, entry, form, state))

    def repeat_form(self, found: tuple):
        """The form of the output of the call :meth:`repeat_of` found (see :meth:`close_call`)."""
        key, i = found
        return self._repeats[key][i][2]

    def mark(self) -> tuple:
        """Where the propagation stands, for :meth:`rollback` (the lengths of what only grows,
        copies of the few small maps a later op may write again)."""
        return (len(self.steps), len(self.env), len(self.in_features), len(self.fixed), len(self._earlier),
                dict(self.rules_applied), [dict(c) for c in self._open_calls])

    def rollback(self, at: tuple) -> None:
        """Back to ``at`` (:meth:`mark`): what the nodes fed since added is gone (the nodes of a
        module call symshape.trace takes back, to make the call one node of the graph)."""
        steps, env, in_features, fixed, earlier, applied, calls = at
        if self._counted > steps:
            self._step_names.subtract(s.name for s in self.steps[steps:self._counted])
            self._counted = steps
        del self.steps[steps:]
        for grown, n in ((self.env, env), (self.in_features, in_features), (self.fixed, fixed), (self._earlier, earlier)):
            for k in list(grown)[n:]:
                del grown[k]
        self.rules_applied.clear()
        self.rules_applied.update(applied)
        for now, then in zip(self._open_calls, calls):
            now.clear()
            now.update(then)

    def _repeat(self, node: torch.fx.Node, module: nn.Module, name: str, found: tuple) -> None:
        """A module call equal to one computed before: its steps, named in this module and
        pointing at this call's node (a step inside it is checked by the proof where it was
        first computed; this call's output, and each layer's, here), its fixed layers, its output."""
        key, i = found
        other, (first, steps, value, fixed, used, facts), form, state = self._repeats[key][i]
        if facts is None:
            stated: dict = {}
            for step in steps:
                stated.update(_single_size_facts(step.requirements, tuple(stated)))
            facts = tuple(stated)
            self._repeats[key][i] = (other, (first, steps, value, fixed, used, facts), form, state)

        within = _Submodules(module, other)
        moved: dict[str, str] = {}  # a layer named otherwise than by its path in this call (below)

        def renamed(text: str) -> str:
            old = next((o for o in moved if text == o or text.startswith(o + ".")), None)
            if old is not None:
                return moved[old] + text[len(old):]
            return name + text[len(first):] if text == first or text.startswith(first + ".") else text

        for step in steps:
            here = renamed(step.name)
            inner = None if step.module is None else module if here == name \
                else within.get(here[len(name) + 1:], step.module) if here.startswith(name + ".") \
                else within.corresponding(step.module)
            if inner is not None and inner is not module:
                # a layer is named as fx names it, by its first path in the model: a module shared
                # by several layers has one name (ultralytics' Conv blocks share one activation
                # module), and the one a call reaches outside its own path is named too (a head
                # deep-copied from another calls the copy's activation, not the original's)
                named = self._module_name(inner)
                if named is not None and named != here:
                    here = moved[step.name] = named
            self.steps.append(_copied(step, name=here, node=node.name, copy_of=step.copy_of or step.name,
                                      module=inner))
        self._earlier.update(dict.fromkeys(facts))
        for k, f in fixed:
            k = renamed(k)
            if k not in self.in_features:
                layer = renamed(f.layer)
                self.in_features[k] = f.reaching
                self.fixed[k] = replace(f, layer=layer, parameter=renamed(f.parameter),
                                        call=max(self._calls_of(layer) - 1, 0))
        self._applied(used)
        self.env[node] = ranges.without_forms(value)
        node.meta[REPEAT_CHECK] = (len(self.steps), shapes_of(value))

    def _module_name(self, module: nn.Module) -> str | None:
        """The name fx gives ``module`` in this trace (its first path in the root), or None."""
        if self._module_names is None:
            self._module_names = {}
            for path, m in self.root.named_modules():
                self._module_names.setdefault(id(m), path)
        return self._module_names.get(id(module))

    def _calls_of(self, layer: str) -> int:
        """How many of the steps so far are ``layer``'s (counted once each: a model of 80 blocks
        asked this at every repeated call, which counted every step again)."""
        if self._counted < len(self.steps):
            self._step_names.update(s.name for s in self.steps[self._counted:])
            self._counted = len(self.steps)
        return self._step_names[layer]

    def _applied(self, families: dict) -> None:
        """Ops and the rule family that answered each: for the analysis, and for each module call
        still being traced (what an equal later call applies)."""
        self.rules_applied.update(families)
        for call in self._open_calls:
            call.update(families)

    def _meta_module(self, ctx: Context, module: nn.Module, args, kwargs):
        """A module without a rule (its forward not traced: Python that fx cannot follow, or a
        torch.nn module symshape has no rule for) runs whole under torch's meta kernels, every
        branch on a size explored -- on a meta-device copy, so the model itself never runs."""
        copy_ = self._meta_copies.get(id(module))
        if copy_ is None:
            copy_ = self._meta_copies[id(module)] = copy_model(module, "meta")

        def call(*a, **k):
            # run inside the fake mode: a copy whose parameters are fake CPU tensors, on the
            # device of the fake inputs, as the user's model and input are (no memory is used)
            return copy_model(copy_, "cpu")(*a, **k)

        call.runs_module = True  # (a module's own code: symshape.meta refuses its reads of strides)

        # each call runs a fresh copy of the module's meta copy: its result depends on the
        # arguments and the module alone (twelve equal blocks of a ViT ask the same), and trace()
        # asks again at each of its attempts
        try:
            key = ("module", self._fingerprint(module), _signature(args), _signature(kwargs))
            hash(key)
        except TypeError:
            key = None
        return _meta_value(ctx, call, args, kwargs, self._meta_cache, key)

    def _fingerprint(self, module: nn.Module):
        """symshape.modules.module_fingerprint of the module, computed again only where its
        attributes changed since (a forward that sets ``self.block.h = h``). A module known by its
        identity alone is also known by the state it is in: the same module with other attributes
        is another (its sides, its calls are not the ones traced before)."""
        known = self._fingerprints.get(id(module))
        if known is not None and known[1].unchanged():
            return known[0]
        state = 0 if known is None else known[2] + 1
        fingerprint = module_fingerprint(module)
        if fingerprint[0] == "module":
            fingerprint = (*fingerprint, state)
        self._fingerprints[id(module)] = (fingerprint, attributes_of(module), state)
        return fingerprint

    def _by_sides(self, ctx: Context, module: nn.Module, args, kwargs) -> tuple[Any, str]:
        """A module whose Python branches on a size: its forward traced once per side of its
        branches (symshape.trace.Path), each side under its conditions, and the sides merged
        (symshape.meta.merge_sides): shapes that differ become Piecewise, a side on which the
        model or torch raises a requirement with its message. Where that cannot be done, the
        module runs whole under torch's meta kernels."""
        try:
            return _canonical_value(self._sides(ctx, module, args, kwargs)), "cases"
        except (UnsupportedWhereMetaDiffers, SizeCases):
            raise
        except (UnsupportedOperation, UntraceableModel, MetaRefusal) as refused:
            scratch = Context(ctx.step, ctx.op, lambda: ctx.node)
            try:
                value = _canonical_value(self._meta_module(scratch, module, args, kwargs))
            except UnsupportedOperation:
                raise UnsupportedOperation(ctx.op, ctx.step, ctx.node, str(refused)) from refused
            ctx.requirements += scratch.requirements
            return value, "meta"

    def _sides(self, ctx: Context, module: nn.Module, args, kwargs):
        key = self._sides_key(ctx, module, args, kwargs)
        here = None if key is None else ("merged", key, ctx.step, id(module))  # trace() asks again per attempt
        done = self._sides_cache.get(here) if here is not None else None
        if done is None:
            done = self._merged_sides(ctx, module, args, kwargs, key)
            if here is not None:
                self._sides_cache[here] = done
        value, requirements, self._side_linears, self._side_steps, wrote = done
        if wrote:  # by their place among the call's placeholders (_traced_by_sides)
            dynamic = [v for v in _flat([*args, *kwargs.values()]) if is_dynamic(v)]
            ctx.wrote += [(dynamic[i], sized) for i, sized in wrote.items()]
        for r in requirements:
            ctx.require(r.lhs, r.relation, r.rhs, r.reason, r.kind, r.unless, r.backend_dependent, r.data_dependent,
                        r.fixes, r.meta_unchecked, r.condition)
        return value

    def _merged_sides(self, ctx: Context, module: nn.Module, args, kwargs, key) -> tuple:
        """``(value, requirements, fixed layers, steps shown)`` of the module's sides (traced once
        per ``key``: equal blocks share them), named by this step and merged under its facts."""
        traced = self._sides_cache.get(key) if key is not None else None
        if traced is None and key is not None:
            traced = self._traced_under_fewer_facts(key)
        if traced is None:
            traced = self._traced_by_sides(ctx, module, args, kwargs)
            if key is not None:
                self._sides_cache[key] = traced
                self._sides_cache.setdefault(("fewer", key[:-1]), []).append((frozenset(key[-1]), traced))
        sides, fixed, shown, wrote = traced
        where = "" if ctx.step == "(model)" else f"{ctx.step}."  # inner steps' names, qualified
        sides = [replace(side, requirements=[replace(r, reason=f"{where}{r.reason}") for r in side.requirements])
                 for side in sides]
        result = merge_sides(sides, ctx.op, tuple(_on_every_side(sides)), (*ctx.facts, *self._earlier))
        linears = [(replace(step, name=f"{where}{step.name}", module=_submodule(module, step.name, step.module)),
                    f"{where}{name}", replace(f, layer=f"{where}{f.layer}")) for step, name, f in fixed]
        return result.value, tuple(result.requirements), linears, shown, wrote

    def _traced_under_fewer_facts(self, key: tuple):
        """The sides of an equal call traced where fewer of the earlier checks were known (the
        key's last item, :meth:`_call_key`'s): the second block of a stage, after the first
        added its own checks of the sizes. Exact here too: torch computes the same, and the
        earlier checks only let a rule drop a case no size reaching it has, or a check of its
        own they imply; the sides are merged under the checks known here. None where none is."""
        known = set(key[-1])
        for earlier, traced in self._sides_cache.get(("fewer", key[:-1]), ()):
            if earlier <= known:
                return traced
        return None

    def _sides_key(self, ctx: Context, module: nn.Module, args, kwargs) -> tuple | None:
        """What a module's sides depend on: what the module's forward can read of itself (its
        fingerprint: twelve equal blocks are traced once), its arguments' values, and what holds
        where it runs (the case, the side this propagator is on, the checks before it). None where
        an argument is not hashable."""
        return self._call_key((self._fingerprint(module), ctx.op), args, kwargs)

    def _call_key(self, head: tuple, args, kwargs) -> tuple | None:
        """``head``, the call's arguments' values and what holds where it runs (the case, the side
        this propagator is on, the checks before it), as a key; None where an argument is not
        hashable."""
        conditions = () if self.path is None else tuple(self.path.conditions())
        zeros = () if self.path is None else tuple(self.path.zeros.items())
        facts = [*self.cases, *conditions, *(z for z, _ in zeros), *self._earlier]
        symbols: set = set()
        if facts and _symbols_of((args, kwargs), symbols):
            # only what holds of the arguments' sizes matters to the call: a side of a branch on
            # H and W leaves a call on (N, 197, 192) the same (CrossViT's blocks, after its
            # inputs are resized to a fixed size, once for all nine sides)
            bound = _connected(facts, symbols)
            conditions = tuple(c for c in conditions if _free(c) <= bound)
            zeros = tuple((z, v) for z, v in zeros if _free(z) <= bound)
            cases = tuple(c for c in self.cases if _free(c) <= bound)
            earlier = tuple(e for e in self._earlier if _free(e) <= bound)
        else:
            cases, earlier = self.cases, tuple(self._earlier)
        path = None if self.path is None else (conditions, zeros)
        key = (*head, _hashable((args, kwargs)), cases, path, earlier)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _traced_by_sides(self, ctx: Context, module: nn.Module, args, kwargs) -> tuple:
        """``(sides, fixed layers, steps shown)`` of the module traced by sides, named within the
        module (the caller qualifies them with the step's name)."""
        # the placeholders symshape.trace makes for the call, in its order
        dynamic = [v for v in _flat([*args, *kwargs.values()]) if is_dynamic(v)]
        sides: list[Side] = []
        shown: list[tuple] = []  # per side, for explain(): its conditions, steps or message
        props: list[Propagation] = []
        todo: list[list[bool]] = [[]]
        while todo:
            if len(sides) >= MAX_SIDES:
                raise UntraceableModel(ctx.step, f"its Python branches on the sizes more than {MAX_SIDES} ways")
            path = Path(todo.pop())
            try:
                traced = trace(module, partial(self._side_propagator, module, dynamic, path),
                               path=path, call=(args, kwargs))
            except ModelRaised as e:
                sides.append(Side(path.decisions, error=e.message))
                shown.append((tuple(path.conditions()), None, e.message, None))
            except InvalidInputSize as e:
                sides.append(Side(path.decisions, error=f"{e.layer}: {e.reason}"))
                shown.append((tuple(path.conditions()), None, f"{e.layer}: {e.reason}", None))
            else:
                prop = traced.propagation
                shown.append((tuple(path.conditions()), tuple(prop.steps), None, shapes_of(prop.output)))
                inner = [replace(r, reason=f"{step.name}: {r.reason}") for step in prop.steps for r in step.requirements]
                sides.append(Side(path.decisions, value=prop.output, requirements=inner))
                props.append(prop)
            todo += reversed(path.others())
        return tuple(sides), tuple(_fixed_on_every_side(props)), tuple(shown), merged_writes(p.wrote for p in props)

    def _context(self, name: str, op: str, node: torch.fx.Node) -> Context:
        ctx = Context(name, op, node.format_node)
        if self.path is not None:  # on a side of a Python branch: what its answers say holds
            ctx.facts = tuple(self.path.conditions())
        ctx.cases = self.cases
        ctx.facts += self.cases
        ctx.earlier = tuple(self._earlier)
        return ctx

    def _side_propagator(self, module: nn.Module, dynamic: list, path: Path) -> "Propagator":
        prop = Propagator(module, None, dynamic, self)
        prop.path = path
        prop.cases = self.cases
        prop._earlier = dict(self._earlier)  # the side runs where the checks before it passed
        return prop

    def _layout(self, rule, node, name, op, kind, module, call_args, kwargs, value):
        """The strides of a hand rule's output for a non-contiguous input: an elementwise op's by
        torch's TensorIterator rule; another op's as torch's meta kernel computes them, where the
        input strides are known and torch gives the same sizes; else not known. (A value without
        a tensor, ``x.shape``, has no layout: the caller asks only for one with a tensor.)"""
        inputs = tensors_in((call_args, kwargs))
        if rule.layout == "elementwise" and isinstance(value, SymTensor):
            return elementwise_layout(inputs, value)
        if any(t.known_strides is None for t in inputs):
            return _unknown_layout(value)
        scratch = Context(name, op, node.format_node)
        try:
            if kind == "module":
                theirs = self._meta_module(scratch, module, call_args[1:], kwargs)
            else:
                theirs = _meta(scratch, node, call_args, kwargs, self._meta_cache)
        except UnsupportedOperation:
            return _unknown_layout(value)
        theirs = _canonical_value(theirs)
        if shapes_of(theirs) != shapes_of(value) or not has_tensor(theirs):
            return _unknown_layout(value)
        return _with_layout_of(value, theirs)

    def _layout_source(self, node: torch.fx.Node, call_args: tuple, kwargs: dict, value: SymTensor) -> SymTensor:
        """An op's output whose layout symshape does not follow (einsum permutes, multiplies and
        permutes back), with a way to compute torch's where a later op needs it
        (symshape.rules.strides.resolved): its meta kernel on the exact layouts of its inputs, under
        the facts of the step that asks."""
        cache = self._meta_cache

        def resolve(asking: Context) -> SymTensor | None:
            args, named = _with_layouts_resolved(asking, (call_args, kwargs))
            if any(t.known_strides is None for t in tensors_in((args, named))):
                return None
            scratch = Context(node.name, asking.op, node.format_node)
            scratch.facts, scratch.earlier, scratch.cases = asking.facts, asking.earlier, asking.cases
            try:
                theirs = _canonical_value(_meta(scratch, node, args, named, cache))
            except UnsupportedOperation:
                return None
            if not isinstance(theirs, SymTensor) or theirs.known_strides is None or len(theirs.shape) != value.ndim \
                    or any(sympy.expand(a - b) != 0 for a, b in zip(theirs.shape, value.shape)):
                return None
            return laid_out(value, theirs.known_strides, not theirs.exact_strides)

        return with_source(value, resolve)

    def _bind(self, node: torch.fx.Node, kind: str, family: str, call_args: tuple, kwargs: dict, value: Any,
              wrote: list = ()) -> Any:
        """Bind ``node`` to ``value`` with what is known of its entries (symshape.ranges); a
        tensor changed in place, and every tensor that may share its storage (its views, what it
        is a view of), loses what was known of its entries (they may depend on the sizes now:
        ``idx[:] = L``, ``idx[:2].fill_(L)``); ``wrote``: the tensors it was given that a call
        run whole or traced by sides wrote into (Context.wrote)."""
        module = kind == "module"
        if isinstance(value, SymTensor) and not module and not value.contiguous and value.strides is None \
                and value.layout_source is None:  # (its layout not known: how to compute torch's, if asked)
            value = self._layout_source(node, call_args, kwargs, value)
        value = ranges.propagate(None if module else node.target, kind, call_args[1:] if module else call_args, kwargs,
                                 value, family)
        self.env[node] = value
        first = node.args[0] if node.args and isinstance(node.args[0], torch.fx.Node) else None
        owner, plain = (call_args[0], call_args[1:]) if module else (None, call_args)
        written = node.kwargs.get("out")  # (torch.add(a, b, out=a))
        written = written if isinstance(written, torch.fx.Node) else None
        if first is not None and ranges.writes_in_place(node.target, kind, owner, plain, kwargs) \
                and not ranges.writes_nothing(node.target, kind, plain, kwargs):
            written = first
        elif first is not None and ranges.shares_storage(node.target, kind, owner, plain):
            self._share(node, first)
        if written is not None:  # every tensor that shares its storage has other entries now
            self._share(node, written)
            self._overwrite(node, ranges.writes_sized(family, node.target, kind, call_args, kwargs))
            if node.target is operator.setitem and written is first and first.op == "call_function" \
                    and set(self._storage.get(first, ())) <= {node, first} and len(call_args) == 3:
                # (each entry written, by a permutation of its positions: what the write made is known)
                whole = ranges.written_whole(self.env[first], call_args[1], call_args[2])
                self.env[first] = whole if whole is not None else self.env[first]
            if isinstance(value, SymTensor) and (value.float_form is not None or value.entry_form is not None):
                # (what the write made: known)
                self.env[node] = replace(self.env[node], float_form=value.float_form, entry_form=value.entry_form)
        for t, sized in wrote:
            for n in node.all_input_nodes:
                if any(v is t for v in tensors_in(self.env.get(n))):
                    self._overwrite(n, sized)
        return self.env[node]

    def _overwrite(self, node: torch.fx.Node, sized: bool) -> None:
        """An op wrote into the storage of ``node``'s value: it and every value that may share it
        lose what was known of their entries (``sized``: the written ones may depend on the
        sizes)."""
        for n in self._storage.get(node, (node,)):
            if n in self.env:
                old = self.env[n]
                self.env[n] = ranges.overwritten(old, sized)
                if self.env[n] is not old and self.env[n] != old:
                    self._write_log.append(n)
            if n.op == "placeholder":  # the caller's tensor (a module's call traced by sides)
                i = self._placeholders.index(n)
                self.wrote[i] = self.wrote.get(i, False) or sized
            # a tensor the model made without sizes is a constant of the trace, and each use of
            # it (or of a view of it) another: the next ones are changed too
            key = storage_key(_constant_tensor(self.root, n))
            if key is not None:
                self._written[key] = self._written.get(key, False) or sized

    def _share(self, a: torch.fx.Node, b: torch.fx.Node) -> None:
        """Note that the values of nodes ``a`` and ``b`` may share their storage (a view, the
        tensor an in-place op returns): one group of nodes for both."""
        ga, gb = self._storage.get(a), self._storage.get(b)
        if ga is not None and ga is gb:
            return
        ga, gb = ga or [a], gb or [b]
        if len(ga) < len(gb):
            ga, gb = gb, ga
        ga.extend(gb)
        for n in ga:
            self._storage[n] = ga

    def _apply_rule(self, node: torch.fx.Node, rule: Rule | None, name: str, op: str, kind: str,
                    call_args: tuple, kwargs: dict, module: nn.Module | None = None) -> None:
        """Run ``rule`` for the call ``node``, record its step, and bind its value."""
        ctx = self._context(name, op, node)
        function = library_function(node.target) if rule is None and kind == "function" else None
        if rule is None:
            if kind == "module" and id(module) in self.forking:
                value, family = self._by_sides(ctx, module, call_args[1:], kwargs)
            elif function is not None:  # a library's function fx leaves whole: traced, by sides
                value, family = self._by_sides(ctx, function, call_args, kwargs)
            elif kind == "module":
                value = _canonical_value(self._meta_module(ctx, module, call_args[1:], kwargs))
            else:
                value = _meta_call(ctx, node, kind, call_args, kwargs, self._meta_cache)
            family = "meta" if not (kind == "module" and id(module) in self.forking or function) else family
            value = loosened(value, tensors_in((call_args, kwargs)))
        else:
            try:
                value = _canonical_value(_call_rule(rule, ctx, call_args, _numpy_names(node.target, kind, kwargs)))
                family = rule.name
            except UnsupportedArgument as refused:
                # a call the hand rule does not model (computed pad amounts, a tensor index, a
                # strided view): torch's own semantics may answer exactly. Not for a module: its
                # attributes are what the rule refused, and its forward may take a backend path
                # whose checks the meta kernel lacks (empty transposed-convolution outputs)
                if kind == "module" or isinstance(refused, (UnsupportedWhereMetaDiffers, SizeCases)):
                    raise
                ctx = self._context(name, op, node)
                try:
                    value = _canonical_value(_meta(ctx, node, call_args, kwargs, self._meta_cache))
                except UnsupportedOperation as meta_refused:  # (a layout by cases: analyze() takes each)
                    detail = f"{refused.detail}; and {meta_refused.detail}"
                    raise meta_refused if isinstance(meta_refused, SizeCases) else UnsupportedArgument(
                        refused.op, refused.where, refused.node, detail) from None
                family = "meta"
                value = loosened(value, tensors_in((call_args, kwargs)))
            else:
                inputs = tensors_in((call_args, kwargs))
                policy = _memory_format(rule, ctx, inputs)
                if policy != "guard" and policy:
                    value = _kernel_value(value, inputs[0], policy, op)
                else:
                    if not _final_layout(rule, value) and has_tensor(value) and not all(t.contiguous for t in inputs):
                        value = self._layout(rule, node, name, op, kind, module, call_args, kwargs, value)
                    if policy:
                        value = _kernel_value(value, inputs[0], policy, op)
                    if not _final_layout(rule, value):
                        value = loosened(value, inputs)
                dtype = _result_dtype(rule, node, call_args, kwargs)
                if dtype is not NOT_PROBED and isinstance(value, SymTensor):
                    value = value.with_dtype(dtype)
                if rule.name in _DTYPE_CHECKED:
                    refused = dtypes.refusal(node.target, call_args, kwargs)
                    if refused is not None:
                        ctx.never(refused)
        self._applied({op: family})
        value = self._bind(node, kind, family, call_args, kwargs, value, ctx.wrote)
        tensor_inputs = tensors_in((call_args, kwargs))
        if family == "cases":  # what each side's layers round, on that side
            ctx.roundings += _side_roundings(self._side_steps)
        elif family == "meta" and kind == "module":  # no derivation: its floors are its roundings
            ctx.roundings += _floors_added(tensor_inputs, value, op)
        self._earlier.update(_single_size_facts(ctx.requirements, (*ctx.facts, *self._earlier)))
        if has_tensor(value):
            self.steps.append(Step(ctx.step, op, tuple(t.shape for t in tensor_inputs), shapes_of(value), family,
                                   tuple(ctx.requirements), node.name, kind, module, tuple(ctx.roundings),
                                   tuple(ctx.derivations), isinstance(value, Pieces) and any(value.requires),
                                   self._side_steps if family == "cases" else (), tuple(ctx.bounds)))
            self._record_fixed(ctx, node, name)
            if family == "cases":  # its fixed layers, where every side that runs calls them alike
                for step, key, fixed in self._side_linears:
                    self.steps.append(replace(step, node=node.name))
                    if key not in self.in_features:
                        self.in_features[key], self.fixed[key] = fixed.reaching, fixed
        elif ctx.requirements:
            # a size query with a requirement (rare): attach it to a step so it is still checked
            self.steps.append(Step(ctx.step, op, tuple(t.shape for t in tensor_inputs), (), family,
                                   tuple(ctx.requirements), node.name, kind, module))


    def _record_fixed(self, ctx: Context, node: torch.fx.Node, name: str) -> None:
        """The sizes this step's parameters fix (Context.fixes), as fixed layers: a function's only
        where the tensor that fixes it is one of the model's parameters or buffers (``x @ self.W``,
        not ``q @ k``); a size that is the same and right at every input size only where the
        rule says the layer is one users ask about (``Fixed.always``: a Linear, not a conv's
        in_channels)."""
        for i, f in enumerate(ctx.fixed):
            if f.weight is not None:
                source = _argument(node, *f.weight)
                if not isinstance(source, torch.fx.Node) or source.op != "get_attr":
                    continue
                f = replace(f, parameter=f"{source.target}.{f.parameter}")
            reaching = canonical(f.reaching)
            if not (f.always or f.declared is None or reaching.free_symbols or reaching != f.declared):
                continue
            key = name if i == 0 else f"{name} ({f.parameter})"
            if any(g.layer == name and (g.reaching, g.declared) == (reaching, f.declared) for g in self.fixed.values()):
                continue  # the same size as this layer's first (a MultiheadAttention's kdim, called with x, x, x)
            if key not in self.in_features:
                call = self._calls_of(name) - 1  # this step is the last one
                self.in_features[key], self.fixed[key] = reaching, replace(f, reaching=reaching, layer=name,
                                                                           call=max(call, 0))


def _argument(node: torch.fx.Node, position: int, keyword: str):
    """The fx node's argument at ``position`` (or passed as ``keyword``), or None."""
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(keyword)


def _submodule(module: nn.Module, name: str, traced: nn.Module | None) -> nn.Module | None:
    """The submodule ``name`` of ``module``: a step traced in a module of the same fingerprint
    names the layer of the one it now stands for."""
    try:
        found = module.get_submodule(name)
    except AttributeError:
        return traced
    return found if type(found) is type(traced) else traced


class _Submodules:
    """:func:`_submodule` for the many steps of one module call: the module's submodules by
    qualified name, listed once (every path, shared modules under each of their names); a name
    not listed is asked of ``get_submodule`` itself."""

    def __init__(self, module: nn.Module, original: nn.Module | None = None):
        self.module, self.named = module, None
        #: the module of the call first traced, and its submodules' paths in it (by identity)
        self.original, self.paths = original, None

    def get(self, name: str, traced: nn.Module | None) -> nn.Module | None:
        if self.named is None:
            self.named = dict(self.module.named_modules(remove_duplicate=False))
        found = self.named.get(name)
        if found is None:
            return _submodule(self.module, name, traced)
        return found if type(found) is type(traced) else traced

    def corresponding(self, traced: nn.Module) -> nn.Module:
        """The submodule of this call's module at the path ``traced`` has in the call first
        traced's module (``traced`` itself where it has none there: a module both calls reach)."""
        if self.paths is None:
            self.paths = {}
            for path, m in (self.original.named_modules(remove_duplicate=False) if self.original is not None else ()):
                self.paths.setdefault(id(m), path)
        path = self.paths.get(id(traced))
        return traced if path is None else self.get(path, traced) if path else self.module


def _copied(step: Step, **changes) -> Step:
    """``dataclasses.replace(step, **changes)`` for the fields :meth:`Propagator._repeat` sets
    (Step has no ``__post_init__``): the same object, made without its ``__init__``, which a
    stage of copied blocks calls thousands of times."""
    out = object.__new__(Step)
    out.__dict__.update(step.__dict__)
    out.__dict__.update(changes)
    return out


def _fixed_on_every_side(props: list[Propagation]) -> list[tuple[Step, str, Fixed]]:
    """The fixed layers a branching module calls, each as a step of its own (named in the module)
    with its key and :class:`Fixed`, where every side that runs calls it with the same shapes: so
    ``check()`` and ``in_features`` see a Linear behind the model's own guard. Their checks stay
    the branching step's (each side's, under its conditions)."""
    if not props:
        return []
    found: dict[str, tuple[Step, str, Fixed]] = {}
    for prop in props:
        steps = {step.name: step for step in prop.steps if step.kind == "module"}
        here = {}
        for key, fixed in prop.fixed.items():
            step = steps.get(fixed.layer)
            if step is not None:
                here.setdefault(key, (replace(step, requirements=()), key, fixed))
        if prop is props[0]:
            found = here
        found = {k: v for k, v in found.items() if k in here and here[k][2] == v[2]
                 and (here[k][0].inputs, here[k][0].output) == (v[0].inputs, v[0].output)}
    return list(found.values())


_BOOL_RESULTS = {operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, torch.eq, torch.ne,
                 torch.lt, torch.le, torch.gt, torch.ge, torch.logical_and, torch.logical_or, torch.logical_xor,
                 torch.logical_not, torch.isnan, torch.isinf, torch.isfinite, "eq", "ne", "lt", "le", "gt", "ge",
                 "logical_and", "logical_or", "logical_xor", "logical_not", "bool", "isnan", "isinf"}
_CAST_METHODS = {"long": torch.int64, "int": torch.int32, "float": torch.float32, "double": torch.float64,
                 "half": torch.float16, "bfloat16": torch.bfloat16, "bool": torch.bool}


def _final_layout(rule: Rule, value) -> bool:
    """Whether the layout a rule gives its output is torch's (Rule.layout): always (True), or for
    an output torch allocates afresh that is not 4D or 5D ("fresh": torch.stack)."""
    return rule.layout is True or rule.layout == "fresh" and isinstance(value, SymTensor) and value.ndim not in (4, 5)


def _result_dtype(rule: Rule, node: torch.fx.Node, args, kwargs):
    """The dtype of a hand rule's result where it is not what the rule gave (comparisons, casts,
    type promotion: symshape.dtypes), None for a float symshape does not track; NOT_PROBED to
    keep the rule's."""
    target = node.target
    try:
        if target in _BOOL_RESULTS:
            return torch.bool
        if target in DTYPE_BY_RULE:
            return NOT_PROBED
    except TypeError:  # an unhashable target
        return NOT_PROBED
    if node.op == "call_method":
        if target in _CAST_METHODS:
            return _CAST_METHODS[target]
        if target == "to":  # (x.to(dtype); x.to(other) and x.to(device) are promotion's below)
            found = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.dtype)]
            if found:
                return found[0]
    if rule.name in _PROMOTING and target not in _RANDOM:
        promoted = dtypes.result_dtype(target, args, kwargs)
        if promoted is not NOT_PROBED:
            return promoted
    if node.op in ("call_method", "call_function") and args and isinstance(args[0], SymTensor):
        return args[0].dtype if args[0].dtype is not None else NOT_PROBED
    return NOT_PROBED


#: the hand rules whose result's dtype is torch's type promotion of the arguments', asked of
#: torch (symshape.dtypes); elsewhere it is the first tensor argument's
_PROMOTING = frozenset({"elementwise", "elementwise_method", "elementwise3", "elementwise_in_place", "reduction",
                        "same_shape_function", "same_shape_method", "cat", "stack"})
#: ... and those whose checks of dtypes alone (``long += 0.5``, ``bool - bool``) are torch's, at every size
_DTYPE_CHECKED = frozenset({"elementwise", "elementwise_method", "elementwise3", "elementwise_in_place"})
#: ops of those rules that draw random numbers: never run on witnesses (torch's RNG is the user's)
_RANDOM = frozenset({F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
                     F.rrelu, F.rrelu_, torch.dropout, torch.rrelu})


#: views: torch decides them from the strides alone, the same on every device
_VIEWS = frozenset({"view", "view_as", "unflatten"})
#: methods whose result depends on the strides, not only on the sizes
_STRIDED_METHODS = frozenset({"view", "view_as", "unflatten", "is_contiguous", "stride", "data_ptr",
                              "storage_offset", "as_strided"})

#: ops that check index entries (data) against a size: torch's meta kernels cannot see the
#: entries, so where that size depends on the input their answer would skip a check torch makes
_INDEXING = frozenset({"gather", "take", "take_along_dim", "index_add", "index_copy", "index_fill", "index_put",
                       "index_reduce", "scatter", "scatter_add", "scatter_reduce", "put", "index",
                       "_unsafe_index", "_unsafe_index_put", "masked_scatter"})


def _indexing(node: torch.fx.Node) -> bool:
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return name.rstrip("_") in _INDEXING or name.split(".")[0] in _INDEXING


def _records_in(value) -> list[Record]:
    """The :class:`~symshape.records.Record` objects in a call's arguments (through lists, tuples
    and dicts)."""
    if isinstance(value, Record) and not value.mapping:
        return [value]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _records_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _records_in(v)]
    return []


def _refuse_records(node: torch.fx.Node, op: str, args, kwargs) -> None:
    """An object of the model's class handed to a call symshape runs on its own (a module run
    whole or traced side by side, a function without a rule) is refused by name: the call may
    change it (a cache's ``update``), and a copy would not show the change to the code after."""
    found = _records_in((args, kwargs))
    if found:
        where = node.target if node.op == "call_module" else scope_of(node)
        raise ObjectArgument(op, where or "(model)", node.format_node(),
                             f"an argument of type {found[0].kind}, an object of the model's own class: symshape "
                             "follows such an object only into the model's output (a call it runs on its own may "
                             "change the object, and the code after it would not see the change)")


def _counted_pieces(value) -> bool:
    """Whether ``value`` holds chunk() pieces whose count depends on the size (anywhere inside)."""
    if isinstance(value, Pieces):
        return any(value.requires) or any(_counted_pieces(v) for v in value)
    if isinstance(value, (tuple, list)):
        return any(_counted_pieces(v) for v in value)
    if isinstance(value, dict):
        return any(_counted_pieces(v) for v in value.values())
    return False


def _exact_strides_asked(ctx: Context, x: SymTensor, args, kwargs) -> None:
    """``x.stride()`` (or ``x.stride(d)``) returns the strides themselves, so a dim that may have
    size 1 must have its stride exactly: where symshape records another than torch's there
    (``loose``: after ``contiguous()`` of a tensor that is contiguous at some sizes, a view of a
    non-contiguous one), the call is refused (``x.transpose(1, 2).contiguous().stride()`` at T = 1
    is ``(64, 1, 64)`` in torch: no copy was made)."""
    if x.exact_strides or x.ndim == 0:
        return
    dims = range(x.ndim)
    if args or "dim" in kwargs:
        d = args[0] if args else kwargs["dim"]
        if not isinstance(d, int) or not -x.ndim <= d < max(x.ndim, 1):
            return  # (torch's own message, from the meta kernel)
        dims = [d % x.ndim]
    doubtful = [x.shape[i] for i in dims if not (x.shape[i].is_Integer and x.shape[i] != 1
                                                 or ctx.proves(sympy.Ge(x.shape[i], 2)))]
    if doubtful:
        ctx.unsupported(f"stride() of a tensor with a dim of size {doubtful[0]}, which may be 1: torch's stride "
                        "of a dim of size 1 depends on how it made the tensor there, which symshape does not follow")


def _meta(ctx: Context, node: torch.fx.Node, args, kwargs, cache: dict | None = None):
    """No hand rule: torch's own meta kernel, on every side of its branches (symshape.meta).
    ``cache``: results by the call's signature (the op, its arguments' shapes and values): the
    twelve attention blocks of a ViT ask the same question twelve times."""
    if _counted_pieces((args, kwargs)):
        raise UnsupportedOperation(ctx.op, ctx.step, ctx.node,
                                   "the chunks of a chunk() whose number depends on the size (torch's meta "
                                   "kernel would see every piece, the missing ones too)")
    if _indexing(node) and args and isinstance(args[0], SymTensor) and not all(d.is_Integer for d in args[0].shape):
        raise UnsupportedOperation(ctx.op, ctx.step, ctx.node,
                                   "indexing a tensor whose sizes depend on the input: torch checks each index "
                                   "against them, and its meta kernel cannot see the indices")
    if node.op == "call_method":
        name = node.target
        if name in _STRIDED_METHODS and isinstance(args[0], SymTensor) \
                and (args[0].known_strides is None or name == "stride" and not args[0].exact_strides):
            args = (resolved(ctx, args[0]), *args[1:])  # (where a view or reshape recorded where it came from)
        if name in _STRIDED_METHODS and isinstance(args[0], SymTensor) and args[0].known_strides is None:
            ctx.unsupported(f"{name} of a tensor whose strides symshape does not know (after an op "
                            "whose output layout it does not follow): torch's answer depends on them; "
                            "use reshape, or .contiguous() first")
        if name in _STRIDED_METHODS and isinstance(args[0], SymTensor):
            require_layout(ctx, args[0])
        if name == "stride" and isinstance(args[0], SymTensor):
            _exact_strides_asked(ctx, args[0], args[1:], kwargs)

        def call(self, *a, **k):
            return getattr(self, name)(*a, **k)
    else:
        call = node.target
    key = None
    if cache is not None:
        try:
            key = (node.op, node.target, _signature(args), _signature(kwargs))
            hash(key)
        except TypeError:  # an argument that is not a plain value: not cached
            key = None
    return _meta_value(ctx, call, args, kwargs, cache, key, node.op == "call_method" and node.target in _VIEWS)


def _signature(value):
    """A hashable description of a call's argument: tensors by shape, layout and dtype."""
    if isinstance(value, SymTensor):
        return ("tensor", value.shape, value.contiguous, value.strides, value.dtype, value.index_bound,
                value.sized or value.entry_range is not None)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_signature(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _signature(v)) for k, v in value.items())))
    if isinstance(value, (torch.Tensor, nn.Module)):
        raise TypeError("not a plain value")
    return (type(value).__name__, value)


def _meta_value(ctx: Context, call, args, kwargs, cache: dict | None = None, key=None, view: bool = False):
    """``call``'s value from torch's meta kernels; its checks recorded on ``ctx``; a refusal named
    (``view``: a view of known strides, which torch refusing at every size is an answer)."""
    result = cache.get(key) if key is not None else None
    if result is None:
        try:
            result = run_meta(call, tuple(args), dict(kwargs), ctx.op)
        except MetaRefusal as e:
            if view and str(e).startswith("torch raises at every size"):
                # a view of strides symshape knows: torch's view decides them alike on every device
                return _refused_view(ctx, args, str(e).partition(": ")[2])
            raise UnsupportedOperation(ctx.op, ctx.step, ctx.node, f"torch's meta kernel: {e}") from e
        if key is not None:
            cache[key] = result
    for r in result.requirements:
        ctx.require(r.lhs, r.relation, r.rhs, r.reason, unless=r.unless, data_dependent=r.data_dependent,
                    condition=r.condition)
    if result.wrote:  # by their place among the tensors it was given
        given = tensors_in((args, kwargs))
        ctx.wrote += [(given[i], sized) for i, sized in result.wrote.items()]
    return ranges.marked_sized(result.value) if result.sized else result.value


def _refused_view(ctx: Context, args, error: str):
    """A view torch refuses at every size, given the strides symshape knows: refused outright,
    or, where those strides hold only under a guard (symshape.tensor.kernel_layout), refused
    where the guard holds and, where it fails, as the guard's own requirement says (torch's
    memory format there is not known); the shape the view asks for, where it runs."""
    x, sizes = args[0], args[1:]
    if not x.guard or len(sizes) == 0:
        ctx.refuse(error)
    if len(sizes) == 1 and isinstance(sizes[0], SymTensor):  # view_as
        shape = sizes[0].shape
    else:
        shape = view_shape(ctx, x, list(sizes[0]) if isinstance(sizes[0], (list, tuple)) else list(sizes),
                           "view").shape
    unless = None
    for g in x.guard:  # where a guard fails (its size below 2), torch's strides are not known
        unless = Requirement(1, ">=", g.lhs, "", unless=unless)
    ctx.require(0, "never", 0, error.replace("{", "{{").replace("}", "}}"), unless=unless)
    return SymTensor(shape)


def _floors_added(inputs: list[SymTensor], value, op: str) -> list[Rounding]:
    """The floor divisions in ``value``'s sizes that its inputs' sizes do not have: the divisions
    a module run whole (or by sides) rounds, each under the conditions of the case it is in."""
    seen = {f for t in inputs for d in t.shape for f in as_expr(d).atoms(FloorDiv)}
    found: dict = {}

    def walk(e, when: tuple) -> None:
        if isinstance(e, sympy.Piecewise):
            earlier: list = []
            for v, c in e.args:
                walk(v, (*when, *earlier, *(() if c is sympy.true else (c,))))
                earlier.append(sympy.Not(c))
            return
        if isinstance(e, FloorDiv) and e not in seen:
            found.setdefault((e, when), None)
        for a in e.args:
            walk(a, when)

    for t in tensors_in(value):
        for d in t.shape:
            walk(as_expr(d), ())
    return [Rounding(f.args[0], int(f.args[1]), f"{op}: a division by {f.args[1]}", when) for f, when in found]


def _side_roundings(sides: tuple) -> list[Rounding]:
    """The roundings of the steps on each side of a module traced by sides, each under that
    side's conditions (its merged shapes may hold a floor a side never computes: ``floor((L +
    1)/2)`` for both sides of a pad to even length)."""
    found: dict = {}
    for conditions, steps, _error, _shapes in sides:
        for step in steps or ():
            for r in step.roundings:
                found.setdefault(replace(r, when=(*conditions, *r.when)), None)
    return list(found)


def _flat(value) -> list:
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return [x for v in value for x in _flat(v)]
    return [value]


def _meta_call(ctx: Context, node: torch.fx.Node, kind: str, call_args, kwargs, cache):
    """A function's or method's value on torch's meta kernels; an op torch tags pointwise whose
    operands' dtypes the CPU kernel refuses (``bitwise_and`` of floats, which the meta kernel
    runs) is refused at every size, as the CPU does."""
    value = _canonical_value(_meta(ctx, node, call_args, kwargs, cache))
    if ranges.pointwise(node.target, kind):
        refused = dtypes.refusal(node.target, call_args, kwargs)
        if refused is not None:
            ctx.never(refused)
    return value


#: the numpy names torch's argument parser takes for its own (``x.mean(axis=2, keepdims=True)``)
_NUMPY_NAMES = {"axis": "dim", "keepdims": "keepdim"}


def _numpy_names(target, kind: str, kwargs: dict) -> dict:
    """``kwargs`` with numpy's names of ``dim`` and ``keepdim`` renamed, for a call of one of
    torch's native functions or methods (whose argument parser takes them: IBert's
    ``x.mean(axis=2)``); as they are for any other (a Python function, ``Tensor.split``, raises
    on them as torch does)."""
    if not any(k in _NUMPY_NAMES for k in kwargs):
        return kwargs
    native = isinstance(target, types.BuiltinFunctionType) if kind == "function" else \
        kind == "method" and isinstance(getattr(torch.Tensor, target, None), types.MethodDescriptorType)
    if not native:
        return kwargs
    return {_NUMPY_NAMES[k] if k in _NUMPY_NAMES and _NUMPY_NAMES[k] not in kwargs else k: v for k, v in kwargs.items()}


def _call_rule(rule: Rule, ctx: Context, args, kwargs):
    """``rule.fn(ctx, *args, **kwargs)``; a call the rule's signature or types do not fit is refused."""
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
