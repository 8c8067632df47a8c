"""The value a tensor has during analysis: its shape, as sympy expressions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sympy

from .dims import as_expr, product

__all__ = ["Pieces", "SymTensor", "has_tensor", "shape_str", "shapes_of", "tensors_in"]


@dataclass(frozen=True)
class SymTensor:
    """A tensor whose sizes are sympy expressions of the input sizes (batch first)."""

    shape: tuple[sympy.Expr, ...]
    #: False once a permute, transpose, expand or slice may have left the memory non-contiguous
    #: (a ``view`` is then refused: whether torch accepts it depends on the strides)
    contiguous: bool = True
    #: for the indices of a max pooling: they point into that many positions of its input
    index_bound: sympy.Expr | None = None
    #: the dtype where it is known (a buffer, a comparison, what torch's meta kernel returned);
    #: None: not tracked (a floating tensor, as model inputs are). Shapes never depend on it; it
    #: only lets torch's meta kernels accept the tensor (symshape.meta).
    dtype: Any = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(as_expr(s, "a tensor size") for s in self.shape))

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

    def with_shape(self, shape, contiguous: bool | None = None) -> "SymTensor":
        """The same tensor with another shape (the index bound goes with it only if the shape stays)."""
        shape = tuple(shape)
        keep = self.index_bound if len(shape) == len(self.shape) else None
        return SymTensor(shape, self.contiguous if contiguous is None else contiguous, keep, self.dtype)

    def as_indices(self, bound) -> "SymTensor":
        return SymTensor(self.shape, self.contiguous, as_expr(bound), self.dtype)

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


def has_tensor(value) -> bool:
    return bool(tensors_in(value))


def shape_str(shape) -> str:
    """``(N, 20, floor((H - 12)/4), ...)`` for a shape, ``(a, b)`` for a tuple of shapes."""
    if shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(shape_str(s) for s in shape) + ")"
    return "(" + ", ".join(str(s) for s in shape) + ")"
