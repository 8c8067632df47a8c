"""The value a tensor has during analysis: its shape, as sympy expressions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sympy

from .dims import as_expr, product, smallest_value

__all__ = ["Pieces", "SymTensor", "dense", "elementwise_layout", "has_tensor", "shape_str", "shapes_of",
           "standard_strides", "tensors_in"]


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
    #: as torch computes them for permute, transpose, slicing, expand ...)
    strides: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(as_expr(s, "a tensor size") for s in self.shape))
        if self.strides is not None:
            strides = tuple(_without_max_one(as_expr(s, "a stride")) for s in self.strides)
            # torch's is_contiguous: the standard strides, except that a dim of size 1 may have any
            standard = self.contiguous or all(
                n == 1 or a == b for n, a, b in zip(self.shape, strides, standard_strides(self.shape)))
            object.__setattr__(self, "strides", None if standard else strides)
            object.__setattr__(self, "contiguous", standard)

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
        """The strides, where known: torch's standard ones for a contiguous tensor."""
        return standard_strides(self.shape) if self.contiguous else self.strides

    def with_shape(self, shape, contiguous: bool | None = None, strides=None) -> "SymTensor":
        """The same tensor with another shape (the index bound goes with it only if the shape
        stays). Layout: ``strides`` where given (exact); else contiguous if ``contiguous`` is True,
        or if it is None and this tensor is; else not known."""
        shape = tuple(shape)
        keep = self.index_bound if len(shape) == len(self.shape) else None
        if strides is not None:
            return SymTensor(shape, False, keep, self.dtype, tuple(strides))
        contiguous = self.contiguous if contiguous is None else contiguous
        return SymTensor(shape, contiguous, keep, self.dtype)

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


def shapes_of(value):
    """The shape of a SymTensor; of a list or tuple, the tuple of its items' shapes; other values
    (sizes, None) as they are."""
    if isinstance(value, SymTensor):
        return value.shape
    if isinstance(value, (list, tuple)):
        return tuple(shapes_of(v) for v in value)
    return value


def tensors_in(value) -> list[SymTensor]:
    """Every SymTensor in ``value`` (through lists, tuples and dict values), in order."""
    if isinstance(value, SymTensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def _without_max_one(e: sympy.Expr) -> sympy.Expr:
    """``Max(1, x)`` (torch's stride of a dim that may be empty) is ``x`` where ``x >= 1``."""
    if not e.has(sympy.Max):
        return e

    def at_least_one(m) -> bool:
        if not (isinstance(m, sympy.Max) and len(m.args) == 2 and sympy.Integer(1) in m.args):
            return False
        low = smallest_value(next(a for a in m.args if a != 1))
        return low is not None and low >= 1

    return e.replace(at_least_one, lambda m: next(a for a in m.args if a != 1))


def has_tensor(value) -> bool:
    return bool(tensors_in(value))


def standard_strides(shape) -> tuple:
    """torch's strides for a contiguous tensor of ``shape`` (``stride[i] = size[i+1] * ...``,
    sizes of 0 or 1 counted as 1, as ``TensorImpl`` computes them)."""
    out, acc = [], sympy.Integer(1)
    for size in reversed(shape):
        out.append(acc)
        size = as_expr(size)
        if size.is_Integer:
            acc = acc * max(int(size), 1)
        else:
            low = smallest_value(size)
            acc = acc * (size if size.is_positive or (low is not None and low >= 1) else sympy.Max(size, 1))
    return tuple(reversed(out))


def dense(shape, strides) -> bool:
    """torch's ``is_non_overlapping_and_dense``, where it is decided structurally: the strides,
    ordered, are 1, size, size*size ... (dims of size 1 aside). False where it cannot tell."""
    expected, todo = sympy.Integer(1), [i for i, n in enumerate(shape) if n != 1]
    while todo:
        match = [i for i in todo if sympy.expand(as_expr(strides[i]) - expected) == 0]
        if len(match) != 1:
            return False
        todo.remove(match[0])
        expected = expected * as_expr(shape[match[0]])
    return True


def elementwise_layout(inputs, out: "SymTensor") -> "SymTensor":
    """The layout torch's TensorIterator gives an elementwise op's output: the dim order of its
    full-size inputs (an input broadcast in all dims but one never decides it). Where those
    agree on dense strides, the output has them; otherwise its layout is not known."""
    first = inputs[0] if inputs else None
    if first is not None and first.shape == out.shape and first.known_strides is not None \
            and dense(out.shape, first.known_strides):
        # the first operand decides every pair of dims whose strides differ (should_swap), and a
        # dense full-size tensor's strides differ wherever its dims are not of size 1
        return out.with_shape(out.shape, strides=first.known_strides)
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


def shape_str(shape) -> str:
    """``(N, 20, floor((H - 12)/4), ...)`` for a shape, ``(a, b)`` for a tuple of shapes."""
    if shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(shape_str(s) for s in shape) + ")"
    return "(" + ", ".join(str(s) for s in shape) + ")"
