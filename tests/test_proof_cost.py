"""What keeps analyze() fast on real models, and exact: each branching module traced by sides once
per distinct call (trace() starts again each time another module branches), and the proof's
graph replay taking a module's output from the model's own forward where the call is the same.
Both are checked against the same analysis or observation computed without them, and torch."""

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import seed000_mnist
import seed001_cnnclf
import symshape
from oracle import assert_agrees, grid
from symshape import engine, modules, replay, verify
from symshape.modules import copy_model
from test_branches import Windows, _TwoEqualBlocks


class Stacked(nn.Module):
    """Blocks that each branch on the size (TinyViT's stages): trace() starts again at each."""

    def __init__(self, blocks: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList(_Block() for _ in range(blocks))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x):
        if x.size(-1) % 2 == 1:
            x = F.pad(x, (0, 1))
        return self.conv(x)


def _count_sides(monkeypatch) -> list:
    calls = []
    original = engine.Propagator._traced_by_sides

    def counted(self, ctx, module, args, kwargs):
        calls.append(ctx.step)
        return original(self, ctx, module, args, kwargs)

    monkeypatch.setattr(engine.Propagator, "_traced_by_sides", counted)
    return calls


def test_each_branching_module_is_traced_by_sides_once(monkeypatch):
    calls = _count_sides(monkeypatch)
    a = symshape.analyze(Stacked(4).eval(), (2, "L"))
    assert sorted(calls) == [f"blocks.{i}" for i in range(4)]  # not 1 + 2 + 3 + 4 traces
    assert_agrees(Stacked(4).eval(), (2, "L"), [{"L": n} for n in range(1, 12)])
    assert a.at(L=7).output_shape == (1, 2, 8)


@pytest.mark.parametrize("model, shape, names", [
    (lambda: Stacked(3), (2, "L"), ["L"]),
    (lambda: nn.Sequential(Windows(), Windows(4, 3)), (1, "H", "W"), ["H", "W"]),
    (lambda: _TwoEqualBlocks(), ("L", 4), ["L"]),  # one trace, by fingerprint, for both blocks
])
def test_the_cache_of_sides_changes_no_answer(monkeypatch, model, shape, names):
    cached = symshape.analyze(model().eval(), shape)
    monkeypatch.setattr(engine.Propagator, "_sides_key", lambda *a: None)
    fresh = symshape.analyze(model().eval(), shape)
    assert cached.steps == fresh.steps  # names, shapes, rules, requirements, roundings ...
    assert [s.sides for s in cached.steps] == [s.sides for s in fresh.steps]  # what explain() shows
    assert str(cached.valid_sizes()) == str(fresh.valid_sizes())
    assert_agrees(model().eval(), shape, grid(names, [1, 2, 3, 5, 6, 7]))


def test_a_module_argument_that_is_not_a_plain_value_is_not_cached():
    assert engine._hashable([1, True, "a", None]) == ("list", (("int", 1), ("bool", True), ("str", "a"),
                                                                ("NoneType", None)))
    with pytest.raises(TypeError):
        hash(engine._hashable((object(),)))


class Shared(nn.Module):
    """One module called twice, at two shapes, an output changed in
    place after its module returned."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        a = self.conv(x)
        b = self.conv(self.pool(x))
        c = self.lin(b.mean((2, 3)))
        d = self.lin(c)
        d.unsqueeze_(1)  # the call's output is no longer what the module returned
        return a.flatten(1).sum(1, keepdim=True) + F.interpolate(b, scale_factor=2).flatten(1).sum(1, keepdim=True) \
            + d.squeeze(1)


def _observed(model, shape, monkeypatch=None):
    an = symshape.analyze(model, shape, prove=False)
    x = torch.empty(2, *(16 if isinstance(s, str) else s for s in shape), device="meta")
    return verify._observe(copy_model(model, "meta"), x, an.graph)


@pytest.mark.parametrize("model, shape", [
    (Shared, (3, "H", "W")),
    (seed000_mnist.Net, (1, "H", "W")),
    (seed001_cnnclf.CNNclf, (3, "H", "W")),
    (lambda: nn.Sequential(Windows(), Windows(4, 3)), (1, "H", "W")),
])
def test_the_replay_takes_a_modules_output_only_where_torch_would_give_the_same(monkeypatch, model, shape):
    reused = _observed(model().eval(), shape)
    monkeypatch.setattr(replay.ModuleCalls, "output", lambda *a: replay.NOT_FOUND)
    monkeypatch.setattr(replay.OpCalls, "output", lambda *a: replay.NOT_FOUND)
    fresh = _observed(model().eval(), shape)
    assert reused.node_outputs == fresh.node_outputs
    assert reused.failed_node == fresh.failed_node and reused.output == fresh.output


def test_a_call_is_reused_by_its_position_and_signature():
    calls = replay.ModuleCalls()
    x, y = torch.empty(2, 3, device="meta"), torch.empty(4, 3, device="meta")
    for inp in (x, y):
        calls.enter("lin", (inp,), {})
        calls.leave("lin", torch.empty(inp.shape[0], 5, device="meta"))
    assert calls.output("lin", 1, replay.signature(((y,), {}))).shape == (4, 5)
    assert calls.output("lin", 0, replay.signature(((y,), {}))) is replay.NOT_FOUND  # another shape
    assert calls.output("lin", 2, replay.signature(((y,), {}))) is replay.NOT_FOUND  # no third call
    assert calls.output("lin", 0, replay.signature(((x.t(),), {}))) is replay.NOT_FOUND  # other strides
    assert calls.output("lin", 0, replay.signature(((x,), {"bias": object()}))) is replay.NOT_FOUND
    assert replay.signature(torch.eye(3).to_sparse()) != replay.signature(torch.eye(3))  # the layout
    with warnings.catch_warnings():  # nested tensors are a prototype, torch says
        warnings.simplefilter("ignore")
        nested = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    assert replay.signature(nested) != replay.signature(nested)  # no sizes: equal to nothing, no error
    out = calls.output("lin", 0, replay.signature(((x,), {})))
    out.unsqueeze_(0)  # changed in place after the module returned: not the module's output any more
    assert calls.output("lin", 0, replay.signature(((x,), {}))) is replay.NOT_FOUND


class _Functional(nn.Module):
    """Functions, methods and operators, some called twice the same way and some the same
    function in another form: ``flatten(x, 1)`` and ``flatten(x, end_dim=1)``, ``x - 2`` and
    ``2 - x``, ``layer_norm`` with its arguments by position, slices and ``...``."""

    def __init__(self, reshape_in_place: bool = False):
        super().__init__()
        self.reshape_in_place = reshape_in_place

    def forward(self, x):
        a = F.layer_norm(x, x.shape[-1:], None, None, 1e-5)
        b = F.layer_norm(x, x.shape[-1:], None, None, 1e-5)
        c = torch.flatten(a, 1) .sum(-1) + torch.flatten(b, end_dim=1).sum() + (x - 2).sum() + (2 - x).sum()
        d = x[:, 0, ..., ::2].permute(0, 2, 1)
        if self.reshape_in_place:
            d.unsqueeze_(1)  # from here on, a recorded tensor may not be what it was
        e = d.transpose(-1, -2).reshape(x.shape[0], -1) @ torch.ones(d.numel() // x.shape[0], 3)
        return c.view(-1, 1) + e.softmax(-1)


def _reused_ops(monkeypatch, model, shape) -> list:
    found = []
    original = replay.OpCalls.output

    def spied(self, node_op, target, args, kwargs):
        out = original(self, node_op, target, args, kwargs)
        if out is not replay.NOT_FOUND:
            found.append(target if isinstance(target, str) else target.__name__)
        return out

    monkeypatch.setattr(replay.OpCalls, "output", spied)
    _observed(model, shape)
    return found


def test_the_replay_takes_an_ops_output_from_the_forward_where_its_arguments_are_the_same(monkeypatch):
    reused = _reused_ops(monkeypatch, _Functional().eval(), (3, "H", "W"))
    assert reused.count("layer_norm") == 2  # given by position in the graph, by keyword to torch's mode
    assert {"flatten", "sub", "getitem", "permute", "transpose", "reshape", "matmul", "softmax"} <= set(reused)
    assert "__rsub__" not in reused  # 2 - x is not x - 2: another function of the tensor
    # a shape changed in place: nothing after it is taken from the forward
    assert "softmax" not in _reused_ops(monkeypatch, _Functional(True).eval(), (3, "H", "W"))


@pytest.mark.parametrize("reshape_in_place", [False, True])
def test_the_replay_with_op_outputs_taken_is_the_replay_without(monkeypatch, reshape_in_place):
    model = _Functional(reshape_in_place).eval()
    reused = _observed(model, (3, "H", "W"))
    monkeypatch.setattr(replay.OpCalls, "output", lambda *a: replay.NOT_FOUND)
    fresh = _observed(model, (3, "H", "W"))
    assert reused.node_outputs == fresh.node_outputs and reused.output == fresh.output
    assert_agrees(_Functional(reshape_in_place).eval(), (3, "H", "W"), grid(["H", "W"], [2, 3, 6]))


def test_a_call_is_keyed_by_parameter_where_the_function_has_a_signature():
    x = torch.empty(2, 3, 4, device="meta")
    assert replay._key(torch.flatten, (x, 1), {}) != replay._key(torch.flatten, (x,), {"end_dim": 1})
    assert replay._key(F.layer_norm, (x, (4,), None, None, 1e-5), {}) == \
        replay._key(F.layer_norm, (x, (4,)), {"weight": None, "bias": None, "eps": 1e-5})
    assert replay._key(F.softmax, (x, -1), {}) == replay._key(F.softmax, (x,), {"dim": -1, "_stacklevel": 3})
    assert replay.signature(slice(1, None, 2)) == replay.signature(slice(1, None, 2)) != replay.signature(slice(2))
    assert replay.signature(...) == ("...",)


class _Counting(nn.Module):
    runs = 0

    def forward(self, x):
        type(self).runs += 1
        return x * 2


def test_the_proof_runs_each_module_once():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _Counting(), nn.Flatten(), nn.LazyLinear(3))
    an = symshape.analyze(model, (1, "H", "W"), prove=False)
    before = _Counting.runs
    assert verify.prove(an) == "H=224, W=224"
    assert _Counting.runs - before == 1  # the forward; the graph replay took its output


class _Caches(nn.Module):
    """ConViT's attention: a tensor made from the size and kept on the module (fx cannot follow
    the write), so the module runs whole under torch's meta kernels."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.pos, self.scale = None, scale

    def forward(self, x):
        B, N, C = x.shape
        if self.pos is None or self.pos.shape[0] != N:
            self.pos = torch.zeros(N, C)
        return self.lin(x + self.pos) * self.scale


@pytest.mark.parametrize("scales, runs", [((1.0,) * 4, 2), ((1.0, 2.0, 3.0, 4.0), 4)])
def test_equal_modules_run_whole_share_torchs_answer(monkeypatch, scales, runs):
    """A module run whole is asked of torch's meta kernels once per distinct module (class,
    attributes, parameter shapes) and arguments: the first block's input is the model's (its
    dtype not tracked), the others' are alike."""
    calls = []
    original = engine.run_meta

    def counted(call, args, kwargs, op):
        calls.append(op)
        return original(call, args, kwargs, op)

    monkeypatch.setattr(engine, "run_meta", counted)
    model = nn.Sequential(*(_Caches(s) for s in scales), nn.Flatten(), nn.LazyLinear(2))
    a = symshape.analyze(model, ("L", 4))
    assert [s.rule for s in a.steps[:4]] == ["meta"] * 4
    assert sum(op.endswith("_Caches") for op in calls) == runs
    assert_agrees(model, ("L", 4), [{"L": n} for n in (1, 2, 5)])


def test_a_module_with_an_attribute_that_is_not_plain_is_only_itself():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    assert modules.module_fingerprint(a) == modules.module_fingerprint(b)
    assert modules.module_fingerprint(a) != modules.module_fingerprint(nn.Linear(2, 3))
    b.act = lambda t: t  # what the forward does with it is not known
    assert modules.module_fingerprint(b) != modules.module_fingerprint(nn.Linear(2, 2))
    assert modules.module_fingerprint(b) == modules.module_fingerprint(b)
    b.register_forward_hook(lambda *args: None)
    a.register_forward_hook(lambda *args: None)
    assert modules.module_fingerprint(a) != modules.module_fingerprint(nn.Linear(2, 2))


class _Tied(nn.Module):
    """A weight shared by two layers, a buffer, and a parameter reached through a container."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.register_buffer("scale", torch.ones(4))
        self.extra = nn.ParameterList([nn.Parameter(torch.zeros(4))])

    def forward(self, x):
        return self.b(self.a(x)) * self.scale + self.extra[0] + self.b.weight.sum(0)


def test_the_tracer_names_parameters_and_buffers_as_fx_does():
    """symshape's tracer finds a parameter's name from a map made once per trace (fx scans the
    root's parameters at every access): the graph is fx's own, node for node."""
    from symshape.trace import _Tracer

    ours = _Tracer().trace(_Tied())
    theirs = torch.fx.Tracer()
    theirs.proxy_buffer_attributes = True
    theirs = theirs.trace(_Tied())
    assert [(n.op, n.target) for n in ours.nodes] == [(n.op, n.target) for n in theirs.nodes]
    assert ("get_attr", "a.weight") in [(n.op, n.target) for n in ours.nodes]  # the tied weight's first name
    assert ("get_attr", "scale") in [(n.op, n.target) for n in ours.nodes]
    assert_agrees(_Tied(), ("L", 4), [{"L": n} for n in range(1, 5)])


class _ConvLSTM(nn.Module):
    """A convolution, then an LSTM over the length: torch's meta forward of the LSTM runs every
    step of the sequence."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 5)
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.rnn(self.conv(x).transpose(1, 2))
        return self.head(out[:, -1])


def test_a_recurrent_model_is_proved_at_the_smallest_size_it_accepts():
    """Sequencer's LSTMs took 3.1 s of meta forward at 224 x 224 and 0.45 s at 32 x 32: the proof
    of a model with an RNN takes the smallest candidate size the analysis accepts (here 8: the
    convolution needs L >= 5), and the analysis still agrees with torch everywhere."""
    model = _ConvLSTM()
    a = symshape.analyze(model, (3, "L"))
    assert a.proof == "L=8", a.proof
    assert assert_agrees(model, (3, "L"), [{"L": n} for n in (1, 4, 5, 6, 33, 224)]) == 4
