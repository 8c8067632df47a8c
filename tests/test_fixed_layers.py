"""Every layer whose parameters fix an input size (issue: "Every in_features question"), and
unbatched calls: each checked against real torch forwards.

A fixed layer is a Linear, and any consumer whose parameters fix the size reaching it:
``F.linear(x, self.w)``, ``x @ self.W``, ``torch.addmm``/``torch.mm`` with a parameter,
``nn.Bilinear``/``F.bilinear``, an RNN/GRU/LSTM's input_size, MultiheadAttention's embed_dim,
LayerNorm's normalized_shape, a TransformerEncoderLayer's d_model, and a conv's in_channels where
it depends on the input size. For each: its formula, ``check()`` (torch's own error, word for
word), ``solve(layer=...)``, ``explain()``'s row, and the CLI (``--fix`` where a literal sets it).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from symshape.errors import InvalidArgument

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Features(nn.Module):
    """A conv (stride 2), flattened per sample to ``8*floor((H-1)/2)*floor((W-1)/2)`` features
    (``tail="flat"``), or to a sequence ``(N, W', 8*H')`` (``tail="seq"``), then ``head``."""

    def __init__(self, head: str, declared: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2)
        self.head_kind = head
        d = declared
        if head == "F.linear":
            self.w = nn.Parameter(torch.randn(4, d))
            self.b = nn.Parameter(torch.zeros(4))
        elif head == "matmul":
            self.W = nn.Parameter(torch.randn(d, 4))
        elif head in ("addmm", "mm"):
            self.W = nn.Parameter(torch.randn(d, 4))
            self.b = nn.Parameter(torch.zeros(4))
        elif head == "Bilinear":
            self.head = nn.Bilinear(d, 3, 2)
        elif head == "F.bilinear":
            self.head = nn.Bilinear(d, 3, 2)
        elif head in ("GRU", "LSTM", "RNN"):
            self.head = getattr(nn, head)(d, 5, batch_first=True)
        elif head == "MultiheadAttention":
            self.head = nn.MultiheadAttention(d, 1, batch_first=True)
        elif head == "LayerNorm":
            self.head = nn.LayerNorm(d)
        elif head == "TransformerEncoderLayer":
            self.head = nn.TransformerEncoderLayer(d, 1, dim_feedforward=8, batch_first=True, dropout=0.0)
        elif head == "Conv1d":
            self.head = nn.Conv1d(d, 4, 1)
        else:
            raise ValueError(head)

    def forward(self, x):
        x = self.conv(x)
        if self.head_kind in ("GRU", "LSTM", "RNN", "MultiheadAttention", "LayerNorm", "TransformerEncoderLayer"):
            b, c, h, w = x.shape
            seq = x.permute(0, 3, 1, 2).reshape(b, w, c * h)  # the CRNN idiom: columns as time steps
            if self.head_kind == "MultiheadAttention":
                return self.head(seq, seq, seq)[0]
            out = self.head(seq)
            return out[0] if isinstance(out, tuple) else out
        if self.head_kind == "Conv1d":
            b, c, h, w = x.shape
            return self.head(x.reshape(b, c * h, w))
        flat = x.flatten(1)
        if self.head_kind == "F.linear":
            return F.linear(flat, self.w, self.b)
        if self.head_kind == "matmul":
            return flat @ self.W
        if self.head_kind == "mm":
            return torch.mm(flat, self.W)
        if self.head_kind == "addmm":
            return torch.addmm(self.b, flat, self.W)
        other = x.sum((2, 3))[:, :3]
        if self.head_kind == "F.bilinear":
            return F.bilinear(flat, other, self.head.weight, self.head.bias)
        return self.head(flat, other)


#: head -> (the parameter check() names, whether the size is H's (sequence heads) or H and W's)
HEADS = {
    "F.linear": "w.shape[1]", "matmul": "W.shape[0]", "mm": "W.shape[0]", "addmm": "W.shape[0]",
    "Bilinear": "in1_features", "F.bilinear": "shape[1]", "GRU": "input_size", "LSTM": "input_size",
    "RNN": "input_size", "MultiheadAttention": "embed_dim", "LayerNorm": "normalized_shape",
    "TransformerEncoderLayer": "d_model", "Conv1d": "in_channels",
}
SEQUENCE = {"GRU", "LSTM", "RNN", "MultiheadAttention", "LayerNorm", "TransformerEncoderLayer", "Conv1d"}


def _reaching(head: str, h: int, w: int) -> int:
    """What reaches the head, by hand: 8 channels of floor((H-1)/2) x floor((W-1)/2)."""
    hh, ww = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    return 8 * hh if head in SEQUENCE else 8 * hh * ww


def _torch_error(model: nn.Module, h: int, w: int) -> str | None:
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, h, w))
    except Exception as e:  # noqa: BLE001 - torch's error, whatever its class
        return str(e).strip().splitlines()[0]
    return None


@pytest.mark.parametrize("head", sorted(HEADS))
def test_each_fixed_layer_is_found_checked_and_solved_against_torch(head):
    declared = 48 if head in SEQUENCE else 8 * 6 * 6  # right at H in {13, 14} (and W in {13, 14})
    model = Features(head, declared).eval()
    a = symshape.analyze(model, (1, "H", "W"))
    key = next(k for k, f in a.fixed.items() if f.parameter.endswith(HEADS[head]))
    fixed = a.fixed[key]
    assert fixed.declared == declared
    assert a.formula(key)(H=13, W=13) == declared
    # wrong at 32x40: check() says so with torch's own words; right at 13x13: torch runs
    for h, w in [(32, 40), (13, 13), (14, 13), (15, 16), (7, 9)]:
        error = _torch_error(model, h, w)
        report = a.check(H=h, W=w)
        assert a.evaluate(H=h, W=w).in_features[key] == _reaching(head, h, w)
        if _reaching(head, h, w) == declared:
            assert error is None and report.ok, (h, w, error, report)
        else:
            assert error is not None and not report.ok
            finding = next(f for f in report.findings if f.layer == key)
            assert finding.error == error, (finding.error, error)
            assert finding.value == _reaching(head, h, w)
    # solve(layer=...) gives exactly the sizes at which torch runs, on a grid
    sizes = a.solve(declared, layer=key)
    for h in range(3, 20):
        for w in (3, 13, 14, 18):
            ok = _torch_error(model, h, w) is None
            assert ({"H": h, "W": w} in sizes) == ok, (h, w)
    # explain() writes the layer's row with its parameter
    text = a.explain(H=32, W=40)
    assert f"{fixed.parameter} = {_reaching(head, 32, 40)}, which does NOT match the declared {declared}" in text


def test_attention_between_activations_is_not_a_fixed_layer():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24)

        def forward(self, x):
            q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).chunk(3, -1)
            return (q @ k.transpose(1, 2)).softmax(-1) @ v

    a = symshape.analyze(nn.Sequential(nn.Conv2d(3, 8, 3), Attention()), (3, "H", "W"))
    assert list(a.in_features) == ["1.qkv"]


def test_a_conv_whose_channels_do_not_depend_on_the_size_is_not_listed():
    a = symshape.analyze(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3)), (3, "H", "W"))
    assert a.in_features == {} and a.check().ok


@settings(max_examples=25, deadline=None)
@given(head=st.sampled_from(sorted(HEADS)), declared=st.integers(1, 200), h=st.integers(3, 40),
       w=st.integers(3, 40))
def test_random_heads_and_sizes_agree_with_torch(head, declared, h, w):
    if head == "MultiheadAttention" and declared == 0:
        return
    model = Features(head, declared).eval()
    report = symshape.analyze(model, (1, "H", "W"), prove=False).check(H=h, W=w)
    error = _torch_error(model, h, w)
    assert report.ok == (error is None), (head, declared, h, w, error, report)
    if error is not None:
        assert report.findings[0].error == error


def test_check_fix_rewrites_a_gru_input_size_and_a_parameter_shape(tmp_path):
    source = (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        "class CRNN(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 16, 3, stride=2)\n"
        "        self.rnn = nn.GRU(100, 32, batch_first=True)\n"
        "        self.fc = nn.Linear(32, 10)\n\n"
        "    def forward(self, x):\n"
        "        x = self.conv(x)\n"
        "        b, c, h, w = x.shape\n"
        "        y, _ = self.rnn(x.permute(0, 3, 1, 2).reshape(b, w, c * h))\n"
        "        return self.fc(y[:, -1])\n\n\n"
        "class Maml(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.c = nn.Conv2d(1, 32, 3, padding=1)\n"
        "        self.w = nn.Parameter(torch.randn(5, 800))\n\n"
        "    def forward(self, x):\n"
        "        return F.linear(F.max_pool2d(F.relu(self.c(x)), 2).flatten(1), self.w)\n\n\n"
        "class Computed(nn.Module):\n"
        "    def __init__(self, n=800, m=5):\n"
        "        super().__init__()\n"
        "        self.c = nn.Conv2d(1, 8, 3)\n"
        "        self.W = nn.Parameter(torch.zeros(n, m))\n"
        "        self.b = nn.Parameter(torch.zeros(n))\n\n"
        "    def forward(self, x):\n"
        "        return self.c(x).flatten(1) @ self.W\n\n\n"
        "class Defaulted(nn.Module):\n"
        "    def __init__(self, n=800):\n"
        "        super().__init__()\n"
        "        self.c = nn.Conv2d(1, 8, 3)\n"
        "        self.W = nn.Parameter(torch.zeros(n, 5))\n\n"
        "    def forward(self, x):\n"
        "        return torch.addmm(torch.zeros(5), self.c(x).flatten(1), self.W)\n"
    )
    path = tmp_path / "nets.py"
    path.write_text(source)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "symshape", *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT})

    out = cli("check", "nets.py:Maml", "--input", "1,28,28")
    assert out.returncode == 1, out.stderr
    assert "linear: w.shape[1] is 800, but 6272 reach it" in out.stdout
    assert "torch would raise: mat1 and mat2 shapes cannot be multiplied (1x6272 and 800x5)" in out.stdout
    assert "fix: give w the shape (5, 6272)" in out.stdout
    out = cli("check", "nets.py:Computed", "--input", "1,14,14", "--fix")
    assert out.returncode == 1, out.stdout + out.stderr
    assert ("not fixed: matmul: W.shape[0] comes from the parameter n (line 34), which is used for more than "
            "this layer: set it to 1152 where it is defined") in out.stdout
    assert path.read_text() == source
    out = cli("check", "nets.py:Maml", "--input", "1,28,28", "--fix")
    assert out.returncode == 0, out.stdout + out.stderr
    source = source.replace("torch.randn(5, 800)", "torch.randn(5, 6272)")
    assert path.read_text() == source
    out = cli("check", "nets.py:Defaulted", "--input", "1,14,14", "--fix")
    assert out.returncode == 0, out.stdout + out.stderr
    source = source.replace("class Defaulted(nn.Module):\n    def __init__(self, n=800)",
                            "class Defaulted(nn.Module):\n    def __init__(self, n=1152)")
    assert path.read_text() == source
    out = cli("solve", "nets.py:CRNN", "--input", "1,H,W", "--layer", "rnn", "--flat", "240")
    assert out.returncode == 0 and "H ∈ {31, 32}" in out.stdout, out.stdout + out.stderr
    out = cli("check", "nets.py:CRNN", "--input", "1,32,100", "--fix")
    assert out.returncode == 0, out.stdout + out.stderr
    assert path.read_text() == source.replace("nn.GRU(100, 32", "nn.GRU(240, 32")
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        nets = importlib.import_module("nets")
        importlib.reload(nets)
        nets.CRNN()(torch.zeros(1, 1, 32, 100))  # the fixed file runs in torch
        nets.Maml()(torch.zeros(1, 1, 28, 28))
        nets.Defaulted()(torch.zeros(1, 1, 14, 14))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)


# -- unbatched calls ----------------------------------------------------------------------------


class TinyVGG(nn.Module):
    def __init__(self, flatten_from: int = 1):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(10, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(flatten_from), nn.Linear(490, 10))

    def forward(self, x):
        return self.classifier(self.block(x))


def test_an_unbatched_call_is_analyzed_as_given_and_agrees_with_torch():
    model = TinyVGG()
    a = symshape.analyze(model, (1, 28, 28), batch=None)
    assert not a.batched and a.in_features == {"classifier.1": 49}
    with pytest.raises(RuntimeError) as e:
        model(torch.zeros(1, 28, 28))
    report = a.check()
    assert not report.ok and report.findings[0].error == str(e.value)
    b = symshape.analyze(model, (1, "H", "W"), batch=None)
    assert b.verify(samples=12).ok
    unbatched_ok = symshape.analyze(TinyVGG(flatten_from=0), (1, "H", "W"), batch=None)
    assert unbatched_ok.check(H=28, W=28).ok
    TinyVGG(flatten_from=0)(torch.zeros(1, 28, 28))
    assert unbatched_ok.verify(samples=12).ok


def test_check_warns_where_an_unbatched_call_merges_dims_differently():
    report = symshape.analyze(TinyVGG(), (1, "H", "W")).check(H=28, W=28)
    assert report.ok and len(report.warnings) == 1
    warning = report.warnings[0]
    assert "(classifier.0, nn.Flatten, merges other dims)" in warning
    assert "model(x) with x.shape == (1, 28, 28) gives classifier.1 in_features 49, not 490" in warning
    assert "mat1 and mat2 shapes cannot be multiplied (10x49 and 490x10)" in warning
    assert "model(x.unsqueeze(0))" in warning and "nn.Flatten(0)" in warning
    assert report.to_json()["warnings"] == [warning]
    # a model whose unbatched call reaches its Linear alike: no warning
    pooled = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(0), nn.Linear(4, 2))
    assert symshape.analyze(pooled, (1, "H", "W"), batch=None).check(H=9, W=9).ok
    # a model that cannot be called unbatched at all (BatchNorm2d wants 4D): nothing to warn about
    bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    assert symshape.analyze(bn.eval(), (1, "H", "W")).check(H=9, W=9).warnings == []


def test_batch_argument_is_validated():
    with pytest.raises(InvalidArgument, match="batch must be 'N'"):
        symshape.analyze(TinyVGG(), (1, "H", "W"), batch="B")
    with pytest.raises(InvalidArgument, match="0-dim"):
        symshape.analyze(nn.Identity(), (), batch=None)


def test_cli_no_batch(tmp_path):
    path = tmp_path / "vgg.py"
    path.write_text("import torch.nn as nn\n\n\n"
                    "class TinyVGG(nn.Module):\n"
                    "    def __init__(self):\n"
                    "        super().__init__()\n"
                    "        self.block = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
                    "                                   nn.Conv2d(10, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
                    "        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(490, 10))\n\n"
                    "    def forward(self, x):\n"
                    "        return self.classifier(self.block(x))\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "symshape", *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT})

    out = cli("check", "vgg.py:TinyVGG", "--input", "1,28,28")
    assert out.returncode == 0 and "note: unbatched, model(x) with x.shape == (1, 28, 28)" in out.stdout
    out = cli("check", "vgg.py:TinyVGG", "--input", "1,28,28", "--no-batch")
    assert out.returncode == 1
    assert "mat1 and mat2 shapes cannot be multiplied (10x49 and 490x10)" in out.stdout
    out = cli("formula", "vgg.py:TinyVGG", "--input", "1,H,W", "--no-batch")
    assert out.returncode == 0 and "floor(H/4)*floor(W/4)" in out.stdout
    out = cli("verify", "vgg.py:TinyVGG", "--input", "1,H,W", "--no-batch", "--samples", "6")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_module_called_twice_is_checked_at_the_call_that_is_wrong():
    """The same conv stack applied twice: the first call fits, the second gets 8 channels for
    3. The fixed size belongs to the second call, and the proof compares it there (it once
    compared it with the first call's input and refused a correct trace)."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())

        def forward(self, x):
            return self.f(self.f(x))

    a = symshape.analyze(Twice(), (3, "H", "W"))
    assert a.fixed["f.0"].call == 1 and a.in_features["f.0"] == 8
    report = a.check(H=10, W=10)
    assert [f.layer for f in report.findings] == ["f.0"]
    with pytest.raises(RuntimeError, match="expected input.* to have 3 channels, but got 8"):
        Twice()(torch.rand(1, 3, 10, 10))
    assert a.verify(samples=4).ok
