"""``x[mask] = v`` with a bool mask computed from the data (``x[x < 0] = 0``, Longformer's
``extended_attention_mask[attention_mask == 2] = big``): how many entries the mask selects is
data, but a number, or a ``v`` of size 1 along the selected entries, fills any number of them,
so the write has a shape at every size. The mask's shape must still equal the dims it covers,
and a ``v`` whose size along the selected entries is not 1 is refused by name (torch runs it only
where the count happens to match). Every answer is checked against torch."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidInputSize, UnsupportedOperation

GRID = list(itertools.product((1, 2), range(1, 4), range(1, 4)))  # (N, T, C)

#: masks over x of shape (N, T, C): the dims they cover, and one of a wrong length where T > 1
_MASKS = {
    "x > 0": lambda x: x > 0,
    "[..., 0] > 0 (N, T)": lambda x: x[..., 0] > 0,
    "[:, 0] > 0 (N, C) at (N, T)": lambda x: x[:, 0] > 0,  # covers (N, T): runs only where T == C
    "[:, :1] > 0 (N, 1, C)": lambda x: x[:, :1] > 0,  # runs only where T == 1
}
#: what is written: numbers, and tensors (each a new tensor, never a view of x: torch refuses a
#: write from a view of the tensor written, a check symshape does not make yet)
_VALUES = {
    "0.5": lambda x: 0.5,
    "0-d": lambda x: torch.tensor(2.0),
    "(1,)": lambda x: torch.ones(1),
    "(C,)": lambda x: x[0, 0].clone(),
    "(1, C)": lambda x: x[0, :1].clone(),
    "(1, 1, 1)": lambda x: torch.ones(1, 1, 1),
}


class Write(nn.Module):
    def __init__(self, mask, value):
        super().__init__()
        self.mask, self.value = mask, value

    def forward(self, x):
        y = x.clone()
        y[self.mask(x)] = self.value(x)
        return y.flatten(1)


def _torch(model, n: int, t: int, c: int, sign: float | None = None):
    """torch's output shape, or None where it raises; on random entries, or all ``sign``."""
    g = torch.Generator().manual_seed(n * 100 + t * 10 + c)
    x = torch.randn(n, t, c, generator=g) if sign is None else torch.full((n, t, c), sign)
    try:
        with torch.no_grad():
            return tuple(model(x).shape)
    except (RuntimeError, IndexError):
        return None


def _said(analysis, n: int, t: int, c: int):
    try:
        return analysis.at(N=n, T=t, C=c).output_shape
    except InvalidInputSize:
        return None


@settings(max_examples=40, deadline=None)
@given(mask=st.sampled_from(sorted(_MASKS)), value=st.sampled_from(sorted(_VALUES)))
def test_a_masked_write_is_torchs_at_every_size(mask, value):
    """Where symshape answers, torch agrees at every size; where it refuses (a value sized along
    the selected entries), whether torch runs depends on the entries: at some size it runs where
    the mask selects every entry and raises where it selects none, or the other way."""
    model = Write(_MASKS[mask], _VALUES[value])
    try:
        analysis = symshape.analyze(model, ("T", "C"))
    except UnsupportedOperation as e:
        assert "number of True entries, which is data" in str(e)
        assert any(_torch(model, *s, 1.0) != _torch(model, *s, -1.0) for s in GRID), "refused what data does not decide"
        return
    for n, t, c in GRID:
        assert _said(analysis, n, t, c) == _torch(model, n, t, c), (mask, value, n, t, c)


def test_longformers_mask_write_analyzes():
    class Extended(nn.Module):
        def forward(self, x):
            mask = (x[..., 0] > 0).long() + 1  # 1 or 2, as Longformer's merged attention mask
            extended = (1.0 - mask[:, None, None, :].float()) * torch.finfo(x.dtype).min
            extended[mask[:, None, None, :] == 2] = torch.finfo(x.dtype).max
            return x.transpose(1, 2) @ extended[:, 0, 0, :, None]

    analysis = symshape.analyze(Extended(), ("T", "C"))
    assert analysis.valid_sizes().summary() == "any T and C"
    assert analysis.verify(samples=6).ok


def test_a_value_sized_along_the_selected_entries_is_refused_by_name():
    model = Write(_MASKS["[..., 0] > 0 (N, T)"], lambda x: x[0, :, 0].clone()[:, None])  # (T, 1)
    with pytest.raises(UnsupportedOperation, match="number of True entries, which is data"):
        symshape.analyze(model, ("T", "C"))


def test_reading_what_a_data_mask_selects_is_still_refused():
    class Read(nn.Module):
        def forward(self, x):
            return x[x > 0]

    with pytest.raises(UnsupportedOperation, match="number of True entries"):
        symshape.analyze(Read(), ("T", "C"))
