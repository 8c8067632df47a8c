"""Reshaping and size queries: Flatten, Unflatten, view/reshape, flatten, size/shape/dim/numel,
and ``item()`` of a tensor whose entries symshape bounds.

    flatten(start, end):  out[start] = in[start] * ... * in[end]
    view/reshape(*sizes): out = sizes, with one -1 standing for numel / (product of the others)

torch refuses a view or reshape whose sizes do not multiply up to the element count (with a -1:
do not divide it), and an unflatten whose sizes do not multiply up to the unflattened dim.
"""

from __future__ import annotations

import builtins
import functools
from dataclasses import replace

import sympy
import torch
import torch.nn as nn

from ..bounds import ReadValue
from ..dims import as_expr, canonical, decide, exact_quotient, product, quotient, quotient_where
from ..ranges import entry_bounds
from ..records import Record
from ..tensor import SymTensor, channels_last_strides, nonempty, standard_strides
from .common import as_int, require_layout, size_value, tensor_arg
from .registry import Context, function_rule, method_rule, module_rule
from .strides import compute_stride, recorded, resolved

__all__ = ["flatten_shape", "view_shape"]


def by_strides(ctx: Context, x: SymTensor, what: str, shape=None) -> None:
    """A view of a non-contiguous tensor: with its strides known, torch's own ``what`` decides
    (symshape.meta, from the strides); without them, it is refused. (A reshape or flatten has the
    same sizes either way, a view or a copy: its output's layout is then not known.) A view as
    ``shape`` requires the layout's guard unless it is one whatever the memory format."""
    if what == "unflatten" or what == "view" and not (shape is not None and _any_format_views(x, shape, ctx.same)):
        require_layout(ctx, x)
    if x.contiguous or what not in ("view", "unflatten"):
        return
    if x.strides is not None:
        ctx.unsupported(f"{what} of a non-contiguous tensor (torch's own {what} decides from its strides)")
    ctx.unsupported(f"{what} of a tensor that may not be contiguous, whose strides symshape does not "
                    "know: whether torch accepts it depends on them; use reshape, or .contiguous() first")


def _reshaped(x: SymTensor, out: SymTensor) -> SymTensor:
    """A reshape's output: contiguous from a contiguous input (a view: its size-1 strides as loose
    as the input's); from another, a view or a copy depending on the strides -- the same sizes
    either way, its layout not followed (fast)."""
    if not x.contiguous:
        return out.with_shape(out.shape, contiguous=False)
    return replace(out, loose=x.loose, guard=x.guard) if x.loose or x.guard else out


def flatten_shape(ctx: Context, x: SymTensor, start_dim: int, end_dim: int) -> SymTensor:
    """``out[start] = in[start] * ... * in[end]``; a 0-dim tensor becomes 1-dim."""
    if x.ndim == 0:
        return SymTensor((1,))
    try:
        start, end = x.dim(start_dim), x.dim(end_dim)
    except IndexError as e:
        ctx.refuse(f"flatten: {e}")
    if start > end:
        ctx.refuse(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a {x.ndim}D input")
    merged = canonical(product(x.shape[start : end + 1]))
    out = SymTensor((*x.shape[:start], merged, *x.shape[end + 1 :]))
    if not x.contiguous and x.strides is not None and _mergeable(x, start, end):
        # a view: the merged dims' stride is the innermost one's (torch's computeStride)
        # (exact but for dims of size 1: torch's computeStride merges those differently)
        return recorded(x, x.with_shape(out.shape, strides=(*x.strides[:start], x.strides[end], *x.strides[end + 1:]),
                                        exact=False), "reshape")
    return recorded(x, _reshaped(x, out), "reshape")


def _mergeable(x: SymTensor, start: int, end: int) -> bool:
    """Whether dims ``start..end`` of ``x`` merge into one view dim at every size: each one's
    stride is the next one's times its size (structurally; dims of size 1 aside)."""
    dims = [k for k in range(start, end + 1) if x.shape[k] != 1]
    return all(sympy.expand(as_expr(x.strides[a]) - as_expr(x.strides[b]) * x.shape[b]) == 0
               for a, b in zip(dims, dims[1:]))


def _fraction_inside(e) -> bool:
    """Whether a size has a fraction other than its outermost one (``a*b/c``): inside a
    Piecewise, a floor or a Min, where the evaluation (symshape.compiled, with integers) would
    floor a part of it on its own."""
    num, den = as_expr(e).as_numer_denom()
    return any(p.exp.is_negative for part in (num, den) for p in part.atoms(sympy.Pow)) or any(
        not r.is_Integer for part in (num, den) for r in part.atoms(sympy.Rational))


def _size_list(sizes) -> list:
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
        return list(sizes[0])
    return list(sizes)


def _shown(sizes) -> str:
    return _shown_tuple(tuple(sizes))


@functools.lru_cache(maxsize=2048)
def _shown_tuple(sizes: tuple) -> str:
    """(cached: sympy's printer is slow, and the blocks of a stage view the same sizes)"""
    return "(" + ", ".join(_text(s) for s in sizes) + ")"


@functools.lru_cache(maxsize=4096)
def _text(size) -> str:
    """(each size too: the sides of a branch view tuples that share most of their sizes)"""
    return str(size)


def view_shape(ctx: Context, x: SymTensor, sizes: list, what: str) -> SymTensor:
    """``out = sizes``; a single -1 is ``numel / product(others)``, which must divide exactly."""
    sizes = [as_expr(size_value(s, f"{what} size", ctx), f"{what} size") for s in sizes]
    inferred = [i for i, s in enumerate(sizes) if s == -1]
    if len(inferred) > 1:
        ctx.refuse(f"{what}{_shown(sizes)}: only one dimension can be inferred")
    for s in sizes:
        if s.is_Integer and s < -1:
            ctx.refuse(f"{what}{_shown(sizes)}: invalid shape dimension {s}")
    numel = x.numel()
    if all(s.is_Integer for s in sizes):  # torch's own words (infer_size), where they have no symbol
        refused = f"shape '[{', '.join(str(s) for s in sizes)}]' is invalid for input of size {{lhs}}"
    else:
        refused = None
    if inferred:
        i = inferred[0]
        known = product(s for j, s in enumerate(sizes) if j != i)
        ctx.at_least(known, 1, f"{what}{_shown(sizes)} cannot infer -1 when the other sizes multiply to 0")
        inferred_size = quotient(numel, known)  # common factors such as the batch size N cancel
        if _fraction_inside(inferred_size):
            # a fraction inside a size defined by cases (``768*Piecewise((1, hw == 1), (1/hw,
            # True))*Piecewise(...)``): each case's factors multiplied into it, where they cancel
            inferred_size = exact_quotient(numel, known) or sympy.piecewise_fold(inferred_size)
            if _fraction_inside(inferred_size):
                ctx.unsupported(f"{what}{_shown(sizes)}: the inferred size {inferred_size} has a fraction "
                                "inside a size defined by cases")
        proven = None
        if inferred_size.is_Mul and any(f.is_Pow and f.exp < 0 for f in inferred_size.args):
            # not a product of sizes: the earlier checks may make each size's share a constant
            # (a window partition's _assert before the view that reverses it); then the element
            # count divides wherever torch gets here, and is no check of this view's
            proven = quotient_where(ctx.facts + ctx.earlier, numel, known)
        if proven is None:
            ctx.divisible(numel, known, refused or f"{what}{_shown(sizes)} needs a multiple of {{rhs}} elements, gets {{lhs}}")
        sizes[i] = inferred_size if proven is None else proven
    else:
        ctx.equal(numel, product(sizes), refused or f"{what}{_shown(sizes)} needs {{rhs}} elements, gets {{lhs}}")
    return SymTensor(tuple(canonical(s) for s in sizes))


@method_rule("view", what="view", layout=True)
@method_rule("reshape", what="reshape", layout=True)
def view(ctx: Context, self, *sizes, what: str, **named) -> SymTensor:
    """``out = sizes`` with one -1 inferred: ``numel / product(others)``. The sizes may be given
    by name as torch takes them: ``x.view(size=...)``, ``x.reshape(shape=...)``."""
    x = tensor_arg(self, "self", ctx)
    keyword = "size" if what == "view" else "shape"
    if named:
        if sizes or set(named) != {keyword}:
            ctx.refuse(f"{what}() received an invalid combination of arguments: {', '.join(named)} by name")
        sizes = (named[keyword],)
    if len(sizes) == 1 and isinstance(sizes[0], torch.dtype):
        ctx.unsupported("view(dtype)")
    return _viewed(ctx, x, _size_list(sizes), what)


@method_rule("view_as", what="view", layout=True)
@method_rule("reshape_as", what="reshape", layout=True)
def view_as(ctx: Context, self, other, *, what: str) -> SymTensor:
    """``out = other.shape``: ``view(other.size())`` (``reshape`` for ``reshape_as``)."""
    return _viewed(ctx, tensor_arg(self, "self", ctx), list(tensor_arg(other, "other", ctx).shape), what)


def _viewed(ctx: Context, x: SymTensor, sizes: list, what: str) -> SymTensor:
    out = view_shape(ctx, x, sizes, what)
    strides = _view_strides(x, out.shape, ctx.same) if not x.contiguous and x.strides is not None else None
    if strides is not None:  # a view at every size, strides as torch computes them
        # (but for dims of size 1, which torch's computeStride merges into other chunks); where
        # those strides hold only under a guard, elsewhere they may be others: it requires it
        if what == "view" and not _any_format_views(x, out.shape, ctx.same):
            require_layout(ctx, x)
        return recorded(x, x.with_shape(out.shape, strides=strides, exact=False), what)
    if not x.contiguous and x.strides is None and _splits_only(x, out.shape, ctx.same):
        # a view at any strides (EfficientViT's feat.view(B, -1, H, W) of a (B, C, H, W) tensor
        # whose layout symshape does not follow): the same sizes, the layout still not known
        return x if tuple(out.shape) == tuple(x.shape) else recorded(x, out.with_shape(out.shape, contiguous=False),
                                                                      what)
    exact = resolved(ctx, x) if what == "view" and not x.contiguous and x.strides is None else x
    if exact is not x and exact.contiguous:
        return _reshaped(exact, out)
    if exact is not x:
        # a layout recorded where a reshape left it unknown (Longformer's chunks): torch's own
        # computeStride decides, by cases where a size may be 1
        x = exact
        found = compute_stride(ctx, x.shape, x.known_strides, out.shape)
        if found is None:
            ctx.refuse("view size is not compatible with input tensor's size and stride (at least one dimension "
                       "spans across two contiguous subspaces). Use .reshape(...) instead.")
        return x.with_shape(out.shape, strides=found)
    by_strides(ctx, x, what, out.shape)
    return recorded(x, _reshaped(x, out), what)


def _same(a, b) -> bool:
    return sympy.expand(as_expr(a) - as_expr(b)) == 0


#: the most dims on each side of one chunk of a view that _view_strides matches
_MAX_CHUNK = 6


def _chunks(xshape, shape, same=_same) -> list[tuple[int, int, int, int]] | None:
    """``xshape``'s dims and ``shape`` (a view's: the caller has required equal element counts)
    as consecutive chunks of equal product, the smallest first: ``(i, a, k, b)`` for
    ``xshape[i:i+a]`` and ``shape[k:k+b]``. Where no chunk is found from the front, the rest is
    matched from the back, and what is left between is one chunk: its products are equal
    wherever the view runs (the counts are, the chunks around it are, and every size of a
    non-empty tensor is at least 1) -- LeViT's ``(N, L, C)`` viewed as ``(N, 14, 14, C)``, where
    ``L == 196`` is what the view requires. None where no such chunks are found."""
    out = []
    i = k = 0
    n, m = len(xshape), len(shape)
    while i < n or k < m:
        found = _chunk_at(xshape, shape, same, i, k, 1)
        if found is None:
            return _closed(out, xshape, shape, same, i, k)
        a, b = found
        out.append((i, a, k, b))
        i, k = i + a, k + b
    return out


def _chunk_at(xshape, shape, same, i: int, k: int, step: int) -> tuple[int, int] | None:
    """The smallest ``(a, b)`` with ``a`` dims of ``xshape`` and ``b`` of ``shape`` of equal
    product, starting at ``i`` and ``k`` (``step`` 1), or ending just before them (``step`` -1)."""
    n, m = len(xshape), len(shape)
    for total in range(2, 2 * _MAX_CHUNK + 1):  # the smallest chunk first
        for a in range(1, min(total, _MAX_CHUNK + 1)):
            b = total - a
            if b > _MAX_CHUNK:
                continue
            xs, ys = (slice(i, i + a), slice(k, k + b)) if step > 0 else (slice(i - a, i), slice(k - b, k))
            if xs.start < 0 or ys.start < 0 or xs.stop > n or ys.stop > m:
                continue
            if same(product(xshape[xs]), product(shape[ys])):
                return a, b
    return None


def _closed(out: list, xshape, shape, same, i: int, k: int) -> list | None:
    """The chunks ``out`` found from the front up to ``xshape[i]`` and ``shape[k]``, then those
    found from the back, and the dims left between them as one chunk (see :func:`_chunks`);
    None where dims are left on one side only."""
    tail = []
    j, l = len(xshape), len(shape)
    while j > i and l > k:  # (within the rest: a chunk from the back never reaches into one from the front)
        found = _chunk_at(xshape[i:], shape[k:], same, j - i, l - k, -1)
        if found is None:
            break
        a, b = found
        j, l = j - a, l - b
        tail.append((j, a, l, b))
    if (j > i) != (l > k):
        return None
    middle = (_split(xshape, shape, i, j, k, l) or [(i, j - i, k, l - k)]) if j > i else []
    return out + middle + tail[::-1]


def _split(xshape, shape, i: int, j: int, k: int, l: int) -> list | None:
    """The chunk ``xshape[i:j]``, ``shape[k:l]`` (whose products are equal wherever the view runs)
    as smaller chunks, each one dim of one side against consecutive dims of the other, where each
    one dim is at least the product of its group at every size: then, the products being equal
    and no size 0 (an empty tensor views as any shape), each is equal to it. Hiera's
    ``(N, h//2, w//2, C)`` viewed as ``(N, h//4, 2, w//4, 2, C)``: ``h//2 >= 2*(h//4)`` at
    every ``h``, which no chunk from the ends finds (``h//2`` is not ``2*(h//4)`` at every size).
    None where no such chunks are found."""
    for ones, many, flip in ((xshape[i:j], shape[k:l], False), (shape[k:l], xshape[i:j], True)):
        if len(ones) < 2 or len(many) <= len(ones):
            continue
        groups, at = [], 0
        for n, dim in enumerate(ones):
            rest = len(ones) - n - 1  # (each later dim keeps at least one of ``many``)
            ends = [len(many) - rest] if rest == 0 else range(len(many) - rest, at, -1)
            end = next((e for e in ends if decide(sympy.Ge(as_expr(dim), product(many[at:e]))) is True), None)
            if end is None:
                break
            groups.append((n, at, end - at))
            at = end
        else:
            return [(i + g, b, k + n, 1) if flip else (i + n, 1, k + g, b) for n, g, b in groups]
    return None


def _any_format_views(x: SymTensor, shape, same=_same) -> bool:
    """Whether viewing ``x`` as ``shape`` is a view at every size whichever memory format a
    kernel gave ``x``, contiguous or channels last: where the guard of its layout does not hold
    (symshape.tensor.kernel_layout: a size that may be 1, whose strides decide the format torch
    picks) torch's is one of the two, so such a view needs no guard (CvT's ``(B, C, H, W)``
    after a convolution of a channels-last input, viewed as ``(B, C, H*W)`` at batch 1). Dims
    of size 1 with other strides do not matter: torch's computeStride skips them. Only for a
    tensor laid out as a kernel gives it, in one of the two (not a permuted or sliced view of
    one, whose strides are another tensor's)."""
    if not x.guard or x.ndim not in (3, 4, 5) or x.known_strides is None:
        return False
    formats = (standard_strides(x.shape), channels_last_strides(x.shape))
    if not any(all(_same(a, b) for a, b in zip(x.known_strides, f)) for f in formats):
        return False
    return all(_strides_viewed(x.shape, strides, shape, same) is not None for strides in formats)


def _view_strides(x: SymTensor, shape, same=_same) -> tuple | None:
    """The strides of ``x`` viewed as ``shape``, as torch's computeStride gives them, where the
    view is one at every size (structurally): ``x``'s dims and ``shape`` fall into consecutive
    chunks of equal product; each chunk of ``x`` is laid out as one block (a dim's stride is the
    next one's times its size, wherever ``x`` is not empty); its dims of ``shape`` get the innermost stride times the sizes
    after them. A dim ``(a, b, c)`` split from one of stride ``s`` gets ``(s*b*c, s*c, s)``;
    ``(H, W)`` with strides ``(8*W, 8)`` merges into ``H*W`` of stride 8. None where no such
    chunks are found (torch's answer may then depend on the sizes). ``same``: the equality of
    sizes (on a side of a Python branch, as its answers imply: ``Context.same``)."""
    return _strides_viewed(x.shape, x.strides, shape, same)


def _strides_viewed(xshape: tuple, xstrides: tuple, shape, same=_same) -> tuple | None:
    """:func:`_view_strides` of a tensor of shape ``xshape`` and strides ``xstrides``."""
    chunks = _chunks(xshape, shape, same)
    if chunks is None:
        return None
    # where the tensor is empty torch's view takes any shape of its size (computeStride's
    # zero-numel branch); elsewhere every size is at least 1, and a stride Max(1, w) is w
    strides = [nonempty(s) for s in xstrides]
    out: list = []
    for i, a, k, b in chunks:
        dims = [d for d in range(i, i + a) if xshape[d] != 1] or [i + a - 1]
        if not all(same(strides[p], strides[q] * xshape[q]) for p, q in zip(dims, dims[1:])):
            return None  # not one block at every size
        base = strides[dims[-1]]
        out += [base * product(shape[j + 1:k + b]) for j in range(k, k + b)]
    return tuple(out)


def _splits_only(x: SymTensor, shape, same=_same) -> bool:
    """Whether viewing ``x`` as ``shape`` only splits dims (each dim of ``x`` but those of size 1
    becomes one or more consecutive dims of ``shape``): torch's computeStride then succeeds
    whatever the strides (the split dims get the dim's stride times the sizes after them)."""
    chunks = _chunks(x.shape, shape, same)
    return chunks is not None and all(sum(1 for d in range(i, i + a) if x.shape[d] != 1) <= 1
                                      for i, a, _, _ in chunks)


@function_rule(torch.reshape, layout=True)
def reshape_function(ctx: Context, input, shape) -> SymTensor:
    """``torch.reshape(input, shape)``: the view rule."""
    return _viewed(ctx, tensor_arg(input, "input", ctx), list(shape), "reshape")


@module_rule(nn.Flatten, layout=True)
def flatten_module(ctx: Context, module: nn.Flatten, x) -> SymTensor:
    """``out[start] = in[start] * ... * in[end]`` (start_dim=1, end_dim=-1 by default)."""
    return flatten_shape(ctx, tensor_arg(x, "input", ctx), module.start_dim, module.end_dim)


@function_rule(torch.flatten, layout=True)
@method_rule("flatten", layout=True)
def flatten(ctx: Context, input, start_dim=0, end_dim=-1) -> SymTensor:
    """``out[start] = in[start] * ... * in[end]`` (start_dim=0 by default)."""
    x = tensor_arg(input, "input", ctx)
    return flatten_shape(ctx, x, as_int(start_dim, "start_dim", ctx), as_int(end_dim, "end_dim", ctx))


def unflatten_shape(ctx: Context, x: SymTensor, dim: int, sizes, what: str) -> SymTensor:
    """``in[dim]`` becomes ``sizes`` (one -1 allowed), which must multiply up to ``in[dim]``."""
    by_strides(ctx, x, "unflatten")  # torch's unflatten is a view
    try:
        i = x.dim(as_int(dim, "dim", ctx))
    except IndexError as e:
        ctx.refuse(f"{what}: {e}")
    part = SymTensor((x.shape[i],))
    out = view_shape(ctx, part, list(sizes), what)
    return SymTensor((*x.shape[:i], *out.shape, *x.shape[i + 1 :]))


@module_rule(nn.Unflatten)
def unflatten_module(ctx: Context, module: nn.Unflatten, x) -> SymTensor:
    """``in[dim]`` becomes ``unflattened_size``, whose product must equal ``in[dim]``."""
    x = tensor_arg(x, "input", ctx)
    if isinstance(module.dim, str):
        ctx.unsupported("named-tensor Unflatten")
    return unflatten_shape(ctx, x, module.dim, module.unflattened_size, "unflatten")


@function_rule(torch.unflatten)
@method_rule("unflatten")
def unflatten(ctx: Context, input, dim, sizes) -> SymTensor:
    """``in[dim]`` becomes ``sizes``, whose product must equal ``in[dim]``."""
    return unflatten_shape(ctx, tensor_arg(input, "input", ctx), dim, sizes, "unflatten")


# Size queries return sizes (sympy expressions), not tensors; they are not steps.


@method_rule("size")
def size(ctx: Context, self, dim=None):
    """``x.size()`` is the shape tuple, ``x.size(i)`` one size."""
    x = tensor_arg(self, "self", ctx)
    if dim is None:
        return tuple(x.shape)
    try:
        return x.shape[x.dim(as_int(dim, "dim", ctx))]
    except IndexError as e:
        ctx.refuse(f"size: {e}")


@method_rule("dim", "ndimension")
def ndim(ctx: Context, self) -> int:
    """``x.dim()``: the rank, a fixed int."""
    return tensor_arg(self, "self", ctx).ndim


@method_rule("numel", "nelement")
def numel(ctx: Context, self):
    """``x.numel()``: the product of the sizes."""
    return tensor_arg(self, "self", ctx).numel()


@method_rule("item")
def item(ctx: Context, self):
    """``x.item()``: the one entry of a tensor of one element (torch raises for any other count).
    Where symshape knows that entry exactly (``torch.tensor(L).item()``, a count that can only be
    0) it is that number; where it bounds it (symshape.ranges: a count of true entries along a
    dim of size ``n`` lies in ``0 … n``) it is a :class:`~symshape.bounds.ReadValue`, data that
    only a comparison its bounds decide may read; any other entry is data symshape refuses."""
    x = tensor_arg(self, "self", ctx)
    ctx.equal(x.numel(), 1, "item: a Tensor with {lhs} elements cannot be converted to Scalar")
    found = entry_bounds(x)
    if found is None:
        ctx.unsupported("item() of a tensor whose entries are data: symshape knows no bounds of them")
    lo, hi = found
    if lo == hi:
        return bool(lo) if x.dtype == torch.bool else lo
    return ReadValue(lo, hi, x.dtype)


#: a tensor's device, as the analysis runs the model (on the CPU): the same for every size, so
#: the tracer hands them out as plain values (symshape.trace) and this rule answers them
DEVICE_ATTRIBUTES = {"device": torch.device("cpu"), "is_cuda": False, "is_meta": False, "is_cpu": True}


def reported_dtype(t: SymTensor) -> torch.dtype:
    """``t.dtype`` as the analysis answers it: the tensor's, float32 where symshape does not
    follow it (the getattr rule's, and a traced tensor's plain ``.dtype``: symshape.proxies)."""
    return t.dtype or torch.float32


@function_rule(builtins.getattr)
def tensor_attribute(ctx: Context, obj, name, *default):
    """``x.shape`` and ``x.ndim``; attributes that do not depend on sizes as the analysis runs
    the model (``dtype``: the tensor's, float32 where not tracked; ``device``: the CPU;
    ``is_cuda``: False; ``.data``: the tensor); others go to torch's meta path."""
    if isinstance(obj, SymTensor):
        if name == "shape":
            return tuple(obj.shape)
        if name == "ndim":
            return obj.ndim
        fixed = {"dtype": reported_dtype(obj), **DEVICE_ATTRIBUTES, "data": obj}
        if isinstance(name, str) and name in fixed:
            return fixed[name]
        ctx.unsupported(f"tensor attribute {name!r}")
    if isinstance(obj, Record) and isinstance(name, str):  # (a ModelOutput of a call traced on its own)
        try:
            return obj.field(name)
        except LookupError as e:
            ctx.unsupported(str(e))
    try:
        return getattr(obj, name, *default)
    except AttributeError as e:  # (never left to fx, whose lazy attribute would ask for it again)
        ctx.unsupported(f"attribute {name!r} of a {type(obj).__name__}: {e}")
