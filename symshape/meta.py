"""The generic rule: torch's own meta kernels, run on symbolic sizes, with every branch explored.

An op without a hand rule (``F.batch_norm``, ``torch.matmul``, ``F.scaled_dot_product_attention``,
``Tensor.roll`` ...) is run on fake tensors (``torch._subclasses.fake_tensor``) whose sizes are
symbolic integers of a ``torch.fx.experimental.symbolic_shapes.ShapeEnv``. torch's shape
functions then compute the output sizes as sympy expressions -- torch's own formulas -- and ask
the ShapeEnv whenever they branch on a size (``if size == 1``, ``torch._check(out >= 1)``).

torch.export answers such a question with the example size and records a guard: the result then
holds only near the example. Here the ShapeEnv answers it from what is known for *every* size
(value ranges: sizes are positive; the op's input sizes are non-negative; the answers already
given on this path), and when that does not decide it, the question is a **branch**: the op is
run again with each answer, depth first, up to :data:`MAX_LEAVES` runs. The leaves then become

* a ``Requirement`` for every side on which torch raises, carrying torch's own message (the
  false side of a ``torch._check``);
* the output shape, where every side that runs agrees, or a ``Piecewise`` of the sides.

So the result is exact: no size is specialized. What cannot be converted exactly (a size torch
computes in floating point, a size defined by cases as an input) is refused by name.

Layout: a tensor whose strides symshape knows (after permute, transpose, slicing ... or from an
earlier run here) is made with exactly those strides, so torch's ``view`` decides from them as it
does at run time; the output's strides are read back as torch computed them. Where torch answers a
question that only picks a layout (is it contiguous? channels last?) it is not a branch: the sizes
come out the same either way, and the strides are torch's choice for the symbolic case.

Limits: symshape does not track dtypes, so fake inputs are float32 (an op that needs an integer
tensor is refused with torch's message, as at every size); a ``view`` of a tensor whose strides are
not known is refused.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import sympy
import torch
from torch._dispatch.python import enable_python_dispatcher
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils import _pytree as pytree
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode, ShapeEnv
from torch.fx.experimental.symbolic_shapes import SLoc as _SLoc
from torch.utils._sympy import functions as tf
from torch.utils._sympy.numbers import int_oo
from torch.utils._sympy.value_ranges import ValueRangeError, ValueRanges

from .dims import (CeilSqrt, DoubleFloor, DoubleProduct, FloorDiv, IntSqrt, RelPosReach, SizeRatio, as_expr, by_size,
                   canonical, decide, equal_where, floor_div, implied, smallest_value_where, without_ite)
from .modules import untraced
from .requirements import Requirement, cnf, literal, unless_not
from .records import Record
from .tensor import (CONV_MEMORY_FORMAT, LAYOUT_NOT_FOLLOWED, SymTensor, kernel_layout, standard_strides, tensors_in,
                     tuple_like)

__all__ = ["MAX_LEAVES", "MetaRefusal", "MetaResult", "Side", "merge_sides", "run_meta"]

#: the most runs of one op (sides of its branches) before symshape refuses it
MAX_LEAVES = 64


class MetaRefusal(Exception):
    """torch's meta kernel gives no exact answer here (a size computed in floating point, one
    that depends on the data, more than MAX_LEAVES sides, a refusal at every size)."""


class _Impossible(Exception):
    """The answers taken on this run contradict each other: no size takes this side."""


class _Env(ShapeEnv):
    """A ShapeEnv that never specializes: every question on sizes is answered for all sizes, or
    along ``path`` (the answers chosen for this run), or -- a new branch -- True, recorded."""

    def __init__(self, path: list[bool]):
        super().__init__(specialize_zero_one=False)
        self.path, self.at = list(path), 0
        self.decisions: list[tuple[sympy.Basic, bool]] = []
        self.memo: dict[sympy.Basic, bool] = {}
        self.syms: "_Symbols | None" = None  # set by _Symbols: converts questions to symshape's sizes
        #: equalities taken on this path (``h*w == 0``), substituted into later questions:
        #: torch's ShapeEnv only replaces a lone symbol
        self.equalities: list[tuple[sympy.Expr, sympy.Expr]] = []

    # torch records where each symbol is made for its own logs and messages, none of which
    # symshape reports: from a forward's depth that walks (and formats) the whole stack, several
    # ms a symbol (edgenext's positional encoding: a quarter of its analysis), and on first use
    # imports torch.export. This env logs nothing and knows no place.

    def _get_stack_summary(self, is_debug: bool = False, framework_loc=None):
        return _SLoc(framework_loc or "symshape", None), ""

    def _log_create_unbacked_symbol(self, *args, **kwargs) -> None:
        pass

    def assume(self, fact: sympy.Basic) -> None:
        """Take ``fact`` as known on this run: equalities become replacements (``H == 1``
        substitutes 1 for H), other facts refine ranges and join the axioms."""
        fact = self.simplify(fact)
        if isinstance(fact, sympy.Not) and isinstance(fact.args[0], sympy.Rel):
            fact = fact.args[0].negated
        for part in sympy.And.make_args(fact):
            if isinstance(part, sympy.Rel):  # torch's axioms are relations (a disjunction is not kept)
                self._maybe_guard_rel(part)
                self.axioms.update(dict(self.get_implications(part)))
                if isinstance(part, sympy.Ne):
                    self._exclude(part)
                elif isinstance(part, sympy.Eq):
                    self._equality(part.lhs - part.rhs)

    def _exclude(self, ne: sympy.Ne) -> None:
        """``u != k`` at an end of u's range narrows the range (torch keeps only the axiom)."""
        sym, k = (ne.lhs, ne.rhs) if ne.rhs.is_number else (ne.rhs, ne.lhs)
        if not k.is_Integer:
            return
        if not (sym.is_Symbol and sym in self.var_to_range):
            try:  # a compound size (h*w != 0 with h*w >= 0): the axiom h*w >= 1
                r = self.bound_sympy(sym)
            except Exception:  # noqa: BLE001
                return
            if r.lower == k:
                self.axioms.update(dict(self.get_implications(sympy.Ge(sym, k + 1))))
            elif r.upper == k:
                self.axioms.update(dict(self.get_implications(sympy.Le(sym, k - 1))))
            return
        r = self.var_to_range[sym]
        if r.lower == r.upper:  # a size pinned to k on this path: an impossible side, left as is
            return
        if r.lower == k:
            self.var_to_range[sym] = ValueRanges(k + 1, r.upper)
        elif r.upper == k:
            self.var_to_range[sym] = ValueRanges(r.lower, k - 1)

    def _equality(self, diff) -> None:
        """Record ``diff == 0`` as a substitution, factors known positive cancelled
        (``96*u0*h*w - 301056*u0 == 0`` with ``u0 >= 1``: ``h*w -> 3136``)."""
        keep = [f for f in sympy.Mul.make_args(sympy.factor(diff)) if not f.is_number
                and not (f.is_Symbol and f in self.var_to_range and self.var_to_range[f].lower >= 1)]
        if len(keep) != 1:
            return
        c, rest = keep[0].as_coeff_Add()
        if rest.could_extract_minus_sign():
            c, rest = -c, -rest
        if not rest.is_Symbol and not rest.is_number:
            self.equalities.append((rest, -c))

    def _signs_out(self, rel):
        """``a*b rel c*b`` as ``a - c rel 0`` where ``b`` has a known sign on every size of
        this path (torch's value ranges): products of sizes ask the same question many ways."""
        if not isinstance(rel, sympy.Rel):
            return rel
        try:
            diff = sympy.factor(rel.lhs - rel.rhs)
        except Exception:  # noqa: BLE001 - torch's functions that sympy cannot factor
            return rel
        kept, flip = [], False
        for f in sympy.Mul.make_args(diff):
            if f.is_number:
                if f == 0:
                    return rel
                flip ^= bool(f < 0)
                continue
            try:
                r = self.bound_sympy(f)
            except Exception:  # noqa: BLE001
                kept.append(f)
                continue
            if r.lower > 0:
                continue
            if r.upper < 0:
                flip = not flip
                continue
            kept.append(f)
        if len(kept) == len(sympy.Mul.make_args(diff)):
            return rel
        left = sympy.Mul(*kept)
        if isinstance(rel, (sympy.Eq, sympy.Ne)):
            return type(rel)(left, 0)
        kind = type(rel)
        if flip:
            kind = {sympy.Gt: sympy.Lt, sympy.Lt: sympy.Gt, sympy.Ge: sympy.Le, sympy.Le: sympy.Ge}[kind]
        return kind(left, 0)

    def _decided(self, expr):
        """A condition on one size that is true at every size, or at none (symshape's own exact
        test, for the floor and ceiling arithmetic torch's value ranges leave open)."""
        if self.syms is None:
            return None
        try:
            ours = self.syms.expr_from_torch(self._known(expr))
        except (MetaRefusal, ValueError, TypeError):
            return None
        answer = decide(ours)
        return None if answer is None else (sympy.true if answer else sympy.false)

    def _known(self, expr):
        """``expr`` with this path's equalities substituted (sound: they hold on the path)."""
        for old, new in self.equalities:
            expr = expr.subs(old, new)
        return expr

    def _plain_question(self, expr) -> str:
        try:
            return str(self.syms.expr_from_torch(expr)) if self.syms is not None else str(expr)
        except Exception:  # a question symshape's sizes cannot write: torch's own text
            return str(expr)

    def guard_or_defer_runtime_assert(self, orig_expr, msg, fx_node=None) -> bool:
        """``torch._check`` on a size: a branch like any other (torch raises on its false side)."""
        return bool(self.evaluate_expr(orig_expr))

    def evaluate_expr(self, orig_expr, *args, **kwargs):
        if isinstance(orig_expr, sympy.logic.boolalg.BooleanAtom) or getattr(orig_expr, "is_number", False):
            return orig_expr
        if orig_expr in self.memo:
            return sympy.true if self.memo[orig_expr] else sympy.false
        static = self._maybe_evaluate_static(self._known(orig_expr))
        if static is None:
            static = self._decided(orig_expr)
        if static is not None:
            return static
        plain = self._signs_out(self._known(orig_expr))
        if plain is not orig_expr:  # the same question with factors of known sign taken out
            if isinstance(plain, sympy.logic.boolalg.BooleanAtom):
                return plain
            if plain in self.memo:
                return sympy.true if self.memo[plain] else sympy.false
            static = self._maybe_evaluate_static(plain)
            if static is None:
                static = self._decided(plain)
            if static is not None:
                return static
            orig_expr = plain
        if not isinstance(orig_expr, sympy.logic.boolalg.Boolean) or isinstance(orig_expr, sympy.Expr):
            # (a Symbol is a sympy Boolean too) torch wants a concrete number: no exact answer
            raise MetaRefusal(f"torch asks for the value of the size {orig_expr}")
        if _asked_for_layout():
            # a question that only picks strides or a memory format (is it contiguous? channels
            # last?): the sizes come out the same either way, so it is no branch
            fallback = kwargs.get("fallback_value")
            return sympy.true if fallback else sympy.false
        if len(self.decisions) >= MAX_LEAVES:  # a loop on a size (``while h > 8``) never ends on one side
            raise MetaRefusal(f"the Python branches on the sizes more than {MAX_LEAVES} times on one side "
                              f"(the last condition: {self._plain_question(orig_expr)})")
        if self.at < len(self.path):
            value = self.path[self.at]
        else:
            value = True
            self.path.append(value)
        self.at += 1
        self.decisions.append((orig_expr, value))
        self.memo[orig_expr] = value
        try:
            self.assume(orig_expr if value else sympy.Not(orig_expr))
        except ValueRangeError as e:  # torch's ranges became empty: this side is impossible
            raise _Impossible(str(e)) from e
        return sympy.true if value else sympy.false


#: torch functions whose questions on sizes only choose the output's strides or memory format
_LAYOUT_ONLY = frozenset({
    "is_contiguous", "check_contiguous_sizes_strides", "is_contiguous_for_memory_format",
    "is_contiguous_for_memory_format_or_false", "is_channels_last_contiguous_2d",
    "is_channels_last_contiguous_3d", "is_channels_last_strides_2d", "is_channels_last_strides_3d",
    "is_non_overlapping_and_dense", "is_non_overlapping_and_dense_or_false", "should_swap",
    "compute_elementwise_output_logical_to_physical_perm", "compute_elementwise_output_strides",
    "suggest_memory_format", "are_strides_like_channels_last", "are_strides_like_channels_last_or_false",
    "_compute_contiguous_strides", "make_contiguous_strides_for", "make_channels_last_strides_for",
    "_is_channels_last_contiguous", "compute_required_storage_length",
})


def _asked_for_layout(depth: int = 12) -> bool:
    f = sys._getframe(2)
    for _ in range(depth):
        if f is None:
            return False
        if f.f_code.co_name in _LAYOUT_ONLY:
            return True
        f = f.f_back
    return False


# -- converting between symshape's expressions and torch's -------------------------------------


class _Symbols:
    """symshape's size symbols <-> one ShapeEnv's symbols."""

    def __init__(self, env: _Env):
        self.env = env
        env.syms = self
        self.to_torch: dict[sympy.Symbol, sympy.Symbol] = {}
        self.from_torch: dict[sympy.Symbol, sympy.Symbol] = {}

    def symbol(self, ours: sympy.Symbol) -> sympy.Symbol:
        theirs = self.to_torch.get(ours)
        if theirs is None:
            # unbacked: no example value at all, so nothing can be specialized to one
            theirs = self.env.create_unbacked_symint().node.expr
            self.env.pending_fresh_unbacked_symbols.clear()
            self.env.var_to_range[theirs] = ValueRanges(1, int_oo)  # a size: any positive int
            self.to_torch[ours], self.from_torch[theirs] = theirs, ours
        return theirs

    def atom(self, ours: sympy.Expr) -> sympy.Symbol:
        """A size torch's arithmetic cannot hold (a rounded double product, a rounded root) as one
        more unknown non-negative size: the kernel's answer comes back in terms of it, exactly."""
        theirs = self.to_torch.get(ours)
        if theirs is None:
            theirs = self.env.create_unbacked_symint().node.expr
            self.env.pending_fresh_unbacked_symbols.clear()
            self.env.var_to_range[theirs] = ValueRanges(0, int_oo)
            self.to_torch[ours], self.from_torch[theirs] = theirs, ours
        return theirs

    def expr_to_torch(self, e: sympy.Expr) -> sympy.Expr:
        e = as_expr(e)
        if e.is_Integer:
            return e
        if e.is_Symbol:
            return self.symbol(e)
        if isinstance(e, (DoubleFloor, IntSqrt, CeilSqrt, RelPosReach)) and e.free_symbols:
            return self.atom(e)
        if isinstance(e, FloorDiv):
            return tf.FloorDiv(self.expr_to_torch(e.args[0]), e.args[1])
        if isinstance(e, sympy.floor) and not e.args[0].as_numer_denom()[1].is_number:
            num, den = e.args[0].as_numer_denom()  # a size over a size (a // b), where b != 0
            return tf.FloorDiv(self.expr_to_torch(num), self.expr_to_torch(den))
        if isinstance(e, (sympy.Max, sympy.Min)):
            return (tf.Max if isinstance(e, sympy.Max) else tf.Min)(*(self.expr_to_torch(a) for a in e.args))
        if isinstance(e, sympy.Mod) and e.args[1].is_Integer and e.args[1] > 0:
            return tf.PythonMod(self.expr_to_torch(e.args[0]), e.args[1])  # Python's %, as sizes compute
        if isinstance(e, (sympy.Add, sympy.Mul)):
            num, den = e.as_numer_denom()
            if den != 1:
                # exact: a requirement said it divides (view's -1: numel / the other sizes)
                return tf.CleanDiv(self.expr_to_torch(num), self.expr_to_torch(den))
            return type(e)(*(self.expr_to_torch(a) for a in e.args))
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and e.exp >= 0:
            return sympy.Pow(self.expr_to_torch(e.base), e.exp)
        raise MetaRefusal(f"the size {e} (symshape does not hand {type(e).__name__} sizes to torch's kernels)")

    def cond_to_torch(self, c) -> sympy.Basic:
        """A condition on sizes (relations, And, Or, Not) in torch's symbols."""
        if isinstance(c, sympy.logic.boolalg.BooleanAtom):
            return c
        if isinstance(c, sympy.Rel):
            return type(c)(self.expr_to_torch(c.lhs), self.expr_to_torch(c.rhs))
        if isinstance(c, (sympy.And, sympy.Or, sympy.Not)):
            return type(c)(*(self.cond_to_torch(a) for a in c.args))
        if isinstance(c, sympy.logic.boolalg.ITE):  # (sympy folds Eq(Piecewise, x) into one)
            a, b, d = (self.cond_to_torch(x) for x in c.args)
            return sympy.Or(sympy.And(a, b), sympy.And(sympy.Not(a), d))
        raise MetaRefusal(f"the condition {c}")

    def symint(self, e) -> Any:
        e = as_expr(e)
        if e.is_Integer:
            return int(e)
        return self.env.create_symintnode(self.expr_to_torch(e), hint=None)

    def expr_from_torch(self, e) -> sympy.Basic:
        if isinstance(e, torch.SymInt):
            e = e.node.expr
        if isinstance(e, (int, bool)):
            return sympy.Integer(int(e))
        if not isinstance(e, sympy.Basic):
            raise MetaRefusal(f"torch made a size of type {type(e).__name__}")
        if isinstance(e, sympy.logic.boolalg.BooleanAtom) or e.is_Integer:
            return e
        if e.is_Symbol:
            ours = self.from_torch.get(e)
            if ours is None:
                raise MetaRefusal(f"torch made a size {e} that depends on the data")
            return ours
        args = [self.expr_from_torch(a) for a in e.args]
        kind = type(e)
        if kind in (tf.FloorDiv,) or issubclass(kind, tf.FloorDiv) and kind is not tf.CleanDiv:
            return _floor(args)
        if kind is tf.CleanDiv:
            return args[0] / args[1]
        if kind in (tf.PythonMod, tf.Mod, sympy.Mod):
            return args[0] - args[1] * _floor(args)
        if kind is tf.CeilDiv:
            return _floor([args[0] + args[1] - 1, args[1]])
        if kind in (tf.Max, sympy.Max):
            return sympy.Max(*args)
        if kind in (tf.Min, sympy.Min):
            return sympy.Min(*args)
        if kind is tf.PowByNatural:
            return sympy.Pow(args[0], args[1])
        if kind in _TRUE_DIV:  # a size divided with / : an exact fraction of integers
            if not (args[1].is_Integer and args[1] != 0):
                raise MetaRefusal(f"{args[0]} / {args[1]} divides by a size")
            return args[0] / args[1]
        if kind is tf.ToFloat or kind is getattr(tf, "Identity", None):
            return args[0]
        if kind in (tf.CeilToInt, tf.FloorToInt):  # math.ceil / math.floor of an exact fraction
            num, den = sympy.fraction(sympy.together(args[0]))
            if not den.is_Integer or den <= 0:
                raise MetaRefusal(f"{kind.__name__}({args[0]})")
            return _floor([num + den - 1, den] if kind is tf.CeilToInt else [num, den])
        if kind in (sympy.Add, sympy.Mul, sympy.Pow, sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le,
                    sympy.Lt, sympy.And, sympy.Or, sympy.Not):
            return kind(*args)
        raise MetaRefusal(f"torch computes a size as {kind.__name__}({', '.join(map(str, args))})")


#: torch's true division of sizes (``ih / sh``): exact, as a fraction
_TRUE_DIV = tuple(k for k in (getattr(tf, "IntTrueDiv", None), getattr(tf, "FloatTrueDiv", None)) if k)


def _floor(args) -> sympy.Expr:
    p, q = args
    if q.is_Integer and q > 0:
        return canonical(floor_div(p, int(q)))
    if q.is_number:
        raise MetaRefusal(f"floor({p}/{q}) divides by {q}")
    return canonical(sympy.floor(p / q))  # by a size (a // b of sizes: torch's, where b != 0)


# -- running an op on every side of its branches -----------------------------------------------


@dataclass
class MetaResult:
    """What :func:`run_meta` found: the op's value (SymTensors where torch returns tensors) and
    the requirements torch's checks make, each with torch's message; ``leaves``: how many runs."""

    value: Any
    requirements: list[Requirement]
    leaves: int
    #: a tensor it returns may have entries computed from the sizes (an arange of a size ...)
    sized: bool = False
    #: the tensors it was given that it wrote into (a module's input changed in place), by
    #: their place among ``tensors_in((args, kwargs))``, each with whether what it wrote may
    #: depend on the sizes
    wrote: dict = field(default_factory=dict)


@dataclass
class _Leaf:
    decisions: list[tuple[sympy.Basic, bool]]  # torch's conditions, in this run's symbols
    syms: _Symbols
    value: Any = None  # the structure of shapes, converted to symshape's expressions
    error: str = ""  # torch's message on a side that raises
    #: a side on which a view may be refused, or not, depending on strides symshape does not
    #: know: a data-dependent requirement there (its value is the view's, where it runs)
    layout_unknown: bool = False
    impossible: bool = False  # the path's answers contradict each other: no size is here
    sized: bool = False  # (MetaResult's)
    wrote: dict = field(default_factory=dict)  # (the _Cpu's: by the id of the SymTensor given)


@dataclass
class _Node:
    """A branch (``cond`` in torch's symbols, its two sides) or a leaf."""

    cond: Any = None
    syms: Any = None
    yes: "_Node | None" = None
    no: "_Node | None" = None
    leaf: _Leaf | None = None


def _fake_args(value: Any, syms: _Symbols, cpu: "_Cpu | None" = None):
    if isinstance(value, SymTensor):
        # a negative fixed size: an earlier op's check fails at every size (that is the answer
        # analyze() gives); this op is never reached, and runs here on an empty size instead
        sizes = [0 if d.is_Integer and d < 0 else syms.symint(d) for d in value.shape]
        dtype = value.dtype or (torch.int64 if value.index_bound is not None else torch.float32)
        if value.strides is not None:  # a non-contiguous tensor whose strides are known: exactly those
            fake = torch.empty_strided(sizes, [syms.symint(s) for s in value.strides], dtype=dtype)
        else:
            fake = torch.empty(sizes, dtype=dtype)
        one = value.single_value()
        if one is not None and dtype != torch.bool:  # read as that number where torch takes a size
            fake.item_memo = syms.symint(one)  # (__index__: ``x.new_zeros((b, torch.div(T, w) + 1))``)
        if cpu is not None:
            cpu.given(fake, value)
            if value.index_bound is not None or value.entry_range is not None or value.sized:
                cpu.sized(fake)  # entries computed from sizes, or indices a sort or a pooling returned
        return fake
    if isinstance(value, sympy.Expr):  # (a Symbol is a sympy Boolean too: test Expr)
        return syms.symint(value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_fake_args(v, syms, cpu) for v in value)
    if isinstance(value, list):
        return [_fake_args(v, syms, cpu) for v in value]
    if isinstance(value, dict):
        return {k: _fake_args(v, syms, cpu) for k, v in value.items()}
    return value


def _input_facts(value: Any, syms: _Symbols) -> None:
    """Every size of an input is at least 0 wherever execution reaches the op."""
    if isinstance(value, SymTensor):
        for d in value.shape:
            if not d.is_Integer:
                syms.env.assume(sympy.Ge(syms.expr_to_torch(d), 0))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _input_facts(v, syms)
    elif isinstance(value, dict):
        for v in value.values():
            _input_facts(v, syms)


#: a tensor whose strides torch computes in a form symshape does not convert
UNKNOWN_STRIDES = "unknown"


def _strides(out: torch.Tensor, syms: _Symbols):
    """The output's strides as torch computed them (None: the standard, contiguous ones)."""
    try:
        strides = tuple(syms.expr_from_torch(s) for s in out.stride())
        shape = tuple(syms.expr_from_torch(s) for s in out.shape)
    except MetaRefusal:
        return UNKNOWN_STRIDES
    t = SymTensor(shape, False, strides=strides)
    return None if t.contiguous else t.strides


def _shapes(out: Any, syms: _Symbols, unknown: frozenset = frozenset()):
    """The run's result converted; a tensor whose id is in ``unknown`` has unknown strides."""
    if isinstance(out, torch.Tensor):
        strides = UNKNOWN_STRIDES if id(out) in unknown else _strides(out, syms)
        return ("tensor", tuple(syms.expr_from_torch(s) for s in out.shape), out.dtype, strides)
    if isinstance(out, (list, tuple)):  # a torch.Size (x.shape[-2:]) as a tuple of sizes
        return ("list" if isinstance(out, list) else "tuple", tuple(_shapes(o, syms, unknown) for o in out),
                *_struct(out))
    if isinstance(out, (torch.SymInt, int)) and not isinstance(out, bool):
        return ("size", syms.expr_from_torch(out))
    if out is None or isinstance(out, (bool, float, str, torch.dtype, torch.device)):
        return ("value", out)
    raise MetaRefusal(f"the op returns a {type(out).__name__}")


#: what torch raises when it refuses a size (torch._check raises RuntimeError, ValueError or
#: IndexError; size arithmetic that divides by a size of 0 raises ZeroDivisionError); any other
#: exception is a failure of this method and refuses the op instead
_REFUSALS = (RuntimeError, ValueError, IndexError, ZeroDivisionError)
_NOT_REFUSALS = (GuardOnDataDependentSymNode, NotImplementedError, fake_tensor.UnsupportedFakeTensorException,
                 fake_tensor.FakeTensorDeviceMismatchError, fake_tensor.DynamicOutputShapeException,
                 fake_tensor.DataDependentOutputException, fake_tensor.UnsupportedOperatorException,
                 fake_tensor.UnsupportedMutationAliasingException, fake_tensor.MetadataMismatchError)
#: messages of a RuntimeError that is torch's limit with symbolic sizes, not a refusal of a size
_LIMITS = ("expected to contain only concrete integers", "data-dependent", "data dependent",
           "Cannot call sizes()", "cannot be called on a tensor with symbolic", "unbacked")


#: aten ops that check index entries (data) against the indexed tensor's sizes: a fake tensor
#: has no entries, so the meta kernel skips that check
_INDEXING_OPS = frozenset({"index", "_unsafe_index", "index_select", "gather", "take", "scatter", "scatter_add",
                           "scatter_reduce", "index_put", "_unsafe_index_put", "index_add", "index_copy",
                           "index_fill", "index_reduce", "put", "masked_scatter", "embedding", "embedding_bag",
                           "_embedding_bag", "_index_put_impl"})


def _written(func, args, kwargs) -> list:
    """The tensors an aten op writes into (its schema's mutable arguments: ``self`` of
    ``fill_``, ``out`` of ``add.out``)."""
    at = _WRITES.get(func)
    if at is None:
        at = _WRITES[func] = tuple((i, a.name, a.kwarg_only) for i, a in enumerate(func._schema.arguments)
                                   if a.alias_info is not None and a.alias_info.is_write)
    out = []
    for i, name, kwarg_only in at:
        value = kwargs.get(name) if kwarg_only or i >= len(args) else args[i]
        out += [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]
    return out


#: each aten op's mutable arguments (position, name, keyword-only), as _written asks
_WRITES: dict = {}


def storage_key(t: torch.Tensor | None):
    """What identifies ``t``'s storage, which its views share (while it lives), or None."""
    if t is None:
        return None
    try:
        return t.untyped_storage()._cdata
    except Exception:  # (a tensor subclass without storage)
        return None


#: aten factories whose entries follow from their size arguments (with a size of the input, they
#: depend on it: ``arange(L)``)
_FACTORIES = frozenset({"arange", "linspace", "logspace", "randperm", "tril_indices", "triu_indices"})
#: aten ops that fill a tensor with a number, and where it stands among their arguments
_FILLS = {"full": 1, "scalar_tensor": 0, "fill": 1, "new_full": 2, "full_like": 1}


#: aten ops whose entries count the entries along a dim (a cumsum of ones ends in its size, a norm
#: of ones is its root) or are indices along it (a sort's, a searchsorted's): along a dim whose
#: size depends on the input, so do they (ranges.py follows some of them exactly; here they are
#: only marked)
_ALONG = frozenset({"sum", "nansum", "prod", "cumsum", "cumprod", "count_nonzero", "logsumexp", "logcumsumexp",
                    "linalg_vector_norm", "norm", "trace", "bincount", "histc", "sort", "topk", "kthvalue",
                    "argmax", "argmin", "max", "min", "median", "nanmedian", "mode", "cummax", "cummin",
                    "searchsorted", "bucketize"})


def _along_a_size(func, args, kwargs) -> bool:
    """Whether an :data:`_ALONG` op counts or indexes along a dim whose size is symbolic: the
    dims its ``dim`` argument names, every dim without one (or a size of any tensor it is given
    where the op has no ``dim``: ``searchsorted``'s sorted sequence, ``bucketize``'s boundaries)."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    at = next((i for i, a in enumerate(func._schema.arguments) if a.name == "dim"), None)
    if x is None or at is None:
        return any(isinstance(d, torch.SymInt) for t in pytree.tree_leaves((args, kwargs))
                   if isinstance(t, torch.Tensor) for d in t.shape)
    dim = kwargs["dim"] if "dim" in kwargs else args[at] if at < len(args) \
        else func._schema.arguments[at].default_value
    dims = range(x.dim()) if dim is None or dim == [] else [dim] if isinstance(dim, int) else list(dim)
    return any(isinstance(x.shape[d], torch.SymInt) for d in dims if -x.dim() <= d < max(x.dim(), 1) and x.dim())


#: the reason of a view where symshape does not know the CPU's memory format of its input
_VIEW_UNKNOWN = ("view: its input's memory format on the CPU depends here on strides symshape does not "
                 "follow (a convolution's output, or computed from one)")

#: torch's convolution ops (what F.conv*, F.conv_transpose* and the modules dispatch to)
_CONVOLUTIONS = frozenset({"convolution", "_convolution"})


class _Cpu(TorchDispatchMode):
    """What the CPU does that torch's meta kernels on symbolic sizes do not:

    * an indexing op on a tensor whose sizes depend on the input is refused (see
      _INDEXING_OPS: torch checks each index against those sizes, which no fake tensor can);
    * a convolution's output gets the CPU's memory format (symshape.tensor.CONV_MEMORY_FORMAT:
      channels last where the input suggests it), where torch's meta kernel allocates every
      output contiguous -- so a view of it is decided as on the CPU. Where that format depends
      on sizes of 1 it is a branch; where symshape cannot tell it, the output's layout (and that
      of every tensor computed from it) is unknown on that side, and a view of it there runs as
      a reshape (the same sizes, where it runs), under a data-dependent requirement
      (``viewed_unknown``)."""

    def __init__(self, syms: "_Symbols"):
        super().__init__()
        self.syms = syms
        self.unknown: dict[int, torch.Tensor] = {}  # tensors whose CPU layout is not known, by id
        self.viewed_unknown = False  # a view of one of them: torch may refuse it
        #: tensors whose entries depend on the sizes (an arange of a size, the indices a sort
        #: returns, anything computed from them), by id: an indexing op given one is refused
        self.sized_entries: dict[int, torch.Tensor] = {}
        #: storages such entries were written into in place (by key, with a tensor that keeps
        #: it): every tensor on them, a view taken before the write too, has such entries
        self.sized_storages: dict[int, torch.Tensor] = {}
        #: the storages of the tensors the call was given (by key: the fake, and the id of the
        #: SymTensor it stands for)
        self.inputs: dict[int, tuple] = {}
        #: those the call wrote into (by that id), and whether with entries from the sizes
        self.wrote: dict[int, bool] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name.split("::")[-1].rstrip("_")
        if name in _INDEXING_OPS and args and isinstance(args[0], torch.Tensor) and any(
                isinstance(d, torch.SymInt) for d in args[0].shape):
            raise MetaRefusal(f"{name} indexes a tensor whose sizes depend on the input: torch checks each "
                              "index against them, and a meta kernel cannot see the indices")
        sized = self._sized_entries(func, name, args, kwargs)
        if sized and (name in _INDEXING_OPS or name.startswith("max_unpool")):
            raise MetaRefusal(f"{name} with indices whose entries depend on the sizes (an arange of a size, the "
                              "indices a sort returns, a count along a size): torch checks each against the size "
                              "it indexes, and a meta kernel cannot see them")
        unknown = bool(self.unknown) and any(id(t) in self.unknown for t in pytree.tree_leaves((args, kwargs))
                                             if isinstance(t, torch.Tensor))
        if unknown and func is torch.ops.aten.view.default:
            self.viewed_unknown = True
            out = torch.ops.aten.reshape.default(*args, **kwargs)
            self._forget(out)
            return out
        out = func(*args, **kwargs)
        if sized:
            for t in pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.sized(t)
        for t in _written(func, args, kwargs):
            key = storage_key(t)
            if key is None:
                continue
            if sized:  # (idx[:2].fill_(L): idx's entries too)
                self.sized_storages[key] = t
            given = self.inputs.get(key)
            if given is not None:  # the caller's tensor changed
                self.wrote[given[1]] = self.wrote.get(given[1], False) or sized
        if unknown:
            if not (name in ("clone", "_to_copy") and kwargs.get("memory_format") == torch.contiguous_format):
                self._forget(out)
        elif name in _CONVOLUTIONS and isinstance(out, torch.Tensor):
            out = self._conv_layout(out, args[0], args[1])
        return out

    def sized(self, t: torch.Tensor) -> None:
        self.sized_entries[id(t)] = t

    def given(self, t: torch.Tensor, value: SymTensor) -> None:
        """``t`` is the fake of ``value``, a tensor the call was given."""
        key = storage_key(t)
        if key is not None:
            self.inputs[key] = (t, id(value))

    def has_sized_entries(self, t: torch.Tensor) -> bool:
        return id(t) in self.sized_entries or bool(self.sized_storages) and storage_key(t) in self.sized_storages

    def _sized_entries(self, func, name: str, args, kwargs) -> bool:
        """Whether this op's entries may depend on the sizes: a factory given a size that depends
        on the input (``arange(L)``), one filled with such a size (``full((2,), L)``), an
        elementwise op with such a number (``i * L``), or an op given such a tensor."""
        leaves = None
        if name in _FACTORIES or torch.Tag.pointwise in func.tags:
            leaves = pytree.tree_leaves((args, kwargs))
            if any(isinstance(a, (torch.SymInt, torch.SymFloat)) for a in leaves):
                return True
        elif name in _FILLS:
            if isinstance(args[_FILLS[name]] if len(args) > _FILLS[name] else None, (torch.SymInt, torch.SymFloat)):
                return True
        if name in _ALONG and torch.Tag.pointwise not in func.tags and _along_a_size(func, args, kwargs):
            return True
        if not self.sized_entries:
            return False
        return any(self.has_sized_entries(t) for t in (leaves or pytree.tree_leaves((args, kwargs)))
                   if isinstance(t, torch.Tensor))

    def _forget(self, out) -> None:
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.unknown[id(t)] = t

    def _conv_layout(self, out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        strides = self._cpu_strides(out, x, weight)
        if strides is None:  # not known: a view of it (or of what follows from it) is data-dependent
            self._forget(out)
            return out
        if strides == "as is":
            return out
        return torch.empty_strided(out.shape, [self.syms.symint(s) for s in strides], dtype=out.dtype,
                                   device=out.device)

    def _cpu_strides(self, out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor):
        """The strides the CPU gives a convolution's output (in symshape's sizes), ``"as is"``
        where they are the meta kernel's (contiguous), or None where symshape cannot tell."""
        policy = CONV_MEMORY_FORMAT.get(x.dim())
        if policy is None or out.dim() != x.dim():
            return "as is"
        try:
            ours = SymTensor(tuple(map(self.syms.expr_from_torch, x.shape)), False,
                             strides=tuple(map(self.syms.expr_from_torch, x.stride())))
            if ours.contiguous and not ours.loose:
                return "as is"
            shape = tuple(map(self.syms.expr_from_torch, out.shape))
        except MetaRefusal:
            return None
        if not weight.is_contiguous():  # (torch follows a channels-last weight too)
            return None
        layout = kernel_layout(ours, SymTensor(shape), x.dim() - 2, policy, "a convolution")
        if not all(self._holds(g) for g in layout.guard):  # a size of 1 where it follows unknown strides
            return None
        if layout.contiguous:
            return "as is"
        return layout.strides

    def _holds(self, req: Requirement) -> bool:
        """Whether a guard of kernel_layout holds on this side: a branch where it depends."""
        if req.relation != ">=":
            return False
        cond = self.syms.cond_to_torch(sympy.Ge(as_expr(req.lhs), as_expr(req.rhs)))
        if bool(self.syms.env.evaluate_expr(cond)):
            return True
        return req.unless is not None and self._holds(req.unless)


def _run(call: Callable, args, kwargs, path: list[bool], facts: tuple = ()) -> tuple[_Leaf, list[bool]]:
    env = _Env(path)
    syms = _Symbols(env)
    leaf = _Leaf(env.decisions, syms)
    try:
        _input_facts((args, kwargs), syms)
        for fact in facts:  # the case of a Piecewise input this run is in
            env.assume(syms.cond_to_torch(fact))
    except ValueRangeError:
        leaf.impossible = True
        return leaf, env.path
    # the Python dispatcher, as torch.export uses it: Python meta kernels and decompositions for
    # ops whose C++ kernels need concrete sizes (F.pad, interpolate ...)
    with enable_python_dispatcher(), FakeTensorMode(shape_env=env, allow_non_fake_inputs=True), _Cpu(syms) as cpu, \
            (_StridesRead() if isinstance(call, torch.nn.Module) or getattr(call, "runs_module", False)
             else contextlib.nullcontext()):
        fake_args, fake_kwargs = _fake_args(args, syms, cpu), _fake_args(kwargs, syms, cpu)
        try:
            out = call(*fake_args, **fake_kwargs)
        except _Impossible:
            leaf.impossible = True
            return leaf, env.path
        except MetaRefusal:
            raise
        except UserWarning as e:  # (_in_place_refuses: an in-place op's operand does not broadcast to it)
            if not str(e).startswith(_RESIZED):
                raise MetaRefusal(f"running torch's meta kernel failed: {type(e).__name__}: {e}") from e
            leaf.error = "RuntimeError: output with shape doesn't match the broadcast shape (an in-place op)"
            return leaf, env.path
        except _REFUSALS as e:  # torch refuses on this side: a requirement, unless at every size
            if isinstance(e, _NOT_REFUSALS) or any(t in str(e) for t in _LIMITS):
                raise MetaRefusal(f"torch's kernel needs what symbolic sizes cannot give: "
                                  f"{str(e).splitlines()[0][:200]}") from e
            leaf.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            return leaf, env.path
        except Exception as e:  # anything else is a failure of the method, never a refusal by torch
            raise MetaRefusal(f"running torch's meta kernel failed: {type(e).__name__}: {e}") from e
        leaf.value = _shapes(out, syms, frozenset(cpu.unknown))
        leaf.layout_unknown = cpu.viewed_unknown
        leaf.sized = any(cpu.has_sized_entries(t) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor))
        leaf.wrote = cpu.wrote
    return leaf, env.path


class _StridesRead(TorchFunctionMode):
    """``x.stride()`` returns the strides themselves, which torch's meta kernels on symbolic sizes
    choose for the sizes in general (a stride of a dim of size 1, whether a reshape is a view:
    questions answered without a branch, some inside torch's C++ code): a model's or module's own
    code run here that reads them is refused (``x.transpose(2, 3).reshape(N, -1,
    H).stride()`` is another at H == 1). (symshape's own ``stride()`` step runs on a tensor made
    with the strides it knows, and refuses loose ones itself: symshape.engine.)"""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # (torch's own decompositions, and symshape's reading of a result, run under this mode too)
        if func is torch.Tensor.stride \
                and not sys._getframe(1).f_globals.get("__name__", "").startswith(("torch.", "symshape.")):
            raise MetaRefusal("stride() in a module's own code: torch's meta kernels choose strides for the sizes "
                              "in general (where a size is 1, torch's may be others)")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _unpatched():
    """A module run whole runs as in torch for the duration, though fx has patched
    ``nn.Module.__call__`` and ``__getattr__`` (and wrapped functions) while it traces: under
    symshape's own trace its tracer passes this thread's calls through
    (symshape.modules.untraced); under another tracer, fx's patches are undone for the while."""
    with untraced() as passing:
        if passing:
            yield
            return
        try:
            from torch.fx._symbolic_trace import _maybe_revert_all_patches
        except ImportError:  # an older torch
            yield
            return
        with _maybe_revert_all_patches():
            yield


class _QuietHere(logging.Filter):
    """Drops this thread's records: torch's fake-tensor logger reports, as an error, each side of
    a branch on which its kernel raises -- for symshape a requirement, not a failure."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextlib.contextmanager
def _quiet():
    logger = logging.getLogger(fake_tensor.__name__)
    quiet = _QuietHere()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def run_meta(call: Callable, args: tuple, kwargs: dict, what: str, facts: tuple = ()) -> MetaResult:
    with _unpatched(), _quiet(), _in_place_refuses(what):
        return _run_meta(call, args, kwargs, what, facts)


#: the warning torch's Python in-place kernels give where they resize their own input
_RESIZED = "An output with one or more elements was resized"


@contextlib.contextmanager
def _in_place_refuses(what: str):
    """For an in-place method (``Tensor.floor_divide_``): torch's CPU kernel refuses an operand
    that does not broadcast to the tensor ("output with shape [1] doesn't match the broadcast
    shape [8]"), where its Python meta kernel (an ``out=`` wrapper) resizes the tensor with a
    warning; that warning is an error here, on the side where it comes (a requirement)."""
    name = what.rsplit(".", 1)[-1]
    if not (name.endswith("_") and not name.endswith("__")):
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_RESIZED, category=UserWarning)
        yield


def _run_meta(call: Callable, args: tuple, kwargs: dict, what: str, facts: tuple = ()) -> MetaResult:
    """Run ``call(*args, **kwargs)`` on fake tensors with symbolic sizes, on every side of every
    branch torch's shape functions take on a size, and merge the sides exactly. Raises
    :class:`MetaRefusal` (reported by the engine as ``UnsupportedOperation``) where it cannot.

    An input size defined by cases (a ``Piecewise``: a broadcast that depends on a size of 1) is
    run case by case, under each case's condition, and the cases merged the same way."""
    pw = _first_piecewise((args, kwargs))
    if pw is not None:
        return _by_cases(call, args, kwargs, what, facts, pw)
    leaves: list[_Leaf] = []
    todo: list[list[bool]] = [[]]
    while todo:
        if len(leaves) >= MAX_LEAVES:
            raise MetaRefusal(f"{what} branches on the sizes more than {MAX_LEAVES} ways")
        path = todo.pop()
        leaf, full = _run(call, args, kwargs, path, facts)
        leaves.append(leaf)
        for j in range(len(path), len(full)):  # the other side of each new branch, later
            todo.append(full[:j] + [not full[j]])
    leaves = [leaf for leaf in leaves if not leaf.impossible]
    if not leaves:
        raise MetaRefusal(f"{what}: every side symshape explored contradicts itself")  # (_by_cases: no such case)
    if all(leaf.error for leaf in leaves):
        raise MetaRefusal(f"torch raises at every size: {leaves[0].error}")
    root = _collapse(_tree(leaves, 0))
    if root.leaf is not None and root.leaf.error:
        raise MetaRefusal(f"torch raises at every size: {root.leaf.error}")
    requirements: list[Requirement] = []
    value = _emit(root, [], requirements, what)
    wrote = merged_writes(leaf.wrote for leaf in leaves)
    given = tensors_in((args, kwargs))
    return MetaResult(_build(value), requirements, len(leaves), any(leaf.sized for leaf in leaves),
                      {i: wrote[id(t)] for i, t in enumerate(given) if id(t) in wrote})


def _first_piecewise(value: Any):
    if isinstance(value, SymTensor):
        return next((p for d in (*value.shape, *(value.strides or ())) for p in d.atoms(sympy.Piecewise)), None)
    if isinstance(value, sympy.Basic):
        return next(iter(value.atoms(sympy.Piecewise)), None)
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_first_piecewise, value) if p is not None), None)
    if isinstance(value, dict):
        return _first_piecewise(list(value.values()))
    return None


def substitute(value: Any, mapping: dict) -> Any:
    """``value`` (a SymTensor, a size, a SizeRatio, containers of them) with ``mapping``'s
    sub-expressions replaced (sympy's ``xreplace``: structural, never evaluated from text)."""
    if isinstance(value, SymTensor):
        shape = [d.xreplace(mapping) for d in value.shape]
        strides = value.strides and [d.xreplace(mapping) for d in value.strides]
        if tuple(shape) == tuple(value.shape) and (strides is None or tuple(strides) == tuple(value.strides)):
            return value  # (as it is: a layout it records how to compute still holds)
        return value.with_shape(shape, strides=strides) if strides is not None else value.with_shape(shape)
    if isinstance(value, sympy.Basic):
        return value.xreplace(mapping)
    if isinstance(value, DoubleProduct):  # keeps its double semantics (never an exact fraction)
        return DoubleProduct(value.size.xreplace(mapping), value.scale)
    if isinstance(value, SizeRatio):
        return SizeRatio(value.expr.xreplace(mapping))
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple_like(value, (substitute(v, mapping) for v in value))
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        fields = {k: substitute(v, mapping) for k, v in value.items()}
        return Record(value.cls, fields) if isinstance(value, Record) else fields
    return value


def _by_cases(call, args, kwargs, what, facts, pw) -> MetaResult:
    """One run per case of the Piecewise ``pw`` (case i: its condition, and no earlier one's)."""
    results: list[tuple[list, MetaResult]] = []
    earlier: list = []
    leaves = 0
    for value, cond in pw.args:
        here = [*earlier, *([] if cond is sympy.true else [cond])]
        a, k = substitute((args, kwargs), {pw: value})
        try:
            results.append((here, run_meta(call, a, k, what, (*facts, *here))))
            leaves += results[-1][1].leaves
        except MetaRefusal as e:
            if "contradicts itself" in str(e):  # no size is in this case
                earlier.append(sympy.Not(cond))
                continue
            if "at every size" not in str(e):
                raise
            results.append((here, None))  # torch refuses this whole case
        earlier.append(sympy.Not(cond))
        if leaves > MAX_LEAVES:
            raise MetaRefusal(f"{what} branches on the sizes more than {MAX_LEAVES} ways")
    running = [(here, r) for here, r in results if r is not None]
    if not running:
        raise MetaRefusal(f"torch raises at every size of every case of {pw}")
    requirements: list[Requirement] = []
    for here, r in results:
        if r is None:
            requirements += _refusal(here, f"{what}: torch refuses every size where {sympy.And(*here)}")
        else:
            requirements += [out for req in r.requirements for out in _unless_not(req, here)]
    value = _packed(running[-1][1].value)
    for here, r in reversed(running[:-1]):
        value = _cases(_packed(r.value), value, sympy.And(*here) if here else sympy.true, what)
    return MetaResult(_build(value), requirements, leaves, any(r.sized for _, r in running),
                      merged_writes(r.wrote for _, r in running))


def merged_writes(writes) -> dict:
    """Several runs' writes into what they were given (each a dict: the tensor's place or id ->
    whether what was written may depend on the sizes), as one: written where any run wrote."""
    out: dict = {}
    for wrote in writes:
        for i, sized in wrote.items():
            out[i] = out.get(i, False) or sized
    return out


@dataclass
class Side:
    """One side of a module's branches on sizes, traced by symshape (not by torch): the
    conditions asked and their answers (in symshape's sizes), and the value it returns with the
    requirements met on the way, or the message of the error raised on it."""

    decisions: list
    value: Any = None
    requirements: list = field(default_factory=list)
    error: str = ""


class _Ours:
    """The symbol conversion of sides traced by symshape: none."""

    from_torch: dict = {}

    @staticmethod
    def expr_from_torch(e):
        return e


def merge_sides(sides: list[Side], what: str, facts: tuple = (), before: tuple = ()) -> MetaResult:
    """The sides merged as run_meta merges torch's: sides that end alike are one; values that
    differ become Piecewise; a side that raises becomes the requirement that one of its
    conditions fails; each side's own requirements hold only on it. Raises MetaRefusal where
    the sides return different structures, and InvalidInputSize-worthy ``MetaRefusal`` ("raises
    at every size") when every side raises.

    ``facts``: relations of sizes that hold wherever the module returns (torch raised before
    where they fail): two sides' values that they make equal are one value, not a Piecewise
    (BAT's ``7`` where ``H // 7 <= 1`` and ``7*(H // 7)`` elsewhere are one size where an
    ``_assert`` has made ``H`` a multiple of 7).

    ``before``: relations of sizes that hold wherever the module is called (the checks of the
    steps before it): they merge values too, and a side's own check of a size that they imply
    is no check (it changes no valid size, and the earlier check is the one that fails first;
    MONAI's BasicUNet repeated each block's ``H >= 16`` under the four parities of its
    up-sampling's pads, a union the solver took a minute over)."""
    leaves = [_Leaf(list(s.decisions), _Ours, None if s.error else _packed(s.value), s.error) for s in sides]
    facts = (*before, *facts)
    if all(leaf.error for leaf in leaves):
        raise MetaRefusal(f"{what} raises at every size: {leaves[0].error}")
    root = _collapse(_tree(leaves, 0))
    requirements: list[Requirement] = []
    value = _emit(root, [], requirements, what, tuple(facts))
    for side in sides:
        here = [c if answer else sympy.Not(c) for c, answer in side.decisions]
        requirements += [out for req in side.requirements if not _holds_before(req, before)
                         for out in _unless_not(req, here)]
    return MetaResult(_build(value), requirements, len(sides))


def _holds_before(req: Requirement, before: tuple) -> bool:
    """Whether the relations ``before`` imply the plain size check ``req``: proven (symshape.dims.
    implied), or ``lhs - rhs`` bounded below (``>= 0``, or ``>= 1`` for ``!=``) with each size
    counted from the least value they allow (``2*floor(H/16) >= 1`` and
    ``floor(H/8)*floor(W/8) != 1`` where ``H >= 16`` and ``W >= 16``)."""
    proof = req.proven_by()
    if not before or proof is None or req.kind != "size" or req.unless is not None:
        return False  # (a check that holds wherever it is made is none on any backend, for any data)
    if implied(before, proof):
        return True
    if req.relation not in (">=", "!="):
        return False
    low = smallest_value_where(as_expr(req.lhs) - as_expr(req.rhs), before)
    return low is not None and low >= (0 if req.relation == ">=" else 1)


def _packed(value):
    """A built value back in the form _cases merges."""
    if isinstance(value, SymTensor):
        return ("tensor", value.shape, value.dtype, None if value.contiguous else (value.strides or UNKNOWN_STRIDES))
    if isinstance(value, (list, tuple)):
        return ("list" if isinstance(value, list) else "tuple", tuple(_packed(v) for v in value), *_struct(value))
    if isinstance(value, sympy.Expr):
        return ("size", value)
    if isinstance(value, dict):  # (a ModelOutput, a cache: symshape.records) merged by field
        return ("dict", tuple(_packed(v) for v in value.values()), tuple(value), getattr(value, "cls", None))
    return ("value", value)


def _tree(leaves: list[_Leaf], depth: int) -> _Node:
    """The runs as the tree of their decisions (the runs share the questions of a common prefix)."""
    if len(leaves) == 1 and len(leaves[0].decisions) == depth:
        return _Node(leaf=leaves[0])
    cond = leaves[0].decisions[depth][0]
    yes = [leaf for leaf in leaves if leaf.decisions[depth][1]]
    no = [leaf for leaf in leaves if not leaf.decisions[depth][1]]
    if not yes or not no:  # the other side is impossible: no branch here
        return _tree(yes or no, depth + 1)
    return _Node(cond, leaves[0].syms, _tree(yes, depth + 1), _tree(no, depth + 1))


def _collapse(node: _Node) -> _Node:
    """A branch whose two sides end alike (the same shapes, or both raise) is no branch."""
    if node.leaf is not None:
        return node
    yes, no = _collapse(node.yes), _collapse(node.no)
    if yes.leaf is not None and no.leaf is not None:
        a, b = yes.leaf, no.leaf
        if (a.error and b.error) or (not a.error and not b.error and a.value == b.value
                                     and a.layout_unknown == b.layout_unknown):
            return yes
    return _Node(node.cond, node.syms, yes, no)


def _emit(node: _Node, path: list, requirements: list, what: str, facts: tuple = ()):
    """The value on ``node``'s sides (None where every side raises); each side that raises adds
    the requirement that one condition on its path fails. ``facts`` hold wherever a value is
    returned: they only merge values (never a requirement's condition)."""
    if node.leaf is not None:
        if node.leaf.error:
            requirements += _refusal(path, _message(node.leaf.error, node.leaf.syms))
            return None
        if node.leaf.layout_unknown:
            requirements += _refusal(path, _VIEW_UNKNOWN, data_dependent=True)
        return node.leaf.value
    cond = node.syms.expr_from_torch(node.cond)
    yes = _emit(node.yes, [*path, cond], requirements, what, facts)
    no = _emit(node.no, [*path, sympy.Not(cond)], requirements, what, facts)
    if yes is None or no is None:
        return no if yes is None else yes
    return _cases(yes, no, cond, what, (*facts, *path))


def _cases(a, b, cond, what: str, path: tuple = ()):
    """``a`` where ``cond`` holds, else ``b`` (both under the conditions ``path``): equal parts
    stay, others become ``Piecewise``."""
    if a == b:
        return a
    if a[0] != b[0] or (a[0] in ("tuple", "list", "tensor", "dict") and len(a[1]) != len(b[1])) \
            or (a[0] in ("tuple", "dict") and a[2:] != b[2:]):
        raise MetaRefusal(f"{what} returns a different structure or rank depending on the size")
    if a[0] == "tensor":
        return ("tensor", tuple(_either(x, y, cond, path) for x, y in zip(a[1], b[1])),
                a[2] if a[2] == b[2] else None, _merged_strides(a, b, cond, path))
    if a[0] in ("tuple", "list", "dict"):
        return (a[0], tuple(_cases(x, y, cond, what, path) for x, y in zip(a[1], b[1])), *a[2:])
    if a[0] == "size":
        return ("size", _either(a[1], b[1], cond, path))
    raise MetaRefusal(f"{what} returns {a[1]!r} or {b[1]!r} depending on the size")


def _either(x, y, cond, path: tuple):
    """The size ``x`` where ``cond`` holds and ``y`` where it fails: one of them where it equals
    the other on the other's side (proven from the conditions: ``2*floor((H + 1)/2)`` after a
    pad to even is ``H`` on the side where ``H`` was even, no pad), else ``Piecewise``. Without
    that, a branch per block nests its cases into the next block's."""
    if x == y:
        return x
    if isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr):
        # (unevaluated: sympy's attempt asks its assumptions of each floor, and implied() reads
        # only a relation, never what that attempt settles)
        equal = sympy.Eq(x, y, evaluate=False)
        if implied((*path, sympy.Not(cond)), equal):
            return x
        if implied((*path, cond), equal):
            return y
        # ``1`` where ``h*w == 1`` and ``h*w`` elsewhere (a guard of torch's on a product): one size
        if equal_where(x, y, cond, path):
            return y
        if isinstance(cond, sympy.Ne) and equal_where(y, x, cond.negated, path):
            return x
        common = _common_floor(x, y, cond, path)
        if common is not None:
            return common
    return sympy.Piecewise((x, cond), (y, True))


def _common_floor(x: sympy.Expr, y: sympy.Expr, cond, path: tuple) -> sympy.Expr | None:
    """One floor ``c*floor((h + b)/q)`` that is ``x`` where ``cond`` holds and ``y`` where it
    fails, for ``x`` and ``y`` floors of one size ``h`` by the same ``q`` (the offset ``b``
    tried between theirs; each equality proven by :func:`implied`, never guessed), or a product
    of such floors of distinct sizes, factor by factor. A patch embedding that pads ``h`` to a
    multiple of 4 only where ``h % 4 != 0`` gives ``floor((h + 4)/4)`` there and
    ``floor(h/4)`` elsewhere: ``floor((h + 3)/4)``, ``ceil(h/4)``, on both sides (and its
    flattened ``h*w`` grid, ``floor((h + 3)/4)*floor((w + 3)/4)``). None where none is found."""
    (cx, gx), (cy, gy) = by_size(x), by_size(y)
    if gx and gy and (len(gx) > 1 or len(gy) > 1):  # a product of sizes: factor by factor
        if cx != cy or gx.keys() != gy.keys() or any(len(g) != 1 for g in (*gx.values(), *gy.values())):
            return None
        factors = [a if a == b else _common_floor(a, b, cond, path) for a, b in ((gx[h][0], gy[h][0]) for h in gx)]
        return None if any(f is None for f in factors) else cx * sympy.Mul(*factors)
    fx, fy = _floor_form(x), _floor_form(y)
    if fx is None or fy is None or (fx[0], fx[1], fx[3]) != (fy[0], fy[1], fy[3]) or fx[3] > _COMMON_FLOOR_DIVISORS:
        return None
    c, h, _, q = fx
    here, there = (*path, cond), (*path, sympy.Not(cond))
    for b in range(min(fx[2], fy[2]), max(fx[2], fy[2]) + 1):
        z = c * FloorDiv(h + b, q)
        if implied(here, sympy.Eq(z, x, evaluate=False)) and implied(there, sympy.Eq(z, y, evaluate=False)):
            return z
    return None


#: the largest divisor :func:`_common_floor` tries offsets for (as many as the divisor)
_COMMON_FLOOR_DIVISORS = 64


def _floor_form(e: sympy.Expr) -> tuple | None:
    """``(c, h, b, q)`` where ``e`` is ``c*floor((h + b)/q)`` for a size ``h``, integers ``c``,
    ``b`` and ``q > 1``; else None."""
    c, f = e.as_coeff_Mul()
    if not (c.is_Integer and isinstance(f, FloorDiv)):
        return None
    p, q = f.args
    if not q.is_Integer or len(p.free_symbols) != 1:
        return None
    (h,) = p.free_symbols
    b = sympy.expand(p - h)
    return (int(c), h, int(b), int(q)) if b.is_Integer else None


def _merged_strides(a, b, cond, path: tuple = ()):
    """The strides of ``a`` where ``cond`` holds, else of ``b`` (both under the conditions
    ``path``), each one expression where :func:`_either` finds one, as sizes are merged; a dim
    of size 1 on one side takes the other side's stride (torch ignores the stride of a size-1
    dim)."""
    if a[3] == b[3]:
        return a[3]
    if UNKNOWN_STRIDES in (a[3], b[3]):
        return UNKNOWN_STRIDES
    sa = a[3] if a[3] is not None else standard_strides(a[1])
    sb = b[3] if b[3] is not None else standard_strides(b[1])
    out = []
    for na, nb, x, y in zip(a[1], b[1], sa, sb):
        if x == y or na == 1:
            out.append(y)
        elif nb == 1:
            out.append(x)
        else:
            out.append(_either(x, y, cond, path))
    shape = tuple(x if x == y else _either(x, y, cond, path) for x, y in zip(a[1], b[1]))
    return None if SymTensor(shape, False, strides=out).contiguous else tuple(out)


def _struct(value) -> tuple:
    """``(type,)`` of a structseq of torch's (``torch.return_types.max``: ``.values`` and
    ``.indices`` as well as ``[0]`` and ``[1]``), kept through the conversion; else ``()``."""
    kind = type(value)
    return (kind,) if isinstance(value, tuple) and kind.__module__ == "torch.return_types" else ()


def _build(value):
    kind, body = value[0], value[1]
    if kind == "tensor":
        shape, layout = tuple(canonical(_plain(d)) for d in body), value[3]
        if layout is None:
            return SymTensor(shape, dtype=value[2])
        if layout == UNKNOWN_STRIDES:
            return SymTensor(shape, False, dtype=value[2])
        return SymTensor(shape, False, dtype=value[2], strides=tuple(canonical(_plain(s)) for s in layout))
    if kind in ("tuple", "list"):
        items = [_build(v) for v in body]
        if kind == "list":
            return items
        return value[2](items) if len(value) > 2 else tuple(items)
    if kind == "size":
        return canonical(_plain(body))
    if kind == "dict":
        fields = dict(zip(value[2], (_build(v) for v in body)))
        return fields if value[3] is None else Record(value[3], fields)
    return body


#: a case that holds at no more sizes than this is compared value by value
_FEW = 64


def _plain(e):
    """``Piecewise((a, cond), (b, True))`` is ``b`` when ``a`` and ``b`` agree wherever ``cond``
    holds, checked exactly where ``cond`` pins one size to a few values (``W == 1``, ``W < 2``):
    a broadcast by a size of 1 gives that size either way."""
    if not isinstance(e, sympy.Piecewise):
        return e
    pieces = [(_plain(v), without_ite(c)) for v, c in e.args]
    pieces = [(v, c) for v, c in pieces if c is not sympy.false] or pieces  # a case no size is in
    default = pieces[-1][0] if pieces[-1][1] is sympy.true else None
    if default is None:
        return sympy.Piecewise(*pieces)
    kept = [(v, c) for v, c in pieces[:-1] if not _agree(v, default, c)]
    if len(kept) == 1 and _agree(default, kept[0][0], sympy.Not(kept[0][1])):
        return kept[0][0]  # the default agrees with the case wherever the case's condition fails
    return sympy.Piecewise(*kept, (default, True)) if kept else default


def _agree(a, b, cond) -> bool:
    values = _few_values(cond)
    if values is None:
        return False
    x, xs = values
    a, b = as_expr(a), as_expr(b)  # a stride torch gave as a plain int
    # (Integer values: xreplace returns a mapped value as given, so x -> 5 would give an int)
    diffs = [a.xreplace({x: sympy.Integer(v)}) - b.xreplace({x: sympy.Integer(v)}) for v in xs]
    others = sorted(set().union(*(d.free_symbols for d in diffs)), key=str)
    for probe in (1, 5, 37, 250, 1031):  # a difference at a few sizes refutes at once (simplify is slow)
        point = {y: probe + 13 * i for i, y in enumerate(others)}
        if any(d.xreplace(point) != 0 for d in diffs):
            return False
    return all(_zero(d) for d in diffs)


def _zero(d) -> bool:
    """Whether ``d`` is 0 at every size (False where that is not proved): a Piecewise is 0 where
    each of its values is."""
    if d == 0:
        return True
    if d.has(sympy.Piecewise):
        folded = sympy.piecewise_fold(d)
        if isinstance(folded, sympy.Piecewise):
            return all(_zero(v) for v, _ in folded.args)
        if folded.has(sympy.Piecewise):
            return False
        d = folded
    return sympy.simplify(d) == 0


def _few_values(cond):
    """(symbol, its values) when ``cond`` holds for one positive size at only a few values."""
    if not isinstance(cond, sympy.Rel) or len(cond.free_symbols) != 1:
        return None
    (x,) = cond.free_symbols
    if not (x.is_positive and x.is_integer):
        return None
    if isinstance(cond, (sympy.Ge, sympy.Gt, sympy.Ne)):  # unbounded above
        return None
    if cond.xreplace({x: _FEW + 1}) is not sympy.false or cond.xreplace({x: 10 ** 9}) is not sympy.false:
        return None
    return x, [v for v in range(1, _FEW + 1) if cond.xreplace({x: v}) is sympy.true]


# -- refusals as requirements ------------------------------------------------------------------


def _message(error: str, syms: _Symbols) -> str:
    """torch's message with its symbols named as symshape's sizes (a template: braces doubled)."""
    names = {str(t): o.name if isinstance(o, sympy.Symbol) else str(o) for t, o in syms.from_torch.items()}
    # torch names its symbols u0, s1 ... and writes shapes as "3xu1xu2"
    text = re.sub(r"(?<![A-Za-wyz0-9_])([su]\d+)(?!\d)", lambda m: names.get(m.group(1), m.group(1)), error)
    return text.replace("{", "{{").replace("}", "}}")


def _unless_not(req: Requirement, here: list) -> list[Requirement]:
    try:
        return unless_not(req, here)
    except ValueError as e:  # a condition symshape cannot state as requirements
        raise MetaRefusal(str(e)) from e


def _literal(rel) -> tuple:
    try:
        return literal(rel)
    except ValueError as e:
        raise MetaRefusal(str(e)) from e


def _refusal(path: list, reason: str, data_dependent: bool = False) -> list[Requirement]:
    """torch raises where every condition on ``path`` holds, so it runs where one of them fails:
    that disjunction, in conjunctive normal form, one Requirement (an ``unless`` chain) a clause.
    ``data_dependent``: torch may raise there, or not (a view of a layout symshape does not know)."""
    if data_dependent:
        if not path:
            return [Requirement(0, "never", 0, reason, data_dependent=LAYOUT_NOT_FOLLOWED)]
        return [replace(r, data_dependent=LAYOUT_NOT_FOLLOWED) for r in _refusal(path, reason)]
    runs = sympy.Or(*(sympy.Not(c) for c in path))
    out = []
    try:
        form = cnf(runs)
    except ValueError as e:
        raise MetaRefusal(str(e)) from e
    for clause in sympy.And.make_args(form):
        if clause is sympy.true:
            continue
        req = None
        for part in sorted(sympy.Or.make_args(clause), key=str, reverse=True):
            lhs, relation, rhs = _literal(part)
            req = Requirement(lhs, relation, rhs, reason, unless=req)
        out.append(req)
    return out
