"""Sequence layers: Embedding, RNN/LSTM/GRU, MultiheadAttention, TransformerEncoderLayer.

    Embedding:           out = (*in, embedding_dim)
    RNN/GRU/LSTM:        out = (L, N, D*H_out) (batch_first: (N, L, D*H_out)), h_n = (D*num_layers, N, H_out);
                         the input's last dim must be input_size (D = 2 if bidirectional)
    MultiheadAttention:  out = query's shape; weights (N, L, S), or (N, heads, L, S) unaveraged
    TransformerEncoderLayer: out = in; the last dim must be d_model
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tensor import SymTensor
from .common import as_bool, as_int, tensor_arg
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


@module_rule(nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
def transformer_layer(ctx: Context, module: nn.Module, src, *args, **kwargs) -> SymTensor:
    """``out = in``; the last dim must be d_model (the self-attention's embed_dim)."""
    x = tensor_arg(src, "src", ctx)
    if x.ndim not in (2, 3):
        ctx.refuse(f"{type(module).__name__} expects a 2D or 3D input, gets {x.ndim}D {x}")
    ctx.fixes(x.shape[-1], module.self_attn.embed_dim, "d_model", "d_model is {rhs}, the input's last dim is {lhs}",
              always=True)
    return x.with_shape(x.shape, contiguous=True)
