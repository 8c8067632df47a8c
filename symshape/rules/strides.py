"""torch's own view strides (``computeStride``, aten/src/ATen/TensorUtils.cpp) on symbolic sizes.

A reshape of a non-contiguous tensor is a view where computeStride finds strides for the new
shape, and a contiguous copy where it does not; a view's strides are the ones it finds. Which
one, and the stride of a dim of size 1, can depend on whether a size is 1: ``x.transpose(1,
2).reshape(B, N, H*D)`` is a view at ``N == 1`` only. symshape answers that where a later op needs
the layout (a view of the result, ``stride()``, ``as_strided``: Longformer's overlapping chunks):
view and reshape record how to compute it (``SymTensor.layout_source``), and
:func:`resolved` runs computeStride then, each of its questions decided where the step runs,
and a size that may be 1 splitting the analysis into the cases ``size == 1`` and ``size != 1``
(``Context.size_case``). A tensor that needs no layout later is never asked (no cases for the
attention blocks of a ViT, whose reshape feeds a Linear).

computeStride, for a non-empty tensor (``numel >= 1``; sizes from the end, in chunks of dims laid
out as one block)::

    for each dim d of the input, last first: numel_in *= size[d]
        where d == 0, or size[d-1] != 1 and stride[d-1] != numel_in * base:   (a chunk ends)
            while dims of the view are left and (numel_view < numel_in or its size == 1):
                its stride = numel_view * base; numel_view *= its size
            numel_view != numel_in: no view (a reshape copies)
            base = stride[d-1]; numel_in = numel_view = 1
    dims of the view left over: no view
"""

from __future__ import annotations

import copy
from dataclasses import replace

import sympy
import torch

from ..dims import as_expr, canonical, product, smallest_value
from ..tensor import SymTensor, nonempty, standard_strides
from ..errors import SizeCases, UnsupportedArgument, UnsupportedWhereMetaDiffers
from ..requirements import Requirement
from .common import size_value, tensor_arg
from .registry import Context, function_rule, method_rule

__all__ = ["as_strided", "compute_stride", "contiguous_source", "dense", "laid_out", "recorded", "resolved",
           "with_source"]


class Undecided(Exception):
    """A question of computeStride this step's facts do not decide, nor a case of the analysis."""


def compute_stride(ctx: Context, shape: tuple, strides: tuple, new: tuple) -> tuple | None:
    """The strides torch's computeStride gives a tensor of ``shape`` and ``strides`` viewed as
    ``new`` (whose element count the caller has checked), or None where it finds none (a view
    raises; a reshape copies). A size that may be 1 splits the analysis (SizeCases); a question
    the step's facts do not decide otherwise is refused by name."""
    try:
        return _compute_stride(ctx, shape, strides, new)
    except Undecided as e:
        ctx.unsupported(f"the strides of a view as {tuple(new)}: torch's computeStride asks whether {e}, which "
                        "symshape does not decide here")


def _compute_stride(ctx: Context, shape: tuple, strides: tuple, new: tuple) -> tuple | None:
    if not shape:
        return (sympy.Integer(1),) * len(new)
    if not _proves(ctx, sympy.Ge(product(shape), 1)):
        raise Undecided(f"the tensor of shape {tuple(shape)} is empty (its strides are then others)")
    out: list = [None] * len(new)
    view_d = len(new) - 1
    base = strides[-1]
    numel_in = numel_view = sympy.Integer(1)
    for d in range(len(shape) - 1, -1, -1):
        numel_in = numel_in * shape[d]
        if d == 0 or _chunk_ends(ctx, shape[d - 1], strides[d - 1], numel_in * base):
            # (in the last chunk every dim left fits: the element counts are equal, so where
            # numel_view reaches numel_in the dims left have size 1)
            while view_d >= 0 and (d == 0 or _fits(ctx, numel_view, numel_in, new[view_d])):
                out[view_d] = numel_view * base
                numel_view = numel_view * new[view_d]
                view_d -= 1
            if not _equal(ctx, numel_view, numel_in):
                return None
            if d > 0:
                base, numel_in, numel_view = strides[d - 1], sympy.Integer(1), sympy.Integer(1)
    if view_d != -1:
        return None
    pinned = _pinned(ctx)  # (on a case where a size is 1, the strides as they are there)
    return tuple(canonical(as_expr(s).xreplace(pinned)) for s in out)


def _pinned(ctx: Context) -> dict:
    """The sizes this step's facts fix to a number (a case of the analysis: ``W == 1``; ``A*B ==
    1``, where each size is at least 1, fixes both)."""
    pinned = {}
    for f in ctx.facts:
        if not isinstance(f, sympy.Eq) or not f.rhs.is_Integer:
            continue
        if f.lhs.is_Symbol:
            pinned[f.lhs] = f.rhs
        elif f.rhs == 1 and isinstance(f.lhs, sympy.Mul) and all(a.is_Symbol and a.is_positive for a in f.lhs.args):
            pinned.update({a: sympy.Integer(1) for a in f.lhs.args})
    return pinned


def recorded(x: SymTensor, out: SymTensor, kind: str) -> SymTensor:
    """``out``, a ``kind`` ("view" or "reshape") of ``x`` whose layout symshape leaves loose or
    unknown, with a way to compute torch's (:func:`resolved`): computeStride on ``x``'s exact
    layout (itself resolved first)."""
    if out.exact_strides and out.strides is not None:
        return out

    def resolve(ctx: Context) -> SymTensor | None:
        base = resolved(ctx, x)
        if not base.exact_strides or base.guard:
            return None
        found = compute_stride(ctx, base.shape, base.known_strides, out.shape)
        if found is None and kind == "view":
            ctx.unsupported(f"a view as {tuple(out.shape)} that torch's computeStride refuses at some sizes where "
                            "symshape found it a view at every size")
        return laid_out(out, found if found is not None else standard_strides(out.shape))

    return with_source(out, resolve)


def contiguous_source(x: SymTensor, out: SymTensor) -> SymTensor:
    """``out``, ``x.contiguous()`` made loose (a copy, unless torch sees ``x`` contiguous at some
    sizes), with a way to compute torch's layout: ``x`` itself where torch's is_contiguous holds
    (dims of size 1 aside: by cases where a size may be 1), else a copy's standard strides."""

    def resolve(ctx: Context) -> SymTensor | None:
        base = resolved(ctx, x)
        if not base.exact_strides or base.guard:
            return None
        same = _is_contiguous(ctx, base.shape, base.known_strides)
        return laid_out(out, base.known_strides if same else standard_strides(out.shape))

    return with_source(out, resolve)


def _is_contiguous(ctx: Context, shape: tuple, strides: tuple) -> bool:
    """torch's is_contiguous: every dim but those of size 1 has the stride of a contiguous
    tensor (a non-empty one: an empty tensor is contiguous whatever its strides)."""
    if not _proves(ctx, sympy.Ge(product(shape), 1)):
        raise Undecided(f"the tensor of shape {tuple(shape)} is empty")
    expected = sympy.Integer(1)
    for n, s in zip(reversed(shape), reversed(strides)):
        if _one(ctx, n):
            continue
        if not _equal(ctx, s, expected):
            return False
        expected = expected * n
    return True


def with_source(t: SymTensor, resolve) -> SymTensor:
    """``t`` with ``resolve(ctx)`` as the way to compute its exact layout (SymTensor.layout_source).
    (A copy of ``t`` with that field set: ``replace`` would normalize its sizes and strides again,
    on every view and reshape of a model.)"""
    out = copy.copy(t)
    object.__setattr__(out, "layout_source", (resolve, _layout(t)))
    return out


def laid_out(t: SymTensor, strides: tuple, loose: bool = False) -> SymTensor:
    """``t`` (its shape, dtype and entries) with ``strides``: exactly, or ``loose`` (but on dims of
    size 1)."""
    return replace(SymTensor(t.shape, False, t.index_bound, t.dtype, strides, loose), values=t.values,
                   entry_range=t.entry_range, sized=t.sized, float_form=t.float_form, entry_form=t.entry_form)


def _layout(t: SymTensor) -> tuple:
    """(A cast keeps the record: it keeps a dense layout, the only one :func:`resolved` takes.)"""
    return t.shape, t.contiguous, t.strides, t.loose, t.guard


def dense(x: SymTensor, pinned: dict | None = None) -> bool:
    """Whether ``x``'s strides are, structurally, those of a contiguous tensor of its dims in some
    order (dims of size 1 aside): the innermost has stride 1, each next one the product of the
    sizes inside it. An op that keeps a layout (``clone``, ``detach``, ``.to(dtype)``) keeps such
    strides; others (overlapping, or with gaps) it may not."""
    if x.contiguous:
        return True
    pinned = pinned or {}
    left = [(as_expr(d).xreplace(pinned), nonempty(s).xreplace(pinned)) for d, s in zip(x.shape, x.known_strides)]
    left = [(d, s) for d, s in left if d != 1]
    reach = sympy.Integer(1)
    while left:
        i = next((i for i, (_, s) in enumerate(left) if sympy.expand(s - reach) == 0), None)
        if i is None:
            return False
        reach = reach * left.pop(i)[0]
    return True


def resolved(ctx: Context, x: SymTensor) -> SymTensor:
    """``x`` with torch's layout exactly where symshape left it loose or unknown but recorded how
    to compute it (SymTensor.layout_source), and ``x``'s layout is still the one recorded then;
    else ``x`` as it is. Only a dense layout is taken: the record stays on a tensor an op that
    keeps a layout returns (``clone()``), which keeps only a dense one exactly."""
    source = x.layout_source
    if source is None or source[1] != _layout(x):
        return x
    try:
        out = source[0](ctx)
    except Undecided:
        return x  # (a question it cannot decide: the layout stays as symshape has it)
    except UnsupportedArgument as e:
        if isinstance(e, SizeCases):
            raise
        return x
    if out is None or out.known_strides is None or not dense(out, _pinned(ctx)):
        return x
    return out


def _proves(ctx: Context, cond) -> bool:
    """``cond`` holds where the step runs: as the step's facts prove it, or for an order of two
    sizes, as the least value of their difference shows (``16 < 64*N*T``)."""
    pinned = _pinned(ctx)
    if pinned:  # (a case of the analysis where a size is 1: W == 1)
        cond = cond.xreplace(pinned)
    if cond in (sympy.true, sympy.false):  # (sympy decides some at once: ``2*N*H*W >= 1``)
        return cond is sympy.true
    if cond in ctx.facts or ctx.proves(cond):
        return True
    if isinstance(cond, (sympy.Lt, sympy.Le, sympy.Gt, sympy.Ge)):
        diff = sympy.expand(cond.gts - cond.lts)
        low = smallest_value(diff)
        if low is not None and (low > 0 or low >= 0 and isinstance(cond, (sympy.Le, sympy.Ge))):
            return True
        return _positive_factors(ctx, diff, isinstance(cond, (sympy.Lt, sympy.Gt)))
    return False


def _positive_factors(ctx: Context, diff, strict: bool) -> bool:
    """Whether ``diff`` is at least 0 (``strict``: above 0) where the step runs, as a positive
    number times factors each at least 0 at every size, and, if ``strict``, none 0 here
    (``3*B*N - 3*B`` is ``3*B*(N - 1)``: above 0 on the case N != 1; ``W - 1`` on W != 1)."""
    coefficient = sympy.Integer(1)
    for f in sympy.Mul.make_args(sympy.factor(diff)):
        if f.is_number:
            coefficient *= f
            continue
        low = smallest_value(f)
        if low is None or low < 0:
            return False
        if strict and low == 0 and not _proves(ctx, sympy.Ne(canonical(f + 1), 1)):
            return False
    return bool(coefficient > 0)


def _holds(ctx: Context, cond) -> bool:
    if _proves(ctx, cond):
        return True
    if _proves(ctx, sympy.Not(cond)):
        return False
    raise Undecided(str(cond))


def _one(ctx: Context, size) -> bool:
    """``size == 1``: decided, or by cases."""
    size = as_expr(size)
    if size.is_Integer:
        return size == 1
    low = smallest_value(size)
    if low is not None and low >= 2:  # (3*A*B)
        return False
    factors = sympy.Mul.make_args(size)
    if len(factors) > 1 and all((smallest_value(f) or 0) >= 1 for f in factors):
        # a product of sizes is 1 where each is: asked one by one (H*W on the case W != 1 is
        # not 1; the cases are each size's, which the solver reads)
        return all(_one(ctx, f) for f in factors)
    return ctx.size_case(size, "a view's strides", "the strides torch computes")


def _chunk_ends(ctx: Context, size, stride, inner) -> bool:
    """computeStride's ``size != 1 and stride != inner``; where the strides are decided equal
    (a contiguous block), whether the size is 1 does not matter, and is not asked."""
    if ctx.same(stride, inner) or _proves(ctx, sympy.Eq(stride, inner)):
        return False
    return not _one(ctx, size) and not _equal(ctx, stride, inner)


def _equal(ctx: Context, a, b) -> bool:
    """``a == b`` for two strides or element counts: decided, or where their difference is a
    multiple of ``s - 1`` for one size ``s``, the case ``s == 1``."""
    if ctx.same(a, b):
        return True
    try:
        return _holds(ctx, sympy.Eq(a, b))
    except Undecided:
        pass
    # (a factor that is a size is never 0 here: only the others decide whether the difference is)
    factors = [f for f in sympy.Mul.make_args(sympy.factor(sympy.expand(a - b)))
               if not f.is_number and not (smallest_value(f) or 0) >= 1]
    if not factors:
        return False  # (a product of factors none of which is 0 here)
    if len(factors) == 1:
        for size in (canonical(factors[0] + 1), canonical(1 - factors[0])):  # (0 exactly where it is 1)
            low = smallest_value(size)
            if low is not None and low >= 1:  # (a size, or a product of sizes)
                return _one(ctx, size)
    raise Undecided(f"{a} == {b}")


def _fits(ctx: Context, numel_view, numel_in, size) -> bool:
    """computeStride's ``numel_view < numel_in or size == 1``: also where the dim fits in what is
    left of the chunk (``numel_view * size <= numel_in``: equal counts leave only ``size == 1``)."""
    if _proves(ctx, sympy.Lt(numel_view, numel_in)) or _proves(ctx, sympy.Le(numel_view * size, numel_in)):
        return True
    if _proves(ctx, sympy.Gt(numel_view, numel_in)):
        return False  # (past the chunk already: no view whatever this size is, so it is not asked)
    if _proves(ctx, sympy.Ge(numel_view, numel_in)):
        return _one(ctx, size)
    if _proves(ctx, sympy.Le(numel_view, numel_in)):  # less, or equal where a size is 1: by cases
        return not _equal(ctx, numel_view, numel_in) or _one(ctx, size)
    raise Undecided(f"{numel_view} < {numel_in}")


@function_rule(torch.as_strided, layout=True)
@method_rule("as_strided", layout=True)
def as_strided(ctx: Context, input, size, stride, storage_offset=None) -> SymTensor:
    try:
        return _as_strided(ctx, input, size, stride, storage_offset)
    except UnsupportedArgument as e:
        if isinstance(e, (SizeCases, UnsupportedWhereMetaDiffers)):
            raise
        # never torch's meta kernel instead: on symbolic sizes it does not check the storage
        raise UnsupportedWhereMetaDiffers(e.op, e.where, e.node, e.detail) from None


def _as_strided(ctx: Context, input, size, stride, storage_offset) -> SymTensor:
    """``out = size``, laid out with ``stride`` over the input's storage (Longformer's overlapping
    chunks: a stride of half a chunk). torch needs as many strides as sizes, none negative, no
    negative size, and, where no size is 0, the last element the view reaches inside the storage::

        1 + sum((size[i] - 1) * stride[i])  <=  the storage's elements past the input's offset

    symshape follows the input's own extent, ``1 + sum((n[i] - 1) * s[i])`` over its sizes ``n``
    and strides ``s``, not the storage beneath it: where the view stays inside that extent torch's
    check passes; past it torch refuses only where the storage holds no more than the input (a
    view of a slice may reach past it), so that requirement is data-dependent. (torch's meta
    kernel on symbolic sizes makes no such check: a hand rule.)"""
    x = resolved(ctx, tensor_arg(input, "input", ctx))
    if storage_offset is not None:
        ctx.unsupported("as_strided with a storage_offset: symshape does not follow where a tensor starts in its "
                        "storage")
    if not isinstance(size, (list, tuple)) or not isinstance(stride, (list, tuple)):
        ctx.unsupported("as_strided's size and stride must be lists or tuples")
    sizes = [as_expr(size_value(v, "as_strided size", ctx), "as_strided size") for v in size]
    strides = [as_expr(size_value(v, "as_strided stride", ctx), "as_strided stride") for v in stride]
    if len(sizes) != len(strides):
        ctx.refuse("mismatch in length of strides and shape")
    if x.known_strides is None:
        ctx.unsupported("as_strided of a tensor whose strides symshape does not know (after an op whose output "
                        "layout it does not follow)")
    shown = f"sizes={list(sizes)} and strides={list(strides)}"
    negative = f"as_strided: Negative strides are not supported at the moment, got strides: {list(strides)}"
    for s in strides:
        ctx.at_least(s, 0, negative)
    for n in sizes:
        ctx.at_least(n, 0, f"Storage size calculation overflowed with {shown}")
    reach = 1 + sum((n - 1) * s for n, s in zip(sizes, strides))
    extent = 1 + sum((n - 1) * s for n, s in zip(x.shape, x.known_strides))
    empty = None
    for n in sizes:  # (an empty view reaches nothing: torch checks nothing)
        empty = Requirement(0, ">=", n, "", unless=empty)
    ctx.require(canonical(extent), ">=", canonical(reach),
                f"setStorage: {shown} reach {{rhs}} elements past the input's offset, more than its own "
                "{lhs}", unless=empty,
                data_dependent="torch refuses only where the storage beneath the tensor holds no more than the tensor "
                "itself (a view of a slice may reach past it)")
    return SymTensor(tuple(canonical(n) for n in sizes), False, None, x.dtype, tuple(canonical(s) for s in strides))
