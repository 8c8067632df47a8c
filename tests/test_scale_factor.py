"""``scale_factor`` as torch computes it: ``floor(double(n) * s)``, exact for every float scale.

Checked against torch's own size computation (a meta-device ``F.interpolate``) for every n up to
100,000 at the scales the issue names, near 2**24, 2**31 and 2**40, in every mode and for every
``recompute_scale_factor``; and the solver's answers through such a layer against a scan of
forwards."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from symshape.dims import DoubleFloor, scaled_floor, size_symbol

SCALES = (0.1, 0.3, 0.35, 1 / 3, 0.6, 2.2, 1.7)
L = size_symbol("L")


def torch_size(n: int, s: float, mode: str = "nearest", recompute=None, rank: int = 3,
               device: str = "meta") -> int | None:
    """The size torch's interpolate gives one dim of n (None: torch refuses). The meta kernels
    size ``nearest`` as the CPU does; the linear modes' meta kernels skip the CPU's check that
    the output is not empty, so those are asked of the CPU."""
    shape = (1, 1, *([10] * (rank - 3)), n)
    try:
        out = F.interpolate(torch.zeros(shape, device=device), scale_factor=s, mode=mode,
                            recompute_scale_factor=recompute)
    except (RuntimeError, ValueError):
        return None
    return out.shape[-1]


class Scale(nn.Module):
    def __init__(self, s, mode="nearest", recompute=None, module=False):
        super().__init__()
        self.up = nn.Upsample(scale_factor=s, mode=mode, recompute_scale_factor=recompute) if module else None
        self.s, self.mode, self.recompute = s, mode, recompute
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        if self.up is not None:
            x = self.up(x)
        else:
            x = F.interpolate(x, scale_factor=self.s, mode=self.mode, recompute_scale_factor=self.recompute)
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("s", SCALES)
def test_every_size_to_100000_agrees_with_torch(s):
    grid = symshape.analyze(Scale(s), (1, "L")).formula().grid(L=range(1, 100_001))
    values, valid = grid.values.tolist(), grid.valid.tolist()
    for n in range(1, 100_001):
        want = torch_size(n, s)
        assert (values[n - 1] if valid[n - 1] else None) == want, (s, n, values[n - 1], want)


def test_the_double_product_is_what_torch_floors():
    e = scaled_floor(L, 0.35)
    assert isinstance(e, DoubleFloor) and str(e) == "floor(L*0.35)"
    assert e.xreplace({L: 180}) == 62 == torch_size(180, 0.35)  # 62.99999999999999 in double
    assert math.floor(180 * 0.35) == 62 and 180 * 35 // 100 == 63
    assert str(scaled_floor(L, 0.5)) == "floor(L/2)" and str(scaled_floor(L, 1.5)) == "floor(3*L/2)"
    assert scaled_floor(L, 2) == 2 * L


@pytest.mark.parametrize("s", SCALES + (0.5, 1.5, 2.0))
@pytest.mark.parametrize("power", [24, 31, 40])
def test_huge_sizes_agree_with_torch(s, power):
    a = symshape.analyze(Scale(s), (1, "L"))
    f = a.formula()
    sizes = [2**power + d for d in (-3, -2, -1, 0, 1, 2, 3)] + [2**power // 3 * 2 + 1, 3**(power * 2 // 3)]
    grid = f.grid(L=sizes)
    for n, g in zip(sizes, grid.values.tolist()):
        want = torch_size(n, s)
        assert f(L=n) == want == g == a.at(L=n).in_features["fc"], (s, n)


MODES = [("nearest", 3), ("nearest-exact", 3), ("area", 3), ("linear", 3), ("bilinear", 4), ("bicubic", 4),
         ("trilinear", 5), ("area", 4), ("nearest", 5)]


@pytest.mark.parametrize("mode,rank", MODES)
@pytest.mark.parametrize("recompute", [None, False, True])
@pytest.mark.parametrize("module", [False, True])
def test_every_mode_and_recompute_setting(mode, rank, recompute, module):
    shape = (1, *([10] * (rank - 3)), "L")
    for s in SCALES:
        f = symshape.analyze(Scale(s, mode, recompute, module), shape).formula()
        values = f.grid(L=range(1, 301))
        other = math.floor(10 * s) ** (rank - 3)  # the leading dims of 10, scaled too
        for n in range(1, 301):
            want = torch_size(n, s, mode, recompute, rank, device="cpu")
            got = values.values[n - 1].item() if values.valid[n - 1] else None
            assert got == (want * other if want is not None else None), (mode, rank, recompute, s, n)


class Pipeline(nn.Module):
    """conv -> interpolate(s) -> conv -> Linear: a float scale in the middle of a stack."""

    def __init__(self, s, k1, st1, k2):
        super().__init__()
        self.c1, self.c2, self.s = nn.Conv1d(1, 2, k1, stride=st1), nn.Conv1d(2, 1, k2), s
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        return self.fc(self.c2(F.interpolate(self.c1(x), scale_factor=self.s)).flatten(1))


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 3.0).filter(lambda s: abs(s - round(s)) > 1e-9), st.integers(1, 5), st.integers(1, 3),
       st.integers(1, 5))
def test_the_solver_stays_exact_through_a_float_scale(s, k1, st1, k2):
    model = Pipeline(s, k1, st1, k2).eval()
    a = symshape.analyze(model, (1, "L"))
    valid = a.valid_sizes()
    flats = {}
    for n in range(1, 301):
        try:
            with torch.no_grad():
                out = model.c2(F.interpolate(model.c1(torch.zeros(1, 1, n)), scale_factor=s)).flatten(1).shape[1]
        except RuntimeError:
            out = None
        assert valid.contains(L=n) == (out is not None), (s, n, str(valid))
        if out is not None:
            flats.setdefault(out, set()).add(n)
    for flat in sorted(flats)[:4]:
        got = a.solve(flat)
        assert {r["L"] for r in got.enumerate(300)} == flats[flat], (s, flat, str(got))


def test_exact_sizes_states_short_scales_and_refuses_rounded_products_by_name():
    half = symshape.analyze(Scale(0.5), (1, "L"))
    assert str(half.exact_sizes()) == "L ≥ 2, L ≡ 0 (mod 2)"  # floor(L/2) rounds at odd L
    assert str(symshape.analyze(Scale(1.5), (1, "L")).exact_sizes()) == "L ≥ 2, L ≡ 0 (mod 2)"
    with pytest.raises(symshape.quasi.Unsolvable, match="scale_factor 0.35"):
        symshape.analyze(Scale(0.35), (1, "L")).exact_sizes()


def test_explain_shows_the_double_product():
    a = symshape.analyze(Scale(0.35), (1, "L"))
    text = str(a.explain(L=180))
    assert "180 × 0.35 = 62.99999999999999 → 62" in text
    assert "180 × 0.35 is 63 written out, but torch multiplies in double precision" in text
    assert "torch rounds the product to a double before the floor" in str(a.explain())


class KeepFraction(nn.Module):
    """``int(x.size(2) * s)`` rows kept (a slimmable / crop-ratio idiom), then a Linear."""

    def __init__(self, s, floor=False):
        super().__init__()
        self.s, self.floor = s, floor
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        keep = math.floor(x.size(2) * self.s) if self.floor else int(x.size(2) * self.s)
        return self.fc(x[:, :, :keep].flatten(1))


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("floor", [False, True])
def test_int_of_a_size_times_a_float_is_pythons_double_product(s, floor):
    a = symshape.analyze(KeepFraction(s, floor), (2, "L"))
    f = a.formula()
    for n in list(range(1, 400)) + [180, 2**31 + 7, 2**40 - 1]:
        want = 2 * min(n, math.floor(n * s))
        assert f(L=n) == want, (s, n)
    assert a.verify(samples=20).ok


def test_other_arithmetic_on_a_double_product_is_refused_by_name():
    class Off(nn.Module):
        def forward(self, x):
            return x[:, :, :int(x.size(2) * 0.3 + 1)]

    with pytest.raises(symshape.UnsupportedOperation, match="0.3"):
        symshape.analyze(Off(), (2, "L"))


class ThenMetaKernels(nn.Module):
    """Ops without a hand rule after a rounded size: torch's meta kernels get the size as one
    more unknown (``floor(L*0.35)``, ``floor(sqrt(L))``) and answer in terms of it."""

    def __init__(self, root: bool):
        super().__init__()
        self.root = root

    def forward(self, x):
        if self.root:
            g = int(math.sqrt(x.shape[-1]))
            x = x[..., :g * g]
        else:
            x = F.interpolate(x, scale_factor=0.35)
        return torch.flip(x, [2]).tile(1, 1, 2).roll(1, 2)


@pytest.mark.parametrize("root", [False, True])
def test_meta_kernels_take_a_rounded_size_as_an_unknown(root):
    from oracle import assert_agrees, grid
    assert assert_agrees(ThenMetaKernels(root), (1, "L"), grid(["L"], range(1, 300))) > 250
