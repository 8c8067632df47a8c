"""``torch.gather`` and the bound of the indices torch's sorts return (issue 15: MAE's masking).

MAE (transformers' ViTMAE, and every model file that drops tokens at random) keeps a random
subset of its tokens: ``ids = argsort(rand(B, L))[:, :keep]``, then ``gather(x, 1, ids...)``.
torch checks each index against the size it indexes; symshape cannot see the entries, but an
``argsort``'s lie below the size of the dim it sorted, and slicing, unsqueezing and repeating
them keeps that. Every answer is checked against real torch forwards (random data each run).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan

#: ways to get indices along the last dim of ``s`` (N, 4, L): each below L
INDICES = {
    "argsort": lambda s: torch.argsort(s, dim=-1),
    "sort": lambda s: s.sort(dim=2, descending=True).indices,
    "topk": lambda s: torch.topk(s, 2, dim=-1).indices,
    "max": lambda s: s.max(dim=2, keepdim=True).indices,
    "argmax": lambda s: s.argmax(-1, keepdim=True),
    "min[1]": lambda s: torch.min(s, 2, True)[1],
}
#: what is done to them before the gather (each keeps the entries)
THEN = {
    "as is": lambda i: i,
    "sliced": lambda i: i[:, :, :2],
    "flipped, contiguous": lambda i: i.flip(2).contiguous(),
    "viewed back": lambda i: i.unsqueeze(-1).view(i.shape),
    "first row, expanded": lambda i: i[:, :1].expand(-1, 4, -1),
}
#: what is gathered from, along its last dim
SOURCE = {
    "itself": lambda x: x,
    "doubled": lambda x: torch.cat([x, x], dim=2),
}


class Gathers(nn.Module):
    def __init__(self, how: str, then: str, source: str):
        super().__init__()
        self.how, self.then, self.source = how, then, source

    def forward(self, x):  # (N, 4, L)
        idx = THEN[self.then](INDICES[self.how](x))
        return torch.gather(SOURCE[self.source](x), 2, idx)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(INDICES)), st.sampled_from(sorted(THEN)), st.sampled_from(sorted(SOURCE)))
def test_gathered_by_sorted_indices_agrees_with_torch(how, then, source):
    model = Gathers(how, then, source)
    analysis = symshape.analyze(model, (4, "L"))
    assert members(analysis.valid_sizes(), ["L"], 8) == scan(model, (4, "L"), ["L"], 8)
    assert assert_agrees(model, (4, "L"), grid(["L"], [1, 2, 3, 5, 8])) >= 1


def test_indices_that_may_pass_the_size_are_data_dependent():
    # argsort's entries reach L - 1: gathered from L - 1 entries, torch raises or not as the data
    # falls (always, here); a requirement torch's data decides, never an answer either way
    model = Gathers("argsort", "sliced", "itself")
    model.source = "short"
    SOURCE["short"] = lambda x: x[:, :, 1:]
    try:
        analysis = symshape.analyze(model, (4, "L"))
        (req,) = [r for s in analysis.steps for r in s.requirements if r.data_dependent]
        assert "gather" in req.reason
        for seed in range(8):  # torch runs where the two kept entries miss L - 1, else raises: both agree
            torch.manual_seed(seed)
            assert analysis.verify(sizes=[{"L": n} for n in (2, 3, 6)]).ok
    finally:
        del SOURCE["short"]


class Shifted(nn.Module):
    """Indices moved off their bound: ``i - 1`` may be negative, so nothing bounds them."""

    def forward(self, x):
        return torch.gather(x, 2, torch.argsort(x, dim=2) - 1)


def test_indices_an_op_changed_have_no_bound():
    with pytest.raises(symshape.UnsupportedOperation, match="gather"):
        symshape.analyze(Shifted(), (4, "L"))


class ShiftedUp(nn.Module):
    """``argsort(x) + 1`` lies below ``L + 1``: its greatest entry may reach ``L`` (it does:
    argsort is a permutation), so no size is safe, and torch raises at every size."""

    def forward(self, x):
        return torch.gather(x, 2, torch.argsort(x, dim=2) + 1)


def test_indices_shifted_up_keep_a_bound_past_the_size():
    analysis = symshape.analyze(ShiftedUp(), (4, "L"))
    assert analysis.valid_sizes().is_empty and not scan(ShiftedUp(), (4, "L"), ["L"], 8)


class Checked(nn.Module):
    """gather's own checks: the index no larger than the input off its dim, unless empty."""

    def __init__(self, rows: int):
        super().__init__()
        self.rows = rows

    def forward(self, x):  # (N, C, L)
        idx = torch.argsort(x[:, :1], dim=2).expand(-1, self.rows, -1)
        return x.gather(2, idx[:, :, : x.shape[2] - 3])


@pytest.mark.parametrize("rows", [2, 5])
def test_gathers_shape_checks_are_requirements_as_torch_makes_them(rows):
    model = Checked(rows)
    analysis = symshape.analyze(model, ("C", "L"))
    names = ["C", "L"]
    assert members(analysis.valid_sizes(), names, 7) == scan(model, ("C", "L"), names, 7)


class MaskedTokens(nn.Module):
    """MAE's random masking (transformers' ViTMAEEmbeddings.random_masking) after a patch
    embedding: a quarter of the tokens kept, the mask restored to the input's order."""

    def __init__(self, ratio: float = 0.75):
        super().__init__()
        self.ratio = ratio
        self.embed = nn.Conv2d(3, 8, 4, 4)

    def forward(self, x):
        seq = self.embed(x).flatten(2).transpose(1, 2)
        b, n, dim = seq.shape
        keep = int(n * (1 - self.ratio))
        noise = torch.rand(b, n, device=seq.device)
        shuffle = torch.argsort(noise, dim=1)
        restore = torch.argsort(shuffle, dim=1)
        kept = torch.gather(seq, dim=1, index=shuffle[:, :keep].unsqueeze(-1).repeat(1, 1, dim))
        mask = torch.ones([b, n], device=seq.device)
        mask[:, :keep] = 0
        return kept, torch.gather(mask, dim=1, index=restore), restore


def test_maes_random_masking_is_exact_and_leaves_torchs_rng_alone():
    model = MaskedTokens()
    state = torch.get_rng_state()
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert torch.equal(torch.get_rng_state(), state)
    assert analysis.valid_sizes().summary() == "H ≥ 4 and W ≥ 4"
    assert members(analysis.valid_sizes(), ["H", "W"], 9) == scan(model, (3, "H", "W"), ["H", "W"], 9)
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [4, 9, 17])) == 9
    kept = analysis.evaluate(H=32, W=40).output_shape[0]
    assert tuple(kept) == (1, 20, 8)  # 8*10 tokens, a quarter kept


def test_sorted_indices_pass_through_ops_torchs_meta_kernels_answer():
    class Diffs(nn.Module):
        def forward(self, x):
            return torch.diff(torch.argsort(x, dim=-1), dim=-1)

    analysis = symshape.analyze(Diffs(), (4, "L"))
    assert assert_agrees(Diffs(), (4, "L"), grid(["L"], [1, 2, 5])) == 3
    assert analysis.verify(sizes=[{"L": 3}]).ok


class Positions(nn.Module):
    """GPT's position embedding (minGPT, nanoGPT without its assert): ``wpe(torch.arange(T))``
    raises ``index out of range in self`` past ``block_size``; also as ``F.embedding`` and as
    ``one_hot`` of the positions."""

    def __init__(self, how: str, block: int = 8):
        super().__init__()
        self.how = how
        self.wpe = nn.Embedding(block, 4)

    def forward(self, idx):  # (N, T) token ids
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        if self.how == "module":
            e = self.wpe(pos)
        elif self.how == "function":
            e = F.embedding(pos, self.wpe.weight)
        else:
            e = F.one_hot(pos, self.wpe.num_embeddings)[:, :4].float()
        return idx.unsqueeze(-1).float() + e


@pytest.mark.parametrize("how", ["module", "function", "one_hot"])
def test_positions_past_the_table_are_refused_as_torch_refuses_them(how):
    model = Positions(how)
    analysis = symshape.analyze(model, ("T",))
    assert analysis.valid_sizes().summary() == "T ∈ [1, 8]"
    assert members(analysis.valid_sizes(), ["T"], 12) == scan(model, ("T",), ["T"], 12)
    assert assert_agrees(model, ("T",), grid(["T"], [1, 8, 9, 12])) == 2


def test_class_values_from_an_argmax_are_data_where_they_may_pass_num_classes():
    class Classes(nn.Module):
        def forward(self, x):  # (N, 4, L): classes below L, one_hot of 3 of them
            return F.one_hot(x.argmax(-1), 3)

    analysis = symshape.analyze(Classes(), (4, "L"))
    (req,) = [r for s in analysis.steps for r in s.requirements if r.data_dependent]
    assert "num_classes" in req.reason
    assert members(analysis.valid_sizes(), ["L"], 6) == {(1,), (2,), (3,)}  # where no value can pass 2
    for seed in range(6):
        torch.manual_seed(seed)
        assert analysis.verify(sizes=[{"L": n} for n in (2, 3, 5)]).ok


def test_an_indexing_op_on_torchs_meta_kernels_is_refused_for_indices_computed_from_sizes():
    class Take(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.arange(8.0))

        def forward(self, x):  # torch.take checks each index against 8 entries; no meta kernel does
            return torch.take(self.table, torch.arange(x.shape[-1])) + x

    with pytest.raises(symshape.UnsupportedOperation, match="take"):
        symshape.analyze(Take(), ("L",))


@pytest.mark.parametrize("how", ["scaled", "filled"])
def test_indices_whose_entries_follow_from_a_size_are_refused_on_torchs_meta_kernels(how):
    class Take(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.arange(8.0))

        def forward(self, x):  # (N, L) with L >= 1: entries L - 1 (scaled) or L (filled)
            n = x.shape[-1]
            ones = torch.ones_like(x, dtype=torch.long)
            idx = ones * (n - 1) if how == "scaled" else torch.full_like(ones, n)
            return torch.take(self.table, idx) + x

    with pytest.raises(symshape.UnsupportedOperation, match="take"):
        symshape.analyze(Take(), ("L",))


class FromSizes(nn.Module):
    """Indices whose entries follow from the size: a product of ones with a size and a fill of
    one (every entry ``L - 1``: checked exactly), one set in place (refused rather than
    answered: symshape does not follow what a write leaves); torch raises past the table."""

    def __init__(self, how: str, into: str):
        super().__init__()
        self.how, self.into = how, into
        self.table = nn.Embedding(8, 2)

    def forward(self, x):  # (N, L) of token ids
        n = x.shape[-1]
        ones = torch.ones_like(x, dtype=torch.long)
        if self.how == "set":  # in place
            idx = ones.clone()
            idx[:, :] = n - 1
        else:
            idx = ones * (n - 1) if self.how == "scaled" else torch.full_like(ones, n) - 1
        if self.into == "embedding":
            return self.table(idx)
        if self.into == "getitem":
            return self.table.weight[idx]
        if self.into == "index_select":
            return self.table.weight.index_select(0, idx.flatten())
        return F.one_hot(idx, 8)


@pytest.mark.parametrize("into", ["embedding", "getitem", "index_select", "one_hot"])
@pytest.mark.parametrize("how", ["scaled", "filled"])
def test_indices_of_one_value_from_a_size_are_checked_exactly(how, into):
    model = FromSizes(how, into)
    analysis = symshape.analyze(model, ("L",))
    assert analysis.valid_sizes().summary() == "L ∈ [1, 8]"
    assert members(analysis.valid_sizes(), ["L"], 10) == scan(model, ("L",), ["L"], 10)  # torch: L <= 8


@pytest.mark.parametrize("into", ["embedding", "getitem", "index_select", "one_hot"])
def test_indices_set_in_place_from_sizes_are_refused(into):
    model = FromSizes("set", into)
    assert scan(model, ("L",), ["L"], 10) == {(n,) for n in range(1, 9)}  # torch: L <= 8
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(model, ("L",))


def test_token_ids_are_data_and_not_checked():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(8, 2)

        def forward(self, ids):
            return self.table(ids.long())

    analysis = symshape.analyze(Tokens(), ("T",))
    assert analysis.valid_sizes().summary() == "any T"


class Rows(nn.Module):
    """Positions folded by a number or a size: ``arange(H*W) // W`` is each position's row (``0 …
    H - 1`` exactly), ``arange(L) // 2`` halves, ``arange(L) % 3`` lies below 3."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.table = nn.Embedding(4, 2)

    def forward(self, x):  # (N, H, W)
        h, w = x.shape[-2], x.shape[-1]
        if self.how == "row":
            return self.table(torch.arange(h * w) // w)
        if self.how == "half":
            return self.table(torch.arange(w) // 2)
        if self.how in HALVES:  # (the same, as other code writes it)
            return self.table(HALVES[self.how](w))
        return F.one_hot(torch.arange(w) % 3, 3) + self.table(torch.arange(w) % 3).sum()


#: ``arange(w) // 2`` written otherwise: torch.div's floor, and arange's bounds by keyword
HALVES = {
    "div floor": lambda w: torch.div(torch.arange(w), 2, rounding_mode="floor"),
    "method div floor": lambda w: torch.arange(w).div(2, rounding_mode="floor"),
    "divide floor": lambda w: torch.divide(torch.arange(w), 2, rounding_mode="floor"),
    "floor_divide": lambda w: torch.floor_divide(torch.arange(w), 2),
    "end=": lambda w: torch.arange(end=w) // 2,
    "start, end=": lambda w: torch.arange(0, end=w) // 2,
    "start=, end=": lambda w: torch.arange(start=0, end=w, dtype=torch.long) // 2,
    "start, end, step=1": lambda w: torch.arange(0, w, step=1) // 2,
}


@pytest.mark.parametrize("how, valid", [("row", "H ∈ [1, 4]"), ("half", "W ∈ [1, 8]"),
                                        ("remainder", "any H and W"), *((h, "W ∈ [1, 8]") for h in HALVES)])
def test_floor_divided_and_remaindered_positions_are_checked_exactly(how, valid):
    model = Rows(how)
    analysis = symshape.analyze(model, ("H", "W"))
    assert analysis.valid_sizes().summary() == valid
    assert members(analysis.valid_sizes(), ["H", "W"], 9) == scan(model, ("H", "W"), ["H", "W"], 9)


class Grid(nn.Module):
    """timm's Gemma4 patch embedding: each patch's (y, x) from ``meshgrid`` of two aranges,
    ``stack``-ed, clamped, then one-hot over a table of 6 positions (10,240 in Gemma4)."""

    def forward(self, x):  # (N, C, H, W): 4 x 4 patches
        ph, pw = x.shape[-2] // 4, x.shape[-1] // 4
        gy, gx = torch.meshgrid(torch.arange(ph), torch.arange(pw), indexing="ij")
        coords = torch.stack([gy.flatten(), gx.flatten()], dim=-1).flip(-1).clamp(min=0)
        return F.one_hot(coords, 6).sum() + x


def test_grid_positions_are_checked_against_the_table_on_each_axis():
    model = Grid()
    analysis = symshape.analyze(model, (1, "H", "W"))
    # (no patch on an axis: no position, nothing checked)
    assert analysis.valid_sizes().summary() == "H ∈ [1, 3]; or H ∈ [4, 27] and W ∈ [1, 27]; or H ≥ 28 and W ∈ [1, 3]"
    assert members(analysis.valid_sizes(), ["H", "W"], 30) == scan(model, (1, "H", "W"), ["H", "W"], 30)


def test_a_fixed_windows_relative_positions_are_no_size_question():
    class Window(nn.Module):  # SAM's windowed blocks: a 7 x 7 window's offsets, 13 rows, at every size
        def __init__(self):
            super().__init__()
            self.rel = nn.Parameter(torch.zeros(13, 2))

        def forward(self, x):
            coords = (torch.arange(7)[:, None] * 1.0 - torch.arange(7)[None, :] * 1.0) + (7 - 1) * 1.0
            return x + self.rel[coords.long()].sum()

    analysis = symshape.analyze(Window(), ("L",))
    assert analysis.valid_sizes().summary() == "any L"
    assert assert_agrees(Window(), ("L",), grid(["L"], [1, 3])) == 2


#: ops without a hand rule (torch's meta kernels answer their shapes) that put a size into the
#: entries: torch tags each pointwise (each entry computed from the entries and numbers given)
POINTWISE = {
    "torch.bitwise_or": lambda z, n: torch.bitwise_or(z, n),
    "<<": lambda z, n: (z + 1) << n,
    "torch.bitwise_left_shift": lambda z, n: torch.bitwise_left_shift(z + 1, n),
    "Tensor.bitwise_xor_": lambda z, n: z.bitwise_xor_(n),
    "torch.fmax": lambda z, n: torch.fmax(z, torch.tensor(n)),
}


@pytest.mark.parametrize("how", sorted(POINTWISE))
def test_a_size_through_a_pointwise_op_without_a_rule_is_never_answered_as_valid(how):
    class Pointwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):
            idx = POINTWISE[how](x.new_zeros(4, dtype=torch.long), x.shape[-1])
            return self.table(idx).sum() + x.sum()

    runs = scan(Pointwise(), ("L",), ["L"], 12)
    assert runs and runs != {(n,) for n in range(1, 13)}  # torch raises past the table
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(Pointwise(), ("L",))


#: indices counted along the input's length: one value from the count (exact), or counts of data
COUNTED = {
    "sum of ones": (lambda x: torch.ones(4, x.shape[-1], dtype=torch.long).sum(1), "L ∈ [1, 9]"),
    "cumsum of ones": (lambda x: torch.ones(x.shape[-1], dtype=torch.long).cumsum(0), "L ∈ [1, 9]"),
    "count_nonzero": (lambda x: torch.count_nonzero(torch.ones(4, x.shape[-1]), dim=1), "L ∈ [1, 9]"),
    "count of a mask": (lambda x: (x >= 0).sum(-1), "L ∈ [1, 9]"),
    "cumsum of a mask": (lambda x: torch.cumsum((x >= 0).long(), dim=1), "L ∈ [1, 9]"),
    "positions from a mask": (lambda x: torch.cumsum((x >= 0).long(), dim=1) + 1, "L ∈ [1, 8]"),
    "RoBERTa's positions": (lambda x: _roberta_positions((x >= 0).int(), padding_idx=1), "L ∈ [1, 8]"),
    "OPT's positions": (lambda x: _opt_positions(torch.ones(x.shape[0], x.shape[-1])), "L ∈ [1, 8]"),
    # (a tensor of one value along the same dim is that value: each entry of the other occurs)
    "an arange times ones": (lambda x: torch.arange(x.shape[-1]) * torch.ones(x.shape[-1], dtype=torch.long),
                             "L ∈ [1, 10]"),
    "an arange plus a full": (lambda x: torch.arange(x.shape[-1]) + torch.full((x.shape[-1],), 2), "L ∈ [1, 8]"),
    "a full times an arange": (lambda x: torch.full((1, x.shape[-1]), 2) * torch.arange(x.shape[-1]), "L ∈ [1, 5]"),
    "a count shifted down": (lambda x: torch.cumsum((x >= 0).long(), dim=1) - 1, None),  # may be negative
}


def _opt_positions(mask, cache_length: int = 0):
    """transformers' ``OPTLearnedPositionalEmbedding`` of a mask of ones (its model makes one
    where none is given): ``cumsum(mask) * mask - 1``, offset by 2."""
    positions = (torch.cumsum(mask, dim=1) * mask - 1).long()
    return positions[:, cache_length:] + 2


def _roberta_positions(mask, padding_idx: int, past: int = 0):
    """transformers' ``create_position_ids_from_input_ids`` after ``input_ids.ne(padding_idx).int()``."""
    incremental_indices = (torch.cumsum(mask, dim=1).type_as(mask) + past) * mask
    return incremental_indices.long() + padding_idx


@pytest.mark.parametrize("how", sorted(COUNTED))
def test_indices_counted_along_a_size_are_checked_or_refused(how):
    """A sum or cumsum along the input's length counts it: ``ones(L).cumsum(0)`` is ``1 … L``
    (checked exactly); a count of a mask lies in ``0 … L`` (checked as a sort's indices are: the
    sizes where no count can reach the table, and past them, whether one does is data), and so
    do its sums and products with other such counts, masks and numbers (RoBERTa's positions:
    below ``L + 2``); a count shifted by an op symshape does not follow is refused. Each had been taken as "not from the
    sizes": "runs at every L", where torch raises past the table (here every mask is all ones)."""
    make, valid = COUNTED[how]

    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):  # (N, L) with entries in [0, 1): the mask is all ones
            return self.table(make(x)).sum() + x.sum()

    runs = scan(Counted(), ("L",), ["L"], 12)
    assert runs and runs != {(n,) for n in range(1, 13)}  # torch raises past the table
    if valid is None:
        with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
            symshape.analyze(Counted(), ("L",))
        return
    analysis = symshape.analyze(Counted(), ("L",))
    assert analysis.valid_sizes().summary() == valid
    assert members(analysis.valid_sizes(), ["L"], 12) == runs


def _types_buffer(kind: str) -> torch.Tensor:
    """An integer buffer of token types, as RoBERTa registers its ``token_type_ids`` (all zeros,
    one per position: 514 in roberta-base); more than the 256 entries symshape keeps of a constant."""
    if kind == "int32":
        return torch.zeros(1, 300, dtype=torch.int32)
    if kind == "short":  # fewer entries than the positions reach: the gather's own check refuses
        return torch.zeros(1, 9, dtype=torch.long)
    if kind == "zeros and ones":
        return (torch.arange(300) % 2)[None]
    if kind == "a 2 at 6":
        return torch.zeros(1, 300, dtype=torch.long).index_fill(1, torch.tensor([6]), 2)
    return torch.zeros(1, 300, dtype=torch.long)


#: ways to pick each position's token type from the buffer (RoBERTa's is the first)
PICKS = {
    "gather": lambda b, p: torch.gather(b.to(p.device).expand(p.shape[0], -1), dim=1, index=p),
    "index_select": lambda b, p: b[0].index_select(0, p[0])[None],
    "a row, then gather": lambda b, p: b[:1].expand(p.shape[0], -1).gather(1, p),
}


class TokenTypes(nn.Module):
    """transformers' RoBERTa embeddings without token types given: positions numbered from a
    mask of the ids (every id a token here), token types picked from the buffer by position,
    into a table of 2 types."""

    def __init__(self, buffer: str, pick: str):
        super().__init__()
        self.register_buffer("token_type_ids", _types_buffer(buffer), persistent=False)
        self.pick = pick
        self.token_type_embeddings = nn.Embedding(2, 3)

    def forward(self, x):  # (N, L)
        positions = _roberta_positions((x >= 0).int(), padding_idx=1)  # 2 … L + 1
        types = PICKS[self.pick](self.token_type_ids, positions)
        return self.token_type_embeddings(types).sum() + x.sum()


@pytest.mark.parametrize("pick", sorted(PICKS))
@pytest.mark.parametrize("buffer", ["zeros", "int32", "short"])
def test_token_types_picked_from_a_buffer_of_one_value_agree_with_torch(buffer, pick):
    """Entries picked from a buffer whose every entry is one number (a gather, an index_select,
    any part of it) are that number: RoBERTa's token types are 0 at every size, and only the
    positions' own checks bound the length (before, symshape refused the embedding: a buffer of
    more than 256 entries had no known entries, and a gather dropped them)."""
    model = TokenTypes(buffer, pick)
    analysis = symshape.analyze(model, ("L",))
    assert analysis.valid_sizes().summary() == ("L ∈ [1, 7]" if buffer == "short" else "L ∈ [1, 298]")
    assert members(analysis.valid_sizes(), ["L"], 12) == scan(model, ("L",), ["L"], 12)


@pytest.mark.parametrize("buffer", ["zeros and ones", "a 2 at 6"])
def test_entries_picked_from_a_buffer_of_several_values_are_refused(buffer):
    """Where the buffer holds several numbers, which of them a size picks is not followed: the
    embedding is refused, never answered (torch raises at L >= 5 for "a 2 at 6", at none for the
    other)."""
    model = TokenTypes(buffer, "gather")
    assert scan(model, ("L",), ["L"], 8) == ({(n,) for n in range(1, 5)} if buffer == "a 2 at 6"
                                              else {(n,) for n in range(1, 9)})
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(model, ("L",))


#: indices whose entries depend on the input's length, into ``torch.take`` (no hand rule: the whole
#: model then runs under torch's meta kernels, which check no index)
TAKEN = {
    "positions from a mask": lambda x: _roberta_positions((x >= 0).int(), padding_idx=1),
    "a count": lambda x: (x >= 0).long().sum(-1, keepdim=True),
    "a cumsum of ones": lambda x: torch.ones_like(x, dtype=torch.long).cumsum(1),
    "a sort's indices": lambda x: torch.sort(x, dim=-1).indices,  # (every index below L: L - 1 too)
    "a topk's indices": lambda x: torch.topk(x, x.shape[-1], dim=-1).indices,
    "an argmax of a ramp": lambda x: (x + 1).cumsum(-1).argmax(-1, keepdim=True),  # (L - 1)
    "a searchsorted past the end": lambda x: torch.searchsorted(x.sort(-1).values, x[..., :1] + 2),  # (L)
    "a norm of ones, squared": lambda x: torch.ones_like(x).norm(dim=-1, keepdim=True).pow(2).round().long(),
}


@pytest.mark.parametrize("how", sorted(TAKEN))
def test_indices_along_a_size_into_take_are_refused_not_answered(how):
    """``torch.take(table, idx)`` with indices counted or sorted along the input's length: torch
    raises once one reaches the table's 9 entries. Run whole under torch's meta kernels (which
    see no entries) symshape answered "any L"; a count or an index along a size is now marked as
    depending on the sizes there too, and the take is refused."""

    class Taken(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.arange(9))

        def forward(self, x):  # (N, L)
            return torch.take(self.table, TAKEN[how](x)).sum() + x.sum()

    runs = scan(Taken(), ("L",), ["L"], 12)
    assert runs and runs != {(n,) for n in range(1, 13)}  # torch raises past the table
    with pytest.raises(symshape.UnsupportedOperation, match="depend on the sizes"):
        symshape.analyze(Taken(), ("L",))


def test_a_count_along_a_fixed_dim_inside_a_model_run_whole_is_still_answered():
    """Only a count or an index along a dim whose size depends on the input marks its entries:
    ``sum`` over the 3 fixed channels lies in 0 … 3, below the table's 9, at every size."""

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.arange(9))

        def forward(self, x):  # (N, 3, L)
            return torch.take(self.table, (x >= 0).long().sum(1)).sum() + x.sum()

    analysis = symshape.analyze(Fixed(), (3, "L"))
    assert analysis.valid_sizes().summary() == "any L"
    assert assert_agrees(Fixed(), (3, "L"), grid(["L"], [1, 5, 12])) == 3


#: the queries of a detector's best scores, as ultralytics' RT-DETR picks them (``index`` into
#: ``L`` queries by ``C`` classes, flattened): each divided by the number of classes
QUERIES = {
    "div floor": lambda i, c: torch.div(i, c, rounding_mode="floor"),
    "method div floor": lambda i, c: i.div(c, rounding_mode="floor"),
    "//": lambda i, c: i // c,
    "floor_divide": lambda i, c: torch.floor_divide(i, c),
}


class TopQueries(nn.Module):
    """RT-DETR's post-processing: the ``k`` best of ``L*C`` scores, each one's query and class."""

    def __init__(self, how: str, divisor: int = 3, k: int = 4):
        super().__init__()
        self.how, self.divisor, self.k = how, divisor, k

    def forward(self, x):  # (N, L, C): L queries of C = 3 classes
        boxes = x[..., :2].repeat(1, 1, 2)
        k = min(self.k, x.shape[1] * x.shape[2])
        scores, index = x.flatten(1).topk(k, dim=1)
        query = QUERIES[self.how](index, self.divisor)
        return torch.cat([boxes.gather(1, query.unsqueeze(-1).expand(-1, -1, 4)), scores[..., None]], -1)


@pytest.mark.parametrize("how", sorted(QUERIES))
def test_indices_divided_by_a_number_keep_a_bound(how):
    model = TopQueries(how)
    analysis = symshape.analyze(model, ("L", 3))
    assert analysis.valid_sizes().summary() == "any L"
    assert members(analysis.valid_sizes(), ["L"], 9) == scan(model, ("L", 3), ["L"], 9)
    assert analysis.verify(sizes=[{"L": n} for n in (1, 2, 3, 7)]).ok


def test_indices_divided_by_too_little_are_data_dependent():
    # divided by 2 of 3 classes, the last scores' queries pass L - 1: torch raises as the data falls
    model = TopQueries("div floor", divisor=2)
    analysis = symshape.analyze(model, ("L", 3))
    assert any(r.data_dependent and "gather" in r.reason for s in analysis.steps for r in s.requirements)
    for seed in range(4):
        torch.manual_seed(seed)
        assert analysis.verify(sizes=[{"L": n} for n in (1, 2, 5)]).ok
