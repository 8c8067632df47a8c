"""Sequence layers: Embedding, RNN/LSTM/GRU, MultiheadAttention, TransformerEncoderLayer.

    Embedding:           out = (*in, embedding_dim)
    RNN/GRU/LSTM:        out = (L, N, D*H_out) (batch_first: (N, L, D*H_out)), h_n = (D*num_layers, N, H_out);
                         the input's last dim must be input_size (D = 2 if bidirectional)
    MultiheadAttention:  out = query's shape; weights (N, L, S), or (N, heads, L, S) unaveraged
    F.multi_head_attention_forward: out = (L, N, out_proj rows); weights as MultiheadAttention's;
                         attn_mask (L, S) or (N*heads, L, S), key_padding_mask (N, S)
    TransformerEncoderLayer: out = in; the last dim must be d_model
"""

from __future__ import annotations

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tensor import SymTensor
from .common import as_bool, as_flag, as_int, tensor_arg
from .layout import indexes
from .registry import Context, function_rule, module_rule


@module_rule(nn.Embedding)
def embedding(ctx: Context, module: nn.Embedding, x, *args, **kwargs) -> SymTensor:
    """``out = (*in, embedding_dim)``. Each index must lie in ``0 <= i < num_embeddings``: checked
    where symshape knows something of the indices (GPT's ``wpe(torch.arange(T))``: ``T <=
    block_size``; see :func:`embedding_function`); token ids are data, not checked."""
    x = tensor_arg(x, "input", ctx)
    indexes(ctx, x, as_int(module.num_embeddings, "num_embeddings", ctx), "an embedding", _OUT_OF_RANGE)
    return SymTensor((*x.shape, module.embedding_dim))


@function_rule(F.embedding)
def embedding_function(ctx: Context, input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
                       scale_grad_by_freq=False, sparse=False) -> SymTensor:
    """``out = (*input, weight.size(1))`` for a 2-D ``weight``. The indices must be int32 or
    int64, and each must lie in ``0 <= i < weight.size(0)``: checked where symshape knows their
    entries, their exact extremes (``torch.arange(T)``) or a bound on them (the indices a sort
    returns: past the size, whether one reaches it is data); token ids are data, not checked
    (torch's CPU kernel raises ``index out of range in self``; no meta kernel checks values)."""
    x = tensor_arg(input, "input", ctx)
    w = tensor_arg(weight, "weight", ctx)
    if w.ndim != 2:
        ctx.refuse("'weight' must be 2-D")
    if x.dtype is not None and x.dtype not in (torch.int64, torch.int32):
        ctx.refuse(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, "
                   f"Int; but got {x.dtype} instead (while checking arguments for embedding)")
    indexes(ctx, x, w.shape[0], "an embedding", _OUT_OF_RANGE)
    return SymTensor((*x.shape, w.shape[1]), dtype=w.dtype)


#: torch's words for an index past an embedding's rows ({i}: the index, {lhs}: the rows)
_OUT_OF_RANGE = "index out of range in self: index {i} into {lhs} embeddings"


def _rnn_layout(ctx: Context, x: SymTensor, batch_first: bool, layer: str):
    if x.ndim not in (2, 3):
        ctx.refuse(f"{layer} expects a 2D (unbatched) or 3D (batched) input, gets {x.ndim}D {x}")
    if x.ndim == 2:
        return None, x.shape[0]
    return (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])


@module_rule(nn.RNN, nn.GRU, nn.LSTM)
def rnn(ctx: Context, module: nn.RNNBase, x, hx=None):
    """``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``); the input's last dim must be input_size."""
    x = tensor_arg(x, "input", ctx)
    layer = type(module).__name__
    batch_first = as_bool(module.batch_first, "batch_first", ctx)
    batch, length = _rnn_layout(ctx, x, batch_first, layer)
    ctx.fixes(x.shape[-1], as_int(module.input_size, "input_size", ctx), "input_size",
              "input_size is {rhs}, the input's last dim is {lhs}", always=True)
    d = 2 if as_bool(module.bidirectional, "bidirectional", ctx) else 1
    hidden = as_int(module.hidden_size, "hidden_size", ctx)
    proj = as_int(getattr(module, "proj_size", 0), "proj_size", ctx)
    out_size = proj if proj else hidden
    layers = as_int(module.num_layers, "num_layers", ctx)
    if batch is None:
        output = SymTensor((length, d * out_size))
        h = SymTensor((d * layers, out_size))
        c = SymTensor((d * layers, hidden))
    else:
        output = SymTensor((batch, length, d * out_size) if batch_first else (length, batch, d * out_size))
        h = SymTensor((d * layers, batch, out_size))
        c = SymTensor((d * layers, batch, hidden))
    if hx is not None:
        states = hx if isinstance(hx, (tuple, list)) else (hx,)
        for got, want in zip(states, (h, c)):
            got = tensor_arg(got, "hx", ctx)
            if got.ndim != want.ndim:
                ctx.refuse(f"{layer}: hidden state must be {want.ndim}D, gets {got.ndim}D")
            for i, (a, b) in enumerate(zip(got.shape, want.shape)):
                ctx.equal(a, b, f"hidden state size {{lhs}} at dim {i}, expected {{rhs}}")
    if isinstance(module, nn.LSTM):
        return output, (h, c)
    return output, h


@module_rule(nn.MultiheadAttention)
def multihead_attention(ctx: Context, module: nn.MultiheadAttention, query, key, value, key_padding_mask=None,
                        need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False):
    """``(out, weights)``: ``out`` has the query's shape with ``embed_dim`` last; ``weights`` is
    ``(N, L, S)`` (``(N, heads, L, S)`` unaveraged), or None without ``need_weights``."""
    q = tensor_arg(query, "query", ctx)
    k = tensor_arg(key, "key", ctx)
    v = tensor_arg(value, "value", ctx)
    if q.ndim not in (2, 3) or k.ndim != q.ndim or v.ndim != q.ndim:
        ctx.refuse(f"MultiheadAttention expects query, key and value with 2 or 3 dims alike, gets {q}, {k}, {v}")
    ctx.fixes(q.shape[-1], module.embed_dim, "embed_dim", "was expecting embedding dimension of {rhs}, but got {lhs}",
              always=True)
    ctx.fixes(k.shape[-1], module.kdim, "kdim", "key's last dim must be kdim={rhs}, gets {lhs}", input=1)
    ctx.fixes(v.shape[-1], module.vdim, "vdim", "value's last dim must be vdim={rhs}, gets {lhs}", input=2)
    batched = q.ndim == 3
    seq = 1 if module.batch_first and batched else 0
    for i in range(k.ndim - 1):
        ctx.equal(k.shape[i], v.shape[i], f"key shape {{lhs}} does not match value shape {{rhs}} at dim {i}")
    if batched:
        b = 0 if module.batch_first else 1
        ctx.equal(k.shape[b], q.shape[b], "key batch size {lhs} does not match query batch size {rhs}")
    out = q.with_shape((*q.shape[:-1], module.embed_dim), contiguous=True)
    if not need_weights:
        return out, None
    length, source = q.shape[seq], k.shape[seq]
    heads = () if average_attn_weights else (module.num_heads,)
    if batched:
        n = q.shape[0] if module.batch_first else q.shape[1]
        weights = SymTensor((n, *heads, length, source))
    else:
        weights = SymTensor((*heads, length, source))
    return out, weights


@function_rule(F.multi_head_attention_forward, layout=True)
def multi_head_attention_forward(ctx: Context, query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                                 out_proj_bias, training=True, key_padding_mask=None, need_weights=True,
                                 attn_mask=None, use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                                 average_attn_weights=True, is_causal=False):
    """``(out, weights)`` for a query ``(L, N, E)`` and key, value ``(S, N, ·)`` (``(L, E)``,
    ``(S, ·)`` unbatched): ``out = (L, N, out_proj_weight.size(0))``; ``weights = (N, L, S)``
    (``(N, heads, L, S)`` unaveraged, None without ``need_weights``). torch's checks, in its
    order: ranks; ``E == embed_dim_to_check`` and divisible by the heads; key and value alike
    in length and batch (in every dim with packed weights); each projection's input width;
    ``attn_mask`` ``(L, S)`` or ``(N*heads, L, S)`` (unbatched 3-D: ``(heads, L, S)``);
    ``key_padding_mask`` ``(N, S)``. Static keys, bias_k/bias_v, add_zero_attn and is_causal
    are left to torch's meta kernels."""
    q, k, v = (tensor_arg(t, name, ctx) for t, name in ((query, "query"), (key, "key"), (value, "value")))
    heads, embed = as_int(num_heads, "num_heads", ctx), as_int(embed_dim_to_check, "embed_dim_to_check", ctx)
    masks = {"key_padding_mask": key_padding_mask, "attn_mask": attn_mask}
    for name, mask in masks.items():
        if mask is not None:
            tensor_arg(mask, name, ctx)
    if static_k is not None or static_v is not None or bias_k is not None or bias_v is not None \
            or as_flag(add_zero_attn, "add_zero_attn", ctx) or as_flag(is_causal, "is_causal", ctx):
        ctx.unsupported("static keys, bias_k/bias_v, add_zero_attn or is_causal")
    batched = _mha_ranks(ctx, q, k, v, key_padding_mask, attn_mask, heads)
    if not batched:
        q, k, v = (SymTensor((t.shape[0], 1, *t.shape[1:]), dtype=t.dtype) for t in (q, k, v))
    length, batch, width = q.shape
    source = k.shape[0]
    for name, mask in masks.items():
        if mask is not None and mask.dtype is not None and mask.dtype != torch.bool and not mask.dtype.is_floating_point:
            ctx.never(f"only bool and floating types of {name} are supported")
    ctx.equal(width, embed, "was expecting embedding dimension of {rhs}, but got {lhs}")
    if embed % heads:
        ctx.never(f"embed_dim {embed} not divisible by num_heads {heads}")
    for i in range(2 if as_flag(use_separate_proj_weight, "use_separate_proj_weight", ctx) else 3):
        ctx.equal(k.shape[i], v.shape[i], f"key shape {{lhs}} does not match value shape {{rhs}} at dim {i}")
    _mha_projections(ctx, k, v, embed, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                     (q_proj_weight, k_proj_weight, v_proj_weight))
    if attn_mask is not None:
        want = (length, source) if attn_mask.ndim == 2 else (batch * heads, length, source)
        for got, size in zip(attn_mask.shape, want):
            ctx.equal(got, size, f"the shape of the {attn_mask.ndim}D attn_mask must be {want}, gets {{lhs}} for {{rhs}}")
    # (the key's view by heads keeps its element count: another batch passes where it is empty)
    empty = 1 if ctx.proves(sympy.Ge(source, 1, evaluate=False)) else source
    for t, name in ((k, "key"), (v, "value")):
        ctx.equal(t.shape[1] * empty, batch * empty, f"the {name}'s batch is not the query's ({{lhs}} for {{rhs}} "
                  "elements of its view by heads)" if empty != 1 else f"the {name}'s batch {{lhs}} is not the "
                  "query's {rhs} (its view by heads fails)")
    if key_padding_mask is not None:
        kpm = key_padding_mask.shape if batched else (1, *key_padding_mask.shape)
        ctx.equal(kpm[0], batch, "Expected key_padded_mask.shape[0] to be {rhs}, but got {lhs}")
        ctx.equal(kpm[1], source, "Expected key_padded_mask.shape[1] to be {rhs}, but got {lhs}")
    out_proj = tensor_arg(out_proj_weight, "out_proj_weight", ctx)
    out_bias = None if out_proj_bias is None else tensor_arg(out_proj_bias, "out_proj_bias", ctx)
    if out_proj.ndim != 2 or out_proj.shape[1] != embed or out_bias is not None and out_bias.shape != out_proj.shape[:1]:
        ctx.unsupported(f"out_proj_weight of shape {out_proj.shape} for embed_dim {embed}")
    out = SymTensor((length, batch, out_proj.shape[0]) if batched else (length, out_proj.shape[0]), dtype=q.dtype)
    if not as_flag(need_weights, "need_weights", ctx):
        return out, None
    dims = (length, source) if as_flag(average_attn_weights, "average_attn_weights", ctx) else (heads, length, source)
    return out, SymTensor((batch, *dims) if batched else dims, dtype=q.dtype)


def _mha_ranks(ctx: Context, q, k, v, key_padding_mask, attn_mask, heads: int) -> bool:
    """torch's ``_mha_shape_check``: whether the call is batched (a 3-D query)."""
    if q.ndim not in (2, 3):
        ctx.refuse(f"query should be unbatched 2D or batched 3D tensor but received {q.ndim}-D query tensor")
    batched = q.ndim == 3
    if k.ndim != q.ndim or v.ndim != q.ndim:
        ctx.refuse(f"For {'batched (3-D)' if batched else 'unbatched (2-D)'} `query`, expected `key` and `value` "
                   f"to be {q.ndim}-D but found {k.ndim}-D and {v.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != q.ndim - 1:
        ctx.refuse(f"expected `key_padding_mask` to be `None` or {q.ndim - 1}-D but found "
                   f"{key_padding_mask.ndim}-D tensor instead")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        ctx.refuse(f"expected `attn_mask` to be `None`, 2-D or 3-D but found {attn_mask.ndim}-D tensor instead")
    if attn_mask is not None and not batched and attn_mask.ndim == 3:
        for got, size in zip(attn_mask.shape, (heads, q.shape[0], k.shape[0])):
            ctx.equal(got, size, "Expected `attn_mask` shape to be (heads, L, S): gets {lhs} for {rhs}")
    return batched


def _mha_projections(ctx: Context, k, v, embed: int, in_proj_weight, in_proj_bias, separate, weights) -> None:
    """The input widths the projections take: ``embed`` for packed weights ``(3E, E)``, the key's
    and value's own (``kdim``, ``vdim``) for separate ones ``(E, kdim)``; weights and biases of
    other shapes are left to torch's meta kernels."""
    bias = None if in_proj_bias is None else tensor_arg(in_proj_bias, "in_proj_bias", ctx)
    if bias is not None and bias.shape != (3 * embed,):
        ctx.unsupported(f"in_proj_bias of shape {bias.shape} for embed_dim {embed}")
    if not as_flag(separate, "use_separate_proj_weight", ctx):
        w = tensor_arg(in_proj_weight, "in_proj_weight", ctx)
        if w.shape != (3 * embed, embed):
            ctx.unsupported(f"in_proj_weight of shape {w.shape} for embed_dim {embed}")
        widths = (embed, embed)
    else:
        wq, wk, wv = (tensor_arg(w, name, ctx) for w, name in zip(weights, ("q_proj_weight", "k_proj_weight",
                                                                             "v_proj_weight")))
        if wq.shape != (embed, embed) or wk.ndim != 2 or wv.ndim != 2 or wk.shape[0] != embed or wv.shape[0] != embed:
            ctx.unsupported(f"projection weights of shapes {wq.shape}, {wk.shape}, {wv.shape} for embed_dim {embed}")
        widths = (wk.shape[1], wv.shape[1])
    for t, width, name in ((k, widths[0], "key"), (v, widths[1], "value")):
        ctx.equal(t.shape[-1], width, f"the {name}'s last dim {{lhs}} is not its projection's width {{rhs}}")


@module_rule(nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
def transformer_layer(ctx: Context, module: nn.Module, src, *args, **kwargs) -> SymTensor:
    """``out = in``; the last dim must be d_model (the self-attention's embed_dim)."""
    x = tensor_arg(src, "src", ctx)
    if x.ndim not in (2, 3):
        ctx.refuse(f"{type(module).__name__} expects a 2D or 3D input, gets {x.ndim}D {x}")
    ctx.fixes(x.shape[-1], module.self_attn.embed_dim, "d_model", "d_model is {rhs}, the input's last dim is {lhs}",
              always=True)
    return x.with_shape(x.shape, contiguous=True)
