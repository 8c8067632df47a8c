"""Writes into a tensor through another that shares its storage (issue 15: no wrong answer).

An in-place op on a view changes the tensor it views: ``idx[:2].fill_(L)`` puts ``L`` into
``idx``, and so do ``torch.add(idx, L, out=idx)``, ``idx.view(2, 2).add_(L)`` or a split piece's
``fill_``. torch then checks each entry of ``idx`` against the table it indexes; a meta-device
forward cannot see entries, so only symshape's own account of them stands between the user and a
wrong "runs at every L". symshape used to keep ``idx`` as it was before the write (its entries,
known range, "not computed from sizes") and answered that; now every tensor that may share the
written storage loses what was known of its entries, and an index that may have entries from the
sizes is refused. Every case is checked against real torch forwards.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from oracle import members, scan


def _slice_iadd(idx, n):
    v = idx[:2]
    v += n


def _setitem_on_a_view(idx, n):
    v = idx[1:]
    v[0] = n


#: ways to write the size ``n`` into ``idx`` (4 entries) through a tensor that shares its storage
WRITES = {
    "slice fill_": lambda idx, n: idx[:2].fill_(n),
    "view add_": lambda idx, n: idx.view(2, 2).add_(n),
    "narrow copy_": lambda idx, n: idx.narrow(0, 0, 2).copy_(torch.full((2,), n)),
    "out=": lambda idx, n: torch.add(idx, n, out=idx),
    "slice +=": _slice_iadd,
    "setitem on a view": _setitem_on_a_view,
    "transposed fill_": lambda idx, n: idx.view(2, 2).t()[0].fill_(n),
    "split piece fill_": lambda idx, n: idx.split(2)[1].fill_(n),
    "unbound row fill_": lambda idx, n: idx.view(2, 2).unbind(0)[0].fill_(n),
    "torch.clamp_": lambda idx, n: torch.clamp_(idx[:2], min=n),
    ".data fill_": lambda idx, n: idx.data[3:].fill_(n),
    ".long() of a long": lambda idx, n: idx.long()[:1].fill_(n),
}
#: where ``idx`` comes from: made without any size (a constant of the trace), or from the input
SOURCES = {
    "made without sizes": lambda x: torch.zeros(4, dtype=torch.long),
    "from the input": lambda x: x.new_zeros(4, dtype=torch.long),
}


class Written(nn.Module):
    def __init__(self, write: str, source: str, into: str):
        super().__init__()
        self.write, self.source, self.into = write, source, into
        self.table = nn.Embedding(10, 2)

    def forward(self, x):  # (N, L) token ids
        idx = SOURCES[self.source](x)
        WRITES[self.write](idx, x.shape[-1])
        rows = self.table(idx) if self.into == "embedding" else self.table.weight[idx]
        return rows.sum() + x.sum()


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(WRITES)), st.sampled_from(sorted(SOURCES)), st.sampled_from(["embedding", "getitem"]))
def test_a_size_written_through_a_view_is_never_answered_as_valid(write, source, into):
    model = Written(write, source, into)
    assert scan(model, ("L",), ["L"], 12) == {(n,) for n in range(1, 10)}  # torch: the table has 10 rows
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(model, ("L",))


def test_a_write_through_a_view_drops_the_range_it_had():
    """``arange(L)`` has entries 0 … L - 1 (checked exactly against the table); a write of 100
    into its first entry leaves entries symshape does not follow: refused, where 10 ≥ L said
    "valid" before (torch raises at every L: 100 is past the 10 rows)."""

    class Overwritten(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):
            pos = torch.arange(x.shape[-1])
            pos[:1].fill_(100)
            return self.table(pos) + x.unsqueeze(-1)

    assert scan(Overwritten(), ("L",), ["L"], 12) == set()
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(Overwritten(), ("L",))


class Filled(nn.Module):
    """Indices of one value from the size: ``torch.full((4,), L)``, ``torch.ones(4) * L`` (a
    constant of the trace times a size), ``x.new_ones(4) * (L - 1)``."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.table = nn.Embedding(10, 2)

    def forward(self, x):
        n = x.shape[-1]
        if self.how == "full":
            idx = torch.full((4,), n)
        elif self.how == "constant ones":
            idx = torch.ones(4, dtype=torch.long) * n
        else:
            idx = x.new_ones(4, dtype=torch.long) * (n - 1)
        return self.table(idx).sum() + x.sum()


@pytest.mark.parametrize("how, valid", [("full", "L ∈ [1, 9]"), ("constant ones", "L ∈ [1, 9]"),
                                        ("new_ones", "L ∈ [1, 10]")])
def test_indices_of_one_value_from_a_size_are_checked_exactly(how, valid):
    model = Filled(how)
    analysis = symshape.analyze(model, ("L",))
    assert analysis.valid_sizes().summary() == valid
    assert members(analysis.valid_sizes(), ["L"], 12) == scan(model, ("L",), ["L"], 12)


def test_a_write_through_a_view_inside_a_block_run_on_torchs_meta_kernels_is_refused():
    """A block fx cannot follow (a legacy constructor) runs whole under torch's meta kernels,
    where symshape marks tensors whose entries come from the sizes: the write into a view marks
    the storage, so ``idx`` itself too."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):
            x = torch.Tensor(x)
            idx = torch.zeros(4, dtype=torch.long)
            idx.narrow(0, 0, 2).copy_(torch.full((2,), x.shape[1]))
            return self.table(idx).sum() + x.sum()

    model = nn.Sequential(Block())
    assert scan(model, ("L",), ["L"], 12) == {(n,) for n in range(1, 10)}
    with pytest.raises(symshape.SymshapeError):
        symshape.analyze(model, ("L",))


class _Untraceable(nn.Module):
    """Blocks symshape does not trace op by op: one that branches on a size (traced by sides,
    each side on its own), one fx cannot follow (a legacy constructor: run whole on torch's meta
    kernels). Each either writes the size into the index it is given, or returns positions."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, idx, x):
        if self.how == "sides":
            if x.shape[1] > 3:
                idx[:2] = x.shape[1]
            return x * 2
        x = torch.Tensor(x)
        if self.how == "meta writes":
            idx[:2] = x.shape[1]
            return x * 2
        return torch.arange(x.shape[1])  # "meta returns": positions 0 … L - 1


class _Calls(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.block = _Untraceable(how)
        self.table = nn.Embedding(10, 2)
        self.how = how

    def forward(self, x):
        idx = x.new_zeros(4, dtype=torch.long)
        if self.how == "meta returns":
            idx = self.block(idx, x)
        else:
            x = self.block(idx, x)
        return self.table(idx).sum() + x.sum()


@pytest.mark.parametrize("how, torch_runs", [("sides", range(1, 10)), ("meta writes", range(1, 10)),
                                             ("meta returns", range(1, 11))])
def test_a_block_traced_apart_that_writes_or_makes_indices_from_sizes_is_never_answered_as_valid(how, torch_runs):
    """A block traced by sides, or run whole on the meta kernels, that writes a size into the
    tensor it was given changes the caller's tensor; one that returns an ``arange`` of a size
    returns entries from the sizes. Before, both left the caller's index "not from sizes":
    "runs at every L" while torch raised past the table."""
    model = _Calls(how)
    assert scan(model, ("L",), ["L"], 12) == {(n,) for n in torch_runs}
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(model, ("L",))


def test_a_call_that_writes_into_its_argument_is_not_repeated_from_an_equal_one():
    """Two equal blocks, each writing the size into the index it is given: the second is not
    taken from the first (one node for it would not write its own argument)."""

    class Setter(nn.Module):
        def forward(self, idx, x):
            idx[:1] = x.shape[1]
            return x + 1

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.s1, self.s2 = Setter(), Setter()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):
            i1, i2 = x.new_zeros(4, dtype=torch.long), x.new_zeros(4, dtype=torch.long)
            x = self.s2(i2, self.s1(i1, x) - 1)
            return self.table(i2).sum() + x.sum()

    assert scan(Twice(), ("L",), ["L"], 12) == {(n,) for n in range(1, 10)}
    with pytest.raises(symshape.UnsupportedOperation, match="computed from the input's sizes"):
        symshape.analyze(Twice(), ("L",))


def test_only_the_tensor_a_block_wrote_into_loses_its_range():
    """A block run whole on the meta kernels that writes into one of the tensors it is given
    (``x``) leaves the other (positions ``0 … L - 1``) as it was: still checked exactly."""

    class Scales(nn.Module):
        def forward(self, x, pos):
            x = torch.Tensor(x)
            x.mul_(2)
            return x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Scales()
            self.table = nn.Embedding(10, 2)

        def forward(self, x):
            pos = torch.arange(x.shape[-1])
            x = self.block(x, pos)
            return self.table(pos).sum() + x.sum()

    analysis = symshape.analyze(Model(), ("L",))
    assert [s.rule for s in analysis.steps][:2] == ["arange", "meta"]
    assert analysis.valid_sizes().summary() == "L ∈ [1, 10]"
    assert members(analysis.valid_sizes(), ["L"], 12) == scan(Model(), ("L",), ["L"], 12)


def test_in_place_activations_of_a_cnn_still_analyze():
    """``nn.ReLU(inplace=True)`` and ``x += shortcut`` write in place too: nothing is refused for
    them (no index is read from those tensors)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
                          nn.Dropout(inplace=True), nn.Flatten(), nn.LazyLinear(2))
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert str(analysis.in_features["5"]) == "4*(H - 2)*(W - 2)"
    assert analysis.verify(sizes=[{"H": 5, "W": 7}]).ok
