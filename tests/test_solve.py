"""The inverse problem against brute-force scans of real torch forward passes."""

import itertools
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seed000_mnist
import seed001_cnnclf
import seed003_cs231n
import symshape
from oracle import members, scan, torch_runs
from solver_models import NAMES, UPTO, PlusTranspose, Rows, UpCat, solver_models
from symshape import solve
from symshape.modules import copy_model as _copy
from symshape.sizes import IntSet

EXAMPLES = int(os.environ.get("SYMSHAPE_SOLVER_EXAMPLES", "40"))
TALLY = {"models": 0, "sizes": 0}


class Probe(nn.Module):
    """Stands in for the Linear in the oracle's copy: records in_features, never refuses."""

    def __init__(self, out_features):
        super().__init__()
        self.out_features, self.seen = out_features, []

    def forward(self, x):
        self.seen.append(x.shape[-1])
        return x.new_zeros(*x.shape[:-1], self.out_features)


def _tup(v, d):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * d


def _exact_hook(flags):
    """A forward hook: clears flags[0] when the layer rounds (observed input and output sizes)."""

    def check(mod, args, out):
        x = args[0]
        out = out[0] if isinstance(out, tuple) else out
        spatial_in, spatial_out = x.shape[2:], out.shape[2:]
        d = len(spatial_in)
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            k, s, dl = mod.kernel_size, mod.stride, mod.dilation
            r = mod._reversed_padding_repeated_twice
            pads = [r[2 * (d - 1 - i)] + r[2 * (d - 1 - i) + 1] for i in range(d)]
            if mod.padding_mode == "zeros" and not isinstance(mod.padding, str):
                pads = [2 * p for p in mod.padding]
        elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            k = _tup(mod.kernel_size, d)
            s = _tup(mod.stride or mod.kernel_size, d)
            dl = _tup(getattr(mod, "dilation", 1), d)
            pads = [2 * p for p in _tup(mod.padding, d)]
        elif isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            for i, o, want in zip(spatial_in, spatial_out, _tup(mod.output_size, d)):
                if want is not None and i % o:
                    flags[0] = False
            return
        else:
            return
        for i, o, kk, ss, dd, pp in zip(spatial_in, spatial_out, k, s, dl, pads):
            if (o - 1) * ss + dd * (kk - 1) + 1 != i + pp:  # the last window misses or overshoots
                flags[0] = False

    return check


def brute_force(model, input_shape, names, upto):
    """The oracle: for every size in 1..upto per name, (torch runs, no layer rounds, in_features).

    It runs a copy whose first Linear is a Probe, so the Linear's own check is applied here, by
    comparing with its declared in_features.
    """
    m = _copy(model)
    index = next((i for i, mod in enumerate(m) if isinstance(mod, nn.Linear)), None)
    declared = None
    if index is not None:
        lin = m[index]
        lazy = getattr(lin, "has_uninitialized_params", lambda: False)()
        declared = None if lazy else lin.in_features
        m[index] = Probe(lin.out_features)
    flags = [True]
    for mod in m.modules():
        mod.register_forward_hook(_exact_hook(flags))
    out = {}
    for combo in itertools.product(range(1, upto + 1), repeat=len(names)):
        flags[0] = True
        if index is not None:
            m[index].seen.clear()
        ran = torch_runs(m, input_shape, dict(zip(names, combo)))
        flat = m[index].seen[0] if index is not None and m[index].seen else None
        if ran and declared is not None and flat != declared:
            ran_original = False
        else:
            ran_original = ran
        out[combo] = (ran, ran_original, ran_original and flags[0], flat)
    return out


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(solver_models())
def test_valid_solve_exact_match_brute_force(drawn):
    model, input_shape, d = drawn
    names, upto = NAMES[d], UPTO[d]
    try:
        analysis = symshape.analyze(model, input_shape)
    except symshape.InvalidInputSize:
        return
    valid, exact = analysis.valid_sizes(), analysis.exact_sizes()
    truth = brute_force(model, input_shape, names, upto)
    TALLY["models"] += 1
    TALLY["sizes"] += len(truth)
    assert members(valid, names, upto) == {c for c, t in truth.items() if t[1]}, f"{model}\nvalid: {valid}"
    assert members(exact, names, upto) == {c for c, t in truth.items() if t[2]}, f"{model}\nexact: {exact}"
    # the oracle probes the first Linear (a conv's in_channels may be a fixed layer too)
    linear = next((k for k, fixed in analysis.fixed.items() if fixed.tag == "in_features"), None)
    if linear is not None:
        values: dict[int, set] = {}
        for combo, (ran, _, _, flat) in truth.items():
            if ran:
                values.setdefault(flat, set()).add(combo)
        for flat in sorted(values)[:3] + [max(values, default=1) + 1]:
            got = analysis.solve(flat, layer=linear)
            assert members(got, names, upto) == values.get(flat, set()), f"{model}\nflat {flat}: {got}"


def test_an_odd_count_on_one_side_of_a_broadcast_is_solved_against_torch():
    """Found by the test above: a broadcast whose sides depend on whether a size is 1, then
    ``view(-1, 2)``. One side's check is ``H*W`` odd (``H*W - 2*floor(H*W/2) != 0``): the sizes
    where ``H*W`` is not divisible by 2, which the solver had refused as a product it cannot
    solve. Every answer against torch's forward at every size up to 12."""
    model = nn.Sequential(nn.AvgPool2d(1, 1, 0), PlusTranspose(), Rows(2), nn.LazyLinear(2))
    analysis = symshape.analyze(model, (1, "H", "W"))
    valid, exact = analysis.valid_sizes(), analysis.exact_sizes()
    truth = brute_force(model, (1, "H", "W"), ["H", "W"], 12)
    assert members(valid, ["H", "W"], 12) == {c for c, t in truth.items() if t[1]}, str(valid)
    assert members(exact, ["H", "W"], 12) == {c for c, t in truth.items() if t[2]}, str(exact)
    assert (4, 4) in members(valid, ["H", "W"], 12) and (3, 3) not in members(valid, ["H", "W"], 12)


def test_a_count_divisible_by_3_or_not_is_every_size_of_that_side():
    """Found by the test above: ``view(-1, 6)`` of a broadcast's sides, one of whose checks is
    ``(H - 1)*(W - 1)`` divisible by 3 unless it is not (a remainder), the product written out
    (``H*W - H - W + 1``): factored, and the chain's links solved on what the others leave."""
    model = nn.Sequential(nn.AvgPool2d(2, 1, 0), PlusTranspose(), nn.ReLU(), Rows(6), nn.LazyLinear(2))
    analysis = symshape.analyze(model, (2, "H", "W"))
    valid, exact = analysis.valid_sizes(), analysis.exact_sizes()
    truth = brute_force(model, (2, "H", "W"), ["H", "W"], 12)
    assert members(valid, ["H", "W"], 12) == {c for c, t in truth.items() if t[1]}, str(valid)
    assert members(exact, ["H", "W"], 12) == {c for c, t in truth.items() if t[2]}, str(exact)
    assert (4, 4) in members(valid, ["H", "W"], 12) and (5, 5) not in members(valid, ["H", "W"], 12)


class ClampedWindows(nn.Module):
    """transformers' Swin layer, shrunk: a window of 4 clamped to ``min(h, w)`` where that is at
    most 4, the map padded to whole windows and partitioned, and a bias table of one window of 4
    added to each window's scores (torch refuses a window of 2 or 3)."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(16, 16))

    def forward(self, x):
        n, c, h, w = x.shape
        window = 4
        if min(h, w) <= window:
            window = min(h, w)
        x = F.pad(x, (0, (window - w % window) % window, 0, (window - h % window) % window))
        hp, wp = x.shape[2], x.shape[3]
        x = x.view(n, c, hp // window, window, wp // window, window).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(n * (hp // window) * (wp // window), window * window, c)
        return x @ x.transpose(1, 2) + self.bias


def test_a_window_clamped_to_the_smaller_size_is_solved_against_torch():
    """Each check of the small side holds unless ``w >= 5`` (or the other links): the solver
    takes that part first, and what is left holds ``w`` to a few values, taken one at a time
    (a floor ``floor(h/w)`` by a size, once ``w`` is a number, a floor division it solves)."""
    model = nn.Sequential(ClampedWindows())
    analysis = symshape.analyze(model, (2, "H", "W"))
    valid = analysis.valid_sizes()
    truth = brute_force(model, (2, "H", "W"), ["H", "W"], 14)
    assert members(valid, ["H", "W"], 14) == {c for c, t in truth.items() if t[1]}, str(valid)
    # (a window of 1 runs too: its 1 x 1 scores broadcast to the table's 16 x 16)
    assert str(valid) == "H = 1; or H ∈ {2, 3} and W = 1; or H ≥ 4 and (W = 1 or W ≥ 4)"


_SETS = st.one_of(st.builds(IntSet.interval, st.integers(1, 9), st.integers(9, 20)),
                  st.builds(IntSet.at_least, st.integers(1, 12)),
                  st.builds(lambda v: IntSet.of([v]), st.integers(1, 20)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_SETS, _SETS), max_size=8))
def test_boxes_merged_hold_the_same_sizes(pairs):
    """solve._merged: boxes alike in all sizes but one joined there; the union is unchanged."""
    boxes = [{"H": a, "W": b} for a, b in pairs]
    merged = solve._merged(boxes, ["H", "W"])
    assert len(merged) <= len(boxes)
    grid = [(h, w) for h in range(1, 26) for w in range(1, 26)]
    inside = lambda bs: {(h, w) for h, w in grid if any(h in b["H"] and w in b["W"] for b in bs)}  # noqa: E731
    assert inside(merged) == inside(boxes)


def test_seed003_square_5408_is_31_and_32():
    a = symshape.analyze(seed003_cs231n.simple_model, (3, "H", "W"))
    got = a.solve(5408, square=True)
    assert got.enumerate(1000) == [{"H": 31, "W": 31}, {"H": 32, "W": 32}]
    assert str(got) == "H = W ∈ {31, 32}"
    for s in range(1, 60):
        x = torch.rand(1, 3, s, s)
        flat = seed003_cs231n.simple_model[:3](x).shape[-1] if s >= 7 else None
        assert (flat == 5408) == got.contains(H=s, W=s)


def test_seed000_valid_exact_and_nearest():
    net = seed000_mnist.Net()
    a = symshape.analyze(net, (1, "H", "W"))
    # with fc1 = Linear(320, 50) fixed, only sizes that give exactly 320 run
    assert str(a.valid_sizes()).startswith("H ∈ [16, 19] and W ∈ [76, 79]; or H ∈ [20, 23]")
    assert a.valid_sizes().min() == {"H": 28, "W": 28}
    lazy = nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5),
                         nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(50))
    b = symshape.analyze(lazy, (1, "H", "W"))
    assert str(b.valid_sizes()) == "H ≥ 16 and W ≥ 16"
    assert str(b.exact_sizes()) == "H ≥ 16, H ≡ 0 (mod 4) and W ≥ 16, W ≡ 0 (mod 4)"
    none = b.solve(20000, square=True)
    assert none.is_empty
    below, above = none.nearest["below"], none.nearest["above"]
    assert (below[0], str(below[1])) == (19220, "H = W ∈ [136, 139]")
    assert (above[0], str(above[1])) == (20480, "H = W ∈ [140, 143]")
    for value, sizes in (below, above):
        s = sizes.min()["H"]
        assert lazy[:6](torch.rand(1, 1, s, s)).shape[-1] == value
    assert not b.solve(20000).is_empty  # with H != W, 20000 = 20 * 25 * 40 is reachable


def test_nearest_to_an_in_features_fixed_at_every_size_is_that_value_without_a_search(monkeypatch):
    """``view(-1, 3)`` before the Linear: in_features is 3 at every size, so the nearest to 7 is 3
    below and nothing above -- found at once (the search over 100,000 values above, each tested on
    every box of a staircase of valid sizes, had run for minutes: a random solver model found it)."""
    from solver_models import PlusTranspose, Rows

    model = nn.Sequential(nn.MaxPool2d(4, 3, 2), nn.MaxPool2d(4, 3, 1), nn.AvgPool2d(4, 1, 2), PlusTranspose(), Rows(3),
                          nn.LazyLinear(2))
    a = symshape.analyze(model, (1, "H", "W"))

    def no_search(*args):
        raise AssertionError("searched value by value for a value that is the same at every size")

    monkeypatch.setattr(symshape.solve, "_value_test", no_search)
    none = a.solve(7)
    assert none.is_empty and set(none.nearest) == {"below"}
    value, sizes = none.nearest["below"]
    assert value == 3 and str(sizes) == str(a.valid_sizes())
    for h, w in ((12, 12), (13, 14), (40, 40)):
        runs = torch_runs(model[:5], (1, "H", "W"), {"H": h, "W": w})
        assert runs == a.valid_sizes().contains(H=h, W=w)
        if runs:
            assert model[:5](torch.rand(1, 1, h, w)).shape[-1] == 3


def test_seed001_valid_sizes_are_28_to_39():
    a = symshape.analyze(seed001_cnnclf.CNNclf(), (1, "H", "W"))
    assert str(a.valid_sizes()) == "H ∈ [28, 39] and W ∈ [28, 39]"
    assert symshape.analyze(seed001_cnnclf.answer(), (1, "H", "W")).solve(3136).min() == {"H": 100, "W": 100}


def test_unet_admits_only_multiples_of_two_to_the_depth():
    inner = None
    c = 2
    inner_c = c
    for _ in range(3):
        inner = UpCat(2, c, inner, inner_c, 2, 2, cat=True)
        inner_c = 2 * c
    net = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), inner)
    a = symshape.analyze(net, (1, "H", "W"))
    valid = a.valid_sizes()
    assert str(valid) == "H ≥ 8, H ≡ 0 (mod 8) and W ≥ 8, W ≡ 0 (mod 8)"
    assert members(valid, ("H", "W"), 20) == scan(net, (1, "H", "W"), ("H", "W"), 20)


def test_solver_errors_are_clear():
    a = symshape.analyze(seed000_mnist.Net(), (1, "H", "W"))
    with pytest.raises(ValueError, match="non-negative int"):
        a.solve(-1)
    with pytest.raises(KeyError, match="fc1, fc2"):
        a.solve(10, layer="fc9")


def test_a_condition_the_sides_repeat_is_solved_once_and_each_fast_path_counts():
    """The sides of a branch repeat the checks of their shared steps, each with its own reason:
    solved once per condition (its relation and chain of fast paths, not its reason), so
    requirements that differ only in a fast path are each solved -- here a check whose fast
    path is another, and the same check without it, give another set than either alone."""
    from symshape.requirements import Requirement
    from symshape.solve import solve_requirements
    from symshape.dims import size_symbol
    H, W = size_symbol("H"), size_symbol("W")
    base = Requirement(H, ">=", 10, "a: H >= 10", unless=Requirement(W, ">=", 5, "a: or W >= 5"))
    again = Requirement(H, ">=", 10, "b: the same check, another side", unless=Requirement(W, ">=", 5, "b"))
    tighter = Requirement(H, ">=", 10, "c", unless=Requirement(W, ">=", 7, "c: or W >= 7"))
    once = solve_requirements(["H", "W"], [("a", base)])
    twice = solve_requirements(["H", "W"], [("a", base), ("b", again)])
    both = solve_requirements(["H", "W"], [("a", base), ("b", again), ("c", tighter)])
    grid = [(h, w) for h in range(1, 30) for w in range(1, 30)]
    assert {p for p in grid if once.contains(H=p[0], W=p[1])} == {(h, w) for h, w in grid if h >= 10 or w >= 5}
    assert {p for p in grid if twice.contains(H=p[0], W=p[1])} == {(h, w) for h, w in grid if h >= 10 or w >= 5}
    assert {p for p in grid if both.contains(H=p[0], W=p[1])} == {(h, w) for h, w in grid if h >= 10 or w >= 7}


class SpaceToDepth(nn.Module):
    """TResNet's space-to-depth: a view whose element count ties H*W to 16*floor(H/4)*floor(W/4)."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def forward(self, x):
        n, c, h, w = x.size()
        b = self.block
        x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, c * b * b, h // b, w // b)


@pytest.mark.parametrize("block", [2, 3, 4])
def test_a_view_tying_both_sizes_through_their_floors_is_solved_exactly(block):
    """c*H*W == c*b*b*floor(H/b)*floor(W/b): each size dominates its floor term, so the equality
    holds exactly where H and W are both multiples of b (the solver's dominated-product case)."""
    model = SpaceToDepth(block)
    a = symshape.analyze(model, (2, "H", "W"))
    valid = members(a.valid_sizes(), ["H", "W"], 13)
    assert valid == scan(model, (2, "H", "W"), ["H", "W"], 13)
    assert valid == {(h, w) for h in range(block, 14, block) for w in range(block, 14, block)}


class PaddedWindows(nn.Module):
    """Twins' locally grouped attention: pad to a multiple of the window, fold into windows,
    unfold, crop the padding only if there was any, then ``reshape(B, N, C)``. Where nothing is
    padded the reshape asks ``49·ceil(h/7)·ceil(w/7) == h·w`` of both sizes at once."""

    def __init__(self, ws: int, stride: int):
        super().__init__()
        self.ws, self.embed = ws, nn.Conv2d(2, 3, stride, stride)

    def forward(self, x):
        x = self.embed(x)
        B, C, H, W = x.shape
        N = H * W
        x = x.flatten(2).transpose(1, 2).view(B, H, W, C)
        pad_r = (self.ws - W % self.ws) % self.ws
        pad_b = (self.ws - H % self.ws) % self.ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, Hp, Wp, _ = x.shape
        _h, _w = Hp // self.ws, Wp // self.ws
        x = x.reshape(B, _h, self.ws, _w, self.ws, C).transpose(2, 3)
        x = x.transpose(2, 3).reshape(B, _h * self.ws, _w * self.ws, C)
        if pad_r > 0 or pad_b > 0:
            x = x[:, :H, :W, :].contiguous()
        return x.reshape(B, N, C)


@pytest.mark.parametrize("ws,stride", [(3, 1), (3, 2), (2, 3)])
def test_padded_windows_couple_both_sizes_and_are_solved_exactly(ws, stride):
    """Twins: the no-padding side's reshape compares a product of ceilings with a product of
    sizes; each size dominates its own (``k = 1/ws`` per size, a rational share of the
    coefficient), so the solver answers, and agrees with torch on 1..14 squared."""
    model = PaddedWindows(ws, stride)
    a = symshape.analyze(model, (2, "H", "W"))
    assert members(a.valid_sizes(), ["H", "W"], 14) == scan(model, (2, "H", "W"), ["H", "W"], 14)


class FixedGridEmbedding(nn.Module):
    """PiT: a position embedding of a fixed grid added to the patch grid (a grid of 1 broadcasts),
    then the tokens are folded back to the grid they came from. The fold's numel check couples
    H and W; the broadcast leaves each only a few values, which the solver tries one by one."""

    def __init__(self, grid: int, stride: int):
        super().__init__()
        self.embed = nn.Conv2d(2, 3, stride, stride)
        self.pos = nn.Parameter(torch.zeros(1, 3, grid, grid))

    def forward(self, x):
        x = self.embed(x)
        B, C, H, W = x.shape
        x = x + self.pos
        t = torch.cat((x.new_zeros(B, 1, C), x.flatten(2).transpose(1, 2)), dim=1)
        return t[:, 1:].transpose(1, 2).reshape(B, C, H, W)


@pytest.mark.parametrize("grid,stride", [(3, 2), (4, 1)])
def test_a_condition_on_sizes_confined_to_a_few_values_is_solved_value_by_value(grid, stride):
    model = FixedGridEmbedding(grid, stride)
    a = symshape.analyze(model, (2, "H", "W"))
    assert members(a.valid_sizes(), ["H", "W"], 12) == scan(model, (2, "H", "W"), ["H", "W"], 12)


class _FlattenThenConv1d(nn.Module):
    """A 3x3 conv, then its map flattened into one sequence for a Conv1d: (H-2)*(W-2) >= 5."""

    def __init__(self):
        super().__init__()
        self.conv, self.seq = nn.Conv2d(1, 2, 3), nn.Conv1d(2, 2, 5)

    def forward(self, x):
        return self.seq(self.conv(x).flatten(2))


class _HalvesAdded(nn.Module):
    """``a, b = x.chunk(2, dim=2); a + b``: the halves broadcast only where H is even (or H <= 3)."""

    def forward(self, x):
        a, b = x.chunk(2, dim=2)
        return a + b


class _TransposeAdded(nn.Module):
    """A stride-2 conv, then ``x + x.transpose(2, 3)``: ``floor((H-1)/2) == floor((W-1)/2)``, or
    one of them 1 -- a condition on lines (W = H, W = H + 1 on odd H ...), not on boxes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2)

    def forward(self, x):
        x = self.conv(x)
        return x + x.transpose(2, 3)


@pytest.mark.parametrize("make", [_FlattenThenConv1d, _HalvesAdded, _TransposeAdded])
def test_coupled_sizes_are_solved_exactly_as_a_scan_of_forwards_finds(make):
    model = make().eval()
    valid = symshape.analyze(model, (1, "H", "W")).valid_sizes()
    for h in range(1, 25):
        for w in range(1, 25):
            try:
                with torch.no_grad():
                    model(torch.zeros(1, 1, h, w))
                ran = True
            except (RuntimeError, ValueError):  # torch refuses, or one chunk comes back at H = 1
                ran = False
            assert valid.contains(H=h, W=w) == ran, (h, w, str(valid))
