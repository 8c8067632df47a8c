"""Analysis.plot() (issue 18 point 5): the in_features curve for square sizes and the size map
over H × W; every category of the map is checked against real forward passes."""

from __future__ import annotations

import builtins
import random

import pytest
import torch
import torch.nn as nn

import seed000_mnist
import symshape
from symshape.errors import InvalidArgument
from symshape.plot import CATEGORIES, size_map
from symshape.solve import exact_sizes


class _Reached(Exception):
    pass


def _torch_category(model, linear: nn.Module, h: int, w: int) -> set[int]:
    """What torch does at H=h, W=w: refuses before the Linear (0), reaches it (1 or 2: the
    rounding is not torch's to say), or runs the whole model (3, the declared value fits)."""
    with torch.no_grad():
        try:
            model(torch.zeros(1, 1, h, w))
            return {3}
        except RuntimeError:
            pass
        handle = linear.register_forward_pre_hook(lambda m, a: (_ for _ in ()).throw(_Reached()))
        try:
            model(torch.zeros(1, 1, h, w))
        except _Reached:
            return {1, 2}
        except RuntimeError:
            return {0}
        finally:
            handle.remove()
    return {3}


def test_the_size_map_agrees_with_torch():
    model = seed000_mnist.Net().eval()
    a = symshape.analyze(model, (1, "H", "W"))
    grid = size_map(a, upto=48)
    assert grid.shape == (48, 48) and set(grid.unique().tolist()) == {0, 1, 2, 3}
    rng = random.Random(0)
    points = [(28, 28), (31, 31), (32, 32), (15, 40), (16, 16), (16, 17)] + [
        (rng.randint(1, 48), rng.randint(1, 48)) for _ in range(60)]
    for h, w in points:
        assert int(grid[h - 1, w - 1]) in _torch_category(model, model.fc1, h, w), (h, w)
    exact = exact_sizes(a, ignore_declared=True)  # no rounding, whatever the declared in_features
    assert int(grid[15, 15]) == 2 and exact.contains(H=16, W=16)  # 16×16 needs no rounding
    assert int(grid[16, 16]) == 1 and not exact.contains(H=17, W=17)


def test_plot_draws_the_curve_and_the_map():
    pytest.importorskip("matplotlib")
    a = symshape.analyze(seed000_mnist.Net().eval(), (1, "H", "W"))
    fig = a.plot(upto=40)
    curve, grid = fig.axes[:2]
    assert curve.get_ylabel() == "in_features of fc1" and grid.get_title() == "sizes the model takes"
    assert [t.get_text() for t in grid.get_legend().get_texts()] == [n for n, _ in CATEGORIES]
    line = curve.get_lines()[0]
    xs, ys = line.get_xdata(), line.get_ydata()
    assert xs[0] == 16 and ys[0] == 20  # the smallest square size, and its in_features
    assert dict(zip(xs, ys))[28] == 320
    one = symshape.analyze(nn.Sequential(nn.Conv1d(1, 2, 3, stride=2), nn.Flatten(), nn.LazyLinear(4)), (1, "L"))
    assert len(one.plot(upto=20).axes) == 1  # one size: the curve alone


def test_plot_needs_matplotlib_and_says_so(monkeypatch):
    a = symshape.analyze(seed000_mnist.Net(), (1, "H", "W"))
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(InvalidArgument, match=r"needs matplotlib: pip install '.\[plot\]'"):
        a.plot()
    with pytest.raises(InvalidArgument, match="upto"):
        a.plot(upto=0)
