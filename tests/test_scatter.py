"""``scatter``, ``scatter_add``, ``scatter_reduce`` and their in-place forms by their hand rule,
against torch: indices a ``topk`` picked along the dim (below its size by construction, as a
router's experts are), along a dim of a fixed size or of the input's; a value or a ``src``
tensor (some smaller than the index: torch refuses those sizes); an index with a row more than
the tensor (torch refuses every size)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees

SIZES = [{"T": t} for t in (1, 2, 3, 5, 8)]


class Scatter(nn.Module):
    """``x`` of shape (N, T, 6): the ``k`` greatest entries' positions along ``dim`` scattered
    into zeros of ``x``'s shape."""

    def __init__(self, dim=2, k=2, form="method_", op="scatter", src="value", extra_row=False):
        super().__init__()
        self.dim, self.k, self.form, self.op, self.src, self.extra_row = dim, k, form, op, src, extra_row

    def forward(self, x):
        scores = torch.cat([x, x[:, :1]], 1) if self.extra_row else x
        k = min(self.k, scores.shape[self.dim]) if self.dim == 2 else 1
        index = torch.topk(scores, k, dim=self.dim)[1]
        src = {"value": 1.0, "same": torch.ones_like(index, dtype=x.dtype),
               "larger": torch.ones(index.shape[0], index.shape[1] + 1, index.shape[2] + 1),
               "smaller": torch.ones(index.shape[0], index.shape[1], 1)}[self.src]
        if self.op != "scatter" and not isinstance(src, torch.Tensor):
            src = torch.ones_like(index, dtype=x.dtype)
        extra = {"reduce": "amax"} if self.op == "scatter_reduce" else {}
        target = torch.zeros_like(x)
        if self.form == "method_":
            return getattr(target, self.op + "_")(self.dim, index, src, **extra)
        if self.form == "method":
            return getattr(target, self.op)(self.dim, index, src, **extra)
        return getattr(torch, self.op)(target, self.dim, index, src, **extra)


@settings(max_examples=25, deadline=None)
@given(st.fixed_dictionaries({
    "dim": st.sampled_from([1, 2]), "k": st.sampled_from([1, 2, 6]), "form": st.sampled_from(["method_", "method", "torch"]),
    "op": st.sampled_from(["scatter", "scatter_add", "scatter_reduce"]),
    "src": st.sampled_from(["value", "same", "larger", "smaller"]), "extra_row": st.booleans()}))
def test_scatter_agrees_with_torch(config):
    assert_agrees(Scatter(**config), ("T", 6), SIZES)


def test_the_index_checks_by_name():
    wrong = symshape.analyze(Scatter(extra_row=True), ("T", 6))  # an index of T + 1 rows into T
    assert wrong.valid_sizes().is_empty
    assert any("to be no larger than self" in r.reason for _, r in wrong.requirements)
    with pytest.raises(symshape.InvalidInputSize, match="no larger size than src"):
        symshape.analyze(Scatter(src="smaller", k=2), ("T", 6))  # two indices a row, one entry of src
    assert not symshape.analyze(Scatter(dim=1), ("T", 6)).refuses(T=3)


class RouterMask(nn.Module):
    """DeepSeek-V3's router: the groups of experts each token keeps, as a mask."""

    def __init__(self, groups=4, keep=2, index="topk"):
        super().__init__()
        self.keep, self.index = keep, index
        self.gate = nn.Linear(8, groups)

    def forward(self, x):
        scores = self.gate(x.reshape(-1, x.shape[-1]))
        chosen = torch.topk(scores, self.keep, dim=-1)[1] if self.index == "topk" else (x.reshape(-1, 8)[:, :2] > 0).long()
        mask = torch.zeros_like(scores)
        mask.scatter_(1, chosen, 1)
        return scores.masked_fill(mask == 0, 0.0)


@pytest.mark.parametrize("index", ["topk", "data"])
def test_a_routers_mask_agrees_with_torch(index):
    assert assert_agrees(RouterMask(index=index), ("T", 8), SIZES) == len(SIZES)


def test_data_indices_along_a_dim_of_the_inputs_size_are_refused():
    class ByData(nn.Module):
        def forward(self, x):  # indices that are the input's values, along dim 1, of T rows
            return torch.zeros_like(x).scatter(1, x[:, :1].long(), 1.0)

    with pytest.raises(symshape.UnsupportedOperation, match="indices symshape does not"):
        symshape.analyze(ByData(), ("T", 6))
