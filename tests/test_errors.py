"""Errors, never guesses: unsupported ops, untraceable forwards, bad input shapes and sizes."""

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import seed000_mnist
import symshape
from oracle import assert_agrees, grid, torch_runs
from symshape.dims import size_symbol


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.size(2) > 10:  # Python control flow on a size
            x = F.max_pool2d(x, 2)
        return x


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Branchy()

    def forward(self, x):
        return self.body(x)


class DataBranchy(Branchy):
    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:  # Python control flow on the values: no size answers it
            x = F.max_pool2d(x, 2)
        return x


class DataOuter(Outer):
    def __init__(self):
        super().__init__()
        self.body = DataBranchy()


def test_a_branch_on_sizes_is_traced_once_per_side():
    """fx cannot follow ``if x.size(2) > 10``; the module is then one step, traced down each side
    of the branch under its condition, and the sides merged."""
    a = symshape.analyze(Outer(), (1, "H", "W"))
    assert [s.name for s in a.steps] == ["body"] and a.steps[0].rule == "cases"
    assert a.at(H=12, W=12).output_shape == (1, 4, 10, 10)
    assert a.at(H=13, W=13).output_shape == (1, 4, 5, 5)
    assert_agrees(Outer(), (1, "H", "W"), grid(("H", "W"), [1, 3, 4, 12, 13, 14]))


def test_untraceable_forward_names_module_line_and_remedy():
    """A branch on the values (not the sizes) can be answered neither by fx nor by running the
    module whole: the error names the module, the line and what can be done."""
    with pytest.raises(symshape.UntraceableModel) as e:
        symshape.analyze(DataOuter(), (1, "H", "W"))
    err = e.value
    assert err.module == "DataBranchy at 'body'"
    assert "if x.sum() > 0:" in err.line and "test_errors.py" in err.line
    assert "control flow" in str(err) and "symshape.analyze(model.features" in str(err)


class TutorialNet(nn.Module):
    """The old PyTorch tutorial's num_flat_features loop, a rank check and len(x.shape)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5)
        self.fc = nn.Linear(6 * 12 * 12, 10)

    def forward(self, x):
        if x.dim() == 3:  # decided by the rank, the same at every size
            x = x.unsqueeze(0)
        assert len(x.shape) == 4
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        return self.fc(x)

    def num_flat_features(self, x):
        n = 1
        for s in x.size()[1:]:
            n *= s
        return n


def test_python_that_asks_about_ranks_and_sizes_traces():
    net = TutorialNet()
    a = symshape.analyze(net, (1, "H", "W"))
    assert str(a.in_features["fc"]) == "6*floor((H - 4)/2)*floor((W - 4)/2)"
    assert [s.op for s in a.steps[:2]] == ["nn.Conv2d", "F.relu"]  # the unsqueeze branch is not taken
    assert a.at(H=28, W=28).in_features["fc"] == 864
    assert a.solve(864, square=True).enumerate(40) == [{"H": 28, "W": 28}, {"H": 29, "W": 29}]
    assert_agrees(net, (1, "H", "W"), grid(("H", "W"), [4, 5, 28, 29, 30]))
    assert a.verify(samples=8).ok
    # a condition that depends on the size: the module runs whole under torch's meta kernels
    assert symshape.analyze(Outer(), (1, "H", "W")).at(H=13, W=13).output_shape == (1, 4, 5, 5)


def test_unsupported_module_names_op_path_and_node():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.Bilinear(3, 3, 4)))
    with pytest.raises(symshape.UnsupportedOperation) as e:
        symshape.analyze(net, (1, "H", "W"))
    assert e.value.op == "nn.Bilinear"
    assert e.value.where == "1.0"
    assert "call_module[target=1.0]" in e.value.node


def test_unsupported_function_names_it():
    """An op without a hand rule goes to torch's meta kernel; one whose size depends on the data
    (torch.nonzero) is refused, naming the op and why."""
    class T(nn.Module):
        def forward(self, x):
            return torch.nonzero(x)

    with pytest.raises(symshape.UnsupportedOperation, match=r"torch\.nonzero.*depends on the data"):
        symshape.analyze(T(), (1, "H", "W"))


def test_view_after_permute_is_decided_by_torchs_view_from_the_strides():
    """permute then view: the strides are known, so torch's own view decides -- with one
    channel the permuted tensor is laid out as a contiguous one and the view always works; with
    three it works only where the merged dims allow it."""
    class P(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).view(x.size(0), -1)

    assert str(symshape.analyze(P(), (1, "H", "W")).valid_sizes()) == "any H and W"
    for channels in (1, 3):
        assert_agrees(P(), (channels, "H", "W"), grid(("H", "W"), [1, 2, 3]))


def test_view_of_a_tensor_whose_strides_are_not_known_is_refused_not_guessed():
    """A tensor whose layout symshape does not know (an op it does not follow) cannot be viewed:
    the view rule refuses, naming why, and the meta path refuses it too."""
    from symshape.rules import Context, rule_for_method
    from symshape.tensor import SymTensor

    unknown = SymTensor((2, 3), contiguous=False)
    assert unknown.known_strides is None
    with pytest.raises(symshape.UnsupportedOperation, match="strides symshape does not know"):
        rule_for_method("view").fn(Context("v", "Tensor.view", "v"), unknown, 6, what="view")
    strided = SymTensor((2, 3), contiguous=False, strides=(1, 2))
    assert strided.known_strides == (1, 2)
    with pytest.raises(symshape.UnsupportedOperation, match="torch's own view decides"):
        rule_for_method("view").fn(Context("v", "Tensor.view", "v"), strided, 6, what="view")


def test_where_keeps_a_permuted_layout_so_a_merging_view_needs_single_rows():
    """torch.where of a permuted tensor keeps its layout (torch's TensorIterator): the view
    that merges the dims then works only at 1x1 -- torch's meta kernels give the strides."""
    class Q(nn.Module):
        def forward(self, x):
            y = x.permute(0, 2, 3, 1)
            return torch.where(y > 0, y, y * 2).view(x.size(0), -1)

    assert str(symshape.analyze(Q(), (3, "H", "W")).valid_sizes()) == "H = 1 and W = 1"
    assert_agrees(Q(), (3, "H", "W"), grid(("H", "W"), [1, 2, 3]))


def test_subclass_uses_parent_rule_unless_forward_is_overridden():
    class MyConv(nn.Conv2d):
        pass

    class PaddedConv(nn.Conv2d):  # its own forward: traced, not matched to the Conv2d rule
        def forward(self, x):
            return super().forward(F.pad(x, (1, 1, 1, 1)))

    a = symshape.analyze(MyConv(1, 2, 3), (1, "H", "W"))
    assert a.steps[0].rule == "conv" and a.steps[0].op.endswith("MyConv")
    assert str(a.output_shape) == "(N, 2, H - 2, W - 2)"
    b = symshape.analyze(PaddedConv(1, 2, 3), (1, "H", "W"))
    assert [s.rule for s in b.steps] == ["pad_function", "conv_function"]
    assert str(b.output_shape) == "(N, 2, H, W)"
    assert_agrees(PaddedConv(1, 2, 3), (1, "H", "W"), grid(("H", "W"), [1, 2, 3]))


def test_wrong_rank_is_refused_at_analysis():
    with pytest.raises(symshape.InvalidInputSize, match="input_shape excludes the batch dim"):
        symshape.analyze(nn.Conv2d(1, 2, 3), (1, 1, "H", "W"))


@pytest.mark.parametrize(
    "shape, error, match",
    [
        ((1, "N", "W"), ValueError, "batch dim"),
        ((1, -1, "W"), ValueError, "int >= 0, got -1"),
        # a fixed 0 is an empty tensor: torch's conv refuses it, and so does symshape, by layer
        ((1, 0, "W"), symshape.InvalidInputSize, "conv1: kernel 5 needs at least 5 rows, gets 0"),
        ("1,H,W", TypeError, "tuple"),
        ((1, 2.5, "W"), TypeError, "ints or size names"),
        ((1, "H W", 3), ValueError, "identifier"),
    ],
)
def test_bad_input_shapes(shape, error, match):
    with pytest.raises(error, match=match):
        symshape.analyze(seed000_mnist.Net(), shape)


def test_at_checks_its_arguments():
    a = symshape.analyze(seed000_mnist.Net(), (1, "H", "W"))
    with pytest.raises(TypeError, match="missing size"):
        a.at(H=28)
    with pytest.raises(TypeError, match="unknown size name"):
        a.at(H=28, W=28, X=3)
    with pytest.raises(ValueError, match="positive int"):
        a.at(H=28, W=0)
    assert a.at(H=28, W=28, N=5).steps[0].output == (5, 10, 24, 24)


def test_in_features_helper():
    net = seed000_mnist.Net()
    assert str(symshape.in_features(net, (1, "H", "W"))) == "20*floor((H - 12)/4)*floor((W - 12)/4)"
    assert symshape.in_features(net, (1, "H", "W"), layer="fc2") == 50
    with pytest.raises(KeyError, match="fc1, fc2"):
        symshape.in_features(net, (1, "H", "W"), layer="fc3")
    with pytest.raises(symshape.SymshapeError, match="no layer whose parameters fix an input size"):
        symshape.in_features(nn.Conv2d(1, 2, 3), (1, "H", "W"))


def test_static_misconfiguration_refuses_every_size():
    net = nn.Sequential(nn.MaxPool2d(3, padding=2))
    with pytest.raises(symshape.InvalidInputSize, match=r"^0: pad should be at most half of kernel size, "
                       r"gets padding 2 and kernel 3 \(whatever H, W are\)$"):
        symshape.analyze(net, (1, "H", "W"))
    assert not torch_runs(net, (1, "H", "W"), {"H": 30, "W": 30})
    assert_agrees(net, (1, "H", "W"), grid(("H", "W"), [1, 7, 30]))


def test_a_check_that_fails_at_every_size_is_refused_at_analysis():
    # (1, "H") into a Conv2d net: torch reads the 3-D input as unbatched (C=N, H=1, W=H), so the
    # 5x5 kernel never fits one row. The formula after it would be negative nonsense.
    net = seed000_mnist.Net()
    with pytest.raises(symshape.InvalidInputSize, match=r"^conv1: kernel 5 needs at least 5 rows, gets 1 \(whatever H is\)$") as e:
        symshape.analyze(net, (1, "H"))
    assert e.value.layer == "conv1"
    assert not any(torch_runs(net, (1, "H"), {"H": h}) for h in (5, 28, 100))
    # a fixed size torch refuses is refused at analysis, naming the layer
    with pytest.raises(symshape.InvalidInputSize, match=r"^max_pool2d: max pooling kernel 2 needs at least 2 rows, gets 1$"):
        symshape.analyze(net, (1, 5, 5))
    # a wrong declared in_features is not a refusal of every size: check reports it
    assert symshape.analyze(seed000_mnist.NetMaxPool(), (1, 28, 28)).evaluate().mismatches


@pytest.mark.parametrize("fn", [
    lambda x: x.nonzero(),
    lambda x: torch.unique(x),
], ids=["nonzero", "unique"])
def test_ops_torchs_meta_kernel_cannot_answer_exactly_are_refused_by_name(fn):
    """Where the generic rule (torch's meta kernels) cannot be exact -- a kernel that needs
    concrete sizes, more than MAX_LEAVES branches, a failure inside torch -- the op is refused,
    named, never guessed (these are gaps to close, listed in docs/how-it-works.md)."""
    class T(nn.Module):
        def forward(self, x):
            return fn(x)

    with pytest.raises(symshape.UnsupportedOperation, match="torch's meta kernel"):
        symshape.analyze(T(), (2, "H", "W"))


class _SkipIfTensor(nn.Module):
    """A decoder that concatenates its skip only ``if isinstance(skip, torch.Tensor)``: torch.fx
    sees a Proxy there (False) and traces the branch torch never takes."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(2, 3, 3, padding=1)
        self.conv = nn.Conv2d(5, 2, 3, padding=1)

    def forward(self, x):
        skip = self.down(x)
        x = torch.cat([x, skip], 1) if isinstance(skip, torch.Tensor) else torch.cat([x, x], 1)
        return self.conv(x)


def test_isinstance_of_a_traced_value_answers_as_on_the_real_one():
    """fx alone would take the branch torch never takes (a Proxy is no Tensor). symshape's
    proxies answer isinstance as the value they stand for: the skip is concatenated, step by
    step, and the answer is torch's at every size of the grid."""
    model = _SkipIfTensor()
    a = symshape.analyze(model, (2, "H", "W"))
    assert [s.rule for s in a.steps] == ["conv", "cat", "conv"]
    assert a.output_shape == (a.batch, 2, *map(size_symbol, "HW"))
    assert_agrees(model, (2, "H", "W"), grid(("H", "W"), [1, 2, 3, 5]))


class _AsksTypes(nn.Module):
    """Python that asks what its values are: sizes are ints, a shape is a tuple (torch.Size)."""

    def forward(self, x, skip=None):
        h = x.shape[2]
        assert isinstance(h, int) and isinstance(x.shape, tuple) and torch.jit.isinstance(x, torch.Tensor)
        size = (h, h) if isinstance(h, int) else tuple(h)
        if not isinstance(skip, torch.Tensor):  # None: the default
            skip = x
        return torch.cat([x[..., : size[0]], skip[..., : size[1]]], 1).flatten(1)


def test_isinstance_of_sizes_and_shapes_answers_as_in_torch():
    model = _AsksTypes()
    a = symshape.analyze(model, (2, "H", "W"))
    assert "meta" not in [s.rule for s in a.steps]
    assert_agrees(model, (2, "H", "W"), grid(("H", "W"), [1, 2, 3]))


def test_a_forward_hook_that_changes_the_shape_is_followed_not_missed():
    """A hooked module is traced through, so its hook runs on the traced values: 196 features
    reach the LazyLinear at 16x16, as in torch (not 784, the conv's output without the hook)."""
    s = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(7))
    s[0].register_forward_hook(lambda m, i, o: F.max_pool2d(o, 2))
    a = symshape.analyze(s, (3, "H", "W"))
    assert a.at(H=16, W=16).in_features["2"] == 196
    assert str(a.in_features["2"]) == "4*floor((H - 2)/2)*floor((W - 2)/2)"
    assert isinstance(s[2], nn.LazyLinear) and s[2].has_uninitialized_params()  # left as it was
    assert len(s[0]._forward_hooks) == 1


class _GuardedSegmenter(nn.Module):
    """Segmentation libraries' guard: Python raises unless the sizes are multiples of 32."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 != 0 or w % 32 != 0:
            raise RuntimeError(f"input size {h}x{w} must be divisible by 32")
        return self.enc(x)


def test_a_python_guard_on_sizes_becomes_the_valid_sizes_with_its_message():
    model = _GuardedSegmenter()
    a = symshape.analyze(model, (3, "H", "W"))
    valid = a.valid_sizes()
    assert valid.summary() == "H ≥ 32, H ≡ 0 (mod 32) and W ≥ 32, W ≡ 0 (mod 32)"
    assert any("must be divisible by 32" in r.reason and "HxW" in r.reason for _, r in a.requirements)
    with pytest.raises(symshape.InvalidInputSize, match="must be divisible by 32"):
        a.at(H=33, W=64)
    assert_agrees(model, (3, "H", "W"), grid(("H", "W"), [1, 31, 32, 33, 64]))


class _GuardedClassifier(nn.Module):
    """The guard in the model's own forward, before a Linear declared for 64x64 inputs."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 32 * 32, 10)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 != 0 or w % 32 != 0:
            raise RuntimeError(f"input size {h}x{w} must be divisible by 32")
        return self.fc(self.enc(x).flatten(1))


def test_a_linear_behind_the_models_own_guard_is_still_checked():
    """The guarded forward is one branching step; the Linear it calls on the side that runs is
    still a step of its own, so in_features, check() and explain() see it."""
    model = _GuardedClassifier()
    a = symshape.analyze(model, (3, "H", "W"))
    assert list(a.in_features) == ["fc"]
    assert [a.evaluate(H=h, W=w).in_features["fc"] for h, w in ((32, 32), (64, 96))] == [1024, 6144]
    report = a.check(H=64, W=96)
    assert [f.layer for f in report.findings] == ["fc"] and report.findings[0].value == 4 * 32 * 48
    fits = "H = 32 and W = 128; or H = 64 and W = 64; or H = 128 and W = 32"
    assert f"fc: fits only at {fits}" in str(a.check())
    assert a.solve(4 * 32 * 32).summary() == fits
    assert all(torch_runs(model, (3, "H", "W"), {"H": h, "W": w}) for h, w in ((32, 128), (64, 64), (128, 32)))
    assert not torch_runs(model, (3, "H", "W"), {"H": 96, "W": 32})
    text = str(a.explain())
    assert "fc " in text and "must be divisible by 32" in text and "{rhs}" not in text
    assert_agrees(model, (3, "H", "W"), grid(("H", "W"), [31, 32, 64, 96]))
    assert a.verify(sizes=[{"H": h, "W": w} for h in (32, 64) for w in (33, 64)]).ok


class _PadOddToEven(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        if x.size(-1) % 2 == 1:
            x = F.pad(x, (0, 1))
        return self.conv(x)


def test_a_branch_that_pads_odd_sizes_gives_cases():
    model = _PadOddToEven()
    a = symshape.analyze(model, (1, "H", "W"))
    assert [a.evaluate(H=5, W=w).output_shape[-1] for w in range(1, 8)] == [2, 2, 4, 4, 6, 6, 8]
    assert_agrees(model, (1, "H", "W"), grid(("H", "W"), range(1, 8)))


def test_a_refusal_at_every_size_inside_a_traced_module_stays_that_refusal():
    """An op refused at every size inside a module fx follows is InvalidInputSize, not a tracing
    failure (found by the formula property test): running the module whole would not help."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.sm = nn.AdaptiveAvgPool3d((None, 1, 1)), nn.Softmax2d()

        def forward(self, x):
            return self.sm(self.pool(x))

    with pytest.raises(symshape.InvalidInputSize, match="Softmax2d expects a 3D or 4D input"):
        symshape.analyze(Net(), (1, "T", "H", "W"))
    assert not torch_runs(Net(), (1, "T", "H", "W"), {"T": 2, "H": 3, "W": 3})


def test_an_op_after_a_layer_refused_at_every_size_does_not_crash_the_meta_path():
    """A transposed convolution whose output is -1 long at every size, then ops with no hand
    rule: analyze() refuses every size (InvalidInputSize), never crashes making a fake tensor of
    size -1 (found by the 10,000-model fuzz)."""
    from strategies import Rearrange, Skip

    net = nn.Sequential(Rearrange("mean", 1, 1), Skip(nn.Sequential(
        nn.ConvTranspose1d(1, 2, 1, padding=1), Rearrange("permute", 1, 1), nn.Conv1d(2, 1, 1)), False))
    with pytest.raises(symshape.InvalidInputSize, match="whatever L is"):
        symshape.analyze(net, (1, "L"))
    assert not any(torch_runs(net, (1, "L"), {"L": n}) for n in (1, 2, 5))


def test_glu_of_an_odd_fixed_dim_is_refused_at_analysis():
    """Found by the 10,000-model fuzz: a GLU halving a dim fixed at 1 (after adaptive pooling)
    left a size of 1/2 that the next op (a strided slice) could not compare; torch refuses every
    size, and so does symshape, naming the GLU."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool1d(1)

        def forward(self, x):
            return F.glu(self.pool(x))[..., ::2].contiguous()

    with pytest.raises(symshape.InvalidInputSize, match="GLU halves dim 2, which must be even, gets 1"):
        symshape.analyze(Net(), (2, "L"))
    assert not any(torch_runs(Net(), (2, "L"), {"L": n}) for n in (1, 2, 5))


class _ZeroFilters(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(0, 3, 3, 3))

    def forward(self, x):
        return F.conv2d(x, self.weight)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(3, 0, 3), (3, "H", "W")),
    (lambda: nn.Conv1d(3, 0, 1), (3, "L")),
    (lambda: nn.Conv3d(3, 0, 2), (3, "D", "H", "W")),
    (lambda: nn.ConvTranspose2d(3, 0, 3), (3, "H", "W")),
    (lambda: nn.ConvTranspose1d(3, 0, 2, stride=2), (3, "L")),
    (_ZeroFilters, (3, "H", "W")),
])
def test_a_convolution_with_no_output_channels_is_refused_at_every_size(make, shape):
    """torch refuses it whatever the input (issue 22: symshape had accepted it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
        model = make()
    with pytest.raises(symshape.InvalidInputSize, match="0 output channels"):
        symshape.analyze(model, shape)
    for n in (4, 9):
        with pytest.raises(RuntimeError):
            model(torch.rand(1, *(n if isinstance(d, str) else d for d in shape)))
