"""Python that branches on sizes: each side traced under its condition, checked against torch.

A module whose forward asks ``if h % 32:``, ``assert``, ``min(h, w)`` or loops while a size is
large is traced once per side of its branches (symshape.trace.Path); the sides merge into one step
whose shape is defined by cases, and a side on which the model raises becomes a requirement that
carries the model's own message. Every answer below is compared with real forward passes, on
grids that include the sizes torch refuses, and ``valid_sizes()`` with a brute-force scan.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid, members, scan


class DivisibleBy32(nn.Module):
    """The segmentation libraries' input guard."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 != 0 or w % 32 != 0:
            raise RuntimeError(f"input size must be divisible by 32, got {h}x{w}")
        return self.conv(x)


class PadOddToEven(nn.Module):
    def forward(self, x):
        if x.size(-1) % 2 == 1:
            x = F.pad(x, (0, 1))
        return F.max_pool1d(x, 2)


class Net1d(nn.Module):
    """A branching module inside a model: only it is traced by sides, the rest as usual."""

    def __init__(self):
        super().__init__()
        self.pad = PadOddToEven()
        self.conv = nn.Conv1d(1, 4, 3)
        self.fc = nn.LazyLinear(3)

    def forward(self, x):
        return self.fc(self.conv(self.pad(x)).flatten(1))


class Asserts(nn.Module):
    def forward(self, x):
        assert x.shape[-1] >= 4, "too short"
        return F.avg_pool1d(x, 4)


class SmallerSide(nn.Module):
    """``min`` of two sizes compares them: a branch."""

    def forward(self, x):
        s = min(x.size(2), x.size(3))
        return F.adaptive_avg_pool2d(x[:, :, :s, :s], 2) if s >= 2 else x[:, :, :1, :1]


class Halve(nn.Module):
    """A loop over a fixed range whose body depends on the size."""

    def forward(self, x):
        for _ in range(3):
            if x.size(-1) > 8:
                x = F.max_pool1d(x, 2)
        return x


class EarlyReturn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 5)

    def forward(self, x):
        if x.size(-1) < 5:
            return x.repeat(1, 2, 1)
        return self.conv(x)


class Dispatch(nn.Module):
    """Branches on the batch's size and on a spatial size, nested in modules."""

    def __init__(self):
        super().__init__()
        self.first = PadOddToEven()
        self.second = Halve()

    def forward(self, x):
        return self.second(self.first(x))


def test_a_guard_gives_the_models_valid_sizes_with_its_message():
    a = symshape.analyze(DivisibleBy32(), (1, "H", "W"))
    assert [s.rule for s in a.steps] == ["cases"]
    valid = a.valid_sizes()
    assert members(valid, ["H", "W"], 70) == {(h, w) for h in (32, 64) for w in (32, 64)}
    with pytest.raises(symshape.InvalidInputSize, match=r"divisible by 32, got HxW"):
        a.at(H=33, W=64)
    assert a.at(H=64, W=32).output_shape == (1, 4, 32, 16)
    assert_agrees(DivisibleBy32(), (1, "H", "W"), grid(("H", "W"), [1, 31, 32, 33, 64, 96]))


def test_padding_odd_sizes_to_even_is_exact_on_both_sides():
    a = symshape.analyze(PadOddToEven(), (1, "L"))
    assert [a.at(L=n).output_shape[-1] for n in (1, 2, 5, 6)] == [1, 1, 3, 3]
    assert_agrees(PadOddToEven(), (1, "L"), [{"L": n} for n in range(1, 40)])


def test_a_branching_module_inside_a_model_keeps_the_rest_step_by_step():
    net = Net1d()
    a = symshape.analyze(net, (1, "L"))
    assert [s.name for s in a.steps][:2] == ["pad", "conv"] and a.steps[0].rule == "cases"
    # in_features is still a formula of L: 4 * (ceil(L/2) - 2)
    assert [a.formula()(L=n) for n in (5, 6, 9)] == [4, 4, 12]
    assert_agrees(net, (1, "L"), [{"L": n} for n in range(1, 30)])
    assert members(a.valid_sizes(), ["L"], 30) == scan(net, (1, "L"), ["L"], 30)


def test_an_assert_is_a_requirement_with_its_message():
    a = symshape.analyze(Asserts(), (1, "L"))
    with pytest.raises(symshape.InvalidInputSize, match="too short"):
        a.at(L=3)
    assert_agrees(Asserts(), (1, "L"), [{"L": n} for n in range(1, 20)])
    assert members(a.valid_sizes(), ["L"], 20) == scan(Asserts(), (1, "L"), ["L"], 20)


@pytest.mark.parametrize("model, shape, names, values", [
    (SmallerSide(), (1, "H", "W"), ("H", "W"), [1, 2, 3, 5, 8]),
    (Halve(), (1, "L"), ("L",), list(range(1, 70))),
    (EarlyReturn(), (1, "L"), ("L",), list(range(1, 12))),
    (Dispatch(), (1, "L"), ("L",), list(range(1, 70))),
])
def test_branches_agree_with_torch(model, shape, names, values):
    assert_agrees(model, shape, grid(names, values))


def test_explain_and_check_show_the_models_message():
    a = symshape.analyze(DivisibleBy32(), (1, "H", "W"))
    text = a.explain()
    assert "divisible by 32" in text
    report = a.verify(samples=12)
    assert report.ok, str(report)


class Countdown(nn.Module):
    def forward(self, x):
        n = 0
        while x.size(-1) > n:  # one branch per size: more sides than symshape follows
            n += 1
        return x[..., :1]


class HalveWhileLong(nn.Module):
    def forward(self, x):
        while x.size(-1) > 8:  # as many halvings as log2(L): no finite set of cases
            x = F.max_pool1d(x, 2)
        return x


@pytest.mark.parametrize("model", [Countdown(), HalveWhileLong()])
def test_more_sides_than_the_bound_is_refused_naming_the_condition(model):
    with pytest.raises(symshape.UntraceableModel, match=r"L > \d+") as e:
        symshape.analyze(model, (1, "L"))
    assert "more than 64" in str(e.value.__cause__)


class StrideWhenLong(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, stride=2)

    def forward(self, x):
        if x.size(-1) > 20:
            x = self.conv(x)
        return x


def test_a_side_that_rounds_counts_only_on_its_side_for_exact_sizes():
    a = symshape.analyze(StrideWhenLong(), (1, "L"))
    exact = members(a.exact_sizes(), ["L"], 60)
    assert exact == {(n,) for n in range(1, 61) if n <= 20 or (n - 3) % 2 == 0}
    assert_agrees(StrideWhenLong(), (1, "L"), [{"L": n} for n in range(1, 40)])
