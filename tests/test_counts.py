"""unbind and split along a dim whose size comes from the input: their number of tensors is a
formula of the sizes (symshape.tensor.Repeated), taken by indexing, unpacking, torch.cat and
torch.stack. Every answer is checked against torch."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
import symshape.explain
from symshape.errors import InvalidInputSize, SymshapeError


class Call(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def torch_shapes(model, shape):
    """The output's shape (a tuple of them for several tensors), or None where torch raises."""
    try:
        with torch.no_grad():
            out = model(torch.rand(*shape))
    except (RuntimeError, ValueError, IndexError):
        return None
    return tuple(tuple(t.shape) for t in out) if isinstance(out, (tuple, list)) else tuple(out.shape)


def symshape_shapes(analysis, names, shape):
    try:
        return analysis.at(**dict(zip(names, shape))).output_shape
    except InvalidInputSize:
        return None


def agree(fn, spec, sizes):
    model = Call(fn)
    a = symshape.analyze(model, spec, batch=None)
    for s in sizes:
        assert symshape_shapes(a, spec, s) == torch_shapes(model, s), s
    return a


GRID = list(itertools.product(range(1, 8), range(1, 6)))


def test_unbind_returns_as_many_tensors_as_the_size():
    a = agree(lambda x: x.unbind(1), ("A", "B"), GRID)
    assert str(a.output_shape) == "B × (A)"


def test_split_pieces_and_the_shorter_last_one():
    a = agree(lambda x: x.split(3), ("A", "B"), GRID)
    assert a.output_shape.count.free_symbols == {symshape.dims.size_symbol("A")}


@pytest.mark.parametrize("fn", [
    lambda x: torch.cat(x.split(2, 1), 1),
    lambda x: torch.cat(x.unbind(0), 0),
    lambda x: torch.stack(x.unbind(1), 0),
    lambda x: torch.stack(x.split(2), 0),  # equal pieces only: A even, or A <= 2
    lambda x: x.split(2)[1],
    lambda x: x.split(2)[-2],
    lambda x: x.unbind(1)[-1],
])
def test_taking_them(fn):
    agree(fn, ("A", "B"), GRID)


def test_unpacking_needs_exactly_that_many():
    def unpack(x):
        a, b = x.unbind(1)
        return a * b

    a = agree(unpack, ("A", "B"), GRID)
    assert a.valid_sizes().contains(A=4, B=2) and not a.valid_sizes().contains(A=4, B=3)


def test_split_size_zero_and_negative_as_torch():
    agree(lambda x: x.split(0), ("A",), [(1,), (2,)])
    with pytest.raises(InvalidInputSize, match="split_size be non-negative"):
        symshape.analyze(Call(lambda x: x.split(-1)), ("A",), batch=None)


def test_a_loop_over_them_is_refused_by_name():
    def loop(x):
        out = x[0]
        for row in x.unbind(0):
            out = out + row
        return out

    with pytest.raises(SymshapeError):
        symshape.analyze(Call(loop), ("A", "B"), batch=None)


def test_verify_compares_every_tensor():
    a = symshape.analyze(Call(lambda x: x.split(2, 2)), (3, "H", "W"))
    report = a.verify(samples=8)
    assert report.ok and report.checked >= 8


_OPS = st.sampled_from(["unbind", "split"])


@settings(max_examples=40, deadline=None)
@given(op=_OPS, dim=st.integers(-2, 1), size=st.integers(1, 3),
       take=st.sampled_from(["all", "first", "last", "cat", "stack", "unpack2"]),
       sizes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=3, max_size=6))
def test_against_torch(op, dim, size, take, sizes):
    def fn(x):
        parts = x.unbind(dim) if op == "unbind" else x.split(size, dim)
        if take == "first":
            return parts[0]
        if take == "last":
            return parts[-1]
        if take == "cat":
            return torch.cat(parts, dim if op == "split" else 0)
        if take == "stack":
            return torch.stack(parts, 0)
        if take == "unpack2":
            a, b = parts
            return a - b
        return parts

    agree(fn, ("A", "B"), sizes + [(1, 1), (2, 2)])


def test_python_joins_and_repeats_tuples_of_tensors():
    """``x.chunk(2, 1) + (x,)`` and ``(x,) * 2`` are Python's tuple arithmetic (they were taken for
    a broadcast, which the proof caught); of unbind's tensors whose number depends on the size
    they are refused by name."""
    def joined(x):
        return torch.cat(x.chunk(2, 1) + (x,) + (x,) * 2, 1)

    model = Call(joined)
    a = symshape.analyze(model, (3, "H", "W"))
    for h, w in GRID:
        assert a.at(H=h, W=w).output_shape == torch_shapes(model, (1, 3, h, w)) == (1, 12, h, w)
    with pytest.raises(SymshapeError, match="tuple of tensors whose number depends on the input size"):
        symshape.analyze(Call(lambda x: x.unbind(0) + (x,)), ("A", "B"), batch=None)


def test_a_refusal_that_depends_on_the_values_says_torch_may_refuse():
    """``F.one_hot((x > 2).sum(-1), 5)``: past T = 4 a count may reach 5 or not, as the data
    decides; evaluate() and explain() say torch *may* refuse, and why (they had said it refuses),
    and torch runs there at some data and raises at other."""
    model = Call(lambda x: F.one_hot((x > 2).sum(-1), 5))
    analysis = symshape.analyze(model, ("T",))
    said = str(analysis.evaluate(T=6))
    assert "torch may refuse this size at one_hot" in said and "depends on the values" in said
    assert "torch may refuse this size at one_hot" in str(symshape.explain.explain(analysis, T=6))
    assert "may refuse" not in str(analysis.evaluate(T=4))
    assert torch_shapes(model, (1, 6)) == (1, 5)  # (no entry above 2)
    assert torch_shapes(model, (1, 6)) != torch_shapes(Call(lambda x: F.one_hot((x + 3 > 2).sum(-1), 5)), (1, 6))
