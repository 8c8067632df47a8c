"""The idioms of the most-copied model files (issue 15, point 3), each compared with torch.

pytorch-UNet's computed F.pad, a pooling kernel taken from a size, chunk then view, a causal mask
buffer sliced by the sequence length, int() of a fixed channel count times 0.5, dynamic 'same'
padding with math.ceil and max, random tensors of the input's size, and tensor attributes that do
not depend on sizes (is_cuda, .data, device, dtype, in a training-only path too).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid

class UNetUp(nn.Module):
    """pytorch-UNet's Up: pad x1 to x2's size with amounts computed from sizes."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.down = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        x2 = x
        x1 = self.up(self.down(x))
        dy = x2.size(2) - x1.size(2)
        dx = x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class GlobalPoolBySize(nn.Module):
    def forward(self, x):
        x = F.avg_pool2d(x, x.size(2))
        return x.view(x.size(0), -1)


class GlobalPool1d(nn.Module):
    def forward(self, x):
        return F.avg_pool1d(x, x.shape[-1]).squeeze(-1)


class SplitThenView(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return a.view(a.size(0), -1) + b.reshape(b.size(0), -1)


class MaskSlice(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16))

    def forward(self, x):  # (N, T, C)
        T = x.size(1)
        att = x @ x.transpose(1, 2)
        att = att.unsqueeze(1).masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        return att


class IntOfChannels(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        half = int(x.size(1) * 0.5)
        return self.conv(x[:, :half * 2])


class DynamicSamePad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        kh, kw = 3, 3
        sh, sw = 2, 2
        oh, ow = math.ceil(ih / sh), math.ceil(iw / sw)
        pad_h = max((oh - 1) * sh + kh - ih, 0)
        pad_w = max((ow - 1) * sw + kw - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return self.conv(x)


class Noise(nn.Module):
    def forward(self, x):
        return x + torch.randn_like(x) + torch.rand(x.size(0), 1, x.size(2), x.size(3))


class Attrs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.is_cuda:
            x = x.float()
        y = self.conv(x.data)
        if self.training:
            y = y * torch.ones(1, device=y.device, dtype=y.dtype)
        return y


class Factories(nn.Module):
    """torch's factories called with traced sizes (fx alone stops at ``torch.zeros(x.size(0), ...)``:
    torch's argument parser rejects a Proxy before anything could record the call)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        x = self.conv(x)
        n, c, h, w = x.shape
        pad = torch.zeros(n, 1, h, w)
        grid = torch.ones(h, w) + torch.arange(w) + torch.linspace(0, 1, h).unsqueeze(1)
        scale = torch.full((n, 1, h, 1), 2.0) * torch.randn(n, 1, 1, w) + torch.eye(h, w)
        return torch.cat([x, pad], 1) * grid * scale + torch.empty((n, c + 1, h, w)).zero_()


class NumpySizeCheck(nn.Module):
    """MONAI's SwinUNETR: the input's sizes checked with numpy before anything runs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)

    def forward(self, x):
        import numpy as np

        remainder = (np.array(x.shape[2:]) % np.power(2, 2)) > 0
        if remainder.any():
            raise ValueError(f"spatial dimensions of {x.shape[2:]} must be divisible by 4")
        return self.conv(x)


class AsTensor(nn.Module):
    """MONAI's HighResNet: ``x + torch.as_tensor(f(x))`` (once a crash of the process)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return x + torch.as_tensor(self.conv(x)) * torch.tensor(x.shape[-1] / 2)


class RecurrentWithVariable(nn.Module):
    """The hidden state of a model file written for torch before 0.4:
    ``Variable(torch.zeros(layers, x.size(0), hidden))`` (once a crash of the process)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 5, stride=2)
        self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        from torch.autograd import Variable

        x = self.conv(x).transpose(1, 2)
        h0 = Variable(torch.zeros(2, x.size(0), 16))
        c0 = torch.autograd.Variable(torch.zeros(2, x.size(0), 16), requires_grad=False)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1, :])


class LegacyOfATensor(nn.Module):
    """torch's legacy constructors given a traced tensor, inside a block (``torch.Tensor(y)``,
    ``torch.FloatTensor(y)``, ``nn.Parameter(y)``): once a crash of the process; the block now
    runs whole on torch's meta kernels, the rest is traced."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)

        def forward(self, x):
            y = self.conv(x)
            return torch.Tensor(y) + torch.FloatTensor(y) + nn.Parameter(y, requires_grad=False)

    def __init__(self):
        super().__init__()
        self.block = self.Block()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(self.block(x)).flatten(1)


IDIOMS = [
    pytest.param(Factories, (3, "H", "W"), ["H", "W"], id="factories-with-traced-sizes"),
    pytest.param(UNetUp, (4, "H", "W"), ["H", "W"], id="unet-computed-pad"),
    pytest.param(GlobalPoolBySize, (3, "H", "H"), ["H"], id="avg-pool-kernel-from-size"),
    pytest.param(GlobalPool1d, (3, "L"), ["L"], id="avg-pool1d-kernel-from-shape"),
    pytest.param(SplitThenView, (4, "H", "W"), ["H", "W"], id="chunk-then-view"),
    pytest.param(MaskSlice, ("T", 8), ["T"], id="mask-buffer-sliced-by-size"),
    pytest.param(IntOfChannels, (8, "H", "W"), ["H", "W"], id="int-of-channels-times-half"),
    pytest.param(DynamicSamePad, (3, "H", "W"), ["H", "W"], id="dynamic-same-padding"),
    pytest.param(Noise, (3, "H", "W"), ["H", "W"], id="randn-like-and-rand"),
    pytest.param(Attrs, (3, "H", "W"), ["H", "W"], id="tensor-attributes"),
    pytest.param(NumpySizeCheck, (3, "H", "W"), ["H", "W"], id="numpy-size-check"),
    pytest.param(AsTensor, (3, "H", "W"), ["H", "W"], id="as-tensor-of-a-traced-tensor"),
    pytest.param(RecurrentWithVariable, (3, "L"), ["L"], id="variable-of-a-traced-tensor"),
    pytest.param(LegacyOfATensor, (3, "H", "W"), ["H", "W"], id="legacy-constructor-of-a-traced-tensor"),
]


@pytest.mark.parametrize("make,shape,names", IDIOMS)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_idiom_analyzes_exactly(make, shape, names, training):
    model = make().train(training)
    values = [1, 2, 3, 5, 8, 16, 17] if len(names) == 1 else [1, 2, 3, 8, 9]
    assert assert_agrees(model, shape, grid(names, values)) >= 1


def test_the_idioms_answers_read_as_a_user_expects():
    assert str(symshape.analyze(DynamicSamePad(), (3, "H", "W")).output_shape) == \
        "(N, 4, floor((H + 1)/2), floor((W + 1)/2))"
    assert str(symshape.analyze(MaskSlice(), ("T", 8)).valid_sizes()) == "T ∈ [1, 16]"
    assert str(symshape.analyze(UNetUp(), (4, "H", "W")).valid_sizes()) == "H ≥ 2 and W ≥ 2"


def test_numpy_of_sizes_is_python_on_each_size_and_of_a_tensor_is_refused_by_name():
    """numpy holds a traced size as a Python object (each of its ops is the size's own): the
    SwinUNETR check is a requirement; a traced tensor given to numpy is refused, naming numpy."""
    assert str(symshape.analyze(NumpySizeCheck(), (3, "H", "W")).valid_sizes()) == \
        "H ≥ 4, H ≡ 0 (mod 4) and W ≥ 4, W ≡ 0 (mod 4)"

    class ToNumpy(nn.Module):
        def forward(self, x):
            import numpy as np

            return torch.from_numpy(np.asarray(x) * 2)

    with pytest.raises(symshape.UntraceableModel, match="numpy of a traced tensor"):
        symshape.analyze(ToNumpy(), (3, "H", "W"))


def test_variable_of_a_traced_tensor_is_its_detach_and_torch_is_left_as_it_was():
    """``Variable(t)`` is ``t.detach()`` in torch: one step of the graph, every layer after it
    traced; the stand-in torch's Variable had while tracing is gone afterwards."""
    a = symshape.analyze(RecurrentWithVariable(), (3, "L"))
    assert [s.op for s in a.steps].count("Tensor.detach") == 2
    assert str(a.in_features["fc"]) == "16" and str(a.valid_sizes()) == "L ≥ 5"
    assert "__new__" not in vars(torch.autograd.Variable)
    assert torch.autograd.Variable(torch.ones(2), requires_grad=True).requires_grad


def test_a_legacy_constructor_of_a_traced_tensor_never_crashes_the_process():
    """Each constructor in a fresh process (a crash would end this one): the model analyzes,
    its block run whole, or is refused naming the constructor, never a signal."""
    import subprocess
    import sys

    script = (
        "import torch, torch.nn as nn, symshape\n"
        "for make in (lambda x: torch.Tensor(x), lambda x: torch.FloatTensor(x), lambda x: torch.Tensor(x.detach()),\n"
        "             lambda x: torch.Tensor._make_subclass(torch.Tensor, x), lambda x: nn.Parameter(x)):\n"
        "    class M(nn.Module):\n"
        "        def forward(self, x):\n"
        "            return make(x).flatten(1)\n"
        "    try:\n"
        "        print(symshape.analyze(M(), (3, 'H', 'W')).output_shape)\n"
        "    except symshape.SymshapeError as e:\n"
        "        print('refused', 'legacy constructor' in str(e))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:-1] == ["(N, 3*H*W)"] * 5


def test_a_legacy_constructor_of_a_list_of_sizes_is_refused_naming_it():
    """``torch.Tensor([x.size(2)])``: the constructor asks each item whether it is a sequence,
    which fx answered with "'len' is not supported"; now the refusal names the constructor and
    what to write instead (``torch.tensor([...])``, which symshape follows)."""

    class Legacy(nn.Module):
        def forward(self, x):
            return x.flatten(1) * torch.Tensor([x.size(2)])

    class Written(nn.Module):
        def forward(self, x):
            return x.flatten(1) * torch.tensor([x.size(2)])

    with pytest.raises(symshape.UntraceableModel, match=r"Tensor\(\[\.\.\.\]\) of a traced size.*torch\.tensor"):
        symshape.analyze(Legacy(), (3, "H", "W"))
    assert assert_agrees(Written(), (3, "H", "W"), grid(["H", "W"], [1, 4, 7])) == 9


def test_callee_names_what_the_call_instruction_calls():
    import sys

    from symshape import callsite

    seen = []

    class Probe:
        def __call__(self, *args, **kwargs):
            seen.append(callsite.callee(sys._getframe(1)))

    Tensor = FloatTensor = Variable = Probe()
    ns = type("ns", (), {"Tensor": Tensor, "FloatTensor": FloatTensor})
    x = [1, 2]
    Tensor(x)
    ns.FloatTensor(x[0], len(x))
    Variable(x, requires_grad=False)
    ns.Tensor(*x)
    Tensor(x if x else None)  # a conditional among the arguments: not read
    assert seen == ["Tensor", "FloatTensor", "Variable", "Tensor", None]


def test_a_kernel_from_the_size_over_another_dim_is_refused_by_name():
    """F.avg_pool2d(x, x.size(2)) on a non-square input: floor(W/H) columns, which symshape does
    not model (a division by a size): refused, naming it."""
    with pytest.raises(symshape.UnsupportedOperation, match="kernel size H over a dim of size W"):
        symshape.analyze(GlobalPoolBySize(), (3, "H", "W"))


def test_factories_with_traced_sizes_are_ops_of_the_graph_and_torch_is_left_as_it_was():
    before = {name: getattr(torch, name) for name in ("zeros", "ones", "arange", "full", "eye")}
    a = symshape.analyze(Factories(), (3, "H", "W"))
    assert {"torch.zeros", "torch.ones", "torch.arange", "torch.full", "torch.eye"} <= {s.op for s in a.steps}
    assert str(a.output_shape) == "(N, 5, floor((H - 1)/2), floor((W - 1)/2))"
    assert {name: getattr(torch, name) for name in before} == before
    assert torch.zeros(2, 3).shape == (2, 3)


class ByKeyword(nn.Module):
    """Layers called with their input by keyword (``self.lin(input=x)``), as some model files
    write them: the same layers as ``self.lin(x)``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.lin = nn.Linear(2 * 6 * 6, 5)
        self.norm = nn.LayerNorm(5)

    def forward(self, x):
        x = self.conv(input=x).flatten(1)
        return self.norm(input=self.lin(input=x))


def test_a_layer_called_with_its_input_by_keyword_is_the_same_layer():
    an = symshape.analyze(ByKeyword(), (1, "H", "W"))
    assert str(an.in_features["lin"]) == "2*(H - 2)*(W - 2)"
    assert [s.rule for s in an.steps if s.name in ("conv", "lin", "norm")] == ["conv", "linear", "layer_norm"]
    assert "H = 8 and W = 8" in str(an.valid_sizes())  # (H - 2)*(W - 2) == 36
    assert_agrees(ByKeyword(), (1, "H", "W"), grid(["H", "W"], [2, 3, 8, 9]))


class PositionCache(nn.Module):
    """ConViT's GPSA: a buffer recomputed in the forward when the token count changes
    (``self.rel = ...``: a new tensor under the name of a registered buffer, through
    ``nn.Module.__setattr__``'s ``isinstance(value, Parameter)``), then read back."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rel", torch.zeros(1, 1, 3), persistent=False)

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)  # (N, H*W, 3)
        n = x.shape[1]
        if self.rel.shape[1] != n:
            self.rel = torch.zeros(1, n, 3).to(dtype=x.dtype)
        return torch.cat([x, self.rel.expand(x.shape[0], -1, -1)], 2)


def test_a_buffer_the_forward_assigns_is_read_back_as_assigned(monkeypatch):
    """The attribute is the tensor the forward assigned (fx would give back the one it held
    before, and the proof would refuse that trace); no meta kernel runs the module; the model's
    own buffer is unchanged after; torch agrees at every size."""
    from symshape import engine

    model = nn.Sequential(PositionCache()).eval()
    run_whole = []
    meta_module = engine.Propagator._meta_module
    monkeypatch.setattr(engine.Propagator, "_meta_module",
                        lambda self, ctx, *rest: run_whole.append(ctx.step) or meta_module(self, ctx, *rest))
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert run_whole == []
    assert str(analysis.output_shape) == "(N, H*W, 6)"
    assert model[0].rel.shape == (1, 1, 3)
    assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 5]))


def test_isinstance_of_a_computed_tensor_as_a_parameter_is_false(monkeypatch):
    """``isinstance(y, nn.Parameter)`` asks the tensor's ``_is_param``, which torch sets only on a
    custom tensor made a Parameter: an op's output is no Parameter, a parameter is one (traced:
    no meta kernel runs the model whole)."""
    from symshape import engine

    class Asks(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            y = x * 2
            assert not isinstance(y, nn.Parameter) and isinstance(self.w, nn.Parameter)
            return y * self.w if not isinstance(y, nn.Buffer) else y

    run_whole = []
    meta_module = engine.Propagator._meta_module
    monkeypatch.setattr(engine.Propagator, "_meta_module",
                        lambda self, ctx, *rest: run_whole.append(ctx.step) or meta_module(self, ctx, *rest))
    assert str(symshape.analyze(Asks(), ("L", 3)).output_shape) == "(N, L, 3)"
    assert run_whole == []
    assert_agrees(Asks(), ("L", 3), grid(["L"], [1, 2, 5]))


#: arguments beside a traced tensor ``x`` that make torch's argument parser try an overload with a
#: Scalar where ``x`` is (``pow(Scalar, Tensor)`` before ``pow(Tensor, Scalar)``)
_SCALAR_CALLS = ("f(x, 2)", "f(x, 2.5)", "f(2, x)", "f(x > 0, x, 0.0)", "f(x > 0, 0.0, x)", "f(x, x, 2)", "f(x, 2, x)",
                 "f(*(x, 2))")


def test_a_torch_function_given_a_traced_tensor_beside_scalars_never_crashes_the_process():
    """Every torch function symshape has a rule for that is torch's C++ (torch.pow, torch.where,
    torch.remainder, torch.xlogy ...), called in a forward with a traced tensor beside scalars,
    in a fresh process (a crash would end this one): it analyzes, or is refused, never a signal.
    torch's parser once read the traced tensor's memory as a 0-dim tensor's while it tried the
    overload with a Scalar in its place, and the process died at ``torch.pow(x, 2)`` (GPT-2's
    GELU)."""
    import subprocess
    import sys

    script = (
        "import types, warnings, torch, torch.nn as nn, symshape\n"
        "from symshape.rules import registry\n"
        "warnings.simplefilter('ignore')\n"
        "builtins = [f for f in registry._FUNCTION_RULES if isinstance(f, types.BuiltinFunctionType)]\n"
        "calls = 0\n"
        f"for call in {_SCALAR_CALLS!r}:\n"
        "    for f in builtins:\n"
        "        class M(nn.Module):\n"
        "            def forward(self, x):\n"
        "                return eval(call)\n"
        "        try:\n"
        "            symshape.analyze(M(), (2, 'L'), prove=False)\n"
        "        except Exception:\n"
        "            pass\n"
        "        calls += 1\n"
        "print('called', len(builtins), calls)\n")
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    _, functions, calls = done.stdout.split()
    assert int(functions) > 100 and int(calls) == len(_SCALAR_CALLS) * int(functions)


def _checked(cond, message):
    """transformers' ``torch_compilable_check``: a condition, or a callable that returns one."""
    if callable(cond):
        cond = cond()
    torch._check_with(ValueError, cond, lambda: message)


class AlignedTokens(nn.Module):
    """A convolution's grid as tokens, checked against its own count (Deformable DETR's
    ``torch_compilable_check(total_elements == sequence_length, ...)``), then a Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        h, w = y.shape[-2:]
        tokens = y.flatten(2).transpose(1, 2)
        _checked(h * w == tokens.shape[1], "align the spatial shapes with the sequence length")
        return self.fc(tokens)


def test_a_comparison_of_sizes_true_at_every_size_is_pythons_true():
    """``h * w == tokens.shape[1]`` is True at every size: Python's ``True``, which is no callable
    (a traced value answered ``callable()`` with True, and the call that followed stopped the
    trace: the model ran whole on torch's meta kernels, its layers unseen)."""
    analysis = symshape.analyze(AlignedTokens(), (3, "H", "W"))
    assert [s.name for s in analysis.steps if s.rule == "conv"] == ["conv"]
    assert "fc" in analysis.in_features
    assert assert_agrees(AlignedTokens(), (3, "H", "W"), grid(["H", "W"], [2, 3, 9])) > 0


class Lengths(nn.Module):
    """``batch_size = len(x)`` (RT-DETR and many model files), ``len`` of a row and of a list."""

    def forward(self, x):  # x: (N, T, 4)
        batch, rows = len(x), len(x[0])
        parts = [x, x.flip(1)]
        return torch.cat(parts, 2).reshape(batch, -1)[:, : len(parts) * rows]


def test_len_of_a_tensor_is_its_first_size():
    assert assert_agrees(Lengths(), ("T", 4), grid(["T"], [1, 2, 5])) == 3
    a = symshape.analyze(Lengths(), ("T", 4))
    assert "Tensor.reshape" in [s.op for s in a.steps]  # traced op by op (fx refuses len(): run whole before)
    assert [str(d) for d in a.output_shape] == ["N", "2*T"]


class NamedSizes(nn.Module):
    """Sizes by name, as torch takes them: ``reshape(shape=...)`` (DiT's unpatchify),
    ``view(size=...)``, ``torch.reshape(x, shape=...)``."""

    def forward(self, x):  # x: (N, T, 4)
        a = x.reshape(shape=(x.shape[0], -1, 2))
        b = x.view(size=(x.shape[0], 2, -1))
        return torch.reshape(a, shape=(-1,)), b


def test_sizes_given_by_name():
    assert assert_agrees(NamedSizes(), ("T", 4), grid(["T"], [1, 3])) == 2
    a = symshape.analyze(NamedSizes(), ("T", 4))
    assert [s.rule for s in a.steps] == ["view", "view", "reshape_function"]  # (torch's meta kernels before)


class RootOfASize(nn.Module):
    """A size's integer root as a size torch's meta kernels see (``torch.mv``, no hand rule):
    the message of their refusal names it."""

    def forward(self, x):  # x: (N, T, 4)
        n = int(x.shape[1] ** 0.5)
        return torch.mv(torch.ones(n, 3), torch.ones(n))


def test_a_root_of_a_size_through_torchs_meta_kernels():
    # torch runs only where floor(sqrt(T)) == 3
    assert assert_agrees(RootOfASize(), ("T", 4), grid(["T"], [1, 8, 9, 12, 15, 16])) == 3


class QuantizedOrNot(nn.Module):
    """transformers asks a weight whether bitsandbytes quantized it (``hasattr(w, "SCB")``, RWKV)
    and an output whether it carries a quantization state: a plain tensor has neither."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 6)

    def forward(self, x):  # x: (N, T, 4)
        if hasattr(self.lin.weight, "SCB"):
            return x.view(-1)
        y = self.lin(x)
        return y if getattr(y, "quant_state", None) is None else y.view(-1)


def test_an_attribute_a_tensor_has_not_is_none_as_python_sees_it():
    assert assert_agrees(QuantizedOrNot(), ("T", 4), grid(["T"], [1, 3])) == 2
    a = symshape.analyze(QuantizedOrNot(), ("T", 4))
    assert [s.op for s in a.steps] == ["nn.Linear"]  # (the traced hasattr was true: the model ran whole)


def _adapted_alexnet_like() -> nn.Module:
    """pretrainedmodels' way of adapting a torchvision model: its ``features`` and ``forward``
    replaced on the instance by methods of it (``types.MethodType``); its class's forward, which
    still calls ``self.avgpool``, is never run."""
    import types

    class Net(nn.Module):  # (torchvision's AlexNet, small)
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
            self.avgpool = nn.AdaptiveAvgPool2d(2)
            self.classifier = nn.Linear(16, 3)

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    model = Net()
    model._features = model.features
    del model.features
    model.last_linear = nn.Linear(4 * 3 * 3, 5)

    def features(self, x):
        x = F.adaptive_avg_pool2d(self._features(x), 3)
        return x.view(x.size(0), 4 * 3 * 3)  # (2-D: the class's avgpool would refuse it)

    def forward(self, x):
        return self.last_linear(self.features(x))

    model.features = types.MethodType(features, model)
    model.forward = types.MethodType(forward, model)
    return model


def _layer_with_its_own_forward() -> nn.Module:
    """A layer whose forward is replaced on the instance (a patch that strides a convolution):
    torch runs the patch, not the layer's class (nor symshape's rule for it)."""
    import types

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    model[0].forward = types.MethodType(lambda self, x: F.conv2d(x, self.weight, self.bias, stride=2), model[0])
    return model


@pytest.mark.parametrize("make", [_adapted_alexnet_like, _layer_with_its_own_forward])
def test_a_forward_set_on_the_module_itself_is_the_one_traced(make):
    model = make().eval()
    a = symshape.analyze(model, (1, "H", "W"))
    assert a.verify(sizes=grid(["H", "W"], [3, 5, 6, 13, 14, 17])).ok
    assert assert_agrees(make().eval(), (1, "H", "W"), grid(["H", "W"], [3, 13, 14, 16])) >= 1


def _wrapped_forward() -> nn.Module:
    """A forward set on the model that is no method of it: accelerate's hooks wrap the original
    (``functools.partial(new_forward, module)``); this one pools what the original returns."""
    import functools

    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    old = model.forward

    def new_forward(module, *args, **kwargs):
        return F.max_pool2d(old(*args, **kwargs), 2)

    model.forward = functools.update_wrapper(functools.partial(new_forward, model), old)
    return model


def test_a_forward_set_on_the_model_that_is_no_method_of_it_is_the_one_traced():
    a = symshape.analyze(_wrapped_forward(), (1, "H", "W"))
    assert str(a.steps[-1].output) == "(N, 2, floor((H - 2)/2), floor((W - 2)/2))"
    assert assert_agrees(_wrapped_forward(), (1, "H", "W"), grid(["H", "W"], [1, 3, 4, 5, 8])) >= 1


def test_a_trace_that_refuses_every_size_where_torch_runs_never_reaches_the_user(monkeypatch):
    # the trace as it was before it followed a forward set on the model: the class's forward,
    # whose avgpool refuses the 2-D features at every size; torch runs the model's own at 224
    from symshape import trace as trace_module

    monkeypatch.setattr(trace_module, "own_forward", lambda m: None)
    with pytest.raises(symshape.TraceMismatch, match="refuses every size") as e:
        symshape.analyze(_adapted_alexnet_like().eval(), (1, "H", "W"))
    assert e.value.layers == ["avgpool"]


def test_a_model_torch_refuses_at_every_size_is_still_refused_as_such():
    for model in (nn.Sequential(nn.Flatten(), nn.AdaptiveAvgPool2d(2)),
                  nn.Sequential(nn.Flatten(), nn.AdaptiveAvgPool2d(2)).to("meta")):
        with pytest.raises(symshape.InvalidInputSize, match="3D or 4D"):
            symshape.analyze(model, (1, "H", "W"))
