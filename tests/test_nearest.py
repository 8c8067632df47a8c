"""nearest_sizes / symshape fit (issue 19 point 2): the accepted sizes nearest to an input's,
to pad or crop it to; exact (checked against a brute-force scan of valid_sizes) and run by torch."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidArgument
from symshape.load import load_model
from symshape.sizes import IntSet

EX = "examples"


@settings(max_examples=300, deadline=None)
@given(start=st.integers(1, 40), period=st.integers(1, 12), residues=st.lists(st.integers(0, 11), max_size=3),
       head=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 3)), max_size=3), n=st.integers(-2, 90))
def test_intset_nearest_members_match_a_scan(start, period, residues, head, n):
    s = IntSet.periodic(start, period, residues, [(a, a + d) for a, d in head])
    assert s.least_from(n) == next((m for m in range(max(n, 1), 500) if m in s), None)
    assert s.greatest_upto(n) == next((m for m in range(n, 0, -1) if m in s), None)


class Coupled(nn.Module):
    """Sizes coupled on lines: x + x.transpose needs W = H (or a broadcast of 1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2)

    def forward(self, x):
        y = self.conv(x)
        return y + y.transpose(2, 3)


class Halves(nn.Module):
    """An image and its half-size guide: the guide, upsampled, must match the image."""

    def forward(self, x, guide):
        return x + F.interpolate(guide, scale_factor=2.0)


MODELS = {
    "unet": (lambda: load_model(f"{EX}/unet.py:UNet").eval(), (1, "H", "W")),
    "mnist": (lambda: load_model(f"{EX}/seed000_mnist.py:Net").eval(), (1, "H", "W")),
    "cnnclf": (lambda: load_model(f"{EX}/seed001_cnnclf.py:CNNclf").eval(), (1, "H", "W")),
    "coupled": (lambda: Coupled().eval(), (1, "H", "W")),
    "halves": (lambda: Halves().eval(), ((1, "H", "W"), (1, "A", "B"))),
}


def _brute(valid, target: dict, up: bool, reach: int = 40):
    """The least total change among accepted sizes within ``reach`` of the target, by a scan."""
    names = list(target)
    ranges = [range(target[n], target[n] + reach + 1) if up else range(max(1, target[n] - reach), target[n] + 1)
              for n in names]
    costs = [sum(abs(v - target[n]) for v, n in zip(vals, names)) for vals in itertools.product(*ranges)
             if valid.contains(**dict(zip(names, vals)))]
    return min(costs) if costs else None


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("target", [(500, 375), (31, 33), (7, 7), (96, 95)])
def test_nearest_is_the_smallest_change_and_torch_runs_there(name, target):
    make, shape = MODELS[name]
    model = make()
    a = symshape.analyze(model, shape)
    names = a.size_names
    goal = dict(zip(names, (target * 2)[:len(names)]))
    near = a.nearest_sizes(**goal)
    valid = a.valid_sizes()
    for sizes, up in ((near.pad, True), (near.crop, False)):
        best = _brute(valid, goal, up, 40 if len(names) <= 2 else 5)
        if sizes is None:
            assert best is None  # nothing within reach either (pad: a finite set below the target)
            assert not any(valid.contains(**dict(zip(names, v))) for v in itertools.product(
                *[range(goal[n], goal[n] + 60) if up else range(1, goal[n] + 1) for n in names])) \
                if len(names) <= 2 else True
            continue
        assert valid.contains(**sizes)
        assert all((sizes[n] >= goal[n]) if up else (sizes[n] <= goal[n]) for n in names)
        cost = sum(abs(sizes[n] - goal[n]) for n in names)
        assert best is None or cost <= best  # no accepted size nearer, by the scan
        if best is not None:
            assert cost == best
        elif len(names) <= 2:
            assert cost > 40  # found beyond the scan's reach
        ev = a.at(**sizes)  # and torch runs there, with the shapes the analysis states
        args, kwargs = a.concrete_inputs(sizes)
        with torch.no_grad():
            out = model(*(torch.rand(*s) for s in args), **{k: torch.rand(*s) for k, s in kwargs.items()})
        assert tuple(out.shape) == ev.output_shape


def test_unet_image_of_500_by_375():
    a = symshape.analyze(load_model(f"{EX}/unet.py:UNet").eval(), (1, "H", "W"))
    near = a.nearest_sizes(H=500, W=375)
    assert near.pad == {"H": 512, "W": 384} and near.pad_amounts == {"H": 12, "W": 9}
    assert near.crop == {"H": 480, "W": 352} and near.crop_amounts == {"H": 20, "W": 23}
    assert str(near).splitlines() == ["pad:  H=512, W=384  (H +12, W +9)", "crop: H=480, W=352  (H -20, W -23)"]
    with pytest.raises(InvalidArgument, match="missing size"):
        a.nearest_sizes(H=500)


def test_fit_on_the_command_line():
    run = subprocess.run([sys.executable, "-m", "symshape", "fit", f"{EX}/unet.py:UNet", "--input", "1,H,W",
                          "--size", "500x375"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1:] == ["pad:  H=512, W=384  (H +12, W +9)", "crop: H=480, W=352  (H -20, W -23)"]
    run = subprocess.run([sys.executable, "-m", "symshape", "fit", f"{EX}/unet.py:UNet", "--input", "1,H,W",
                          "--size", "500"], capture_output=True, text=True)
    assert run.returncode == 2 and "one per size name (H, W)" in run.stderr
    run = subprocess.run([sys.executable, "-m", "symshape", "fit", f"{EX}/seed001_cnnclf.py:CNNclf", "--input",
                          "1,H,W", "--size", "H=100,W=30", "--json"], capture_output=True, text=True)
    assert run.returncode == 0 and '"pad": null' in run.stdout and '"crop": {"H": 39, "W": 30}' in run.stdout
