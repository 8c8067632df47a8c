"""Advanced indexing (``x[..., [0, 3]]``, bool masks, index tensors) against torch.

hypothesis draws an index of ints, slices, None, Ellipsis, index lists, integer constants and
bool masks for a (C, H, W) input and compares symshape with torch at every H, W in 1..6: the
output shape where torch runs, a refusal where torch raises (an index out of bounds for the
size, a mask of another length). Indices symshape cannot see on a size-dependent dim are refused.
"""

import warnings

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members

SIZES = grid(("H", "W"), range(1, 7))


class Index(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.index = index

    def forward(self, x):
        return x[self.index]


def _torch(model, shape):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tuple(model(torch.zeros(shape)).shape)
    except (IndexError, RuntimeError):
        return None


entry = st.integers(-3, 3)
index_list = st.lists(entry, min_size=1, max_size=3)
items = st.one_of(
    entry,
    st.builds(slice, st.one_of(st.none(), st.integers(-4, 4)), st.one_of(st.none(), st.integers(-4, 4)),
              st.sampled_from([None, 1, 2])),
    st.none(),
    index_list,
    st.builds(torch.tensor, index_list),
    st.builds(lambda n, k: torch.tensor([bool((k >> i) & 1) for i in range(n)]), st.integers(1, 4), st.integers(0, 15)),
)


@settings(max_examples=100)
@given(st.lists(items, min_size=1, max_size=2), st.booleans(), st.integers(3, 4))
def test_advanced_indexing_agrees_with_torch(index, ellipsis, channels):
    if ellipsis:
        index = [*index[:1], Ellipsis, *index[1:]]
    if not any(isinstance(i, (list, torch.Tensor)) for i in index):
        index = [*index, [0]]
    model = Index(tuple(index))
    try:
        analysis = symshape.analyze(model, (channels, "H", "W"), batch=None)
    except symshape.InvalidInputSize:
        runs = [s for s in SIZES if _torch(model, (channels, s["H"], s["W"])) is not None]
        assert not runs, f"{index}: refused at every size, torch runs at {runs[:3]}"
        return
    except symshape.UnsupportedOperation:
        return  # a 0-dim bool mask, a Python bool: refused by name
    for s in SIZES:
        want = _torch(model, (channels, s["H"], s["W"]))
        try:
            got = tuple(int(d) for d in analysis.at(**s).output_shape)
        except symshape.InvalidInputSize:
            got = None
        assert got == want, f"x[{index}] of ({channels}, {s['H']}, {s['W']}): torch {want}, symshape {got}"


def test_indices_symshape_cannot_see_are_refused_on_a_size_dependent_dim():
    class Computed(nn.Module):
        def forward(self, x):
            return x[:, (x * 100).long()[0]]  # data: any entry

    with pytest.raises(symshape.UnsupportedOperation, match="indices"):
        symshape.analyze(Computed(), (3, "H"), batch=None)


@pytest.mark.parametrize("length", ["H", "H - 1"])
def test_an_argmax_indexes_the_dim_it_came_from(length):
    class Picked(nn.Module):  # argmax's entries lie below H: in x's dim 1 always; in one row less, as the data falls
        def forward(self, x):
            y = x if length == "H" else x[:, 1:]
            return y[:, torch.argmax(x, 1)]

    analysis = symshape.analyze(Picked(), (3, "H"), batch=None)
    data = [r for s in analysis.steps for r in s.requirements if r.data_dependent]
    assert bool(data) == (length != "H")
    for seed in range(4):
        torch.manual_seed(seed)
        assert analysis.verify(sizes=[{"H": h} for h in (1, 2, 5)]).ok


def test_gather_on_a_size_dependent_tensor_is_refused_where_nothing_bounds_the_indices():
    class Gather(nn.Module):
        def forward(self, x):
            return torch.gather(x, 2, torch.randint(0, 5, (1, 3, 2)))

    with pytest.raises(symshape.UnsupportedOperation, match="indices"):
        symshape.analyze(Gather(), (3, "H"))


@pytest.mark.parametrize("fill", [0, 4])
def test_gather_with_a_constant_index_checks_its_entries(fill):
    class Gather(nn.Module):
        def forward(self, x):
            return torch.gather(x, 2, torch.full((1, 3, 2), fill))

    analysis = symshape.analyze(Gather(), (3, "H"))
    assert {h for (h,) in members(analysis.valid_sizes(), ["H"], 8)} == set(range(fill + 1, 9))
    assert assert_agrees(Gather(), (3, "H"), [{"H": h} for h in range(1, 8)]) == 7 - fill


def test_a_buffer_of_indices_is_read_and_checked():
    class Perm(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("order", torch.tensor([0, 3, 1]))

        def forward(self, x):
            return x[:, :, self.order].flatten(1)

    analysis = symshape.analyze(Perm(), (3, "H", "W"))
    assert str(analysis.valid_sizes()) == "H ≥ 4"
    assert analysis.at(H=4, W=5).output_shape == (1, 45)
    for h in (3, 4):
        runs = _torch(Perm(), (1, 3, h, 5)) is not None
        assert runs == (h >= 4)


class RelativePosition(nn.Module):
    """SAM's relative positions (timm's get_rel_pos, the table resized to the grid): an index
    tensor computed from sizes, whose extremes symshape follows exactly (symshape.ranges)."""

    def __init__(self, patch=4):
        super().__init__()
        self.patch = patch
        self.table = nn.Parameter(torch.zeros(7, 2))

    def forward(self, x):
        q = x.shape[-1] // self.patch
        coords = torch.arange(q, dtype=torch.float32)[:, None] - torch.arange(q, dtype=torch.float32)[None, :]
        index = (coords + (q - 1)).long()
        table = self.table[: 2 * q - 1] if 2 * q - 1 <= 7 else self.table
        return x[..., :1] * table[index].sum()


def test_an_index_computed_from_sizes_is_checked_by_its_extremes():
    model = RelativePosition()
    analysis = symshape.analyze(model, (3, "L"))
    agree = 0
    for n in range(1, 40):
        want = _torch(model, (1, 3, n))
        try:
            got = tuple(int(d) for d in analysis.at(L=n).output_shape)
        except symshape.InvalidInputSize:
            got = None
        assert got == want, (n, want, got)
        agree += want is not None
    assert 0 < agree < 39  # the table covers q <= 4 only: torch raises past it, and so does symshape
    assert str(analysis.valid_sizes()) == "L ∈ [1, 19]"  # below 4 the index is empty: nothing to check


class BranchingRelativePosition(nn.Module):
    """RelativePosition inside a block that branches on the size (traced side by side): the
    sides' index checks are merged into the block's."""

    def __init__(self):
        super().__init__()
        self.rel = RelativePosition()

    def forward(self, x):
        if x.shape[-1] > 30:
            x = x * 2
        return self.rel(x)


@pytest.mark.parametrize("make", [RelativePosition, lambda: nn.Sequential(nn.Identity(), BranchingRelativePosition())])
def test_an_index_past_its_table_is_no_mismatch_on_the_meta_device(make):
    """torch's CPU kernel raises for an index past the table (MViTv2's relative positions past
    the input size its tables were made for); its meta kernel checks no index value and runs.
    verify() on the CPU compares the refusal; on the meta device it notes the sizes where the
    meta forward ran past the check (Requirement.meta_unchecked) instead of a mismatch."""
    model = make()
    analysis = symshape.analyze(model, (3, "L"))
    sizes = [{"L": n} for n in (8, 19, 20, 21, 36, 40)]
    past = [s for s in sizes if _torch(model, (1, 3, s["L"])) is None]
    assert past and all(not analysis.valid_sizes().contains(**s) for s in past)  # torch's CPU kernel raises
    on_cpu = analysis.verify(sizes=sizes)
    assert on_cpu.ok and not on_cpu.notes
    on_meta = analysis.verify(sizes=sizes, device="meta")
    assert on_meta.ok
    assert len(on_meta.notes) == len(past) and all("do not check an index's values" in n for n in on_meta.notes)


@pytest.mark.parametrize("index", [
    lambda q: (torch.arange(q)[:, None] - torch.arange(q)[:, None]) + 5,  # the same dim: not every pair occurs
    lambda q: torch.arange(0, q, 2),  # a step: its last entry is not followed
    lambda q: torch.arange(q).relu(),  # an op without a transfer
])
def test_an_index_whose_extremes_are_not_exact_is_refused(index):
    class Computed(nn.Module):
        def forward(self, x):
            return x[:, index(x.shape[-1])]

    with pytest.raises(symshape.UnsupportedOperation, match="indices symshape does not know"):
        symshape.analyze(Computed(), (3, "L"), batch=None)


def test_a_part_of_an_index_is_within_the_whole_ones_bounds():
    """``arange(L)[1:]`` may miss an extreme of ``arange(L)``, so its extremes are not exact, but
    its entries lie within ``0 … L - 1`` (symshape.bounds): every one is in bounds of a dim of
    size L, at every L (it was refused)."""

    class Part(nn.Module):
        def forward(self, x):
            return x[:, torch.arange(x.shape[-1])[1:]]

    analysis = symshape.analyze(Part(), (3, "L"), batch=None)
    assert str(analysis.valid_sizes()) == "any L"
    report = analysis.verify(sizes=[{"L": n} for n in (1, 2, 5, 9)], device="cpu")
    assert report.ok and sum(1 for r in report.results if r[1]) == 4


def test_index_select_with_an_arange_index():
    class Select(nn.Module):
        def forward(self, x):
            return x.index_select(1, torch.arange(x.shape[1] // 2) * 2 + 1)

    model = Select()
    analysis = symshape.analyze(model, (3, "L"), batch=None)
    for n in range(1, 12):
        want = _torch(model, (3, n))
        try:
            got = tuple(int(d) for d in analysis.at(L=n).output_shape)
        except symshape.InvalidInputSize:
            got = None
        assert got == want, (n, want, got)
