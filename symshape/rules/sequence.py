"""Sequence layers: Embedding, RNN/LSTM/GRU, MultiheadAttention, TransformerEncoderLayer.

    Embedding:           out = (*in, embedding_dim)
    RNN/GRU/LSTM:        out = (L, N, D*H_out) (batch_first: (N, L, D*H_out)), h_n = (D*num_layers, N, H_out);
                         the input's last dim must be input_size (D = 2 if bidirectional)
    MultiheadAttention:  out = query's shape; weights (N, L, S), or (N, heads, L, S) unaveraged
    TransformerEncoderLayer: out = in; the last dim must be d_model
"""

from __future__ import annotations

import torch.nn as nn

from ..tensor import SymTensor
from .common import as_bool, as_int, tensor_arg
from .registry import Context, module_rule


@module_rule(nn.Embedding)
def embedding(ctx: Context, module: nn.Embedding, x, *args, **kwargs) -> SymTensor:
    """``out = (*in, embedding_dim)`` (the indices' values are not sizes: they are not checked)."""
    x = tensor_arg(x, "input", ctx)
    return SymTensor((*x.shape, module.embedding_dim))


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
