"""Matrix products: ``@`` / ``torch.matmul``, ``torch.mm``, ``torch.bmm``, and attention
(``F.scaled_dot_product_attention``), which is two of them.

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

import sympy
import torch
import torch.nn.functional as F

from ..errors import UnsupportedWhereMetaDiffers
from ..requirements import Requirement
from ..tensor import SymTensor
from .combine import broadcast_shape
from .common import as_flag, tensor_arg
from .registry import Context, function_rule, method_rule

__all__ = ["matmul_shape"]


def matmul_shape(ctx: Context, a: SymTensor, b: SymTensor, what: str = "matmul",
                 weight: tuple[int, str] = (1, "other")) -> SymTensor:
    """``(*Ba, n, k) @ (*Bb, k, p) -> (*broadcast(Ba, Bb), n, p)``; 1D operands lose their dim.
    Where ``b`` (the argument ``weight`` names) is a parameter of the model, ``a``'s last dim is
    a fixed layer's input (``x @ self.W``)."""
    if a.ndim == 0 or b.ndim == 0:
        ctx.refuse(f"{what}: both arguments need at least 1 dim, gets {a.ndim}D and {b.ndim}D")
    inner = b.shape[0] if b.ndim == 1 else b.shape[-2]
    where = "size" if b.ndim == 1 else "second-to-last dim"
    ctx.fixes(a.shape[-1], inner, f"shape[{max(b.ndim - 2, 0)}]",
              f"{what}: the first operand's last dim ({{lhs}}) must equal the "
              f"second's {where} ({{rhs}}) (torch: shapes cannot be multiplied)", weight=weight, always=True)
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


def _of_rank(ctx: Context, input, mat2, rank: int, what: str, out) -> tuple[SymTensor, SymTensor]:
    """The two operands of ``mm`` (rank 2) or ``bmm`` (rank 3), refused unless both have it."""
    a, b = tensor_arg(input, "input", ctx), tensor_arg(mat2, "mat2", ctx)
    if out is not None:
        ctx.unsupported(f"{what} with out=")
    if a.ndim != rank or b.ndim != rank:
        ctx.refuse(f"{what}: both arguments must be {rank}D, gets {a.ndim}D and {b.ndim}D")
    return a, b


@function_rule(torch.mm, layout=True)
@method_rule("mm", layout=True)
def mm(ctx: Context, input, mat2, *, out=None) -> SymTensor:
    """``(n, k) @ (k, p) -> (n, p)``, both 2D."""
    return matmul_shape(ctx, *_of_rank(ctx, input, mat2, 2, "torch.mm", out), "torch.mm", (1, "mat2"))


@function_rule(torch.bmm, layout=True)
@method_rule("bmm", layout=True)
def bmm(ctx: Context, input, mat2, *, out=None) -> SymTensor:
    """``(B, n, k) @ (B, k, p) -> (B, n, p)``, both 3D, the same B (no broadcasting)."""
    a, b = _of_rank(ctx, input, mat2, 3, "torch.bmm", out)
    ctx.equal(b.shape[0], a.shape[0], "torch.bmm: batch1 has {rhs} matrices, batch2 {lhs}; they must be equal")
    ctx.equal(a.shape[2], b.shape[1], "torch.bmm: batch1's last dim ({lhs}) must equal batch2's second "
                                      "dim ({rhs}) (torch: shapes cannot be multiplied)")
    return SymTensor((a.shape[0], a.shape[1], b.shape[2]))


_UNCHECKED_VALUE_LENGTH = (
    "torch's CPU flash-attention kernel (4D query, key and value with one batch size, head count and "
    "head dim) does not check it and reads value by key's length; its math kernel and the meta kernels raise"
)


@function_rule(F.scaled_dot_product_attention, layout=True)
def scaled_dot_product_attention(ctx: Context, query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, *, enable_gqa=False) -> SymTensor:
    """``softmax(q @ kᵀ) @ v``: ``(*B, L, E), (*B, S, E), (*B, S, Ev) -> (*B, L, Ev)``.

    The batch dims broadcast as in the two products; ``q[-1] == k[-1]`` and ``k[-2] == v[-2]``.
    torch's CPU kernel returns a tensor that is contiguous when ``q``, ``k`` and ``v`` are, with
    the strides of a ``(B, L, heads, Ev)`` buffer on a dim of 1 (``loose``); for other inputs its
    layout is not followed (a later ``view`` is refused, ``reshape`` is exact).

    ``attn_mask`` broadcasts to the scores ``(*B, L, S)`` without growing them: at most that
    many dims, each (right-aligned) 1 or the scores' size (torch's CPU kernels add it in place;
    its meta kernel also broadcasts a mask with more dims, which the CPU refuses at every size).
    A 1-D mask for 4-D scores is refused by name (the CPU's flash kernel raises, its math kernel
    broadcasts). With a mask the output's layout is not followed. Grouped query heads
    (``enable_gqa``): key and value take the query's heads (dim -3) where theirs divide them
    (torch's ``repeat_interleave``; other counts are refused), and the layout is not followed.
    A mask with ``is_causal`` goes to torch's meta kernel. ``is_causal`` may be a condition on the
    sizes that the side of a branch decides (transformers' ``is_causal = q_len > 1 and ...``,
    which Python leaves as ``q_len > 1`` itself where it is false).
    """
    q, k, v = (tensor_arg(t, n, ctx) for t, n in ((query, "query"), (key, "key"), (value, "value")))
    is_causal = as_flag(is_causal, "is_causal", ctx)
    if min(q.ndim, k.ndim, v.ndim) < 2:
        ctx.refuse("scaled_dot_product_attention: query, key and value must all be at least 2D, "
                   f"get {q.ndim}D, {k.ndim}D and {v.ndim}D")
    what = "scaled_dot_product_attention"
    if enable_gqa:
        k, v = _grouped_heads(ctx, q, k, v)
    ctx.equal(q.shape[-1], k.shape[-1], f"{what}: query's last dim ({{lhs}}) must equal key's ({{rhs}})")
    ctx.require(k.shape[-2], "==", v.shape[-2], f"{what}: key has {{lhs}} positions and value {{rhs}}; they "
                "must be equal", backend_dependent=_UNCHECKED_VALUE_LENGTH)
    batch = broadcast_shape(ctx, SymTensor(q.shape[:-2]), SymTensor(k.shape[:-2])).shape
    batch = broadcast_shape(ctx, SymTensor(batch), SymTensor(v.shape[:-2])).shape
    shape = (*batch, q.shape[-2], v.shape[-1])
    if attn_mask is not None:
        _attention_mask(ctx, attn_mask, q, (*batch, q.shape[-2], k.shape[-2]), is_causal)
        return SymTensor(shape, contiguous=False)
    inputs = (q, k, v)
    if not enable_gqa and all(t.contiguous and not t.loose and not t.guard for t in inputs) \
            and len({t.ndim for t in inputs}) == 1:
        return SymTensor(shape, loose=True)
    return SymTensor(shape, contiguous=False)


def _grouped_heads(ctx: Context, q: SymTensor, k: SymTensor, v: SymTensor) -> tuple[SymTensor, SymTensor]:
    """``enable_gqa=True``: key and value with the query's heads (dim -3), as torch's
    ``repeat_interleave`` makes them where their heads divide the query's (and as they are where
    all three are equal); torch refuses other head counts, and a 2-D input (it has no dim -3)."""
    if min(q.ndim, k.ndim, v.ndim) < 3:
        least = min(q.ndim, k.ndim, v.ndim)
        ctx.refuse(f"scaled_dot_product_attention: Dimension out of range (expected to be in range of "
                   f"[-{least}, {least - 1}], but got -3): enable_gqa reads the heads at dim -3")
    heads = (q.shape[-3], k.shape[-3], v.shape[-3])
    if not all(h.is_Integer and h > 0 for h in heads):
        ctx.unsupported("scaled_dot_product_attention with enable_gqa=True and a number of heads that depends "
                        "on the input")
    hq, hk, hv = map(int, heads)
    if not (hq == hk == hv or hq % hk == 0 and hq % hv == 0):
        ctx.refuse(f"scaled_dot_product_attention: Number of heads in key and value must divide the number of "
                   f"heads in query: query {hq}, key {hk}, value {hv}")
    return (SymTensor((*k.shape[:-3], hq, *k.shape[-2:]), dtype=k.dtype),
            SymTensor((*v.shape[:-3], hq, *v.shape[-2:]), dtype=v.dtype))


def _labels(ctx: Context, spec: str, what: str) -> list[str]:
    """One operand's labels, ``"..."`` as one item; refuses anything but letters and one ellipsis."""
    out, rest = [], spec
    while rest:
        if rest.startswith("..."):
            if "..." in out:
                ctx.refuse(f"{what}: an operand has more than one ellipsis")
            out.append("...")
            rest = rest[3:]
        elif rest[0].isascii() and rest[0].isalpha():
            out.append(rest[0])
            rest = rest[1:]
        else:
            ctx.refuse(f"{what}: invalid subscript {rest[0]!r} in the equation")
    return out


def _label_order(label: str) -> tuple[int, str]:
    return (0 if label.isupper() else 1, label)  # torch: A-Z before a-z


def _combined(ctx: Context, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return broadcast_shape(ctx, SymTensor((a,)), SymTensor((b,))).shape[0]


@function_rule(torch.einsum, layout=True)
def einsum(ctx: Context, equation, *operands) -> SymTensor:
    """``torch.einsum("bij,bjk->bik", a, b)``: each label's size, broadcast across the operands
    (a 1 broadcasts, as in ``+``); the output has the labels after ``->`` (without it: the
    ellipsis dims, then the labels used once, A-Z before a-z). A label repeated in one operand
    (a diagonal) needs equal sizes. torch computes it by permuting, ``bmm`` and permuting
    back: the output's strides are not followed (a later ``view`` is refused, ``reshape`` exact).
    """
    what = "einsum"
    if not isinstance(equation, str):
        ctx.unsupported("einsum in the sublist format (operand, [dims], ...)")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [tensor_arg(t, "operands", ctx) for t in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    specs = [_labels(ctx, s, what) for s in lhs.split(",")]
    if len(specs) != len(ts):
        ctx.refuse(f"{what}: the equation has {len(specs)} operands, {len(ts)} tensors given")
    sizes: dict[str, sympy.Expr] = {}
    ellipsis: SymTensor | None = None
    counts: dict[str, int] = {}
    for j, (labels, t) in enumerate(zip(specs, ts)):
        named = [x for x in labels if x != "..."]
        if len(named) > t.ndim or ("..." not in labels and len(named) != t.ndim):
            ctx.refuse(f"{what}: operand {j} has {t.ndim} dims, the equation gives it {len(labels)} subscripts")
        k = labels.index("...") if "..." in labels else len(labels)
        span = t.ndim - len(named)
        dims = t.shape[:k] + t.shape[k + span:]
        if "..." in labels:
            part = SymTensor(t.shape[k:k + span])
            ellipsis = part if ellipsis is None else broadcast_shape(ctx, ellipsis, part)
        seen: dict[str, sympy.Expr] = {}
        for x, n in zip(named, dims):
            if x in seen:
                ctx.equal(n, seen[x], f"{what}: subscript {x} is repeated in operand {j}, with sizes {{rhs}} and {{lhs}}")
                continue
            seen[x] = n
            counts[x] = counts.get(x, 0) + 1
            sizes[x] = n if x not in sizes else _combined(ctx, sizes[x], n)
    if arrow:
        out = _labels(ctx, rhs, what)
        named = [x for x in out if x != "..."]
        if len(set(named)) != len(named) or any(x not in sizes for x in named):
            ctx.refuse(f"{what}: output subscripts must be distinct and appear in the inputs, gets {rhs!r}")
        if "..." in out and ellipsis is None and any("..." in s for s in specs) is False:
            ellipsis = SymTensor(())
    else:
        out = (["..."] if ellipsis is not None else []) + sorted((x for x, c in counts.items() if c == 1),
                                                                 key=_label_order)
    shape: list = []
    for x in out:
        shape += list(ellipsis.shape if ellipsis is not None else ()) if x == "..." else [sizes[x]]
    return SymTensor(tuple(shape), contiguous=False)


def _attention_mask(ctx: Context, attn_mask, q: SymTensor, scores: tuple, is_causal) -> None:
    """``attn_mask`` expands to the attention scores ``scores``: see scaled_dot_product_attention."""
    what = "scaled_dot_product_attention"
    if is_causal is not False:
        ctx.unsupported(f"{what} with both attn_mask and is_causal")
    mask = tensor_arg(attn_mask, "attn_mask", ctx)
    if mask.dtype is not None and q.dtype is not None and mask.dtype not in (torch.bool, q.dtype):
        ctx.unsupported(f"{what} with an attn_mask of dtype {mask.dtype} for a {q.dtype} query")
    if mask.ndim > len(scores):
        ctx.refuse(f"{what}: attn_mask has {mask.ndim} dims, more than the scores' {len(scores)} "
                   "(torch's CPU kernels add it in place; its meta kernel would broadcast)")
    if mask.ndim == 1 and len(scores) == 4:
        # the CPU's flash kernel (4-D, one batch size and head count) indexes dim -2 of the mask;
        # its math kernel broadcasts it; the meta kernel always broadcasts
        raise UnsupportedWhereMetaDiffers(ctx.op, ctx.step, ctx.node,
                                          f"{what} with a 1-D attn_mask and 4-D scores (torch's CPU kernels "
                                          "raise or broadcast by backend; its meta kernel broadcasts)")
    _expandable(ctx, mask, scores, what, "attn_mask", "the scores")


def _expandable(ctx: Context, x: SymTensor, target: tuple, what: str, name: str = "input",
                into: str = "the product") -> None:
    """torch expands ``x`` to ``target``: no more dims, each (right-aligned) 1 or the target's."""
    if x.ndim > len(target):
        ctx.refuse(f"{what}: {name} has {x.ndim} dims, more than {into}'s {len(target)}")
    for i, (a, b) in enumerate(zip(reversed(x.shape), reversed(target))):
        if a == b or a == 1:
            continue
        reason = (f"{what}: {name}'s size ({{lhs}}) at dim -{i + 1} must be 1 or {into}'s ({{rhs}}) "
                  f"(torch: the expanded size must match the existing size)")
        ctx.require(a, "==", b, reason, unless=Requirement(a, "==", 1, reason))


def _added(ctx: Context, input, product: SymTensor, what: str, out) -> SymTensor:
    """``beta*input + alpha*product``: ``input`` expands to the product's shape."""
    if out is not None:
        ctx.unsupported(f"{what} with out=")
    _expandable(ctx, tensor_arg(input, "input", ctx), product.shape, what)
    return product


@function_rule(torch.addmm, layout=True)
@method_rule("addmm", layout=True)
def addmm(ctx: Context, input, mat1, mat2, *, beta=1, alpha=1, out=None) -> SymTensor:
    """``beta*input + alpha*(mat1 @ mat2)``: ``(n, k) @ (k, p) -> (n, p)``; ``input`` expands to it."""
    a, b = _of_rank(ctx, mat1, mat2, 2, "torch.mm", None)
    return _added(ctx, input, matmul_shape(ctx, a, b, "torch.mm", (2, "mat2")), "addmm", out)


@function_rule(torch.baddbmm, layout=True)
@method_rule("baddbmm", layout=True)
def baddbmm(ctx: Context, input, batch1, batch2, *, beta=1, alpha=1, out=None) -> SymTensor:
    """``beta*input + alpha*bmm(batch1, batch2)``: ``(B, n, k) @ (B, k, p) -> (B, n, p)``;
    ``input`` expands to it."""
    return _added(ctx, input, bmm(ctx, batch1, batch2), "baddbmm", out)
