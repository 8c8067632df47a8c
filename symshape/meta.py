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

Limits: symshape does not track dtypes, so fake inputs are float32 (an op that needs an integer
tensor is refused with torch's message, as at every size); a ``view`` of a tensor that may not be
contiguous is left to the hand rule.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import sympy
import torch
from torch._dispatch.python import enable_python_dispatcher
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode, ShapeEnv
from torch.utils._sympy import functions as tf
from torch.utils._sympy.numbers import int_oo
from torch.utils._sympy.value_ranges import ValueRanges

from .dims import FloorDiv, as_expr, canonical, floor_div, size_symbol
from .requirements import Requirement
from .tensor import SymTensor

__all__ = ["MAX_LEAVES", "MetaRefusal", "MetaResult", "run_meta"]

#: the most runs of one op (sides of its branches) before symshape refuses it
MAX_LEAVES = 64


class MetaRefusal(Exception):
    """torch's meta kernel gives no exact answer here (a size computed in floating point, one
    that depends on the data, more than MAX_LEAVES sides, a refusal at every size)."""


class _Env(ShapeEnv):
    """A ShapeEnv that never specializes: every question on sizes is answered for all sizes, or
    along ``path`` (the answers chosen for this run), or -- a new branch -- True, recorded."""

    def __init__(self, path: list[bool]):
        super().__init__(specialize_zero_one=False)
        self.path, self.at = list(path), 0
        self.decisions: list[tuple[sympy.Basic, bool]] = []
        self.memo: dict[sympy.Basic, bool] = {}

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

    def guard_or_defer_runtime_assert(self, orig_expr, msg, fx_node=None) -> bool:
        """``torch._check`` on a size: a branch like any other (torch raises on its false side)."""
        return bool(self.evaluate_expr(orig_expr))

    def evaluate_expr(self, orig_expr, *args, **kwargs):
        if isinstance(orig_expr, sympy.logic.boolalg.BooleanAtom) or getattr(orig_expr, "is_number", False):
            return orig_expr
        if orig_expr in self.memo:
            return sympy.true if self.memo[orig_expr] else sympy.false
        static = self._maybe_evaluate_static(orig_expr)
        if static is not None:
            return static
        if not isinstance(orig_expr, sympy.logic.boolalg.Boolean) or isinstance(orig_expr, sympy.Expr):
            # (a Symbol is a sympy Boolean too) torch wants a concrete number: no exact answer
            raise MetaRefusal(f"torch asks for the value of the size {orig_expr}")
        if _asked_for_layout():
            # a question that only picks strides or a memory format (is it contiguous? channels
            # last?): the sizes come out the same either way, so it is no branch
            fallback = kwargs.get("fallback_value")
            return sympy.true if fallback else sympy.false
        if self.at < len(self.path):
            value = self.path[self.at]
        else:
            value = True
            self.path.append(value)
        self.at += 1
        self.decisions.append((orig_expr, value))
        self.memo[orig_expr] = value
        self.assume(orig_expr if value else sympy.Not(orig_expr))
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

    def expr_to_torch(self, e: sympy.Expr) -> sympy.Expr:
        e = as_expr(e)
        if e.is_Integer:
            return e
        if e.is_Symbol:
            return self.symbol(e)
        if isinstance(e, FloorDiv):
            return tf.FloorDiv(self.expr_to_torch(e.args[0]), e.args[1])
        if isinstance(e, (sympy.Max, sympy.Min)):
            return (tf.Max if isinstance(e, sympy.Max) else tf.Min)(*(self.expr_to_torch(a) for a in e.args))
        if isinstance(e, (sympy.Add, sympy.Mul)):
            num, den = e.as_numer_denom()
            if den != 1:
                if not den.is_Integer:
                    raise MetaRefusal(f"the size {e} divides by a size")
                return tf.CleanDiv(self.expr_to_torch(num), den)  # a requirement said it divides
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
        if kind in (sympy.Add, sympy.Mul, sympy.Pow, sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le,
                    sympy.Lt, sympy.And, sympy.Or, sympy.Not):
            return kind(*args)
        raise MetaRefusal(f"torch computes a size as {kind.__name__}({', '.join(map(str, args))})")


def _floor(args) -> sympy.Expr:
    p, q = args
    if not (q.is_Integer and q > 0):
        raise MetaRefusal(f"floor({p}/{q}) divides by a size")
    return canonical(floor_div(p, int(q)))


# -- running an op on every side of its branches -----------------------------------------------


@dataclass
class MetaResult:
    """What :func:`run_meta` found: the op's value (SymTensors where torch returns tensors) and
    the requirements torch's checks make, each with torch's message; ``leaves``: how many runs."""

    value: Any
    requirements: list[Requirement]
    leaves: int


@dataclass
class _Leaf:
    decisions: list[tuple[sympy.Basic, bool]]  # torch's conditions, in this run's symbols
    syms: _Symbols
    value: Any = None  # the structure of shapes, converted to symshape's expressions
    error: str = ""  # torch's message on a side that raises


@dataclass
class _Node:
    """A branch (``cond`` in torch's symbols, its two sides) or a leaf."""

    cond: Any = None
    syms: Any = None
    yes: "_Node | None" = None
    no: "_Node | None" = None
    leaf: _Leaf | None = None


def _fake_args(value: Any, syms: _Symbols):
    if isinstance(value, SymTensor):
        if value.index_bound is not None:
            raise MetaRefusal("the indices of a max pooling (their values matter)")
        return torch.empty([syms.symint(d) for d in value.shape], dtype=value.dtype or torch.float32)
    if isinstance(value, sympy.Basic) and not isinstance(value, sympy.logic.boolalg.Boolean):
        return syms.symint(value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_fake_args(v, syms) for v in value)
    if isinstance(value, list):
        return [_fake_args(v, syms) for v in value]
    if isinstance(value, dict):
        return {k: _fake_args(v, syms) for k, v in value.items()}
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


def _shapes(out: Any, syms: _Symbols):
    if isinstance(out, torch.Tensor):
        return ("tensor", tuple(syms.expr_from_torch(s) for s in out.shape), out.dtype)
    if isinstance(out, (list, tuple)):
        return (type(out).__name__, tuple(_shapes(o, syms) for o in out))
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


def _run(call: Callable, args, kwargs, path: list[bool], facts: tuple = ()) -> tuple[_Leaf, list[bool]]:
    env = _Env(path)
    syms = _Symbols(env)
    _input_facts((args, kwargs), syms)
    for fact in facts:  # the case of a Piecewise input this run is in
        env.assume(syms.cond_to_torch(fact))
    leaf = _Leaf(env.decisions, syms)
    # the Python dispatcher, as torch.export uses it: Python meta kernels and decompositions for
    # ops whose C++ kernels need concrete sizes (F.pad, interpolate ...)
    with enable_python_dispatcher(), FakeTensorMode(shape_env=env, allow_non_fake_inputs=True):
        fake_args, fake_kwargs = _fake_args(args, syms), _fake_args(kwargs, syms)
        try:
            out = call(*fake_args, **fake_kwargs)
        except MetaRefusal:
            raise
        except _REFUSALS as e:  # torch refuses on this side: a requirement, unless at every size
            if isinstance(e, _NOT_REFUSALS) or any(t in str(e) for t in _LIMITS):
                raise MetaRefusal(f"torch's kernel needs what symbolic sizes cannot give: "
                                  f"{str(e).splitlines()[0][:200]}") from e
            leaf.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            return leaf, env.path
        except Exception as e:  # anything else is a failure of the method, never a refusal by torch
            raise MetaRefusal(f"running torch's meta kernel failed: {type(e).__name__}: {e}") from e
        leaf.value = _shapes(out, syms)
    return leaf, env.path


def _unpatched():
    """torch.fx's global patches (nn.Module.__call__, wrapped functions) undone for the duration:
    the engine computes values while fx traces, and a module run whole must run as in torch."""
    try:
        from torch.fx._symbolic_trace import _maybe_revert_all_patches
    except ImportError:  # an older torch
        return contextlib.nullcontext()
    return _maybe_revert_all_patches()


def run_meta(call: Callable, args: tuple, kwargs: dict, what: str, facts: tuple = ()) -> MetaResult:
    with _unpatched():
        return _run_meta(call, args, kwargs, what, facts)


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
    if all(leaf.error for leaf in leaves):
        raise MetaRefusal(f"torch raises at every size: {leaves[0].error}")
    root = _collapse(_tree(leaves, 0))
    if root.leaf is not None and root.leaf.error:
        raise MetaRefusal(f"torch raises at every size: {root.leaf.error}")
    requirements: list[Requirement] = []
    value = _emit(root, [], requirements, what)
    return MetaResult(_build(value), requirements, len(leaves))


def _first_piecewise(value: Any):
    if isinstance(value, SymTensor):
        return next((p for d in value.shape for p in d.atoms(sympy.Piecewise)), None)
    if isinstance(value, sympy.Basic):
        return next(iter(value.atoms(sympy.Piecewise)), None)
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_first_piecewise, value) if p is not None), None)
    if isinstance(value, dict):
        return _first_piecewise(list(value.values()))
    return None


def _substitute(value: Any, old, new):
    if isinstance(value, SymTensor):
        return value.with_shape(d.xreplace({old: new}) for d in value.shape)
    if isinstance(value, sympy.Basic):
        return value.xreplace({old: new})
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_substitute(v, old, new) for v in value)
    if isinstance(value, list):
        return [_substitute(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, old, new) for k, v in value.items()}
    return value


def _by_cases(call, args, kwargs, what, facts, pw) -> MetaResult:
    """One run per case of the Piecewise ``pw`` (case i: its condition, and no earlier one's)."""
    results: list[tuple[list, MetaResult]] = []
    earlier: list = []
    leaves = 0
    for value, cond in pw.args:
        here = [*earlier, *([] if cond is sympy.true else [cond])]
        a, k = _substitute((args, kwargs), pw, value)
        try:
            results.append((here, run_meta(call, a, k, what, (*facts, *here))))
            leaves += results[-1][1].leaves
        except MetaRefusal as e:
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
    return MetaResult(_build(value), requirements, leaves)


def _packed(value):
    """A built value back in the form _cases merges."""
    if isinstance(value, SymTensor):
        return ("tensor", value.shape, value.dtype)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_packed(v) for v in value))
    if isinstance(value, sympy.Basic) and not isinstance(value, sympy.logic.boolalg.Boolean):
        return ("size", value)
    return ("value", value)


def _unless_not(req: Requirement, conds: list) -> list[Requirement]:
    """``req``, needed only where every condition in ``conds`` holds: ``req`` or one of them
    fails -- in conjunctive normal form, one requirement (``req`` unless the clause) a clause."""
    if not conds:
        return [req]
    out = []
    for clause in sympy.And.make_args(sympy.to_cnf(sympy.Or(*(sympy.Not(c) for c in conds)), simplify=False)):
        if clause is sympy.true:
            continue
        chained = req
        for literal in sorted(sympy.Or.make_args(clause), key=str, reverse=True):
            lhs, relation, rhs = _literal(literal)
            chained = Requirement(lhs, relation, rhs, req.reason, unless=chained)
        out.append(chained)
    return out


def _tree(leaves: list[_Leaf], depth: int) -> _Node:
    """The runs as the tree of their decisions (the runs share the questions of a common prefix)."""
    if len(leaves) == 1 and len(leaves[0].decisions) == depth:
        return _Node(leaf=leaves[0])
    cond = leaves[0].decisions[depth][0]
    yes = [leaf for leaf in leaves if leaf.decisions[depth][1]]
    no = [leaf for leaf in leaves if not leaf.decisions[depth][1]]
    return _Node(cond, leaves[0].syms, _tree(yes, depth + 1), _tree(no, depth + 1))


def _collapse(node: _Node) -> _Node:
    """A branch whose two sides end alike (the same shapes, or both raise) is no branch."""
    if node.leaf is not None:
        return node
    yes, no = _collapse(node.yes), _collapse(node.no)
    if yes.leaf is not None and no.leaf is not None:
        a, b = yes.leaf, no.leaf
        if (a.error and b.error) or (not a.error and not b.error and a.value == b.value):
            return yes
    return _Node(node.cond, node.syms, yes, no)


def _emit(node: _Node, path: list, requirements: list, what: str):
    """The value on ``node``'s sides (None where every side raises); each side that raises adds
    the requirement that one condition on its path fails."""
    if node.leaf is not None:
        if node.leaf.error:
            requirements += _refusal(path, _message(node.leaf.error, node.leaf.syms))
            return None
        return node.leaf.value
    cond = node.syms.expr_from_torch(node.cond)
    yes = _emit(node.yes, [*path, cond], requirements, what)
    no = _emit(node.no, [*path, sympy.Not(cond)], requirements, what)
    if yes is None or no is None:
        return no if yes is None else yes
    return _cases(yes, no, cond, what)


def _cases(a, b, cond, what: str):
    """``a`` where ``cond`` holds, else ``b``: equal parts stay, others become ``Piecewise``."""
    if a == b:
        return a
    if a[0] != b[0] or (a[0] in ("tuple", "list", "tensor") and len(a[1]) != len(b[1])):
        raise MetaRefusal(f"{what} returns a different structure or rank depending on the size")
    if a[0] == "tensor":
        return ("tensor", tuple(x if x == y else sympy.Piecewise((x, cond), (y, True)) for x, y in zip(a[1], b[1])),
                a[2] if a[2] == b[2] else None)
    if a[0] in ("tuple", "list"):
        return (a[0], tuple(_cases(x, y, cond, what) for x, y in zip(a[1], b[1])))
    if a[0] == "size":
        return ("size", sympy.Piecewise((a[1], cond), (b[1], True)))
    raise MetaRefusal(f"{what} returns {a[1]!r} or {b[1]!r} depending on the size")


def _build(value):
    kind, body = value[0], value[1]
    if kind == "tensor":
        return SymTensor(tuple(canonical(_plain(d)) for d in body), dtype=value[2])
    if kind in ("tuple", "list"):
        items = [_build(v) for v in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "size":
        return canonical(_plain(body))
    return body


#: a case that holds at no more sizes than this is compared value by value
_FEW = 64


def _plain(e):
    """``Piecewise((a, cond), (b, True))`` is ``b`` when ``a`` and ``b`` agree wherever ``cond``
    holds, checked exactly where ``cond`` pins one size to a few values (``W == 1``, ``W < 2``):
    a broadcast by a size of 1 gives that size either way."""
    if not isinstance(e, sympy.Piecewise):
        return e
    pieces = [(_plain(v), c) for v, c in e.args]
    default = pieces[-1][0] if pieces[-1][1] is sympy.true else None
    if default is None:
        return sympy.Piecewise(*pieces)
    kept = [(v, c) for v, c in pieces[:-1] if not _agree(v, default, c)]
    return sympy.Piecewise(*kept, (default, True)) if kept else default


def _agree(a, b, cond) -> bool:
    values = _few_values(cond)
    if values is None:
        return False
    x, xs = values
    return all(sympy.simplify(a.xreplace({x: v}) - b.xreplace({x: v})) == 0 for v in xs)


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
    names = {str(t): o.name for t, o in syms.from_torch.items()}
    # torch names its symbols u0, s1 ... and writes shapes as "3xu1xu2"
    text = re.sub(r"(?<![A-Za-wyz0-9_])([su]\d+)(?!\d)", lambda m: names.get(m.group(1), m.group(1)), error)
    return text.replace("{", "{{").replace("}", "}}")


def _literal(rel) -> tuple:
    """A relation as (lhs, relation, rhs) in Requirement's vocabulary (sizes are integers)."""
    if isinstance(rel, sympy.Eq):
        return rel.lhs, "==", rel.rhs
    if isinstance(rel, sympy.Ne):
        return rel.lhs, "!=", rel.rhs
    if isinstance(rel, sympy.Ge):
        return rel.lhs, ">=", rel.rhs
    if isinstance(rel, sympy.Gt):
        return rel.lhs, ">=", rel.rhs + 1
    if isinstance(rel, sympy.Le):
        return rel.rhs, ">=", rel.lhs
    if isinstance(rel, sympy.Lt):
        return rel.rhs, ">=", rel.lhs + 1
    raise MetaRefusal(f"a condition torch checks: {rel}")


def _refusal(path: list, reason: str) -> list[Requirement]:
    """torch raises where every condition on ``path`` holds, so it runs where one of them fails:
    that disjunction, in conjunctive normal form, one Requirement (an ``unless`` chain) a clause."""
    runs = sympy.Or(*(sympy.Not(c) for c in path))
    out = []
    for clause in sympy.And.make_args(sympy.to_cnf(runs, simplify=False)):
        if clause is sympy.true:
            continue
        req = None
        for literal in sorted(sympy.Or.make_args(clause), key=str, reverse=True):
            lhs, relation, rhs = _literal(literal)
            req = Requirement(lhs, relation, rhs, reason, unless=req)
        out.append(req)
    return out
