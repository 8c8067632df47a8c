"""Memory formats: which layout convolution and pooling give their output on the CPU, and the
strides of dims of size 1 that decide it, against real torch.

A ``view`` after a convolution is where it shows: an image tensor permuted from NHWC is channels
last, a 2D convolution's output then is too, and ``view(N, -1)`` of it fails; a tensor that is
contiguous but whose size-1 dims carry odd strides (a permute round trip, ``contiguous()`` of a
tensor contiguous only at some sizes) can make the CPU kernels pick channels last at the sizes
where those dims are 1.
"""

import functools
import itertools

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch._prims_common import suggest_memory_format

import symshape
from oracle import assert_agrees, grid
from strategies import Functional
from symshape.tensor import channels_last


# -- channels_last: torch's is_channels_last_strides, decided symbolically -------------------------


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_channels_last_matches_torch_on_concrete_strides(data):
    nd = data.draw(st.sampled_from([4, 5]))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    perm = data.draw(st.permutations(range(nd)))
    t = torch.empty([sizes[p] for p in perm]).permute([perm.index(i) for i in range(nd)])
    if data.draw(st.booleans()):  # a view of it: computeStride's strides on dims of size 1
        try:
            t = t.view(t.shape)
        except RuntimeError:
            pass
    answer, ones = channels_last(tuple(t.shape), tuple(t.stride()))
    assert ones == ()
    expected = suggest_memory_format(t) in (torch.channels_last, torch.channels_last_3d)
    assert answer == expected, (tuple(t.shape), t.stride())


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_channels_last_of_a_chunk_of_channels_matches_torch(data):
    """A chunk of the channels of a contiguous or a channels-last tensor (split, chunk, a slice
    along C): torch's answer at every size, as the general test would give it."""
    nd = data.draw(st.sampled_from([4, 5]))
    k = data.draw(st.integers(1, 5))
    c = data.draw(st.integers(1, k))
    first = data.draw(st.integers(0, k - c))
    spatial = data.draw(st.lists(st.integers(1, 3), min_size=nd - 2, max_size=nd - 2))
    n = data.draw(st.integers(1, 2))
    if data.draw(st.booleans()):
        t = torch.empty(n, k, *spatial)
    else:
        t = torch.empty(n, *spatial, k).permute(0, nd - 1, *range(1, nd - 1))
    t = t[:, first:first + c]
    answer, ones = channels_last(tuple(t.shape), tuple(t.stride()))
    expected = suggest_memory_format(t) in (torch.channels_last, torch.channels_last_3d)
    assert (answer and all(g >= 2 for g in ones)) == expected, (tuple(t.shape), t.stride())


@pytest.mark.parametrize("rank", [4, 5])
def test_channels_last_of_a_chunk_of_channels_without_sympys_proofs(rank, monkeypatch):
    """Symbolic sizes: the direct answer for a chunk of the channels of a contiguous or a
    channels-last tensor is the general test's."""
    from symshape import tensor as T

    n, d, h, w = sympy.symbols("N D H W", integer=True, positive=True)
    spatial = (d, h, w)[3 - (rank - 2):]
    cases = []
    for k, c in ((64, 32), (195, 96), (2, 1), (3, 3)):
        full = (n, sympy.Integer(k), *spatial)
        row = T.standard_strides(full)
        last = T.channels_last_strides(full)
        for strides in (row, last):
            cases.append(((n, sympy.Integer(c), *spatial), strides))
    cases.append(((n, sympy.Integer(1), *spatial), T.channels_last_strides((n, sympy.Integer(1), *spatial))))
    for shape, strides in cases:
        fast = channels_last(shape, strides)
        T._channels_last.cache_clear()
        with monkeypatch.context() as m:
            m.setattr(T, "_row_major_after_batch", lambda *a: False)
            m.setattr(T, "_channels_last_slice", lambda *a: False)
            slow = channels_last(shape, strides)
        T._channels_last.cache_clear()
        assert fast == slow, (shape, strides, fast, slow)


def test_channels_last_symbolic_with_its_guard():
    """(N, 1, H, W) from NHWC: channels last unless H = W = 1; (N, 3, H, W) from NHWC: always."""
    H, W = sympy.symbols("H W", integer=True, positive=True)
    for c, expected_guard in ((1, (H * W,)), (3, ())):
        answer, ones = channels_last((2, c, H, W), (c * H * W, 1, c * W, c))
        assert answer is True and ones == expected_guard
        for h, w in itertools.product(range(1, 4), repeat=2):
            t = torch.empty(2, h, w, c).permute(0, 3, 1, 2)
            held = all(g.subs({H: h, W: w}) >= 2 for g in ones)
            if held:
                assert suggest_memory_format(t) == torch.channels_last, (c, h, w)
            else:
                assert suggest_memory_format(t) == torch.contiguous_format, (c, h, w)
    assert channels_last((2, 3, H, W), (3 * H * W, H * W, W, 1)) == (False, ())


# -- the kernels, end to end: a view after them runs exactly where torch's does --------------------


class Permuted(nn.Module):
    """The input arrives with its channels last (NHWC, or NLC / NDHWC) and is permuted to channels
    first; ``odd``: then through the fuzz's round trip (a reshape of the permuted tensor, and back),
    which leaves odd strides on dims of size 1."""

    def __init__(self, nd: int, odd: bool):
        super().__init__()
        self.nd, self.odd = nd, odd

    def extra_repr(self):
        return f"nd={self.nd}, odd={self.odd}"

    def forward(self, x):
        n = self.nd
        y = x.permute(0, n - 1, *range(1, n - 1))
        if self.odd:
            y = y.permute(0, *range(2, n), 1)
            y = y.reshape(y.shape).permute(0, n - 1, *range(1, n - 1)).contiguous()
        return y


def _flat(x):
    return x.view(x.size(0), -1)


def _kernels(d: int, c: int):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[d]
    conv_t = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[d]
    maxp = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[d]
    avgp = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[d]
    adapt = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[d]
    adapt_max = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[d]
    return {
        "conv": conv(c, 4, 1),
        "conv_pad": conv(c, 4, 3, padding=1),
        "conv_t": conv_t(c, 4, 2, stride=2),
        "max_pool": functools.partial(maxp, kernel_size=1),
        "max_pool_pad": functools.partial(maxp, kernel_size=3, stride=1, padding=1),
        "max_pool_indices": nn.Sequential(
            {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[d](1, return_indices=True), _First()),
        "avg_pool": functools.partial(avgp, kernel_size=1),
        "avg_pool_pad": functools.partial(avgp, kernel_size=3, stride=1, padding=1),
        "adaptive": functools.partial(adapt, output_size=2),
        "adaptive_max": adapt_max(3),
        "lp_pool": {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}[d](2, 1),
        "batch_norm": {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[d](c).eval(),
        "group_norm": nn.GroupNorm(1, c),
        "instance_norm": {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[d](c),
        "interpolate": functools.partial(F.interpolate, scale_factor=2),
        "interpolate_linear": functools.partial(F.interpolate, scale_factor=2,
                                                mode={1: "linear", 2: "bilinear", 3: "trilinear"}[d]),
        "interpolate_area": functools.partial(F.interpolate, size=(2,) * d, mode="area"),
        "pad": functools.partial(F.pad, pad=(1, 1) * d),
        "pad_replicate": functools.partial(F.pad, pad=(1, 1) * d, mode="replicate"),
        "pad_circular": functools.partial(F.pad, pad=(1, 1) * d, mode="circular"),
        "pad_shrink": functools.partial(F.pad, pad=(0, -1) * d),
        **({"pixel_shuffle": nn.PixelShuffle(1), "pixel_unshuffle": nn.PixelUnshuffle(1),
            "channel_shuffle": nn.ChannelShuffle(1)} if d == 2 else {}),
    }


class _First(nn.Module):
    def forward(self, pair):
        return pair[0]


KINDS = list(_kernels(2, 1))
#: the kinds that apply to every rank (the chains' first kernel)
EVERY_RANK = [k for k in KINDS if k in _kernels(1, 1) and k in _kernels(3, 1)]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_kernel_output_layout_decides_a_later_view(kind, d):
    if kind not in _kernels(d, 1):
        pytest.skip(f"{kind} takes 2D inputs only")
    names = ["L"] if d == 1 else ["H", "W"] if d == 2 else ["D", "H", "W"]
    values = [1, 2, 3] if d < 3 else [1, 2]
    for c, odd in ((3, False), (1, False), (2, True)):
        model = Functional([Permuted(d + 2, odd), _kernels(d, c)[kind], _flat])
        if (kind, d, c) == ("pad_shrink", 3, 3):
            continue  # refused by name: test_a_narrowed_ndhwc_view_is_refused_by_name (slow)
        assert_agrees(model, (*names, c), grid(names, values))


@pytest.mark.slow
def test_a_narrowed_ndhwc_view_is_refused_by_name():
    """A narrowed NDHWC tensor: torch's view of it branches on the sizes more than 64 ways, and
    symshape refuses it, naming the view, rather than guess (40 s: every branch is explored)."""
    model = Functional([Permuted(5, False), _kernels(3, 3)["pad_shrink"], _flat])
    with pytest.raises(symshape.UnsupportedOperation, match="view"):
        symshape.analyze(model, ("D", "H", "W", 3))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(EVERY_RANK), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 3]), st.booleans(),
       st.booleans())
def test_kernel_chains_agree_with_torch(kind, d, c, odd, twice):
    """Two kernels in a row (the second sees the first's layout), then a view."""
    names = ["L"] if d == 1 else ["H", "W"] if d == 2 else ["D", "H", "W"]
    first = _kernels(d, c)[kind]
    channels = 4 if kind.startswith("conv") else c
    ops = [Permuted(d + 2, odd), first]
    if twice:
        ops.append(_kernels(d, channels)["conv"])
    ops.append(_flat)
    if (kind, d, odd, twice) == ("pad_shrink", 3, False, False) and c > 1:
        # the narrowed NDHWC tensor of test_kernel_output_layout_decides_a_later_view: refused,
        # naming the view, rather than guessed (torch's view of it branches more than 64 ways)
        with pytest.raises(symshape.UnsupportedOperation, match="view"):
            symshape.analyze(Functional(ops), (*names, c))
        return
    sizes = grid(names, [1, 2, 3] if d < 3 else [1, 2])
    if d == 3 and twice and _refused_view(Functional(ops), (*names, c)):
        # a 3D convolution of an input that suggests channels last: its output's layout is the
        # backend's choice (oneDNN's by the batch, the kernel and the thread count), which
        # symshape does not follow; the view after it is refused, naming that -- never guessed
        _assert_backend_decides(ops[:-1], c, sizes)
        return
    assert_agrees(Functional(ops), (*names, c), sizes)


def _refused_view(model: nn.Module, shape: tuple) -> bool:
    try:
        symshape.analyze(model, shape)
    except symshape.UnsupportedOperation as e:
        assert "view" in str(e) and "strides symshape does not know" in str(e), e
        return True
    return False


def _assert_backend_decides(ops: list, c: int, sizes: list) -> None:
    """Torch lays out the output of ``ops`` (ending in a 3D convolution) differently by the
    thread count at batch 2, at one of ``sizes`` at least."""
    model, threads = Functional(ops), torch.get_num_threads()
    layouts = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.no_grad():
                layouts[n] = [model(torch.zeros(2, *s.values(), c)).stride() for s in sizes]
    finally:
        torch.set_num_threads(threads)
    assert layouts[1] != layouts[2], "torch's layout here does not depend on the backend: symshape should follow it"


class _TokensAndBack(nn.Module):
    """DaViT's pattern: image -> tokens -> image by a view of the transposed tokens, a depthwise
    convolution of that (channels last at batch 2, contiguous at batch 1 on the CPU), tokens
    again, and a view that works for either memory format."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.head = nn.LazyLinear(3)

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) * 2.0
        y = self.proj(t.transpose(1, 2).view(n, c, h, w))
        t = y.view(n, c, h * w).transpose(1, 2)  # merges H and W: a view in either memory format
        return self.head(t.mean(1))


def test_a_convolution_of_a_view_of_transposed_tokens_agrees_at_batch_1_and_2():
    model = _TokensAndBack()
    assert_agrees(model, (4, "H", "W"), grid(["H", "W"], [1, 2, 3, 5]))
    a = symshape.analyze(model, (4, "H", "W"))
    report = a.verify(sizes=[{"N": n, "H": h, "W": w} for n in (1, 2) for h, w in ((3, 5), (4, 4))])
    assert report.ok, report


class _ContiguousTokensAndBack(nn.Module):
    """DaViT's and Twins' pattern with the tokens contiguous, as a Linear leaves them: the view
    of the transposed tokens is channels last, and so is the convolution's output on the CPU at
    batch 2 (at batch 1 torch's view gives the batch dim another stride, and the output is
    contiguous). ``merge``: the last view merges C with H and W (refused on channels last), or
    H with W only (a view in either memory format)."""

    def __init__(self, merge: bool, c: int = 4):
        super().__init__()
        self.merge = merge
        self.proj = nn.Conv2d(c, c, 3, padding=1, groups=c)

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2).contiguous() * 2.0
        y = self.proj(t.transpose(1, 2).view(n, c, h, w))
        return y.view(n, -1) if self.merge else y.view(n, c, h * w)


@pytest.mark.parametrize("merge", [True, False])
def test_a_convolution_of_a_view_of_contiguous_tokens_is_channels_last_at_batch_2(merge):
    """Was wrong: symshape took the convolution's layout from torch's meta kernel (always
    contiguous) and said ``view(n, -1)`` runs at batch 2, where the CPU refuses it. Now the
    layout follows the view's strides where every size is at least 2; at a size of 1 (batch 1)
    those strides are torch's computeStride's, which symshape does not follow: a view that
    depends on them is refused there as data-dependent, never guessed."""
    model = _ContiguousTokensAndBack(merge)
    a = symshape.analyze(model, (4, "H", "W"))
    assert "(model)" not in [s.name for s in a.steps], a
    sizes = [{"N": n, "H": h, "W": w} for n in (1, 2, 3) for h, w in ((3, 5), (4, 4), (2, 3))]
    report = a.verify(sizes=sizes)
    assert report.ok, report
    for s in sizes:
        x = torch.zeros(s["N"], 4, s["H"], s["W"])
        try:
            model(x)
            runs = True
        except RuntimeError:
            runs = False
        if s["N"] >= 2:  # exact: symshape answers as torch does
            if runs:
                a.at(**s)
            else:
                with pytest.raises(symshape.InvalidInputSize):
                    a.at(**s)
    if merge:  # the CPU refuses at batch 2, and symshape says so
        with pytest.raises(symshape.InvalidInputSize, match="view"):
            a.at(N=2, H=3, W=5)
        with pytest.raises(symshape.InvalidInputSize, match="strides"):
            a.at(N=1, H=3, W=5)  # torch runs it; symshape does not follow batch 1's strides
    else:
        assert a.at(N=2, H=3, W=5).output_shape == (2, 4, 15)
        # merging H and W is a view in either memory format: no guard, exact at batch 1 too
        assert a.at(N=1, H=3, W=5).output_shape == tuple(model(torch.zeros(1, 4, 3, 5)).shape) == (1, 4, 15)


def test_a_view_of_a_slice_of_a_guarded_convolution_output_requires_the_guard():
    """The convolution's output is channels last at batch 2 and contiguous at batch 1; permuted
    to NHWC and sliced, ``view(n, -1)`` of it is a view at every size on channels last (symshape's
    strides) and refused on contiguous (batch 1's). symshape said it runs at batch 1 (the proof's
    meta forward happened to catch it); a view whose strides hold only under a guard requires it."""

    class Sliced(_ContiguousTokensAndBack):
        def forward(self, x):
            n, c, h, w = x.shape
            t = x.flatten(2).transpose(1, 2).contiguous() * 2.0
            y = self.proj(t.transpose(1, 2).view(n, c, h, w))
            return y.permute(0, 2, 3, 1)[:, 1:].view(n, -1)

    model = Sliced(merge=False)
    a = symshape.analyze(model, (4, "H", "W"))
    assert "(model)" not in [s.name for s in a.steps], a  # the trace itself, not the model run whole
    with pytest.raises(symshape.InvalidInputSize, match="strides"):
        a.at(N=1, H=3, W=5)  # torch refuses it here (contiguous at batch 1)
    with pytest.raises(RuntimeError):
        model(torch.zeros(1, 4, 3, 5))
    assert a.at(N=2, H=3, W=5).output_shape == (2, 40)
    model(torch.zeros(2, 4, 3, 5))
    assert a.verify(sizes=[{"N": n, "H": h, "W": w} for n in (1, 2) for h, w in ((3, 5), (2, 2))]).ok


def test_a_pad_that_shrinks_a_channels_last_tensor_keeps_a_later_convolution_channels_last():
    """Found by a random run of test_kernel_chains_agree_with_torch: ``F.pad`` by -1 of a
    permuted NHWC tensor is a channels-last slice, the convolution after it is channels last on
    the CPU, and ``view(N, -1)`` of that is refused wherever H - 1 and W - 1 are not both 1.
    symshape said it runs everywhere (the model ran whole under torch's meta kernels, whose
    convolution output is always contiguous)."""
    model = Functional([Permuted(4, False), _kernels(2, 2)["pad_shrink"], _kernels(2, 2)["conv"], _flat])
    accepted = assert_agrees(model, ("H", "W", 2), grid(["H", "W"], [2, 3, 4]))
    assert accepted == 1  # H = W = 2 only
    a = symshape.analyze(model, ("H", "W", 2))
    assert [s.rule for s in a.steps if s.kind == "module"] == ["conv"], a  # not run whole
    assert a.verify(sizes=[{"N": 2, "H": h, "W": w} for h in (2, 3) for w in (2, 4)]).ok


class _AtenConvolution(nn.Module):
    """A convolution symshape has no hand rule for (``aten.convolution`` called directly):
    torch's meta kernel runs it, on a permuted (channels-last) input, and a view follows."""

    def __init__(self, d: int = 2, merge: bool = True):
        super().__init__()
        self.d, self.merge = d, merge
        self.weight = nn.Parameter(torch.randn(4, 3, *(1,) * d))

    def forward(self, x):
        d = self.d
        y = torch.ops.aten.convolution.default(x.permute(0, d + 1, *range(1, d + 1)), self.weight, None,
                                               [1] * d, [0] * d, [1] * d, False, [0] * d, 1)
        return y.view(y.shape[0], -1) if self.merge else y.reshape(y.shape[0], -1)


def test_a_convolution_run_by_torchs_meta_kernel_takes_the_cpus_memory_format():
    """torch's meta kernel allocates a convolution's output contiguous; the CPU's is channels
    last from a channels-last input (symshape.meta lays it out so): ``view(N, -1)`` of it runs
    only where H = W = 1, as on the CPU."""
    model = _AtenConvolution()
    a = symshape.analyze(model, ("H", "W", 3))
    assert "meta" in {s.rule for s in a.steps}, a
    accepted = assert_agrees(model, ("H", "W", 3), grid(["H", "W"], [1, 2, 3]))
    assert accepted == 1
    assert a.verify(sizes=[{"N": n, "H": h, "W": w} for n in (1, 2) for h in (1, 2) for w in (1, 3)]).ok


def test_a_3d_convolution_whose_memory_format_depends_on_the_backend_makes_a_view_data_dependent():
    """A 3D convolution follows a channels-last input on oneDNN and not on torch's own kernel
    (picked from the batch size and the thread count): a view of its output is refused as
    data-dependent (torch may refuse it), a reshape runs everywhere."""
    view = symshape.analyze(_AtenConvolution(3), ("D", "H", "W", 3))
    with pytest.raises(symshape.InvalidInputSize, match="strides symshape does not follow"):
        view.at(D=2, H=2, W=2)
    assert view.verify(sizes=[{"D": 2, "H": 2, "W": 3}, {"D": 1, "H": 1, "W": 1}]).ok
    reshape = symshape.analyze(_AtenConvolution(3, merge=False), ("D", "H", "W", 3))
    assert reshape.at(D=2, H=2, W=3).output_shape == (1, 48)


def test_channels_last_of_sizes_shifted_by_a_constant():
    """``H - 1`` (after a pad by -1): decided as for ``H``, not left open."""
    n, h, w = sympy.symbols("N H W", integer=True, positive=True)
    shape = (n, sympy.Integer(2), h - 1, w - 1)
    assert channels_last(shape, (2 * (h - 1) * (w - 1), 1, 2 * (w - 1), 2)) == (True, ())
    assert channels_last(shape, ((h - 1) * (w - 1) * 2, (h - 1) * (w - 1), w - 1, 1))[0] is False


def test_channels_last_of_floored_sizes():
    """A size such as ``floor((H + 1)/8)`` (CoAtNet's pooled stages): decided as a symbol."""
    n, h, w = sympy.symbols("N H W", integer=True, positive=True)
    a, b = sympy.floor((h + 1) / 8), sympy.floor((w + 1) / 8)
    shape = (n, sympy.Integer(64), a, b)
    one = sympy.Integer(1)
    assert channels_last(shape, (64 * sympy.Max(one, a) * sympy.Max(one, b), 1, 64 * sympy.Max(one, b), 64)) == (True, ())


@pytest.mark.parametrize("rank", [4, 5])
def test_channels_last_of_exact_channels_last_strides_without_sympys_proofs(rank, monkeypatch):
    """Exact channels-last strides (DenseNet-like stages ask this of a new channel count at every
    convolution) are answered directly, as the general test answers them."""
    from symshape import tensor as T

    n, c, d, h, w = sympy.symbols("N C D H W", integer=True, positive=True)
    shapes = [(n, c, h, w), (n, sympy.Integer(5), h - 1, w), (n, sympy.Integer(1), h, w),
              (n, sympy.Integer(1), sympy.Integer(1), sympy.Integer(1)), (n, c, sympy.Integer(1), w)]
    if rank == 5:
        shapes = [(*s[:2], d, *s[2:]) for s in shapes]
    for shape in shapes:
        strides = tuple(sympy.Max(1, e) if i == 0 else e for i, e in enumerate(T.channels_last_strides(shape)))
        fast = channels_last(shape, strides)
        T._channels_last.cache_clear()
        with monkeypatch.context() as m:
            m.setattr(T, "_dense_channels_last", lambda *a: None)
            slow = channels_last(shape, strides)
        T._channels_last.cache_clear()
        assert fast == slow, (shape, fast, slow)


class _ChannelsLastStage(nn.Module):
    """CvT's pattern (transformers' CvtModel, found by a sweep of its vision models): tokens
    permuted back into a channels-last image, a kernel, then a view of its output. ``view``:
    ``"hw"`` merges H and W, ``"split"`` splits the channels, both views in either memory
    format; ``"chw"`` merges the channels with H and W, a view on contiguous only."""

    def __init__(self, kernel: str, view: str, c: int = 4):
        super().__init__()
        self.kernel, self.view = kernel, view
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels last
        y = self.conv(x) if self.kernel == "conv" else F.max_pool2d(x, 2)
        if self.view == "hw":
            return y.view(y.shape[0], c, -1)
        if self.view == "split":
            return y.view(y.shape[0], 2, c // 2, y.shape[2], y.shape[3]).flatten(1)
        return y.view(y.shape[0], -1)


@pytest.mark.parametrize("kernel", ["conv", "pool"])
@pytest.mark.parametrize("view", ["hw", "split", "chw"])
def test_a_view_that_any_memory_format_allows_needs_no_guard(kernel, view):
    """Was wrong (transformers' CvT): a view of a kernel's output whose memory format symshape
    follows only where no size is 1 required that guard, so ``valid_sizes()`` at batch 1 left
    out every size but 1 x 1, where torch runs at all of them. A view that is one in either
    format (``(B, C, H*W)``) needs no guard; one that is not (``(B, C*H*W)`` of channels last)
    still refuses where torch may. Against torch at batch 1 and 2."""
    model = _ChannelsLastStage(kernel, view)
    a = symshape.analyze(model, (4, "H", "W"))
    sizes = [{"N": n, "H": h, "W": w} for n in (1, 2) for h in (1, 2, 5) for w in (1, 3, 4)]
    assert a.verify(sizes=sizes).ok
    for s in sizes:
        try:
            with torch.no_grad():
                expected = tuple(model(torch.zeros(s["N"], 4, s["H"], s["W"])).shape)
        except RuntimeError:
            expected = None
        if view == "chw" and s["N"] == 1:
            continue  # symshape does not follow batch 1's strides here: refused, as torch may
        if expected is None:
            with pytest.raises(symshape.InvalidInputSize):
                a.at(**s)
        else:
            assert a.at(**s).output_shape == expected, s
    if view != "chw":
        n1 = a.valid_sizes(batch=1)
        assert all(n1.contains(H=h, W=w) for h in range(2 if kernel == "pool" else 1, 9) for w in (2, 7, 8))
