"""Dims rearranged, added, removed or reduced: permute, transpose, unsqueeze, squeeze, expand,
slicing, reductions over dims, split and chunk, and torch._assert on sizes.

    permute(dims):        out[i] = in[dims[i]]
    x[a:b:c]:             out = max(0, ceil((min(b, n) - min(a, n))/c)), negative bounds counted from n
    x[i]:                 drops the dim; torch needs -n <= i < n
    mean(dims, keepdim):  the reduced dims become 1 (keepdim) or go
    chunk(k, dim):        pieces of ceil(n/k); the i-th exists only while i*ceil(n/k) < n

Permuted, transposed, expanded, sliced and chunked tensors carry their strides, computed as torch
computes them, so a later ``view`` is decided from the strides by torch's own view (symshape.meta);
where strides are not known, a ``view`` is refused rather than guessed.
"""

from __future__ import annotations

import operator

import sympy
import torch

from ..dims import as_expr, canonical, ceil_div, floor_div, maximum, minimum
from ..requirements import Requirement
from ..tensor import Pieces, SymTensor
from .combine import broadcast_shape
from .common import as_bool, as_int, tensor_arg
from .registry import Context, function_rule, method_rule

__all__ = ["slice_length"]


def _dims(ctx: Context, x: SymTensor, dims, what: str) -> list[int]:
    if isinstance(dims, (list, tuple)) and len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    dims = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    try:
        return [x.dim(as_int(d, "dim", ctx)) for d in dims]
    except IndexError as e:
        ctx.refuse(f"{what}: {e}")
        raise


def _laid_out(x: SymTensor, shape, strides) -> SymTensor:
    """``x`` with ``shape`` and ``strides`` (computed from x's known strides, as torch does), or,
    where x's strides are not known, an unknown layout."""
    if strides is None:
        return x.with_shape(shape, contiguous=False)
    return x.with_shape(shape, strides=strides)


@function_rule(torch.permute, layout=True)
@method_rule("permute", layout=True)
def permute(ctx: Context, input, *dims) -> SymTensor:
    """``out[i] = in[dims[i]]``."""
    x = tensor_arg(input, "input", ctx)
    order = _dims(ctx, x, dims, "permute")
    if sorted(order) != list(range(x.ndim)):
        ctx.refuse(f"permute: dims {tuple(order)} are not a permutation of {x.ndim} dims")
    st = x.known_strides
    return _laid_out(x, [x.shape[i] for i in order], st and [st[i] for i in order])


@function_rule(torch.transpose, torch.swapaxes, torch.swapdims, layout=True)
@method_rule("transpose", "swapaxes", "swapdims", layout=True)
def transpose(ctx: Context, input, dim0, dim1) -> SymTensor:
    """``in[dim0]`` and ``in[dim1]`` swap."""
    x = tensor_arg(input, "input", ctx)
    a, b = _dims(ctx, x, [dim0, dim1], "transpose")
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    st = x.known_strides
    return _laid_out(x, [x.shape[i] for i in order], st and [st[i] for i in order])


@function_rule(torch.t, layout=True)
@method_rule("t", layout=True)
def t(ctx: Context, input) -> SymTensor:
    """A 2D transpose (0D and 1D tensors unchanged)."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim > 2:
        ctx.refuse(f"t() expects a tensor with <= 2 dimensions, gets {x.ndim}D")
    st = x.known_strides
    return _laid_out(x, tuple(reversed(x.shape)), st and tuple(reversed(st)))


@function_rule(torch.unsqueeze, layout=True)
@method_rule("unsqueeze", layout=True)
def unsqueeze(ctx: Context, input, dim) -> SymTensor:
    """Inserts a dim of size 1 at ``dim`` (counted in the output)."""
    x = tensor_arg(input, "input", ctx)
    d = as_int(dim, "dim", ctx)
    n = x.ndim + 1
    if not -n <= d < n:
        ctx.refuse(f"unsqueeze: dim {d} out of range for {n} dims")
    d %= n
    st = x.known_strides
    # torch: the new dim's stride is sizes[d] * strides[d], or 1 at the end
    new = st and [*st[:d], x.shape[d] * st[d] if d < x.ndim else 1, *st[d:]]
    return _laid_out(x, [*x.shape[:d], 1, *x.shape[d:]], new)


@function_rule(torch.squeeze, layout=True)
@method_rule("squeeze", layout=True)
def squeeze(ctx: Context, input, dim=None) -> SymTensor:
    """Drops the named dims (all, without ``dim``) whose size is 1; sizes must be known there."""
    x = tensor_arg(input, "input", ctx)
    dims = range(x.ndim) if dim is None else _dims(ctx, x, dim, "squeeze")
    keep = []
    for i, s in enumerate(x.shape):
        if i in dims and not s.is_Integer:
            ctx.unsupported(f"squeeze of dim {i}, whose size {s} depends on the input (1 or not changes the rank)")
        if not (i in dims and s == 1):
            keep.append(i)
    st = x.known_strides
    return _laid_out(x, [x.shape[i] for i in keep], st and [st[i] for i in keep])


@method_rule("expand", layout=True)
def expand(ctx: Context, self, *sizes) -> SymTensor:
    """``-1`` keeps a size; a size-1 dim may grow; new leading dims may be added. A size that
    may or may not be 1 (``H``) gives the size asked for: ``H`` must be it, unless ``H == 1``."""
    x = tensor_arg(self, "self", ctx)
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        ctx.refuse(f"expand: the number of sizes ({len(sizes)}) must be at least the number of dims ({x.ndim})")
    lead = len(sizes) - x.ndim
    st = x.known_strides
    out, strides, by_case = [], [], False
    for i, want in enumerate(sizes):
        want = as_expr(want, "expand size")
        if i < lead:
            if want == -1:
                ctx.refuse("expand: -1 is not allowed in a new leading dim")
            out.append(want)
            strides.append(0)  # torch: a new dim repeats the tensor: stride 0
            continue
        have = x.shape[i - lead]
        stride = st[i - lead] if st else 0
        if want == -1 or want == have:
            out.append(have)
        elif have == 1:
            out.append(want)
            stride = 0
        else:
            # torch grows a dim of size 1 and keeps one of the size asked for: either way the
            # size asked for (the stride is 0 in the first case only: not followed)
            reason = f"expand: size {{lhs}} must match {{rhs}} at non-singleton dim {i}"
            ctx.require(have, "==", want, reason, unless=Requirement(have, "==", 1, reason))
            out.append(want)
            by_case = True
        strides.append(stride)
    return _laid_out(x, out, strides if st and not by_case else None)


@method_rule("expand_as", layout=True)
def expand_as(ctx: Context, self, other) -> SymTensor:
    """``expand(other.size())``."""
    return expand(ctx, self, tuple(tensor_arg(other, "other", ctx).shape))


# -- indexing ----------------------------------------------------------------------------------


def _bound(v, n, default):
    """A slice bound as a position in 0..n (Python's clamping)."""
    if v is None:
        return default
    v = as_expr(v, "slice bound")
    if v.is_Integer and v < 0:
        return maximum(n + v, 0)
    return minimum(v, n)


def slice_length(n, start, stop, step) -> sympy.Expr:
    """``len(range(n)[start:stop:step])`` for a positive step."""
    a = _bound(start, n, sympy.Integer(0))
    b = _bound(stop, n, n)
    return canonical(maximum(0, ceil_div(b - a, step)))


def _last_pieces(ctx: Context, pieces: Pieces, j: int) -> SymTensor:
    """``pieces[-j]`` of a chunk whose count ``c`` depends on the size: piece ``c - j``, by cases
    on ``c`` (piece ``i`` exists where ``requires[i]`` holds; the count is the first that does not)."""
    k = len(pieces)
    if j > k:
        ctx.refuse(f"tuple index -{j} out of range for at most {k} chunks")
    if pieces.requires[j - 1]:
        ctx.at_least(*pieces.requires[j - 1])  # at least j pieces

    def exists(i: int):
        req = pieces.requires[i] if i < k else (0, 1, "")
        return sympy.true if req is None else sympy.Ge(req[0], req[1])

    d = pieces.dim
    cases = [(pieces[c - j].shape[d], exists(c - 1) & sympy.Not(exists(c)) if c < k else exists(c - 1))
             for c in range(k, j - 1, -1)]
    size = canonical(sympy.Piecewise(*cases[:-1], (cases[-1][0], True)))
    first = pieces[0]
    return _laid_out(first, [*first.shape[:d], size, *first.shape[d + 1:]], first.known_strides)


@function_rule(operator.getitem, layout=True)
def getitem(ctx: Context, value, index):
    """``x[...]`` with ints, slices, None and Ellipsis (a tuple of tensors: the element)."""
    if isinstance(value, (tuple, list)):
        if isinstance(value, Pieces):
            if not isinstance(index, int):
                ctx.unsupported("slicing the chunks of a size-dependent chunk() (their count depends on the size)")
            if index < 0:
                return _last_pieces(ctx, value, -index)
            if index < len(value.requires) and value.requires[index]:
                ctx.at_least(*value.requires[index])
        return value[index]
    x = tensor_arg(value, "value", ctx)
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, SymTensor) for i in items):
        ctx.unsupported("indexing with a tensor (advanced indexing)")
    real = [i for i in items if i is not None and i is not Ellipsis]
    if len(real) > x.ndim:
        ctx.refuse(f"too many indices for a tensor of dimension {x.ndim}")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (x.ndim - len(real)) + items[k + 1:]
    items += [slice(None)] * (x.ndim - len([i for i in items if i is not None]))
    st = x.known_strides
    out, strides, d = [], [], 0
    for i, item in enumerate(items):
        if item is None:
            out.append(sympy.Integer(1))
            strides.append(None)  # a size-1 dim: torch's unsqueeze stride, set below
            continue
        n = x.shape[d]
        if isinstance(item, slice):
            step = 1 if item.step is None else as_int(item.step, "step", ctx)
            if step <= 0:
                ctx.refuse("slice step must be positive")
            full = item.start in (None, 0) and item.stop is None and step == 1
            out.append(n if full else slice_length(n, item.start, item.stop, step))
            strides.append(st[d] * step if st else None)
        else:
            k = as_expr(item, "index")
            if not k.is_Integer:
                ctx.unsupported(f"an index that depends on the input size ({k})")
            need = int(k) + 1 if k >= 0 else -int(k)
            ctx.at_least(n, need, f"index {int(k)} is out of bounds for dim {d} with size {{lhs}}")
        d += 1
    if not st:
        return x.with_shape(out, contiguous=False)
    for j in reversed(range(len(out))):  # a None's stride: sizes[d] * strides[d] of the next dim, or 1
        if strides[j] is None:
            strides[j] = out[j + 1] * strides[j + 1] if j + 1 < len(out) else 1
    return x.with_shape(out, strides=strides)


# -- reductions --------------------------------------------------------------------------------


def _reduce(ctx: Context, x: SymTensor, dim, keepdim: bool, what: str) -> SymTensor:
    if dim is None:
        return SymTensor(tuple(sympy.Integer(1) for _ in x.shape) if keepdim else ())
    dims = set(_dims(ctx, x, dim, what))
    shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keepdim or i not in dims]
    return SymTensor(tuple(shape))


_REDUCTIONS = ("mean", "sum", "amax", "amin", "prod", "logsumexp", "nansum", "nanmean", "argmax",
               "argmin", "all", "any")


@function_rule(torch.mean, torch.sum, torch.amax, torch.amin, torch.prod, torch.logsumexp, torch.nansum,
               torch.nanmean, torch.argmax, torch.argmin, torch.all, torch.any)
@method_rule(*_REDUCTIONS)
def reduction(ctx: Context, input, dim=None, keepdim=False, *, dtype=None, out=None) -> SymTensor:
    """The reduced dims become 1 (``keepdim``) or go; no ``dim``: everything is reduced."""
    x = tensor_arg(input, "input", ctx)
    if isinstance(dim, torch.dtype):  # x.sum(torch.float64)
        dim = None
    return _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "reduction")


@function_rule(torch.norm)
@method_rule("norm")
def norm(ctx: Context, input, p="fro", dim=None, keepdim=False, out=None, dtype=None) -> SymTensor:
    """``x.norm(p, dim)``: a reduction over ``dim`` (all dims when None). ``p="fro"`` over more
    than 2 dims raises in torch (a matrix norm needs 2); ``"nuc"`` is left to torch's meta kernel."""
    x = tensor_arg(input, "input", ctx)
    if out is not None:
        ctx.unsupported("norm with out=")
    if isinstance(p, str):
        if p != "fro":
            ctx.unsupported(f"norm with p={p!r}")
        if dim is not None and len(_dims(ctx, x, dim, "norm")) > 2:
            ctx.refuse(f"norm: p='fro' over {len(_dims(ctx, x, dim, 'norm'))} dims (a matrix norm needs 2)")
    elif p is not None and not isinstance(p, (int, float)):
        ctx.unsupported(f"norm with p of type {type(p).__name__}")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None  # every dim, as torch.linalg.vector_norm does
    return _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "norm")


@function_rule(torch.linalg.vector_norm)
def vector_norm(ctx: Context, x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None) -> SymTensor:
    """A reduction over ``dim`` (all dims when None or empty)."""
    if out is not None:
        ctx.unsupported("vector_norm with out=")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    return _reduce(ctx, tensor_arg(x, "input", ctx), dim, as_bool(keepdim, "keepdim", ctx), "vector_norm")


@function_rule(torch.std, torch.var)
@method_rule("std", "var")
def std_var(ctx: Context, input, dim=None, *args, correction=None, unbiased=None, keepdim=False) -> SymTensor:
    """As a reduction; the legacy positional ``(dim, unbiased, keepdim)`` form is understood."""
    x = tensor_arg(input, "input", ctx)
    if isinstance(dim, bool):  # std(x, unbiased)
        dim = None
    if len(args) >= 2:
        keepdim = args[1]
    return _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "std/var")


@function_rule(torch.max, torch.min)
@method_rule("max", "min")
def max_min(ctx: Context, input, dim=None, keepdim=False, *args, **kwargs):
    """``max(x)``: a 0-dim tensor; ``max(x, dim)``: (values, indices); ``max(x, y)``: broadcasting."""
    x = tensor_arg(input, "input", ctx)
    if isinstance(dim, SymTensor):
        return broadcast_shape(ctx, x, dim)
    if dim is None:
        return SymTensor(())
    out = _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "max")
    return out, out


# -- splitting ---------------------------------------------------------------------------------


def _pieces(ctx: Context, x: SymTensor, sizes: list, d: int, requires=()) -> tuple[SymTensor, ...]:
    st = x.known_strides  # each piece is a view with the input's strides
    items = [_laid_out(x, [*x.shape[:d], s, *x.shape[d + 1:]], st) for s in sizes]
    return Pieces(items, requires, d) if any(requires) else tuple(items)


@function_rule(torch.chunk, layout=True)
@method_rule("chunk", layout=True)
def chunk(ctx: Context, input, chunks, dim=0):
    """Pieces of ``ceil(n/chunks)``; piece ``i`` exists only while ``i*ceil(n/chunks) < n``."""
    x = tensor_arg(input, "input", ctx)
    k = as_int(chunks, "chunks", ctx)
    (d,) = _dims(ctx, x, dim, "chunk")
    n = x.shape[d]
    size = ceil_div(n, k)
    if n.is_Integer:
        count = -(-int(n) // int(size)) if int(n) else 1
        sizes = [min(int(size), int(n) - i * int(size)) for i in range(count)]
        return _pieces(ctx, x, sizes, d)
    sizes, requires = [], []
    for i in range(k):
        requires.append((n, i * size + 1, f"chunk {i} of {k} exists only above {{rhs}} - 1 entries, gets {{lhs}}")
                        if i else None)
        sizes.append(canonical(sympy.Max(0, sympy.Min(size, n - i * size))))
    return _pieces(ctx, x, sizes, d, requires)


@function_rule(torch.split, layout=True)
@method_rule("split", layout=True)
def split(ctx: Context, input, split_size_or_sections, dim=0):
    """Equal pieces of ``split_size`` (the last one shorter), or the given section sizes."""
    x = tensor_arg(input, "input", ctx)
    (d,) = _dims(ctx, x, dim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [as_expr(s, "split size") for s in split_size_or_sections]
        ctx.equal(n, sympy.Add(*sizes), f"split sizes must add up to the dim's size {{lhs}}, they add up to {{rhs}}")
        return _pieces(ctx, x, sizes, d)
    s = as_int(split_size_or_sections, "split_size", ctx)
    if not n.is_Integer:
        ctx.unsupported(f"split into pieces of {s} along a dim whose size {n} depends on the input "
                        "(the number of pieces would too)")
    count = max(-(-int(n) // s), 1)
    return _pieces(ctx, x, [min(s, int(n) - i * s) for i in range(count)], d)


@function_rule(torch.unbind, layout=True)
@method_rule("unbind", layout=True)
def unbind(ctx: Context, input, dim=0):
    """One tensor per entry of ``dim``, which must have a fixed size."""
    x = tensor_arg(input, "input", ctx)
    (d,) = _dims(ctx, x, dim, "unbind")
    if not x.shape[d].is_Integer:
        ctx.unsupported(f"unbind along a dim whose size {x.shape[d]} depends on the input")
    st = x.known_strides
    one = _laid_out(x, [*x.shape[:d], *x.shape[d + 1:]], st and [*st[:d], *st[d + 1:]])
    return tuple(one for _ in range(int(x.shape[d])))


# -- assertions on sizes -------------------------------------------------------------------------


@function_rule(torch._assert, on_sizes=True)
def assert_(ctx: Context, condition, message="") -> None:
    """``torch._assert(h == 224, ...)``: torch raises where the condition fails."""
    if isinstance(condition, (bool, sympy.logic.boolalg.BooleanAtom)):
        if not bool(condition):
            ctx.never(f"torch._assert fails: {message}")
        return None
    rel = condition
    if isinstance(rel, sympy.Eq):
        ctx.equal(rel.lhs, rel.rhs, f"torch._assert: {{lhs}} must equal {{rhs}} ({rel})")
    elif isinstance(rel, sympy.Ne):
        ctx.require(rel.lhs, "!=", rel.rhs, f"torch._assert: {{lhs}} must differ from {{rhs}} ({rel})")
    elif isinstance(rel, (sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt)):
        big, small = (rel.lhs, rel.rhs) if isinstance(rel, (sympy.Ge, sympy.Gt)) else (rel.rhs, rel.lhs)
        strict = isinstance(rel, (sympy.Gt, sympy.Lt))
        ctx.at_least(big, small + 1 if strict else small, f"torch._assert: {{lhs}} must be at least {{rhs}} ({rel})")
    else:
        ctx.unsupported(f"torch._assert on {condition!r}")
    return None




@function_rule(operator.setitem)
def setitem(ctx: Context, value, index, item) -> None:
    """``x[index] = v``: ``x`` keeps its shape; ``v`` must broadcast to ``x[index]`` without
    growing it: each of its dims (right-aligned) is 1 or the region's size, and dims in front of
    the region's are 1 (torch strips them)."""
    x = tensor_arg(value, "value", ctx)
    region = getitem(ctx, x, index)
    if not isinstance(item, SymTensor):
        return None  # a number fills the region
    r, v = region.shape, item.shape
    extra = len(v) - len(r)
    for i, n in enumerate(v[:max(extra, 0)]):
        ctx.equal(n, 1, f"x[...] = v: v's dim {i} ({{lhs}}) is in front of the region's dims and must be 1")
    for i, (a, b) in enumerate(zip(reversed(r), reversed(v))):
        if a == b or b == 1:
            continue
        reason = (f"x[...] = v: v's size ({{lhs}}) at dim -{i + 1} must be 1 or the indexed region's "
                  f"({{rhs}}) (torch: shape mismatch, cannot be broadcast to indexing result)")
        ctx.require(b, "==", a, reason, unless=Requirement(b, "==", 1, reason))
    return None


@method_rule("unfold", layout=True)
def unfold(ctx: Context, input, dimension, size, step) -> SymTensor:
    """``out[d] = (in[d] - size) // step + 1`` and a new last dim of ``size`` (the windows of
    ``in[d]``; ``in[d] >= size``, ``step > 0``). A view: dim ``d``'s stride times ``step``, and
    the new dim gets dim ``d``'s stride."""
    x = tensor_arg(input, "input", ctx)
    size, step = as_int(size, "size", ctx), as_int(step, "step", ctx)
    if step <= 0:
        ctx.never(f"unfold: step is {step} but must be > 0")
    if size < 0:
        ctx.never(f"unfold: size is {size} but must be >= 0")
    if x.ndim == 0:
        if size > 1:
            ctx.never(f"unfold: the maximum size of a 0-dim tensor is 1 but size is {size}")
        return x.with_shape((size,), contiguous=True)
    (d,) = _dims(ctx, x, [dimension], "unfold")
    n = x.shape[d]
    ctx.at_least(n, size, f"unfold: the maximum size at dim {d} is {{lhs}} but size is {{rhs}}")
    shape = list(x.shape)
    shape[d] = canonical(floor_div(as_expr(n) - size, max(step, 1)) + 1)
    st = x.known_strides
    return _laid_out(x, [*shape, size], st and [*(st[i] * (step if i == d else 1) for i in range(x.ndim)), st[d]])
