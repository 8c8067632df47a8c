"""Matrix products (``@``, ``torch.matmul``, ``mm``, ``bmm``) against real torch: shapes at every
rank pair, broadcasting batch dims, transposed operands, the inner-dim check as a requirement,
and the output layout (a ``view`` of the product runs exactly where torch's does)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan
from symshape.rules import Context, rule_for_function
from symshape.tensor import SymTensor

# operands made from x of shape (N, C, H, W): each is (expression, rank)
OPERANDS = {
    "tokens": lambda x: x.flatten(2).transpose(1, 2),  # (N, HW, C)
    "channels": lambda x: x.flatten(2),  # (N, C, HW)
    "rows": lambda x: x[:, 0],  # (N, H, W)
    "cols": lambda x: x[:, 0].transpose(1, 2),  # (N, W, H)
    "heads": lambda x: x.flatten(2).reshape(x.shape[0], 1, x.shape[1], -1),  # (N, 1, C, HW)
    "matrix": lambda x: x[0, 0],  # (H, W)
    "vector_w": lambda x: x[0, 0, 0],  # (W,)
    "vector_h": lambda x: x[0, 0, :, 0],  # (H,)
    "weight_c": lambda x: torch.ones(x.shape[1], 3),  # (C, 3)
    "weight_w": lambda x: torch.ones(x.shape[-1], 2),  # (W, 2)
}


class Product(nn.Module):
    def __init__(self, a: str, b: str, op: str, after: str):
        super().__init__()
        self.a, self.b, self.op, self.after = a, b, op, after

    def forward(self, x):
        a, b = OPERANDS[self.a](x), OPERANDS[self.b](x)
        y = {"@": lambda: a @ b, "matmul": lambda: torch.matmul(a, b), "method": lambda: a.matmul(b),
             "bmm": lambda: torch.bmm(a, b), "mm": lambda: torch.mm(a, b)}[self.op]()
        if self.after == "view":
            return y.view(-1)
        if self.after == "sum":
            return y.sum()
        return y


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(OPERANDS)), st.sampled_from(sorted(OPERANDS)),
       st.sampled_from(["@", "matmul", "method", "bmm", "mm"]), st.sampled_from(["none", "view", "sum"]),
       st.sampled_from([2, 3]))
def test_products_of_any_ranks_agree_with_torch(a, b, op, after, c):
    """Every pair of operands: shapes, the inner-dim requirement (H == W and the like), batch
    broadcasting and a view of the product, compared with torch on 1..4 squared (refusals too)."""
    model = Product(a, b, op, after)
    try:
        assert_agrees(model, (c, "H", "W"), grid(["H", "W"], [1, 2, 3, 4]))
    except symshape.UnsupportedOperation as refused:
        # the one layout symshape does not follow: a 1D/2D operand folded through a batch's
        # transpose; a view of that product is refused by name, never answered wrongly
        x = torch.ones(1, c, 5, 6)
        ra, rb = OPERANDS[a](x).dim(), OPERANDS[b](x).dim()
        assert after == "view" and ra <= 2 < rb and "view" in str(refused), refused


@pytest.mark.parametrize("a,b", [("tokens", "channels"), ("channels", "tokens"), ("rows", "cols"),
                                 ("heads", "tokens"), ("vector_w", "cols"), ("matrix", "weight_w")])
def test_valid_sizes_of_products_match_a_scan(a, b):
    model = Product(a, b, "@", "view")
    an = symshape.analyze(model, (2, "H", "W"))
    assert members(an.valid_sizes(), ["H", "W"], 7) == scan(model, (2, "H", "W"), ["H", "W"], 7)


def test_a_product_that_needs_h_equal_w_is_solved_on_the_diagonal():
    """(N, H, W) @ (H, W) needs W == H: not a union of boxes (refused by name), exact as square."""
    model = Product("rows", "matrix", "@", "view")
    an = symshape.analyze(model, (2, "H", "W"))
    with pytest.raises(symshape.SymshapeError, match="W == H"):
        an.valid_sizes()
    square = an.valid_sizes(square=True)
    assert {r["H"] for r in square.enumerate(9)} == {h for h in range(1, 10) if (h, h) in scan(
        model, (2, "H", "W"), ["H", "W"], 9)} == set(range(1, 10))


def test_attention_scores_need_no_meta_kernel_and_keep_the_token_count():
    """``q @ k.transpose(-2, -1)`` over ``floor(H/4)*floor(W/4)`` tokens: a hand rule, exact."""

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 8, 4, 4)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)  # (N, T, 8)
            q = t.reshape(t.shape[0], t.shape[1], 2, 4).transpose(1, 2)  # (N, 2, T, 4)
            attn = (q @ q.transpose(-2, -1)).softmax(-1)
            return (attn @ q).transpose(1, 2).reshape(t.shape[0], t.shape[1], 8)

    model = Attention()
    an = symshape.analyze(model, (3, "H", "W"))
    matmuls = [s for s in an.steps if s.rule == "matmul"]
    assert len(matmuls) == 2
    assert str(matmuls[0].output[-1]) == "floor(H/4)*floor(W/4)"
    assert an.verify(sizes=grid(["H", "W"], [3, 4, 9, 17])).ok


def test_strides_of_products_match_torch():
    """Contiguous wherever torch allocates the product; not claimed where torch folds a 2D
    operand through the other's transpose (it may return a transposed result)."""
    ctx = Context("t", "t", "t")
    rule = rule_for_function(torch.matmul).fn
    for ra, rb in itertools.product([1, 2, 3, 4], repeat=2):
        sa = (2, 3, 4, 5)[4 - ra:]
        sb = (2, 3, 5, 6)[4 - rb:] if rb >= 2 else (5,)
        out = rule(ctx, SymTensor(sa), SymTensor(sb))
        real = torch.matmul(torch.empty(sa), torch.empty(sb))
        assert out.shape == tuple(real.shape), (sa, sb)
        if out.contiguous:
            assert real.is_contiguous(), (sa, sb)
        else:
            assert ra <= 2 < rb

