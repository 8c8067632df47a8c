"""The quick "no" of Context.same (symshape.witness): a size where every fact holds and two sizes
differ. Its arithmetic is sympy's at every drawn point; it never says no where the long way
(symshape.dims.implied) says yes; it spares the long way the questions whose answer is no; and
the analyses that ask them still agree with torch. Also: the ShapeEnv of symshape's meta bridge
makes its symbols without walking the stack."""

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from oracle import assert_agrees
from symshape import dims, witness
from symshape.dims import FloorDiv, size_symbol
from symshape.rules.registry import Context

H, W, N = size_symbol("H"), size_symbol("W"), size_symbol("N")


@st.composite
def exprs(draw, depth: int = 3):
    """An expression of H and W made of what sizes are made of."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([H, W, sympy.Integer(draw(st.integers(-9, 40)))]))
    kind = draw(st.sampled_from(["add", "mul", "floordiv", "floor", "ceiling", "mod", "max", "min", "piecewise",
                                 "rational"]))
    a, b = draw(exprs(depth - 1)), draw(exprs(depth - 1))
    q = draw(st.integers(1, 9))
    if kind == "add":
        return a + b
    if kind == "mul":
        return a * b
    if kind == "floordiv":  # (of an integer: what symshape makes of a size)
        return FloorDiv(a, sympy.Integer(q)) if a.is_integer else sympy.floor(a / q)
    if kind == "floor":
        return sympy.floor(a / q)
    if kind == "ceiling":
        return sympy.ceiling(a / q)
    if kind == "mod":
        return sympy.Mod(a, q)
    if kind == "max":
        return sympy.Max(a, b)
    if kind == "min":
        return sympy.Min(a, b)
    if kind == "rational":
        return a * sympy.Rational(draw(st.integers(1, 7)), q)
    return sympy.Piecewise((a, sympy.Ge(H, draw(st.integers(1, 60)))), (b, True))


@st.composite
def facts(draw):
    rel = st.sampled_from([sympy.Ge, sympy.Le, sympy.Gt, sympy.Lt, sympy.Eq, sympy.Ne])
    return tuple(draw(rel)(draw(exprs(2)), draw(st.integers(-5, 60))) for _ in range(draw(st.integers(0, 3))))


def _sympy_value(e, point):
    return e.xreplace({s: sympy.Integer(v) for s, v in point.items()})


@settings(max_examples=300, deadline=None)
@given(e=exprs(), h=st.integers(1, 1200), w=st.integers(1, 1200))
def test_a_value_is_sympys_value(e, h, w):
    assert witness.value(e, {H: h, W: w}) == _sympy_value(e, {H: h, W: w})


@settings(max_examples=300, deadline=None)
@given(known=facts(), a=exprs(), b=exprs())
def test_a_witness_holds_every_fact_and_tells_the_sizes_apart(known, a, b):
    """Checked with sympy's own arithmetic at the point found."""
    if not witness.differ_somewhere(known, a, b):
        return
    point = {**dict.fromkeys(a.free_symbols | b.free_symbols, witness.CANDIDATES[0]), **witness.witness(known)}
    assert all(_sympy_value(f, point) == sympy.true for f in known)
    assert _sympy_value(a, point) != _sympy_value(b, point)


def _same(known, a, b, quick: bool) -> bool:
    ctx = Context("t", "t", "t")
    ctx.facts = tuple(known)
    with pytest.MonkeyPatch.context() as m:
        if not quick:
            m.setattr("symshape.rules.registry.differ_somewhere", lambda *args: False)
        return ctx.same(a, b)


# questions the long way answers yes (and no): a view of a window partition under a branch's facts
_ASKED = [
    ((sympy.Eq(FloorDiv(H + 15, 16), 14),), FloorDiv(H + 15, 16), 14 * FloorDiv(H + 223, 224)),
    ((sympy.Eq(FloorDiv(H + 15, 16), 14),), FloorDiv(H + 15, 16), 160 * FloorDiv(H + 223, 224)),
    ((sympy.Ne(FloorDiv(H + 7, 8), 7), sympy.Le(7 * FloorDiv(H - 1, 56) - FloorDiv(H + 7, 8) + 7, 0)),
     FloorDiv(H + 7, 8), 7 * FloorDiv(H + 7, 56)),
    ((sympy.Ne(FloorDiv(H + 7, 8), 7), sympy.Le(7 * FloorDiv(H - 1, 56) - FloorDiv(H + 7, 8) + 7, 0)),
     FloorDiv(H + 7, 8), 8 * FloorDiv(H + 7, 56)),
    ((sympy.Ge(H, 7), sympy.Le(H, 7)), H * W, 7 * W),
    ((sympy.Ge(H, 7), sympy.Le(H, 7)), H * W, 8 * W),
    ((sympy.Ge(FloorDiv(H, 32), 7), sympy.Le(FloorDiv(H, 32), 7)), FloorDiv(H, 32) * N, 7 * N),
]


def test_the_quick_no_never_answers_a_question_the_long_way_answers_yes():
    answers = [_same(k, a, b, False) for k, a, b in _ASKED]
    assert answers == [_same(k, a, b, True) for k, a, b in _ASKED]
    assert True in answers and False in answers  # (both kinds asked)


@settings(max_examples=200, deadline=None)
@given(known=facts(), a=exprs(2), b=exprs(2))
def test_the_quick_no_is_the_long_ways_answer_on_drawn_questions(known, a, b):
    if _same(known, a, b, True) is False:
        assert _same(known, a, b, False) is False


class _Windows(nn.Module):
    """TinyViT's attention block: padded to whole windows where it needs to, partitioned into
    windows by views, and back."""

    def __init__(self, window: int = 7):
        super().__init__()
        self.window = window
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (self.window - h % self.window) % self.window, (self.window - w % self.window) % self.window
        if pad_b > 0 or pad_r > 0:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // self.window, pw // self.window
        x = x.view(b, nh, self.window, nw, self.window, c).transpose(2, 3).reshape(b * nh * nw, self.window ** 2, c)
        x = self.proj(x)
        x = x.view(b, nh, nw, self.window, self.window, c).transpose(2, 3).reshape(b, ph, pw, c)
        if pad_b > 0 or pad_r > 0:
            x = x[:, :h, :w].contiguous()
        return x.permute(0, 3, 1, 2)


def _counted_implied(quick: bool):
    """The analysis of two window blocks, and the questions its rules asked the long way."""
    asked = []

    def counting(facts, cond):
        asked.append(cond)
        return dims.implied(facts, cond)

    with pytest.MonkeyPatch.context() as m:
        m.setattr("symshape.rules.registry.implied", counting)
        if not quick:
            m.setattr("symshape.rules.registry.differ_somewhere", lambda *args: False)
        analysis = symshape.analyze(nn.Sequential(_Windows(), _Windows()).eval(), (4, "H", "W"))
    return analysis, asked


def test_the_quick_no_spares_the_long_way_its_questions():
    quick, asked_quick = _counted_implied(True)
    slow, asked_slow = _counted_implied(False)
    assert len(asked_quick) < len(asked_slow)
    assert str(quick) == str(slow) and quick.output_shape == slow.output_shape
    assert str(quick.valid_sizes()) == str(slow.valid_sizes())
    assert_agrees(nn.Sequential(_Windows(), _Windows()).eval(), (4, "H", "W"),
                  [{"H": h, "W": w} for h in (1, 6, 7, 8, 13, 14, 20) for w in (3, 7, 9, 21)])


def test_the_meta_bridge_makes_symbols_without_walking_the_stack(monkeypatch):
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    from symshape import meta

    def walked(*args, **kwargs):
        raise AssertionError("the stack was walked")

    monkeypatch.setattr(ShapeEnv, "_get_stack_summary", walked, raising=False)
    monkeypatch.setattr(torch._logging.structured, "get_user_stack", walked, raising=False)
    monkeypatch.setattr(torch._logging.structured, "get_framework_stack", walked, raising=False)
    env = meta._Env([])
    symbols = meta._Symbols(env)
    made = symbols.symbol(H)
    assert symbols.from_torch[made] == H and env.var_to_range[made].lower == 1
