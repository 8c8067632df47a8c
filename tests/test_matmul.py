"""Matrix products (``@``, ``torch.matmul``, ``mm``, ``bmm``) against real torch: shapes at every
rank pair, broadcasting batch dims, transposed operands, the inner-dim check as a requirement,
and the output layout (a ``view`` of the product runs exactly where torch's does)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
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
    """(N, H, W) @ (H, W) needs W == H: a line (W tied to H), exact, and as square."""
    model = Product("rows", "matrix", "@", "view")
    an = symshape.analyze(model, (2, "H", "W"))
    truth = scan(model, (2, "H", "W"), ["H", "W"], 9)
    valid = an.valid_sizes()
    assert str(valid) == "W = H"
    assert {(r["H"], r["W"]) for r in valid.enumerate(9)} == truth
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



# -- attention ----------------------------------------------------------------------------------

# q, k, v made from x of shape (N, C, H, W): contiguous, strided, of another rank, made by a factory
ATTENTION_OPERANDS = {
    "x": lambda x: x,  # (N, C, H, W)
    "transposed": lambda x: x.transpose(2, 3),  # (N, C, W, H), strided
    "copied": lambda x: x.transpose(2, 3).contiguous(),  # (N, C, W, H)
    "two_rows": lambda x: x[..., :2, :],  # (N, C, min(H, 2), W), strided unless H <= 2
    "one_channel": lambda x: x[:, :1],  # (N, 1, H, W), broadcast over C
    "rank3": lambda x: x[:, 0],  # (N, H, W)
    "tokens": lambda x: x.flatten(2).transpose(1, 2).unsqueeze(1),  # (N, 1, HW, C)
    "square": lambda x: torch.ones(x.shape[-1], x.shape[-1]),  # (W, W)
}


class Attend(nn.Module):
    def __init__(self, q: str, k: str, v: str, causal: bool, after: str):
        super().__init__()
        self.q, self.k, self.v, self.causal, self.after = q, k, v, causal, after

    def forward(self, x):
        q, k, v = (ATTENTION_OPERANDS[n](x) for n in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return {"view": lambda: y.view(-1), "reshape": lambda: y.reshape(-1), "none": lambda: y}[self.after]()


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(ATTENTION_OPERANDS)), st.sampled_from(sorted(ATTENTION_OPERANDS)),
       st.sampled_from(sorted(ATTENTION_OPERANDS)), st.booleans(), st.sampled_from(["none", "reshape"]))
def test_attention_of_any_operands_agrees_with_torch(q, k, v, causal, after):
    """Shapes, broadcasting and the two dim checks, on 1..3 squared at batch 1 and at batch 2
    (refusals too). (A view of the output: the test after this one.)"""
    _attention_agrees(q, k, v, causal, after)


@pytest.mark.parametrize("q,k,v", [("x", "x", "x"), ("x", "copied", "copied"), ("tokens", "tokens", "tokens"),
                                   ("x", "transposed", "copied"), ("one_channel", "x", "x"),
                                   ("rank3", "square", "rank3")])
def test_a_view_of_attention_follows_torchs_layout_or_is_refused_by_name(q, k, v):
    """Contiguous operands of one rank: a contiguous output (a view runs exactly where torch's
    does); strided or broadcast ones: the layout is not followed, a view is refused by name or
    decided by torch's own semantics."""
    _attention_agrees(q, k, v, False, "view")


def _attention_agrees(q, k, v, causal, after):
    model = Attend(q, k, v, causal, after)
    try:
        assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))
        an = symshape.analyze(model, (3, "H", "W"))
    except symshape.InvalidInputSize:
        return  # torch refuses every size: checked by assert_agrees
    except symshape.UnsupportedOperation as refused:
        # the layout symshape does not follow (strided operands): a view of it is refused by name
        assert after == "view" and "view" in str(refused), refused
        return
    report = an.verify(sizes=[{"N": 2, "H": h, "W": w} for h, w in ((2, 3), (3, 3), (1, 2))])
    assert report.ok, report


def test_attention_has_a_hand_rule_and_states_its_checks():
    """timm's attention: q, k, v unbound from a permuted projection (strided), the output
    transposed and reshaped back to tokens. No meta kernel; the two checks name their dims."""
    model = Attend("x", "transposed", "copied", False, "reshape")
    an = symshape.analyze(model, (3, "H", "W"))
    (step,) = [s for s in an.steps if "scaled_dot_product_attention" in s.op]
    assert step.rule == "scaled_dot_product_attention"
    assert {str(r.lhs) for r in step.requirements} <= {"W", "H"}
    assert an.at(H=5, W=5).output_shape == (3 * 5 * 5,)
    with pytest.raises(symshape.InvalidInputSize, match="query's last dim"):
        an.at(H=3, W=4)
    assert an.verify(sizes=grid(["H", "W"], [1, 4, 5])).ok


# masks for q = k = v = x of shape (N, C, H, W): the scores are (N, C, H, H)
MASKS = {
    "causal": lambda x: torch.ones(x.shape[-2], x.shape[-2], dtype=torch.bool).tril(),
    "keys": lambda x: torch.zeros(1, x.shape[-2]),
    "rows": lambda x: torch.zeros(x.shape[-2], 1, dtype=torch.bool),
    "heads": lambda x: torch.zeros(x.shape[1], 1, 1),
    "everything": lambda x: torch.zeros(x.shape[0], x.shape[1], x.shape[2], x.shape[2]),
    "widths": lambda x: torch.zeros(x.shape[-2], x.shape[-1]),  # needs W == H, or W == 1
    "fixed": lambda x: torch.zeros(3, 3),  # needs H == 3
    "rank1": lambda x: torch.zeros(x.shape[-2]),  # the CPU raises, torch's meta kernel does not
    "rank5": lambda x: torch.zeros(1, 1, 1, x.shape[-2], x.shape[-2]),  # likewise
}


class Masked(nn.Module):
    def __init__(self, mask: str, tokens: str = "x"):
        super().__init__()
        self.mask, self.tokens = mask, tokens

    def forward(self, x):
        q = x if self.tokens == "x" else x[:, 0]  # (N, C, H, W) or (N, H, W)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=MASKS[self.mask](x)).reshape(-1)


@pytest.mark.parametrize("mask,tokens", [(m, "x") for m in sorted(MASKS)] + [("rank1", "rank3"), ("causal", "rank3")])
def test_attention_with_a_mask_agrees_with_torch(mask, tokens):
    """The mask expands to the scores (1 or their size, right-aligned, no more dims): a hand
    rule, on a grid with refusals, at batch 1 and 2. A mask with more dims than the scores is
    refused at every size, as the CPU does (torch's meta kernel broadcasts it); a 1-D mask for
    4-D scores is refused by name (the CPU's flash kernel raises, its math kernel broadcasts)."""
    model = Masked(mask, tokens)
    if mask == "rank1" and tokens == "x":
        with pytest.raises(symshape.UnsupportedWhereMetaDiffers, match="1-D attn_mask"):
            symshape.analyze(model, (3, "H", "W"))
        with pytest.raises(IndexError):
            model(torch.rand(1, 3, 3, 3))
        return
    assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 4]))
    if mask == "rank5":
        with pytest.raises(symshape.InvalidInputSize, match="more than the scores"):
            symshape.analyze(model, (3, "H", "W"))
        return
    an = symshape.analyze(model, (3, "H", "W"))
    (step,) = [s for s in an.steps if "scaled_dot_product_attention" in s.op]
    assert step.rule == "scaled_dot_product_attention"
    assert an.verify(sizes=[{"N": 2, "H": h, "W": w} for h, w in ((3, 3), (2, 1), (1, 2), (3, 4))]).ok


class Grouped(nn.Module):
    """Grouped query heads: q, k, v of ``hq``, ``hk``, ``hv`` heads from x (N, 4, H, W), as
    Llama's attention calls it (``enable_gqa=True``); ``rank2``: one head's (H, W) each."""

    def __init__(self, hq: int, hk: int, hv: int, causal: bool, mask: bool, rank2: bool = False):
        super().__init__()
        self.heads, self.causal, self.mask, self.rank2 = (hq, hk, hv), causal, mask, rank2

    def forward(self, x):
        q, k, v = (x[:, :h] for h in self.heads)
        if self.rank2:
            q, k, v = q[0, 0], k[0, 0], v[0, 0]
        mask = torch.ones(x.shape[2], x.shape[2], dtype=torch.bool).tril() if self.mask else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal, enable_gqa=True)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.booleans(), st.booleans())
def test_attention_with_grouped_heads_agrees_with_torch(hq, hk, hv, causal, mask):
    """``enable_gqa=True``: key and value take the query's heads where theirs divide them (all
    three equal: as they are); other head counts are refused at every size, as torch does. A
    hand rule (it was torch's meta kernel, which Llama's ``is_causal``, a condition on the
    sizes, could not be given)."""
    model = Grouped(hq, hk, hv, causal and not mask, mask)  # (a mask with is_causal: torch's meta kernel)
    runs = hq == hk == hv or (hq % hk == 0 and hq % hv == 0)
    if not runs:
        with pytest.raises(symshape.InvalidInputSize, match="Number of heads in key and value"):
            symshape.analyze(model, (4, "H", "W"))
        with pytest.raises(RuntimeError, match="Number of heads in key and value"):
            model(torch.rand(1, 4, 3, 3))
        return
    an = symshape.analyze(model, (4, "H", "W"))
    (step,) = [s for s in an.steps if "scaled_dot_product_attention" in s.op]
    assert step.rule == "scaled_dot_product_attention"
    assert an.at(H=3, W=5).output_shape == (1, hq, 3, 5)
    assert_agrees(model, (4, "H", "W"), grid(["H", "W"], [1, 3]))
    assert an.verify(sizes=[{"N": 2, "H": 2, "W": 3}]).ok


def test_attention_with_grouped_heads_needs_a_dim_of_heads():
    """2-D operands have no dim -3 to read the heads from: torch raises at every size."""
    model = Grouped(1, 1, 1, False, False, rank2=True)
    with pytest.raises(IndexError, match="Dimension out of range"):
        model(torch.rand(1, 4, 3, 3))
    with pytest.raises(symshape.InvalidInputSize, match="Dimension out of range"):
        symshape.analyze(model, (4, "H", "W"))


def test_a_grouped_causal_attention_on_a_side_of_a_branch_agrees_with_torch():
    """transformers' sdpa: ``is_causal = q.shape[2] > 1 and ...``, a condition on the length that
    each side of the branch decides, with Llama's grouped heads."""

    class Llama(nn.Module):
        def forward(self, x):  # (N, 4, T, 8)
            q, k, v = x, x[:, :2], x[:, :1]
            is_causal = q.shape[2] > 1 and getattr(self, "is_causal", True)
            return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, enable_gqa=True)

    an = symshape.analyze(Llama(), (4, "T", 8))
    assert an.valid_sizes().summary() == "any T"
    assert_agrees(Llama(), (4, "T", 8), grid(["T"], [1, 2, 5]))


# -- einsum -------------------------------------------------------------------------------------

EINSUMS = {  # equation and operands made from x of shape (N, C, H, W)
    "channel_gram": ("nchw,nkhw->nck", lambda x: (x, x)),
    "to_channels_last": ("nchw->nhwc", lambda x: (x,)),
    "weighted_channels": ("nchw,c->nhw", lambda x: (x, torch.ones(x.shape[1]))),
    "ellipsis_product": ("...hw,wk->...hk", lambda x: (x, torch.ones(x.shape[-1], 2))),
    "implicit_bmm": ("bij,bjk", lambda x: (x[:, 0], x[:, 0].transpose(1, 2))),
    "diagonal": ("ii->i", lambda x: (x[0, 0],)),
    "full_contraction": ("nchw,nchw->", lambda x: (x, x)),
    "implicit_upper_first": ("ab,Ab", lambda x: (x[0, 0], torch.ones(4, x.shape[-1]))),
    "broadcast_one": ("nchw,nchw->nc", lambda x: (x, x[:, :1])),
    "rel_pos": ("bhwc,wkc->bhwk", lambda x: (x.permute(0, 2, 3, 1), torch.ones(x.shape[-1], 2, x.shape[1]))),
    "list_of_operands": ("nchw,nchw->nh", lambda x: ([x, x.transpose(2, 3)],)),
}


class Einsum(nn.Module):
    def __init__(self, name: str, after: str):
        super().__init__()
        self.name, self.after = name, after

    def forward(self, x):
        equation, operands = EINSUMS[self.name]
        y = torch.einsum(equation, *operands(x))
        return y.reshape(-1) if self.after == "reshape" else y.view(-1) if self.after == "view" else y


@pytest.mark.parametrize("name", sorted(EINSUMS))
def test_einsum_agrees_with_torch(name):
    """Each label's size (broadcast where a 1 meets a size), the implicit output order, a
    diagonal's equal sizes, an ellipsis: compared with torch on a grid with refusals, batch 2 too."""
    for after in ("none", "reshape"):
        model = Einsum(name, after)
        assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))
        try:
            an = symshape.analyze(model, (3, "H", "W"))
        except symshape.InvalidInputSize:
            continue
        assert [s.rule for s in an.steps if "einsum" in s.op] == ["einsum"]
        assert an.verify(sizes=[{"N": 2, "H": h, "W": w} for h, w in ((2, 2), (3, 2))]).ok


def test_a_view_of_an_einsum_is_refused_by_name_or_decided_by_torch():
    """torch permutes, multiplies and permutes back: symshape does not follow the strides."""
    model = Einsum("rel_pos", "view")
    try:
        an = symshape.analyze(model, (3, "H", "W"))
    except symshape.UnsupportedOperation as refused:
        assert "view" in str(refused)
    else:  # torch's own semantics (a whole-model meta run) answered: it must agree
        assert an.verify(sizes=grid(["H", "W"], [1, 2, 3])).ok


ADDS = {  # (input, mat1/batch1, mat2/batch2) made from x of shape (N, C, H, W)
    "addmm_row": (torch.addmm, lambda x: (torch.ones(x.shape[-1]), x[0, 0], torch.ones(x.shape[-1], x.shape[-1]))),
    "addmm_column": (torch.addmm, lambda x: (x[0, 0, :, :1], x[0, 0], torch.ones(x.shape[-1], 3))),
    "addmm_full": (torch.addmm, lambda x: (x[0, 1], x[0, 0], torch.ones(x.shape[-1], x.shape[-1]))),
    "addmm_method": (lambda i, a, b: i.addmm(a, b), lambda x: (torch.ones(1, 2), x[0, 0], torch.ones(x.shape[-1], 2))),
    "baddbmm_bias": (torch.baddbmm, lambda x: (torch.ones(x.shape[-2], 1), x[0], x[0].transpose(1, 2))),
    "baddbmm_full": (torch.baddbmm, lambda x: (x[0, :, :, :1], x[0], torch.ones(x.shape[1], x.shape[-1], x.shape[-2]))),
    "baddbmm_too_many_dims": (torch.baddbmm, lambda x: (x[:1], x[0], x[0].transpose(1, 2))),
}


class AddProduct(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x):
        fn, operands = ADDS[self.name]
        return fn(*operands(x)).reshape(-1)


@pytest.mark.parametrize("name", sorted(ADDS))
def test_addmm_and_baddbmm_agree_with_torch(name):
    """The product's checks and the input expanding to it (a 1 expands, nothing shrinks)."""
    model = AddProduct(name)
    assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3]))
    try:
        an = symshape.analyze(model, (3, "H", "W"))
    except symshape.InvalidInputSize:
        return
    assert {"addmm", "baddbmm"} & {s.rule for s in an.steps}  # the hand rule, no meta kernel


class FlagFromSizes(nn.Module):
    """transformers' sdpa_attention_forward: ``is_causal = q_len > 1 and attention_mask is None
    and causal``. Where ``q_len > 1`` is false, Python's ``and`` gives that condition itself
    (not False) to torch, which sees a plain bool in eager mode."""

    def __init__(self, masked: bool, causal: bool):
        super().__init__()
        self.masked, self.causal = masked, causal

    def forward(self, x):
        q = x.flatten(2).transpose(1, 2).unsqueeze(1)  # (N, 1, H*W, C)
        n = q.shape[2]
        mask = torch.zeros(n, n, dtype=q.dtype) if self.masked else None
        is_causal = n > 1 and mask is None and self.causal
        return F.scaled_dot_product_attention(q, q, q, attn_mask=mask, is_causal=is_causal).flatten(1)


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_is_causal_computed_from_a_size_is_decided_on_each_side(masked, causal):
    """It was refused ("both attn_mask and is_causal", or "must be a bool"): the side of the
    branch on ``q_len > 1`` decides the condition it is left with."""
    model = FlagFromSizes(masked, causal)
    assert assert_agrees(model, (4, "H", "W"), grid(["H", "W"], [1, 2, 3])) == 9
    assert str(symshape.analyze(model, (4, "H", "W")).valid_sizes()) == "any H and W"
