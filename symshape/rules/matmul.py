"""Matrix products: ``@`` / ``torch.matmul``, ``torch.mm``, ``torch.bmm``.

``matmul(a, b)`` contracts ``a``'s last dim with ``b``'s second-to-last (its only dim when
``b`` is 1D) and broadcasts the batch dims in front of the last two::

    (*Ba, n, k) @ (*Bb, k, p) -> (*broadcast(Ba, Bb), n, p)

A 1D operand is a row (``a``) or a column (``b``) whose dim is dropped from the result:
``(k,) @ (k,) -> ()``, ``(n, k) @ (k,) -> (n,)``, ``(k,) @ (k, p) -> (p,)``.

The output is freshly allocated and contiguous (``bmm`` / ``mm`` after torch reshapes the
operands), except where ``a`` has at most 2 dims and ``b`` more: torch then folds the product
through ``b``'s transpose and may return the transpose of its result. symshape does not follow
that layout (a later ``view`` is refused there); shapes are exact everywhere. torch's own meta
kernel for matmul asks whether each size is 1 (to fold, to broadcast): on attention's
``q @ k.transpose(-2, -1)`` over ``floor(H/16)*floor(W/16)`` tokens that is more than 64 cases.
"""

from __future__ import annotations

import operator

import torch

from ..tensor import SymTensor
from .combine import broadcast_shape
from .common import tensor_arg
from .registry import Context, function_rule, method_rule

__all__ = ["matmul_shape"]


def matmul_shape(ctx: Context, a: SymTensor, b: SymTensor, what: str = "matmul") -> SymTensor:
    """``(*Ba, n, k) @ (*Bb, k, p) -> (*broadcast(Ba, Bb), n, p)``; 1D operands lose their dim."""
    if a.ndim == 0 or b.ndim == 0:
        ctx.refuse(f"{what}: both arguments need at least 1 dim, gets {a.ndim}D and {b.ndim}D")
    inner = b.shape[0] if b.ndim == 1 else b.shape[-2]
    where = "size" if b.ndim == 1 else "second-to-last dim"
    ctx.equal(a.shape[-1], inner, f"{what}: the first operand's last dim ({{lhs}}) must equal the "
                                  f"second's {where} ({{rhs}}) (torch: shapes cannot be multiplied)")
    rows = a.shape[-2:-1] if a.ndim >= 2 else ()
    cols = b.shape[-1:] if b.ndim >= 2 else ()
    batch = broadcast_shape(ctx, SymTensor(a.shape[:-2]), SymTensor(b.shape[:-2])).shape
    out = (*batch, *rows, *cols)
    if a.ndim <= 2 < b.ndim:  # folded through b's transpose: strides not followed
        return SymTensor(out, contiguous=False)
    return SymTensor(out)


@function_rule(torch.matmul, operator.matmul, layout=True)
@method_rule("matmul", layout=True)
def matmul(ctx: Context, input, other, *, out=None) -> SymTensor:
    """``a @ b``, ``a.matmul(b)``: ``(*Ba, n, k) @ (*Bb, k, p) -> (*broadcast(Ba, Bb), n, p)``,
    ``a[-1] == b[-2]``."""
    if out is not None:
        ctx.unsupported("matmul with out=")
    return matmul_shape(ctx, tensor_arg(input, "input", ctx), tensor_arg(other, "other", ctx))


@function_rule(torch.mm, layout=True)
@method_rule("mm", layout=True)
def mm(ctx: Context, input, mat2, *, out=None) -> SymTensor:
    """``(n, k) @ (k, p) -> (n, p)``, both 2D."""
    a, b = tensor_arg(input, "input", ctx), tensor_arg(mat2, "mat2", ctx)
    if out is not None:
        ctx.unsupported("torch.mm with out=")
    if a.ndim != 2 or b.ndim != 2:
        ctx.refuse(f"torch.mm: both arguments must be matrices, gets {a.ndim}D and {b.ndim}D")
    return matmul_shape(ctx, a, b, "torch.mm")


@function_rule(torch.bmm, layout=True)
@method_rule("bmm", layout=True)
def bmm(ctx: Context, input, mat2, *, out=None) -> SymTensor:
    """``(B, n, k) @ (B, k, p) -> (B, n, p)``, both 3D, the same B (no broadcasting)."""
    a, b = tensor_arg(input, "input", ctx), tensor_arg(mat2, "mat2", ctx)
    if out is not None:
        ctx.unsupported("torch.bmm with out=")
    if a.ndim != 3 or b.ndim != 3:
        ctx.refuse(f"torch.bmm: both arguments must be 3D, gets {a.ndim}D and {b.ndim}D")
    ctx.equal(b.shape[0], a.shape[0], "torch.bmm: batch1 has {rhs} matrices, batch2 {lhs}; they must be equal")
    ctx.equal(a.shape[2], b.shape[1], "torch.bmm: batch1's last dim ({lhs}) must equal batch2's second "
                                      "dim ({rhs}) (torch: shapes cannot be multiplied)")
    return SymTensor((a.shape[0], a.shape[1], b.shape[2]))
