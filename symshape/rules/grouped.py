"""Grouped matrix products: ``torch._grouped_mm`` (``F.grouped_mm``), a mixture of experts' layer.

Each expert's weights are one matrix of ``mat_b``; the tokens sorted by expert are the rows of
``mat_a``, and ``offs`` (int32) ends each expert's group of rows::

    (M, K) x (G, K, N), offs (G,)  -> (M, N)        (the experts' forward)
    (G, M, K) x (K, N), offs (G,)  -> (M, N)        (rows of b grouped)
    (G, M, K) x (G, K, N)          -> (G, M, N)     (a batched product, no offsets)

The offsets' values never change a shape (a group past the rows is empty). torch's checks,
its CPU kernel's (its meta kernel checks the CUDA kernel's: bfloat16 or float16 only, which
the CPU does not ask): each operand float32, bfloat16 or float16, 2-D or 3-D; ``K`` alike;
each operand laid out by rows or by columns in its last two dims, the other stride a
multiple of 16 bytes; offsets exactly where an operand is 2-D, 1-D and int32; no bias; the
output's dtype ``mat_a``'s. The output's last dim is padded to 16 bytes in its strides
(``(M, 6)`` of float32 has strides ``(8, 1)``).
"""

from __future__ import annotations

import sympy
import torch

from ..dims import ceil_div, smallest_value_where
from ..tensor import SymTensor
from .common import tensor_arg
from .registry import Context, function_rule

#: the dtypes the CPU kernel takes, and their element sizes
_ELEMENT_SIZES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


def _holds(ctx: Context, cond) -> bool:
    """Whether ``cond`` holds where this step runs: proved, disproved, or refused as a layout
    check that depends on the input's sizes."""
    if cond in (sympy.true, sympy.false):
        return bool(cond)
    if ctx.proves(cond):
        return True
    if ctx.proves(cond.negated):
        return False
    ctx.unsupported(f"a layout check of torch._grouped_mm that depends on the sizes ({cond})")


def _strides(ctx: Context, t: SymTensor, name: str, size: int | None) -> None:
    """torch's ``check_valid_strides_and_return_transposed``: ``t``'s last two dims laid out by
    columns (stride 1, then at least the rows) or by rows, the other stride a multiple of 16
    bytes (``size``: the element size, None where the dtype is not known)."""
    (rows, cols) = t.shape[-2:]
    # (strides recorded but for a dim of size 1 are torch's: where neither dim can be 1, they are)
    if t.known_strides is None or not (t.exact_strides or all(_at_least_two(ctx, n) for n in (rows, cols))):
        ctx.unsupported(f"{name} with strides symshape does not follow exactly")
    down, across = t.known_strides[-2:]
    if _holds(ctx, sympy.Eq(down, 1)) and _holds(ctx, sympy.Ge(across, sympy.Max(1, rows))):
        other = across
    elif _holds(ctx, sympy.Eq(across, 1)) and _holds(ctx, sympy.Ge(down, sympy.Max(1, cols))):
        other = down
    else:
        ctx.never(f"Invalid strides/sizes, got {list(t.known_strides)} for strides and {list(t.shape)} for sizes")
        return
    if size is not None:
        ctx.divisible(other, 16 // size, "strides should be multiple of 16 bytes (" + name + "'s stride {lhs} "
                      f"of {size}-byte elements: a multiple of {16 // size})")
    elif not (other.is_Integer and int(other) % 8 == 0):  # (a multiple of 16 bytes at any element size)
        ctx.unsupported(f"{name}'s stride {other} with a dtype symshape does not know")


def _at_least_two(ctx: Context, size) -> bool:
    least = smallest_value_where(size, ctx.facts + ctx.earlier)
    return least is not None and least >= 2 or ctx.proves(sympy.Ge(size, 2))


def _element_size(ctx: Context, t: SymTensor, name: str) -> int | None:
    if t.dtype is None:
        return None
    if t.dtype not in _ELEMENT_SIZES:
        ctx.never(f"Expected {name} to be Float32, BFloat16 or Float16 matrix, got {t.dtype}")
        return None
    return _ELEMENT_SIZES[t.dtype]


def _output(ctx: Context, a: SymTensor, b: SymTensor, groups) -> tuple:
    """The output's shape, after torch's check of the group counts."""
    if a.ndim == 2 and b.ndim == 3:
        ctx.equal(groups, b.shape[0], "matrix batch sizes have to match (offs has {lhs} groups, mat_b {rhs})")
        return a.shape[0], b.shape[2]
    if a.ndim == 3 and b.ndim == 2:
        ctx.equal(groups, a.shape[0], "matrix batch sizes have to match (offs has {lhs} groups, mat_a {rhs})")
        return a.shape[1], b.shape[1]
    if a.ndim == 3:
        ctx.equal(a.shape[0], b.shape[0], "batched dimension has to match (mat_a has {lhs} matrices, mat_b {rhs})")
        return a.shape[0], a.shape[1], b.shape[2]
    if not ctx.proves(sympy.Eq(a.shape[1], b.shape[0])):  # each group's product: slices by the offsets' values
        ctx.unsupported(f"two 2-D operands of {a.shape[1]} and {b.shape[0]} rows to group")
    return groups, a.shape[0], b.shape[1]


if hasattr(torch, "_grouped_mm"):  # (torch 2.8 and later)

    @function_rule(torch._grouped_mm, layout=True)
    def grouped_mm(ctx: Context, mat_a, mat_b, offs=None, bias=None, out_dtype=None) -> SymTensor:
        """``(M, K) x (G, K, N) -> (M, N)`` with ``offs`` of ``G`` int32 ends of the groups of
        rows; ``(G, M, K) x (K, N) -> (M, N)``; ``(G, M, K) x (G, K, N) -> (G, M, N)`` without.
        The layout: rows padded to 16 bytes. torch's CPU checks (see the module's doc)."""
        a, b = tensor_arg(mat_a, "mat_a", ctx), tensor_arg(mat_b, "mat_b", ctx)
        sizes = [_element_size(ctx, t, name) for t, name in ((a, "mat_a"), (b, "mat_b"))]
        for t, name in ((a, "mat_a"), (b, "mat_b")):
            if t.ndim not in (2, 3):
                ctx.refuse(f"{name} has to be 2 or 3d, gets {t.ndim}D {t}")
        if a.dtype is not None and b.dtype is not None and a.dtype != b.dtype:
            ctx.unsupported(f"operands of two dtypes ({a.dtype}, {b.dtype})")
        if a.ndim == 3 or b.ndim == 3:
            ctx.equal(a.shape[-1], b.shape[-2], "contraction dimension of mat_a and mat_b must match ({lhs} and {rhs})")
        if all(t.dtype is None or t.dtype in _ELEMENT_SIZES for t in (a, b)):  # (else refused above)
            _strides(ctx, a, "mat_a", sizes[0])
            _strides(ctx, b, "mat_b", sizes[1])
        if (offs is not None) != (a.ndim == 2 or b.ndim == 2):
            ctx.refuse("Have to provide offsets if there is a 2d matrix, or no offset if both matrices are 3d")
        groups = None
        if offs is not None:
            o = tensor_arg(offs, "offs", ctx)
            if o.ndim != 1:
                ctx.refuse(f"offs has to be 1D, gets {o.ndim}D {o}")
            if o.dtype is not None and o.dtype != torch.int32:
                ctx.never(f"Offsets have to be int32, gets {o.dtype}")
            groups = o.shape[0]
        if bias is not None:
            ctx.never("Bias not supported yet")
        if out_dtype is not None and a.dtype is not None and out_dtype != a.dtype:
            ctx.never("Grouped gemm output dtype must match `mat_a` dtype")
        shape = _output(ctx, a, b, groups)
        if sizes[0] is not None:
            padded = ceil_div(shape[-1], 16 // sizes[0]) * (16 // sizes[0])
        elif shape[-1].is_Integer and int(shape[-1]) % 8 == 0:  # (16 bytes of any of the three dtypes)
            padded = shape[-1]
        else:  # (its rows' padding depends on the element size)
            return SymTensor(shape, contiguous=False, dtype=a.dtype)
        strides = (padded, 1) if a.ndim != b.ndim else (shape[1] * padded, padded, 1)
        return SymTensor(shape, contiguous=False, dtype=a.dtype, strides=strides)
