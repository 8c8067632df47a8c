"""Cases that no size reaching a layer has are dropped, not carried: a broadcast of two sizes
one of which is never smaller (a ResNet-D shortcut), and the sides of a Python branch whose
shapes agree where each side runs (a pad to even length). Without that the cases of one block
nest into the next (ResNet-50x4-CLIP took 170 s, cpubone was refused after 64 cases). Each
model is checked against torch at every size of a range, and the proofs against brute force."""

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan
from symshape.dims import floor_div, implied, quotient_where, split_product_equality

H = sympy.Symbol("H", integer=True, positive=True)


class Shortcut(nn.Module):
    """ResNet-D's downsampling block: an average pool beside a strided conv, added."""

    def __init__(self, blocks: int = 3):
        super().__init__()
        self.main = nn.ModuleList(nn.Conv2d(2, 2, 3, 2, 1) for _ in range(blocks))
        self.short = nn.ModuleList(nn.Sequential(nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
                                                 nn.Conv2d(2, 2, 1)) for _ in range(blocks))
        self.pre = nn.ModuleList(nn.AvgPool2d(2) for _ in range(blocks))

    def forward(self, x):
        for main, short, pre in zip(self.main, self.short, self.pre):
            x = pre(x)
            x = main(x) + short(x)
        return x


class Slices(nn.Module):
    """Two slices of the rows, one may be empty where the other is 1: a 1 beside a 0 broadcasts to 0."""

    def forward(self, x):
        return x[:, :, : x.size(2) // 4] + x[:, :, : (x.size(2) + 3) // 4]


class PadToEven(nn.Module):
    """cpubone's ConvAttention: pad odd sizes to even before a stride-2 projection, then crop."""

    def __init__(self, blocks: int = 3):
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(2, 2, 2, 2) for _ in range(blocks))

    def forward(self, x):
        for proj in self.proj:
            H, W = x.shape[-2:]
            pad_h, pad_w = (-H) % 2, (-W) % 2
            y = F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
            y = F.interpolate(proj(y), scale_factor=2)
            x = x + y[:, :, :H, :W]
        return x


def _shapes(analysis):
    return " ".join(str(s.output) for s in analysis.steps)


def test_a_shortcut_beside_the_main_path_is_one_size_not_cases():
    a = symshape.analyze(Shortcut(), (2, "H", "W"))
    assert "Piecewise" not in _shapes(a)
    assert_agrees(Shortcut(), (2, "H", "W"), grid(["H", "W"], range(1, 40, 3)) + grid(["H", "W"], [16, 17, 18, 47]))
    assert members(a.valid_sizes(), ["H", "W"], 40) == scan(Shortcut(), (2, "H", "W"), ["H", "W"], 40)


def test_a_size_that_may_be_0_keeps_its_case():
    """floor(H/4) <= floor((H + 3)/4) always, but at H = 1 it is 0 beside a 1: torch's result is 0."""
    a = symshape.analyze(Slices(), (2, "H", "W"))
    assert "Piecewise" in str(a.output_shape)
    assert_agrees(Slices(), (2, "H", "W"), grid(["H", "W"], range(1, 14)))
    assert a.at(H=1, W=3).output_shape == (1, 2, 0, 3)
    assert a.at(H=4, W=3).output_shape == (1, 2, 1, 3)


def test_sides_that_agree_where_each_runs_merge_into_one_shape():
    a = symshape.analyze(PadToEven(), (2, "H", "W"))
    assert "Piecewise" not in str(a.output_shape)
    assert_agrees(PadToEven(), (2, "H", "W"), grid(["H", "W"], range(1, 20)))
    valid = scan(PadToEven(), (2, "H", "W"), ["H", "W"], 24)
    assert members(a.valid_sizes(), ["H", "W"], 24) == valid


def test_a_branch_keeps_the_roundings_its_sides_make():
    """Merged, both sides of a pad to even length read ``floor((L + 1)/2)``, but neither side rounds."""

    class EvenLength(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 4, 2, stride=2)

        def forward(self, x):
            if x.size(-1) % 2 == 1:
                x = F.pad(x, (0, 1))
            return self.conv(x)

    a = symshape.analyze(EvenLength(), (3, "L"))
    assert str(a.output_shape) == "(N, 4, floor((L + 1)/2))"
    assert members(a.exact_sizes(), ["L"], 50) == {(n,) for n in range(1, 51)}
    for n in (1, 2, 7, 8):
        assert tuple(EvenLength()(torch.zeros(1, 3, n)).shape) == a.at(L=n).output_shape


def _brute(facts, cond, upto=240):
    return all(bool(cond.xreplace({H: h})) for h in range(1, upto + 1)
               if all(bool(f.xreplace({H: h})) for f in facts))


_RELATIONS = [sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt, sympy.Eq, sympy.Ne]


@st.composite
def _relation(draw):
    d = draw(st.integers(1, 6))
    e = floor_div(H + draw(st.integers(-4, 6)), d) * draw(st.sampled_from([1, 2, -1])) + draw(st.integers(-3, 3))
    return draw(st.sampled_from(_RELATIONS))(e, draw(st.integers(0, 12)))


@settings(max_examples=300, deadline=None)
@given(st.lists(_relation(), min_size=1, max_size=3), _relation())
def test_implied_is_never_wrong_and_finds_bounds(facts, cond):
    """What ``implied`` proves holds at every size 1..240 where the facts hold (its intervals
    come from each fact's bound on one residue class); bounds alone it proves whenever they hold."""
    facts = [f for f in facts if f not in (sympy.true, sympy.false)]
    if not facts or cond in (sympy.true, sympy.false):
        return
    if implied(tuple(facts), cond):
        assert _brute(facts, cond)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(-4, 8), st.integers(1, 12), st.integers(1, 6), st.integers(-4, 8), st.integers(0, 6))
def test_implied_proves_what_a_lower_bound_gives(d1, c1, k, d2, c2, m):
    fact = sympy.Ge(floor_div(H + c1, d1), k)
    cond = sympy.Ge(floor_div(H + c2, d2), m)
    if sympy.true in (fact, cond):
        return
    assert implied((fact,), cond) == _brute([fact], cond, upto=d1 * d2 * (k + m + 12) + 20)


class Windows(nn.Module):
    """MaxViT's window partition and reverse: ``view(-1, H, W, C)`` after the partition's _assert."""

    def __init__(self, ws: int = 4):
        super().__init__()
        self.ws = ws
        self.conv = nn.Conv2d(2, 3, 3, 2, 1)

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        torch._assert(H % self.ws == 0, "height must be divisible by the window")
        torch._assert(W % self.ws == 0, "width must be divisible by the window")
        ws = self.ws
        w = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)
        y = w.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)
        return x + y


def test_a_window_reverse_infers_the_batch_size_from_the_partitions_checks():
    a = symshape.analyze(Windows(), (2, "H", "W"))
    assert str(a.output_shape) == "(N, floor((H + 1)/2), floor((W + 1)/2), 3)"
    assert_agrees(Windows(), (2, "H", "W"), grid(["H", "W"], [1, 2, 7, 8, 9, 15, 16, 17, 23, 24]))
    assert members(a.valid_sizes(), ["H", "W"], 26) == scan(Windows(), (2, "H", "W"), ["H", "W"], 26)
    assert a.at(H=16, W=24).output_shape == (1, 8, 12, 3)


def test_quotient_where_proves_each_sizes_share():
    W = sympy.Symbol("W", integer=True, positive=True)
    N = sympy.Symbol("N", integer=True, positive=True)
    a4, a32 = floor_div(H + 3, 4), floor_div(H + 3, 32)
    b4, b32 = floor_div(W + 3, 4), floor_div(W + 3, 32)
    facts = (sympy.Eq(a4 - 8 * a32, 0), sympy.Eq(b4 - 8 * b32, 0))
    assert quotient_where(facts, 64 * N * a32 * b32, a4 * b4) == N
    assert quotient_where(facts[:1], 64 * N * a32 * b32, a4 * b4) is None  # W's share is not constant
    assert quotient_where((), 64 * N * a32 * b32, a4 * b4) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 5), st.integers(1, 4))
def test_quotient_where_is_never_wrong(d, m, c, k):
    """Whatever it returns equals the quotient at every size 1..300 where the facts hold."""
    fact = sympy.Eq(floor_div(H + c, d) - m * floor_div(H + c, d * m), 0)
    num, den = k * m * floor_div(H + c, d * m), floor_div(H + c, d)
    got = quotient_where((fact,), num, den)
    for h in range(1, 301):
        if fact.xreplace({H: h}) is sympy.true and den.xreplace({H: h}) != 0:
            assert got is None or got == num.xreplace({H: h}) / den.xreplace({H: h})
    assert got == k


class WindowsNoAssert(Windows):
    """gcvit's partition: no _assert, the view's element count is the only check of H and W."""

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1).contiguous()
        B, H, W, C = x.shape
        ws = self.ws
        w = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)
        y = w.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)
        return x + y[: B * (w.shape[0] // (B * (H // ws) * (W // ws)))]


def test_a_partition_views_element_count_is_a_fact_per_size():
    """``N*h*w*C == N*(h//4)*4*(w//4)*4*C`` (every factor at least 1) holds exactly where h and w
    are multiples of 4, and the later steps may use each."""
    a = symshape.analyze(WindowsNoAssert(), (2, "H", "W"))
    assert str(a.output_shape) == "(N, floor((H + 1)/2), floor((W + 1)/2), 3)"
    assert_agrees(WindowsNoAssert(), (2, "H", "W"), grid(["H", "W"], [1, 2, 7, 8, 9, 15, 16, 17, 23, 24]))
    assert a.at(H=16, W=24).output_shape == (1, 8, 12, 3)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 4), st.integers(2, 5), st.integers(0, 4), st.integers(1, 4), st.integers(2, 5), st.integers(0, 4))
def test_split_product_equality_is_exact(d1, m1, c1, d2, m2, c2):
    """Where it splits, the product equality and the per-size equalities agree at every size."""
    W = sympy.Symbol("W", integer=True, positive=True)
    a = floor_div(H + c1, d1) * floor_div(W + c2, d2)
    b = m1 * m2 * floor_div(H + c1, d1 * m1) * floor_div(W + c2, d2 * m2)
    facts = split_product_equality(a, b)
    # split exactly where every factor of ``a`` is at least 1 at every size (else a 0 would make
    # both products 0 whatever the other size)
    assert (len(facts) == 2) == (1 + c1 >= d1 and 1 + c2 >= d2)
    if not facts:
        return
    for h in range(1, 40):
        for w in range(1, 40):
            at = {H: h, W: w}
            assert bool(sympy.Eq(a, b).xreplace(at)) == all(bool(f.xreplace(at)) for f in facts)
