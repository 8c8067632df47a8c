"""Bounds on float entries (symshape.bounds) that decide a Python branch, against torch.

Longformer and LED build a float attention mask from sizes alone (``torch.ones`` of the input's
shape, padded to a multiple of the window with ``F.pad(value=0)``, turned into ``0`` / ``min``
by a ``where`` or a ``masked_fill`` and a product), then branch on whether any entry is positive
(``is_global_attn = (mask > 0).flatten().any().item()``). The entries are never positive, at any
length: symshape follows their bounds through each of those ops, so the branch is decided, and
the side taken is torch's. hypothesis draws such programs of float ops (including ones whose
entries may be NaN, infinite, or on both sides of the threshold) and checks that wherever
symshape analyzes, the branch it took is the one torch takes at every length checked.
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import symshape
from symshape.errors import InvalidInputSize, UnsupportedWhereMetaDiffers, UntraceableModel

LENGTHS = [1, 2, 3, 7, 8, 9, 16, 17]
MIN, MAX = torch.finfo(torch.float32).min, torch.finfo(torch.float32).max


def _shape_at(model, t: int):
    """torch's output shape at batch 1 and length t, or None where its forward raises."""
    try:
        with torch.no_grad():
            return tuple(model(torch.zeros(1, t, dtype=torch.long)).shape)
    except (RuntimeError, IndexError):
        return None


def _predicted(analysis, t: int):
    at = analysis.evaluate(T=t)
    return None if at.failure is not None else tuple(at.output_shape)


def _agrees(model, lengths=LENGTHS) -> None:
    analysis = symshape.analyze(model, symshape.Input(("T",), torch.long))
    for t in lengths:
        assert _predicted(analysis, t) == _shape_at(model, t), t
    report = analysis.verify(sizes=[{"T": t} for t in lengths], batch=2)
    assert report.ok, report


class LongformerMask(nn.Module):
    """Longformer's mask, from its model file: ones, padded to a multiple of 8, made 0 / min by a
    where (transformers' create_bidirectional_mask), a masked write that never writes (its mask
    compares 0 … 1 with 2), then the branch on a positive entry; the global side adds a row."""

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.ones(ids.shape)
        padding = (8 - t % 8) % 8
        if padding > 0:
            mask = F.pad(mask, (0, padding), value=0)
        ext = torch.where(torch.clamp(mask, min=0, max=1).bool()[:, None, None, :], torch.tensor(0.0), MIN)
        ext = ext[:, 0, 0, :]
        ext[mask == 2] = MAX
        if (ext > 0).flatten().any().item():
            return torch.cat([ext, ext[:, :1]], 1)
        return ext


class LedMask(nn.Module):
    """LED's ``_prepare_4d_attention_mask_inverted``: ``1 - mask``, ``min`` where that is
    nonzero, times ``1 - mask`` again (so that a global token, 2, would come out positive)."""

    def forward(self, ids):
        mask = F.pad(torch.ones(ids.shape, dtype=torch.long), (0, 3), value=False)
        inverted = 1.0 - mask[:, None, None, :].expand(ids.shape[0], 1, mask.shape[1], mask.shape[1]).to(torch.float32)
        filled = inverted.masked_fill(inverted.bool(), MIN) * inverted
        if (filled[:, 0, 0, :] > 0).flatten().any().item():
            return filled[:, 0, 0, :1]
        return filled[:, 0, 0, :]


@pytest.mark.parametrize("model", [LongformerMask, LedMask])
def test_the_global_attention_branch_is_decided_as_torch_takes_it(model):
    _agrees(model())


class Positions(nn.Module):
    """Longformer's positions: the ids padded with the padding index, numbered by a cumsum of
    the tokens that are not padding (the padded ones stay the padding index) into 512 rows."""

    def forward(self, ids):
        t = ids.shape[1]
        padding = (8 - t % 8) % 8
        if padding > 0:
            ids = F.pad(ids, (0, padding), value=1)
        mask = ids.ne(1).int()
        positions = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + 1
        return F.embedding(positions, torch.zeros(512, 4))


def test_a_count_of_a_padded_mask_counts_the_real_tokens_only():
    """The padded ids equal the padding index, so the count reaches T, not the padded length:
    the last length torch takes is 510 (positions up to 511), not 504."""
    analysis = symshape.analyze(Positions(), symshape.Input(("T",), torch.long))
    assert str(analysis.valid_sizes()) == "T ∈ [1, 510]"
    _agrees(Positions(), [1, 8, 9, 503, 504, 505, 509, 510, 511, 512, 513])


class MaybeWritten(nn.Module):
    """A masked write whose mask may be true: what was known of the entries is gone, and the
    branch on them is refused, not guessed."""

    def forward(self, ids):
        ext = torch.zeros(ids.shape)
        ext[torch.ones(ids.shape) >= 1] = 5.0
        if (ext > 0).any().item():
            return ext[:, :1]
        return ext


def test_a_write_by_a_mask_that_may_be_true_leaves_the_branch_undecided():
    with pytest.raises(UntraceableModel, match="whose bounds do not decide it"):
        symshape.analyze(MaybeWritten(), symshape.Input(("T",), torch.long))


# -- hypothesis: programs of float ops on a mask made from sizes -------------------------------

_NUMBERS = st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, 0.1, MIN, MAX, math.inf, -math.inf, math.nan])
_STEP = st.one_of(
    st.tuples(st.just("where"), _NUMBERS, _NUMBERS, _NUMBERS),   # where(v > a, b, c)
    st.tuples(st.just("clamp"), _NUMBERS, _NUMBERS),
    st.tuples(st.just("scale"), _NUMBERS),                       # v * c
    st.tuples(st.just("shift"), _NUMBERS),                       # v + c
    st.tuples(st.just("rsub"), _NUMBERS),                        # c - v
    st.tuples(st.just("square"),),                               # v * v
    st.tuples(st.just("fill"), _NUMBERS),                        # v.masked_fill(v.bool(), c)
    st.tuples(st.just("fill_equal"), _NUMBERS, _NUMBERS),        # v.masked_fill(v == a, c)
    st.tuples(st.just("pad"), _NUMBERS),                         # F.pad(v, (0, 2), value=c)
    st.tuples(st.just("write"), _NUMBERS, _NUMBERS),             # v[v == a] = c (in place)
)


def _apply(v, step):
    op, *a = step
    if op == "where":
        return torch.where(v > a[0], torch.tensor(a[1]), a[2])
    if op == "clamp":
        return torch.clamp(v, min=min(a), max=max(a))
    if op == "scale":
        return v * a[0]
    if op == "shift":
        return v + a[0]
    if op == "rsub":
        return a[0] - v
    if op == "square":
        return v * v
    if op == "fill":
        return v.masked_fill(v.bool(), a[0])
    if op == "fill_equal":
        return v.masked_fill(v == a[0], a[1])
    if op == "pad":
        return F.pad(v, (0, 2), value=a[0])
    v = v.clone()
    v[v == a[0]] = a[1]
    return v


class Program(nn.Module):
    def __init__(self, start: str, steps, test: str, threshold: float, reduce: str = "any"):
        super().__init__()
        self.start, self.steps, self.test, self.threshold, self.reduce = start, steps, test, threshold, reduce

    def forward(self, ids):
        v = {"ones": lambda: torch.ones(ids.shape), "zeros": lambda: torch.zeros(ids.shape),
             "padded": lambda: F.pad(torch.ones(ids.shape), (0, 3), value=0.0)}[self.start]()
        for step in self.steps:
            v = _apply(v, step)
        hit = {"gt": v > self.threshold, "lt": v < self.threshold, "eq": v == self.threshold,
               "ne": v != self.threshold}[self.test]
        if (hit.flatten().any() if self.reduce == "any" else hit.all()).item():
            return v[:, :1]
        return v


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(start="padded", steps=[("where", 0.0, 0.0, MIN)], test="gt", threshold=0.0, reduce="any")
@example(start="ones", steps=[("scale", math.inf), ("scale", 0.0)], test="gt", threshold=0.0, reduce="any")
@example(start="padded", steps=[("rsub", 1.0), ("fill", MIN), ("square",)], test="lt", threshold=0.0, reduce="any")
@example(start="zeros", steps=[("write", 0.0, 2.0)], test="gt", threshold=1.0, reduce="any")
@example(start="ones", steps=[], test="ne", threshold=math.nan, reduce="all")
@example(start="ones", steps=[("where", 0.0, 0.1, 0.0)], test="gt", threshold=0.1, reduce="any")  # (in float32)
@example(start="padded", steps=[("where", 0.5, math.nan, 1.0)], test="eq", threshold=math.nan, reduce="any")
@given(start=st.sampled_from(["ones", "zeros", "padded"]), steps=st.lists(_STEP, max_size=4),
       test=st.sampled_from(["gt", "lt", "eq", "ne"]), threshold=_NUMBERS, reduce=st.sampled_from(["any", "all"]))
def test_float_bounds_decide_branches_as_torch_does(start, steps, test, threshold, reduce):
    model = Program(start, steps, test, threshold, reduce)
    try:
        analysis = symshape.analyze(model, symshape.Input(("T",), torch.long))
    except UntraceableModel as e:
        assert "do not decide it" in str(e)
        return
    for t in (1, 2, 5):
        assert _predicted(analysis, t) == _shape_at(model, t), (t, steps)


class PaddedIndex(nn.Module):
    """Zeros padded with a float value into an integer tensor: torch truncates it (2.7 is 2), so
    every index lies in the table's 3 rows at every length."""

    def forward(self, ids):
        index = F.pad(torch.zeros(ids.shape, dtype=torch.long), (0, 2), value=2.7)
        return F.embedding(index, torch.zeros(3, 4))


def test_a_pad_value_is_the_one_torch_writes():
    _agrees(PaddedIndex())


class PaddedPastTheTable(nn.Module):
    """Zeros padded with 3.2 (torch writes 3) into 3 rows: refused at every length, as torch
    does (main had answered every length, taking the entries for data); with an amount that may
    be 0 (a multiple of 8 needs no padding) the 3 is not there at every length: refused by
    name, with the bound."""

    def __init__(self, always: bool):
        super().__init__()
        self.always = always

    def forward(self, ids):
        t = ids.shape[1]
        amount = 2 if self.always else (8 - t % 8) % 8
        index = F.pad(torch.zeros(ids.shape, dtype=torch.long), (0, amount), value=3.2)
        return F.embedding(index, torch.zeros(3, 4))


def test_a_pad_past_the_table_is_refused_as_torch_refuses_it():
    with pytest.raises(InvalidInputSize, match=r"index 3 \(the greatest\) into 3 embeddings \(whatever T is\)"):
        symshape.analyze(PaddedPastTheTable(True), symshape.Input(("T",), torch.long))
    assert all(_shape_at(PaddedPastTheTable(True), t) is None for t in LENGTHS)
    with pytest.raises(UnsupportedWhereMetaDiffers, match="made from constants that symshape bounds by 0 … 3"):
        symshape.analyze(PaddedPastTheTable(False), symshape.Input(("T",), torch.long))
