"""Bounds on an index computed element by element from sizes (symshape.bounds), against torch.

T5's relative-position bucket (also MT5's, UMT5's, LongT5's and MPNet's) indexes a bias table of
``num_buckets`` rows with an entry computed from ``memory_position - context_position`` through
``abs``, a float ``log`` and a ``where`` that picks the log only where it is finite. symshape
bounds the bucket by ``0 … num_buckets - 1`` at every length, so the model analyzes with every
length valid; the CPU forward agrees at each length checked. hypothesis draws programs of such
elementwise ops and a table around their true extremes (sometimes a row or two short, so torch
refuses some lengths): wherever symshape analyzes, its verdict at each length is torch's.
"""

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import symshape
from symshape.errors import InvalidInputSize, UnsupportedWhereMetaDiffers

LENGTHS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 129, 300]


def t5_bucket(relative_position, bidirectional: bool, num_buckets: int, max_distance: int):
    """The bucket of each relative position, as T5 computes it (Mesh TensorFlow's scheme): exact
    buckets for small distances, logarithmic ones up to ``max_distance``, the last one past it."""
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    buckets += torch.where(is_small, relative_position, large)
    return buckets


class RelativeBias(nn.Module):
    """Attention scores plus T5's relative-position bias, over a sequence of length T: an
    embedding of the bucket, or (``table``) a parameter indexed by it."""

    def __init__(self, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128,
                 rows: int | None = None, table: bool = False):
        super().__init__()
        self.bidirectional, self.num_buckets, self.max_distance = bidirectional, num_buckets, max_distance
        self.bias = nn.Embedding(num_buckets if rows is None else rows, 4)
        self.table = table

    def forward(self, x):
        t = x.shape[1]
        context = torch.arange(t, dtype=torch.long)[:, None]
        memory = torch.arange(t, dtype=torch.long)[None, :]
        bucket = t5_bucket(memory - context, self.bidirectional, self.num_buckets, self.max_distance)
        scores = x @ x.transpose(1, 2)
        bias = self.bias.weight[bucket] if self.table else self.bias(bucket)
        return scores[:, None] + bias.permute(2, 0, 1)[None]


@pytest.mark.parametrize("table", [False, True])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 64), (8, 20)])
def test_t5_bucket_is_within_the_table_at_every_length(bidirectional, num_buckets, max_distance, table):
    model = RelativeBias(bidirectional, num_buckets, max_distance, table=table).eval()
    analysis = symshape.analyze(model, ("T", 8))
    assert str(analysis.valid_sizes()) == "any T"
    report = analysis.verify(sizes=[{"T": t} for t in LENGTHS], device="cpu")
    assert report.ok, report.mismatches[:1]
    assert sum(1 for r in report.results if r[1]) == len(LENGTHS)  # torch ran at every length


def test_a_table_too_short_for_the_bound_is_refused_naming_it():
    # 31 rows for buckets up to 31: torch raises once a relative position reaches bucket 31
    model = RelativeBias(True, 32, 128, rows=31).eval()
    with pytest.raises(UnsupportedWhereMetaDiffers, match=r"bounds by 0 … 31"):
        symshape.analyze(model, ("T", 8))
    with pytest.raises(UnsupportedWhereMetaDiffers):
        symshape.analyze(RelativeBias(True, 32, 128, rows=31, table=True).eval(), ("T", 8))
    with pytest.raises(IndexError):
        model(torch.zeros(1, 129, 8))
    model(torch.zeros(1, 16, 8))


def test_the_where_reads_each_side_only_where_it_is_taken():
    """``log(0)`` is ``-inf`` and its conversion ``-2**63`` at relative position 0: only the
    ``where`` keeps it out, and only for the very tensor it compares."""

    class Picked(nn.Module):
        def __init__(self, same: bool):
            super().__init__()
            self.same, self.table = same, nn.Embedding(8, 2)

        def forward(self, x):
            r = torch.arange(x.shape[1])
            other = torch.flip(torch.arange(x.shape[1]), [0])
            big = (torch.log(r.float() / 4) * 2).long() + 4
            cond = r < 4 if self.same else other < 4  # (other: another tensor with the same extremes)
            return self.table(torch.where(cond, r, torch.clamp(big, max=7)))

    symshape.analyze(Picked(True).eval(), ("T",))
    with pytest.raises(UnsupportedWhereMetaDiffers):  # torch raises at T = 8: where picks log(0/4)
        symshape.analyze(Picked(False).eval(), ("T",))
    with pytest.raises(IndexError):
        Picked(False).eval()(torch.zeros(1, 8))


# -- programs hypothesis draws -----------------------------------------------------------------

_SIMPLE = st.one_of(
    st.tuples(st.just("abs")), st.tuples(st.just("neg")),
    st.tuples(st.just("add"), st.integers(-5, 5)), st.tuples(st.just("mul"), st.integers(-3, 3)),
    st.tuples(st.just("floordiv"), st.integers(1, 4)), st.tuples(st.just("mod"), st.integers(1, 6)),
    st.tuples(st.just("clamp"), st.integers(-4, 2), st.integers(2, 12)),
    st.tuples(st.just("cap"), st.integers(-2, 12)), st.tuples(st.just("floor_at"), st.integers(-6, 3)),
    st.tuples(st.just("flag"), st.integers(-3, 3), st.integers(0, 9)),
    st.tuples(st.just("log"), st.sampled_from([2, 4, 8]), st.sampled_from([16, 64, 128])),
    st.tuples(st.just("scaled"), st.sampled_from([0.5, 3.0, -2.0])))
_STEP = st.one_of(_SIMPLE, st.tuples(st.just("where"), st.integers(-3, 10), _SIMPLE, _SIMPLE),
                  st.tuples(st.just("cross"), st.integers(-2, 6), st.integers(-2, 2)))


def _apply(op: tuple, x: torch.Tensor) -> torch.Tensor:
    name, *a = op
    if name == "abs":
        return torch.abs(x)
    if name == "neg":
        return -x
    if name == "add":
        return x + a[0]
    if name == "mul":
        return x * a[0]
    if name == "floordiv":
        return x // a[0]
    if name == "mod":
        return x % a[0]
    if name == "clamp":
        return torch.clamp(x, a[0], a[1])
    if name == "cap":
        return torch.min(x, torch.full_like(x, a[0]))
    if name == "floor_at":
        return torch.maximum(x, torch.full_like(x, a[0]))
    if name == "flag":
        return (x > a[0]).to(torch.long) * a[1] + x
    if name == "log":
        c, d = a
        return c + (torch.log(x.float() / c) / math.log(d / c) * c).to(torch.long)
    if name == "scaled":
        return (x.float() * a[0]).long()
    if name == "where":
        k, then, other = a
        return torch.where(x < k, _apply(then, x), _apply(other, x))
    if name == "cross":  # a row broadcast against x, compared, and picked by the comparison
        k, m = a
        u = torch.arange(x.shape[-1])[None, :] * m
        return torch.where(u < k, u + x, torch.clamp(x - u, -3, 40))
    raise AssertionError(name)


class Program(nn.Module):
    def __init__(self, steps: list, offset: int, rows: int):
        super().__init__()
        self.steps, self.offset = steps, offset
        self.table = nn.Embedding(rows, 2)

    def indices(self, t: int) -> torch.Tensor:
        r = torch.arange(t)[None, :] - torch.arange(t)[:, None]
        for op in self.steps:
            r = _apply(op, r)
        return r

    def forward(self, x):
        return self.table(self.indices(x.shape[1]) + self.offset)


_T5 = [("where", 8, ("abs",), ("log", 8, 128)), ("clamp", 0, 15)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(steps=_T5, short=0)
@example(steps=[("abs",), ("where", 4, ("add", 0), ("log", 4, 64)), ("cap", 9)], short=1)
@example(steps=[("clamp", -2, 5), ("cross", 3, 1)], short=0)
@example(steps=[("clamp", 0, 2), ("neg",)], short=1)
@given(steps=st.lists(_STEP, min_size=1, max_size=4), short=st.integers(0, 2))
def test_bounded_indices_agree_with_torch(steps, short):
    probe = Program(steps, 0, 1)
    seen = torch.cat([probe.indices(t).flatten() for t in LENGTHS])
    lo, hi = int(seen.min()), int(seen.max())
    if hi - lo > 10 ** 6:
        return  # (a table that long says nothing more)
    model = Program(steps, -lo, max(hi - lo + 1 - short, 1)).eval()  # short > 0: torch refuses some lengths
    try:
        analysis = symshape.analyze(model, ("T",))
    except UnsupportedWhereMetaDiffers as e:
        assert "indices computed from the input's sizes" in str(e)
        return
    except InvalidInputSize:  # torch refuses every length: so at each one checked
        for t in LENGTHS:
            with pytest.raises(IndexError):
                model(torch.zeros(1, t))
        return
    report = analysis.verify(sizes=[{"T": t} for t in LENGTHS], device="cpu")
    assert report.ok, (steps, report.mismatches[:1])
    assert short == 0 or report.checked > 0


class Disentangled(nn.Module):
    """DeBERTa's content-to-position attention: relative positions clamped into a span of the
    position table and gathered (through ``squeeze`` and ``expand``, which keep the bounds); the
    span a fixed number, or (``tensor_span``, DeBERTa v1) ``torch.tensor(min(T, k))``, which also
    slices the table."""

    def __init__(self, k: int = 8, tensor_span: bool = False):
        super().__init__()
        self.k, self.tensor_span = k, tensor_span
        self.table = nn.Parameter(torch.randn(2 * k, 4))

    def forward(self, x):
        t = x.shape[1]
        rel = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).unsqueeze(0)
        span = torch.tensor(min(t, self.k)) if self.tensor_span else self.k
        table = self.table[self.k - span:self.k + span, :]  # (2 * span rows)
        att = x @ table.t()  # (N, T, 2 * span)
        pos = torch.clamp(rel + span, 0, span * 2 - 1)
        return torch.gather(att, dim=-1, index=pos.squeeze(0).expand([x.shape[0], t, t]))


@pytest.mark.parametrize("tensor_span", [False, True])
def test_clamped_relative_positions_gathered_agree_with_torch(tensor_span):
    analysis = symshape.analyze(Disentangled(8, tensor_span).eval(), ("T", 4))
    assert str(analysis.valid_sizes()) == "any T"
    report = analysis.verify(sizes=[{"T": t} for t in (1, 2, 7, 8, 9, 16, 17, 40)], device="cpu")
    assert report.ok, report.mismatches[:1]
    assert sum(1 for r in report.results if r[1]) == 8


def test_a_tensor_slice_bound_is_its_value():
    """``x[a:b]`` with one-element integer tensors as bounds: Python's ``__index__``, their value
    (``torch.tensor(L)`` has exactly one); a float tensor is refused, as Python refuses it."""

    class Sliced(nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.dtype = dtype

        def forward(self, x):
            n = torch.tensor(x.shape[-1] // 2, dtype=self.dtype)
            return x[..., n:]

    analysis = symshape.analyze(Sliced(torch.long), (3, "L"))
    assert analysis.verify(sizes=[{"L": n} for n in (1, 2, 5, 8)], device="cpu").ok
    assert tuple(analysis.at(L=9).output_shape) == (1, 3, 5)
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        Sliced(torch.float32)(torch.zeros(1, 3, 4))
    with pytest.raises(symshape.InvalidInputSize, match="only integer tensors of a single element"):
        symshape.analyze(Sliced(torch.float32), (3, "L"))
