"""Refusals that point to the way out (issue 20 point 4): each names the op, the module and the
source line, and suggests a next step that works (tried here); code that was blamed on control
flow or on view/reshape now analyzes, checked against torch."""

from __future__ import annotations

import inspect
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from symshape.errors import ForwardRaises, UnsupportedOperation, UntraceableModel
from oracle import assert_agrees
from test_cli import run

HERE = os.path.abspath(__file__)


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y[y > 0]  # LINE: masked


class Unique(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        k = torch.unique(y.argmax(1))  # LINE: unique
        return y[:, : k.numel()]


class TrainOnlyDrop(nn.Module):
    """Drops samples at random in training: a data-dependent batch, absent in eval."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        if self.training:
            keep = (torch.rand(y.shape[0]) > 0.1).nonzero()  # LINE: train
            y = y[keep[:, 0]]
        return y


class Gate(nn.Module):
    def forward(self, x):
        return x[x.mean((1, 2, 3)) > 0]  # LINE: gate


class Classifier(nn.Module):
    """A conv stack whose head keeps only the confident samples: the stack analyzes alone."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2))
        self.head = Gate()

    def forward(self, x):
        return self.head(self.features(x))


class BufferSlice(nn.Module):
    """Blamed on control flow once: a buffer sliced by the sequence length."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pe", torch.zeros(100, 16))
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        return self.lin(x + self.pe[: x.size(1)])


class IntChannels(nn.Module):
    """Blamed on control flow once: int() of a channel count, which is fixed."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        c = int(y.shape[1])
        return y.reshape(y.shape[0], c, -1).mean(-1)


class PadToMultiple(nn.Module):
    """Blamed on view/reshape once: padding computed with ``/`` (a float) and int()."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x):
        p = (32 - x.shape[-1] % 32) / 2
        return self.conv(F.pad(x, (int(p), int(math.ceil(p)), 0, 0)))


def _line(tag: str) -> int:
    with open(HERE, encoding="utf-8") as fh:
        return next(i for i, line in enumerate(fh, 1) if f"# LINE: {tag}" in line)


@pytest.mark.parametrize("model, op, cls, tag", [
    (Masked(), "operator.getitem", "Masked", "masked"),
    (Unique(), "torch.unique", "Unique", "unique"),
    (Classifier(), "operator.getitem", "Gate", "gate"),
])
def test_a_refusal_names_the_op_the_module_and_the_line(model, op, cls, tag):
    with pytest.raises(UnsupportedOperation) as info:
        symshape.analyze(model, (3, "H", "W"))
    e, text = info.value, str(info.value)
    assert e.op == op and e.module == cls
    assert f"{op}" in text and f" in {cls})" in text
    assert f"at {HERE}:{_line(tag)}: " in text
    assert "depends on the tensor's values" in text
    assert "%" not in text and "call_function" not in text  # no fx node dump


def test_the_suggested_part_analyzes_and_agrees_with_torch():
    with pytest.raises(UnsupportedOperation) as info:
        symshape.analyze(Classifier(), (3, "H", "W"))
    text = str(info.value)
    assert "model.features analyzes on its own: symshape.analyze(model.features, (3, 'H', 'W'))" in text
    assert "@symshape.module_rule(Gate)" in text
    assert assert_agrees(Classifier().features, (3, "H", "W"), [{"H": h, "W": h} for h in (3, 5, 6, 7, 8, 30)]) == 3


def test_a_training_only_path_suggests_eval_which_works():
    model = TrainOnlyDrop()
    with pytest.raises(UnsupportedOperation) as info:
        symshape.analyze(model, (3, "H", "W"))
    text = str(info.value)
    assert f"at {HERE}:{_line('train')}: " in text
    assert "call model.eval() first" in text
    assert model.training  # the suggestion was tried on a copy: the model keeps its mode
    assert_agrees(model.eval(), (3, "H", "W"), [{"H": 2, "W": 5}, {"H": 3, "W": 3}, {"H": 9, "W": 4}])


def test_untraceable_code_gets_the_line_and_specific_steps():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            x = self.stem(x)
            while x.shape[-1] > 4:  # a loop on a size, run whole: refused by the meta kernel
                x = torch.nonzero(x).float()[None, None]
            return x

    with pytest.raises((UntraceableModel, UnsupportedOperation)) as info:
        symshape.analyze(Branchy(), (3, "H", "W"))
    text = str(info.value)
    assert "what you can do:" in text and "model.stem analyzes on its own" in text


class Decoder(nn.Module):
    """An encoder-decoder's half that needs its own input (transformers' seq2seq decoders)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, target=None, memory=None):
        if target is None:
            raise ValueError("You have to specify target")
        return self.proj(target) + memory.mean(1, keepdim=True)


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(8, 8), Decoder()

    def forward(self, source, target=None):
        return self.decoder(target, self.encoder(source))


def test_a_call_the_model_refuses_is_said_so_with_the_inputs_it_takes():
    """The trace stops where the model's own code raises, and torch's forward raises the same:
    not a control-flow problem of the trace, but a call the model refuses (its target missing)."""
    model = EncoderDecoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ForwardRaises) as info:
        symshape.analyze(model, ("S", 8))
    e = info.value
    assert isinstance(e, UntraceableModel) and e.module_path == "decoder"
    assert "ValueError: You have to specify target" in e.reason
    assert e.torch_raises == "at S = 64 and at S = 224, on a meta-device copy of the model"
    text = str(e)
    assert text.startswith("the forward of Decoder at 'decoder' raises ValueError: You have to specify target")
    assert "torch's own forward raises the same" in text and "control flow" not in text
    assert "EncoderDecoder's forward takes source, target; this call gives source" in text
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="specify target"):  # torch itself: the call is refused
        model(torch.rand(1, 5, 8))
    # given the input it needs, the model analyzes, and agrees with torch
    assert assert_agrees(model, ((("S", 8), ("T", 8))), [{"S": 1, "T": 3}, {"S": 7, "T": 2}]) == 2


def test_a_raise_torch_does_not_make_keeps_the_tracing_hint():
    """Code that raises only under the trace (it asks for a real tensor) is symshape's to say."""
    class Picky(nn.Module):
        def forward(self, x):
            if type(x) is not torch.Tensor:
                raise TypeError("a plain tensor, please")
            return x.flatten(1)

    with pytest.raises(UntraceableModel) as info:
        symshape.analyze(Picky(), (3, "H", "W"))
    assert not isinstance(info.value, ForwardRaises)
    assert "symshape follows forward with torch.fx" in str(info.value)


def test_cli_says_the_model_refuses_the_call(tmp_path, capsys):
    path = tmp_path / "ed.py"
    path.write_text("import torch.nn as nn\n\n\n" + inspect.getsource(Decoder) + "\n\n"
                    + inspect.getsource(EncoderDecoder))
    code, _, err = run(capsys, "formula", f"{path}:EncoderDecoder", "--input", "S,8")
    assert code == 2
    assert "raises ValueError: You have to specify target" in err and "torch's own forward raises the same" in err


@pytest.mark.parametrize("model, shape, sizes", [
    (BufferSlice(), ("L", 16), [{"L": 1}, {"L": 100}, {"L": 101}]),
    (IntChannels(), (3, "H", "W"), [{"H": 3, "W": 3}, {"H": 2, "W": 9}, {"H": 5, "W": 4}]),
    (PadToMultiple(), (3, "H", "W"), [{"H": h, "W": w} for h in (3, 4, 31) for w in (1, 2, 31, 32, 33, 63, 64, 65)]),
])
def test_code_once_blamed_on_control_flow_or_views_now_analyzes(model, shape, sizes):
    assert assert_agrees(model, shape, sizes) >= 2


def test_cli_shows_the_node_only_with_debug(tmp_path, capsys):
    path = tmp_path / "m.py"
    path.write_text("import torch.nn as nn\n\nclass M(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
                    "    def forward(self, x):\n        y = self.conv(x)\n        return y[y > 0]\n")
    code, out, err = run(capsys, "formula", f"{path}:M", "--input", "3,H,W")
    assert code == 2
    assert f"at {path}:10: return y[y > 0]" in err and "what you can do:" in err
    assert "call_function" not in err
    code, out, err = run(capsys, "formula", f"{path}:M", "--input", "3,H,W", "--debug")
    assert code == 2 and "call_function" in err


def test_cli_analyzes_the_suggested_submodule(tmp_path, capsys):
    path = tmp_path / "c.py"
    path.write_text(open(HERE, encoding="utf-8").read())
    code, out, _ = run(capsys, "formula", f"{path}:Classifier.features", "--input", "3,H,W")
    assert code == 0 and "(N, 8, floor((H - 3)/4), floor((W - 3)/4))" in out
    code, _, err = run(capsys, "formula", f"{path}:Classifier.nope", "--input", "3,H,W")
    assert code == 2 and "has no submodule 'nope'; its children: features, head" in err


def test_refusal_through_the_console_script(tmp_path):
    """The installed command: exit 2, the first line ``symshape formula: error: …``, then the
    source line and what you can do, each indented; no traceback."""
    import subprocess
    import sys

    import inspect

    path = tmp_path / "c.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n\n" + inspect.getsource(Gate) + "\n\n"
                    + inspect.getsource(Classifier))
    r = subprocess.run([sys.executable, "-m", "symshape", "formula", f"{path}:Classifier", "--input", "3,H,W"],
                       capture_output=True, text=True, cwd=tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert lines[0].startswith("symshape formula: error: operator.getitem cannot be analyzed")
    assert lines[1] == f"  at {path}:7: return x[x.mean((1, 2, 3)) > 0]  # LINE: gate"
    assert "what you can do:" in lines and any("MODEL.features" in line for line in lines)
    r = subprocess.run([sys.executable, "-m", "symshape", "formula", f"{path}:Classifier.features", "--input",
                        "3,H,W"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "(N, 8, floor((H - 3)/4), floor((W - 3)/4))" in r.stdout
