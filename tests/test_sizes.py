"""IntSet and SizeSet: exact set algebra, checked against plain Python sets with hypothesis."""

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from symshape.sizes import IntSet, SizeSet, Tie, _least_period

LIMIT = 120


@st.composite
def intsets(draw):
    kind = draw(st.sampled_from(["interval", "at_least", "of", "periodic", "all", "empty"]))
    if kind == "interval":
        lo = draw(st.integers(-3, 60))
        return IntSet.interval(lo, lo + draw(st.integers(-2, 40)))
    if kind == "at_least":
        return IntSet.at_least(draw(st.integers(-3, 60)))
    if kind == "of":
        return IntSet.of(draw(st.lists(st.integers(-2, 80), max_size=8)))
    if kind == "periodic":
        period = draw(st.integers(1, 8))
        residues = draw(st.lists(st.integers(0, period - 1), max_size=period))
        head = draw(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 6)), max_size=3))
        return IntSet.periodic(draw(st.integers(1, 50)), period, residues, [(a, a + b) for a, b in head])
    return IntSet.all() if kind == "all" else IntSet.empty()


def members(s: IntSet) -> set[int]:
    return {n for n in range(1, LIMIT + 1) if n in s}


@given(intsets(), intsets())
def test_set_algebra_matches_python_sets(a, b):
    assert members(a & b) == members(a) & members(b)
    assert members(a | b) == members(a) | members(b)
    assert members(a - b) == members(a) - members(b)
    assert members(a.complement()) == set(range(1, LIMIT + 1)) - members(a)
    assert list(a.values(LIMIT)) == sorted(members(a))
    assert a.count(LIMIT) == len(members(a))
    assert a.is_empty == (not members(a) and a.is_finite)


@given(intsets())
def test_normal_form_is_canonical(a):
    # the same set built another way has the same representation
    rebuilt = a | IntSet.empty()
    assert rebuilt == a.normalized() == (a & IntSet.all())
    if a.min() is not None:
        assert a.min() == min(members(a) | {10**9})
    if a.is_finite and not a.is_empty:
        assert a.max() == max(members(a))


@given(st.integers(1, 90).flatmap(lambda p: st.tuples(st.just(p), st.sets(st.integers(0, p - 1), max_size=p))))
def test_the_least_period_is_the_least_shift_that_maps_the_residues_onto_themselves(case):
    """normalized()'s period: the least divisor d of the period with (r + d) mod period a
    residue for every residue, found among the d the residues' count allows; the residues
    modulo d."""
    period, residues = case
    least = min(d for d in range(1, period + 1) if period % d == 0
                and all((r + d) % period in residues for r in residues))
    assert _least_period(period, frozenset(residues)) == (least, frozenset(r % least for r in residues))
    s = IntSet.periodic(1, period, residues)
    assert members(s) == {n for n in range(1, LIMIT + 1) if n % period in residues}


def test_descriptions():
    assert IntSet.at_least(16).describe("H") == "H ≥ 16"
    assert (IntSet.at_least(16) & IntSet.congruent(0, 4)).describe("H") == "H ≥ 16, H ≡ 0 (mod 4)"
    assert IntSet.interval(28, 31).describe("H") == "H ∈ [28, 31]"
    assert IntSet.of([31, 32]).describe("S") == "S ∈ {31, 32}"
    assert IntSet.of([3, 7, 9]).describe("S") == "S ∈ {3, 7, 9}"
    assert IntSet.empty().describe("H") == "no H"
    assert (IntSet.interval(1, 3) | IntSet.at_least(10)).describe("H") == "H ∈ [1, 3] or H ≥ 10"
    assert (IntSet.at_least(5) & IntSet.periodic(1, 6, [1, 5])).describe("L") == "L ≥ 5, L mod 6 ∈ {1, 5}"


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 60), st.integers(0, 5), st.integers(1, 7))
def test_a_bounded_progression_reads_as_one(lo, span, residue, period):
    # Gemma4's H ≤ 163840 and H ≡ 0 (mod 16): 10,240 sizes, read as one line, not listed
    hi = lo + span
    members = IntSet.interval(lo, hi) & IntSet.periodic(1, period, [residue % period])
    text = members.describe("H")
    values = list(members.values(hi + period))
    if len(values) >= 4 and period > 1:
        assert text == f"H ∈ [{values[0]}, {values[-1]}], H ≡ {residue % period} (mod {period})"
    assert len(text) < 120 or len(values) < 4
    assert (IntSet.interval(16, 163840) & IntSet.congruent(0, 16)).describe("H") == \
        "H ∈ [16, 163840], H ≡ 0 (mod 16)"


def test_sizeset_queries_and_rendering():
    s = SizeSet(["H", "W"], [
        {"H": IntSet.interval(28, 31), "W": IntSet.interval(28, 31)},
        {"H": IntSet.interval(20, 23), "W": IntSet.interval(44, 47)},
    ])
    assert str(s) == "H ∈ [20, 23] and W ∈ [44, 47]; or H ∈ [28, 31] and W ∈ [28, 31]"
    assert s.contains(H=29, W=31) and not s.contains(H=29, W=44)
    assert s.min() == {"H": 28, "W": 28}  # fewest elements: 28*28 < 20*44
    assert len(s.enumerate(40)) == 16 and s.enumerate(40)[0] == {"H": 28, "W": 28}
    assert s.is_finite and not s.is_empty
    sq = SizeSet(["H", "W"], [{"H": IntSet.of([31, 32])}], groups=[["H", "W"]])
    assert str(sq) == "H = W ∈ {31, 32}"
    assert sq.contains(H=31, W=31) and not sq.contains(H=31, W=32)
    assert sq.enumerate(100) == [{"H": 31, "W": 31}, {"H": 32, "W": 32}]
    merged = SizeSet(["H", "W"], [{"H": IntSet.interval(1, 3), "W": IntSet.at_least(5)},
                                  {"H": IntSet.interval(4, 9), "W": IntSet.at_least(5)}])
    assert str(merged) == "H ∈ [1, 9] and W ≥ 5"
    assert str(SizeSet(["H"], [{"H": IntSet.empty()}], note="nothing")) == "no input size (nothing)"


@given(st.integers(1, 6), st.integers(-5, 5), intsets(), st.booleans())
def test_quasi_image_is_exactly_the_set_of_values(q, c, domain, finite):
    from symshape.compiled import compile_exprs
    from symshape.dims import floor_div, size_symbol
    from symshape.quasi import quasi

    x = size_symbol("x")
    if finite:
        domain = domain & IntSet.interval(1, LIMIT)
    for expr in (floor_div(x + c, q) + 3, 2 * floor_div(x + c, q) + 5, x + 4, floor_div(3 * x + c, q) + 2):
        img = quasi(expr, x).image(domain)
        upto = LIMIT if finite else 6 * LIMIT + 40  # slopes are at least 1/6
        fn = compile_exprs([x], [expr])
        vals = {fn(n)[0] for n in domain.values(upto)}
        assert img is not None  # these expressions are quasi-linear and increasing
        assert {v for v in vals if 1 <= v <= LIMIT} == members(img)  # the positive values


# -- sizes fixed by another (a condition on a line) ----------------------------------------------


@st.composite
def ties(draw):
    m, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    while math.gcd(m, c) != 1:
        c += 1
    return Tie("H", Fraction(c, m), Fraction(draw(st.integers(-30, 30)), m))


@given(ties(), intsets())
def test_a_ties_preimage_is_exactly_the_bases_whose_value_lies_in_the_set(tie, s):
    got = tie.preimage(s)
    for h in range(1, LIMIT + 1):
        v = tie.slope * h + tie.offset
        assert (h in got) == (v.denominator == 1 and int(v) in s), (tie, s, h)


@given(ties(), intsets(), intsets(), st.integers(1, 30))
def test_a_box_with_a_tie_contains_lists_and_renders_its_line(tie, hs, ws, top):
    base = hs & tie.preimage(ws)  # the solver's invariant: the tie is an integer in W's set
    s = SizeSet(["H", "W"], [{"H": base, "W": tie}, {"H": IntSet.of([2]), "W": IntSet.interval(1, 3)}])
    truth = {(h, tie.at(h)) for h in base.values(top) if tie.at(h) <= top} | {(2, w) for w in (1, 2, 3) if w <= top and 2 <= top}
    assert {(r["H"], r["W"]) for r in s.enumerate(top)} == truth
    for h in range(1, top + 1):
        for w in range(1, top + 1):
            assert s.contains(H=h, W=w) == ((h, w) in truth)
    if not base.is_empty:
        assert any(isinstance(b["W"], Tie) for b in s.boxes)
        assert f"W = {tie.text()}" in str(s)
        assert s.to_json()["boxes"][-1]["W"]["tie"]["text"] == tie.text()
    assert s.is_finite == base.is_finite


def test_tie_text_and_merging():
    assert Tie("H", Fraction(1), Fraction(1)).text() == "H + 1"
    assert Tie("H", Fraction(2), Fraction(-3)).text() == "2*H - 3"
    assert Tie("H", Fraction(2, 3), Fraction(1, 3)).text() == "(2*H + 1)/3"
    same = Tie("H", Fraction(1), Fraction(0))
    s = SizeSet(["H", "W"], [{"H": IntSet.congruent(1, 2, 5), "W": same}, {"H": IntSet.congruent(0, 2, 5), "W": same}])
    assert str(s) == "H ≥ 5 and W = H"  # one line over both classes of H
    assert s.min() == {"H": 5, "W": 5}


def _denoted(text: str, period: int) -> set:
    """The residues a ``H mod P …`` text names (the format of sizes._residues_text)."""
    import re
    body = text.split(f"mod {period} ", 1)[1]
    if body.startswith("≤ "):
        return set(range(int(body[2:]) + 1))
    if body.startswith("≥ "):
        return set(range(int(body[2:]), period))
    out = set()
    for part in body[2:].split(" ∪ "):
        if part.startswith("["):
            lo, hi = map(int, re.findall(r"\d+", part))
            out |= set(range(lo, hi + 1))
        else:
            out |= {int(v) for v in re.findall(r"\d+", part)}
    return out


@given(st.integers(3, 70).flatmap(lambda p: st.tuples(st.just(p), st.sets(st.integers(0, p - 1), min_size=2,
                                                                            max_size=p - 1))))
def test_residues_print_compactly_and_exactly(case):
    from symshape.sizes import _residues_text

    period, residues = case
    text = _residues_text("H", period, residues)
    assert _denoted(text, period) == residues, text
    assert len(text) <= 40 + 8 * sum(1 for r in residues if r - 1 not in residues)  # one item per run at most


def test_a_half_period_prints_as_a_bound():
    assert (IntSet.at_least(5) & IntSet.periodic(1, 64, range(32))).describe("H") == "H ≥ 5, H mod 64 ≤ 31"
