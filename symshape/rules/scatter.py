"""Scatter: ``x.scatter(dim, index, src)`` writes ``src`` (or one value) into ``x`` at the
positions ``index`` gives along ``dim``; ``scatter_add``, ``scatter_reduce`` add or reduce::

    out = x's shape        (x.scatter_(...) changes x itself: the same tensor)

Unless the index is empty (then torch checks nothing): it has ``x``'s number of dims (a 0-dim
tensor counts as 1-dim), as ``src`` has; it is no larger than ``x`` on every dim but ``dim``, and
no larger than ``src`` on every dim; each entry lies in ``0 <= i < x.size(dim)``. ``src`` has
``x``'s dtype. A router's mask of the experts it picked (``zeros_like(scores).scatter_(1,
topk_idx, 1)``), where each index is below its dim's size by construction.
"""

from __future__ import annotations

import sympy
import torch

from ..dims import canonical
from ..requirements import Requirement
from ..tensor import SymTensor
from .common import as_int, tensor_arg
from .layout import check_entries, unbounded
from .registry import Context, function_rule, method_rule


def _checked(ctx: Context, x: SymTensor, dim, idx: SymTensor, src, what: str) -> SymTensor:
    """torch's ``scatter_gather_dtype_check`` and ``scatter_shape_check``, then each index's
    value; ``x``'s shape."""
    d = as_int(dim, "dim", ctx)
    rank = max(x.ndim, 1)
    if not -rank <= d < rank:
        ctx.refuse(f"{what}: Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {d})")
    d %= rank
    s = src if isinstance(src, SymTensor) else None
    numel = canonical(idx.numel())
    empty = None if numel.is_positive or numel == 0 else Requirement(numel, "==", 0, "the index is empty")

    def unless_empty(reason: str) -> None:
        if empty is None:
            ctx.never(reason)
        else:
            ctx.require(numel, "==", 0, reason)

    if numel != 0 and idx.dtype is not None and idx.dtype not in (torch.int64, torch.int32):
        unless_empty(f"{what}(): Expected dtype int32/int64 for index")
    if s is not None and s.dtype is not None and x.dtype is not None and s.dtype != x.dtype:
        ctx.never(f"{what}(): Expected self.dtype to be equal to src.dtype")
    if numel == 0:
        return x
    if rank != max(idx.ndim, 1):
        unless_empty("Index tensor must have the same number of dimensions as self tensor")
        return x
    if s is not None and max(s.ndim, 1) != rank:
        unless_empty("Index tensor must have the same number of dimensions as src tensor")
        return x
    one = (sympy.Integer(1),)
    sizes, index = x.shape or one, idx.shape or one
    larger = f"Expected index {list(idx.shape)} to be no larger than self {list(x.shape)} apart from dimension {d}"
    if s is not None:
        larger += f" and to be no larger size than src {list(s.shape)}"
    for i, (have, want) in enumerate(zip(sizes, index)):
        if i != d:
            ctx.require(have, ">=", want, larger + f" (dim {i}: {{rhs}} > {{lhs}})", unless=empty)
    for i, (have, want) in enumerate(zip(s.shape or one, index) if s is not None else ()):
        ctx.require(have, ">=", want, larger + f" (src's dim {i}: {{rhs}} > {{lhs}})", unless=empty)
    n = sizes[d]
    if not check_entries(ctx, idx, n, f"{what}()", f"index {{i}} is out of bounds for dimension {d} with size {{lhs}}",
                         empty):
        unbounded(ctx, idx, n, f"{what} along dim {d}")
    return x


@function_rule(torch.scatter, torch.scatter_add, torch.scatter_reduce, layout=True)
@method_rule("scatter", "scatter_add", "scatter_reduce", layout=True)
def scatter(ctx: Context, input, dim, index, src=None, reduce=None, *, value=None, include_self=True,
            out=None) -> SymTensor:
    """``out = x.shape`` (contiguous), ``src`` (or a number) written at ``index`` along ``dim``;
    torch's checks of the index (see the module's doc)."""
    x, idx = tensor_arg(input, "input", ctx), tensor_arg(index, "index", ctx)
    if out is not None:
        ctx.unsupported("scatter with out=")
    _checked(ctx, x, dim, idx, value if src is None else src, "scatter")
    return SymTensor(x.shape, dtype=x.dtype)


@method_rule("scatter_", "scatter_add_", "scatter_reduce_", layout=True)
def scatter_(ctx: Context, input, dim, index, src=None, reduce=None, *, value=None, include_self=True) -> SymTensor:
    """``x.scatter_(dim, index, src)``: ``x`` itself, written in place; the checks of
    :func:`scatter`."""
    x, idx = tensor_arg(input, "input", ctx), tensor_arg(index, "index", ctx)
    return _checked(ctx, x, dim, idx, value if src is None else src, "scatter")
