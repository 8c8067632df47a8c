"""Dims rearranged, added, removed or reduced: permute, transpose, unsqueeze, squeeze, expand,
slicing and indexing, reductions over dims, split, chunk and narrow, and torch._assert on sizes.

    permute(dims):        out[i] = in[dims[i]]
    x[a:b:c]:             out = max(0, ceil((min(b, n) - min(a, n))/c)), negative bounds counted from n
    x[i]:                 drops the dim; torch needs -n <= i < n
    mean(dims, keepdim):  the reduced dims become 1 (keepdim) or go
    chunk(k, dim):        pieces of ceil(n/k); the i-th exists only while i*ceil(n/k) < n
    tensor_split(k):      piece i has floor((n + k - 1 - i)/k) entries; by indices: the slices between them
    narrow(d, s, k):      out = k; needs s + k <= n (a negative s: -s <= n)
    x[idx] (advanced):    the index tensors' broadcast shape replaces the dims they index; -n <= i < n

Permuted, transposed, expanded, sliced and chunked tensors carry their strides, computed as torch
computes them, so a later ``view`` is decided from the strides by torch's own view (symshape.meta);
where strides are not known, a ``view`` is refused rather than guessed.
"""

from __future__ import annotations

import operator
from dataclasses import replace

import sympy
import torch

from ..bounds import at_least, at_most, bounds, describe, from_data
from ..dims import as_expr, canonical, ceil_div, floor_div, maximum, minimum, product, smallest_value
from ..errors import UnsupportedWhereMetaDiffers
from ..requirements import Requirement
from ..records import Record
from ..tensor import Pieces, Repeated, SymTensor
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
    """Drops the named dims (all, without ``dim``) whose size is 1. Where a named dim's size
    ``s`` depends on the input, so does the rank: the analysis has the cases ``s == 1`` and
    ``s != 1`` (``Analysis.cases``)."""
    x = tensor_arg(input, "input", ctx)
    dims = range(x.ndim) if dim is None else _dims(ctx, x, dim, "squeeze")
    keep = []
    for i, s in enumerate(x.shape):
        one = s == 1
        if i in dims and not s.is_Integer:
            one = ctx.size_case(s, f"squeeze of dim {i}")
        if not (i in dims and one):
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
    """A slice bound as a position in 0..n (Python's clamping): a negative bound counts from
    the end. A bound computed from sizes may be negative at some sizes (``x[..., :h - 2]`` at
    ``h = 1`` is ``x[..., :-1]``): then both, by cases."""
    if v is None:
        return default
    v = as_expr(v, "slice bound")
    if v.is_Integer:
        return maximum(n + v, 0) if v < 0 else minimum(v, n)
    low = smallest_value(v)
    if low is not None and low >= 0:
        return minimum(v, n)
    negated = smallest_value(-v)
    if negated is not None and negated > 0:  # negative at every size (``x[..., -h:]``)
        return maximum(n + v, 0)
    return sympy.Piecewise((maximum(n + v, 0), sympy.Lt(v, 0)), (minimum(v, n), True))


def _index_of(ctx: Context, v):
    """A slice bound as Python reads it: a one-element integer tensor is its value
    (``__index__``: DeBERTa's ``torch.tensor(min(T, 512))`` as a bound), where symshape knows it
    (a constant, or exact extremes that are one value); any other value as it is."""
    if not isinstance(v, SymTensor):
        return v
    floating = isinstance(v.dtype, torch.dtype) and (v.dtype.is_floating_point or v.dtype.is_complex)
    if floating or any(as_expr(d).is_Integer and as_expr(d) != 1 for d in v.shape):
        ctx.refuse("only integer tensors of a single element can be converted to an index (a slice bound)")
    if v.dtype is None or any(as_expr(d) != 1 for d in v.shape):
        ctx.unsupported("a slice bound that is a tensor of a dtype or a number of entries symshape does not know")
    one = v.single_value()
    if one is None:
        ctx.unsupported("a slice bound that is a tensor whose value symshape does not know")
    return int(one) if one.is_Integer else one


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


def _repeated_item(ctx: Context, value: Repeated, index) -> SymTensor:
    """``pieces[i]`` of unbind's or split's tensors whose number ``c`` depends on the size: torch
    needs ``i < c`` (``-i <= c`` for a negative ``i``); a split's piece ``i`` has ``min(s, n - i*s)``
    entries, the last ``n - s*(c - 1)``."""
    if not isinstance(index, int) or isinstance(index, bool):
        ctx.unsupported(f"taking {type(index).__name__} {index!r} of {value.op}'s tensors, whose number depends "
                        "on the input size")
    c = value.count
    ctx.at_least(c, index + 1 if index >= 0 else -index,
                 f"tuple index {index} out of range: {value.op} returns {{lhs}} tensors")
    if value.op == "unbind" or index == -1:
        return value.last if index == -1 else value.item
    d, s = value.dim, value.item.shape[value.dim]
    n = value.last.shape[d] + s * (c - 1)
    size = s if index < 0 else canonical(minimum(s, n - index * s))
    shape = value.item.shape
    return _laid_out(value.item, [*shape[:d], size, *shape[d + 1:]], value.item.known_strides)


@function_rule(operator.getitem, layout=True)
def getitem(ctx: Context, value, index):
    """``x[...]`` with ints, slices, None and Ellipsis (a tuple of tensors: the element; a
    transformers ``ModelOutput``: the field, by name or by its place among those set)."""
    if isinstance(value, Record):
        try:
            return value.item(index)
        except (LookupError, TypeError) as e:
            ctx.unsupported(f"{value.kind}[{index!r}]: {e}")
    if isinstance(value, Repeated):
        return _repeated_item(ctx, value, index)
    if isinstance(value, (tuple, list)):
        if isinstance(value, Pieces):
            if not isinstance(index, int):
                ctx.unsupported("slicing the chunks of a size-dependent chunk() (their count depends on the size)")
            if index < 0:
                return _last_pieces(ctx, value, -index)
            if index < len(value.requires) and value.requires[index]:
                ctx.at_least(*value.requires[index])
        return value[index]
    return _tensor_item(ctx, tensor_arg(value, "value", ctx), index)


def _tensor_item(ctx: Context, x: SymTensor, index, count: sympy.Symbol | None = None) -> SymTensor:
    """``x[index]`` of a tensor (``count``: see :func:`_advanced_getitem`)."""
    items = list(index) if isinstance(index, tuple) or _sequence_as_tuple(index) else [index]
    items = [slice(*(_index_of(ctx, v) for v in (i.start, i.stop, i.step))) if isinstance(i, slice) else i
             for i in items]
    if any(_advanced(i) for i in items):
        return _advanced_getitem(ctx, x, items, count)
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
            length = n if full else slice_length(n, item.start, item.stop, step)
            # a dim of fixed size (a table, a mask buffer) sliced by a size: as long as the
            # size where the side's facts or the earlier checks bound it by the table's; a
            # slice clamped at 0 (``[:-1]`` of ``floor(L/20)``) where they keep it from 0
            out.append(ctx.settled(length) if not length.is_Integer and (n.is_Integer or length.has(sympy.Max))
                       else length)
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


def _advanced(item) -> bool:
    """An index torch's advanced indexing takes: a tensor, or a list (of ints or bools)."""
    return isinstance(item, (SymTensor, list)) or isinstance(item, bool)


def _sequence_as_tuple(index) -> bool:
    """torch's ``treatSequenceAsTuple``: a list index shorter than 32 that holds a tensor, a
    sequence, a slice, Ellipsis or None is a tuple of indices (``x[[0, [1, 2]]]``)."""
    return isinstance(index, list) and len(index) < 32 and any(
        isinstance(i, (SymTensor, list, tuple, slice)) or i is None or i is Ellipsis for i in index)


def _nested(ctx: Context, value) -> tuple[list, list]:
    """A nested list index: (its shape, its entries flattened); ragged lists are refused."""
    if not isinstance(value, (list, tuple)):
        return [], [value]
    parts = [_nested(ctx, v) for v in value]
    if any(p[0] != parts[0][0] for p in parts):
        ctx.never(f"an index list of uneven lengths: {value!r}")
    return [len(value), *(parts[0][0] if parts else [])], [e for p in parts for e in p[1]]


def _index_tensor(ctx: Context, item):
    """(bool mask?, shape, entries or None) of one advanced index."""
    if isinstance(item, bool):
        ctx.unsupported("indexing with a Python bool")
    if isinstance(item, SymTensor):
        if item.dtype is None:
            ctx.unsupported("indexing with a tensor whose dtype symshape does not know (torch takes long, int, "
                            "byte and bool indices)")
        if item.dtype.is_floating_point or item.dtype.is_complex:  # torch's check of the dtype, at every size
            ctx.refuse(f"tensors used as indices must be long, int, byte or bool tensors (a {item.dtype} index)")
        mask = item.dtype in (torch.bool, torch.uint8)
        entries = None if item.values is None else _nested(ctx, item.values)[1]
        return mask, list(item.shape), entries
    shape, entries = _nested(ctx, item)
    mask = bool(entries) and all(isinstance(e, bool) for e in entries)
    for e in entries:
        if not mask and not isinstance(as_expr(e, "index"), sympy.Expr):
            ctx.unsupported(f"index entry {e!r}")
    return mask, shape, entries


def _advanced_getitem(ctx: Context, x: SymTensor, items: list, count: sympy.Symbol | None = None) -> SymTensor:
    """``x[...]`` with tensor or list indices, as torch does it: ints, slices, None and Ellipsis
    first (select, slice, unsqueeze), then ``aten.index`` with the tensors at the dims they
    stand at. Their broadcast shape replaces the indexed dims where those are adjacent, else it
    goes first. Every index must lie in ``-n <= i < n`` (unless the output is empty: torch checks
    them while filling it) and a mask's shape must equal the dims it covers; symshape checks the
    indices where it knows their entries. A mask whose entries it does not know selects
    ``count`` entries (for ``x[mask] = v``, whose shape does not depend on it), else is refused."""
    indices = [_index_tensor(ctx, i) if _advanced(i) else None for i in items]
    consumed = sum(len(t[1]) if t[0] else 1 for t in indices if t is not None)
    real = consumed + sum(1 for i, t in zip(items, indices) if t is None and i is not None and i is not Ellipsis)
    if real > x.ndim:
        ctx.refuse(f"too many indices for a tensor of dimension {x.ndim}")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (x.ndim - real) + items[k + 1:]
        indices = indices[:k] + [None] * (x.ndim - real) + indices[k + 1:]
    basic, positions = [], []  # the index with every tensor a full slice; where tensors stand
    item_ranges = {}  # position -> the index tensor there (what its entry range, bound, sizedness say)
    for item, t in zip(items, indices):
        if t is None:
            basic.append(item)
            continue
        width = len(t[1]) if t[0] else 1
        basic += [slice(None)] * width
        positions.append((len([b for b in basic if not _drops(b)]) - width, t))
        if isinstance(item, SymTensor) and not t[0]:
            item_ranges[positions[-1][0]] = item
    y = getitem(ctx, x, tuple(basic))  # ints, slices, None: their requirements and shape
    slots: list = [None] * y.ndim
    shapes = []
    bounds = []  # (size, least, reason): each index against its size
    for p, (mask, shape, entries) in positions:
        if mask and not shape:
            ctx.unsupported("indexing with a 0-dim bool tensor")
        if mask:
            for j, m in enumerate(shape):
                ctx.equal(y.shape[p + j], m, f"the shape of the mask {tuple(shape)} does not match the "
                                             f"indexed tensor's size {{lhs}} at dim {p + j}")
                slots[p + j] = True
            if entries is None and count is None:
                ctx.unsupported("indexing with a bool mask whose entries symshape does not know (the output "
                                "size is its number of True entries)")
            shapes.append((count if entries is None else sum(bool(e) for e in entries),))
            continue
        slots[p] = True
        shapes.append(tuple(shape))
        bounds += _index_bounds(ctx, y.shape[p], p, entries, item_ranges.get(p))
    out = SymTensor(shapes[0])
    for sh in shapes[1:]:
        out = broadcast_shape(ctx, out, SymTensor(sh))
    taken = [i for i, s in enumerate(slots) if s]
    rest = [y.shape[i] for i, s in enumerate(slots) if not s]
    if taken == list(range(taken[0], taken[-1] + 1)):  # adjacent: the broadcast shape stands there
        shape = [*y.shape[:taken[0]], *out.shape, *y.shape[taken[-1] + 1:]]
    else:
        shape = [*out.shape, *rest]
    # torch checks the indices while it fills the output: an empty output is never checked
    numel = canonical(product(shape))
    if numel != 0:
        empty = None if numel.is_positive else Requirement(numel, "==", 0, "the output is empty")
        for n, least, reason, data in bounds:
            ctx.require(n, ">=", least, reason, unless=empty, meta_unchecked=INDEX_VALUES, data_dependent=data)
    # aten.index allocates its output: contiguous for a contiguous input; else as its kernel picks
    return y.with_shape(shape, contiguous=True if x.contiguous and y.contiguous else False)


#: why an index's bounds are no check of torch's meta kernels (Requirement.meta_unchecked)
INDEX_VALUES = ("torch's meta kernels do not check an index's values against the size (they have no values); "
                "its CPU and CUDA kernels raise")


def _index_bounds(ctx: Context, n, p: int, entries, tensor: SymTensor | None) -> list[tuple]:
    """(size, least, reason, data-dependent) for each index of dim ``p`` (size ``n``): from its
    entries, from the exact extremes of an index computed from sizes, or from the bound of the
    indices a sort returns (past the size, whether one reaches it is data); other indices are
    refused where they may reach past the size (see :func:`unbounded`)."""
    known = entries is not None and all(as_expr(e, "index").is_Integer for e in entries)
    ranged = tensor.entry_range if tensor is not None else None
    if not known and ranged is not None:  # computed from sizes: its least and greatest entry
        lows, highs = extremes(ranged)
        out = [(n, hi + 1, f"index {hi} (the greatest) is out of bounds for dimension {p} with size {{lhs}}", "")
               for hi in highs]
        out += [(n, -lo, f"index {lo} (the least) is out of bounds for dimension {p} with size {{lhs}}", "")
                for lo in lows if not lo.is_nonnegative]
        return out
    if not known and tensor is not None and tensor.entry_form is not None and within(ctx, tensor, n):
        return []  # (computed element by element from sizes: its bounds lie within, symshape.bounds)
    if not known and tensor is not None and tensor.index_bound is not None:  # a sort's: below its dim's size
        return [(n, tensor.index_bound, f"the indices lie below {{rhs}}, dimension {p} has size {{lhs}}",
                 "torch raises only if an index actually reaches the size, which depends on the values")]
    if not known:
        if not n.is_Integer:
            raise UnsupportedWhereMetaDiffers(
                ctx.op, ctx.step, ctx.node,
                f"indexing dim {p}, whose size {n} depends on the input, with indices symshape does not "
                "know (torch checks each index against the size; its meta kernel does not)")
        if tensor is not None:
            unbounded(ctx, tensor, n, f"indexing dim {p}")
        return []
    return [(n, e + 1 if e >= 0 else -e, f"index {e} is out of bounds for dimension {p} with size {{lhs}}", "")
            for e in sorted({int(e) for e in entries})]


@function_rule(torch.index_select, layout=True)
@method_rule("index_select", layout=True)
def index_select(ctx: Context, input, dim, index):
    """``out = len(index)`` on ``dim``; every index must lie in ``0 <= i < n`` (checked where
    symshape knows the entries, or the dim's size is fixed)."""
    x = tensor_arg(input, "input", ctx)
    idx = tensor_arg(index, "index", ctx)
    if idx.ndim > 1:
        ctx.refuse("index_select(): Index is supposed to be a vector")
    if idx.dtype is not None and idx.dtype not in (torch.long, torch.int):
        ctx.refuse("index_select(): Expected dtype int32 or int64 for index")
    if x.ndim == 0:
        ctx.unsupported("index_select of a 0-dim tensor")
    (d,) = _dims(ctx, x, dim, "index_select")
    n = x.shape[d]
    entries = None if idx.values is None else _nested(ctx, idx.values)[1]
    if entries is None and idx.entry_range is not None:  # computed from sizes: its extremes
        lo, hi = idx.entry_range
        ctx.require(lo, ">=", 0, f"index_select(): index {lo} (the least) must not be negative",
                    unless=Requirement(idx.numel(), "==", 0, "the index is empty"), meta_unchecked=INDEX_VALUES)
        ctx.require(n, ">=", hi + 1, f"index_select(): index {hi} (the greatest) is out of bounds for "
                                     f"dimension {d} with size {{lhs}}",
                    unless=Requirement(idx.numel(), "==", 0, "the index is empty"), meta_unchecked=INDEX_VALUES)
    elif entries is None:
        if not check_entries(ctx, idx, n, "index_select()", f"index_select(): index {{i}} is out of bounds for "
                             f"dimension {d} with size {{lhs}}", Requirement(idx.numel(), "==", 0, "the index is empty")):
            if not n.is_Integer:
                raise UnsupportedWhereMetaDiffers(
                    ctx.op, ctx.step, ctx.node,
                    f"index_select along dim {d}, whose size {n} depends on the input, with indices symshape does "
                    "not know (torch checks each index against the size; its meta kernel does not)")
            unbounded(ctx, idx, n, f"index_select along dim {d}")
    else:
        if any(e < 0 for e in entries):
            ctx.never(f"index_select(): index {min(entries)} out of range (negative)")
        if entries:
            ctx.require(n, ">=", max(entries) + 1, f"index_select(): index {max(entries)} is out of bounds for "
                                                   f"dimension {d} with size {{lhs}}", meta_unchecked=INDEX_VALUES)
    size = idx.shape[0] if idx.ndim else sympy.Integer(1)
    return SymTensor((*x.shape[:d], size, *x.shape[d + 1:]))


def extremes(entry_range: tuple) -> tuple[tuple, tuple]:
    """The least and the greatest entry, each as the sizes it is the least or greatest of (a
    ``stack`` of two grids: ``Max(h - 1, w - 1)`` is ``(h - 1, w - 1)``; every one of them is
    checked as torch checks the greatest)."""
    lo, hi = entry_range
    return (lo.args if isinstance(lo, sympy.Min) else (lo,)), (hi.args if isinstance(hi, sympy.Max) else (hi,))


def check_entries(ctx: Context, idx: SymTensor, n, what: str, refused: str, unless: Requirement | None = None) -> bool:
    """Require every entry of the index ``idx`` to lie in ``0 <= i < n`` where symshape knows
    something of them: the entries of a constant, the exact extremes of an index computed from
    sizes (symshape.ranges), or a bound on them (the indices a sort returns: past the size,
    whether an entry reaches it is data). torch (``what``) raises ``refused`` (``{i}``: the
    entry, ``{lhs}``: the size) unless ``unless`` holds (an empty index). False where symshape
    knows nothing of them (token ids, random indices: see :func:`unbounded`). No meta kernel
    checks an index's values."""
    def message(i) -> str:
        return refused.replace("{i}", str(i))

    entries = None if idx.values is None else _nested(ctx, idx.values)[1]
    if entries is not None:
        if not entries:
            return True
        low, high = min(entries), max(entries)
        if low < 0 and unless is None:
            ctx.never(message(low).replace("{lhs}", str(n)))
        elif low < 0:  # torch raises unless the index is empty
            ctx.require(unless.lhs, unless.relation, unless.rhs, message(low), meta_unchecked=INDEX_VALUES)
        ctx.require(n, ">=", high + 1, message(high), unless=unless, meta_unchecked=INDEX_VALUES)
        return True
    if idx.entry_range is not None:  # computed from sizes: its extremes, exactly
        lows, highs = extremes(idx.entry_range)
        for low in lows:
            if not low.is_nonnegative:
                ctx.require(low, ">=", 0, f"{what}: index {{lhs}} (the least) is negative", unless=unless,
                            meta_unchecked=INDEX_VALUES)
        for high in highs:
            ctx.require(n, ">=", high + 1, message(f"{high} (the greatest)"), unless=unless,
                        meta_unchecked=INDEX_VALUES)
        return True
    if idx.entry_form is not None and within(ctx, idx, n):
        return True
    if idx.index_bound is not None:  # entries of a sort or a selection: below their dim's size
        ctx.require(n, ">=", idx.index_bound, message("below {rhs}"), unless=unless, meta_unchecked=INDEX_VALUES,
                    data_dependent="torch raises only if an index actually reaches the size, which depends on "
                                   "the values")
        return True
    return False


def within(ctx: Context, idx: SymTensor, n) -> bool:
    """Whether the bounds of ``idx``'s entries (symshape.bounds: computed element by element from
    sizes, through ``where``, ``abs``, ``log`` ...) lie in ``0 … n - 1`` wherever this step runs:
    then every index is in bounds, and torch checks nothing that can fail."""
    lo, hi = bounds(idx.entry_form)[:2]
    return at_least(lo, 0, ctx.proves) and at_most(hi, _decided(ctx, n) - 1, ctx.proves)


def _decided(ctx: Context, expr) -> sympy.Expr:
    """``expr`` with each ``Piecewise`` whose case this step's facts decide replaced by that
    case, and each ``Min``/``Max`` they decide by the one it is (``Context.settled``): a table
    sliced by the side of a branch on ``min(T, 64)`` is ``2*T`` long on the side ``T <= 64``."""
    expr = as_expr(expr)
    for _ in range(4):
        pieces = {}
        for pw in expr.atoms(sympy.Piecewise):
            for e, cond in pw.args:
                if cond is sympy.true or isinstance(cond, sympy.Rel) and ctx.proves(cond):
                    pieces[pw] = e
                    break
                if not (isinstance(cond, sympy.Rel) and ctx.proves(cond.negated)):
                    break
        if not pieces:
            break
        expr = expr.xreplace(pieces)
    return ctx.settled(expr)


def indexes(ctx: Context, idx: SymTensor, n, what: str, refused: str) -> None:
    """``idx`` (every entry) indexes ``n`` rows: its entries are checked where symshape knows
    something of them (:func:`check_entries`), unless the index is empty (then torch checks
    nothing); else :func:`unbounded` decides. An embedding's rows, one_hot's classes."""
    numel = canonical(idx.numel())
    if numel == 0:
        return
    empty = None if numel.is_positive else Requirement(numel, "==", 0, "the input is empty")
    if not check_entries(ctx, idx, n, what, refused, empty):
        unbounded(ctx, idx, as_expr(n), what)


def unbounded(ctx: Context, idx: SymTensor, n, what: str) -> None:
    """An index symshape knows nothing of, into a dim of size ``n``: its entries are data (token
    ids) and not checked, where ``n`` is fixed and they do not depend on the sizes; else refused
    (torch checks each entry against ``n``; its meta kernel does not). An index made from
    constants alone, whose bound does not fit ``n``, is no data: refused too (zeros padded with
    a 3 where the pad may add nothing, into 3 rows)."""
    if not n.is_Integer:
        raise UnsupportedWhereMetaDiffers(
            ctx.op, ctx.step, ctx.node,
            f"{what}, whose size {n} depends on the input, with indices symshape does not bound (torch checks "
            "each index against the size; its meta kernel does not)")
    if idx.sized:
        how = "in a way symshape does not follow" if idx.entry_form is None else \
            f"that symshape bounds by {describe(idx.entry_form)} only"
        raise UnsupportedWhereMetaDiffers(
            ctx.op, ctx.step, ctx.node,
            f"{what} of size {n}, with indices computed from the input's sizes {how} "
            "(torch checks each index against the size; its meta kernel does not)")
    if idx.entry_form is not None and not from_data(idx.entry_form):  # (made of constants, not the data)
        raise UnsupportedWhereMetaDiffers(
            ctx.op, ctx.step, ctx.node,
            f"{what} of size {n}, with indices made from constants that symshape bounds by "
            f"{describe(idx.entry_form)} only (torch checks each index against the size; its meta kernel does not)")


@function_rule(torch.gather, layout=True)
@method_rule("gather", layout=True)
def gather(ctx: Context, input, dim, index, *, sparse_grad=False) -> SymTensor:
    """``out = index.shape`` (contiguous): ``out[i][j][k] = x[i][index[i][j][k]][k]`` along ``dim``
    1. Unless the index is empty (then torch checks nothing): it has ``x``'s number of dims (a
    0-dim tensor counts as 1-dim), is int32 or int64, is no larger than ``x`` on every other dim,
    and each entry lies in ``0 <= i < x.size(dim)`` -- checked where symshape knows the entries
    (a constant), their exact extremes (computed from sizes: symshape.ranges), or a bound on them
    (the indices ``argsort``, ``topk``, ``max(dim)`` return: below the size of their dim; where
    the bound passes the size, whether an entry does is data); else refused where that size
    depends on the input (torch checks each entry against it; its meta kernel does not)."""
    x = tensor_arg(input, "input", ctx)
    idx = tensor_arg(index, "index", ctx)
    if x.ndim == 0:  # torch wraps a 0-dim tensor's dim as if it had one
        d = as_int(dim, "dim", ctx)
        if d not in (-1, 0):
            ctx.refuse(f"gather: Dimension out of range (expected to be in range of [-1, 0], but got {d})")
        d = 0
    else:
        (d,) = _dims(ctx, x, dim, "gather")
    numel = canonical(idx.numel())
    if numel == 0:
        return SymTensor(idx.shape, dtype=x.dtype)
    empty = None if numel.is_positive else Requirement(numel, "==", 0, "the index is empty")

    def unless_empty(reason: str) -> None:
        if empty is None:
            ctx.never(reason)
        else:
            ctx.require(numel, "==", 0, reason)

    if max(x.ndim, 1) != max(idx.ndim, 1):
        unless_empty("gather(): Index tensor must have the same number of dimensions as input tensor")
        return SymTensor(idx.shape, dtype=x.dtype)
    if idx.dtype is not None and idx.dtype not in (torch.int64, torch.int32):
        unless_empty("gather(): Expected dtype int32/int64 for index")
    sizes = x.shape or (sympy.Integer(1),)
    for i, (have, want) in enumerate(zip(sizes, idx.shape or (sympy.Integer(1),))):
        if i != d:
            ctx.require(have, ">=", want, f"gather(): Size does not match at dimension {i}: the index's {{rhs}} is "
                        f"larger than the input's {{lhs}} (apart from dimension {d})", unless=empty)
    n = sizes[d]
    if not check_entries(ctx, idx, n, "gather()", f"gather(): index {{i}} is out of bounds for dimension {d} with "
                         "size {lhs}", empty):
        unbounded(ctx, idx, n, f"gather along dim {d}")
    return SymTensor(idx.shape, dtype=x.dtype)


def _drops(item) -> bool:
    """A basic index that removes its dim (an int)."""
    return not (item is None or isinstance(item, slice))


# -- reductions --------------------------------------------------------------------------------


def _reduce(ctx: Context, x: SymTensor, dim, keepdim: bool, what: str) -> SymTensor:
    if dim is None:
        return SymTensor(tuple(sympy.Integer(1) for _ in x.shape) if keepdim else ())
    if x.ndim == 0:  # torch wraps a 0-dim tensor's dims as if it had one: dim 0 or -1
        listed = dim if isinstance(dim, (list, tuple)) else [dim]
        for d in listed:
            if as_int(d, "dim", ctx) not in (-1, 0):
                ctx.refuse(f"{what}: Dimension out of range (expected to be in range of [-1, 0], but got {d})")
        if len(listed) > 1:
            ctx.refuse(f"{what}: dim 0 appears multiple times in the list of dims")
        return SymTensor(())
    wrapped = _dims(ctx, x, dim, what)
    dims = set(wrapped)
    if len(dims) < len(wrapped):
        twice = next(d for d in wrapped if wrapped.count(d) > 1)
        ctx.refuse(f"{what}: dim {twice} appears multiple times in the list of dims")
    shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keepdim or i not in dims]
    return SymTensor(tuple(shape))


_REDUCTIONS = ("mean", "sum", "amax", "amin", "prod", "logsumexp", "nansum", "nanmean", "argmax",
               "argmin", "all", "any")

#: reductions without an identity, which torch refuses over no entries (the others give theirs:
#: a sum of nothing is 0)
_WITHOUT_IDENTITY = frozenset({"amax", "amin", "argmax", "argmin", "max", "min"})
#: reductions that take an empty list of dims as every dim (``all`` and ``any`` reduce none)
_EMPTY_DIMS_ARE_ALL = frozenset({"sum", "mean", "amax", "amin", "nansum", "nanmean", "logsumexp"})
#: why ``max``/``min`` over no entries is no check of torch's meta kernels (Requirement.meta_unchecked)
_EMPTY_UNCHECKED = ("torch's meta kernels of max and min do not check that there are entries to reduce; its CPU "
                    "and CUDA kernels raise")


def _entries_to_reduce(ctx: Context, x: SymTensor, dim, what: str) -> None:
    """torch refuses a reduction without an identity (``amax``, ``argmin``, ``max`` ...) over no
    entries: over every dim (no ``dim``, or an empty list of them) where ``x`` is empty; over
    ``dim`` where one of those dims has size 0 (a slice ``x[:, 1:]`` of one column)."""
    if what not in _WITHOUT_IDENTITY or x.ndim == 0:
        return
    unchecked = _EMPTY_UNCHECKED if what in ("max", "min") else ""
    if dim is None or isinstance(dim, (list, tuple)) and not dim:
        also = "" if what.startswith("arg") else " Specify the reduction dim with the 'dim' argument."
        ctx.require(x.numel(), ">=", 1, f"{what}(): Expected reduction dim to be specified for input.numel() "
                    f"== 0.{also}", meta_unchecked=unchecked)
        return
    given = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    for d, named in dict(zip(_dims(ctx, x, dim, what), given)).items():  # (torch names it as given: -1)
        ctx.require(x.shape[d], ">=", 1, f"{what}(): Expected reduction dim {named} to have non-zero size.",
                    meta_unchecked=unchecked)


# A reduction's output is allocated contiguous, whatever the input's strides (torch's
# resize_reduction sets no strides): layout=True, and no meta kernel is asked for them.
@function_rule(torch.mean, torch.sum, torch.amax, torch.amin, torch.prod, torch.logsumexp, torch.nansum,
               torch.nanmean, torch.argmax, torch.argmin, torch.all, torch.any, layout=True)
@method_rule(*_REDUCTIONS, layout=True)
def reduction(ctx: Context, input, dim=None, keepdim=False, *, dtype=None, out=None) -> SymTensor:
    """The reduced dims become 1 (``keepdim``) or go; no ``dim``: everything is reduced. The
    output is contiguous, as torch allocates it. ``amax``, ``amin``, ``argmax``, ``argmin`` need
    an entry to reduce: a reduced dim of size 0 (without ``dim``, an empty input) raises."""
    x = tensor_arg(input, "input", ctx)
    what = ctx.op.rsplit(".", 1)[-1]
    if isinstance(dim, torch.dtype):  # x.sum(torch.float64)
        dim = None
    if isinstance(dim, (list, tuple)) and not dim and what in _EMPTY_DIMS_ARE_ALL:
        if what == "logsumexp" and x.ndim and not as_bool(keepdim, "keepdim", ctx):
            # torch's CPU kernel writes its (1, ..., 1) result into a 0-dim output, where the input
            # has an entry (the meta kernel returns the (1, ..., 1))
            ctx.require(x.numel(), "==", 0, "logsumexp over an empty list of dims: output with shape [] doesn't "
                        f"match the broadcast shape [{', '.join(['1'] * x.ndim)}]")
        dim = None  # x.sum(()): every dim, on torch's CPU (its meta kernel of nansum keeps them)
    _entries_to_reduce(ctx, x, dim, what)
    return _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "reduction")


@function_rule(torch.norm, layout=True)
@method_rule("norm", layout=True)
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


@function_rule(torch.linalg.vector_norm, layout=True)
def vector_norm(ctx: Context, x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None) -> SymTensor:
    """A reduction over ``dim`` (all dims when None or empty)."""
    if out is not None:
        ctx.unsupported("vector_norm with out=")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    return _reduce(ctx, tensor_arg(x, "input", ctx), dim, as_bool(keepdim, "keepdim", ctx), "vector_norm")


@function_rule(torch.std, torch.var, layout=True)
@method_rule("std", "var", layout=True)
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
    """``max(x)``: a 0-dim tensor; ``max(x, dim)``: ``(values, indices)`` as torch's structseq
    (``.values``, ``.indices``; the indices int64); ``max(x, y)``: broadcasting. Over no entries
    (an empty ``x``, a ``dim`` of size 0) torch's CPU and CUDA kernels raise; its meta kernels
    do not (the requirement says so: ``Requirement.meta_unchecked``)."""
    x = tensor_arg(input, "input", ctx)
    if isinstance(dim, SymTensor):
        return broadcast_shape(ctx, x, dim)
    _entries_to_reduce(ctx, x, dim, "max" if ctx.op.endswith("max") else "min")
    if dim is None:
        return SymTensor(())
    out = _reduce(ctx, x, dim, as_bool(keepdim, "keepdim", ctx), "max")
    kind = torch.return_types.max if ctx.op.endswith("max") else torch.return_types.min
    return kind((out, replace(out, dtype=torch.int64)))


@function_rule(torch.repeat_interleave, layout=True)
@method_rule("repeat_interleave", layout=True)
def repeat_interleave(ctx: Context, input, repeats=None, dim=None, *, output_size=None) -> SymTensor:
    """Each entry ``repeats`` times in a row along ``dim``: ``out[dim] = in[dim] * repeats``
    (without ``dim``, of the flattened input). ``repeats`` must be at least 0, and equal to
    ``output_size`` where that is given. Contiguous: torch clones an expanded view. Repeats
    given as a tensor are not modelled (the output size is in its data)."""
    x = tensor_arg(input, "input", ctx)
    if isinstance(repeats, SymTensor) or repeats is None or isinstance(repeats, bool):
        ctx.unsupported("repeat_interleave with a tensor of repeats (its output size is in the data)")
    r = as_expr(repeats, "repeats")
    if not r.is_integer:
        ctx.unsupported(f"repeat_interleave with repeats {r}")
    ctx.at_least(r, 0, "Repeats must be non-negative")
    if dim is None:
        shape = (x.numel() * r,)
    else:
        if x.ndim == 0:  # torch unsqueezes dim + 1 of it, which a 0-dim tensor does not have
            ctx.refuse("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
        try:
            d = x.dim(as_int(dim, "dim", ctx))
        except IndexError as e:
            ctx.refuse(f"repeat_interleave: {e}")
        shape = tuple(n * r if i == d else n for i, n in enumerate(x.shape))
    out = SymTensor(tuple(canonical(n) for n in shape))
    if output_size is not None:
        ctx.equal(as_expr(output_size, "output_size"), out.shape[0 if dim is None else d],
                  "repeat_interleave: Invalid output_size, expected {rhs} but got {lhs}")
    return out


# (torch.meshgrid is Python that calls the builtin on a list: fx records either)
@function_rule(torch.meshgrid, torch._C._VariableFunctions.meshgrid, layout=True)
def meshgrid(ctx: Context, *tensors, indexing=None) -> tuple:
    """``out = (n1, n2, ...)`` for each input, ``n_i`` the i-th input's number of entries (a 0D
    input counts 1); ``indexing="xy"`` swaps the first two dims. Each output is its input viewed
    along its own dim and expanded (torch's view-then-expand): its own dim keeps the input's
    stride, the others have stride 0 (exact but for dims of size 1)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple, Repeated)):
        tensors = tensors[0]  # the builtin's list (checked as it is: a chunk()'s pieces keep their count)
    if isinstance(tensors, Repeated) or isinstance(tensors, Pieces) and any(tensors.requires):
        ctx.unsupported("meshgrid of chunks whose number depends on the input size")
    if not tensors:
        ctx.refuse("meshgrid expects a non-empty TensorList")
    ts = [tensor_arg(t, "tensors", ctx) for t in tensors]
    for t in ts:
        if t.ndim > 1:
            ctx.refuse(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
    dtypes = {t.dtype for t in ts}
    if len(dtypes) > 1:
        if None in dtypes:  # a tensor whose dtype symshape does not track: torch's meta kernel knows
            ctx.unsupported("meshgrid of tensors some of whose dtypes symshape does not track")
        ctx.refuse("meshgrid expects all tensors to have the same dtype")
    if indexing is None:
        indexing = "ij"  # torch warns, and takes "ij"
    if indexing not in ("ij", "xy"):
        ctx.refuse(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    order = list(range(len(ts)))
    if indexing == "xy" and len(ts) >= 2:
        order[0], order[1] = 1, 0
    shape = [ts[i].shape[0] if ts[i].ndim else sympy.Integer(1) for i in order]
    out = [None] * len(ts)
    for own, i in enumerate(order):  # input i runs along dim ``own``
        t = ts[i]
        known = t.known_strides
        if t.ndim and known is None:
            out[i] = SymTensor(tuple(shape), False, dtype=t.dtype)  # its stride is not known
            continue
        s = known[0] if t.ndim else sympy.Integer(1)
        n = shape[own]
        # torch's view: dims before its own n*s (s for a 0D input), its own and those after s;
        # expand: 0 where the size it is expanded to is not 1
        viewed = [s * n if t.ndim and j < own else s for j in range(len(shape))]
        strides = [v if j == own or shape[j] == 1 else sympy.Integer(0) for j, v in enumerate(viewed)]
        loose = any(j != own and not shape[j].is_Integer for j in range(len(shape)))
        out[i] = SymTensor(tuple(shape), False, None, t.dtype, tuple(strides), loose, t.guard)
    return tuple(out)


# -- splitting ---------------------------------------------------------------------------------


def _pieces(ctx: Context, x: SymTensor, sizes: list, d: int, requires=()) -> tuple[SymTensor, ...]:
    st = x.known_strides  # each piece is a view with the input's strides
    items = [_laid_out(x, [*x.shape[:d], s, *x.shape[d + 1:]], st) for s in sizes]
    return Pieces(items, requires, d) if any(requires) else tuple(items)


@function_rule(torch.chunk, torch.unsafe_chunk, layout=True)
@method_rule("chunk", "unsafe_chunk", layout=True)
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


@function_rule(torch.split, torch.unsafe_split, layout=True)
@method_rule("split", "unsafe_split", layout=True)
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
    if s < 0:
        ctx.refuse(f"split expects split_size be non-negative, but got split_size={s}")
    if s == 0:
        ctx.equal(n, 0, "split_size can only be 0 if dimension size is 0, but got dimension size of {lhs}")
        return _pieces(ctx, x, [sympy.Integer(0)], d)
    if not n.is_Integer:  # max(ceil(n/s), 1) pieces of s, the last one n - s*(count - 1)
        count = canonical(maximum(1, ceil_div(n, s)))
        item, last = _pieces(ctx, x, [sympy.Integer(s), canonical(n - s * (count - 1))], d)
        return Repeated(item, count, last, d, "split")
    count = max(-(-int(n) // s), 1)
    return _pieces(ctx, x, [min(s, int(n) - i * s) for i in range(count)], d)


def constant_value(ctx: Context, value, what: str):
    """``value``, or, for a tensor, the entries of the constant it is (symshape.tensor.SymTensor.values):
    where those are not known, the hand rule does not model the call."""
    if not isinstance(value, SymTensor):
        return value
    if value.values is None or value.dtype == torch.bool:
        ctx.unsupported(f"{what} given as a tensor whose values symshape does not know")
    return value.values


@function_rule(torch.tensor_split, layout=True)
@method_rule("tensor_split", layout=True)
def tensor_split(ctx: Context, input, indices_or_sections=None, dim=0, *, sections=None, indices=None,
                 tensor_indices_or_sections=None):
    """``k`` sections: piece ``i`` has ``floor((n + k - 1 - i)/k)`` entries (the first ``n mod k``
    one more); indices ``[i1, i2, ...]``: the slices ``[:i1]``, ``[i1:i2]``, ..., ``[ik:]``."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim == 0:
        ctx.refuse("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    given = [v for v in (indices_or_sections, sections, indices, tensor_indices_or_sections) if v is not None]
    if len(given) != 1:
        ctx.refuse("tensor_split takes one of sections, indices or tensor_indices_or_sections")
    what = given[0]
    if isinstance(what, SymTensor):
        if what.ndim > 1 or (what.dtype is not None and what.dtype != torch.long):
            ctx.refuse("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                       "one-dimensional tensor of dtype long")
        what = constant_value(ctx, what, "tensor_split's sections or indices")
    (d,) = _dims(ctx, x, dim, "tensor_split")
    return _split_at(ctx, x, d, what)


def _split_at(ctx: Context, x: SymTensor, d: int, what) -> tuple:
    n = x.shape[d]
    if isinstance(what, (list, tuple)):
        cuts = [as_int(i, "tensor_split index", ctx) for i in what]
        bounds = [None, *cuts, None]
        sizes = [slice_length(n, a if a is not None else 0, b, 1) for a, b in zip(bounds, bounds[1:])]
        return _pieces(ctx, x, sizes, d)
    k = as_int(what, "sections", ctx)
    if k <= 0:
        ctx.refuse(f"number of sections must be larger than 0, got {k}")
    return _pieces(ctx, x, [canonical(floor_div(n + k - 1 - i, k)) for i in range(k)], d)


_DIMSPLIT = {"hsplit": 1, "vsplit": 2, "dsplit": 3}


@function_rule(torch.hsplit, layout=True, which="hsplit")
@function_rule(torch.vsplit, layout=True, which="vsplit")
@function_rule(torch.dsplit, layout=True, which="dsplit")
@method_rule("hsplit", layout=True, which="hsplit")
@method_rule("vsplit", layout=True, which="vsplit")
@method_rule("dsplit", layout=True, which="dsplit")
def dimsplit(ctx: Context, input, indices_or_sections, *, which: str):
    """hsplit (dim 1, or 0 of a 1-D tensor), vsplit (dim 0), dsplit (dim 2): ``k`` equal sections,
    which needs ``n`` divisible by ``k``, or tensor_split's indices."""
    x = tensor_arg(input, "input", ctx)
    need = _DIMSPLIT[which]
    if x.ndim < need:
        ctx.refuse(f"torch.{which} requires a tensor with at least {need} dimension, but got a tensor "
                   f"with {x.ndim} dimensions!")
    d = {"hsplit": 1 if x.ndim > 1 else 0, "vsplit": 0, "dsplit": 2}[which]
    what = indices_or_sections
    if isinstance(what, (list, tuple)):
        return _split_at(ctx, x, d, what)
    k = as_int(what, "sections", ctx)
    if k == 0:
        ctx.refuse(f"torch.{which} attempted to split along dimension {d} into 0 sections")
    ctx.divisible(x.shape[d], k, f"torch.{which} attempted to split along dimension {d}, but the size of the "
                                 f"dimension {{lhs}} is not divisible by the split_size {k}!")
    return _split_at(ctx, x, d, k)


@function_rule(torch.narrow, layout=True)
@method_rule("narrow", layout=True)
def narrow(ctx: Context, input, dim, start, length):
    """``out = length`` on ``dim``; torch needs ``-n <= start <= n`` and the window inside the dim:
    ``start + length <= n`` (a negative start counts from the end)."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim == 0:
        ctx.refuse("narrow() cannot be applied to a 0-dim tensor.")
    (d,) = _dims(ctx, x, dim, "narrow")
    begin = as_expr(constant_value(ctx, start, "narrow's start"), "start")
    size = as_expr(constant_value(ctx, length, "narrow's length"), "length")
    if not (begin.is_Integer and size.is_Integer):
        ctx.unsupported("a start or length that depends on the input size")
    b, k = int(begin), int(size)
    if k < 0:
        ctx.refuse("narrow(): length must be non-negative.")
    n = x.shape[d]
    if b >= 0:
        ctx.at_least(n, b + k, f"narrow: start ({b}) + length ({k}) exceeds dimension size ({{lhs}})")
    else:
        ctx.at_least(n, -b, f"narrow: start ({b}) is out of range for a dimension of size {{lhs}}")
        if b + k > 0:
            ctx.never(f"narrow: start ({b}) + length ({k}) exceeds the dimension, which ends at 0")
    st = x.known_strides  # a slice: the input's strides
    return _laid_out(x, [*x.shape[:d], sympy.Integer(k), *x.shape[d + 1:]], st)


@function_rule(torch.unbind, layout=True)
@method_rule("unbind", layout=True)
def unbind(ctx: Context, input, dim=0):
    """One tensor per entry of ``dim`` (``n`` of them: where ``n`` depends on the input, a
    formula of the sizes too)."""
    x = tensor_arg(input, "input", ctx)
    (d,) = _dims(ctx, x, dim, "unbind")
    st = x.known_strides
    one = _laid_out(x, [*x.shape[:d], *x.shape[d + 1:]], st and [*st[:d], *st[d + 1:]])
    if not x.shape[d].is_Integer:
        return Repeated(one, x.shape[d], one, d, "unbind")
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




#: how many entries a bool mask whose entries symshape does not know selects, in ``x[mask] = v``
#: (a number, or a ``v`` of size 1 along it, fills any count of them: the write has no size of its own)
_SELECTED = sympy.Symbol("selected", integer=True, nonnegative=True)


def _region(ctx: Context, x: SymTensor, index) -> SymTensor:
    """``x[index]`` as ``x[index] = v`` sees it: as :func:`getitem` computes it, but a bool mask
    whose entries symshape does not know selects :data:`_SELECTED` entries."""
    before = len(ctx.requirements)
    region = _tensor_item(ctx, x, index, count=_SELECTED)
    if any(_SELECTED in (r.lhs.free_symbols | r.rhs.free_symbols) for r in ctx.requirements[before:]):
        ctx.unsupported("x[mask, idx] = v: an index checked against a region whose size is the mask's number "
                        "of True entries, which is data")
    return region


@function_rule(operator.setitem)
def setitem(ctx: Context, value, index, item) -> None:
    """``x[index] = v``: ``x`` keeps its shape; ``v`` must broadcast to ``x[index]`` without
    growing it: each of its dims (right-aligned) is 1 or the region's size, and dims in front of
    the region's are 1 (torch strips them). A bool mask may be one whose entries symshape does
    not know (``x[x < 0] = 0``, ``scores[mask == 2] = big``): a number, or a ``v`` of size 1
    along the selected entries, fills however many there are."""
    x = tensor_arg(value, "value", ctx)
    region = _region(ctx, x, index)
    if not isinstance(item, SymTensor):
        return None  # a number fills the region
    r, v = region.shape, item.shape
    extra = len(v) - len(r)
    for i, n in enumerate(v[:max(extra, 0)]):
        ctx.equal(n, 1, f"x[...] = v: v's dim {i} ({{lhs}}) is in front of the region's dims and must be 1")
    for i, (a, b) in enumerate(zip(reversed(r), reversed(v))):
        if a == b or b == 1:
            continue
        if _SELECTED in as_expr(a).free_symbols:
            ctx.unsupported(f"x[mask] = v: v's size {b} at dim -{i + 1} must match the mask's number of True "
                            "entries, which is data (a v of size 1 there fills any number of them)")
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
