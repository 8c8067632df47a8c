"""The value a tensor has during analysis: its shape, as sympy expressions."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .dims import as_expr, product

__all__ = ["SymTensor", "shape_str"]


@dataclass(frozen=True)
class SymTensor:
    """A tensor whose sizes are sympy expressions of the input sizes (batch first)."""

    shape: tuple[sympy.Expr, ...]
    #: False once a permute, transpose, expand or slice may have left the memory non-contiguous
    #: (a ``view`` is then refused: whether torch accepts it depends on the strides)
    contiguous: bool = True
    #: for the indices of a max pooling: they point into that many positions of its input
    index_bound: sympy.Expr | None = None

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
        return SymTensor(shape, self.contiguous if contiguous is None else contiguous, keep)

    def as_indices(self, bound) -> "SymTensor":
        return SymTensor(self.shape, self.contiguous, as_expr(bound))

    def __str__(self) -> str:
        return shape_str(self.shape)


def shape_str(shape) -> str:
    """``(N, 20, floor((H - 12)/4), ...)`` for a shape, ``(a, b)`` for a tuple of shapes."""
    if shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(shape_str(s) for s in shape) + ")"
    return "(" + ", ".join(str(s) for s in shape) + ")"
