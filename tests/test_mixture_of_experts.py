"""Mixtures of experts: ``torch._grouped_mm`` by its hand rule (torch's CPU checks: its meta
kernel asks for bfloat16), the tokens put back in order through the inverse of a sort's
permutation (``inverse[perm] = arange(n)``), and a whole experts' layer as transformers 5 runs
it (sort by expert, count, grouped products, gate, weights, order restored), against torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees

pytestmark = pytest.mark.skipif(not hasattr(torch, "_grouped_mm"), reason="torch._grouped_mm: torch 2.8 and later")

TOKENS = [{"T": t} for t in (1, 2, 3, 4, 6, 8, 12)]


class GroupedProduct(nn.Module):
    """One ``torch._grouped_mm`` call: ``mode`` picks the operands' ranks; ``columns``: ``mat_b``
    (or ``mat_a`` for ``"a_columns"``) laid out by columns; ``view``: the output viewed flat."""

    def __init__(self, mode="2d3d", k=8, n=8, groups=3, columns=False, dtype=torch.float32,
                 offs_dtype=torch.int32, offs_groups=None, view=False):
        super().__init__()
        self.mode, self.groups, self.columns, self.dtype, self.view = mode, groups, columns, dtype, view
        self.offs_dtype, self.offs_groups = offs_dtype, groups if offs_groups is None else offs_groups
        shape = {"2d3d": (groups, k, n), "3d2d": (k, n), "3d3d": (groups, k, n), "a_columns": (groups, k, n)}[mode]
        self.w = nn.Parameter(torch.randn(*shape[:-2], shape[-1], shape[-2]).transpose(-2, -1) if columns
                              else torch.randn(*shape))

    def forward(self, x):  # x: (N, T, K), or (N, K, T) for "a_columns", or (N, G, T, K) for "3d2d"/"3d3d"
        if self.mode in ("2d3d", "a_columns"):
            a = x[0].t() if self.mode == "a_columns" else x.reshape(-1, x.shape[-1])
        else:
            a = x[0]
        offs = None if self.mode == "3d3d" else torch.full((self.offs_groups,), a.shape[-2], dtype=self.offs_dtype)
        out = torch._grouped_mm(a.to(self.dtype), self.w.to(self.dtype), offs=offs)
        return out.view(-1) if self.view else out


def _input(config) -> tuple:
    k = config.get("k", 8)
    mode = config.get("mode", "2d3d")
    if mode == "a_columns":
        return k, "T"
    if mode in ("3d2d", "3d3d"):
        return config.get("groups", 3), "T", k
    return "T", k


@settings(max_examples=25, deadline=None)
@given(st.fixed_dictionaries({
    "mode": st.sampled_from(["2d3d", "3d2d", "3d3d", "a_columns"]), "k": st.sampled_from([8, 6, 16]),
    "n": st.sampled_from([8, 6, 4]), "columns": st.booleans(), "dtype": st.sampled_from([torch.float32, torch.bfloat16]),
    "offs_dtype": st.sampled_from([torch.int32, torch.int32, torch.int64]), "view": st.booleans()}))
def test_grouped_products_agree_with_torch(config):
    assert_agrees(GroupedProduct(**config), _input(config), TOKENS)


def test_the_layout_checks_and_the_padded_rows():
    # a's columns: its stride T must be a multiple of 4 float32 elements
    a = symshape.analyze(GroupedProduct("a_columns"), (8, "T"))
    assert not a.refuses(T=8) and a.refuses(T=6)
    # rows of 6 float32 padded to 8: flat only where there is one row
    a = symshape.analyze(GroupedProduct(n=6, columns=True, view=True), ("T", 8))
    assert not a.refuses(T=1) and a.refuses(T=2)
    assert assert_agrees(GroupedProduct(n=6, columns=True, view=True), ("T", 8), TOKENS) == 1
    # offsets of int64, or one group too many: torch refuses every size
    for wrong in (dict(offs_dtype=torch.int64), dict(offs_groups=4)):
        with pytest.raises(symshape.InvalidInputSize):
            symshape.analyze(GroupedProduct(**wrong), ("T", 8))


class Experts(nn.Module):
    """A mixture of experts' layer as transformers 5 computes it: each token's ``top_k`` experts,
    the (token, expert) pairs sorted by expert, one grouped product per projection, the outputs
    put back in order through the inverse permutation and summed per token."""

    def __init__(self, hidden=8, inner=12, experts=4, top_k=2, restore="inverse"):
        super().__init__()
        self.top_k, self.experts, self.restore = top_k, experts, restore
        self.router = nn.Linear(hidden, experts, bias=False)
        self.up = nn.Parameter(torch.randn(experts, 2 * inner, hidden) / 4)
        self.down = nn.Parameter(torch.randn(experts, hidden, inner) / 4)

    def forward(self, x):
        tokens = x.reshape(-1, x.shape[-1])
        weights, chosen = torch.topk(F.softmax(self.router(tokens), dim=-1), self.top_k, dim=-1)
        ids = chosen.reshape(-1)
        ids_sorted, perm = torch.sort(ids)
        picked = tokens[perm // self.top_k]
        counts = torch.histc(ids_sorted.float(), bins=self.experts, min=0, max=self.experts - 1)
        offs = torch.cumsum(counts, dim=0, dtype=torch.int32)
        # (each operand cast to the weights' dtype, as transformers does: its stride's 16 bytes depend on it)
        gate, up = torch._grouped_mm(picked.to(self.up.dtype), self.up.transpose(-2, -1), offs=offs).chunk(2, dim=-1)
        out = torch._grouped_mm((F.silu(gate) * up).to(self.down.dtype), self.down.transpose(-2, -1), offs=offs)
        out = out * weights.reshape(-1)[perm].unsqueeze(-1)
        if self.restore == "inverse":
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(perm.size(0), device=x.device)
        elif self.restore == "partial":  # all but the last position written: the rest is garbage
            inverse = torch.empty_like(perm)
            inverse[perm[:-1]] = torch.arange(perm.size(0) - 1, device=x.device)
        else:  # the inverse permutation as argsort computes it
            inverse = torch.argsort(perm)
        out = out[inverse]
        return out.view(tokens.shape[0], self.top_k, -1).sum(dim=1).view(x.shape)


@pytest.mark.parametrize("restore", ["inverse", "argsort"])
def test_an_experts_layer_agrees_with_torch(restore):
    assert assert_agrees(Experts(restore=restore), ("T", 8), TOKENS) == len(TOKENS)
    a = symshape.analyze(Experts(restore=restore), ("T", 8))
    assert a.valid_sizes().summary() == "any T"
    assert [str(d) for d in a.output_shape] == ["N", "T", "8"]


def test_a_partial_inverse_is_not_an_index_symshape_knows():
    # one entry of the inverse is never written: its value is whatever empty_like left there
    with pytest.raises(symshape.UnsupportedOperation, match="indices symshape does not know"):
        symshape.analyze(Experts(restore="partial"), ("T", 8))


class Inverse(nn.Module):
    """``inverse[perm] = values`` for a sort's permutation of a 1-D tensor, then an index."""

    def __init__(self, values="arange", change=None):
        super().__init__()
        self.values, self.change = values, change

    def forward(self, x):
        flat = x.reshape(-1)
        _, perm = torch.sort(flat)
        if self.change == "shifted":
            perm = perm + 0  # a new tensor: not known to be a permutation
        elif self.change == "written":
            perm[0] = 0  # written into: no longer known to be one
        n = perm.size(0)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(n) + (n if self.values == "past" else 0)
        return flat[inverse]


def test_what_a_permutation_writes_is_known_and_nothing_else():
    assert assert_agrees(Inverse(), ("T",), TOKENS) == len(TOKENS)
    # entries n ... 2n - 1 index a tensor of n: torch refuses every size
    assert assert_agrees(Inverse(values="past"), ("T",), TOKENS) == 0
    for change in ("shifted", "written"):
        with pytest.raises(symshape.UnsupportedOperation, match="indices symshape does not know"):
            symshape.analyze(Inverse(change=change), ("T",))


def test_on_the_meta_device_torchs_own_kernel_refuses_and_the_error_says_so():
    with torch.device("meta"):
        model = Experts()
    with pytest.raises(symshape.TraceMismatch, match="on the meta device raised RuntimeError: .*BF16"):
        symshape.analyze(model, ("T", 8))


def test_operands_of_a_dtype_the_kernel_does_not_take_are_refused_at_every_size():
    with pytest.raises(symshape.InvalidInputSize, match="Expected mat_a to be Float32, BFloat16 or Float16"):
        symshape.analyze(GroupedProduct(dtype=torch.float64, k=6), ("T", 6))
