"""``.item()`` of a tensor whose entries symshape bounds (symshape.bounds.ReadValue): XLM's
``assert lengths.max().item() <= slen``, a count of the tokens that are not padding, which is at
most the length at every length; a number known exactly; and the refusals: a comparison the bounds
do not decide, arithmetic on the value, an entry that is data. Every answer is checked against
torch's forward, on token ids that are all padding, none padding, and random."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import ForwardRaises, InvalidInputSize, UnsupportedOperation

IDS = symshape.Input(("T",), torch.long)  # (batched: N token ids of length T)
SIZES = [(n, t) for n in (1, 2, 3) for t in (1, 2, 3, 5, 8)]


def _ids(n: int, t: int) -> list[torch.Tensor]:
    """Token ids of every kind the count reads: all padding (0), none, random."""
    g = torch.Generator().manual_seed(n * 100 + t)
    return [torch.zeros(n, t, dtype=torch.long), torch.ones(n, t, dtype=torch.long),
            torch.randint(0, 3, (n, t), generator=g)]


def _runs(model: nn.Module, ids: torch.Tensor):
    """The output's shape, or None where torch (or the model's own assert) raises."""
    try:
        with torch.no_grad():
            return tuple(model(ids).shape)
    except (RuntimeError, ValueError):
        return None


def _said(analysis, n: int, t: int):
    try:
        return analysis.at(N=n, T=t).output_shape
    except InvalidInputSize:
        return None


class Checked(nn.Module):
    """Counts the tokens that are not padding in each row, reads one count with ``.item()`` and
    raises unless ``compare(count, rhs(T))``, as XLM's forward asserts ``lengths.max().item() <=
    slen``; then masks the embeddings past each row's length. (A ``raise``, not an ``assert``:
    pytest rewrites a test module's asserts, and their messages would differ from run to run.)"""

    def __init__(self, reduce: str, compare, rhs, flipped: bool = False, whole: bool = False):
        super().__init__()
        self.emb = nn.Embedding(4, 3)
        self.reduce, self.compare, self.rhs, self.flipped, self.whole = reduce, compare, rhs, flipped, whole

    def forward(self, ids):
        t = ids.size(1)
        lengths = (ids != 0).sum(dim=1).long()
        counted = (ids != 0).sum() if self.whole else getattr(lengths, self.reduce)()
        value, bound = counted.item(), self.rhs(t)
        if not (self.compare(bound, value) if self.flipped else self.compare(value, bound)):
            raise ValueError("the count is out of range")
        mask = torch.arange(t) < lengths[:, None]
        return self.emb(ids) * mask.unsqueeze(-1)


def test_xlms_assert_holds_at_every_length():
    model = Checked("max", operator.le, lambda t: t)
    a = symshape.analyze(model, IDS)
    assert a.valid_sizes().summary() == "any T"
    for n, t in SIZES:
        for ids in _ids(n, t):
            assert _said(a, n, t) == _runs(model, ids) == (n, t, 3)


def test_a_comparison_its_bounds_do_not_decide_is_refused_by_name():
    with pytest.raises(UnsupportedOperation, match="do not decide at every size"):
        symshape.analyze(Checked("max", operator.lt, lambda t: t), IDS)


def test_arithmetic_on_a_read_value_is_refused():
    class Sliced(nn.Module):
        def forward(self, ids):
            n = (ids != 0).sum(dim=1).max().item()
            return ids[:, :n + 1]

    with pytest.raises(UnsupportedOperation, match="depends on the data"):
        symshape.analyze(Sliced(), IDS)


def test_an_entry_that_is_data_is_refused():
    class Data(nn.Module):
        def forward(self, x):
            assert x.max().item() <= x.size(1)
            return x

    with pytest.raises(UnsupportedOperation, match="item"):
        symshape.analyze(Data(), ("T",))


def test_a_number_known_exactly_is_that_number():
    class Known(nn.Module):
        def forward(self, ids):
            n = torch.full((1,), ids.size(1)).item()  # exactly T
            return ids[:, : n - 1]

    model = Known()
    a = symshape.analyze(model, IDS)
    for n, t in SIZES:
        assert _said(a, n, t) == _runs(model, _ids(n, t)[2]) == (n, t - 1)


def test_item_of_more_than_one_entry_is_refused_where_torch_refuses_it():
    class PerRow(nn.Module):
        def forward(self, ids):
            assert (ids[:, 0] != 0).long().item() <= 1  # one entry per row: only N == 1 has one
            return ids

    model = PerRow()
    a = symshape.analyze(model, IDS)
    for n, t in SIZES:
        assert _said(a, n, t) == _runs(model, _ids(n, t)[1])
    with pytest.raises(InvalidInputSize, match="cannot be converted to Scalar"):
        a.at(N=2, T=3)


_OPS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
_RHS = {"T": lambda t: t, "T + 1": lambda t: t + 1, "T - 1": lambda t: t - 1, "0": lambda t: 0,
        "-1": lambda t: -1, "2*T": lambda t: 2 * t, "3": lambda t: 3}


@settings(max_examples=60, deadline=None)
@given(reduce=st.sampled_from(["max", "min", "amax", "amin"]), op=st.sampled_from(_OPS),
       rhs=st.sampled_from(sorted(_RHS)), flipped=st.booleans(), whole=st.booleans())
def test_a_compared_count_is_torchs_answer_wherever_symshape_gives_one(reduce, op, rhs, flipped, whole):
    """Where the analysis says the model runs (or raises) at a size, torch does so on every kind
    of token ids; where it refuses the comparison, torch's answer does depend on the ids or the
    size."""
    model = Checked(reduce, op, _RHS[rhs], flipped, whole)
    try:
        a = symshape.analyze(model, IDS)
    except UnsupportedOperation as e:
        assert "do not decide at every size" in str(e)
        answers = {_runs(model, ids) is None for n, t in SIZES for ids in _ids(n, t)}
        assert answers == {True, False}, "refused a comparison torch answers the same way everywhere"
        return
    except ForwardRaises as e:  # the check fails at every size, on the model itself (not on the meta device)
        assert "the count is out of range" in str(e) and "the model itself" in str(e)
        assert all(_runs(model, ids) is None for n, t in SIZES for ids in _ids(n, t))
        return
    for n, t in SIZES:
        for ids in _ids(n, t):
            assert _said(a, n, t) == _runs(model, ids), (n, t, ids.tolist())
