"""A module whose Python branches on a size, found while the model's forward is traced: the
trace takes back what that module's call added and makes the call one node of the graph, traced
by sides (symshape.trace._Tracer._resumed), instead of starting the model's forward again.

The answer must be the one a trace that starts again gives (the same steps, named alike, the same
shapes and requirements), and torch's at every size.
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid
from symshape import trace as T


class SamePad(nn.Module):
    """timm's Conv2dSame: a pad computed with ``max(..., 0)`` of a size (a branch), after ops of
    its own (named ``add``, ``relu`` ... as the root's are)."""

    def __init__(self, k: int = 1, s: int = 2):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(4, 4, k, stride=s)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        x = F.relu(x + 1) * self.scale
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / self.s) - 1) * self.s + self.k - ih, 0)
        pw = max((math.ceil(iw / self.s) - 1) * self.s + self.k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return self.conv(x)


class Net(nn.Module):
    """Ops before and after two branching modules of different fingerprints, and a parameter of
    one read again by the root after it (fx caches its proxy)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = SamePad(1, 2)  # (kernels smaller than their stride: a pad of -1 is clamped to 0)
        self.b = SamePad(2, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.stem(x) + 1)
        x = self.a(x)
        x = F.relu(x + 1) * self.a.scale
        x = self.b(x)
        x = F.relu(x + 1)
        return self.head(x.mean((2, 3)))


class Caching(nn.Module):
    """Sets an attribute before it branches: the trace starts again from a clean model."""

    def __init__(self):
        super().__init__()
        self.pad = SamePad(1, 2)
        self.seen = None

    def forward(self, x):
        self.seen = x.shape[-1]
        return self.pad(x)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.inner = Caching()

    def forward(self, x):
        return F.relu(self.inner(self.stem(x)) + 1)


def _summary(analysis):
    return [(s.name, s.op, str(s.inputs), str(s.output), s.rule, [str(r) for r in s.requirements], s.node)
            for s in analysis.steps], str(analysis)


def _traces(monkeypatch) -> list:
    """The module each fx trace of a model's own forward starts from (a side's trace aside)."""
    started = []
    original = T._Tracer.trace

    def counted(self, root, *args, **kwargs):
        if self.path is None:
            started.append(type(root).__name__)
        return original(self, root, *args, **kwargs)

    monkeypatch.setattr(T._Tracer, "trace", counted)
    return started


@pytest.mark.parametrize("model", [Net, Outer])
def test_a_branching_module_found_while_tracing_gives_the_answer_of_a_fresh_trace(model, monkeypatch):
    torch.manual_seed(0)
    net = model().eval()
    resumed = symshape.analyze(net, (3, "H", "W"))
    with monkeypatch.context() as m:
        m.setattr(T._Tracer, "_mark", lambda self: None)  # every branching module: start again
        again = symshape.analyze(net, (3, "H", "W"))
    assert _summary(resumed) == _summary(again)
    assert_agrees(net, (3, "H", "W"), grid(["H", "W"], [1, 2, 3, 5, 8, 13]))


def test_the_models_forward_is_traced_once(monkeypatch):
    """Net's two branching modules: one trace of its forward (each module's sides are traces of
    that module alone); a module that set an attribute before it branched: two."""
    started = _traces(monkeypatch)
    symshape.analyze(Net().eval(), (3, "H", "W"))
    assert started == ["Net"]
    started.clear()
    outer = Outer().eval()
    symshape.analyze(outer, (3, "H", "W"))
    assert started == ["Outer", "Outer"]
    assert outer.inner.seen is None  # and the model is as it was


def test_a_parameter_read_before_the_branch_and_after_it_is_one_node():
    """fx caches the proxy of a parameter it read: one read inside the module taken back is not
    the node the root's later read gets (that node is gone)."""
    analysis = symshape.analyze(Net().eval(), (3, "H", "W"))
    graph = analysis.graph
    graph.lint()
    reads = [n for n in graph.nodes if n.op == "get_attr" and n.target == "a.scale"]
    assert len(reads) == 1 and reads[0].users
