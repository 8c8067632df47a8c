"""What keeps analyze() fast on real models, and exact: each branching module traced by sides once
per distinct call (trace() starts again each time another module branches), and the proof's
graph replay taking a module's output from the model's own forward where the call is the same.
Both are checked against the same analysis or observation computed without them, and torch."""

import contextlib
import os
from dataclasses import replace
import warnings

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.fx.immutable_collections import immutable_list
from torch.utils._python_dispatch import TorchDispatchMode

import seed000_mnist
import seed001_cnnclf
import symshape
from oracle import assert_agrees, grid
from symshape import engine, modules, replay, verify
from symshape.modules import copy_model
from symshape.tensor import Pieces, SymTensor
from strategies import models
from test_branches import Windows, _TwoEqualBlocks
from test_repeats import _SizedStack


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


class _Parity(nn.Module):
    """A block that branches on the size's parity and keeps the size on both sides."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x):
        if x.shape[-1] % 2 == 1:
            return x * 2
        return self.conv(x).view(x.shape[0], 2, -1, 2).flatten(2)


class _TwoParity(nn.Module):
    """Two equal branching blocks with a check between them (a conv of kernel 5 beside the
    path: ``L - 2 >= 5``, a fact the first block was traced without)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3)
        self.probe = nn.Conv1d(2, 2, 5)
        self.blocks = nn.Sequential(_Parity(), _Parity())

    def forward(self, x):
        x = self.blocks[0](self.conv(x))
        x = x + self.probe(x).mean(-1, keepdim=True)
        return self.blocks[1](x)


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


def test_a_block_after_an_equal_one_that_added_checks_is_not_traced_again(monkeypatch):
    """The second of two equal branching blocks runs where a check after the first
    (``L - 2 >= 5``) holds: its sides, traced for the first without that fact, serve it (they
    are exact where more holds), merged under what holds there; the analysis agrees with torch."""
    calls = _count_sides(monkeypatch)
    a = symshape.analyze(_TwoParity(), (2, "L"))
    assert calls == ["blocks.0"]
    assert [s.name for s in a.steps if s.sides] == ["blocks.0", "blocks.1"]
    assert_agrees(_TwoParity(), (2, "L"), [{"L": n} for n in range(1, 30)])


@pytest.mark.parametrize("model, shape, names", [
    (lambda: Stacked(3), (2, "L"), ["L"]),
    (lambda: nn.Sequential(Windows(), Windows(4, 3)), (1, "H", "W"), ["H", "W"]),
    (lambda: _TwoEqualBlocks(), ("L", 4), ["L"]),  # one trace, by fingerprint, for both blocks
    (lambda: _TwoParity(), (2, "L"), ["L"]),  # one trace, the second block's under more facts
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
    (_SizedStack, (1, "H", "W")),  # blocks called with a list, repeated: one node each
])
def test_the_replay_takes_a_modules_output_only_where_torch_would_give_the_same(monkeypatch, model, shape):
    reused = _observed(model().eval(), shape)
    monkeypatch.setattr(replay.ModuleCalls, "output", lambda *a: replay.NOT_FOUND)
    monkeypatch.setattr(verify, "KernelMemo", contextlib.nullcontext)
    fresh = _observed(model().eval(), shape)
    assert reused.node_outputs == fresh.node_outputs
    assert reused.failed_node == fresh.failed_node and reused.output == fresh.output


def test_a_list_the_replay_passes_is_the_list_the_forward_passed(monkeypatch):
    """fx's replay hands a node's list argument over as an ``immutable_list``; it signs as the
    list the model's forward passed, so MViTv2-like blocks called with ``[h, w]`` take their
    output from the forward instead of running again (each of mvitv2_huge's 72 repeated blocks
    ran twice in the proof)."""
    found = []
    original = replay.ModuleCalls.output
    monkeypatch.setattr(replay.ModuleCalls, "output",
                        lambda self, name, k, called: found.append((name, original(self, name, k, called))) or found[-1][1])
    _observed(_SizedStack().eval(), (1, "H", "W"))
    blocks = [(name, out) for name, out in found if name.startswith("blocks.")]
    assert blocks and all(out is not replay.NOT_FOUND for _, out in blocks), blocks
    assert replay.signature(immutable_list([3, 4])) == replay.signature([3, 4]) != replay.signature((3, 4))


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


def _memo_reuses(monkeypatch, model, shape) -> int:
    """How many kernels the proof's observation took from its KernelMemo."""
    memos = []

    class Spied(replay.KernelMemo):
        def __init__(self):
            super().__init__()
            memos.append(self)

    monkeypatch.setattr(verify, "KernelMemo", Spied)
    _observed(model, shape)
    monkeypatch.undo()
    return sum(m.reused for m in memos)


def test_the_replay_takes_an_ops_output_from_the_forward_where_its_arguments_are_the_same(monkeypatch):
    """The graph's replay repeats the forward's function and method calls: their kernels are
    given by the KernelMemo (layer_norm twice in the forward, then twice in the replay)."""
    assert _memo_reuses(monkeypatch, _Functional().eval(), (3, "H", "W")) >= 4


@pytest.mark.parametrize("reshape_in_place", [False, True])
def test_the_replay_with_op_outputs_taken_is_the_replay_without(monkeypatch, reshape_in_place):
    model = _Functional(reshape_in_place).eval()
    reused = _observed(model, (3, "H", "W"))
    monkeypatch.setattr(verify, "KernelMemo", contextlib.nullcontext)
    fresh = _observed(model, (3, "H", "W"))
    assert reused.node_outputs == fresh.node_outputs and reused.output == fresh.output
    assert_agrees(_Functional(reshape_in_place).eval(), (3, "H", "W"), grid(["H", "W"], [2, 3, 6]))


def test_a_signature_holds_plain_values_as_they_are():
    assert replay.signature(slice(1, None, 2)) == replay.signature(slice(1, None, 2)) != replay.signature(slice(2))
    assert replay.signature(...) == ("...",)
    assert replay.signature((torch.empty(2, 3, device="meta"), 1.0)) != replay.signature((torch.empty(2, 3), 1.0))


class _Counting(nn.Module):
    runs = 0

    def forward(self, x):
        type(self).runs += 1
        return x * 2


def test_the_proof_runs_each_module_once():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _Counting(), nn.Flatten(), nn.LazyLinear(3))
    an = symshape.analyze(model, (1, "H", "W"), prove=False)
    before = _Counting.runs
    assert verify.prove(an) == "H=224, W=256"
    assert _Counting.runs - before == 1  # the forward; the graph replay took its output


class _Caches(nn.Module):
    """A Parameter made from the size and kept on the module (fx cannot follow ``nn.Parameter``
    of a traced tensor), so the module runs whole under torch's meta kernels."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.pos, self.scale = None, scale

    def forward(self, x):
        B, N, C = x.shape
        if self.pos is None or self.pos.shape[0] != N:
            self.pos = nn.Parameter(torch.zeros(N, C), requires_grad=False)
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


class _Windowed(nn.Module):
    """A strided convolution, then the map cut into ``window x window`` windows by a view: torch
    runs it only where the map's sides are multiples of the window."""

    def __init__(self, stride: int, window: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, kernel, stride=stride, padding=kernel // 2)
        self.window = window

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        return y.view(n, c, h // self.window, self.window, w // self.window, self.window)


def _runs(model, size: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(1, 2, size, size))
        return True
    except RuntimeError:
        return False


@settings(max_examples=12, deadline=None)
@given(stride=st.integers(1, 4), window=st.integers(2, 13), kernel=st.sampled_from([1, 3, 5]))
def test_the_smallest_tied_size_is_the_first_torch_runs(stride, window, kernel):
    """solve.smallest_tied (the brute-force scan of the compiled checks, every size name the
    same) against torch's forward at every size up to the one it names."""
    model = _Windowed(stride, window, kernel)
    found = symshape.solve.smallest_tied(symshape.analyze(model, (2, "H", "W"), prove=False))
    assert found is not None and found["H"] == found["W"]
    assert _runs(model, found["H"]) and not any(_runs(model, s) for s in range(1, found["H"]))


def test_a_model_that_refuses_every_usual_size_is_proved_at_the_scanned_one(monkeypatch):
    """None of the proof's candidate sizes fits windows of 13 after a stride of 2 (MaxViT at 384
    is alike: its smallest size is 381): the proof takes the smallest size every check accepts
    from the scan, without the solver (3 s on MaxViT), and torch agrees at and around it."""
    model = _Windowed(2, 13)
    monkeypatch.setattr(verify, "valid_sizes", lambda *a, **k: pytest.fail("the solver was asked"))
    a = symshape.analyze(model, (2, "H", "W"))
    assert a.proof == "H=25, W=25", a.proof
    assert assert_agrees(model, (2, "H", "W"), grid(("H", "W"), [24, 25, 26, 27, 51, 52])) >= 6


@settings(max_examples=40 if os.environ.get("CI") else 80, deadline=None)
@given(models())
def test_refuses_is_evaluates_failure_without_the_shapes(drawn):
    """``Shapes.refuses`` (the proof's first look at a candidate size) says what ``evaluate``
    says of torch's own checks, declared feature counts aside, at every drawn size and around."""
    model, input_shape, sizes_list, _ = drawn
    try:
        analysis = symshape.analyze(model, input_shape, prove=False)
    except symshape.InvalidInputSize:
        return
    names = [n for n in input_shape if isinstance(n, str)]
    for sizes in [*sizes_list, *({n: v for n in names} for v in (1, 2, 3, 7, 30, 224))]:
        assert analysis.refuses(**sizes) == (analysis.evaluate(**sizes).failure is not None), sizes


class _Square(nn.Module):
    """A fixed table added to the map: only 224 x 224 fits (ViT's position embedding alike)."""

    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(4, 224, 224))

    def forward(self, x):
        return (x + self.pos).flatten(1)


def test_the_proof_evaluates_every_step_only_at_the_size_it_proves_at(monkeypatch):
    """The first candidate (H and W apart) fails the table's broadcast; the proof sees that from
    the checks alone and computes every step's shapes once, at 224 x 224."""
    evaluated = []
    evaluate = symshape.evaluation.Shapes.evaluate
    monkeypatch.setattr(symshape.evaluation.Shapes, "evaluate",
                        lambda self, **sizes: evaluated.append(sizes) or evaluate(self, **sizes))
    a = symshape.analyze(_Square(), (4, "H", "W"))
    assert a.proof == "H=224, W=224" and evaluated == [{"H": 224, "W": 224}], (a.proof, evaluated)


def test_a_float_extremum_is_the_extremum_sympy_evaluates():
    """``max(k / q, 1.0)`` of ratios of sizes is built without sympy's evaluation (which asks its
    assumptions of every pair): the same value at every size, nested extrema flattened, an
    argument given twice once, numbers compared, one argument left alone."""
    from symshape.dims import float_extremum, floor_div, size_symbol
    h = size_symbol("H")
    q, k = floor_div(h + 3, 4), floor_div(h + 15, 16)
    one = sympy.Integer(1)
    cases = [(sympy.Max, (k / q, one)), (sympy.Max, (q / k, one, sympy.Rational(1, 2))),
             (sympy.Min, (k / q, sympy.Min(q / k, one), k / q)), (sympy.Max, (q / q, one)),
             (sympy.Max, (k / q, k / q))]
    for kind, args in cases:
        built, evaluated = float_extremum(kind, args), kind(*args)
        assert not any(isinstance(a, kind) for a in getattr(built, "args", ())), built
        for n in (1, 2, 5, 15, 16, 17, 63, 64, 224, 1001):
            assert built.xreplace({h: n}) == evaluated.xreplace({h: n}), (kind, args, n)
    assert float_extremum(sympy.Max, (q / q, one)) == 1 and float_extremum(sympy.Max, (k / q, k / q)) == k / q


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 9), st.integers(-9, 9)), min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 9), st.integers(-9, 9)), min_size=1, max_size=3))
def test_strides_that_differ_at_one_size_are_not_equal(left, right):
    """``tensor._expands_equal`` answers a pair that differs at a probe size without expanding:
    what expanding answers, on sums of products of floors (strides of views and pools)."""
    from symshape.dims import floor_div, size_symbol
    from symshape.tensor import _expands_equal
    h, w = size_symbol("H"), size_symbol("W")

    def build(terms):
        return sum((c * floor_div(h + b, d) * w for c, d, b in terms), sympy.Integer(0))

    a, b = build(left), build(right)
    for x, y in ((a, b), (a, sympy.expand(a)), (a * (w + 1), sympy.expand(a * w + a))):
        assert _expands_equal(x, y) == (sympy.expand(x - y) == 0), (x, y)


def test_the_scan_leaves_what_int64_may_not_hold_to_the_solver():
    """A check whose values could pass int64 at sizes up to the scan's end: no answer from the
    scan (the solver's question)."""
    model = _Windowed(1, 3)
    a = symshape.analyze(model, (2, "H", "W"), prove=False)
    assert symshape.solve.smallest_tied(a) == {"H": 3, "W": 3}
    assert symshape.solve.smallest_tied(a, upto=2 ** 40) is None


# -- torch's kernels once per metadata (replay.KernelMemo) -----------------------------------------


class _Ops(TorchDispatchMode):
    """Every aten op's outputs as the forward sees them: shape, strides, offset, dtype; or the
    error it raised."""

    def __init__(self):
        super().__init__()
        self.seen: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        try:
            out = func(*args, **(kwargs or {}))
        except Exception as e:
            self.seen.append((str(func), type(e).__name__, str(e)))
            raise
        self.seen.append((str(func), _meta_of(out)))
        return out


def _meta_of(value):
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.storage_offset(), value.dtype, value.device.type)
    if isinstance(value, (list, tuple)):
        return tuple(_meta_of(v) for v in value)
    return value


def _ops_of(model: nn.Module, x: torch.Tensor, memo: bool):
    """What torch's meta kernels give at each op of ``model(x)`` on a meta copy (and the error
    the forward ends with), with or without the memo under the recording."""
    copy_ = copy_model(model, "meta")
    ops = _Ops()
    memo_ = replay.KernelMemo()
    with torch.no_grad(), contextlib.ExitStack() as stack:
        if memo:
            stack.enter_context(memo_)
        stack.enter_context(ops)
        try:
            ops.seen.append(("output", _meta_of(copy_(x.to("meta")))))
        except Exception as e:  # noqa: BLE001 - torch's refusal is compared too
            ops.seen.append(("raised", type(e).__name__))
    return ops.seen, memo_.reused


def test_the_kernel_memo_gives_every_op_what_torchs_kernel_gives():
    """Twelve equal encoder layers (a ViT): most of their kernels are given again, and every op's
    output, and the real CPU forward's shape, are what they are without the memo."""
    model = nn.Sequential(nn.Linear(8, 24), *(nn.TransformerEncoderLayer(24, 4, 48, batch_first=True)
                                               for _ in range(12)), nn.LayerNorm(24)).eval()
    x = torch.randn(2, 5, 8)
    with_memo, reused = _ops_of(model, x, True)
    without, _ = _ops_of(model, x, False)
    assert with_memo == without
    assert reused > 100  # the layers after the first: their layer norms, linears, softmaxes ...
    with torch.no_grad():
        assert with_memo[-1][1][0] == tuple(model(x).shape)  # the forward's output


@settings(max_examples=40 if os.environ.get("CI") else 80, deadline=None)
@given(models())
def test_the_kernel_memo_changes_no_op_of_a_random_model(drawn):
    """Random conv/pool/pad/resample stacks, with skips and Linears (right and wrong), at their
    drawn sizes: the same ops with the same outputs, the same refusals."""
    model, input_shape, sizes_list, _ = drawn
    names = [s for s in input_shape if isinstance(s, str)]
    for sizes in sizes_list:
        shape = [sizes[s] if isinstance(s, str) else s for s in input_shape]
        x = torch.empty(2, *shape, device="meta")
        assert _ops_of(model, x, True)[0] == _ops_of(model, x, False)[0], (names, sizes)


def test_the_kernel_memo_keeps_what_is_not_a_function_of_metadata():
    aten = torch.ops.aten
    assert replay._functional(aten.add.Tensor) and replay._functional(aten.native_layer_norm.default)
    assert not replay._functional(aten.view.default)  # a view: its output is its input's storage
    assert not replay._functional(aten.add_.Tensor)  # in place: its output is its input
    assert not replay._functional(aten.bernoulli.default)  # random numbers
    assert not replay._functional(aten.nonzero.default)  # a size from the values
    from torch._higher_order_ops.cond import cond_op
    assert not replay._functional(cond_op)  # no schema to tell
    a, b = torch.empty(3, 4, device="meta"), torch.empty(5, 6, device="meta")
    with replay.KernelMemo() as memo:
        for _ in range(2):  # a call that raised is asked again, and raises again
            with pytest.raises(RuntimeError, match="same reduction dim"):
                torch.mm(a, b)
        y = a.view(4, 3)
        y2 = a.view(4, 3)
        assert y._base is a and y2._base is a and y is not y2
        c = a.t() + 1  # the input's strides (transposed) decide the output's
        d = a + 1
        e = a + 1
    assert c.stride() == (1, 4) and d.stride() == e.stride() == (4, 1) and memo.reused == 1
    # a symbolic size, a dtype that differs, a Python scalar's type: never the same key
    assert replay._kernel_key(aten.add.Tensor, (a, 1), {}) != replay._kernel_key(aten.add.Tensor, (a, 1.0), {})
    assert replay._kernel_key(aten.add.Tensor, (a, 1), {}) != \
        replay._kernel_key(aten.add.Tensor, (a.to(torch.float64), 1), {})


class _InPlace(nn.Module):
    """MobileNetV3's habit: activations in place, and ``x += shortcut``, in equal blocks."""

    def __init__(self, blocks: int = 6):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1) for _ in range(blocks))
        self.act = nn.Hardswish(inplace=True)

    def forward(self, x):
        for conv in self.convs:
            y = self.act(conv(x))
            y.add_(x)
            x = torch.relu_(y)
        return x


def test_the_kernel_memo_gives_an_in_place_op_its_argument_again():
    """Equal blocks of in-place ops (hardswish_, add_, relu_): the blocks after the first take
    them from the memo, and every op's output is what it is without the memo."""
    model, x = _InPlace().eval(), torch.randn(2, 8, 9, 7)
    with_memo, reused = _ops_of(model, x, True)
    without, _ = _ops_of(model, x, False)
    assert with_memo == without
    in_place = [op for op, *_ in with_memo if op.startswith("aten.") and op.split(".")[1].endswith("_")]
    assert len(in_place) == 18
    assert reused >= 15 + 5  # the in-place ops of five blocks, and their convolutions


def test_the_kernel_memo_runs_again_what_an_in_place_op_might_change():
    aten = torch.ops.aten
    assert replay._in_place(aten.hardswish_.default) and replay._in_place(aten.add_.Tensor)
    assert not replay._in_place(aten.add.Tensor)  # not in place: the functional memo's
    assert not replay._in_place(aten.add.out)  # writes its ``out``, not its first argument
    assert not replay._in_place(aten.uniform_.default)  # random numbers
    for reshaping in (aten.resize_.default, aten.unsqueeze_.default, aten.set_.source_Tensor):
        assert not replay._in_place(reshaping)  # another shape, or another storage
    a, b = torch.empty(3, 4, device="meta"), torch.empty(5, device="meta")
    with replay.KernelMemo() as memo:
        for _ in range(2):  # a call that raised is asked again, and raises again
            with pytest.raises(RuntimeError):
                a.add_(b)
        c = a.add_(1)
        d = a.mul_(2).mul_(3)  # (another value: another key)
        e = torch.empty(3, 4, device="meta").mul_(2)  # same metadata: its own argument back
        f = a.t().mul_(2)  # other strides: another key
    assert c is a and d is a and memo.reused == 1
    assert e.shape == f.shape[::-1] == (3, 4) and e is not a and f.stride() == (1, 4)


# -- the proof's copy of the model (modules.copy_model) --------------------------------------------


class _OwnCopy(nn.Module):
    """A module that copies itself its own way: deepcopy's way is kept."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.copies = 0

    def __deepcopy__(self, memo):
        new = _OwnCopy()
        new.copies = self.copies + 1
        return new


class _OwnState(nn.Module):
    """A module with state methods of its own (as torch's convolutions, LSTM and
    MultiheadAttention have): deepcopy calls them, and so must the copy's shorter road."""

    def __init__(self):
        super().__init__()
        self.restored = 0

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["given"] = state.get("given", 0) + 1
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.restored += 1


class _NewArgs(nn.Module):
    """A module whose reduce passes arguments to ``__new__``: deepcopy's road."""

    made: list = []

    def __new__(cls, *args):
        cls.made.append(args)
        return super().__new__(cls)

    def __getnewargs__(self):
        return (7,)


class _Attributes(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        self.state = _OwnState()
        self.rnn = nn.LSTM(2, 3)
        self.newargs = _NewArgs()
        self.again = self.block  # one module under two names: one copy
        self.cache = {"k": [1, 2], "t": torch.ones(2)}
        self.alias = self.cache  # one dict under two names: one copy
        self.sizes = (3, [4, 5])
        self.own = _OwnCopy()
        self.lazy = nn.LazyLinear(3)
        self.register_buffer("steps", torch.zeros(1))
        self.block.register_forward_hook(lambda m, a, out: out * 2)
        torch.nn.utils.parametrize.register_parametrization(self.block[0], "weight", _Double())


class _Double(nn.Module):
    def forward(self, w):
        return w * 2


def _structure(value, seen: dict, path: str = "m"):
    """``value`` as plain data: each object's type, contents and the first path it was met at
    (so that two copies with the same sharing give equal structures)."""
    if isinstance(value, (int, float, str, bool, type(None), torch.dtype)) or callable(value) and not \
            isinstance(value, nn.Module):
        return value if not callable(value) else getattr(value, "__qualname__", type(value).__name__)
    if id(value) in seen:
        return ("same as", seen[id(value)])
    seen[id(value)] = path
    if isinstance(value, torch.Tensor):
        shape = None if modules.is_lazy_parameter(value) else tuple(value.shape)
        return (type(value).__name__, shape, value.dtype, value.requires_grad)
    if isinstance(value, nn.Module):
        return (type(value).__name__, {k: _structure(v, seen, f"{path}.{k}") for k, v in vars(value).items()
                                       if k != "_compiled_call_impl"})
    if isinstance(value, dict):
        return (type(value).__name__, [(k, _structure(v, seen, f"{path}[{k!r}]")) for k, v in value.items()])
    if isinstance(value, (list, tuple, set)):
        return (type(value).__name__, [_structure(v, seen, f"{path}[{i}]") for i, v in enumerate(value)])
    return (type(value).__name__,)


def test_the_models_copy_is_the_copy_deepcopy_makes():
    model = _Attributes()
    before = _structure(model, {})
    for device in ("meta", None):
        fast = copy_model(model, device)
        assert _structure(fast, {}) == _structure(_deepcopy_as_copy_model(model, device), {})
        assert fast.again is fast.block and fast.alias is fast.cache and fast.cache is not model.cache
        assert fast.own.copies == 1 and fast.block is not model.block
        assert (fast.state.given, fast.state.restored) == (1, 1) and _NewArgs.made[-2:] == [(7,), (7,)]
        # (all but those of the module that copies itself its own way)
        assert all(p.is_meta for n, p in fast.named_parameters()
                   if not n.startswith("own.") and not modules.is_lazy_parameter(p)) == (device == "meta")
    assert modules._copies_as_module(nn.Conv2d) and modules._copies_as_module(_OwnState)
    assert not modules._copies_as_module(_NewArgs) and not modules._copies_as_module(_OwnCopy)
    assert _structure(model, {}) == before  # the model itself as it was
    x = torch.randn(1, 1, 6, 6)
    assert torch.equal(copy_model(model).block(x), model.block(x))  # the hook and parametrization kept


def _deepcopy_as_copy_model(model, device):
    """copy.deepcopy with the new parameters and buffers copy_model puts in its memo."""
    import copy
    memo = {}
    for m in model.modules():
        for p in m._parameters.values():
            if isinstance(p, nn.parameter.UninitializedParameter):
                memo[id(p)] = nn.parameter.UninitializedParameter(device=device or p.device, dtype=p.dtype)
            elif device is not None:
                memo[id(p)] = nn.Parameter(torch.empty_like(p, device=device), requires_grad=p.requires_grad)
        for b in m._buffers.values():
            if device is not None:
                memo[id(b)] = torch.empty_like(b, device=device)
    return copy.deepcopy(model, memo)


def test_a_watched_call_is_reused_until_a_shape_changes_in_place():
    """The proof's module calls (ModuleCalls watched by the mode the forward runs under) are
    compared by their signatures when asked: equal while no op reshaped a tensor in place, none
    after."""
    device = replay.watching("meta")
    calls = replay.ModuleCalls(device)
    with device:
        x = torch.empty(2, 3)
        calls.enter("lin", (x,), {})
        calls.leave("lin", torch.empty(2, 5))
        assert calls.output("lin", 0, replay.signature(((x,), {}))).shape == (2, 5)
        assert calls.output("lin", 0, replay.signature(((x.t(),), {}))) is replay.NOT_FOUND
        x.unsqueeze_(0)
        assert calls.output("lin", 0, replay.signature(((torch.empty(2, 3),), {}))) is replay.NOT_FOUND


# -- a call on sizes a side's answers do not touch (engine._call_key) ------------------------------


class _Resized(nn.Module):
    """CrossViT: the input resized to a fixed size where it is not that size already (a branch
    on H and W: three sides), then equal blocks on the fixed size, then one that still sees W."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()) for _ in range(3)))
        self.last = nn.Conv1d(2, 2, 3)

    def forward(self, x):
        H, W = x.shape[-2:]
        y = x
        if H != 8 or W != 6:
            y = F.interpolate(x, size=(8, 6))
        y = self.blocks(y)
        return y.flatten(2).sum(-1, keepdim=True) + self.last(x.mean(2)).sum(-1, keepdim=True)


class _TwoSides(nn.Module):
    """A branch on H, then a block called on a tensor of W: its steps on the side ``H > 4`` are
    its steps on the other side, as they would be computed there."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(2, 2, 3), nn.ReLU())

    def forward(self, x):
        y = x.mean(2)  # (N, 2, W)
        if x.size(2) > 4:
            return self.block(y) * 2
        return self.block(y)


def _repeated_calls(monkeypatch) -> list:
    calls = []
    original = engine.Propagator._repeat

    def counted(self, node, module, name, found):
        calls.append(name)
        return original(self, node, module, name, found)

    monkeypatch.setattr(engine.Propagator, "_repeat", counted)
    return calls


@pytest.mark.parametrize("model, shape, names", [
    (_Resized, (2, "H", "W"), ["H", "W"]),
    (_TwoSides, (2, "H", "W"), ["H", "W"]),
])
def test_a_call_on_sizes_no_side_touches_is_computed_once_for_all_sides(monkeypatch, model, shape, names):
    calls = _repeated_calls(monkeypatch)
    shared = symshape.analyze(model().eval(), shape)
    assert calls, "each side after the first takes the blocks' steps from the first"
    monkeypatch.undo()
    monkeypatch.setattr(engine, "_symbols_of", lambda *a: False)  # every fact in every key
    fresh = symshape.analyze(model().eval(), shape)
    assert shared.steps == fresh.steps
    # what explain() shows of each side: the same steps (a repeated call is one node of the graph,
    # its steps copies of the first call's, as for the equal blocks of one trace)
    assert _shown_sides(shared) == _shown_sides(fresh)
    assert str(shared.valid_sizes()) == str(fresh.valid_sizes())
    assert_agrees(model().eval(), shape, grid(names, [1, 3, 4, 5, 6, 8, 9]))


def _shown_sides(analysis) -> list:
    return [[(conds, None if steps is None else [replace(st, node="", copy_of="") for st in steps], rest)
             for conds, steps, *rest in s.sides] for s in analysis.steps]


def test_the_facts_a_call_depends_on_are_those_that_reach_its_sizes():
    N, H, W = sympy.symbols("N H W", integer=True, positive=True)
    assert engine._connected([sympy.Ge(H, 2), sympy.Ge(W, 3)], {N}) == {N}
    assert engine._connected([sympy.Ge(N * H, 10), sympy.Le(H, 2), sympy.Ge(W, 3)], {N}) == {N, H}
    x = SymTensor((N, 2, W))
    found: set = set()
    assert engine._symbols_of(((x, 3), {"size": (H, 1)}), found) and found == {N, W, H}
    assert not engine._symbols_of((object(),), set())  # what it cannot read: every fact is kept
    # chunk()'s pieces: when each exists is part of the value, its sizes too
    pieces = Pieces([SymTensor((N, 2))], [(W, 2, "two pieces")], 1)
    found = set()
    assert engine._symbols_of(pieces, found) and found == {N, W}
    assert engine._hashable(pieces) != engine._hashable(Pieces([SymTensor((N, 2))], [(H, 2, "two pieces")], 1))


def test_a_tensors_sizes_are_read_once_for_every_key_it_is_in(monkeypatch):
    """DenseNet's layers each take the list of every feature map before: a tensor's symbols are
    read off its fields once and kept on it (frozen), not again for each later call's key. The
    same symbols each time, and one whose fields hold what cannot be read stays unreadable."""
    N, H, W = sympy.symbols("N H W", integer=True, positive=True)
    walks = []
    fields_symbols = engine._fields_symbols
    monkeypatch.setattr(engine, "_fields_symbols", lambda v, out: walks.append(v) or fields_symbols(v, out))
    features = [SymTensor((N, 4 * k, H, symshape.dims.floor_div(W, 2))) for k in range(1, 30)]
    for n in range(1, 30):
        found: set = set()
        assert engine._symbols_of((features[:n], {}), found) and found == {N, H, W}
    assert len(walks) == 29
    odd = SymTensor((N, 2), values=(object(),))
    assert not engine._symbols_of(odd, set()) and not engine._symbols_of([odd], set())


class _Cut(nn.Module):
    def forward(self, x):
        if x.size(2) > 4:  # answered already where it is called: no branch of its own
            return x[..., :4]
        return x


class _Decided(nn.Module):
    """A call with the same arguments on both sides of a branch on L, whose own Python asks the
    same question: its steps on one side are not its steps on the other."""

    def __init__(self):
        super().__init__()
        self.cut = _Cut()

    def forward(self, x):
        if x.size(2) > 4:
            return self.cut(x) * 2
        return self.cut(x) + 1


def test_a_call_on_sizes_a_side_decides_is_computed_on_each_side(monkeypatch):
    calls = _repeated_calls(monkeypatch)
    a = symshape.analyze(_Decided().eval(), (2, "L"))
    assert "cut" not in calls
    assert a.at(L=3).output_shape == (1, 2, 3) and a.at(L=9).output_shape == (1, 2, 4)
    assert_agrees(_Decided().eval(), (2, "L"), [{"L": n} for n in range(1, 10)])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_meta_copy_of_a_tensor_is_laid_out_as_empty_like_lays_it_out(data):
    """copy_model's meta tensors (made with the strides themselves where empty_like keeps them)
    have the shape, strides, offset, dtype and layout torch.empty_like gives, for tensors laid
    out in every way a model holds them."""
    shape = data.draw(st.lists(st.integers(0, 4), max_size=4), label="shape")
    dtype = data.draw(st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool]), label="dtype")
    t = torch.empty(shape, dtype=dtype, device=data.draw(st.sampled_from(["cpu", "meta"]), label="device"))
    how = data.draw(st.sampled_from(["as is", "transposed", "sliced", "expanded", "channels last",
                                     "odd strides of ones", "parameter"]), label="layout")
    if how == "transposed" and t.dim() >= 2:
        t = t.transpose(0, -1)
    elif how == "sliced" and t.dim() >= 1:
        t = t[..., ::2]
    elif how == "expanded":
        t = t.unsqueeze(0).expand(3, *t.shape)
    elif how == "channels last" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    elif how == "odd strides of ones" and t.numel() > 0:
        t = t.reshape(1, *t.shape, 1).as_strided((1, *t.shape, 1), (7, *t.stride(), 5))
    elif how == "parameter" and dtype.is_floating_point:
        t = nn.Parameter(t)
    made, expected = modules._empty_like(t, "meta"), torch.empty_like(t, device="meta")
    assert (made.shape, made.stride(), made.storage_offset(), made.dtype, made.layout, made.device,
            made.requires_grad) == (expected.shape, expected.stride(), expected.storage_offset(),
                                    expected.dtype, expected.layout, expected.device, expected.requires_grad)


def test_a_module_run_whole_passes_through_the_traces_own_patches(monkeypatch):
    """A module run whole on fake tensors while symshape traces runs as in torch through its
    tracer, fx's patches of nn.Module left in place (undoing and redoing them sets two class
    attributes of nn.Module each way, which updates every subclass: a millisecond each with
    timm imported); the analysis agrees with torch, and the patches are gone afterwards."""
    redone = []
    patcher = torch.fx._symbolic_trace._Patcher
    original = patcher.reapply_all_patches
    monkeypatch.setattr(patcher, "reapply_all_patches", lambda self: redone.append(1) or original(self))
    reached = []  # fx's own tracer, asked while a module runs whole (its scan of the parameters)
    for name in ("call_module", "getattr"):
        fx_own = getattr(torch.fx.Tracer, name)
        monkeypatch.setattr(torch.fx.Tracer, name, lambda self, *a, _f=fx_own, _n=name:
                            (reached.append(_n) if modules.passes_through() else None) or _f(self, *a))
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    model = nn.Sequential(_Caches(1.0), _Caches(2.0), nn.Flatten(), nn.LazyLinear(2))
    a = symshape.analyze(model, ("L", 4))
    assert [s.rule for s in a.steps[:2]] == ["meta"] * 2
    assert not redone and not reached
    assert nn.Module.__call__ is call and nn.Module.__getattr__ is getattr_
    assert not modules.passes_through()
    assert_agrees(model, ("L", 4), [{"L": n} for n in (1, 2, 5)])


def test_a_module_run_whole_under_another_tracer_runs_with_its_patches_undone():
    """Outside symshape's own trace (inside the user's fx trace) fx's patches are not
    symshape's to pass through: torch's meta kernels run the module with them undone, so the
    other trace records nothing of it."""
    from symshape.meta import run_meta

    found = []

    def f(x):
        with modules.untraced() as passing:
            found.append(passing)
        found.append(run_meta(nn.Linear(4, 3), (SymTensor((2, sympy.Symbol("L", integer=True, positive=True), 4)),),
                              {}, "nn.Linear"))
        return x + 1

    graph = torch.fx.symbolic_trace(f).graph
    assert found[0] is False
    assert tuple(found[1].value.shape)[-1] == 3
    assert [n.op for n in graph.nodes] == ["placeholder", "call_function", "output"]


def test_a_repeated_calls_steps_name_the_layers_of_that_call():
    """An equal later call takes the first call's steps, each naming (``module``) the layer of
    its own call, found by one listing of the module's submodules (shared ones under each name)
    as get_submodule finds it; a name not listed is asked of get_submodule."""
    shared = nn.Linear(2, 2)
    block = nn.Sequential(nn.Sequential(shared, nn.ReLU()), shared)
    within = engine._Submodules(block)
    for name, m in block.named_modules(remove_duplicate=False):
        assert within.get(name, m) is engine._submodule(block, name, m) is m
    assert within.get("0.7", shared) is engine._submodule(block, "0.7", shared) is shared
    relu = nn.ReLU()
    assert within.get("1", relu) is engine._submodule(block, "1", relu) is relu  # another type: the traced one
    a = symshape.analyze(_TwoEqualLinears(), ("L", 2))
    copied = [s for s in a.steps if s.copy_of]
    assert copied and all(s.module is a.model.get_submodule(s.name) for s in copied if s.module is not None)
    step = a.steps[0]
    assert engine._copied(step, name="x", copy_of="y") == replace(step, name="x", copy_of="y")
    assert not hasattr(engine.Step, "__post_init__")  # (what _copied, skipping __init__, relies on)


class _TwoEqualLinears(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
        self.b = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))

    def forward(self, x):
        return self.b(self.a(x))


# -- relations sympy is not asked to settle ---------------------------------------------------------


class _ConvMlpHead(nn.Module):
    """VGG's head: below 7x7 the features are pooled up to 7x7 first (a branch on each size)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.MaxPool2d(2))
        self.fc = nn.Conv2d(4, 6, 7)

    def forward(self, x):
        x = self.features(x)
        if x.shape[-2] < 7 or x.shape[-1] < 7:
            x = F.adaptive_avg_pool2d(x, (max(7, x.shape[-2]), max(7, x.shape[-1])))
        return self.fc(x).flatten(1)


def test_requirements_and_merged_sides_are_not_settled_by_sympys_assumptions(monkeypatch):
    """A requirement kept as a fact, and the equality of two sides' sizes asked of the facts, are
    built as they are: sympy's attempt to settle them asks its assumptions of every floor (a
    tenth of VGG's analysis) and settles nothing the rules left open. The answers are torch's."""
    H = sympy.Symbol("H", integer=True, positive=True)
    need = symshape.dims.floor_div(H - 3, 2) + 1
    x, y, even = symshape.dims.floor_div(H + 1, 2), symshape.dims.floor_div(H, 3), sympy.Eq(H % 2, 0)
    merged = sympy.Piecewise((x, even), (y, True))
    is_ge, is_eq = sympy.core.relational.is_ge, sympy.core.relational.is_eq
    monkeypatch.setattr(sympy.core.relational, "is_ge", _not_asked_of(is_ge, need))
    monkeypatch.setattr(sympy.core.relational, "is_eq", _not_asked_of(is_eq, x))
    assert engine._size_facts.__wrapped__(need, ">=", 7) == (sympy.Ge(need, 7, evaluate=False),)
    from symshape import meta
    assert meta._either(x, y, even, ()) == merged
    monkeypatch.undo()
    assert_agrees(_ConvMlpHead(), (3, "H", "W"), grid(("H", "W"), [10, 16, 29, 31, 32, 40, 64]))


def _not_asked_of(settle, lhs):
    """sympy's ``settle`` (is_ge, is_eq), refusing to be asked of ``lhs``."""
    def asked(a, b, *args, **kwargs):
        assert a is not lhs and b is not lhs, f"sympy asked to settle a relation of {lhs}"
        return settle(a, b, *args, **kwargs)
    return asked


def _bogus_pool_rule(monkeypatch, least: int):
    """nn.MaxPool2d's rule, wrong: it also requires W >= ``least`` of its input."""
    from symshape.rules import registry

    rule = registry._MODULE_RULES[nn.MaxPool2d]
    original = rule.fn

    def bogus(ctx, module, x, **kw):
        ctx.at_least(x.shape[-1], least, "a bogus check")
        return original(ctx, module, x, **kw)

    monkeypatch.setitem(registry._MODULE_RULES, nn.MaxPool2d, rule.__class__(
        rule.name, bogus, rule.kind, rule.target, rule.bound, rule.overridable))


def test_a_wrong_trace_that_refuses_a_model_made_for_one_size_never_reaches_the_user(monkeypatch):
    """torch runs this model at 331 x 331 only (NASNet-A Large's size); a wrong rule that refuses
    it there leaves a trace that accepts no size, and none of the proof's usual sizes runs in
    torch either. The sizes models are made for are tried too: torch runs at 331, the trace is
    contradicted, and the model runs whole on torch's meta kernels instead (it had been answered
    "no input size", proved at 224 x 256 and 224 x 224, where torch refuses it too)."""
    net = nn.Sequential(nn.Conv2d(1, 1, 331), nn.MaxPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    assert symshape.analyze(net, (1, "H", "W")).valid_sizes().summary() == "H = 331 and W = 331"
    _bogus_pool_rule(monkeypatch, 10 ** 6)
    analysis = symshape.analyze(net, (1, "H", "W"))
    assert analysis.valid_sizes().summary() == "H = 331 and W = 331"
    assert analysis.proof == "H=331, W=331" and [s.name for s in analysis.steps] == ["(model)"]


def test_a_trace_that_refuses_every_size_of_a_model_made_for_one_size_never_reaches_the_user(monkeypatch):
    """The same model, with a rule that refuses every size outright: torch's forward at the sizes
    models are made for runs at 331 x 331, so the refusal is no answer (TraceMismatch)."""
    from symshape.rules import registry

    rule = registry._MODULE_RULES[nn.MaxPool2d]

    def never(ctx, module, x, **kw):
        ctx.refuse("a bogus refusal")

    monkeypatch.setitem(registry._MODULE_RULES, nn.MaxPool2d, rule.__class__(
        rule.name, never, rule.kind, rule.target, rule.bound, rule.overridable))
    net = nn.Sequential(nn.Conv2d(1, 1, 331), nn.MaxPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with pytest.raises(symshape.TraceMismatch, match="refuses every size"):
        symshape.analyze(net, (1, "H", "W"))
