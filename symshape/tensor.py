"""The value a tensor has during analysis: its shape, as sympy expressions."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import sympy

from .dims import FloorDiv, as_expr, canonical, decide, product, smallest_value
from .requirements import Requirement

__all__ = ["CONV_MEMORY_FORMAT", "LAYOUT_NOT_FOLLOWED", "Pieces", "Repeated", "RepeatedShape", "SymTensor", "channels_last", "dense", "elementwise_layout", "row_major", "has_tensor", "same_stride",
           "kernel_layout", "loosened", "shape_str", "shapes_of", "standard_strides", "tensors_in"]


@dataclass(frozen=True)
class SymTensor:
    """A tensor whose sizes are sympy expressions of the input sizes (batch first)."""

    shape: tuple[sympy.Expr, ...]
    #: True: laid out contiguously (torch's standard strides). False: ``strides`` are its strides,
    #: or, where ``strides`` is None, they are not known (after an op whose output layout
    #: symshape does not follow): a ``view`` of it is then refused
    contiguous: bool = True
    #: for the indices of a max pooling: they point into that many positions of its input
    index_bound: sympy.Expr | None = None
    #: the dtype where it is known (a buffer, a comparison, what torch's meta kernel returned);
    #: None: not tracked (a floating tensor, as model inputs are). Shapes never depend on it; it
    #: only lets torch's meta kernels accept the tensor (symshape.meta).
    dtype: Any = None
    #: the strides of a non-contiguous tensor, where they are known exactly (sympy expressions,
    #: as torch computes them for permute, transpose, slicing, expand ...); of a contiguous one,
    #: only where they differ from the standard ones on a dim of size 1 (``loose``)
    strides: tuple | None = None
    #: True where, at some sizes, torch's strides of this tensor's dims of size 1 may not be the
    #: ones symshape records (the standard ones, or ``strides``): after a view of a
    #: non-contiguous tensor, a permute that leaves a dim of size 1 in place, ``contiguous()`` of
    #: a tensor that is contiguous at some sizes. is_contiguous ignores those strides; torch's
    #: memory-format heuristic (``suggest_memory_format``, which convolution and pooling follow
    #: on the CPU) does not. A contiguous tensor with ``strides`` has exactly those.
    loose: bool = False
    #: the layout recorded here is torch's only where these requirements hold; elsewhere a kernel
    #: upstream may have picked channels last from strides symshape does not follow. A ``view``
    #: of it requires them (``kernel_layout``).
    guard: tuple = ()
    #: the entries of a small integer or bool constant of the model (a buffer, or a tensor fx
    #: keeps as a constant), as nested tuples: the indices of ``x[idx]``, ``narrow``'s start,
    #: ``tensor_split``'s sections. Only the constant itself has them: an op's result never does.
    values: Any = None
    #: ``(lo, hi)``: the least and the greatest entry, exactly (both are attained wherever the
    #: tensor is not empty), for an integer-valued tensor computed from sizes
    #: (``torch.arange(h)[:, None] - torch.arange(w)[None, :] + w - 1``, see symshape.ranges)
    entry_range: tuple | None = None
    #: True where its entries may depend on the input's sizes (an ``arange`` of a size, ``i *
    #: L``, a ``full`` of a size, anything computed from such a tensor: symshape.ranges): an index
    #: of that kind is checked by what ``entry_range`` or ``index_bound`` say of it, or refused
    sized: bool = False
    #: for a float32 tensor on its way through the scaled relative-position index (``arange(q)[:,
    #: None] * max(k / q, 1.0) - ...``): what symshape.ranges follows of it, until ``.long()``
    #: gives its exact extremes
    float_form: tuple | None = None
    #: how each entry is computed from the entries at its position of other tensors, for bounds
    #: on an index computed through ``where``, ``abs``, ``log`` ... (symshape.bounds.Form: one
    #: object per tensor, compared by identity, so it takes no part in a tensor's equality)
    entry_form: Any = field(default=None, compare=False)
    #: True for a 1-D tensor whose entries are ``0 … n - 1``, each once (``n`` its length): the
    #: indices ``sort`` and ``argsort`` return for a 1-D tensor. Only that op's result has it:
    #: every other op drops it (symshape.ranges), and an ``inverse[perm] = arange(n)`` writes
    #: every entry of ``inverse`` (a mixture of experts' tokens put back in order)
    permutation: bool = False
    #: ``(resolve, layout)``, where the layout recorded here is loose or not known: ``resolve(ctx)``
    #: computes torch's exactly (a SymTensor, or None), for a later op that needs it
    #: (symshape.rules.strides.resolved), while ``layout`` is still this tensor's as recorded
    layout_source: tuple | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(as_expr(s, "a tensor size") for s in self.shape))
        if self.strides is None:
            return
        strides = tuple(_without_max_one(as_expr(s, "a stride")) for s in self.strides)
        standard = standard_strides(self.shape)
        if self.contiguous and self.loose:  # already normalized: a contiguous tensor's exact strides
            object.__setattr__(self, "strides", strides)
            return
        # torch's is_contiguous: the standard strides, except that a dim of size 1 may have any
        contiguous = self.contiguous or all(n == 1 or same_stride(a, b) for n, a, b in zip(self.shape, strides, standard))
        if not contiguous:
            object.__setattr__(self, "strides", strides)
            return
        object.__setattr__(self, "contiguous", True)
        odd = any(not same_stride(a, b) for a, b in zip(strides, standard))
        # exact strides that differ on a dim of size 1 are kept (channels last may follow from them)
        object.__setattr__(self, "strides", strides if odd and not self.loose else None)
        object.__setattr__(self, "loose", self.loose or odd)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> sympy.Expr:
        return product(self.shape)

    def dim(self, i: int) -> int:
        """Normalize a possibly negative dim index; raises IndexError like torch."""
        n = self.ndim
        if not -n <= i < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {i})")
        return i % n

    @property
    def known_strides(self) -> tuple | None:
        """The strides, where known: torch's standard ones for a contiguous tensor (unless it
        has others on dims of size 1, ``strides``)."""
        if self.contiguous:
            return self.strides if self.strides is not None else standard_strides(self.shape)
        return self.strides

    @property
    def exact_strides(self) -> bool:
        """Whether ``known_strides`` are torch's at every size, dims of size 1 included. (Without
        computing them: a contiguous tensor's standard strides are a product a size.)"""
        known = self.contiguous or self.strides is not None
        return known and (not self.loose or (self.contiguous and self.strides is not None))

    def with_shape(self, shape, contiguous: bool | None = None, strides=None, exact: bool = True) -> "SymTensor":
        """The same tensor with another shape (the index bound goes with it only if the shape
        stays). Layout: ``strides`` where given (computed from this tensor's, as torch does;
        ``exact``: also on dims of size 1, at every size); else contiguous as torch allocates it
        if ``contiguous`` is True; the same layout if it is None (strides only if the shape
        stays); else not known."""
        shape = tuple(shape)
        keep = self.index_bound if len(shape) == len(self.shape) else None
        if strides is not None:
            loose = self.loose and not self.exact_strides or not exact
            return SymTensor(shape, False, keep, self.dtype, tuple(strides), loose, self.guard)
        if contiguous is None:
            if shape == self.shape:
                return replace(self, index_bound=keep)
            return SymTensor(shape, self.contiguous, keep, self.dtype, None, self.loose, self.guard)
        if contiguous:
            return SymTensor(shape, True, keep, self.dtype)
        return SymTensor(shape, False, keep, self.dtype)

    def single_value(self) -> sympy.Expr | None:
        """The one entry of a one-element integer or bool tensor, where symshape knows it exactly
        (a constant, or exact extremes that are one value: ``torch.div(T, 8, rounding_mode="floor")``);
        else None. torch reads such a tensor as a number where it takes a size or an index
        (``__index__``): Longformer's ``x.view(n, torch.div(T, 2*w, rounding_mode="trunc"), ...)``
        (a bool one only as an index: a size must be an integer)."""
        dtype = self.dtype  # (a torch.dtype where known; this module does not import torch)
        if not hasattr(dtype, "is_floating_point") or dtype.is_floating_point or dtype.is_complex \
                or any(as_expr(d) != 1 for d in self.shape):
            return None
        one = self.values
        while isinstance(one, tuple) and len(one) == 1:
            one = one[0]
        if isinstance(one, int):
            return sympy.Integer(int(one))
        if self.entry_range is not None and sympy.expand(self.entry_range[0] - self.entry_range[1]) == 0:
            return as_expr(self.entry_range[0])
        return None

    def as_indices(self, bound) -> "SymTensor":
        return replace(self, index_bound=as_expr(bound))

    def with_dtype(self, dtype) -> "SymTensor":
        return replace(self, dtype=dtype)

    def __str__(self) -> str:
        return shape_str(self.shape)


class Pieces(tuple):
    """The pieces of a chunk whose count depends on the size: piece ``i`` exists only where
    ``requires[i]`` = ``(lhs, rhs, reason)`` has ``lhs >= rhs``; a missing piece has size 0 here,
    which torch.cat treats alike, and taking it (``pieces[i]``) is refused where it is missing."""

    requires: tuple = ()
    dim: int = 0

    def __new__(cls, items, requires=(), dim: int = 0):
        obj = super().__new__(cls, items)
        obj.requires, obj.dim = tuple(requires), dim
        return obj


def tuple_like(value: tuple, items) -> tuple:
    """``items`` as a tuple of ``value``'s kind: :class:`Pieces` keep what they require, torch's
    structseqs their type (``torch.return_types.max``: ``.values`` and ``.indices`` as well as
    ``[0]`` and ``[1]``); any other tuple becomes a plain one."""
    if isinstance(value, Pieces):
        return Pieces(list(items), value.requires, value.dim)
    if type(value).__module__ == "torch.return_types":
        return type(value)(list(items))
    return tuple(items)


@dataclass(frozen=True)
class Repeated:
    """The tensors ``unbind`` or ``split`` return along a dim whose size ``n`` depends on the
    input: ``count`` of them (``n``, or ``max(ceil(n/s), 1)``), each ``item`` but the last, which
    is ``last``. Unlike chunk()'s (Pieces), their number has no bound, so it is a formula of the
    sizes: at concrete sizes they are that many tensors. Python takes them one at a time (indexing,
    unpacking: symshape.trace), and ``torch.cat`` / ``torch.stack`` take them whole."""

    item: SymTensor
    count: sympy.Expr
    last: SymTensor
    #: the dim of the input they were taken along
    dim: int
    #: ``"unbind"`` (the dim dropped) or ``"split"`` (pieces of ``item.shape[dim]`` entries)
    op: str


@dataclass(frozen=True)
class RepeatedShape:
    """The shapes of :class:`Repeated` tensors: ``count`` of them, each ``item`` but the last."""

    item: tuple
    count: sympy.Expr
    last: tuple

    def concrete(self, count: int, item: tuple, last: tuple) -> tuple:
        """The tuple of shapes at a concrete count."""
        return (*(item,) * (count - 1), last) if count > 0 else ()

    def __str__(self) -> str:
        if self.last == self.item:
            return f"{self.count} × {shape_str(self.item)}"
        return f"{self.count} × {shape_str(self.item)}, the last {shape_str(self.last)}"


def shapes_of(value):
    """The shape of a SymTensor; of a list or tuple, the tuple of its items' shapes; of a dict (a
    model's outputs by name: transformers' ``ModelOutput``), a dict of its values' shapes by key;
    other values (sizes, None) as they are."""
    if isinstance(value, SymTensor):
        return value.shape
    if isinstance(value, Repeated):
        return RepeatedShape(value.item.shape, value.count, value.last.shape)
    if isinstance(value, (list, tuple)):
        return tuple(shapes_of(v) for v in value)
    if isinstance(value, dict):
        return {k: shapes_of(v) for k, v in value.items()}
    return value


def tensors_in(value) -> list[SymTensor]:
    """Every SymTensor in ``value`` (through lists, tuples and dict values), in order."""
    if isinstance(value, SymTensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if isinstance(value, Repeated):
        return [value.item, value.last]
    return []


def _without_max_one(e: sympy.Expr) -> sympy.Expr:
    """``Max(1, x)`` (torch's stride of a dim that may be empty) is ``x`` where ``x >= 1``."""
    if not e.has(sympy.Max):
        return e
    return _max_one_dropped(e)


@functools.lru_cache(maxsize=4096)
def _max_one_dropped(e: sympy.Expr) -> sympy.Expr:
    # cached: every tensor made with strides asks again for the strides it was given (sympy's
    # replace walks the whole expression; BAT's attention splits and joins a tensor of strides
    # Max(1, ...) block by block, and this was a quarter of its profile)

    def at_least_one(m) -> bool:
        if not (isinstance(m, sympy.Max) and len(m.args) == 2 and sympy.Integer(1) in m.args):
            return False
        low = smallest_value(next(a for a in m.args if a != 1))
        return low is not None and low >= 1

    return e.replace(at_least_one, lambda m: next(a for a in m.args if a != 1))


def same_stride(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Whether two strides are equal at every size: the same expression, or the same value
    written in other forms (decided, never guessed; False where not shown). Sizes that torch's
    meta kernels wrote by cases (``7*floor((H - 4)/28) + 7`` where a patch embedding padded ``H``)
    and the ones symshape writes (``7*floor((H + 24)/28)``) are one size: each sum with a floor in
    its short form (:func:`symshape.dims.canonical`), ``Max(1, x)`` where ``x >= 1`` is ``x``, the
    difference expanded, and a difference defined by cases zero in every case."""
    return a == b or _same_stride(a, b)


@functools.lru_cache(maxsize=4096)
def _same_stride(a: sympy.Expr, b: sympy.Expr) -> bool:
    # (cached: a merged tensor's strides are asked again at every view and layout check)
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr) or a.is_Number or b.is_Number \
            or a.free_symbols != b.free_symbols:
        return False  # (a transposed tensor's strides: told apart at once, as the equal forms never are)
    difference = _short_forms(a) - _short_forms(b)
    if difference.has(sympy.Piecewise):
        difference = sympy.piecewise_fold(difference)
        if isinstance(difference, sympy.Piecewise):
            return all(sympy.expand(_short_forms(e)) == 0 for e, _ in difference.args)
    return sympy.expand(difference) == 0


def _short_forms(e: sympy.Expr) -> sympy.Expr:
    """``e`` with each sum that holds a floor in its short form, innermost first, and each
    ``Max(1, x)`` of an ``x`` that is at least 1 at every size ``x``."""
    if e.has(FloorDiv):
        e = e.replace(lambda x: isinstance(x, sympy.Add) and x.has(FloorDiv), canonical)
    return _without_max_one(e)


def nonempty(stride) -> sympy.Expr:
    """A stride as it is wherever its tensor is not empty: ``Max(1, x)`` (torch's stride past a
    dim that may be empty) is ``x`` there, every size being at least 1."""
    stride = as_expr(stride)
    if not stride.has(sympy.Max):
        return stride
    return stride.replace(lambda e: isinstance(e, sympy.Max) and len(e.args) == 2 and 1 in e.args,
                                   lambda e: next(a for a in e.args if a != 1))


def has_tensor(value) -> bool:
    return bool(tensors_in(value))


def standard_strides(shape) -> tuple:
    """torch's strides for a contiguous tensor of ``shape`` (``stride[i] = size[i+1] * ...``,
    sizes of 0 or 1 counted as 1, as ``TensorImpl`` computes them)."""
    return _standard_strides(tuple(as_expr(s) for s in shape))


@functools.lru_cache(maxsize=4096)
def _standard_strides(shape: tuple) -> tuple:
    # cached: a shape's strides are asked for again at every view, flatten and layout check, and
    # ``Max(size, 1)`` of a padded window size costs sympy milliseconds each time (Twins)
    out, acc = [], sympy.Integer(1)
    for size in reversed(shape):
        out.append(acc)
        size = as_expr(size)
        if size.is_Integer:
            acc = acc * max(int(size), 1)
        else:
            low = smallest_value(size)  # (before sympy's is_positive, which asks its assumptions)
            acc = acc * (size if low is not None and low >= 1 or size.is_positive else _at_least_one(size))
    return tuple(reversed(out))


def _at_least_one(size: sympy.Expr) -> sympy.Expr:
    """``Max(size, 1)`` of a size that may be 0, built as it is: what sympy's evaluation of it
    would find (that one argument bounds the other) was asked just before, and sympy takes
    milliseconds to ask it again (1 ms of every 10 over timm's ViTs). A Max or Min inside is
    merged by sympy, as evaluation merges it."""
    if isinstance(size, (sympy.Max, sympy.Min)):
        return sympy.Max(size, 1)
    return sympy.Max(size, 1, evaluate=False)


def dense(shape, strides) -> bool:
    """torch's ``is_non_overlapping_and_dense``, where it is decided structurally: the strides,
    ordered, are 1, size, size*size ... (dims of size 1 aside), wherever the tensor is not empty
    (a stride ``Max(1, w)`` is ``w``). False where it cannot tell."""
    expected, todo = sympy.Integer(1), [i for i, n in enumerate(shape) if n != 1]
    strides = [nonempty(s) for s in strides]  # an empty tensor's layout decides nothing after it
    while todo:
        match = [i for i in todo if _expands_equal(strides[i], expected)]
        if len(match) != 1:
            return False
        todo.remove(match[0])
        expected = expected * as_expr(shape[match[0]])
    return True


@functools.lru_cache(maxsize=4096)
def _expands_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """``a == b`` at every size, expanded (cached: a stage's blocks ask of the same strides).
    Two strides that differ at one size differ: that is asked first, at sizes no model has
    (expanding products of floors takes milliseconds, and most strides asked are not equal)."""
    if a == b:
        return True
    at = {s: sympy.Integer(_PROBE + 2 * i) for i, s in enumerate(sorted(a.free_symbols | b.free_symbols, key=str))}
    left, right = a.xreplace(at), b.xreplace(at)
    if left.is_Integer and right.is_Integer and left != right:
        return False
    return sympy.expand(a - b) == 0


#: the first of the sizes :func:`_expands_equal` tries two strides at (odd, and past any table)
_PROBE = 100_003


def row_major(shape, strides) -> bool:
    """Whether a tensor's dims are laid out outermost first without overlap, at every size
    (decided): each stride at least 1, and at least the next one times its size. Between any two
    dims not of size 1 the outer one's stride is then the larger (``s[i] >= s[j] * n[j] > s[j]``).
    A slice of a contiguous tensor is row-major; a transpose is not."""
    # each condition as torch's strides say it (``Max(1, T)`` past a dim that may be empty,
    # which is at least 1 where T is 0), or as they are wherever the tensor is not empty
    forms = [[as_expr(s) for s in strides], [nonempty(s) for s in strides]]
    return all(any(_always(f[i] - 1) for f in forms) for i in range(len(strides))) and all(
        any(_always(_floors_shifted(f[i] - f[i + 1] * as_expr(shape[i + 1]))) for f in forms)
        for i in range(len(strides) - 1))


def elementwise_layout(inputs, out: "SymTensor") -> "SymTensor":
    """The layout torch's TensorIterator gives an elementwise op's output.

    A quick answer first: the first operand decides the order of the dims not of size 1 if it
    is full-size and dense, or row-major; or full-size operands that agree on dense strides do
    (:func:`_decided_by_some`). Otherwise it is the dim order TensorIterator's
    ``reorder_dimensions`` computes from the operands' strides, where every comparison it makes
    comes out the same at every size (:func:`_reordered`); where one does not, the layout is
    not known.

    The quick answer records the deciding strides on dims of size 1 too, where TensorIterator's
    fast set-up may give others (a transposed ``(2, H)`` operand is contiguous at ``H = 1``, and
    so is its negation); the order of the other dims, which views and ``is_contiguous`` read,
    is exact. The full order's strides are exact on every dim, but for a layout that is not
    contiguous only where no dim may be 1 (``loose`` otherwise): where every operand has the
    output's shape, the fast set-up copies their common layout (contiguous, channels last, or
    the same dense strides), which orders the dims not of size 1 alike."""
    laid = _decided_by_some(inputs, out)
    if laid.contiguous or laid.strides is not None:
        return laid
    laid = _reordered(inputs, out)
    if laid is None:
        return out.with_shape(out.shape, contiguous=False)
    return replace(laid, guard=tuple(dict.fromkeys(g for t in inputs for g in t.guard)))  # (each decided)


def _decided_by_some(inputs, out: "SymTensor") -> "SymTensor":
    """The quick answer of :func:`elementwise_layout` (not known where none applies): the order
    of the dims not of size 1 that the first operand, or full-size operands that agree, decide."""
    first = inputs[0] if inputs else None
    if first is not None and first.shape == out.shape and first.known_strides is not None \
            and dense(out.shape, first.known_strides):
        # the first operand decides every pair of dims whose strides differ (should_swap), and a
        # dense full-size tensor's strides differ wherever its dims are not of size 1
        return out.with_shape(out.shape, strides=first.known_strides)
    if first is not None and first.shape == out.shape and first.known_strides is not None \
            and row_major(out.shape, first.known_strides):
        # the first operand's strides then differ, in order, between every two dims not of size
        # 1, so it decides their order: TensorIterator keeps it, and allocates the output
        # contiguous (a slice of an attention matrix plus a bias: MViT's relative positions).
        # Only the dims of size 1 may move: their strides are not known.
        return replace(out, contiguous=True, strides=None, loose=True, guard=first.guard)
    full = [t for t in inputs if t.shape == out.shape]
    for t in inputs:
        if t.shape != out.shape and sum(1 for n in t.shape if n != 1) > 1:
            return out.with_shape(out.shape, contiguous=False)
    layouts = {t.known_strides for t in full}
    if len(layouts) != 1 or None in layouts:
        return out.with_shape(out.shape, contiguous=False)
    strides = layouts.pop()
    if not dense(out.shape, strides):
        return out.with_shape(out.shape, contiguous=False)
    return out.with_shape(out.shape, strides=strides)


def _reordered(inputs, out: "SymTensor") -> "SymTensor | None":
    """TensorIterator's own dim order (``reorder_dimensions``), where every comparison it makes
    comes out the same at every size (else None).

    Each operand's strides are taken over the output's dims (0 where it is broadcast: a missing
    dim, or one of size 1 against a larger size). Starting from the innermost dim, an insertion
    sort asks of two dims each operand in turn: a stride of 0 skips the operand; the smaller
    stride is the inner dim; equal strides put the larger size outside, or go on to the next
    operand. The output is dense in that order: contiguous where the order is the dims' own
    (then exactly so: where TensorIterator's fast set-up applies instead, it copies a layout
    that orders every dim alike)."""
    n = out.ndim
    if n <= 1:
        return out.with_shape(out.shape, contiguous=True)
    operands = []
    for t in inputs:
        strides = _broadcast_strides(t, out.shape)
        if strides is None:
            return None
        operands.append(strides)
    if not _one_order_where_sampled(operands, out.shape):
        return None  # (told at a few sizes, before any proof)
    # an operand's dim of size 1 against one that may be 1: stride 0 where that is larger, its
    # own where it is 1 (both sizes 1): TensorIterator's order, asked in each case, must agree
    either = sorted({d for strides in operands for d, s in enumerate(strides) if isinstance(s, tuple)})
    if len(either) > MAX_BROADCAST_CASES:
        return None
    perms = set()
    for ones in itertools.product((False, True), repeat=len(either)):
        one = dict(zip(either, ones))
        at_one = {out.shape[d]: sympy.Integer(1) for d in either if one[d]}
        shape = [as_expr(d).xreplace(at_one) for d in out.shape]
        case = [[(s[0].xreplace(at_one) if one[d] else sympy.Integer(0)) if isinstance(s, tuple)
                 else s.xreplace(at_one) for d, s in enumerate(strides)] for strides in operands]
        found = _insertion_sorted(n, lambda dim0, dim1: _should_swap(case, shape, dim0, dim1))
        if found is None:
            return None
        perms |= found
    if len(perms) != 1:
        return None
    perm = list(perms.pop())
    if perm == list(range(n - 1, -1, -1)):
        return out.with_shape(out.shape, contiguous=True)
    strides, step = [None] * n, sympy.Integer(1)
    for d in perm:
        strides[d] = step
        step = step * as_expr(out.shape[d])
    # (where every operand has the output's shape, the fast set-up may copy their common layout,
    # which orders the dims not of size 1 alike)
    return out.with_shape(out.shape, strides=strides, exact=all(_above_one(d) is True for d in out.shape))


def _one_order_where_sampled(operands, shape) -> bool:
    """Whether TensorIterator orders the dims alike at each of a few sizes (False: the order
    depends on the size; True also where a size is not a plain number here)."""
    exprs = [as_expr(d) for d in shape] + [s[0] if isinstance(s, tuple) else s for op in operands for s in op]
    orders = set()
    for at in _sample_sizes(set().union(*(e.free_symbols for e in exprs))):
        sizes = [_value(as_expr(d), at) for d in shape]
        strides = [[(_value(s[0], at) if sizes[d] == 1 else 0) if isinstance(s, tuple) else _value(s, at)
                    for d, s in enumerate(op)] for op in operands]
        if None in sizes or any(None in row for row in strides):
            return True
        orders |= _insertion_sorted(len(shape), lambda dim0, dim1: (_swap_at(strides, sizes, dim0, dim1),))
        if len(orders) > 1:
            return False
    return True


def _swap_at(strides, sizes, dim0: int, dim1: int) -> int:
    """TensorIterator's ``should_swap`` at one size (plain numbers)."""
    for row in strides:
        s0, s1 = row[dim0], row[dim1]
        if s0 == 0 or s1 == 0:
            continue
        if s0 != s1:
            return -1 if s0 < s1 else 1
        if sizes[dim0] > sizes[dim1]:
            return 1
    return 0


#: the sizes a layout is first tried at: every size alike, and sizes far apart
_SAMPLES = ((1,), (2,), (7,), (64,), (1, 1000), (1000, 1), (3, 50, 1), (50, 1, 3), (_PROBE,))


def _sample_sizes(names):
    """A value for each size name at each of :data:`_SAMPLES` (names in order, apart where
    there are more names than a sample has values)."""
    names = sorted(names, key=str)
    for values in _SAMPLES:
        yield {n: values[i % len(values)] + i // len(values) for i, n in enumerate(names)}


def _value(expr: sympy.Expr, at: dict):
    """``expr``'s value (an int or a Fraction) where its sizes are ``at``; None for a form not
    followed here (no sympy: asked of every stride at several sizes)."""
    return _evaluator(expr)(at)


@functools.lru_cache(maxsize=8192)
def _evaluator(expr: sympy.Expr):
    # (symshape.compiled compiles whole expression lists for the analysis's answers; it sits
    # above this module, and one closure per expression, cached, is what a stride asks here)
    if expr.is_Integer:
        value = int(expr)
        return lambda at: value
    if expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
        return lambda at: value
    if expr.is_Symbol:
        return lambda at: at.get(expr)
    parts = [_evaluator(a) for a in expr.args]
    combine = {sympy.Add: sum, sympy.Mul: math.prod, sympy.Max: max, sympy.Min: min}.get(type(expr))
    if combine is None and isinstance(expr, FloorDiv):
        combine = lambda v: v[0] // v[1] if v[1] != 0 else None  # noqa: E731
    if combine is None and isinstance(expr, sympy.Pow) and expr.exp.is_Integer and expr.exp >= 0:
        combine = lambda v: v[0] ** v[1]  # noqa: E731
    if combine is None:
        return lambda at: None

    def evaluate(at):
        values = [p(at) for p in parts]
        return None if None in values else combine(values)
    return evaluate


#: the most dims broadcast only at some sizes whose cases :func:`_reordered` tells apart
MAX_BROADCAST_CASES = 3


def _insertion_sorted(n: int, answers) -> set | None:
    """Every order of ``n`` dims ``reorder_dimensions``' insertion sort may end with, innermost
    dim first, following each answer ``answers(dim0, dim1)`` gives (those ``should_swap`` gives
    at some size; one, at one size). None: more than ``MAX_BROADCAST_CASES`` orders, or a sort
    that branches too often. ``perm``: the order so far; ``i``, ``dim1``, ``dim0``: where the
    sort is."""
    found, todo = set(), [(list(range(n - 1, -1, -1)), 1, 1, 0)]
    while todo:
        perm, i, dim1, dim0 = todo.pop()
        if i >= n:
            found.add(tuple(perm))
            if len(found) > MAX_BROADCAST_CASES:
                return None
            continue
        if dim0 < 0:
            todo.append((perm, i + 1, i + 1, i))
            continue
        for order in answers(perm[dim0], perm[dim1]):
            if order > 0:
                swapped = list(perm)
                swapped[dim0], swapped[dim1] = perm[dim1], perm[dim0]
                todo.append((swapped, i, dim0, dim0 - 1))
            elif order < 0:
                todo.append((perm, i + 1, i + 1, i))
            else:
                todo.append((perm, i, dim1, dim0 - 1))
        if len(todo) > 4 * n * n:
            return None
    return found


def _broadcast_strides(t: "SymTensor", shape) -> list | None:
    """An operand's strides over the output's dims, as TensorIterator's ``compute_strides``
    takes them: 0 where it is broadcast, ``(stride,)`` where it is only at some sizes (a dim of
    size 1 against one that may be 1). None where its strides are not known."""
    known = t.known_strides
    if known is None:
        return None
    offset = len(shape) - t.ndim
    strides = [sympy.Integer(0)] * offset
    for size, stride, full in zip(t.shape, known, shape[offset:]):
        if size == 1 and _above_one(full) is True:
            strides.append(sympy.Integer(0))
        elif t.loose and _above_one(size) is not True:  # its stride there is not known at size 1
            return None
        elif size == full:
            strides.append(as_expr(stride))
        elif size == 1:
            strides.append((as_expr(stride),))
        else:  # sizes that differ only at some sizes
            return None
    return strides


def _should_swap(operands, shape, dim0: int, dim1: int, k: int = 0) -> set:
    """TensorIterator's ``should_swap`` from the ``k``-th operand on: every answer it gives at
    some size (1 puts ``dim0`` outside ``dim1``, -1 inside, 0 leaves them: the sizes at which
    each holds are not told apart, so this may hold answers no size gives)."""
    if k == len(operands):
        return {0}
    s0, s1 = operands[k][dim0], operands[k][dim1]
    zero = [_is_zero(s0), _is_zero(s1)]
    answers = _should_swap(operands, shape, dim0, dim1, k + 1) if zero != [False, False] else set()
    if True in zero:
        return answers
    signs = _signs(s0, s1)
    answers |= signs & {-1, 1}  # the smaller stride inside
    if 0 in signs:  # the larger size outside, or the next operand decides
        # (where a stride is a number, the other one is that number here: ``w`` is 1 in ``1 == w``)
        tie = {s1: s0} if s0.is_Number else {s0: s1} if s1.is_Number else {}
        sizes = _signs(as_expr(shape[dim0]).xreplace(tie), as_expr(shape[dim1]).xreplace(tie))
        if 1 in sizes:
            answers.add(1)
        if sizes - {1}:
            answers |= _should_swap(operands, shape, dim0, dim1, k + 1)
    return answers


@functools.lru_cache(maxsize=4096)
def _signs(a: sympy.Expr, b: sympy.Expr) -> frozenset:
    """The signs ``a - b`` may have (-1, 0, 1): those it has at some of a few sizes, and those
    not shown impossible at every size (a proof costs sympy milliseconds: asked only there)."""
    a, b = as_expr(a), as_expr(b)
    d = _floors_shifted(a - b)
    if d.is_Number:
        return frozenset({int(sympy.sign(d))})
    num, den = (a / b).as_numer_denom() if b != 0 else (a, sympy.Integer(1))
    if den != 1 and _positive(b) and _positive(den):  # a product's sign: its factors' ratio
        d = _floors_shifted(num - den)  # (``96*w`` against ``96*h*w``: ``1 - h``)
    seen = set()
    for at in _sample_sizes(d.free_symbols):
        value = _value(d, at)
        if value is not None:
            seen.add((value > 0) - (value < 0))
        if len(seen) == 3:
            break
    signs = set(seen)
    if -1 not in seen and not _always(d):
        signs.add(-1)
    if 1 not in seen and not _always(-d):
        signs.add(1)
    # (where it is seen both ways, 0 is not told apart: an answer that may not hold only costs caution)
    if 0 not in seen and ({-1, 1} <= seen or not (_always(d - 1) or _always(-d - 1))):
        signs.add(0)
    return frozenset(signs)


def _positive(e: sympy.Expr) -> bool:
    """Each factor of ``e`` positive at every size (a positive number, or at least 1: a size, a
    floor of sizes ...)."""
    return all(f.is_Number and f > 0 or _always(f - 1) for f in sympy.Mul.make_args(e))


def _is_zero(stride) -> bool | None:
    stride = as_expr(stride)
    if stride == 0:
        return True
    return False if _always(stride - 1) else None


@functools.lru_cache(maxsize=4096)
def _always(expr) -> bool:
    """``expr >= 0`` at every size, as ``smallest_value`` finds it (factored: ``3W(H - 1)``;
    cached: sympy's factor takes milliseconds, and a stage's blocks ask of the same strides)."""
    low = smallest_value(expr)
    if low is not None and low >= 0:
        return True
    low = smallest_value(sympy.factor(expr))  # only where the sum alone does not tell
    if low is not None and low >= 0:
        return True
    # a stride clamped at 1 beside the size it clamps (``2*Max(1, T) - 2*T``): through the
    # arguments of the Max (symshape.dims.decide)
    return expr.has(sympy.Max, sympy.Min) and decide(sympy.Ge(expr, 0, evaluate=False)) is True


def _floors_shifted(expr: sympy.Expr) -> sympy.Expr:
    """Each ``floor((a + c)/q)`` with an integer ``c`` written ``floor((a + c mod q)/q) + c // q``
    (``a`` an integer), so that strides computed along different paths compare: ``2*floor((H -
    1)/8) + 2`` is ``2*floor((H + 7)/8)``."""
    subs = {}
    for f in expr.atoms(FloorDiv):
        num, den = sympy.expand(f.args[0]), f.args[1]
        c = num.as_coeff_Add()[0]
        if den.is_Integer and den > 0 and c.is_Integer:
            k = int(c) // int(den)
            if k:
                subs[f] = FloorDiv(num - k * int(den), den) + k
    return sympy.expand(expr.xreplace(subs)) if subs else sympy.expand(expr)


def _less(a, b) -> bool | None:
    """``a < b`` at every size (True), at none (False), or None."""
    d = _floors_shifted(as_expr(b) - as_expr(a))
    if _always(d - 1):
        return True
    return False if _always(-d) else None


def _equal(a, b) -> bool | None:
    if _floors_shifted(as_expr(a) - as_expr(b)) == 0:
        return True
    return False if _less(a, b) or _less(b, a) else None


def _above_one(n) -> bool | None:
    """True where ``n >= 2`` at every size, else None (an integer: whether it is above 1)."""
    n = as_expr(n)
    if n.is_Integer:
        return int(n) > 1
    return _above_one_at_every_size(n)


@functools.lru_cache(maxsize=4096)
def _above_one_at_every_size(n: sympy.Expr) -> bool | None:
    """(cached: the kernels of a stage ask it of the same sizes, and each answer takes sympy a
    factorization)"""
    return True if _always(n - 2) else None


def _shifted_symbol(e: sympy.Expr) -> tuple:
    """``(S, c)`` for a size ``S + c`` (a symbol plus a constant: ``H``, ``H - 1``), else ``(None, 0)``."""
    c, rest = e.as_coeff_Add()
    return (rest, c) if rest.is_Symbol else (None, 0)


def channels_last(shape, strides) -> tuple[bool | None, tuple]:
    """torch's ``is_channels_last_strides_2d`` / ``_3d`` for a 4D / 5D tensor (what
    ``suggest_memory_format`` asks, and what convolution and pooling follow on the CPU): the
    strides in the order C, W, H (, D), N never decrease, each at least the previous one times
    its size (sizes of 1 aside), and N's is not C's.

    Returns ``(answer, ones)``: the answer where every size that may be 1 is at least 2 (None
    where it depends on the sizes even then), and the products that must be at least 2 for it
    to hold (each is the sizes of one assignment of 1s that answers otherwise)."""
    return _channels_last(tuple(map(as_expr, shape)), tuple(map(as_expr, strides)))


@functools.lru_cache(maxsize=1024)
def _channels_last(shape: tuple, strides: tuple) -> tuple[bool | None, tuple]:
    """The body of :func:`channels_last`, cached: a stage of equal blocks asks it of the same
    shape and strides at every convolution, and each answer takes sympy many proofs."""
    if len(shape) not in (4, 5):
        return False, ()
    # torch's Max(1, size) in a stride is the size wherever the kernel runs (its input is non-empty)
    strides = [nonempty(v) for v in strides]
    if _row_major_after_batch(shape, strides):
        return False, ()
    if _channels_last_slice(shape, strides):
        return True, ()
    if _equal(strides[1], 0):
        return False, ()
    dense = _dense_channels_last(shape, strides)
    if dense is not None:
        return dense
    order = (1, 3, 2, 0) if len(shape) == 4 else (1, 4, 3, 2, 0)
    maybe_one = [d for d in order if _above_one(shape[d]) is None]
    bigger = {d: sympy.Dummy(f"n{d}", integer=True, positive=True) + 1 for d in maybe_one}

    def run(ones: frozenset) -> bool | None:
        # a size taken as 1 is 1; one taken as at least 2 is written n + 1 (n >= 1) to bound it
        subs: dict = {}
        for d in maybe_one:
            size, value = as_expr(shape[d]), (1 if d in ones else bigger[d])
            symbol, offset = _shifted_symbol(size)
            if symbol is not None:  # H - 1 (after a pad by -1): H is what the strides hold
                subs.setdefault(symbol, value - offset)
            elif not isinstance(size, (sympy.Add, sympy.Mul)):  # floor((H + 1)/8): as it is
                subs.setdefault(size, value)
        st = [as_expr(v).xreplace(subs) for v in strides]
        low = sympy.Integer(0)
        for d in order:
            below = _less(st[d], low)
            if below is not False:
                return None if below is None else False
            if d == 0:
                same = _equal(low, st[1])
                if same is not False:
                    return None if same is None else False
            big = _above_one(shape[d]) if d not in maybe_one else d not in ones
            low = st[d] * as_expr(shape[d]).xreplace(subs) if big else st[d]
        return True

    generic = run(frozenset())
    if generic is None:
        return None, ()
    differ: list[frozenset] = []  # the least sets of sizes at 1 that answer otherwise
    for k in range(1, len(maybe_one) + 1):
        for ones in map(frozenset, itertools.combinations(maybe_one, k)):
            if not any(seen <= ones for seen in differ) and run(ones) != generic:
                differ.append(ones)
    guard = (canonical(product(shape[d] for d in sorted(ones))) for ones in differ)
    return generic, tuple(dict.fromkeys(guard))


def _row_major_after_batch(shape: tuple, strides: list) -> bool:
    """Whether every stride but N's is the row-major one (``stride[d] = size[d+1] * ...``, the
    last 1): a contiguous tensor, or a slice of one along C (a chunk of its channels). torch's
    test is then False at every size, without sympy's proofs: at C its lower bound becomes
    C's stride times C, which W's stride 1 is below unless C and every spatial size are 1; and
    then N's step finds that bound equal to C's stride (its "N111" rule)."""
    expected = [sympy.Integer(1)]
    for size in shape[:1:-1]:
        expected.insert(0, expected[0] * size)
    return _laid_out_as(strides[1:], expected)


def _channels_last_slice(shape: tuple, strides: list) -> bool:
    """Whether the strides are those of channels last with ``K`` channels, ``K`` an integer of
    at least 2 and C's size at most ``K`` (a channels-last tensor, or a chunk of its channels):
    ``(K*H*W, 1, K*W, K)``. torch's test is then True at every size, without sympy's proofs:
    C's bound is at most ``K``, each next stride is at least the bound before it, and the
    bound N's step compares with C's stride 1 is at least ``K``."""
    k, c = strides[-1], shape[1]
    if not (k.is_Integer and c.is_Integer and 2 <= k and c <= k):
        return False
    return _laid_out_as(strides, channels_last_strides((shape[0], k, *shape[2:])))


def _laid_out_as(strides, expected) -> bool:
    """Whether each stride is the expected one (the same expression, expanded)."""
    return all(a == b or sympy.expand(as_expr(a) - as_expr(b)) == 0 for a, b in zip(strides, expected))


def _dense_channels_last(shape: tuple, strides: list) -> tuple | None:
    """:func:`channels_last` of strides that are exactly torch's channels-last ones for ``shape``
    (a permuted NHWC tensor, a channels-last kernel's output), without sympy's proofs: each
    stride is then the one before it in the order C, W, H (, D), N times that one's size, so
    torch's test holds but where C and every spatial size are 1 (its "N111" rule). None for other
    strides."""
    if not _laid_out_as(strides, channels_last_strides(shape)):
        return None
    rest = shape[1:]
    if any(_above_one(e) for e in rest):
        return True, ()
    maybe = [as_expr(e) for e in rest if not as_expr(e).is_Integer]
    if not maybe:  # every one of them is 1: torch takes such a tensor as contiguous
        return False, ()
    return True, (canonical(product(maybe)),)


def channels_last_strides(shape) -> tuple:
    """The strides of a tensor torch allocates channels last (4D or 5D)."""
    n = len(shape)
    out = [sympy.Integer(0)] * n
    out[1] = sympy.Integer(1)
    acc = as_expr(shape[1])
    for d in (*range(n - 1, 1, -1), 0):
        out[d] = acc
        acc = acc * as_expr(shape[d])
    return tuple(out)


def loosened(value, inputs):
    """An op's output after inputs whose layout is ``loose`` or guarded: a contiguous output
    may then have other strides on its dims of size 1 (torch computes them from the inputs'),
    and its layout holds where the inputs' did."""
    guard = tuple(dict.fromkeys(g for t in inputs for g in t.guard))
    if not guard and not any(t.loose for t in inputs):
        return value
    if isinstance(value, SymTensor):
        if value.contiguous:
            return SymTensor(value.shape, True, value.index_bound, value.dtype, None, True,
                             tuple(dict.fromkeys(value.guard + guard)))
        # (a non-contiguous output's strides on dims of size 1 come from the inputs' too)
        return replace(value, loose=value.loose or any(t.loose for t in inputs),
                       guard=tuple(dict.fromkeys(value.guard + guard)))
    if isinstance(value, Repeated):
        return replace(value, item=loosened(value.item, inputs), last=loosened(value.last, inputs))
    if isinstance(value, tuple):
        return tuple_like(value, (loosened(v, inputs) for v in value))
    if isinstance(value, list):
        return [loosened(v, inputs) for v in value]
    return value


#: why a requirement on a layout symshape does not follow is data-dependent
LAYOUT_NOT_FOLLOWED = "the memory format torch picks here depends on strides symshape does not follow"

#: a convolution's output memory format on the CPU by input rank (3, 4, 5; see kernel_layout),
#: measured: channels last where the input suggests it; a 1D convolution's input is made
#: contiguous first (torch's _convolution: "avoid accidentally going through NHWC for permuted 3d
#: input"), then runs as 2D -- where it was contiguous already, with its odd size-1 strides. A 3D
#: one follows the input on oneDNN and not on torch's own kernel (slow_conv3d), which torch picks
#: from the batch size, the kernel and the thread count. (torch's meta kernel allocates every
#: output contiguous: symshape.meta lays it out by this table.)
CONV_MEMORY_FORMAT = {3: "contiguous_first", 4: "suggest", 5: "suggest_some"}


def kernel_layout(x: SymTensor, out: SymTensor, d: int, policy: str, what: str) -> SymTensor:
    """The layout of a convolution's or pooling's output ``out`` on the CPU, from its input
    ``x`` with ``d`` spatial dims (a 3D ``x`` seen as ``(N, C, 1, L)``, with unsqueeze's stride).

    ``policy`` (``Rule.memory_format``): ``"contiguous"`` (torch allocates it so); ``"suggest"``
    (channels last exactly where ``x`` suggests it, ``channels_last``); ``"contiguous_first"``
    (``x.contiguous()``, then "suggest": a 1D convolution); ``"unless_contiguous"`` (contiguous
    from a contiguous input, else "suggest": batch norm); ``"suggest_some"`` (channels last on
    some backends only: not known where ``x`` suggests it); ``"guard"`` (contiguous from a
    contiguous input, ``out`` as the caller has it from another); ``""``: ``out`` as it is.

    Where the strides of dims of size 1 decide and symshape does not know them, the output is
    contiguous under a guard: C >= 2 and some spatial size >= 2 rule channels last out (a guard
    that never holds, for a 1-channel input: a view of the output is then refused everywhere,
    as torch may refuse it). A view of a non-contiguous tensor (``loose``: its strides are
    torch's where no size is 1) gives the layout its strides give, under a guard that each of
    its sizes that may be 1 is at least 2. The guard is data-dependent
    (``Requirement.data_dependent``)."""
    if not policy or x.ndim != d + 2:
        return out
    fresh = SymTensor(out.shape, True, out.index_bound, out.dtype)
    if policy == "contiguous":
        return fresh
    if policy == "unless_contiguous":  # contiguous where torch sees the input so, else "suggest"
        if x.contiguous:
            return replace(fresh, guard=x.guard)
        policy = "suggest"
    if policy == "contiguous_first":
        # torch's _convolution makes a 3D input contiguous first (a copy where it is not; the
        # tensor itself, odd size-1 strides and all, where it is: at some sizes it may be)
        if not x.contiguous:
            x = SymTensor(x.shape, True, None, x.dtype, None, any(not n.is_Integer for n in x.shape), x.guard)
        policy = "suggest"
    guard = x.guard
    if policy == "guard" and not x.contiguous:
        return out
    if x.contiguous and not x.loose:
        return replace(fresh, guard=guard)
    shape, strides = x.shape, x.known_strides
    out_shape = out.shape
    if d == 1:
        shape = (shape[0], shape[1], sympy.Integer(1), shape[2])
        strides = strides and (strides[0], strides[1], strides[2] * shape[3], strides[2])
        out_shape = (out_shape[0], out_shape[1], sympy.Integer(1), out_shape[2])
    unknown = SymTensor(out.shape, False, out.index_bound, out.dtype, guard=guard)
    harmless = out_shape[1] == 1 or all(n == 1 for n in out_shape[2:])
    suggested = _suggests_channels_last(x, shape, strides, policy)
    if suggested is None:
        return unknown
    cl, ones = suggested
    if cl and policy == "suggest_some":
        return unknown  # channels last on the backends that follow the input, contiguous on others
    if cl:
        st = channels_last_strides(out_shape)
        out = SymTensor(out.shape, False, out.index_bound, out.dtype, (st[0], st[1], st[3]) if d == 1 else st)
    else:
        out = fresh
    if not ones:
        return replace(out, guard=guard)
    data = LAYOUT_NOT_FOLLOWED
    if x.exact_strides:  # these strides hold where no size in ``ones`` is 1 (channels_last)
        reason = (f"{what}: where {{lhs}} < 2, torch picks another memory format for its output than "
                  "symshape follows")
        new = tuple(Requirement(e, ">=", 2, reason, data_dependent=data) for e in ones)
        return replace(out, guard=tuple(dict.fromkeys(guard + new)))
    if harmless:  # channels last or not, such an output is contiguous: only its size-1 strides differ
        return SymTensor(out.shape, True, out.index_bound, out.dtype, None, True, guard)
    # (a size that is always 1, a 1-channel input: then its guard never holds, and a view of the
    # output is refused everywhere, as torch may refuse it)
    reason = (f"{what}: where {{lhs}} < 2, torch picks its output's memory format from the strides of "
              "dims of size 1, which symshape does not follow")
    # where the output's spatial sizes are all 1, channels last or not it is contiguous
    harmless_here = Requirement(1, ">=", canonical(product(out_shape[2:])), "")
    new = tuple(Requirement(e, ">=", 2, reason, unless=harmless_here, data_dependent=data) for e in ones)
    return replace(out, guard=tuple(dict.fromkeys(guard + new)))


def _suggests_channels_last(x: SymTensor, shape: tuple, strides, policy: str) -> tuple | None:
    """``(answer, ones)`` of torch's ``suggest_memory_format`` for ``x`` (``shape`` and
    ``strides`` as a 4D or 5D kernel sees them; see :func:`channels_last`), or None where it is not
    known. Strides known but for dims of size 1 (a view of a non-contiguous tensor) hold where
    each size that may be 1 is at least 2; a contiguous tensor's unknown size-1 strides make it
    channels last only where C == 1 or every spatial size is 1."""
    if strides is not None and policy in ("suggest", "suggest_some") and (x.exact_strides or not x.contiguous):
        cl, ones = channels_last(shape, strides)
        if cl is None:
            return None
        if not x.exact_strides:
            ones = tuple(dict.fromkeys((*ones, *(e for e in x.shape if _above_one(e) is None))))
        return cl, ones
    if x.contiguous:
        return False, tuple(e for e in (shape[1], product(shape[2:])) if not _above_one(e))
    return None


def shape_str(shape) -> str:
    """``(N, 20, floor((H - 12)/4), ...)`` for a shape, ``(a, b)`` for a tuple of shapes."""
    if isinstance(shape, RepeatedShape):
        return str(shape)
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k!r}: {shape_str(s) if isinstance(s, (tuple, dict)) else s}"
                               for k, s in shape.items()) + "}"
    if shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(shape_str(s) for s in shape) + ")"
    return "(" + ", ".join(str(s) for s in shape) + ")"
