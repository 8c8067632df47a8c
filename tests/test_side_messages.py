"""A refusal on one side of a Python branch on a size states the check torch makes there, with
that check's own values -- not the values of the branch's condition, which the side's
requirement is chained after (symshape.requirements.unless_not) -- compared with torch's own
refusal of the same size."""

import re

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from symshape.errors import InvalidInputSize


class CutThenLinear(nn.Module):
    """A Linear after a cut taken only past a threshold (a sequence trimmed when too long)."""

    def __init__(self, threshold: int, cut: int, in_features: int):
        super().__init__()
        self.threshold, self.cut = threshold, cut
        self.fc = nn.Linear(in_features, 3)

    def forward(self, x):
        if x.shape[1] > self.threshold:
            x = x[:, :self.cut]
        return self.fc(x)


class CutThenPool(nn.Module):
    """A max pool after the same kind of cut."""

    def __init__(self, threshold: int, cut: int, kernel: int):
        super().__init__()
        self.threshold, self.cut = threshold, cut
        self.pool = nn.MaxPool1d(kernel)

    def forward(self, x):
        if x.shape[-1] > self.threshold:
            x = x[..., :self.cut]
        return self.pool(x)


def _torch_linear_refusal(model: nn.Module, length: int):
    """torch's (last dim, in_features) from its refusal, or None where it runs."""
    try:
        with torch.no_grad():
            model(torch.zeros(1, length))
    except RuntimeError as e:
        found = re.search(r"\(1x(\d+) and (\d+)x\d+\)", str(e))
        assert found, str(e)
        return int(found.group(1)), int(found.group(2))
    return None


@settings(max_examples=30, deadline=None)
@given(threshold=st.integers(1, 30), cut=st.integers(1, 30), in_features=st.integers(1, 40),
       lengths=st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_a_linear_on_a_side_states_its_in_features(threshold, cut, in_features, lengths):
    model = CutThenLinear(threshold, cut, in_features).eval()
    analysis = symshape.analyze(model, ("L",))
    for length in lengths:
        refused = _torch_linear_refusal(model, length)
        ev = analysis.evaluate(L=length)
        if refused is None:
            assert not ev.mismatches and ev.failure is None, length
            continue
        last, declared = refused
        assert [m.reason for m in ev.mismatches] == [
            f"fc: in_features is {declared} but the input's last dim is {last} "
            "(torch: mat1 and mat2 shapes cannot be multiplied)"], length


@settings(max_examples=30, deadline=None)
@given(threshold=st.integers(1, 30), cut=st.integers(1, 30), kernel=st.integers(2, 8),
       lengths=st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_a_pool_on_a_side_states_the_positions_it_gets(threshold, cut, kernel, lengths):
    model = CutThenPool(threshold, cut, kernel).eval()
    analysis = symshape.analyze(model, (2, "L"))
    reached = []  # the length torch hands the pool
    model.pool.register_forward_pre_hook(lambda mod, args: reached.append(args[0].shape[-1]))
    for length in lengths:
        reached.clear()
        try:
            with torch.no_grad():
                model(torch.zeros(1, 2, length))
            ran = True
        except RuntimeError:
            ran = False
        ev = analysis.evaluate(L=length)
        if ran:
            assert ev.failure is None, length
            continue
        assert ev.failure is not None, length
        assert ev.failure.reason == f"pool: max pooling kernel {kernel} needs at least {kernel} positions, " \
                                    f"gets {reached[0]}", length
        with pytest.raises(InvalidInputSize, match=f"needs at least {kernel} positions, gets {reached[0]} "):
            analysis.at(L=length)


@settings(max_examples=30, deadline=None)
@given(threshold=st.integers(1, 30), cut=st.integers(1, 30), in_features=st.integers(1, 40),
       lengths=st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_check_at_a_size_finds_a_linear_on_a_side(threshold, cut, in_features, lengths):
    """``check()`` at a size: a Linear that the two sides reach with different sizes is in no
    in_features formula, and where torch refuses it there the report is not ok, with torch's
    reason; where torch runs, it is ok and says the Linear fits."""
    model = CutThenLinear(threshold, cut, in_features).eval()
    analysis = symshape.analyze(model, ("L",))
    sides_differ = "fc" not in analysis.in_features
    for length in lengths:
        refused = _torch_linear_refusal(model, length)
        report = analysis.check(L=length)
        assert report.ok == (refused is None), (length, str(report))
        if refused is not None and sides_differ:
            assert report.refused == [f"fc: in_features is {refused[1]} but the input's last dim is {refused[0]} "
                                      "(torch: mat1 and mat2 shapes cannot be multiplied)"]
        if refused is None and sides_differ:
            assert str(report) == f"fc fits what reaches it at L={length} (on the sides of a Python branch)"
    if sides_differ:
        assert analysis.check().by_sides == ["fc"]
        assert "not checked for every size: fc is reached by different sizes" in str(analysis.check())


def test_the_check_of_a_side_is_its_last_link():
    """The chain a side leaves is its conditions' negations, then the check: ``check`` is the
    check, and a chain that is no side's is its own check."""
    model = CutThenPool(20, 3, 4).eval()
    analysis = symshape.analyze(model, (2, "L"))
    chains = [r for s in analysis.steps for r in s.requirements if r.unless is not None]
    assert chains
    for r in chains:
        assert r.condition and not r.check.condition
        assert r.check.reason == r.reason
        assert r.check is not r
    plain = symshape.analyze(nn.MaxPool1d(4), (2, "L"))
    assert all(r.check is r for s in plain.steps for r in s.requirements)
