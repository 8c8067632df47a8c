"""FloorDiv: exact folding and canonical forms, checked with hypothesis over the integers."""

import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

from symshape.compiled import compile_exprs
from symshape.dims import FloorDiv, canonical, ceil_div, decide, floor_div, implied, size_symbol

H = size_symbol("H")
W = size_symbol("W")
ints = st.integers(-50, 50)
pos = st.integers(1, 12)


def floor_depth(expr) -> int:
    """How deeply FloorDivs nest in ``expr``."""
    if isinstance(expr, FloorDiv):
        return 1 + floor_depth(expr.args[0])
    if isinstance(expr, sympy.Basic) and expr.args:
        return max(floor_depth(a) for a in expr.args)
    return 0


def value(expr, h, w=1):
    return int(expr.subs({H: h, W: w}))


@given(x=st.integers(-200, 200), a=ints, b=ints, m=pos, n=pos)
def test_nested_floor_folds_exactly(x, a, b, m, n):
    expr = floor_div(floor_div(H + a, m) + b, n)
    assert floor_depth(expr) <= 1
    assert value(expr, x) == ((x + a) // m + b) // n


@given(x=st.integers(-200, 200), a=ints, b=ints, m=pos, n=pos)
def test_nested_ceil_folds_exactly(x, a, b, m, n):
    expr = ceil_div(ceil_div(H + a, m) + b, n)
    ceil = lambda p, q: -((-p) // q)  # noqa: E731
    assert value(expr, x) == ceil(ceil(x + a, m) + b, n)
    assert floor_depth(expr) <= 1


@given(x=st.integers(-200, 200), c=st.integers(-6, 6), k=st.integers(-40, 40), q=pos)
def test_floor_div_of_linear_forms(x, c, k, q):
    expr = floor_div(c * H + k, q)
    assert value(expr, x) == (c * x + k) // q


@given(x=st.integers(-100, 100), y=st.integers(-100, 100), m=pos, n=pos, b=ints, c=st.integers(-5, 5))
def test_two_variable_and_multiplied_floors(x, y, m, n, b, c):
    inner = floor_div(H + b, m)
    for expr, want in [
        (floor_div(inner + W, n), ((x + b) // m + y) // n),
        (floor_div(c * m * inner + W + b, n), (c * m * ((x + b) // m) + y + b) // n),
        (floor_div(2 * inner + floor_div(W, 2), n), (2 * ((x + b) // m) + y // 2) // n),
    ]:
        assert value(expr, x, y) == want


@given(x=st.integers(-100, 100), a=ints, c=ints, q=pos)
def test_canonical_absorbs_constant(x, a, c, q):
    expr = floor_div(H + a, q) + c
    canon = canonical(expr)
    assert value(canon, x) == value(expr, x)
    if q > 1:
        assert isinstance(canon, FloorDiv)


def test_seed000_chain_prints_short():
    h = canonical(floor_div(canonical(floor_div(H - 4, 2)) - 4, 2))
    assert h == FloorDiv(H - 12, 4)
    assert str(h) == "floor((H - 12)/4)"
    w = canonical(floor_div(canonical(floor_div(W - 4, 2)) - 4, 2))
    assert str(20 * h * w) == "20*floor((H - 12)/4)*floor((W - 12)/4)"
    assert sympy.latex(h) == r"\left\lfloor \frac{H - 12}{4} \right\rfloor"


def test_gcd_reduction_and_whole_parts():
    assert floor_div(2 * H - 1, 4) == FloorDiv(H - 1, 2)
    assert floor_div(4 * floor_div(H, 2) - 3, 2) == 2 * FloorDiv(H, 2) - 2
    assert floor_div(6 * H + 3, 3) == 2 * H + 1
    assert floor_div(H, 1) == H
    assert floor_div(sympy.Integer(-7), 2) == -4


def test_rewrite_as_floor_agrees():
    expr = floor_div(H - 12, 4)
    for h in range(-20, 20):
        assert expr.rewrite(sympy.floor).subs(H, h) == expr.subs(H, h)


@given(x=st.integers(1, 10_000), y=st.integers(1, 10_000), a=ints, m=pos, n=pos)
def test_compiled_matches_sympy(x, y, a, m, n):
    exprs = [
        20 * floor_div(floor_div(H + a, m) - 4, n) * floor_div(W - 12, 4),
        (H * W * floor_div(H, m)) / n,
        sympy.Piecewise((W, sympy.Eq(floor_div(H, m), 1)), (floor_div(H, m), True)),
    ]
    fn = compile_exprs([H, W], exprs)
    got = fn(x, y)
    assert got[0] == value(exprs[0], x, y)
    assert got[1] == (x * y * (x // m)) // n
    assert got[2] == (y if x // m == 1 else x // m)


@given(st.lists(st.integers(0, 7), min_size=0, max_size=300), st.integers(1, 500), st.integers(1, 500))
def test_compiled_lists_of_every_length_match_sympy(picks, x, y):
    """Many values (a model's every step's sizes: a list past 64 is taken by position from
    each distinct value) in order, repeats and plain numbers among them, for each backend."""
    pool = [H, W, sympy.Integer(7), floor_div(H - 3, 2), floor_div(H - 3, 2) * W, (H + W) / 2, sympy.true,
            sympy.Max(H, W)]
    exprs = [pool[i] for i in picks]
    want = [bool(e) if e is sympy.true else e.xreplace({H: x, W: y}) for e in exprs]
    assert compile_exprs([H, W], exprs)(x, y) == [w if isinstance(w, bool) else int(sympy.floor(w)) for w in want]
    assert compile_exprs([H, W], exprs, exact=True)(x, y) == want
    got = compile_exprs([H, W], exprs, backend="torch")(torch.tensor([x]), torch.tensor([y]))
    assert [int(g) if isinstance(g, torch.Tensor) else g for g in got] == \
        [w if isinstance(w, bool) else int(sympy.floor(w)) for w in want]


@given(st.integers(-6, 6), st.integers(-6, 6), st.integers(1, 12))
def test_always_divisible_is_never_wrong(a, b, m):
    from symshape.dims import always_divisible

    N = size_symbol("N")
    for expr in (N * (a * H + b) * (4 * W - 2), (a * H + b) * floor_div(H, 2), 2 * m * H + a * m, N * H * W):
        if always_divisible(expr, m):
            fn = compile_exprs([N, H, W], [expr])
            assert all(fn(n, h, w)[0] % m == 0 for n in (1, 2, 3) for h in range(1, 9) for w in range(1, 9))
    assert not always_divisible(N * (4 * H - 2) * (4 * W - 2), 10)  # sympy's is_integer says it is
    assert always_divisible(N * H * W, N) and always_divisible(20 * H, 10)


@given(st.integers(-5, 5), st.integers(-9, 9), st.integers(1, 4), st.integers(0, 3))
def test_smallest_value_is_a_true_minimum(a, b, q, c):
    from symshape.dims import smallest_value

    for expr in (a * H + b, floor_div(a * H + b, q) + c * W, (floor_div(H + b, q) + c) * W, H * W + b):
        low = smallest_value(expr)
        if low is None:
            continue
        fn = compile_exprs([H, W], [expr])
        values = [fn(h, w)[0] for h in range(1, 30) for w in range(1, 30)]
        assert min(values) == low, expr
    # a Piecewise (a broadcast's size) is bounded by its least piece
    import sympy

    piece = floor_div(a * H + b, q) + c * W
    expr = sympy.Piecewise((b, sympy.Eq(floor_div(H, q) * W, 0)), (piece, True))
    low, piece_low = smallest_value(expr), smallest_value(piece)
    assert (low is None) == (piece_low is None)
    if low is not None:
        fn = compile_exprs([H, W], [expr])
        # sympy may drop a piece it can decide, so the bound is at least the least piece's
        assert min(b, piece_low) <= low <= min(fn(h, w)[0] for h in range(1, 30) for w in range(1, 30))


def test_without_ite_settles_what_sympy_leaves_as_an_ite():
    """sympy writes a Piecewise of conditions as ITE; ``ITE(c, False, c)`` (a case no size is in,
    from hrnet's and gMLP's broadcasts) must read False, else the solver cannot take it."""
    from sympy.logic.boolalg import ITE

    from symshape.dims import without_ite
    from symshape.requirements import Requirement, by_cases

    h = size_symbol("H")
    c = sympy.Eq(floor_div(h + 3, 4), 1)
    assert without_ite(ITE(c, sympy.false, c)) is sympy.false
    assert without_ite(ITE(c, sympy.true, sympy.false)) == c
    size = sympy.Piecewise((196, ITE(c, sympy.false, c)), (floor_div(h, 16), True))
    cases = by_cases(Requirement(size, "==", 14, "r"))
    assert [str(r) for r in cases] == ["floor(H/16) == 14"]


def test_a_condition_whose_normal_form_explodes_is_refused_quickly():
    """``Or`` of seven ``And`` pairs has 2**7 clauses in conjunctive normal form; sympy's to_cnf
    ran for hours on such a case in the 10,000-model fuzz. symshape refuses it (ValueError, which
    the solver reports as Unsolvable) past MAX_CLAUSES."""
    import time

    from symshape.requirements import MAX_CLAUSES, Requirement, cnf, unless_not

    h = size_symbol("H")
    pairs = sympy.And(*(sympy.Or(sympy.Eq(floor_div(h, q), 1), sympy.Eq(floor_div(h, q), 2)) for q in range(2, 9)))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"more than {MAX_CLAUSES} clauses"):
        unless_not(Requirement(h, ">=", 3, "r"), [pairs])
    assert time.perf_counter() - start < 5
    small = cnf(sympy.Or(sympy.And(sympy.Eq(h, 1), sympy.Eq(h, 2)), sympy.Eq(h, 3)))
    assert len(sympy.And.make_args(small)) == 2


@given(st.integers(-40, 200), st.integers(1, 6), st.integers(1, 3), st.integers(-3, 3))
def test_a_size_padded_to_even_then_halved_is_one_floor(h, m, c, k):
    """``c*(floor(a/m) - floor(a/(2m))) + k`` (Swin's patch merging: pad to even, halve) is
    ``c*floor((a + m)/(2m)) + k``: one floor, equal at every integer."""
    x = size_symbol("H")
    a = x + 3
    e = canonical(c * (floor_div(a, m) - floor_div(a, 2 * m)) + k)
    assert len(e.atoms(FloorDiv)) == 1, e
    want = c * ((h + 3) // m - (h + 3) // (2 * m)) + k
    assert compile_exprs([x], [e])(h)[0] == want


@given(st.sampled_from([sympy.Le, sympy.Lt, sympy.Ge, sympy.Eq, sympy.Ne]), st.integers(-3, 8), st.integers(1, 9),
       st.integers(1, 3), st.integers(-3, 8), st.integers(1, 9), st.integers(-12, 12))
def test_settle_tells_a_condition_that_depends_on_the_size_from_one_it_cannot_read(kind, c, d, k, c2, d2, n):
    """``settle`` (what F.pad asks of a computed amount before it would ask sympy): True or False
    where the condition holds or fails at every size, ``DEPENDS`` only where it holds at one size
    and fails at another -- against every H in 1..2600 (all periods here divide 2520)."""
    from symshape.dims import DEPENDS, settle

    cond = kind(k * floor_div(_H + c, d) - floor_div(_H + c2, d2), n, evaluate=False)
    settled = settle(cond)
    if settled is None:
        return
    test = {sympy.Le: int.__le__, sympy.Lt: int.__lt__, sympy.Ge: int.__ge__, sympy.Eq: int.__eq__,
            sympy.Ne: int.__ne__}[kind]
    seen = {test(k * ((h + c) // d) - (h + c2) // d2, n) for h in range(1, 2601)}
    assert seen == ({True, False} if settled is DEPENDS else {settled}), (cond, settled)


@given(st.integers(-3, 8), st.integers(1, 9), st.integers(-3, 8), st.integers(1, 9), st.integers(0, 12),
       st.booleans())
def test_min_and_max_of_sizes_by_cases_and_nested_ones_are_python_s(c, d, c2, d2, n, smaller):
    """``dims.minimum`` / ``maximum`` of sizes defined by cases and of nested Min / Max (built
    without sympy's search for an order, or decided case by case): the value Python's min / max
    gives at every (H, W) of a grid."""
    from symshape.dims import maximum, minimum

    cases = sympy.Piecewise((floor_div(_H + c, d), sympy.Ne(sympy.Mod(_H, 2), 0)), (floor_div(_H, d), True))
    other = sympy.Max(floor_div(_W + c2, d2), n)
    pick, python = (minimum, min) if smaller else (maximum, max)
    for a, b in ((cases, other), (cases, _H), (other, sympy.Min(_H, n)), (cases, cases + 1)):
        got = pick(a, b)
        for h in range(1, 17):
            for w in (1, 2, 3, 7, 12):
                at = {_H: h, _W: w}
                assert got.xreplace(at) == python(a.xreplace(at), b.xreplace(at)), (a, b, got, h, w)


# -- what the answers of a side imply (symshape.dims.implied) -----------------------------------

_H = size_symbol("H")
_W = size_symbol("W")


def _sizes(draw, x):
    """A size as models compute it from the input size ``x``: (x + c) // d, maybe times k."""
    c, d, k = draw(st.integers(-3, 8)), draw(st.integers(1, 9)), draw(st.integers(1, 3))
    return k * floor_div(x + c, d)


@st.composite
def _facts_and_claim(draw):
    a, b = _sizes(draw, _H), _sizes(draw, _H)
    m = draw(st.integers(2, 9))
    facts = [draw(st.sampled_from([
        sympy.Le(sympy.Mod(draw(st.integers(1, 8)) * a, m), 0),  # a pad of 0 (``pad > 0`` answered False)
        sympy.Eq(sympy.Mod(a, m), 0),
        sympy.Ne(a, draw(st.integers(1, 9))),
        sympy.Ge(a, draw(st.integers(1, 9))),
        # a fact implied() cannot read (a pool's output size, with Max and Min): left out
        sympy.Ge(sympy.Max(0, floor_div(a - sympy.Min(1, a) + 1, 2)), draw(st.integers(0, 4))),
    ])) for _ in range(draw(st.integers(1, 3)))]
    claim = draw(st.sampled_from([sympy.Eq(a, m * floor_div(a, m)), sympy.Eq(a, b), sympy.Ge(a, b),
                                  sympy.Eq(a + sympy.Mod(-a, m), a), sympy.Eq(a, m * floor_div(a + m - 1, m))]))
    return [f for f in facts if f not in (sympy.true, sympy.false)], claim


def _holds(rel, values: dict) -> bool:
    return bool(rel.xreplace(values))


@given(_facts_and_claim())
def test_implied_is_never_claimed_where_a_size_on_the_side_breaks_it(case):
    """``implied(facts, claim)`` True means the claim holds at every size where the facts do:
    checked against every H in 1..600 (all periods here divide 2520, so 600 covers each residue
    of the small periods many times over, and the claim's drift with H)."""
    facts, claim = case
    if not isinstance(claim, sympy.Rel) or not facts:
        return
    if implied(facts, claim):
        for h in range(1, 601):
            at = {_H: h}
            if all(_holds(f, at) for f in facts):
                assert _holds(claim, at), (facts, claim, h)


@given(_facts_and_claim(), st.integers(-20, 600))
def test_a_relation_at_one_size_is_what_sympy_substitutes(case, h):
    """dims._holds_at (Python's integers, where the quotient scan reads a relation at hundreds
    of sizes) answers as sympy's substitution does, for every relation of the strategy above:
    floors, residues, ``!=``, a product with a size, and Max/Min (read by sympy)."""
    from symshape.dims import _holds_at

    facts, claim = case
    for rel in (*facts, claim):
        if isinstance(rel, sympy.Rel):
            assert _holds_at(rel, _H, h) == (rel.xreplace({_H: h}) is sympy.true), (rel, h)


@st.composite
def _bounds(draw):
    """Bounds a stage's layers check of one size: ``floor((H + c)/d) >= n`` (or ``>``, ``<=``,
    ``<``, either way round), and of ``H`` itself."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        c, d, n = draw(st.integers(-3, 8)), draw(st.integers(1, 9)), draw(st.integers(-2, 40))
        a = draw(st.sampled_from([floor_div(_H + c, d), _H]))
        kind = draw(st.sampled_from([sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt]))
        out.append(kind(a, n) if draw(st.booleans()) else kind(sympy.Integer(n), a))
    return [f for f in out if isinstance(f, sympy.Rel)]


@given(_bounds(), st.integers(2, 9))
def test_bounds_of_a_size_merge_into_the_same_sizes(facts, m):
    """_bounds_tightened states the same facts: each bound of a floor of ``H`` on ``H`` itself,
    the tightest of each direction kept. The sizes where they hold are exactly the sizes where
    the facts hold; and what implied proves from them holds at every such size."""
    from symshape.dims import _bounds_tightened

    tightened = _bounds_tightened(_H, facts)
    for h in range(1, 400):
        at = {_H: h}
        assert all(_holds(f, at) for f in facts) == all(_holds(f, at) for f in tightened), (facts, tightened, h)
    h7 = floor_div(_H + 3, 4)
    for claim in (sympy.Ge(h7, m), sympy.Eq(h7, m * floor_div(h7, m)), sympy.Le(_H, 20 * m), sympy.Ne(h7, m)):
        if facts and implied(facts, claim):
            for h in range(1, 400):
                at = {_H: h}
                if all(_holds(f, at) for f in facts):
                    assert _holds(claim, at), (facts, claim, h)


def test_twenty_checks_of_a_stage_are_one_bound():
    """The checks each stage made of ``H`` before Twins' last window partition: one ``H >= 32``
    (and the partition's own fact) -- the product of windows is proven equal to the grid."""
    from symshape.dims import _bounds_tightened

    checks = [sympy.Ge(_H, 4), *(sympy.Ge(floor_div(_H, q), n) for q, n in ((4, 8), (8, 4), (16, 2), (32, 1)))]
    assert _bounds_tightened(_H, checks) == [sympy.Ge(_H, 32, evaluate=False)]
    h, w = floor_div(_H, 32), floor_div(_W, 32)
    no_pad = [sympy.Le(-h + 7 * floor_div(_H - 32, 224) + 7, 0), sympy.Le(-w + 7 * floor_div(_W - 32, 224) + 7, 0)]
    claim = sympy.Eq(49 * floor_div(_H + 192, 224) * floor_div(_W + 192, 224), h * w)
    assert implied(tuple(no_pad + checks + [sympy.Ge(floor_div(_W, q), n) for q, n in ((4, 8), (32, 1))]), claim)
    assert not implied(tuple(no_pad[:1] + checks), claim)


def test_implied_reads_the_facts_it_can_and_leaves_out_the_others():
    """MONAI's SwinUNETR at its third stage: the padded window count equals the window count
    where the earlier facts hold (``W`` a multiple of 32, no pad at the first stage), whatever a
    fact that implied() cannot read (a pool's output size with Max and Min) says -- fewer facts,
    more sizes. It was not proven while that fact was among them."""
    f = floor_div
    pool = sympy.Eq(sympy.Max(0, f(f(_W, 2) - sympy.Min(1, f(_W, 2)) + 1, 2)), f(_W + 2, 4))
    facts = (sympy.Le(_W - 32 * f(_W, 32), 0), sympy.Le(-f(_W, 2) + 7 * f(_W - 2, 14) + 7, 0))
    claim = sympy.Eq(f(_W + 6, 8), 7 * f(_W + 54, 56))
    assert implied(facts + (pool,), claim)
    assert not implied(facts[:1] + (pool,), claim)
    for w in range(1, 2300):
        at = {_W: w}
        if all(_holds(fact, at) for fact in facts + (pool,)):
            assert _holds(claim, at), w


def test_implied_proves_what_a_side_of_a_window_partition_needs():
    """TinyViT's side without padding: ``pad_b = (7 - h % 7) % 7`` answered 0 for the token grid
    ``h = (H + 7) // 8``: ``h`` splits into ``(h // 7, 7)``, and ``h*w`` into the windows."""
    h, w = floor_div(_H + 7, 8), floor_div(_W + 7, 8)
    no_pad = [sympy.Le(sympy.Mod(7 - sympy.Mod(h, 7), 7), 0), sympy.Le(sympy.Mod(7 - sympy.Mod(w, 7), 7), 0)]
    assert implied(no_pad, sympy.Eq(h, 7 * floor_div(h, 7)))
    assert implied(no_pad, sympy.Eq(h * w, 49 * floor_div(h, 7) * floor_div(w, 7)))
    assert not implied(no_pad[:1], sympy.Eq(h * w, 49 * floor_div(h, 7) * floor_div(w, 7)))
    assert not implied(no_pad, sympy.Eq(h, 7 * floor_div(h, 7) + 1))
    assert not implied([], sympy.Eq(h, 7 * floor_div(h, 7)))


def test_an_exact_quotient_of_sizes_defined_by_cases_is_taken_piece_by_piece():
    """SAM2's ``N*h*w // (h*w)`` where ``h`` was padded on one side of a branch: each piece of
    the Piecewise (the same condition answered alike wherever it is asked) divides exactly; the
    quotient agrees with Python's ``//`` at every size."""
    from symshape.dims import exact_quotient

    n = size_symbol("N")
    h = floor_div(_H + 3, 4)
    padded = sympy.Piecewise((8 * floor_div(_H + 3, 32), sympy.Eq(h, 1)), (8 * floor_div(_H + 31, 32), True))
    grid_h = sympy.Piecewise((8 * floor_div(_H + 3, 32), sympy.Eq(h, 1)), (h, True))
    a, b = n * floor_div(padded, 8), floor_div(grid_h + 7, 8)
    q = exact_quotient(a, b)
    assert q == n
    for hv in range(1, 300):
        for nv in (1, 2, 3):
            at = {_H: hv, n: nv}
            if int(b.xreplace(at)):  # (a window grid of 0 rows: torch refuses it before)
                assert int(a.xreplace(at)) // int(b.xreplace(at)) == int(q.xreplace(at))
    assert exact_quotient(n * _H, _H + 1) is None  # not exact: no answer



def test_a_ratio_whose_cases_fold_into_one_expression_rounds_as_that_expression():
    """The reference Swin's ``int(windows.shape[0] / (H * W / ws / ws))`` over a padded ``H``
    defined by cases: the cases fold into the batch ``N`` (``floor(7*a/7)`` is ``a`` in each), so
    ``int()``, ``math.floor`` and ``math.ceil`` of it are ``N`` (``int()`` was refused as "may be
    negative": the folded ratio has no cases to round one by one). Against Python's rounding
    of the float quotient at every size."""
    import math

    from symshape.dims import SizeRatio

    n = size_symbol("N")
    odd = sympy.Ne(_H - 4 * floor_div(_H, 4), 0)
    hp = sympy.Piecewise((7 * floor_div(_H + 32, 28), odd), (7 * floor_div(_H + 24, 28), True))
    windows = n * FloorDiv(hp, 7) * 3
    ratio = SizeRatio(windows) / (hp * 21 / 7 / 7)
    assert math.trunc(ratio) == math.floor(ratio) == math.ceil(ratio) == n
    for hv in range(1, 120):
        for nv in (1, 2, 5):
            at = {_H: hv, n: nv}
            assert int(int(windows.xreplace(at)) / (int(hp.xreplace(at)) * 21 / 7 / 7)) == nv



def test_a_fact_that_no_size_is_odd_is_read_size_by_size():
    """``~(h % 2 == 1 | w % 2 == 1)``, the side where the reference Swin's patch merging pads
    nothing, is ``h`` even and ``w`` even: ``floor((h + 1)/2) == h/2`` is proven there (it was
    not: the fact, a relation of two sizes, was left out). Against every size up to 200."""
    h, w = floor_div(_H + 3, 4), floor_div(_W + 3, 4)
    odd_h, odd_w = sympy.Eq(h - 2 * floor_div(h, 2), 1), sympy.Eq(w - 2 * floor_div(w, 2), 1)
    neither = sympy.Not(sympy.Or(odd_h, odd_w))
    claim = sympy.Eq(floor_div(h + 1, 2), floor_div(h, 2))
    assert implied((neither,), claim) and implied((sympy.And(sympy.Not(odd_h), sympy.Not(odd_w)),), claim)
    assert not implied((sympy.Not(sympy.And(odd_h, odd_w)),), claim)  # (a disjunction: not read)
    for hv in range(1, 201):
        if (int(h.subs(_H, hv)) % 2) == 0:
            assert int(floor_div(h + 1, 2).subs(_H, hv)) == int(floor_div(h, 2).subs(_H, hv))


def test_one_where_a_product_of_sizes_is_one_is_the_product_the_facts_make_it():
    """torch's view guard ``1`` where ``(floor((H + 3)/8) + 1)*floor((W + 7)/8) == 1``, beside
    ``floor((H + 7)/8)*floor((W + 7)/8)`` elsewhere, is that product on both sides where ``H``'s
    grid is odd (``floor((H + 7)/8) == floor((H + 3)/8) + 1`` there): each factor of a product of
    sizes that is 1 is 1. Not where the facts leave the factors apart. Against every size."""
    from symshape.dims import equal_where

    grid_odd = sympy.Eq(floor_div(_H + 3, 4) - 2 * floor_div(_H + 3, 8), 1)
    cond = sympy.Eq((floor_div(_H + 3, 8) + 1) * floor_div(_W + 7, 8), 1)
    product = floor_div(_H + 7, 8) * floor_div(_W + 7, 8)
    assert equal_where(1, product, cond, (grid_odd,))
    assert not equal_where(1, product + 1, cond, (grid_odd,))
    assert not equal_where(1, floor_div(_H + 7, 8) * floor_div(_W + 15, 8), cond, (grid_odd,))
    for hv in range(1, 120):
        for wv in range(1, 40):
            at = {_H: hv, _W: wv}
            if bool(grid_odd.subs(at)) and bool(cond.subs(at)):
                assert int(product.subs(at)) == 1


@st.composite
def _coarse_claims(draw):
    """A grid of stride ``d`` (``(H + c) // d``) cut into windows of ``m``: the period of its
    conditions in H is ``d*m``, past what decide expands residue by residue (256)."""
    d, m = draw(st.sampled_from([16, 32])), draw(st.sampled_from([12, 24, 32]))
    c = draw(st.integers(-1, d - 1))
    h = floor_div(_H + c, d)
    pad = sympy.Mod(m - sympy.Mod(h, m), m)
    facts = [draw(st.sampled_from([sympy.Le(pad, 0), sympy.Ge(pad, 1), sympy.Ne(h, m), sympy.Ge(h, m)]))]
    claim = draw(st.sampled_from([
        sympy.Eq(h, m * floor_div(h, m)), sympy.Ge(h, m), sympy.Ge(h, m + 1), sympy.Ge(h * 2, m),
        sympy.Eq(floor_div(h + pad, m), floor_div(h + m - 1, m)), sympy.Ge(h, 1), sympy.Ne(h, 1),
        sympy.Gt(floor_div(h, m), floor_div(h - 1, m))]))
    return [f for f in facts if isinstance(f, sympy.Rel)], claim, d * m


@given(_coarse_claims())
def test_conditions_of_a_coarse_grid_are_decided_exactly(case):
    """decide and implied on a stride-``d`` grid (the coarser size ``floor((H + c)/d)`` stands
    for H): True only where the claim holds at every H (where the facts hold), False (decide)
    only where it holds at none; checked at every H over three periods."""
    facts, claim, period = case
    if not isinstance(claim, sympy.Rel):
        return
    sizes = range(1, 3 * period + 2)
    outcome = decide(claim)
    if outcome is not None:
        assert all(_holds(claim, {_H: h}) is outcome for h in sizes), (claim, outcome)
    if facts and implied(facts, claim):
        for h in sizes:
            at = {_H: h}
            if all(_holds(f, at) for f in facts):
                assert _holds(claim, at), (facts, claim, h)


def test_a_window_partition_at_stride_16_is_proven_despite_its_long_period():
    """TinyViT at 384: the third stage's grid ``h = (H + 15) // 16`` in windows of 24 (period
    384 in H). The side without padding has ``h == 24*(h // 24)`` and ``h >= 24``; both sides of
    ``h >= 25`` occur. decide settles a floor of the grid at every size."""
    h = floor_div(_H + 15, 16)
    no_pad = [sympy.Le(sympy.Mod(24 - sympy.Mod(h, 24), 24), 0)]
    assert implied(no_pad, sympy.Eq(h, 24 * floor_div(h, 24)))
    assert implied(no_pad, sympy.Ge(h, 24))
    assert not implied(no_pad, sympy.Ge(h, 25))
    assert decide(sympy.Ge(floor_div(h + 23, 24), 1)) is True
    assert decide(sympy.Ge(floor_div(h, 24), 1)) is None
    assert decide(sympy.Lt(floor_div(h + 23, 24), 1)) is False


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_equal_where_is_never_claimed_where_the_sizes_differ(p, q, c, k):
    """``equal_where(x, y, Eq(e, k))``: True only where x == y at every size with e == k, checked
    at every H, W up to 40; and the broadcast of ``h*w`` with the size torch's guard on ``h*w == 1``
    leaves (``1`` there, ``h*w`` elsewhere) is ``h*w``, as torch broadcasts it."""
    from symshape.dims import as_expr, equal_where
    from symshape.rules import Context
    from symshape.rules.combine import broadcast_shape
    from symshape.tensor import SymTensor

    hw = floor_div(_H + c, p) * floor_div(_W, q)
    guarded = sympy.Piecewise((1, sympy.Eq(hw, k)), (hw, True))
    for x, y in [(1, hw), (k, hw), (guarded, hw), (hw, guarded), (2 * hw - k, hw), (hw + 1, hw)]:
        if equal_where(x, y, sympy.Eq(hw, k)):
            for h in range(1, 41):
                for w in range(1, 41):
                    at = {_H: h, _W: w}
                    if hw.xreplace(at) == k:
                        assert as_expr(x).xreplace(at) == as_expr(y).xreplace(at), (x, y, h, w)
    assert equal_where(k, hw, sympy.Eq(hw, k)) and equal_where(guarded, hw, sympy.Eq(hw, k)) is (k == 1)
    assert not equal_where(hw + 1, hw, sympy.Eq(hw, k))
    n = size_symbol("N")
    out = broadcast_shape(Context("a", "operator.add", "a"), SymTensor((n, hw, 4)),
                          SymTensor((n, sympy.Piecewise((1, sympy.Eq(hw, 1)), (hw, True)), 4)))
    assert out.shape[1] == hw
    for h, w in [(1, 1), (2, 5), (7, 3)]:
        tokens = int(hw.xreplace({_H: h, _W: w}))
        assert (torch.zeros(1, tokens, 4) + torch.zeros(1, tokens, 4)).shape[1] == out.shape[1].xreplace({_H: h, _W: w})



@pytest.mark.parametrize("m", [2, 3, 4, 6])
@pytest.mark.parametrize("form", [sympy.Eq, sympy.Ne])
def test_a_residue_fact_settles_each_residue_class_exactly(m, form):
    """A side's answer about a size's residue (``L % 2 == 1`` answered False: ``L - 2*floor(L/2)
    != 1``) leaves out the residue classes it is false on, and every claim linear on each class
    is then decided: ``implied`` proves exactly what holds at every size on the side (a pad to
    even length, then a halving, is ``floor((L + 1)/2)`` on both sides)."""
    rem = _H - m * floor_div(_H, m)
    for c in range(m):
        fact = form(rem, c)
        for j in range(m + 1):
            for claim in (sympy.Eq(floor_div(_H + j, m), floor_div(_H, m)), sympy.Ge(floor_div(_H + j, m), 2)):
                if not isinstance(claim, sympy.Rel):
                    continue  # (j = 0: the same floor, True as written)
                truth = all(_holds(claim, {_H: h}) for h in range(1, 4 * m * m + 1) if _holds(fact, {_H: h}))
                assert implied((fact,), claim) == truth, (fact, claim)


@given(st.integers(-6, 6), st.integers(-9, 9), st.integers(1, 5), st.integers(-9, 9), st.integers(1, 5),
       st.integers(-20, 20), st.booleans())
def test_minimum_and_maximum_are_exact_at_every_size(a, b, q, c, r, k, smaller):
    """``min``/``max`` of two sizes (``a*floor((H + b)/q) + k`` against ``c*floor(H/r)``, or
    numbers): one of them where it is that one at every size, else Min/Max; equal to Python's
    min/max at every H up to 400."""
    from symshape.dims import maximum, minimum
    H = size_symbol("H")
    x, y = a * floor_div(H + b, q) + k, c * floor_div(H, r)
    pick = minimum if smaller else maximum
    fn = compile_exprs([H], [pick(x, y), x, y])
    for h in range(1, 401):
        got, xs, ys = fn(h)
        assert got == (min if smaller else max)(xs, ys), (x, y, h)
    assert pick(sympy.Integer(a), sympy.Integer(k)) == (min if smaller else max)(a, k)


@given(st.integers(-6, 6), st.integers(-9, 9), st.integers(1, 5), st.integers(-30, 30),
       st.sampled_from([sympy.Ge, sympy.Le]))
def test_a_pad_amount_is_decided_only_where_it_holds_at_every_size(a, b, q, k, kind):
    """rules.pad._always: True exactly where the relation holds at every size (the amounts are
    quasi-linear, which decide() settles exactly), checked at every H up to 400."""
    from symshape.rules.pad import _always
    H = size_symbol("H")
    amount = a * floor_div(H + b, q) + k
    holds = all(bool(kind(amount.subs(H, h), 0)) for h in range(1, 401))
    assert _always(kind, amount) == holds


def test_implied_answers_a_question_once_whatever_else_holds():
    """The sides of a branch, and the steps after a check, ask the same question with other facts
    beside it (a check on W, a relation of two sizes): answered from the facts on the question's
    own sizes, once; and a question stated in a coarser size is the same expression each time."""
    from symshape.dims import _coarsened, _implied

    h = floor_div(_H + 15, 16)
    no_pad = [sympy.Le(sympy.Mod(24 - sympy.Mod(h, 24), 24), 0)]
    claim = sympy.Eq(h, 24 * floor_div(h, 24))
    _implied.cache_clear()
    assert implied(no_pad, claim)
    first = _implied.cache_info().misses
    others = [sympy.Ge(_W, 3), sympy.Eq(_H * _W, 49), sympy.Ge(floor_div(_W, 8), 2)]
    assert implied(no_pad + others, claim)
    assert implied(others[:1] + no_pad + others[1:], claim)
    assert _implied.cache_info().misses == first
    assert not implied(others, claim)  # (the facts on W alone prove nothing of H)
    exprs = [claim, *no_pad]
    assert _coarsened(_H, exprs) is not None and _coarsened(_H, exprs) == _coarsened(_H, exprs)


@pytest.mark.parametrize("w", [9, 12])
@pytest.mark.parametrize("least", [2, 3])
def test_implied_reads_stacked_window_partitions_past_the_period_limit(w, least):
    """MaxViT at 384: four stages each split their map into w x w windows, so the facts hold
    ``floor((H + s - 1)/s) == w*floor((H + s - 1)/(w*s))`` for s = 4 .. 32 (period 32*w, past the
    limit), beside floor bounds that merge into one bound on H itself. The window count of the
    last stage is then a w-th of its map wherever the facts hold: proven (it once was not, and
    the view that reverses the partition was refused), and checked size by size; a claim that
    fails at a size the facts allow is not proven."""
    facts = []
    for s in (4, 8, 16, 32):
        m = floor_div(_H + s - 1, s)
        facts += [sympy.Eq(m, w * floor_div(_H + s - 1, w * s)), sympy.Ge(m, least), sympy.Ge(floor_div(m, 2), 1)]
    m = floor_div(_H + 31, 32)
    claim = sympy.Eq(floor_div(_H + 31, 32 * w), m / w)
    wrong = sympy.Eq(floor_div(_H + 31, 32 * w), 1)  # true at the least size only
    allowed = [h for h in range(1, 4 * 32 * w + 1) if all(f.subs(_H, h) == sympy.true for f in facts)]
    assert allowed and all(claim.subs(_H, h) == sympy.true for h in allowed)
    assert any(wrong.subs(_H, h) == sympy.false for h in allowed)
    assert implied(tuple(facts), claim)
    assert not implied(tuple(facts), wrong)



@st.composite
def _product_claims(draw):
    """Facts bounding floors of H and of W (a window clamped to a small image: ``floor((H +
    c)/d) <= n``, either way round, and lower bounds), and a claim bounding a product of floors of
    both, or a product's lower bound."""
    facts = []
    for x in (_H, _W):
        for _ in range(draw(st.integers(1, 3))):
            c, d, n = draw(st.integers(-3, 8)), draw(st.integers(1, 9)), draw(st.integers(-1, 12))
            kind = draw(st.sampled_from([sympy.Le, sympy.Lt, sympy.Ge, sympy.Gt]))
            facts.append(kind(floor_div(x + c, d), n) if draw(st.booleans()) else kind(sympy.Integer(n), floor_div(x + c, d)))
    a = floor_div(_H + draw(st.integers(-2, 8)), draw(st.integers(1, 9)))
    b = floor_div(_W + draw(st.integers(-2, 8)), draw(st.integers(1, 9)))
    k, c = draw(st.integers(1, 3)), draw(st.integers(-2, 60))
    claim = draw(st.sampled_from([sympy.Le, sympy.Lt, sympy.Ge, sympy.Gt]))(k * a * b, c)
    return [f for f in facts if isinstance(f, sympy.Rel)], claim


@given(_product_claims())
def test_a_bound_on_a_product_of_two_sizes_is_never_claimed_where_a_pair_of_sizes_breaks_it(case):
    """implied() of a product of floors of H and W against a number, read factor by factor over
    the sizes each size's facts leave: where it says True, the claim holds at every pair of
    sizes where the facts hold (checked over 1..120 each: the facts bound both below 120)."""
    facts, claim = case
    if not isinstance(claim, sympy.Rel) or not facts or not implied(facts, claim):
        return
    for h in range(1, 121):
        for w in range(1, 121):
            at = {_H: h, _W: w}
            if all(_holds(f, at) for f in facts):
                assert _holds(claim, at), (facts, claim, h, w)


@st.composite
def _nonzero_claims(draw):
    """Facts of H and of W (a remainder 0 -- the model's own divisibility check -- or a bound on
    a floor), and the claim that a product of floors of both, one of them maybe squared, is not
    0."""
    facts = []
    for x in (_H, _W):
        if draw(st.integers(0, 3)):
            m = draw(st.integers(2, 40))
            facts.append(sympy.Le(x - m * floor_div(x, m), 0))
        if draw(st.booleans()):
            kind = draw(st.sampled_from([sympy.Le, sympy.Ge, sympy.Gt]))
            facts.append(kind(floor_div(x + draw(st.integers(-3, 8)), draw(st.integers(1, 9))), draw(st.integers(0, 6))))
    factors = [floor_div(x + draw(st.integers(-2, 14)), draw(st.integers(1, 45))) for x in (_H, _W, _H)]
    product = draw(st.integers(1, 3)) * factors[0] * factors[1] * (factors[2] ** draw(st.integers(0, 2)))
    return [f for f in facts if isinstance(f, sympy.Rel)], sympy.Ne(product, 0)


@given(_nonzero_claims())
def test_a_product_of_sizes_is_never_claimed_nonzero_where_a_pair_of_sizes_makes_it_zero(case):
    """implied() of ``Ne(a*b, 0)``, factor by factor on each size's facts: where it says True,
    the product is not 0 at any pair of sizes where the facts hold (1..130 each)."""
    facts, claim = case
    if not isinstance(claim, sympy.Rel) or not facts or not implied(tuple(facts), claim):
        return
    allowed = {x: [n for n in range(1, 131) if all(_holds(f, {x: n}) for f in facts if f.free_symbols == {x})]
               for x in (_H, _W)}
    for h in allowed[_H]:
        for w in allowed[_W]:
            assert _holds(claim, {_H: h, _W: w}), (facts, claim, h, w)


def test_a_window_count_is_not_zero_where_the_model_checked_its_sizes():
    """MONAI's Swin checks H and W are multiples of 32 and divides by the window count
    ``floor((H + 12)/14)*floor((W + 12)/14)``: that side's facts make the count at least 9, so
    the division by 0 is no branch; a count 0 at H = 32 (``floor((H + 1)/64)``) is not proven."""
    facts = (sympy.Le(_H - 32 * floor_div(_H, 32), 0), sympy.Le(_W - 32 * floor_div(_W, 32), 0))
    count = floor_div(_H + 12, 14) * floor_div(_W + 12, 14)
    assert implied(facts, sympy.Ne(count, 0)) and implied(facts, sympy.Ne(0, 2 * count ** 2))
    assert not implied(facts, sympy.Ne(count * floor_div(_H + 1, 64), 0))
    assert not implied(facts[:1], sympy.Ne(count, 0))  # W's check not known: W = 1 makes it 0


def test_a_window_clamped_on_both_sides_holds_at_most_its_49_tokens():
    a, b = floor_div(_H + 6, 8), floor_div(_W + 6, 8)
    facts = (sympy.Le(a, 7), sympy.Le(b, 7))
    assert implied(facts, sympy.Le(a * b, 49)) and implied(facts, sympy.Ge(a * b, 0, evaluate=False))
    assert not implied(facts, sympy.Ge(a * b, 1))  # (H = 1: floor(7/8) = 0)
    assert implied((*facts, sympy.Ge(_H, 2), sympy.Ge(_W, 2)), sympy.Ge(a * b, 1))
    assert not implied(facts, sympy.Le(a * b, 48)) and not implied((sympy.Le(a, 7),), sympy.Le(a * b, 49))
