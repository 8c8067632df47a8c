"""Strides torch computes where a later op reads them, and sizes given as one-element tensors:
Longformer's overlapping chunks (``torch.div`` of sizes as a size, ``view`` of a reshaped
transpose, ``stride()``, ``as_strided``, ``einsum`` then ``F.pad`` then ``view``). Every answer is
checked against torch's own forward, at batch sizes 1, 2 and 3 (at batch 1 a reshape of a
transpose is a view, elsewhere a copy: symshape.rules.strides)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidInputSize, UnsupportedOperation, UntraceableModel


def _agrees(analysis, sizes: list[dict], batches=(1, 2, 3)) -> None:
    for b in batches:
        report = analysis.verify(sizes=sizes, batch=b)
        assert report.ok, f"batch {b}:\n{report}"
        assert report.checked > 0


class Chunks(nn.Module):
    """Longformer's ``_sliding_chunks_query_key_matmul`` on its own (heads 4 of 16, window w)."""

    def __init__(self, w: int = 4):
        super().__init__()
        self.w = w

    def chunk(self, x):
        x = x.view(x.size(0), torch.div(x.size(1), self.w * 2, rounding_mode="trunc"), self.w * 2, x.size(2))
        size, stride = list(x.size()), list(x.stride())
        size[1] = size[1] * 2 - 1
        stride[1] = stride[1] // 2
        return x.as_strided(size=size, stride=stride)

    def forward(self, x):
        b, t = x.size(0), x.size(1)
        q = x.view(b, t, 4, 16).transpose(1, 2).reshape(b * 4, t, 16)
        scores = torch.einsum("bcxd,bcyd->bcxy", (self.chunk(q), self.chunk(q)))
        padded = F.pad(scores, (0, 0, 0, 1))
        chunks = torch.div(t, self.w, rounding_mode="trunc") - 1
        out = padded.new_zeros((b * 4, chunks + 1, self.w, self.w * 2 + 1))
        return padded.view(*padded.size()[:-2], padded.size(-1), padded.size(-2)), out, q.stride()


def test_longformer_chunks_agree_with_torch():
    """The chunk count is a 0-dim tensor used as a size; the view of the reshaped transpose, its
    strides and the overlapping as_strided view are torch's at every batch size (cases N == 1 and
    N != 1 where the reshape is a view or a copy), and one chunk (T = 8) apart."""
    analysis = symshape.analyze(Chunks(), ("T", 64))
    assert str(analysis.valid_sizes()) == "T ≥ 8, T ≡ 0 (mod 8)"
    _agrees(analysis, [{"T": t} for t in (1, 4, 7, 8, 9, 16, 24, 40, 64)])


@pytest.mark.parametrize("name, mode", [(n, None) for n in ("add", "sub", "mul", "div", "true_divide", "floor_divide",
                                                              "maximum", "eq", "pow")] + [("div", "trunc"), ("div", "floor")])
def test_torch_arithmetic_of_sizes_is_a_0dim_tensor(name, mode):
    """``torch.div(T, 3, rounding_mode=...)`` and its kin on two numbers: torch's 0-dim tensor
    (int64 or float32), its value exactly where it is an integer (a size, as the view shows), or
    torch's refusal (``torch.maximum(T, 3)``: TypeError)."""
    kwargs = {} if mode is None else {"rounding_mode": mode}
    fn = getattr(torch, name)

    class M(nn.Module):
        def forward(self, x):
            v = fn(x.size(1), 3, **kwargs)
            if v.dtype.is_floating_point:
                return x * v
            return x.new_zeros((x.size(0), v + 1)), x.new_ones(v), v.shape

    try:
        M()(torch.zeros(1, 7))
    except TypeError:  # (torch's own refusal: at tracing, or from symshape's rule where fx passes it)
        with pytest.raises((InvalidInputSize, UntraceableModel), match=name):
            symshape.analyze(M(), ("T",))
        return
    analysis = symshape.analyze(M(), ("T",))
    _agrees(analysis, [{"T": t} for t in (1, 2, 3, 5, 9, 10)])


def test_a_one_element_tensor_of_unknown_value_as_a_size_is_refused():
    class M(nn.Module):
        def forward(self, x):
            return x.view(x.sum().long(), -1)

    with pytest.raises(UnsupportedOperation):
        symshape.analyze(M(), ("T",))


def test_stride_of_a_dim_of_size_1_is_torchs():
    """``contiguous()`` of a transpose copies where T > 1 and returns the tensor itself at T = 1,
    whose stride of the dim of size 1 is another: symshape had answered the copy's at every T."""

    class M(nn.Module):
        def forward(self, x):
            return x.transpose(1, 2).contiguous().stride()

    analysis = symshape.analyze(M(), ("T", 64))
    _agrees(analysis, [{"T": t} for t in (1, 2, 5)])


def test_as_strided_checks_the_storage():
    """torch refuses an as_strided view that reaches past the storage: its meta kernel on
    symbolic sizes does not check, and symshape had answered "any L"."""

    class Inside(nn.Module):
        def forward(self, x):
            return x.as_strided((x.size(0), 2, 4), (x.size(1), 4, 1))

    analysis = symshape.analyze(Inside(), ("L",))
    assert str(analysis.valid_sizes()) == "L ≥ 8"
    _agrees(analysis, [{"L": n} for n in (1, 4, 7, 8, 9, 20)])


def test_as_strided_past_a_slice_is_not_claimed_to_run():
    """A view of a slice may reach past the slice into its storage: torch runs it where the
    storage holds enough, which symshape does not follow: no size is claimed to run where the
    slice's own extent does not hold the view (a data-dependent requirement)."""

    class PastSlice(nn.Module):
        def forward(self, x):
            return x[:, :4].as_strided((x.size(0), 8), (x.size(1), 1))

    analysis = symshape.analyze(PastSlice(), ("L",))
    for n in (4, 8, 12):
        with pytest.raises(InvalidInputSize):
            analysis.at(L=n)


def test_as_strided_with_a_storage_offset_is_refused_by_name():
    class M(nn.Module):
        def forward(self, x):
            return x.as_strided((2, 2), (1, 1), 1)

    with pytest.raises(UnsupportedOperation, match="storage_offset"):
        symshape.analyze(M(), ("L",))


#: tensors of (N, A, B, C) made non-contiguous, and what a later op reads of their layout
_MAKE = {
    "transpose(1, 2)": lambda x: x.transpose(1, 2),
    "permute(0, 3, 1, 2)": lambda x: x.permute(0, 3, 1, 2),
    "transpose(0, 1)": lambda x: x.transpose(0, 1),
    "transpose(2, 3)": lambda x: x.transpose(2, 3),
}
_RESHAPE = {
    "merge all": lambda y: y.reshape(-1),
    "merge last two": lambda y: y.reshape(y.size(0), y.size(1), -1),
    "merge first two": lambda y: y.reshape(-1, y.size(2), y.size(3)),
    "flatten(1)": lambda y: y.flatten(1),
}
_READ = {
    "stride()": lambda z: z.stride(),
    "view as is, stride()": lambda z: z.view(z.shape).stride(),
    "view split 1": lambda z: z.view(z.size(0), 1, *z.shape[1:]).stride(),
    "as_strided of itself": lambda z: z.as_strided(z.shape, z.stride()),
}


class Layout(nn.Module):
    def __init__(self, make, reshape, read):
        super().__init__()
        self.make, self.reshape, self.read = make, reshape, read

    def forward(self, x):
        return self.read(self.reshape(self.make(x)))


@settings(max_examples=30, deadline=None)
@given(make=st.sampled_from(sorted(_MAKE)), reshape=st.sampled_from(sorted(_RESHAPE)),
       read=st.sampled_from(sorted(_READ)))
def test_layouts_after_reshape_are_torchs(make, reshape, read):
    """A reshape of a non-contiguous tensor, then its strides read: torch's at every size where
    symshape answers (sizes 1 and 2 of every dim, batches 1 to 3), or refused by name."""
    model = Layout(_MAKE[make], _RESHAPE[reshape], _READ[read])
    try:
        analysis = symshape.analyze(model, ("A", "B", 3))
    except UnsupportedOperation:
        return
    _agrees(analysis, [{"A": a, "B": b} for a, b in itertools.product((1, 2, 3), (1, 2))])


class ChannelsLastThenContiguous(nn.Module):
    """diffusers' VQModel: an attention block's output reshaped back to a map is channels-last
    (``transpose(-1, -2).reshape(b, c, h, w)``), a GroupNorm then picks its output's memory
    format from strides symshape does not follow at a size of 1 (a guard), and the quantizer's
    ``permute(0, 2, 3, 1).contiguous().view(-1, c)`` follows. contiguous() is contiguous for
    torch at every size whatever its input was, so the view never fails: 9ac5ec4 to 0be5a4a had
    kept the guard and answered only H = W = 1 (torch runs at every size)."""

    def __init__(self):
        super().__init__()
        self.norm, self.proj = nn.GroupNorm(2, 4), nn.Linear(4, 4)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.proj(x.view(b, c, h * w).transpose(1, 2))
        y = y.transpose(-1, -2).reshape(b, c, h, w) + x
        return self.norm(y).permute(0, 2, 3, 1).contiguous().view(-1, c)


def test_a_view_of_contiguous_needs_no_guard():
    analysis = symshape.analyze(ChannelsLastThenContiguous(), (4, "H", "W"))
    assert str(analysis.valid_sizes()) == "any H and W"
    sizes = [{"H": h, "W": w} for h, w in ((1, 1), (1, 3), (2, 2), (3, 5), (8, 8))]
    for batch in (1, 2):
        report = analysis.verify(sizes=sizes, batch=batch)
        assert report.ok and all(r[1] for r in report.results) and not report.notes, report
