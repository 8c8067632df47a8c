"""Every branch of symshape/solve.py against brute force (issue 14, point 5).

Each test reaches named branches of the solver and compares its answer with a scan: real torch
forward passes over every size of a box (1..40 or 1..60 for one size, 1..20 x 1..20 for two,
1..8 cubed for three; a diagonal for ``square=True``) where a model produces the condition, or
the condition itself evaluated over a box (compiled, exact) for the branches no model reaches
(defensive code, conditions sympy never builds from a model). The docstring of each test names
the branches it reaches; tests/test_solve.py keeps the random solver models and
tests/test_random_models.py the random-model fuzz. A deliberate off-by-one in ``_product_ge``
(``target - 1``, ``target + 1``, or a floor for the ceiling) fails five to eight of these tests.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
import operator

import pytest
import sympy
import torch
import torch.nn as nn
from hypothesis import example, given, settings
from hypothesis import strategies as st

import symshape
from oracle import members
from symshape import solve as S
from symshape.compiled import compile_exprs
from symshape.dims import canonical, floor_div, size_symbol
from symshape.quasi import Unsolvable
from symshape.requirements import Requirement
from symshape.sizes import IntSet, SizeSet

UP1, UP2 = 40, 20  # the scanned boxes: 1..40 for one size, 1..20 x 1..20 for two
H, W, L, T = (size_symbol(n) for n in "HWLT")


# -- the oracle: real forward passes -----------------------------------------------------------


class Probe(nn.Module):
    """Stands in for the head Linear during a scan: records in_features, never refuses."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[-1])
        return x.new_zeros(*x.shape[:-1], 2)


def _rounds(mod, x, out) -> bool:
    """Whether a conv / pool module rounds: its last window misses the end of some dim."""
    if not isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d,
                            nn.AvgPool2d)):
        return False
    spatial_in, spatial_out = x.shape[2:], out.shape[2:]
    d = len(spatial_in)

    def tup(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * d

    k, s, p = tup(mod.kernel_size), tup(mod.stride or mod.kernel_size), tup(mod.padding)
    dl = tup(getattr(mod, "dilation", 1))
    return any((o - 1) * ss + dd * (kk - 1) + 1 != i + 2 * pp
               for i, o, kk, ss, dd, pp in zip(spatial_in, spatial_out, k, s, dl, p))


def scan(make, input_shape, upto: int, batch: int = 1, declared: int | None = None, diagonal=False):
    """Every size in 1..upto per name -> (torch runs, runs without any layer rounding, in_features).

    ``make(head)`` builds the model around ``head`` (a Probe here); ``declared``: the fixed
    Linear's in_features (a run whose in_features differs counts as refused). ``diagonal``: only
    sizes with every spatial size equal (for ``square=True``).
    """
    probe = Probe()
    model = make(probe)
    flags = [True]

    def hook(mod, args, out):
        if _rounds(mod, args[0], out):
            flags[0] = False

    for mod in model.modules():
        mod.register_forward_hook(hook)
    names = list(dict.fromkeys(d for d in input_shape if isinstance(d, str)))
    combos = ([(v,) * len(names) for v in range(1, upto + 1)] if diagonal
              else itertools.product(range(1, upto + 1), repeat=len(names)))
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is 100x faster on a busy 2-core machine
    try:
        for combo in combos:
            sizes = dict(zip(names, combo))
            flags[0] = True
            probe.seen.clear()
            x = torch.zeros(batch, *(sizes[d] if isinstance(d, str) else d for d in input_shape))
            try:
                with torch.no_grad():
                    model(x)
                ran = True
            except Exception:  # RuntimeError from a kernel, AssertionError from torch._assert ...
                ran = False
            flat = probe.seen[0] if ran and probe.seen else None
            if declared is not None and ran and flat != declared:
                ran = False
            out[combo] = (ran, ran and flags[0], flat)
    finally:
        torch.set_num_threads(threads)
    return out


def runs(truth):
    return {c for c, t in truth.items() if t[0]}


def exact(truth):
    return {c for c, t in truth.items() if t[1]}


def gives(truth, flat):
    return {c for c, t in truth.items() if t[0] and t[2] == flat}


def on_diagonal(sizeset, names, upto):
    """The members of a square set (``square=True``: every spatial size tied in one group)."""
    assert sizeset.groups[0] == tuple(names), sizeset.groups
    return {(v,) * len(names) for v in range(1, upto + 1) if sizeset.contains(**{n: v for n in names})}


def check_flats(analysis, truth, names, upto, square=False, beyond=True):
    """solve(flat) for a few achieved values (and one beyond): exactly the sizes that give it."""
    values = sorted({t[2] for t in truth.values() if t[0]})
    for flat in values[:3] + values[-2:] + [max(values, default=0) + 1] * beyond:
        got = analysis.solve(flat, square=square)
        have = on_diagonal(got, names, upto) if square else members(got, names, upto)
        assert have == gives(truth, flat), f"flat {flat}: {got}"


# -- models that produce each kind of condition ------------------------------------------------


class FlatConv(nn.Module):
    """conv2d, flatten(2), then a 1-d conv or pool over the H*W positions: ``g(H) * g(W) >= k``."""

    def __init__(self, head, k, s, p, k1, pool=False, c=2):
        super().__init__()
        self.conv = nn.Conv2d(1, c, k, stride=s, padding=p)
        self.seq = nn.MaxPool1d(k1) if pool else nn.Conv1d(c, c, k1)
        self.head = head

    def forward(self, x):
        return self.head(self.seq(self.conv(x).flatten(2)).flatten(1))


class CatRowsCols(nn.Module):
    """Rows pooled one way, columns another, cat along the length: ``g(H) + g(W) >= k``
    (``twice``: the rows pooled a second way too, two terms of H in the sum)."""

    def __init__(self, head, a, b, k, twice=False):
        super().__init__()
        self.rows, self.cols = nn.MaxPool2d(a), nn.AvgPool2d(b)
        self.rows2 = nn.AvgPool2d((a + 1, 1)) if twice else None
        self.conv = nn.Conv1d(1, 1, k)
        self.head = head

    def forward(self, x):
        parts = [self.rows(x).mean(3), self.cols(x).mean(2)]
        if self.rows2 is not None:
            parts.append(self.rows2(x).mean(3))
        return self.head(self.conv(torch.cat(parts, 2)).flatten(1))


class TrainBN(nn.Module):
    """A training-mode BatchNorm2d: ``N * g(H) * g(W) != 1``."""

    def __init__(self, head, k, s):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, k, stride=s)
        self.bn = nn.BatchNorm2d(2)
        self.head = head

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).flatten(1))


class Rows(nn.Module):
    """``view(-1, k)`` after a conv: ``k`` divides ``N * c * g(H) * g(W)``."""

    def __init__(self, head, c, k, s, rows):
        super().__init__()
        self.conv = nn.Conv2d(1, c, k, stride=s)
        self.rows = rows
        self.head = head

    def forward(self, x):
        return self.head(self.conv(x).view(-1, self.rows))


class Tokens(nn.Module):
    """Patches plus a class token, plus a fixed-length position embedding (a small ViT):
    ``1 + g(H) * g(W)`` broadcast with ``n``, i.e. ``g(H) * g(W) == n - 1`` or ``== 0``."""

    def __init__(self, head, p, n, norm=False):
        super().__init__()
        self.patch = nn.Conv2d(1, 4, p, stride=p)
        self.cls = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos = nn.Parameter(torch.zeros(1, n, 4))
        self.norm = nn.InstanceNorm1d(4) if norm else None  # over the tokens: needs 1 + g*g != 1
        self.head = head

    def forward(self, x):
        y = self.patch(x).flatten(2).transpose(1, 2)
        y = torch.cat([self.cls.expand(y.shape[0], -1, -1), y], 1)
        if self.norm is not None:
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        y = y + self.pos
        return self.head(y[:, 0])


class Bcast1d(nn.Module):
    """Two branches of one size broadcast together, then a conv: a Piecewise (a branch may be
    1) inside a one-size condition."""

    def __init__(self, head, s1, s2, k, p, s3=0):
        super().__init__()
        self.a = nn.Conv1d(1, 1, s1, stride=s1)
        self.b = nn.MaxPool1d(s2)
        self.c = nn.AvgPool1d(s3) if s3 else None  # a third branch: Eq(Piecewise, 1) conditions
        self.conv = nn.Conv1d(1, 1, k, padding=p)
        self.head = head

    def forward(self, x):
        y = self.a(x) + self.b(x)
        if self.c is not None:
            y = y + self.c(x)
        return self.head(self.conv(y).flatten(1))


class BcastTiled(nn.Module):
    """A conv's ``floor(L/s1)`` beside ``times`` copies of the first ``floor(L/s2)`` positions
    (hieradet's tiled window position embedding): a size never 1 where ``times > 1``, and 0
    below ``s2``."""

    def __init__(self, head, s1, s2, times, k):
        super().__init__()
        self.a = nn.Conv1d(1, 1, s1, stride=s1)
        self.s2, self.times = s2, times
        self.conv = nn.Conv1d(1, 1, k)
        self.head = head

    def forward(self, x):
        y = self.a(x) + x[..., : x.shape[-1] // self.s2].repeat(1, 1, self.times)
        return self.head(self.conv(y).flatten(1))


class BcastCols(nn.Module):
    """A conv's columns broadcast with a fixed-width bias: a Piecewise of W in the flat size."""

    def __init__(self, head, k, s, n):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, k, stride=s)
        self.bias = nn.Parameter(torch.zeros(1, 2, 1, n))
        self.head = head

    def forward(self, x):
        return self.head((self.conv(x) + self.bias).flatten(1))


def analyze(make, input_shape, head=None):
    return symshape.analyze(make(head if head is not None else nn.LazyLinear(2)), input_shape)


# -- products: == (a fixed Linear), >= (staircase), != (training batch norm), divisible (view) ---


@settings(max_examples=12)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(2, 40), st.booleans())
@example(k=3, s=1, p=0, k1=30, pool=False)
@example(k=2, s=2, p=1, k1=3, pool=True)
def test_product_ge_staircase_matches_torch(k, s, p, k1, pool):
    """``_multivariate`` >= -> ``_product_ge`` -> ``_staircase`` (first term big enough, or each
    value below the target and the rest making up the quotient); the Conv1d variant's flat size
    ``c*g1*g2 - c*(k1 - 1)`` moves its constant to the right (``c*g1*g2 + a == b``) and splits
    through the divisors (``_product_eq``). The pool variant's rounding ``g1*g2 - k1`` divisible
    by ``k1`` (a product plus a constant) is refused by exact_sizes, naming it, never answered
    wrongly."""
    make = lambda head: FlatConv(head, k, s, p, k1, pool)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth), str(a.valid_sizes())
    if not pool:
        assert members(a.exact_sizes(), ("H", "W"), UP2) == exact(truth)
        check_flats(a, truth, ("H", "W"), UP2)
    else:
        # the pool's rounding is ``g1*g2 - k1`` divisible by ``k1``: a product plus a constant,
        # which the solver refuses (naming it) rather than answer wrongly
        try:
            got = a.exact_sizes()
        except Unsolvable as err:
            assert "divisible by" in str(err)
        else:
            assert members(got, ("H", "W"), UP2) == exact(truth)


def test_product_ge_square_and_nearest_match_torch():
    """square=True (``_square_ties``) on the staircase; a flat size no size gives: the nearest
    values below and above (``_value_test`` through the factors' images), against torch."""
    make = lambda head: FlatConv(head, 3, 1, 0, 30)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    # (H - 2)*(W - 2) >= 30 as disjoint steps: each H once, the least W that reaches 30
    assert str(a.valid_sizes()) == (
        "H = 3 and W ≥ 32; or H = 4 and W ≥ 17; or H = 5 and W ≥ 12; or H = 6 and W ≥ 10; "
        "or H = 7 and W ≥ 8; or H ∈ {8, 9} and W ≥ 7; or H ∈ {10, 11} and W ≥ 6; "
        "or H ∈ [12, 16] and W ≥ 5; or H ∈ [17, 31] and W ≥ 4; or H ≥ 32 and W ≥ 3")
    diag = scan(make, (1, "H", "W"), 60, diagonal=True)
    assert on_diagonal(a.valid_sizes(square=True), ("H", "W"), 60) == runs(diag)
    assert on_diagonal(a.exact_sizes(square=True), ("H", "W"), 60) == exact(diag)
    check_flats(a, diag, ("H", "W"), 60, square=True)
    # square: 2*((S-2)^2 - 29) = 14, 40, 70, 104 ... (rectangles give every even number)
    none = a.solve(100, square=True)
    assert none.is_empty
    values = sorted({t[2] for t in diag.values() if t[0]})
    below, above = max(v for v in values if v < 100), min(v for v in values if v > 100)
    assert none.nearest["below"][0] == below and none.nearest["above"][0] == above
    assert on_diagonal(none.nearest["below"][1], ("H", "W"), 60) == gives(diag, below)
    assert on_diagonal(none.nearest["above"][1], ("H", "W"), 60) == gives(diag, above)
    assert "nearest below" in none.note and "nearest above" in none.note
    rect = scan(make, (1, "H", "W"), 40)
    assert members(a.solve(662), ("H", "W"), 40) == gives(rect, 662)  # g1*g2 = 360 = 18*20 ...
    none = a.solve(331)  # odd: between two even values
    assert (none.nearest["below"][0], none.nearest["above"][0]) == (330, 332)
    assert members(none.nearest["below"][1], ("H", "W"), 40) == gives(rect, 330)
    none = a.solve(1)  # below the smallest value 2*(30 - 29) = 2: nothing smaller
    assert none.is_empty and "below" not in none.nearest and "nothing smaller" in none.note
    assert none.nearest["above"][0] == 2


@settings(max_examples=10)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
@example(k=3, s=2, batch=1)
@example(k=3, s=2, batch=2)
def test_product_ne_training_batch_norm_matches_torch(k, s, batch):
    """``N*g1*g2 != 1`` (batch norm in training): ``_product_eq`` for the one factorization, then
    ``_difference``; at batch 2 the quotient 1/2 is no integer and nothing is removed."""
    make = lambda head: TrainBN(head, k, s)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2, batch=batch)
    assert members(a.valid_sizes(batch=batch), ("H", "W"), UP2) == runs(truth)
    assert members(a.exact_sizes(batch=batch), ("H", "W"), UP2) == exact(truth)


@settings(max_examples=15)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 2), st.integers(1, 12), st.integers(1, 2))
@example(c=2, k=3, s=1, rows=6, batch=1)
@example(c=6, k=3, s=1, rows=3, batch=1)
def test_product_divisible_view_matches_torch(c, k, s, rows, batch):
    """``x.view(-1, rows)``: ``rows`` divides ``N*c*g1*g2``: ``_product_divisible`` split by
    ``_gcd_is`` (``m = rows / gcd(rows, N*c)``, 1 when ``rows`` divides ``N*c``), the last factor
    through ``divisible_set``."""
    make = lambda head: Rows(head, c, k, s, rows)  # noqa: E731
    a = symshape.analyze(make(nn.Linear(rows, 2)), (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2, batch=batch)
    assert members(a.valid_sizes(batch=batch), ("H", "W"), UP2) == runs(truth)


@settings(max_examples=10)
@given(st.integers(2, 5), st.integers(2, 30), st.booleans())
@example(p=4, n=17, norm=False)
@example(p=3, n=10, norm=True)
def test_class_token_broadcast_matches_torch(p, n, norm):
    """A broadcast of ``1 + g1*g2`` with ``n``: three parts joined by ``_union``: ``g1*g2 + 1 - n
    == 0`` (the constant moves right: ``_product_eq`` to ``n - 1``), ``g1*g2 + 1 == 1`` (target
    0: ``_product_eq``'s zero branch, down to no factors) and ``n == 1`` (a constant). ``norm``:
    an instance norm over the tokens needs ``1 + g1*g2 != 1`` (moved: a product ``!= 0``)."""
    make = lambda head: Tokens(head, p, n, norm)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    assert members(a.exact_sizes(), ("H", "W"), UP2) == exact(truth)


def test_fixed_linear_product_eq_and_ignore_declared_match_torch():
    """A fixed Linear after a flatten of two sizes: ``c*g1*g2 == K`` by divisors; exact_sizes
    with and without the declared in_features (``ignore_declared``)."""
    make = lambda head: FlatConv(head, 3, 2, 0, 1)  # noqa: E731
    a = symshape.analyze(make(nn.Linear(24, 2)), (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2, declared=24)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    assert members(a.exact_sizes(), ("H", "W"), UP2) == exact(truth)
    free = scan(make, (1, "H", "W"), UP2)
    assert members(S.exact_sizes(a, ignore_declared=True), ("H", "W"), UP2) == exact(free)
    assert members(a.solve(24), ("H", "W"), UP2) == gives(free, 24)


# -- sums ---------------------------------------------------------------------------------------


@settings(max_examples=12)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 24), st.booleans())
@example(a_=2, b_=3, k=20, twice=False)
@example(a_=2, b_=3, k=24, twice=True)
def test_sum_ge_cat_of_rows_and_cols_matches_torch(a_, b_, k, twice):
    """cat of differently pooled rows and columns, then a conv: ``g1(H) + g2(W) >= k`` (with
    ``twice``, two terms of H that ``_split_sum`` adds up): ``_split_product`` fails,
    ``_split_sum`` -> ``_sum_ge`` -> ``_staircase`` (lowest 0). The flat size is a sum ``== flat``,
    which the solver refuses, naming it."""
    make = lambda head: CatRowsCols(head, a_, b_, k, twice)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    assert members(a.exact_sizes(), ("H", "W"), UP2) == exact(truth)
    if runs(truth):  # the flat size is a sum == flat: refused, naming the condition
        with pytest.raises(Unsolvable, match="sums of non-negative per-size terms"):
            a.solve(5)


# -- Piecewise: broadcasting where a size may be 1 ----------------------------------------------


@settings(max_examples=20)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 1))
@example(s1=4, s2=8, k=3, p=0)
@example(s1=1, s2=3, k=1, p=0)
@example(s1=2, s2=1, k=1, p=0)
def test_piecewise_one_size_matches_torch(s1, s2, k, p):
    """``floor(L/s1)`` broadcast with ``floor(L/s2)``, then a conv: ``Piecewise(...) >= k`` in
    ``_univariate`` (each case where its ``_condition`` holds and the earlier ones do not, a
    constant case included); solve() over a Piecewise flat size, and for a value no size gives
    the nearest ones (``_value_test`` after ``_settle_piecewise``)."""
    make = lambda head: Bcast1d(head, s1, s2, k, p)  # noqa: E731
    a = analyze(make, (1, "L"))
    truth = scan(make, (1, "L"), 60)
    valid = a.valid_sizes()
    assert members(valid, ("L",), 60) == runs(truth)
    assert members(a.exact_sizes(), ("L",), 60) == exact(truth)
    assert members(a.valid_sizes(square=True), ("L",), 60) == runs(truth)  # one size: no ties
    if not runs(truth):
        return
    # (beyond the largest value of a finite set, the nearest search would try 100000 values)
    check_flats(a, truth, ("L",), 60, beyond=not valid.is_finite)
    if valid.is_finite and all(r["L"] <= 60 for r in valid.enumerate(10**4)):
        values = {t[2] for t in truth.values() if t[0]}
        missing = next(v for v in range(1, max(values) + 2) if v not in values)
        if missing > max(values):  # nothing above: the search would run 100000 values
            return
        none = a.solve(missing)
        below = [v for v in values if v < missing]
        above = [v for v in values if v > missing]
        assert none.nearest.get("below", (None,))[0] == (max(below) if below else None)
        assert none.nearest.get("above", (None,))[0] == (min(above) if above else None)


@settings(max_examples=15)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(2, 3), st.integers(1, 3))
@example(s1=1, s2=2, times=2, k=1)  # L beside 2*floor(L/2): L even, or L == 1 (a 1 beside a 0)
@example(s1=2, s2=8, times=4, k=3)
@example(s1=3, s2=1, times=3, k=2)  # floor(L/3) beside 3*L: never equal, 1 only at L in 3..5
def test_broadcast_beside_a_size_never_one_matches_torch(s1, s2, times, k):
    """``floor(L/s1)`` beside ``times*floor(L/s2)``, a size never 1: wherever torch broadcasts
    the other is equal to it or 1 (a 1 beside a 0 too), so the result is that size, with no
    cases (combine._broadcast_size); valid and exact sizes and solve() against a scan."""
    make = lambda head: BcastTiled(head, s1, s2, times, k)  # noqa: E731
    a = analyze(make, (1, "L"))
    added = next(step for step in a.steps if step.op == "operator.add")
    L = size_symbol("L")
    assert added.output[-1] in (canonical(floor_div(L, s1)), canonical(times * floor_div(L, s2)))  # no cases
    truth = scan(make, (1, "L"), 60)
    assert members(a.valid_sizes(), ("L",), 60) == runs(truth)
    assert members(a.exact_sizes(), ("L",), 60) == exact(truth)
    if runs(truth):
        check_flats(a, truth, ("L",), 60, beyond=not a.valid_sizes().is_finite)


class PadToSkip(nn.Module):
    """MONAI's UpCat in small: up-sample, pad by one (``mode``) on each dim where the skip is one
    longer (a Python branch on the sizes), concatenate, convolve, normalize."""

    def __init__(self, mode: str, norm: bool):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(2, 1, 3, padding=1)
        self.norm = nn.InstanceNorm2d(1) if norm else nn.Identity()

    def forward(self, x, skip):
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        sp = [0, 0, 0, 0]
        for i in range(2):
            if skip.shape[-i - 1] != x.shape[-i - 1]:
                sp[i * 2 + 1] = 1
        x = nn.functional.pad(x, sp, self.mode)
        return self.norm(self.conv(torch.cat([skip, x], 1)))


class UNetLike(nn.Module):
    """``depth`` poolings, each checked by a convolution, then as many PadToSkip blocks back up."""

    def __init__(self, head, depth: int, mode: str, norm: bool):
        super().__init__()
        self.head = head
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1)) for _ in range(depth))
        self.up = nn.ModuleList(PadToSkip(mode, norm) for _ in range(depth))

    def forward(self, x):
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)
        return self.head(x.flatten(1))


@settings(max_examples=8)
@given(st.integers(1, 3), st.sampled_from(["replicate", "constant", "reflect"]), st.booleans())
@example(depth=3, mode="replicate", norm=True)  # BasicUNet's blocks: instance norm after each
def test_checks_a_branch_repeats_from_before_it_are_dropped(depth, mode, norm):
    """A block traced by the sides of its branch (the parity of each dim, four sides) checks what
    the steps before it checked already (its convolution's input is not empty, where the pools
    before it made ``H >= 2**depth``): such a check, on each side, is no check (meta.merge_sides:
    it changes no valid size, and the earlier one fails first), and every check the blocks keep
    excludes some size the steps before them let through. Valid sizes against a scan."""
    make = lambda head: UNetLike(head, depth, mode, norm)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    first_up = next(i for i, step in enumerate(a.steps) if step.name.startswith("up"))
    before = [r for step in a.steps[:first_up] for r in step.requirements]
    kept = [r for step in a.steps if step.name.startswith("up") for r in step.requirements]

    def accepts(r, h, w):
        return r.accepts([int(e.xreplace({H: h, W: w})) for e in r.exprs()])

    box = [(h, w) for h in range(1, UP2 + 1) for w in range(1, UP2 + 1)]
    passed = [(h, w) for h, w in box if all(accepts(r, h, w) for r in before)]
    for r in kept:
        assert any(not accepts(r, h, w) for h, w in passed), f"a check the steps before imply: {r}"


def test_three_way_broadcast_matches_torch():
    """``a(x) + b(x) + c(x)`` with three lengths, any of which may be 1: a broadcast of a
    broadcast (a requirement on a Piecewise size, solved case by case)."""
    make = lambda head: Bcast1d(head, 2, 4, 1, 0, s3=3)  # noqa: E731
    a = analyze(make, (1, "L"))
    truth = scan(make, (1, "L"), 60)
    assert members(a.valid_sizes(), ("L",), 60) == runs(truth)


def test_piecewise_flat_size_undecided_on_a_box_matches_torch():
    """A Piecewise of W in the flat size on a box where its condition holds only in part: the
    ``_value_test`` plan falls back to solving (no images); nearest values and the sizes."""
    make = lambda head: BcastCols(head, 3, 2, 5)  # noqa: E731
    a = analyze(make, (1, "H", "W"))
    truth = scan(make, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    check_flats(a, truth, ("H", "W"), UP2)
    values = sorted({t[2] for t in truth.values() if t[0]})  # 10 * floor((H - 1)/2): 10, 20 ...
    none = a.solve(values[0] + 1)
    assert none.nearest["below"][0] == values[0] and none.nearest["above"][0] == values[1]
    assert members(none.nearest["above"][1], ("H", "W"), UP2) == gives(truth, values[1])


def test_model_that_runs_at_no_size_says_so():
    """``solve_flat`` when the valid set itself is empty: no nearest search, a note."""
    # L broadcast with floor(L/2) works at L in {2, 3} only (floor(L/2) == 1), then a kernel of 5
    make = lambda head: Bcast1d(head, 1, 2, 5, 0)  # noqa: E731
    a = analyze(make, (1, "L"))
    assert not runs(scan(make, (1, "L"), UP1)) and a.valid_sizes().is_empty
    got = a.solve(7)
    assert got.is_empty and got.nearest == {} and got.note == "the model accepts no input size at all"


# -- torch._assert: every relation on products and sums, through real forward passes -----------


class Assert(nn.Module):
    """``torch._assert(m * gH * gW + e  op  K)`` (or ``m * (gH + gW) + e``) on the input sizes,
    ``g(x) = (x + b) // q + c``: a real forward raises exactly where the condition fails."""

    def __init__(self, head, kind, op, m, e, k, gh, gw):
        super().__init__()
        self.kind, self.op, self.m, self.e, self.k, self.gh, self.gw = kind, op, m, e, k, gh, gw
        self.head = head

    def forward(self, x):
        (bh, qh, ch), (bw, qw, cw) = self.gh, self.gw
        gh = (x.shape[2] + bh) // qh + ch
        gw = (x.shape[3] + bw) // qw + cw
        v = self.m * gh * gw if self.kind == "prod" else self.m * (gh + gw)
        torch._assert(self.op(v + self.e, self.k), "size check")
        return self.head(x.flatten(1))


OPS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt, "<=": operator.le,
       "<": operator.lt}
maps = st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(0, 2))  # (b, q, c), b < q


@settings(max_examples=60)
@given(st.sampled_from(["prod", "sum"]), st.sampled_from(sorted(OPS)), st.integers(1, 3),
       st.integers(-2, 2), st.integers(0, 40), maps, maps)
@example(kind="prod", op=">=", m=2, e=1, k=30, gh=(0, 1, 0), gw=(1, 2, 1))
@example(kind="prod", op="==", m=1, e=-1, k=11, gh=(0, 1, 0), gw=(0, 2, 0))
@example(kind="prod", op="==", m=2, e=0, k=7, gh=(0, 1, 0), gw=(0, 1, 0))
@example(kind="prod", op="!=", m=1, e=0, k=0, gh=(0, 2, 0), gw=(0, 3, 0))
@example(kind="sum", op="!=", m=1, e=0, k=0, gh=(0, 2, 0), gw=(0, 3, 0))
@example(kind="sum", op=">", m=1, e=0, k=12, gh=(0, 2, 0), gw=(0, 1, 0))
@example(kind="sum", op="==", m=1, e=0, k=12, gh=(0, 2, 0), gw=(0, 1, 0))
@example(kind="prod", op="<=", m=1, e=0, k=12, gh=(0, 2, 0), gw=(0, 1, 0))
@example(kind="prod", op="!=", m=1, e=1, k=13, gh=(0, 2, 0), gw=(0, 1, 0))
@example(kind="sum", op="!=", m=1, e=1, k=1, gh=(0, 2, 0), gw=(0, 3, 0))
def test_every_relation_on_products_and_sums_matches_torch(kind, op, m, e, k, gh, gw):
    """``_multivariate`` for ==, !=, >= (and > as >= K+1) on products ``m*g1*g2 + e`` (constant
    moved right, quotient by ``m`` integer or not, target 0) and sums ``m*g1 + m*g2 + e``
    (``!=`` their constant: the zeros box removed). Each solvable case is compared with torch;
    the others (a sum ==, a product or sum <=, a product >= with a factor that may be 0) must
    raise Unsolvable naming the condition."""
    gh, gw = (min(gh[0], gh[1] - 1), *gh[1:]), (min(gw[0], gw[1] - 1), *gw[1:])
    make = lambda head: Assert(head, kind, OPS[op], m, e, k, gh, gw)  # noqa: E731
    truth = scan(make, (1, "H", "W"), UP2)
    try:
        a = analyze(make, (1, "H", "W"))
    except symshape.InvalidInputSize:  # sympy decided the condition false (parity, sign)
        assert not runs(truth)
        return
    low = [(1 + b) // q + c for b, q, c in (gh, gw)]  # each g's least value (at size 1)
    conds = [r for _, r in a.requirements if len(r.lhs.free_symbols | r.rhs.free_symbols) == 2]
    if kind == "prod":
        solvable = op in ("==", "!=") or (op in (">=", ">") and min(low) >= 1)
    else:  # != is solved when it says "not every term is 0": no constant left on either side
        solvable = op in (">=", ">") or (op == "!=" and all((r.lhs - r.rhs).as_coeff_Add()[0] == 0
                                                          for r in conds))
    try:
        valid = a.valid_sizes()
    except Unsolvable as err:
        assert not solvable, f"{kind} {op}: {err}"
        assert "_assert" in str(err)
        return
    assert members(valid, ("H", "W"), UP2) == runs(truth), f"{a.requirements}\n{valid}"


# -- flat sizes with the batch inside, a rational coefficient, a rectangular kernel ------------


class WholeBatch(nn.Module):
    """``x.view(1, -1)``: the batch folds into the features: in_features = N * 2 * g(H) * g(W)."""

    def __init__(self, head):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2)
        self.head = head

    def forward(self, x):
        return self.head(self.conv(x).view(1, -1))


class HalfRows(nn.Module):
    """``x.view(N, 2, -1)`` on 3 channels: in_features = 3 * g(H) * g(W) / 2 (a rational
    coefficient), and g(H) * g(W) must be even."""

    def __init__(self, head):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = head

    def forward(self, x):
        return self.head(self.conv(x).view(x.size(0), 2, -1))


class Rect(nn.Module):
    """A 3x5 kernel, then the columns averaged away: in_features = 2 * (H - 2), but W >= 5."""

    def __init__(self, head):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, (3, 5))
        self.head = head

    def forward(self, x):
        return self.head(self.conv(x).mean(3).flatten(1))


@pytest.mark.parametrize("batch", [1, 2])
def test_flat_size_with_the_batch_inside_matches_torch(batch):
    """solve(flat, batch=...) when in_features holds the batch size (``N`` replaced before the
    product is split, in the solve and in the nearest search)."""
    a = analyze(WholeBatch, (1, "H", "W"))
    truth = scan(WholeBatch, (1, "H", "W"), UP2, batch=batch)
    assert members(a.valid_sizes(batch=batch), ("H", "W"), UP2) == runs(truth)
    values = sorted({t[2] for t in truth.values() if t[0]})
    for flat in values[:4] + [values[-1]]:
        assert members(a.solve(flat, batch=batch), ("H", "W"), UP2) == gives(truth, flat)
    none = a.solve(2 * batch + 1, batch=batch)  # every value is a multiple of 2 * batch
    assert [none.nearest[k][0] for k in ("below", "above")] == [2 * batch, 4 * batch]


def test_rational_coefficient_flat_size_matches_torch():
    """in_features ``3*g1*g2/2``: the quotient by a rational coefficient in ``_multivariate``,
    and in ``_value_test`` the solving plan (no integer coefficient for the images)."""
    a = analyze(HalfRows, (1, "H", "W"))
    truth = scan(HalfRows, (1, "H", "W"), UP2)
    assert members(a.valid_sizes(), ("H", "W"), UP2) == runs(truth)
    for flat in (3, 6, 12, 27, 7):
        assert members(a.solve(flat), ("H", "W"), UP2) == gives(truth, flat)
    none = a.solve(7)  # values 3*P/2 for even P: 3, 6, 9 ...
    assert [none.nearest[k][0] for k in ("below", "above")] == [6, 9]
    assert members(none.nearest["above"][1], ("H", "W"), UP2) == gives(truth, 9)


def test_square_with_different_bounds_per_size_matches_torch():
    """square=True keeps every check on every tied size (W >= 5 here although in_features only
    reads H): the valid set is solved with the ties, then the flat size on it."""
    a = analyze(Rect, (1, "H", "W"))
    diag = scan(Rect, (1, "H", "W"), 30, diagonal=True)
    assert on_diagonal(a.valid_sizes(square=True), ("H", "W"), 30) == runs(diag)
    for flat in (2, 4, 6, 8, 20):
        assert on_diagonal(a.solve(flat, square=True), ("H", "W"), 30) == gives(diag, flat)
    assert a.solve(2, square=True).nearest["above"][0] == 6


# -- three sizes and the square ties ------------------------------------------------------------


class Video(nn.Module):
    def __init__(self, head, k, s, c=1):
        super().__init__()
        self.conv = nn.Conv3d(1, c, k, stride=s)
        self.head = head

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


def test_three_sizes_square_and_products_of_three_factors_match_torch():
    """A Conv3d's flat size ``g(T)*g(H)*g(W)``: ``_product_eq`` three factors deep, and
    ``_square_ties`` with three spatial sizes tied."""
    make = lambda head: Video(head, 2, 2)  # noqa: E731
    a = analyze(make, (1, "T", "H", "W"))
    names = ("T", "H", "W")
    truth = scan(make, (1, "T", "H", "W"), 9)
    for flat in (1, 2, 6, 8, 12, 13):
        assert members(a.solve(flat), names, 9) == gives(truth, flat)
    diag = scan(make, (1, "T", "H", "W"), 14, diagonal=True)
    for flat in (1, 8, 27, 30):
        assert on_diagonal(a.solve(flat, square=True), names, 14) == gives(diag, flat)
    assert on_diagonal(a.exact_sizes(square=True), names, 14) == exact(diag)
    assert str(a.solve(27, square=True)) == "T = H = W ∈ {6, 7}"
    # two channels: only even values; an odd one is between two (three factors' images)
    make2 = lambda head: Video(head, 2, 2, c=2)  # noqa: E731
    b = analyze(make2, (1, "T", "H", "W"))
    truth = scan(make2, (1, "T", "H", "W"), 8)
    for flat in (13, 25):
        none = b.solve(flat)
        assert none.is_empty and [none.nearest[k][0] for k in ("below", "above")] == [flat - 1, flat + 1]
        assert members(none.nearest["above"][1], names, 8) == gives(truth, flat + 1)
    none = b.solve(15, square=True)  # 2*g^3: 2, 16, 54
    assert [none.nearest[k][0] for k in ("below", "above")] == [2, 16]


# -- branches no model reaches: the same functions against the formula over a box ---------------


def _values(expr, names, upto):
    syms = [size_symbol(n) for n in names]
    fn = compile_exprs(syms, [expr])
    return {c: fn(*c)[0] for c in itertools.product(range(1, upto + 1), repeat=len(names))}


terms = st.tuples(st.integers(-3, 3), st.integers(1, 4), st.integers(-2, 2), st.integers(1, 2))


def _term(x, t):
    b, q, c, a = t
    return a * floor_div(x + b, q) + c


def _parts(expr, kind, names):
    """The constant and each size's part of a product (its factors) or sum (its terms), as
    sympy writes the expression: to predict which conditions the solver must take."""
    prod = kind == "prod"
    const, parts = sympy.Integer(1 if prod else 0), {}
    for t in (sympy.Mul.make_args(expr) if prod else sympy.Add.make_args(expr)):
        on = [n for n in names if t.has(size_symbol(n))]
        if not on:
            const = const * t if prod else const + t
        else:
            parts[on[0]] = parts.get(on[0], sympy.Integer(int(prod))) * t if prod else \
                parts.get(on[0], sympy.Integer(0)) + t
    return const, parts


@settings(max_examples=60)
@given(st.sampled_from(["prod", "sum"]), st.sampled_from(["==", "!=", ">=", "divisible"]),
       st.integers(1, 3), st.integers(-6, 30), terms, terms, terms,
       st.sampled_from(["plain", "plain", "quad", "twice"]))
@example(kind="sum", rel="!=", c=1, k=0, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 4, 0, 1), shape="plain")
@example(kind="prod", rel=">=", c=1, k=20, t1=(0, 1, 0, 1), t2=(1, 2, 0, 1), t3=(0, 1, 1, 1), shape="plain")
@example(kind="prod", rel="==", c=1, k=0, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 1, 0, 1), shape="plain")
@example(kind="prod", rel="==", c=1, k=-6, t1=(-3, 1, 0, 1), t2=(0, 1, 0, 1), t3=(0, 1, 0, 1), shape="plain")
@example(kind="prod", rel="divisible", c=2, k=6, t1=(0, 1, 0, 1), t2=(0, 2, 0, 1), t3=(1, 1, 0, 1), shape="plain")
@example(kind="prod", rel="divisible", c=1, k=4, t1=(0, 1, 0, 1), t2=(0, 2, 2, 2), t3=(1, 1, 0, 1), shape="plain")
@example(kind="sum", rel="!=", c=1, k=5, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 4, 0, 1), shape="plain")
@example(kind="prod", rel=">=", c=1, k=24, t1=(1, 2, 0, 1), t2=(0, 1, 0, 1), t3=(0, 2, 1, 1), shape="quad")
@example(kind="sum", rel=">=", c=1, k=14, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 1, 0, 1), shape="quad")
@example(kind="prod", rel="==", c=1, k=12, t1=(0, 1, 0, 1), t2=(0, 1, 0, 1), t3=(0, 2, 0, 1), shape="twice")
@example(kind="sum", rel=">=", c=1, k=12, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 1, 0, 1), shape="twice")
@example(kind="prod", rel="divisible", c=1, k=1, t1=(0, 2, 0, 1), t2=(0, 3, 0, 1), t3=(0, 1, 0, 1), shape="plain")
def test_solve_requirements_on_three_sizes_matches_the_formula(kind, rel, c, k, t1, t2, t3, shape):
    """``solve_requirements`` straight on one condition of three sizes (terms that may be 0 or
    negative, quadratic in T, or T in two factors / terms): products by signed divisors,
    staircases three deep, divisibility with a coefficient; compared with the condition
    evaluated on 1..10 cubed."""
    g = [_term(x, t) for x, t in zip((T, H, W), (t1, t2, t3))]
    if shape == "quad":  # T * floor((T + b)/q): a quadratic class, not affine
        g[0] = _term(T, (max(t1[0], 0), *t1[1:])) * T
    extra = T + 1 if shape == "twice" else None
    if kind == "prod":
        expr = c * g[0] * g[1] * g[2] * (extra if extra is not None else 1)
    else:
        expr = c * (g[0] + g[1] + g[2] + (extra if extra is not None else 0))
    if rel == "divisible" and k == 0:
        k = 4
    req = Requirement(expr, rel, k, "r")
    names = ("T", "H", "W")
    const, parts = _parts(expr, kind, names)
    lows = [min(_values(part, (n,), 30).values()) for n, part in parts.items()]
    if kind == "prod":  # >= needs every factor at least 0 (a negative coefficient: _product_le)
        solvable = rel != ">=" or (const != 0 and min(lows) >= 0)
    else:  # terms must be non-negative; != only as "not every term 0" (no constant left over)
        solvable = min(lows) >= 0 and (rel == ">=" or (rel == "!=" and k == const))
    try:
        got = S.solve_requirements(names, [("x", req)])
    except Unsolvable:
        assert not solvable, (expr, rel, k)
        return
    assert solvable, (expr, rel, k)
    want = {s for s, v in _values(expr, names, 10).items() if req.holds(v, k)}
    assert members(got, names, 10) == want, (expr, rel, k, got)


@st.composite
def _chains(draw):
    """A check with fast paths, ``a`` unless ``b`` unless ``c`` ...: each link a relation of
    one size's term or of a product or sum of both sizes' terms, against a number."""
    links = []
    for _ in range(draw(st.integers(2, 4))):
        a, b = _term(H, draw(terms)), _term(W, draw(terms))
        cases = sympy.Piecewise((b, sympy.Eq(a, 1)), (a, True))  # a broadcast's size, by cases
        expr = draw(st.sampled_from([a, b, a * b, a + b, cases, cases * b]))
        rel = draw(st.sampled_from(["==", "!=", ">=", ">=", "divisible", "broadcast"]))
        k = draw(st.integers(1, 4) if rel == "divisible" else st.integers(-2, 8))
        if rel != "divisible" and draw(st.integers(0, 3)) == 0:  # one size's term against the other's
            expr, k = a, b  # (``==`` ties W to H: a side of a branch on ``h == w``)
        links.append((expr, rel, k))
    req = None
    for expr, rel, k in reversed(links):
        req = Requirement(expr, rel, k, f"{expr} {rel} {k}", unless=req)
    return req


@settings(max_examples=60)
@given(_chains(), st.integers(0, 3))
@example(req=Requirement(H, ">=", 3, "a", unless=Requirement(W, ">=", 3, "b")), repeat=2)
@example(req=Requirement(H * W, "!=", 4, "a", unless=Requirement(H, "==", 2, "b", unless=Requirement(
    W, "divisible", 2, "c"))), repeat=1)
@example(req=Requirement(H, "!=", W, "a", unless=Requirement(floor_div(H, 2) * floor_div(W, 2), "!=", 4, "b", unless=(
    Requirement(floor_div(H, 2), "broadcast", 2, "c")))), repeat=0)  # Dinov2's position grid: W tied to H
@example(req=Requirement(H, "!=", W, "a", unless=Requirement(W, "==", 0, "b")), repeat=0)
def test_a_chain_of_fast_paths_holds_where_any_link_holds(req, repeat):
    """``solve_requirements`` of a check and its chain of fast paths (each side of a branch
    leaves its checks so), alone or beside copies of itself with other reasons: where any link
    holds, on 1..20 x 1..20. A chain of ``==``, ``!=`` and ``>=`` is solved by where every link
    fails, each one's negation narrowing the last's (a broadcast's is three; ``H == W`` ties W to
    H, and the next negation is solved on that line); one with a divisibility link link by link.
    It crashed on a tie (transformers' Dinov2: ``if num_patches == 256 and h == w``)."""
    names = ("H", "W")
    reqs = [("x", req)] + [(f"copy {i}", replace(req, reason=f"copy {i}")) for i in range(repeat)]
    try:
        got = S.solve_requirements(names, reqs)
    except Unsolvable:
        return  # (a link the solver does not solve: a product that changes sign)
    want = set()
    links = []
    link = req
    while link is not None:
        links.append((link, _values(link.lhs, names, UP2), _values(link.rhs, names, UP2)))
        link = link.unless
    for hw in itertools.product(range(1, UP2 + 1), repeat=2):
        if any(r.holds(values[hw], rhs[hw]) for r, values, rhs in links):
            want.add(hw)
    assert members(got, names, UP2) == want, req


@settings(max_examples=40)
@given(st.integers(-3, 3), st.integers(1, 4), st.sampled_from(["==", ">="]), st.integers(0, 2),
       st.sampled_from(["==", "!="]), st.integers(0, 12), terms)
@example(b=0, q=4, pre_rel="==", v=0, rel="==", k=0, tw=(0, 1, 0, 1))
@example(b=0, q=4, pre_rel=">=", v=1, rel="!=", k=6, tw=(0, 2, 0, 1))
@example(b=-3, q=2, pre_rel=">=", v=1, rel="==", k=6, tw=(0, 1, 0, 1))
def test_products_on_a_box_cut_by_a_one_size_condition_match_the_formula(b, q, pre_rel, v, rel, k, tw):
    """A one-size condition first (it is solved first and cuts the box), then a product of the
    same size's term and another: on a box where a factor is 0 everywhere (``_product_eq``'s
    zero branch with nothing left over) or at least 1 everywhere."""
    g = floor_div(H + b, q)
    gw = _term(W, tw)
    reqs = [("pre", Requirement(g, pre_rel, v, "r")), ("x", Requirement(g * gw, rel, k, "r"))]
    got = S.solve_requirements(["H", "W"], reqs)
    first, second = _values(g, ("H", "W"), 16), _values(g * gw, ("H", "W"), 16)
    want = {c for c in first if reqs[0][1].holds(first[c], v) and reqs[1][1].holds(second[c], k)}
    assert members(got, ("H", "W"), 16) == want


@settings(max_examples=60)
@given(st.integers(-3, 3), st.integers(1, 5), st.integers(1, 3), st.integers(-2, 4),
       st.sampled_from([sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt]),
       st.sampled_from([">=", "==", "!="]), st.integers(-2, 8),
       st.sampled_from(["floor", "mod", "quad"]), st.integers(0, 3))
@example(b=0, q=2, a=1, c=0, cond_cls=sympy.Ge, op=">=", value=2, form="mod", th=1)
@example(b=0, q=3, a=1, c=0, cond_cls=sympy.Ge, op="==", value=3, form="quad", th=4)
def test_piecewise_conditions_of_every_kind_match_evaluation(b, q, a, c, cond_cls, op, value, form, th):
    """``_univariate`` over ``Piecewise((3, cond), (g, True))`` with ``cond`` Eq/Ne/Ge/Gt/Le/Lt
    of a floor, a remainder (constant on each residue class) or a quadratic (``_condition``'s
    quasi-polynomial path for the strict and <= ones, ``_univariate`` for the others); the
    constant case (``expr`` without x) decided by value."""
    g = a * floor_div(L + b, q) + c
    lhs = {"floor": floor_div(L + b, q), "mod": L - q * floor_div(L + b, q),
           "quad": floor_div(L + b, q) * floor_div(L, 2)}[form]
    cond = cond_cls(lhs, th)
    pw = sympy.Piecewise((sympy.Integer(3), cond), (g, True))
    if not isinstance(pw, sympy.Piecewise):  # sympy decided the condition itself
        return
    got = S._univariate(pw, op, value, L)
    vals = _values(pw, ("L",), 60)
    want = {n for (n,), v in vals.items() if OPS[op](v, value)}
    assert set(got.values(60)) == want
    # the condition alone, as a set
    flag = _values(sympy.Piecewise((1, cond), (0, True)), ("L",), 60)
    assert set(S._condition(cond, L).values(60)) == {n for (n,), v in flag.items() if v}


def test_order_sides_and_batch_of_requirements_match_the_formula():
    """``solve_requirements``: one-size conditions first whatever the order (a product >= needs
    the box they cut); sizes on both sides moved to the left (==, != and >=, one size); the
    batch size ``N`` fixed (1 by default)."""
    names = ["H", "W"]
    reqs = [("x", Requirement((H - 2) * (W - 2), ">=", 6, "r")), ("a", Requirement(H, ">=", 3, "r")),
            ("b", Requirement(W, ">=", 3, "r"))]
    want = {(h, w) for h in range(1, 13) for w in range(1, 13) if h >= 3 and w >= 3 and (h - 2) * (w - 2) >= 6}
    for order in itertools.permutations(reqs):
        assert members(S.solve_requirements(names, order), names, 12) == want
    for lhs, rel, rhs in ((floor_div(H, 2), "!=", H - 3), (floor_div(H, 2), ">=", H - 5),
                          (floor_div(H, 2), "==", H - 3)):
        got = S.solve_requirements(["H"], [("r", Requirement(lhs, rel, rhs, "r"))])
        fl, fr = _values(lhs, ("H",), 40), _values(rhs, ("H",), 40)
        want1 = {c for c in fl if Requirement(lhs, rel, rhs, "r").holds(fl[c], fr[c])}
        assert members(got, ["H"], 40) == want1, (lhs, rel, rhs)
    n = size_symbol("N")
    bn = [("bn", Requirement(n * H * W, "!=", 1, "r"))]
    assert members(S.solve_requirements(names, bn), names, 5) == {c for c in _values(H * W, names, 5) if c != (1, 1)}
    assert members(S.solve_requirements(names, bn, batch=2), names, 5) == set(_values(H * W, names, 5))


def test_condition_edge_cases():
    """``_condition`` of true / false, of a Piecewise kept whole inside Eq / Ne / Ge (solved by
    ``_univariate`` case by case), and of And / Or."""
    inner = sympy.Piecewise((floor_div(L, 4), sympy.Eq(floor_div(L, 2), 1)), (floor_div(L, 2), True))
    flag = _values(inner, ("L",), 40)
    for cls, op in ((sympy.Eq, operator.eq), (sympy.Ne, operator.ne), (sympy.Ge, operator.ge)):
        cond = cls(inner, 1, evaluate=False)
        assert set(S._condition(cond, L).values(40)) == {n for (n,), v in flag.items() if op(v, 1)}
    assert S._condition(sympy.true, L) == IntSet.all()
    assert S._condition(sympy.false, L) == IntSet.empty()
    # And / Or of conditions (torch's meta kernels produce them) are intersections / unions
    assert set(S._condition(sympy.And(sympy.Ge(L, 3), sympy.Le(L, 7)), L).values(40)) == set(range(3, 8))
    assert set(S._condition(sympy.Or(sympy.Le(L, 2), sympy.Ge(L, 39)), L).values(40)) == {1, 2, 39, 40}
    pw = sympy.Piecewise((L, sympy.And(L >= 2, L <= 5)), (1, True))
    assert set(S._univariate(pw, ">=", 2, L).values(40)) == {2, 3, 4, 5}


@settings(max_examples=40)
@given(st.integers(-4, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 12))
def test_divisible_set_and_gcd_is_match_evaluation(b, q, a, m):
    """``divisible_set`` (``m == 1``: everything) and ``_gcd_is`` for every divisor of ``m``."""
    g = a * floor_div(L + b, q) + 1
    vals = {n: v for (n,), v in _values(g, ("L",), 80).items()}
    assert set(S.divisible_set(g, m, L).values(80)) == {n for n, v in vals.items() if v % m == 0}
    for d in S.divisors(m):
        want = {n for n, v in vals.items() if sympy.gcd(v, m) == d}
        assert set(S._gcd_is(g, d, m, L).values(80)) == want, (g, d, m)


@settings(max_examples=80)
@given(st.integers(-1, 1).filter(bool), st.integers(-3, 12), st.integers(-3, 12), st.integers(-2, 2),
       st.integers(1, 3), st.integers(-2, 2), st.integers(1, 3), st.integers(-6, 6),
       st.sampled_from([">=", "==", "!=", "<=", ">", "<"]), st.integers(-8, 40), st.integers(1, 2))
@example(sign=-1, r1=5, r2=5, d=0, q=1, a=1, qa=1, c=0, op=">=", v=0, den=1)  # a double root
@example(sign=1, r1=3, r2=10, d=0, q=1, a=1, qa=1, c=0, op=">=", v=0, den=1)  # two roots above 0
@example(sign=1, r1=0, r2=0, d=-1, q=2, a=2, qa=3, c=10, op="<=", v=12, den=1)  # falling classes
@example(sign=1, r1=0, r2=0, d=0, q=1, a=2, qa=3, c=0, op="==", v=5, den=1)  # floor((2x + b)/3)
@example(sign=1, r1=0, r2=0, d=0, q=1, a=1, qa=1, c=0, op=">", v=5, den=2)  # a half threshold
@example(sign=1, r1=0, r2=0, d=-1, q=2, a=1, qa=1, c=0, op=">=", v=-8, den=1)  # -x - 3*(x mod 2)
def test_quasi_polynomials_of_any_shape_match_evaluation(sign, r1, r2, d, q, a, qa, c, op, v, den):
    """``quasi(e).solve`` beyond the monotone maps layers build (tests/test_quasi.py): quadratics
    with two, one (double) or no roots above 0 and either sign (the root brackets and the gaps
    between them), classes that fall (finite ranges per residue class), ``floor((a*x + b)/q)``
    with ``a > 1`` (the affine fast path), thresholds that are not integers."""
    from fractions import Fraction

    from symshape.quasi import quasi

    x = size_symbol("x")
    quad = sign * (x - r1) * (x - r2) + c
    lin = d * x + sign * floor_div(a * x + c, qa) + v % 3
    mod = x - q * floor_div(x, q)  # a remainder: constant on each residue class
    value = Fraction(v, den)
    for e in (quad, lin, quad + mod, lin * (mod + 1), d * x - 3 * mod):
        vals = _values(e, ("x",), 120)
        want = {n for (n,), ev in vals.items()
                if {">=": ev >= value, "==": ev == value, "!=": ev != value, "<=": ev <= value,
                    ">": ev > value, "<": ev < value}[op]}
        got = quasi(e, x).solve(op, value)
        assert set(got.values(120)) == want, (e, op, value)
    # the positive values of a quasi-linear map on a domain (None when some class falls)
    for e in (lin, 2 * floor_div(x, 2) - x + 5 + v % 2, mod * 3 + floor_div(x + c, qa) + 2):
        img = quasi(e, x).image(IntSet.interval(1, 60))
        if img is not None:
            vals = {ev for ev in _values(e, ("x",), 60).values() if ev >= 1}
            assert set(img.values(10**4)) == vals, e


def test_intset_and_sizeset_edges():
    """Intervals partly or wholly below 1; the renderings of everything; sizes named wrongly."""
    assert IntSet.from_intervals([(-3, 0)]).is_empty
    assert set(IntSet.from_intervals([(-3, 2), (5, 4), (7, 8)]).values(20)) == {1, 2, 7, 8}
    assert str(IntSet.at_least(3)) == "n ≥ 3"
    every = SizeSet(["H", "W"], [{"H": IntSet.all(), "W": IntSet.all()}])
    assert str(every) == "any H and W" and every.contains(H=7, W=1)
    with pytest.raises(TypeError, match="exactly H, W"):
        every.contains(H=1, W=1, L=2)
    with pytest.raises(TypeError, match="exactly H, W"):
        every.contains(H=1)


def test_signed_divisors():
    assert S._signed_divisors(12) == [1, 2, 3, 4, 6, 12, -1, -2, -3, -4, -6, -12]
    assert S._signed_divisors(-9) == [1, 3, 9, -1, -3, -9]
    assert S.divisors(16) == [1, 2, 4, 8, 16]
    assert S.divisors(1) == [1]


def _box(**kw):
    return {n: kw.get(n, IntSet.all()) for n in ("H", "W")}


def test_difference_and_union_match_set_difference():
    """``_difference``: a box minus overlapping and disjoint boxes; ``_union`` keeps the first
    part and adds what the second adds."""
    b = _box(H=IntSet.interval(1, 12), W=IntSet.interval(1, 12))
    r1 = _box(H=IntSet.interval(3, 5), W=IntSet.interval(2, 8))
    r2 = _box(H=IntSet.interval(4, 9), W=IntSet.interval(7, 12))
    r3 = _box(H=IntSet.interval(20, 30), W=IntSet.interval(1, 3))  # misses b in H
    pts = lambda boxes: {c for bx in boxes for c in itertools.product(  # noqa: E731
        bx["H"].values(40), bx["W"].values(40))}
    pieces = S._difference(b, [r1, r2, r3], ["H", "W"])
    assert pts(pieces) == pts([b]) - pts([r1]) - pts([r2])
    assert sum(len(pts([p])) for p in pieces) == len(pts(pieces))  # disjoint
    both = S._union([r1], [r2, r3])
    assert pts(both) == pts([r1, r2, r3])
    assert S._union([], [r1]) == [r1]


def test_staircase_budget_and_other_refusals(monkeypatch):
    """The staircase gives up past MAX_STAIRS boxes; a condition with sizes on both sides, a
    size-dependent divisor of degree 2, a never-holding check, an unknown relation: refused or
    empty."""
    box = _box()
    monkeypatch.setattr(S, "MAX_STAIRS", 30)
    assert len(S._product_ge([("H", H), ("W", W)], 30, box)) == 30  # H >= 30, or H = v, W >= 30/v
    with pytest.raises(Unsolvable, match="more than 30 boxes"):
        S._product_ge([("H", H), ("W", W)], 32, box)
    with pytest.raises(Unsolvable, match="more than 30 boxes"):
        S._sum_ge([("H", H - 1), ("W", W - 1)], 32, box)
    with pytest.raises(Unsolvable, match="both sides"):
        S._multivariate(H * W, "divisible", H, box, ["H", "W"], "t")
    with pytest.raises(Unsolvable, match="products of per-size terms"):
        S._multivariate(floor_div(H * W, 2) + H, ">=", sympy.Integer(3), box, ["H", "W"], "t")
    # a floor of a product is the same condition on the product (_floor_of_many)
    floored = SizeSet(["H", "W"], S._multivariate(floor_div(H * W, 2), ">=", sympy.Integer(3), box, ["H", "W"], "t"))
    assert members(floored, ["H", "W"], 12) == {(h, w) for h in range(1, 13) for w in range(1, 13) if h * w // 2 >= 3}
    # a size-dependent divisor: H + 1 divides 2H only where it divides 2 (H = 1, read from the
    # divisors: solve.size_divisible_set); one of higher degree is refused by name
    divides = S.solve_requirements(["H"], [("v", Requirement(2 * H, "divisible", H + 1, "r"))])
    assert members(divides, ["H"], 50) == {(h,) for h in range(1, 51) if (2 * h) % (h + 1) == 0} == {(1,)}
    with pytest.raises(Unsolvable, match="size-dependent divisor"):
        S.solve_requirements(["H"], [("v", Requirement(2 * H, "divisible", H * H + 1, "r"))])
    assert S.solve_requirements(["H"], [("v", Requirement(0, "never", 0, "r"))]).is_empty
    assert S.solve_requirements(["H"], [("v", Requirement(H, "divisible", 0, "r"))]).is_empty
    # every relation's meaning comes from requirements.RELATIONS, broadcast included
    assert S._constant_holds("broadcast", 1, 5) and not S._constant_holds("broadcast", 2, 3)
    assert S._constant_holds(">=", 3, 2) and not S._constant_holds(">=", 1, 2)
    assert S._constant_holds("!=", 1, 2) and not S._constant_holds("!=", 2, 2)
    assert S._constant_holds("divisible", 6, 3) and not S._constant_holds("divisible", 6, 0)
    assert S._product_divisible([], 4, box) == [] and S._product_divisible([], 1, box) == [box]
    assert S._product_eq([], 1, box) == [box] and S._product_eq([], 2, box) == []
    # a zero coefficient (sympy folds 0*H*W to 0 itself; an unevaluated one is still right)
    zero = sympy.Mul(0, H, W, evaluate=False)
    assert S._multivariate(zero, "==", sympy.Integer(0), box, ["H", "W"], "t") == [box]
    assert S._multivariate(zero, "==", sympy.Integer(2), box, ["H", "W"], "t") == []
    assert S._multivariate(zero, "!=", sympy.Integer(0), box, ["H", "W"], "t") == []
    with pytest.raises(Unsolvable, match="products of per-size terms"):  # a rational coefficient
        S._multivariate(H * W / 2, "divisible", sympy.Integer(3), box, ["H", "W"], "t")


def test_batch_only_conditions_match_torch():
    """Conditions on the batch size alone become constants (``_constant_holds`` >= and !=):
    ``x[1]`` needs two samples, a training BatchNorm1d after a Linear more than one."""

    class Second(nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def forward(self, x):
            return self.head(x[1].flatten(0).unsqueeze(0))

    class BN1(nn.Module):
        def __init__(self, head):
            super().__init__()
            self.pool, self.bn, self.head = nn.AdaptiveAvgPool1d(4), nn.BatchNorm1d(4), head

        def forward(self, x):
            return self.head(self.bn(self.pool(x).flatten(1)))

    class Quads(nn.Module):  # 6 pooled values per sample in rows of 4: the batch must be even
        def __init__(self, head):
            super().__init__()
            self.pool, self.head = nn.AdaptiveAvgPool1d(6), head

        def forward(self, x):
            return self.head(self.pool(x).view(-1, 4))

    for make, shape in ((Second, (1, "L")), (BN1, (1, "L")), (Quads, (1, "L"))):
        a = analyze(make, shape)
        for batch in (1, 2, 3):
            truth = scan(make, shape, 12, batch=batch)
            assert members(a.valid_sizes(batch=batch), ("L",), 12) == runs(truth), (make, batch)


def test_unless_fast_path_matches_torch():
    """A requirement with an ``unless`` (adaptive average pooling's fast path): ``_apply`` unions
    the sizes that meet it with those that take the fast path."""

    class Pool(nn.Module):
        def __init__(self, head):
            super().__init__()
            self.conv, self.pool, self.head = nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d((None, 1)), head

        def forward(self, x):
            return self.head(self.pool(self.conv(x)).flatten(1))

    a = analyze(Pool, (1, "H", "W"))
    assert any(r.unless is not None for _, r in a.requirements)
    truth = scan(Pool, (1, "H", "W"), 10)
    assert members(a.valid_sizes(), ("H", "W"), 10) == runs(truth)


def _box_values(expr, box, names, upto):
    syms = [size_symbol(n) for n in names]
    fn = compile_exprs(syms, [expr])
    ranges = [list(box[n].values(upto)) for n in names]
    return {fn(*c)[0] for c in itertools.product(*ranges)}


def test_value_test_and_settle_piecewise_against_the_formula():
    """``_value_test``'s plans: the images of non-negative factors, a Piecewise settled on a box
    (its condition decided, or true), one left undecided, a factor that may be negative, a
    negative coefficient, a constant; each test(t) against the values over the box."""
    names = ["H", "W"]
    bh, bw = IntSet.interval(1, 9), IntSet.interval(1, 9)
    box = {"H": bh, "W": bw}
    pw_w = sympy.Piecewise((sympy.Integer(5), sympy.Eq(W, 1)), (W, True))
    cases = [
        2 * floor_div(H + 1, 2) * W,  # images
        H * pw_w,  # W = 1 is in the box: undecided -> solve
        (H - 4) * W,  # a factor negative on part of the box -> solve
        -H * W + 100,  # not a product (a constant added) -> solve
        -H * W,  # a negative coefficient -> solve
        H**2 * W,  # not quasi-linear: no images -> solve
    ]
    for expr in cases:
        test = S._value_test(expr, [box], names, {})
        vals = _box_values(expr, box, names, 9)
        for t in range(1, 60):
            assert test(t) == (t in vals), (expr, t)
    # settled: on W >= 2 the first case never holds; on W = 1 it always does
    for bw2 in (IntSet.interval(2, 9), IntSet.of([1])):
        b2 = {"H": bh, "W": bw2}
        settled = S._settle_piecewise(H * pw_w, b2, names)
        assert not settled.has(sympy.Piecewise)
        vals = _box_values(H * pw_w, b2, names, 9)
        test = S._value_test(H * pw_w, [b2], names, {})
        assert all(test(t) == (t in vals) for t in range(1, 60))
    assert S._settle_piecewise(H * pw_w, box, names) == H * pw_w  # undecided
    two = sympy.Piecewise((sympy.Integer(2), sympy.Eq(H, W)), (H, True))
    assert S._settle_piecewise(two * W, box, names) == two * W  # a condition on two sizes
    partial = sympy.Piecewise((H, sympy.Eq(W, 1)), (sympy.Integer(2), sympy.Eq(W, 2)))
    far = {"H": bh, "W": IntSet.interval(5, 9)}  # no case holds anywhere on the box: kept
    assert S._settle_piecewise(partial * H, far, names) == partial * H
    # two boxes: the first takes the solving plan, the second its images (both are searched)
    box1 = {"H": IntSet.of([1]), "W": IntSet.interval(1, 2)}
    box2 = {"H": IntSet.interval(5, 9), "W": IntSet.interval(2, 9)}
    for expr in (H * pw_w, (H - 4) * W):
        test = S._value_test(expr, [box1, box2], names, {})
        vals = _box_values(expr, box1, names, 9) | _box_values(expr, box2, names, 9)
        assert [t for t in range(1, 90) if test(t)] == sorted(v for v in vals if v >= 1), expr
    # a constant product: 3 is reachable, nothing else
    test = S._value_test(sympy.Integer(3), [box], names, {})
    assert [t for t in range(1, 10) if test(t)] == [3]


def test_solve_flat_search_limit_and_bad_arguments():
    """The nearest search stops ``search`` away (inclusive) and says so; defaults (not square,
    batch 1); a flat of 0; a flat size that is not a non-negative int is refused."""
    make = lambda head: FlatConv(head, 3, 1, 0, 1, c=7)  # noqa: E731  7*g1*g2
    a = analyze(make, (1, "H", "W"))
    assert not S.solve_flat(a, 14).is_empty  # 7*1*2: not square by default
    assert S.solve_flat(a, 8, search=6).nearest["above"][0] == 14  # exactly 6 above
    assert "above" not in S.solve_flat(a, 8, search=5).nearest
    assert S.solve_flat(a, 20, search=6).nearest["below"][0] == 14  # exactly 6 below
    got = S.solve_flat(a, 20, search=5)
    assert "below" not in got.nearest and "nearest below: none within 5" in got.note
    got = S.solve_flat(a, 4, search=4)  # nothing below 4 and 4 <= search: said so
    assert got.note == ("no valid input size gives head in_features = 4; nothing smaller is "
                        "reachable; nearest above: 7 at H = 3 and W = 3")
    zero = a.solve(0)
    assert zero.is_empty and zero.nearest["above"][0] == 7 and "nothing smaller" in zero.note
    one = analyze(lambda head: FlatConv(head, 3, 1, 0, 1, c=1), (1, "H", "W"))  # (S - 2)^2
    got = one.solve(2, square=True)
    assert [got.nearest[k][0] for k in ("below", "above")] == [1, 4]  # 1 is searched too
    bn = analyze(lambda head: TrainBN(head, 3, 2), (1, "H", "W"))  # 2*g1*g2, BN needs g1*g2 != 1
    truth1 = scan(lambda head: TrainBN(head, 3, 2), (1, "H", "W"), 12)
    truth2 = scan(lambda head: TrainBN(head, 3, 2), (1, "H", "W"), 12, batch=2)
    assert members(S.solve_flat(bn, 2), ("H", "W"), 12) == gives(truth1, 2) == set()
    assert members(S.solve_flat(bn, 2, batch=2), ("H", "W"), 12) == gives(truth2, 2) != set()
    assert members(S.exact_sizes(bn), ("H", "W"), 12) == exact(truth1)
    default = S.valid_sizes(bn)  # batch 1, not square
    assert members(default, ("H", "W"), 12) == runs(truth1) and default.groups == (("H",), ("W",))
    got = S.solve_flat(a, 8, search=3)  # 7 is 8 - 1, 14 is 8 + 6: out of reach
    assert got.is_empty and got.nearest["below"][0] == 7 and "above" not in got.nearest
    assert "nearest above: none within 3" in got.note
    got = S.solve_flat(a, 30, search=3)  # 28 is 2 below, 35 is 5 above
    assert got.nearest["below"][0] == 28 and "nearest above: none within 3" in got.note
    got = S.solve_flat(a, 100, search=1)
    assert got.nearest == {} and "nearest below: none within 1" in got.note
    for bad in (-1, 2.0, True, "8"):
        with pytest.raises(ValueError):
            a.solve(bad)
    truth = scan(make, (1, "H", "W"), 12)
    assert members(a.solve(28), ("H", "W"), 12) == gives(truth, 28)


def test_a_strict_condition_with_a_fraction_is_cleared_exactly():
    """``Max(0, 3*L - 5)`` by cases: sympy writes the case ``3*L - 5 > 0`` as ``L > 5/3``, which
    is ``L >= 2`` for integers, not ``L >= 5/3 + 1`` (found by the 10,000-model fuzz)."""
    import sympy
    import torch.nn.functional as F

    from symshape.requirements import Requirement
    from symshape.solve import solve_requirements

    L = sympy.Symbol("L", positive=True, integer=True)
    clipped = sympy.Max(0, 3 * L - 5)
    assert str(solve_requirements(["L"], [("w", Requirement(clipped, ">=", 1, "x"))])) == "L ≥ 2"
    assert str(solve_requirements(["L"], [("w", Requirement(clipped, "==", 1, "x"))])) == "L = 2"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.wt = nn.Parameter(torch.randn(1, 2, 3))
            self.w = nn.Parameter(torch.randn(2, 2, 2))
            self.pool = nn.AdaptiveAvgPool1d(2)

        def forward(self, x):
            x = F.conv_transpose1d(x, self.wt, stride=3, padding=2, output_padding=1)
            x = torch.cat(F.conv1d(F.conv1d(x, self.w), self.w).chunk(1, dim=-1), -1)
            return x + self.pool(x)

    make = lambda head: Net()  # noqa: E731
    a = analyze(make, (1, "L"))
    truth = scan(make, (1, "L"), 30)
    assert members(a.valid_sizes(), ("L",), 30) == runs(truth) == {(2,)}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2), st.integers(-3, 2), st.integers(0, 2),
       st.integers(-3, 2), st.integers(1, 3), st.booleans(), st.sampled_from(["==", "!="]), st.booleans())
@example(kh=4, kw=4, sh=0, th=0, sw=0, tw=0, c=3, batch=True, rel="==", swap=False)
@example(kh=2, kw=3, sh=0, th=1, sw=0, tw=0, c=1, batch=False, rel="==", swap=True)
def test_dominated_products_on_both_sides_match_the_formula(kh, kw, sh, th, sw, tw, c, batch, rel, swap):
    """``_dominated``: ``c·N·(H+sh)·(W+sw) == c·kh·kw·N·floor((H+th)/kh)·floor((W+tw)/kw)`` (a view
    merging sizes, TResNet's space-to-depth), both sides depending on the sizes; where each size
    dominates its floor term the solver answers, else it refuses. Compared with the condition
    evaluated on 1..12 squared (and the batch 1..3)."""
    N = size_symbol("N")
    n = N if batch else 1
    lhs = c * n * (H + sh) * (W + sw)
    rhs = c * kh * kw * n * floor_div(H + th, kh) * floor_div(W + tw, kw)
    req = Requirement(rhs, rel, lhs, "view") if swap else Requirement(lhs, rel, rhs, "view")
    names = ("N", "H", "W") if batch else ("H", "W")
    try:
        got = S.solve_requirements(names, [("x", req)])
    except Unsolvable:
        # only where a floor term may exceed its size or be negative (H + th < 0 at H = 1)
        assert th > sh or tw > sw or min(th, tw) < -1, (lhs, rhs)
        return
    up = {"N": 3, "H": 12, "W": 12}
    want = set()
    for combo in itertools.product(*(range(1, up[x] + 1) for x in names)):
        at = dict(zip((size_symbol(x) for x in names), combo))
        a, b = int(req.lhs.xreplace(at)), int(req.rhs.xreplace(at))
        if req.holds(a, b):
            want.add(combo)
    got_set = {tuple(r[x] for x in names) for r in got.enumerate(12) if all(r[x] <= up[x] for x in names)}
    assert got_set == want, (req, got)


def _brute(req, names, up):
    """The sizes of 1..up (per name) at which ``req`` (and its ``unless`` chain) accepts."""
    out = set()
    syms = [size_symbol(n) for n in names]
    for combo in itertools.product(*(range(1, up[n] + 1) for n in names)):
        at = {x: sympy.Integer(v) for x, v in zip(syms, combo)}
        r, ok = req, False
        while r is not None and not ok:
            lhs, rhs = r.lhs.xreplace(at), r.rhs.xreplace(at)
            ok = lhs.is_finite is not False and rhs.is_finite is not False and r.holds(lhs, rhs)
            r = r.unless
        if ok:
            out.add(combo)
    return out


def _members_upto(got, names, up):
    return {tuple(r[n] for n in names) for r in got.enumerate(max(up.values()))
            if all(r[n] <= up[n] for n in names)}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["le", "ge0", "divides", "floor", "inverse"]), st.integers(0, 3), st.integers(1, 4),
       st.integers(0, 3), st.integers(1, 4), st.integers(1, 3), st.integers(0, 12),
       st.sampled_from(["==", "!=", ">="]))
@example(form="le", bh=0, qh=8, bw=0, qw=8, c=24, t=0, rel=">=")  # edgenext: 0 >= 24*N*fH*fW
@example(form="divides", bh=1, qh=4, bw=1, qw=4, c=1, t=64, rel="==")  # coatnet's window reshape
@example(form="floor", bh=3, qh=4, bw=3, qw=4, c=16, t=0, rel="!=")  # nextvit: floor(p/16) != 0
@example(form="inverse", bh=1, qh=4, bw=1, qw=4, c=64, t=64, rel="==")  # 64/p == 64
@example(form="ge0", bh=0, qh=2, bw=0, qw=2, c=1, t=1, rel=">=")  # floor(H/2)*floor(W/2) >= 1
def test_products_with_zero_factors_divisors_floors_and_inverses_match_the_formula(form, bh, qh, bw, qw, c, t, rel):
    """Products of per-size terms that may be 0 (``floor((H + b)/q)``) in the conditions real
    models make: ``t >= c·gH·gW`` (``_product_le``), ``c·gH·gW >= t`` with zero factors, ``k·N``
    divisible by ``N·c·gH·gW`` (``_divides_constant``), ``floor((gH·gW)/c) rel t``
    (``_floor_of_many``) and ``k / (gH·gW) rel t``; compared with the condition on 1..12 squared."""
    N = size_symbol("N")
    gh, gw = floor_div(H + bh, qh), floor_div(W + bw, qw)
    if form == "le":
        req, names = Requirement(t, ">=", c * N * gh * gw, "r"), ("N", "H", "W")
    elif form == "ge0":
        req, names = Requirement(c * gh * gw, ">=", t, "r"), ("H", "W")
    elif form == "divides":
        req, names = Requirement((t + 1) * N, "divisible", c * N * gh * gw, "r"), ("N", "H", "W")
    elif form == "floor":
        req, names = Requirement(floor_div(gh * gw, c + 1), rel, t, "r"), ("H", "W")
    else:  # k / product, as reshape's -1 infers it; torch refuses a zero product earlier
        req = Requirement(gh * gw, "!=", 0, "r", unless=None)
        inverse = Requirement(c * 12 / (gh * gw), rel if rel != ">=" else "==", t + 1, "r")
        names = ("H", "W")
        got = S.solve_requirements(names, [("x", req), ("y", inverse)])
        up = {"H": 12, "W": 12}
        want = _brute(req, names, up) & _brute(inverse, names, up)
        assert _members_upto(got, names, up) == want, (inverse, got)
        return
    up = {"N": 1, "H": 12, "W": 12}  # solve_requirements fixes the batch size (1 by default)
    got = S.solve_requirements(names, [("x", req)])
    assert _members_upto(got, names, up) == _brute(req, names, up), (req, got)


def test_a_requirement_with_many_min_max_is_refused_not_expanded():
    """Nested Min/Max split into cases grow exponentially (a random model's slice bounds hung the
    suite with sympy's rewrite): on one size the solver splits them by hand, exact, up to
    MAX_EXTREMA_ONE_SIZE; past it, and past MAX_EXTREMA on several sizes, it refuses."""
    import time

    def nested(depth, x):
        e = x
        for k in range(1, depth + 1):
            e = sympy.Max(sympy.Min(e, 5 * k + x), k)
        return e

    e = nested(S.MAX_EXTREMA + 2, L)
    req = Requirement(e * L + floor_div(L, 3) * e, ">=", 7, "r")
    got = S.solve_requirements(["L"], [("v", req)])
    assert {n for n in range(1, 80) if got.contains(L=n)} == {
        n for n in range(1, 80) if req.holds(int((e * L + floor_div(L, 3) * e).subs(L, n)), 7)}
    start = time.perf_counter()
    with pytest.raises(Unsolvable, match="Min/Max"):
        deep = nested(S.MAX_EXTREMA_ONE_SIZE, L)
        S.solve_requirements(["L"], [("v", Requirement(deep * L, ">=", 7, "r"))])
    with pytest.raises(Unsolvable):
        S.solve_requirements(["L", "T"], [("v", Requirement(e * T + floor_div(L, 3) * e, ">=", 7, "r"))])
    assert time.perf_counter() - start < 10


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(0, 12), st.integers(1, 30), st.integers(0, 12), st.integers(1, 4),
       st.integers(1, 4), st.integers(-2, 2), st.sampled_from(["==", "!=", ">="]), st.booleans())
def test_a_coupled_condition_on_a_few_values_is_solved_value_by_value(h0, hn, w0, wn, qh, qw, k, rel, finite_w):
    """``floor(H/qh) rel floor(W/qw) + k`` couples H and W (no separable form); where the other
    requirements leave H (and maybe W) a few values, the solver tries them one by one
    (``MAX_ENUMERATED``). Compared with the conditions evaluated on 1..60 squared."""
    reqs = [("a", Requirement(H, ">=", h0, "lo")), ("b", Requirement(h0 + hn, ">=", H, "hi")),
            ("c", Requirement(W, ">=", w0, "lo"))]
    if finite_w:
        reqs.append(("d", Requirement(w0 + wn, ">=", W, "hi")))
    coupled = Requirement(floor_div(H, qh), rel, floor_div(W, qw) + k, "coupled")
    got = S.solve_requirements(("H", "W"), reqs + [("x", coupled)])
    want = {(h, w) for h in range(1, 61) for w in range(1, 61)
            if h0 <= h <= h0 + hn and w >= w0 and (not finite_w or w <= w0 + wn)
            and coupled.holds(h // qh, w // qw + k)}
    assert {(r["H"], r["W"]) for r in got.enumerate(60)} == want


def test_a_coupled_condition_on_unbounded_sizes_is_solved_on_lines_or_refused_by_name():
    """``floor(H/2) == floor(W/3)`` holds on lines (W = 3*H/2 + c on classes of H): exact; its
    negation is no union of boxes or lines: refused, naming the condition."""
    got = S.solve_requirements(("H", "W"), [("x", Requirement(floor_div(H, 2), "==", floor_div(W, 3), "c"))])
    assert {(h, w) for h in range(1, 61) for w in range(1, 61) if got.contains(H=h, W=w)} == {
        (h, w) for h in range(1, 61) for w in range(1, 61) if h // 2 == w // 3}
    with pytest.raises(Unsolvable, match="floor"):
        S.solve_requirements(("H", "W"), [("x", Requirement(floor_div(H, 2), "!=", floor_div(W, 3), "c"))])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 4), st.integers(-3, 3), st.integers(0, 3),
       st.sampled_from(["==", "!=", ">="]), st.integers(0, 6))
def test_nested_min_max_and_negated_conjunctions_of_one_size_match_evaluation(q1, a1, q2, a2, c, op, v):
    """Min/Max of one size (a broadcast folded by torch's meta kernels) split into their cases by
    hand, innermost first, and a negated conjunction of conditions (DLA's merged sides); compared
    with the expression evaluated on 1..60."""
    f1, f2 = floor_div(H + a1, q1), floor_div(H + a2, q2)
    expr = sympy.Max(0, sympy.Min(1, f1 - c), f2 + sympy.Max(0, sympy.Min(c, f1)))
    got = S._univariate(expr, op, v, H)
    rel = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge}[op]
    assert {h for h in range(1, 61) if h in got} == {h for h in range(1, 61) if rel(int(expr.subs(H, h)), v)}
    cond = sympy.Not(sympy.And(sympy.Eq(f1, 1), sympy.Or(sympy.Eq(f1, 1), sympy.Eq(f2, c)), sympy.Ne(f2, v)))
    got = S._condition(cond, H)
    assert {h for h in range(1, 61) if h in got} == {h for h in range(1, 61) if bool(cond.subs(H, h))}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 4), st.integers(0, 3), st.sampled_from(["==", "!="]), st.booleans())
def test_products_of_ceilings_against_products_of_sizes_match_the_formula(k, q, t, rel, swap):
    """Twins: ``k²·ceil(h/k)·ceil(w/k) == h·w`` with ``h = floor((H + t)/q)``; each size's ceiling
    dominates its term only with a rational share ``1/k`` of the coefficient (``_shares``)."""
    h, w = floor_div(H + t, q), floor_div(W + t, q)
    lhs = k * k * floor_div(h + k - 1, k) * floor_div(w + k - 1, k)
    req = Requirement(h * w, rel, lhs, "view") if swap else Requirement(lhs, rel, h * w, "view")
    got = S.solve_requirements(("H", "W"), [("x", req)])
    assert _members_upto(got, ("H", "W"), {"H": 30, "W": 30}) == _brute(req, ("H", "W"), {"H": 30, "W": 30})


def _chain(*links):
    """``links[0] unless links[1] unless ...`` from (lhs, relation, rhs) triples."""
    req = None
    for lhs, relation, rhs in reversed(links):
        req = Requirement(lhs, relation, rhs, "r", unless=req)
    return req


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5), st.integers(1, 12), st.integers(1, 4))
def test_a_chains_links_are_negated_in_whatever_order_solves_them(q, pin, low):
    """A check on one side of a branch on ``floor(H/q) >= floor(W/q)`` (NaFlexViT's patch grid):
    that link alone is no union of boxes, but after the chain's other negations have narrowed
    the sizes to finitely many (``floor(H/q) <= low``) it is solved value by value. The chain
    fails exactly where all of its links fail, read size by size."""
    gh, gw = floor_div(H, q), floor_div(W, q)
    req = _chain((gh, "==", pin), (gw, ">=", gh + 1), (gh, ">=", low))
    got = members(S.solve_requirements(["H", "W"], [("r", req)]), ["H", "W"], 60)
    fn = compile_exprs([H, W], req.exprs())
    assert got == {(h, w) for h in range(1, 61) for w in range(1, 61) if req.accepts(fn(h, w))}
