"""What a layer computed for one dim, kept for explanations: the formula with its parameters.

Rules record one derivation per spatial dim they size; :mod:`symshape.explain` writes them out
symbolically or with numbers, and the roundings behind ``exact_sizes()`` come from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import sympy

from .dims import SHORT_SCALE, as_expr
from .requirements import Rounding

__all__ = ["Adaptive", "Derivation", "Padded", "Scaled", "Transposed", "Window"]


@dataclass(frozen=True)
class Window:
    """A sliding window (convolution, pooling)::

        out = floor((in + pad_l + pad_r - dilation*(kernel - 1) - 1)/stride) + 1

    with ``ceil_mode``: ceil instead of floor, then one window less if the last one would
    start in the right padding.
    """

    dim: str  # what the dim counts: rows, columns, frames, positions
    size: sympy.Expr  # the layer's input size in this dim
    kernel: int
    stride: int
    pad: tuple[int, int]
    dilation: int
    ceil_mode: bool
    out: sympy.Expr

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    @property
    def numerator(self) -> sympy.Expr:
        return self.size + self.pad[0] + self.pad[1] - self.span

    @property
    def rounding(self) -> Rounding | None:
        if self.stride == 1:
            return None
        what = f"stride {self.stride}" + (" (ceil_mode)" if self.ceil_mode else "")
        return Rounding(as_expr(self.numerator), self.stride, what)


@dataclass(frozen=True)
class Transposed:
    """``out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``."""

    dim: str
    size: sympy.Expr
    kernel: int
    stride: int
    padding: int
    dilation: int
    output_padding: int
    out: sympy.Expr
    rounding = None


@dataclass(frozen=True)
class Adaptive:
    """``out = output_size``; windows are uneven unless ``output_size`` divides ``in``."""

    dim: str
    size: sympy.Expr
    out: int

    @property
    def rounding(self) -> Rounding | None:
        return None if self.out == 1 else Rounding(as_expr(self.size), self.out, f"adaptive output {self.out}")


@dataclass(frozen=True)
class Padded:
    """``out = in + left + right``."""

    dim: str
    size: sympy.Expr
    left: int
    right: int
    mode: str
    out: sympy.Expr
    rounding = None


@dataclass(frozen=True)
class Scaled:
    """``out = floor(double(in) * scale)``: ``F.interpolate`` / ``nn.Upsample`` with
    ``scale_factor``. The product is a double, rounded before the floor: for a scale that is no
    short binary fraction (0.35, 1/3) the size can be one less than the exact product's floor."""

    dim: str
    size: sympy.Expr
    scale: float
    out: sympy.Expr

    @property
    def rounding(self) -> Rounding | None:
        value = Fraction(self.scale)
        if value.denominator == 1:
            return None
        if value.denominator <= SHORT_SCALE and value.numerator <= SHORT_SCALE:
            return Rounding(as_expr(self.size) * value.numerator, value.denominator, f"scale_factor {self.scale}")
        # whether a rounded double product is an integer has no period: stated, not solved
        return Rounding(as_expr(self.size), 0, f"scale_factor {self.scale} (a double-precision product)")


Derivation = Union[Window, Transposed, Adaptive, Padded, Scaled]
