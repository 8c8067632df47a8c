"""The four seed threads as acceptance tests, with the numbers the threads give."""

import pytest
import sympy
import torch

import seed000_mnist
import seed001_cnnclf
import seed002_pytorch_mnist
import seed003_cs231n
import symshape
from oracle import assert_agrees, grid

H, W = sympy.symbols("H W", integer=True, positive=True)


@pytest.mark.parametrize("make", [seed000_mnist.Net, seed000_mnist.NetMaxPool])
def test_seed000_formula_and_320(make):
    a = symshape.analyze(make(), (1, "H", "W"))
    assert str(a.in_features["fc1"]) == "20*floor((H - 12)/4)*floor((W - 12)/4)"
    assert a.evaluate(H=28, W=28).in_features["fc1"] == 320  # what reaches fc1 (NetMaxPool declares 20000)
    assert list(a.in_features) == ["fc1", "fc2"]


def test_seed000_formula_is_the_issue_formula():
    expr = symshape.in_features(seed000_mnist.Net(), (1, "H", "W"))
    expected = 20 * sympy.floor((H - 12) / 4) * sympy.floor((W - 12) / 4)
    for h in range(1, 60):
        for w in (12, 16, 28, 31, 45):
            assert expr.subs({H: h, W: w}) == expected.subs({H: h, W: w})


def test_seed000_too_small_names_the_layer():
    a = symshape.analyze(seed000_mnist.Net(), (1, "H", "W"))
    with pytest.raises(symshape.InvalidInputSize) as e:
        a.at(H=11, W=28)
    assert e.value.layer == "conv2"
    assert str(e.value).startswith("conv2: kernel 5 needs at least 5 rows, gets 3")
    with pytest.raises(symshape.InvalidInputSize, match="max_pool2d_1: max pooling kernel 2 needs at least 2 rows, gets 1"):
        a.at(H=15, W=28)


def test_seed000_any_number_refused_at_fc1():
    a = symshape.analyze(seed000_mnist.NetMaxPool(), (1, 28, 28))
    ev = a.evaluate()
    assert ev.in_features["fc1"] == 320
    assert [f.step for f in ev.mismatches] == ["fc1"]
    with pytest.raises(symshape.InvalidInputSize, match="fc1: in_features is 20000 but the input's last dim is 320"):
        a.at()


def test_seed001_cnnclf_3136():
    net = seed001_cnnclf.CNNclf()
    feats = symshape.analyze(net.net, (1, "H", "W"))
    assert feats.at(H=100, W=100).output_shape == (1, 64, 7, 7)
    assert tuple(net.net(torch.rand(3, 1, 100, 100)).shape) == (3, 64, 7, 7)
    a = symshape.analyze(net, (1, "H", "W"))
    assert a.evaluate(H=100, W=100).in_features["clf.1"] == 3136
    with pytest.raises(symshape.InvalidInputSize, match="clf.1: in_features is 64 but the input's last dim is 3136"):
        a.at(H=100, W=100)
    assert symshape.analyze(seed001_cnnclf.answer(), (1, 100, 100)).at().in_features["clf.1"] == 3136


def test_seed002_9216_step_by_step():
    a = symshape.analyze(seed002_pytorch_mnist.Net(), (1, "H", "W"))
    ev = a.at(H=28, W=28)
    assert ev.in_features["fc1"] == 9216
    shapes = {s.name: s.output for s in ev.steps}
    # the thread's comments: [1, 28, 28] -> [32, 26, 26] -> [64, 24, 24] -> [64, 12, 12] -> [9216]
    assert shapes["conv1"] == (1, 32, 26, 26)
    assert shapes["conv2"] == (1, 64, 24, 24)
    assert shapes["max_pool2d"] == (1, 64, 12, 12)
    assert shapes["flatten"] == (1, 9216)
    assert shapes["fc1"] == (1, 128)
    assert shapes["fc2"] == (1, 10)


def test_seed003_case1_5408_and_case2_1024():
    a = symshape.analyze(seed003_cs231n.simple_model, (3, "H", "W"))
    assert a.at(H=32, W=32).in_features["3"] == 5408 == 32 * 13 * 13
    b = symshape.analyze(seed003_cs231n.case2_model, (3, "H", "W"))
    ev = b.at(H=32, W=32)
    assert ev.in_features["4"] == 64 * 4 * 4
    pooled = [s.output[2] for s in ev.steps if s.op == "nn.MaxPool2d"]
    assert pooled == [16, 8, 4]


@pytest.mark.parametrize(
    "model, shape, sizes, some_run",
    [
        (seed000_mnist.Net, (1, "H", "W"), grid(("H", "W"), [1, 11, 12, 15, 16, 17, 28, 31]), True),
        # fc1 = Linear(20000, 50): torch refuses all of these at fc1, as symshape says
        (seed000_mnist.NetMaxPool, (1, "H", "W"), grid(("H", "W"), [12, 16, 28, 29]), False),
        (seed001_cnnclf.answer, (1, "H", "W"), grid(("H", "W"), [15, 16, 27, 28, 100, 101]), True),
        (seed002_pytorch_mnist.Net, (1, "H", "W"), grid(("H", "W"), [5, 6, 27, 28, 29]), True),
        (lambda: seed003_cs231n.simple_model, (3, "H", "W"), grid(("H", "W"), [6, 7, 31, 32, 33]), True),
        (lambda: seed003_cs231n.case2_model, (3, "H", "W"), grid(("H", "W"), [7, 8, 31, 32, 39, 40]), True),
    ],
)
def test_seeds_agree_with_torch(model, shape, sizes, some_run):
    accepted = assert_agrees(model(), shape, sizes)
    assert (accepted > 0) == some_run
