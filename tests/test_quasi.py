"""Quasi-polynomial solving against direct evaluation over the integers."""

from hypothesis import given
from hypothesis import strategies as st

from symshape.compiled import compile_exprs
from symshape.dims import canonical, floor_div, size_symbol
from symshape.quasi import quasi
from symshape.sizes import IntSet

x = size_symbol("x")
LIMIT = 300


@st.composite
def exprs(draw):
    """Compositions of the layer maps: conv/pool floors, transposed-conv multiples, products."""
    e = x
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["floor", "floor", "up", "shift", "square"]))
        if kind == "floor":
            e = canonical(floor_div(e + draw(st.integers(-6, 6)), draw(st.integers(1, 4))) + draw(st.integers(0, 2)))
        elif kind == "up":
            e = draw(st.integers(1, 3)) * e + draw(st.integers(-3, 3))
        elif kind == "shift":
            e = e + draw(st.integers(-4, 4))
        elif e.free_symbols and draw(st.booleans()):
            e = e * floor_div(x + draw(st.integers(-2, 2)), draw(st.integers(1, 3)))
    return e


@given(exprs(), st.sampled_from([">=", "==", "!=", "<=", ">", "<"]), st.integers(-20, 200))
def test_solve_matches_evaluation(e, op, value):
    fn = compile_exprs([x], [e])
    want = set()
    for n in range(1, LIMIT + 1):
        v = fn(n)[0]
        if {">=": v >= value, "==": v == value, "!=": v != value, "<=": v <= value, ">": v > value, "<": v < value}[op]:
            want.add(n)
    got = quasi(e, x).solve(op, value)
    assert {n for n in range(1, LIMIT + 1) if n in got} == want, (e, op, value, got)


@given(exprs())
def test_affine_fast_path_agrees_with_classes(e):
    q = quasi(e, x)
    if q.affine is None:
        return
    for value in range(-5, 40):
        for op in (">=", "=="):
            fast = q._solve_affine(op, __import__("fractions").Fraction(value))
            q_slow = quasi.__wrapped__(e, x)
            q_slow.affine = None
            slow = q_slow.solve(op, value)
            assert (fast & IntSet.interval(1, LIMIT)) == (slow & IntSet.interval(1, LIMIT)), (e, op, value)
