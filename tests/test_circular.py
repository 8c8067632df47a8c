"""Negative circular padding, as torch's ``_pad_circular`` does it: checks, then copies between
slices that refuse finitely many sizes (lengths that differ, or slices of the output that
overlap where torch can tell). Checked against torch: the one-dim emulation on a full grid, and
analyses with symbolic sizes (the batch and channels too) on random pads and sizes."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidInputSize
from symshape.rules.pad import circular_outcome


def _torch_pads(shape, pad):
    """The output shape of torch's circular pad, or None where it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return tuple(F.pad(torch.zeros(shape), pad, mode="circular").shape)
        except RuntimeError:
            return None


@pytest.mark.parametrize("lead", [(1, 1), (2, 1), (1, 3), (1, 0)])
def test_the_one_dim_steps_are_torchs(lead):
    for left, right in itertools.product(range(-6, 5), repeat=2):
        for n in range(16):
            outcome = circular_outcome(n, left, right, all(s < 2 for s in lead))
            if outcome == "overlap" and 0 in lead:  # torch checks no overlap of an empty copy
                outcome = None
            assert (outcome is None) == (_torch_pads((*lead, n), (left, right)) is not None), (left, right, lead, n)


def test_no_size_fails_from_twice_the_amounts_on():
    for left, right in itertools.product(range(-8, 8), repeat=2):
        start = 2 * (abs(left) + abs(right)) + 2
        assert all(circular_outcome(n, left, right, small) is None
                   for n in range(start, 3 * start) for small in (False, True)), (left, right)


class Pad(nn.Module):
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return F.pad(x, self.pad, mode="circular")


def _agree(pad, spec, names, sizes, batched):
    model = Pad(pad)
    a = symshape.analyze(model, spec, batch="N" if batched else None)
    for s in sizes:
        values = dict(zip(names, s))
        shape = a.concrete_input(values)
        try:
            got = a.at(**values).output_shape
        except InvalidInputSize:
            got = None
        assert got == _torch_pads(shape, pad), (pad, values)


def test_the_opinfo_sample():
    """torch's own sample (1, 3, 4, 4) with pads (-1, 1, -2, 1), at sizes around it."""
    sizes = list(itertools.product(range(1, 4), range(1, 4), range(1, 7), range(1, 7)))
    _agree((-1, 1, -2, 1), ("A", "B", "C", "D"), "ABCD", sizes, False)


@settings(max_examples=30, deadline=None)
@given(pad=st.lists(st.integers(-5, 4), min_size=2, max_size=4).filter(lambda p: len(p) % 2 == 0 and min(p) < 0),
       sizes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
                      min_size=4, max_size=10))
def test_random_pads_against_torch(pad, sizes):
    if len(pad) == 2:  # one padded dim: (N, C, W)
        _agree(tuple(pad), ("C", "W"), ("N", "C", "W"), [(n, c, w) for n, c, _, w in sizes], True)
    else:
        _agree(tuple(pad), ("C", "H", "W"), ("N", "C", "H", "W"), sizes, True)
