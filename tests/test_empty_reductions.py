"""Reductions without an identity (``amax``, ``amin``, ``argmax``, ``argmin``, ``max``, ``min``)
over no entries: torch's CPU kernels raise where a reduced dim has size 0 (without ``dim``, where
the input is empty), and symshape refuses those sizes with torch's message; a sum, whose identity
is 0, runs. A slice ``x[:, k:]`` empties a dim at small sizes. Every answer against torch."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidInputSize

GRID = list(itertools.product(range(1, 5), range(1, 5)))


class Reduced(nn.Module):
    def __init__(self, fn, cut: int):
        super().__init__()
        self.fn, self.cut = fn, cut

    def forward(self, x):
        return self.fn(x[:, self.cut:])


def _torch(model, a: int, b: int):
    try:
        with torch.no_grad():
            out = model(torch.rand(a, b))
    except (RuntimeError, IndexError) as e:
        return None, str(e)
    return (tuple(tuple(t.shape) for t in out) if isinstance(out, tuple) else tuple(out.shape)), ""


def _symshape(analysis, a: int, b: int):
    try:
        return analysis.at(A=a, B=b).output_shape, ""
    except InvalidInputSize as e:
        return None, str(e)


_OPS = {
    "amax()": lambda x: x.amax(), "amin(1)": lambda x: x.amin(1), "amax(0)": lambda x: x.amax(0),
    "amax((0, 1))": lambda x: x.amax((0, 1)), "amin(())": lambda x: x.amin(()),
    "amax(-1, keepdim)": lambda x: x.amax(-1, keepdim=True), "argmax()": lambda x: x.argmax(),
    "argmin(1)": lambda x: x.argmin(1), "torch.argmax(dim=0)": lambda x: torch.argmax(x, dim=0),
    "max()": lambda x: x.max(), "max(1)": lambda x: x.max(1), "torch.min(dim=1)": lambda x: torch.min(x, dim=1),
    "min(0)": lambda x: x.min(0), "torch.max": lambda x: torch.max(x), "sum()": lambda x: x.sum(),
    "sum(1)": lambda x: x.sum(1), "mean(0)": lambda x: x.mean(0),
    # an empty list of dims: every dim on torch's CPU (nansum's meta kernel keeps them), none for all/any
    "sum(())": lambda x: x.sum(()), "nansum(())": lambda x: x.nansum(()), "all(())": lambda x: x.all(()),
    # (torch's CPU kernel raises without keepdim: its (1, 1) result does not fit a 0-dim output)
    "logsumexp(())": lambda x: x.logsumexp(()), "logsumexp((), keepdim)": lambda x: x.logsumexp((), keepdim=True),
}


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted(_OPS)), cut=st.integers(0, 3))
def test_a_reduction_over_no_entries_is_refused_where_torch_refuses_it(op, cut):
    model = Reduced(_OPS[op], cut)
    try:
        analysis = symshape.analyze(model, ("A", "B"), batch=None)
    except InvalidInputSize as refused:  # at every size
        assert all(_torch(model, a, b)[0] is None for a, b in GRID), refused
        return
    for a, b in GRID:
        (said, why), (ran, error) = _symshape(analysis, a, b), _torch(model, a, b)
        assert said == ran, (op, cut, a, b, why, error)
        if error:  # torch's own words
            assert error.split(". ")[0] in why, (why, error)


@pytest.mark.parametrize("op", ["max()", "max(1)", "torch.min(dim=1)"])
def test_max_and_min_over_no_entries_are_no_check_of_the_meta_kernels(op):
    """torch's meta kernels of ``max``/``min`` run over no entries; the CPU raises: verification
    on the meta device notes such a size, and on the CPU agrees."""
    analysis = symshape.analyze(Reduced(_OPS[op], 1), ("A", "B"), batch=None)
    assert analysis.valid_sizes().summary() == "B ≥ 2"
    report = analysis.verify(sizes=[{"A": 2, "B": 1}], device="meta")
    assert report.ok and report.notes
    assert analysis.verify(sizes=[{"A": 2, "B": 1}, {"A": 2, "B": 3}]).ok
