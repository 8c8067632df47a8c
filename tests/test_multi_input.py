"""Models called with several inputs (issue 20 point 3): a tuple of shapes for positional
inputs, a dict by keyword, size names shared across inputs; checked against real torch."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidArgument
from oracle import check_sizes


class ImageMask(nn.Module):
    """An image and its mask, gated: both must have the same H and W."""

    def __init__(self):
        super().__init__()
        self.img = nn.Conv2d(3, 8, 3, stride=2)
        self.msk = nn.Conv2d(1, 8, 3, stride=2)
        self.fc = nn.LazyLinear(10)

    def forward(self, x, mask):
        y = self.img(x) * torch.sigmoid(self.msk(mask))
        return self.fc(y.flatten(1))


class TwoStream(nn.Module):
    """RGB and optical flow, each through its own stem, joined by cat; ``flow`` optional."""

    def __init__(self):
        super().__init__()
        self.rgb = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
        self.flow = nn.Sequential(nn.Conv2d(2, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, rgb, flow=None):
        a = self.rgb(rgb)
        if flow is not None:
            a = torch.cat([a, self.flow(flow)], 1)
        return self.fc(a.flatten(1))


class Seq2Seq(nn.Module):
    """An encoder-decoder fed ``(src, tgt)``: a conv encoder's mean is the GRU decoder's state."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv1d(4, 8, 5, stride=2)
        self.dec = nn.GRU(8, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, src, tgt):
        memory = self.enc(src).mean(-1)
        out, _ = self.dec(tgt, memory.unsqueeze(0).contiguous())
        return self.head(out)


class ResizeMask(nn.Module):
    """Python that branches on two inputs' sizes: the mask is resized where it differs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, mask):
        if x.shape[-1] != mask.shape[-1]:
            mask = F.interpolate(mask, size=x.shape[-2:])
        return self.conv(torch.cat([x, mask], 1))


def _torch_runs(model, args, kwargs=None) -> bool:
    """Whether torch runs the forward (on a copy: a LazyLinear would fix its size on the first)."""
    try:
        with torch.no_grad():
            copy.deepcopy(model)(*args, **(kwargs or {}))
        return True
    except RuntimeError:
        return False


def test_positional_inputs_share_size_names():
    a = symshape.analyze(ImageMask(), ((3, "H", "W"), (1, "H", "W")))
    assert a.size_names == ("H", "W")
    assert str(a.in_features["fc"]) == "8*floor((H - 1)/2)*floor((W - 1)/2)"
    assert str(a).splitlines()[0] == "inputs x (N, 3, H, W), mask (N, 1, H, W), train mode"
    assert a.at(H=28, W=28).in_features["fc"] == 1352
    report = a.verify(samples=12)
    assert report.ok and report.checked > 50


def test_dict_inputs_are_keywords_and_match_positional():
    by_name = symshape.analyze(ImageMask(), {"mask": (1, "H", "W"), "x": (3, "H", "W")})
    by_position = symshape.analyze(ImageMask(), [(3, "H", "W"), (1, "H", "W")])
    assert by_name.in_features == by_position.in_features
    assert str(by_name.inputs) == "mask (1, H, W), x (3, H, W)"
    assert by_name.verify(samples=6).ok


def test_valid_sizes_with_independent_names_match_torch():
    """Different names per input: torch broadcasts a 1-sized map, so the valid set couples the
    inputs' sizes; every size of a small grid is checked against a real forward."""
    model = ImageMask().eval()
    a = symshape.analyze(model, ((3, "H", "W"), (1, "A", "B")))
    valid = a.valid_sizes()
    for h, w, ah, bw in itertools.product(range(2, 7), repeat=4):
        x, m = torch.rand(1, 3, h, w), torch.rand(1, 1, ah, bw)
        assert valid.contains(H=h, W=w, A=ah, B=bw) == _torch_runs(model, (x, m)), (h, w, ah, bw)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), h2=st.integers(1, 40), w2=st.integers(1, 40))
def test_two_stream_agrees_with_torch(h, w, h2, w2):
    model = TwoStream().eval()
    a = _two_stream_analysis()
    ok, bad = check_sizes(a, {"H": h, "W": w, "H2": h2, "W2": w2})
    assert not bad
    assert ok == _torch_runs(model, (torch.rand(1, 3, h, w),), {"flow": torch.rand(1, 2, h2, w2)})


_CACHE: dict = {}


def _two_stream_analysis():
    if "two" not in _CACHE:
        _CACHE["two"] = symshape.analyze(TwoStream().eval(), (((3, "H", "W"),), {"flow": (2, "H2", "W2")}))
    return _CACHE["two"]


def test_optional_input_left_out_takes_the_default():
    """Given only the first input, ``flow=None`` keeps its default: the branch torch takes."""
    a = symshape.analyze(TwoStream().eval(), (3, "H", "W"))
    assert str(a.in_features["fc"]) == "4*floor((H - 1)/4)*floor((W - 1)/4)"
    fits = a.solve(128)
    assert fits.contains(H=17, W=33) and not fits.contains(H=16, W=33)
    assert _torch_runs(a.model, (torch.rand(1, 3, 17, 33),))
    assert not _torch_runs(a.model, (torch.rand(1, 3, 16, 33),))


def test_encoder_decoder_src_tgt():
    a = symshape.analyze(Seq2Seq(), ((4, "S"), ("T", 8)))
    assert a.output_shape == (a.batch, symshape.dims.size_symbol("T"), 3)
    assert str(a.valid_sizes()) == "S ≥ 5"
    assert a.verify(samples=10).ok


@pytest.mark.slow  # nn.Transformer runs whole under the meta kernels, every branch: 9 s
def test_transformer_src_tgt():
    model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=32, dropout=0.0, batch_first=True).eval()
    a = symshape.analyze(model, (("S", 16), ("T", 16)))
    assert str(a.output_shape) == "(N, T, 16)"
    report = a.verify(samples=6)
    assert report.ok and report.checked > 10


def test_leaf_module_with_three_inputs():
    a = symshape.analyze(nn.MultiheadAttention(16, 4, batch_first=True), (("L", 16), ("S", 16), ("S", 16)))
    assert [str(s) for s in a.output_shape] == ["(N, L, 16)", "(N, L, S)"]
    assert a.verify(samples=6).ok


def test_forward_branching_on_two_inputs_sizes():
    a = symshape.analyze(ResizeMask(), ((3, "H", "W"), (1, "A", "B")))
    report = a.verify(samples=12)
    assert report.ok
    for h, w, ah, bw in [(5, 6, 5, 6), (5, 6, 4, 6), (5, 6, 2, 3)]:
        ok, bad = check_sizes(a, {"H": h, "W": w, "A": ah, "B": bw})
        assert not bad
        assert ok == (w != bw or ah == h)


@pytest.mark.parametrize("spec, says", [
    ({"foo": (3, "H", "W")}, "missing a required argument: 'x'"),
    (((3, "H", "W"), (1, "H", "W"), (1, "H", "W")), "too many positional arguments"),
    ((3, "H", "W"), "missing a required argument: 'mask'"),
    (((3, "H", "W"), 5), "input 1 must be a tuple"),
    ({}, "no input given"),
    ({"x": "3,H,W"}, "input 'x' must be a shape"),
])
def test_inputs_that_do_not_fit_the_forward(spec, says):
    with pytest.raises(InvalidArgument, match="") as e:
        symshape.analyze(ImageMask(), spec)
    assert says in str(e.value)
    assert "forward" in str(e.value) or "input" in str(e.value)


def test_unbatched_multi_input():
    a = symshape.analyze(ImageMask(), ((3, "H", "W"), (1, "H", "W")), batch=None)
    assert not a.batched
    assert str(a.output_shape) == "(10,)" or a.output_shape[-1] == 10
    assert a.verify(samples=4).ok


# -- the command line: --input once per input -----------------------------------------------

MODEL = textwrap.dedent('''
    import torch, torch.nn as nn

    class ImageMask(nn.Module):
        def __init__(self):
            super().__init__()
            self.img = nn.Conv2d(3, 8, 3, stride=2)
            self.msk = nn.Conv2d(1, 8, 3, stride=2)
            self.fc = nn.Linear(8 * 13 * 13, 10)

        def forward(self, x, mask):
            y = self.img(x) * torch.sigmoid(self.msk(mask))
            return self.fc(y.flatten(1))
''')


def _cli(tmp_path, *argv):
    path = tmp_path / "twoin.py"
    path.write_text(MODEL)
    return subprocess.run([sys.executable, "-m", "symshape", argv[0], f"{path}:ImageMask", *argv[1:]],
                          capture_output=True, text=True, cwd=tmp_path)


def test_cli_positional_inputs(tmp_path):
    r = _cli(tmp_path, "formula", "--input", "3,H,W", "--input", "1,H,W")
    assert r.returncode == 0, r.stderr
    assert "inputs 3,H,W; 1,H,W" in r.stdout.splitlines()[0]
    assert "8*floor((H - 1)/2)*floor((W - 1)/2)" in r.stdout


def test_cli_keyword_input_and_numbers(tmp_path):
    r = _cli(tmp_path, "check", "--input", "3,32,32", "--input", "mask=1,32,32")
    assert r.returncode == 1, r.stderr
    assert "1x1800 and 1352x10" in r.stdout
    # the same sizes in both inputs share a name: 1352 is right at 27 or 28, as torch says
    assert "H ∈ {27, 28} and W ∈ {27, 28}" in r.stdout
    model = ImageMask().eval()
    model.fc = nn.Linear(1352, 10)
    assert _torch_runs(model, (torch.rand(1, 3, 28, 27), torch.rand(1, 1, 28, 27)))
    assert not _torch_runs(model, (torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)))


def test_cli_sizes_and_json(tmp_path):
    r = _cli(tmp_path, "sizes", "--input", "x=3,H,W", "--input", "mask=1,H,W", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["inputs"] == [{"name": "x", "shape": [3, "H", "W"]}, {"name": "mask", "shape": [1, "H", "W"]}]
    assert doc["smallest"] == {"H": 27, "W": 27}


@pytest.mark.parametrize("argv, says", [
    (("--input", "mask=1,H,W", "--input", "3,H,W"), "positional inputs come before keyword ones"),
    (("--input", "3,H,W"), "missing a required argument: 'mask'"),
    (("--input", "3,H,W", "--input", "x=1,H,W"), "multiple values for argument 'x'"),
    (("--input", "3,H,W", "--input", "1-x=1,H,W"), "expected name=sizes"),
])
def test_cli_input_errors_are_usage_errors(tmp_path, argv, says):
    r = _cli(tmp_path, "formula", *argv)
    assert r.returncode == 2
    assert says in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_names_number_inputs_consistently():
    from symshape.cli import _named

    assert _named(((3, 224, 224), (1, 224, 224))) == (((3, "H", "W"), (1, "H", "W")), {"H": 224, "W": 224})
    assert _named((((3, 224, 224),), {"flow": (2, 112, 112)})) == (
        (((3, "H", "W"),), {"flow": (2, "H2", "W2")}), {"H": 224, "W": 224, "H2": 112, "W2": 112})
    assert _named({"src": (4, 50), "tgt": (7, 8)}) == ({"src": (4, "L"), "tgt": (7, "L2")}, {"L": 50, "L2": 8})
    assert _named((1, "H", 28)) == ((1, "H", 28), {})


class VarArgs(nn.Module):
    """A forward with ``*rest`` and ``**kwargs`` beside its input, as transformers' models have
    (``forward(pixel_values, ..., **kwargs)``): each extra input is added, each keyword one
    scales; with one input both are empty."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x, *rest, mask=None, **kwargs):
        y = self.conv(x)
        for r in rest:
            y = y + self.conv(r)
        for v in kwargs.values():
            y = y * v.mean()
        if mask is not None:
            y = y * mask
        return y.flatten(1)


@pytest.mark.parametrize("spec, runs_with", [
    ((3, "H", "W"), lambda x: ((x,), {})),
    (((3, "H", "W"),), lambda x: ((x,), {})),
    (((3, "H", "W"), (3, "H", "W")), lambda x: ((x, x), {})),
    ((((3, "H", "W"),), {"extra": (3, "H", "W")}), lambda x: ((x,), {"extra": x})),
])
def test_a_forward_with_star_args_and_star_kwargs(spec, runs_with):
    """A forward's ``*args`` and ``**kwargs`` are what the inputs given bind them to: empty with
    one input (it was refused: "forward takes another input, '**kwargs', without a default"),
    the extra inputs otherwise; the formula agrees with torch."""
    model = VarArgs()
    analysis = symshape.analyze(model, spec)
    for h, w in [(5, 5), (9, 12), (16, 7)]:
        args, kwargs = runs_with(torch.rand(1, 3, h, w))
        out = model(*args, **kwargs)
        assert analysis.at(H=h, W=w).output_shape == tuple(out.shape)
    assert str(analysis.valid_sizes()) == "H ≥ 3 and W ≥ 3"


def _returns_tuple(forward):
    """A decorator as transformers wraps its models' forward (``can_return_tuple``): the
    wrapper takes ``*args, **kwargs`` and reads a keyword of its own."""
    import functools

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        as_tuple = kwargs.pop("return_dict", True) is False
        out = forward(self, *args, **kwargs)
        return tuple(out.values()) if as_tuple else out
    return wrapper


class Decorated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    @_returns_tuple
    def forward(self, pixel_values, output_hidden_states=None, **kwargs):
        y = self.conv(pixel_values)
        return {"last": y, **({"hidden": (pixel_values, y)} if output_hidden_states else {})}


def test_a_decorated_forward_is_called_as_python_calls_it():
    """fx reads the parameters of the function inside a decorator and calls the wrapper with
    them as placeholders: the wrapper's ``kwargs.pop`` failed ("'NoneType' object has no
    attribute ..."). The input is bound by a Python call instead, as for several inputs."""
    model = Decorated()
    a = symshape.analyze(model, (3, "H", "W"))
    for h, w in [(3, 3), (9, 12)]:
        assert a.at(H=h, W=w).output_shape == {"last": tuple(model(torch.rand(1, 3, h, w))["last"].shape)}
    assert str(a.valid_sizes()) == "H ≥ 3 and W ≥ 3"
