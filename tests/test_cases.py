"""Forwards whose structure depends on whether a size is 1: a squeeze of a dim whose size comes
from the input (``pool(x).squeeze()`` with batch ``N``). ``analyze()`` analyzes the cases
``s == 1`` and ``s != 1`` each on its own (``Analysis.cases``); every answer is checked against
torch here."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape
import symshape.cli
import symshape.formula
from symshape.errors import InvalidInputSize, SizeCases


class PoolSqueeze(nn.Module):
    """The idiom: pool to 1x1, squeeze, Linear (a batch of 1 squeezes the batch dim too)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).squeeze())


class SqueezeNorm(nn.Module):
    """BatchNorm1d after the squeeze: at batch 1 it gets a 1-D tensor, which torch refuses."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.bn(self.pool(self.conv(x)).squeeze()))


class SqueezeRows(nn.Module):
    """squeeze(2) drops the rows only where H == 1, so the sum over dim 2 that follows sums the
    rows (H != 1) or the columns (H == 1): in_features is 4*(W - 2), or 4."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, (1, 3))
        self.fc = nn.LazyLinear(5)

    def forward(self, x):
        x = self.conv(x).squeeze(2).sum(2)
        return self.fc(x.flatten(1))


def torch_output(model, shape):
    """The output shape of a real forward, or None where torch raises."""
    try:
        with torch.no_grad():
            return tuple(model(torch.rand(*shape)).shape)
    except (RuntimeError, ValueError, IndexError):
        return None


def symshape_output(analysis, **sizes):
    try:
        return analysis.at(**sizes).output_shape
    except InvalidInputSize:
        return None


def test_pool_squeeze_is_two_cases_that_agree_with_torch():
    model = PoolSqueeze().eval()
    a = symshape.analyze(model, (3, "H", "W"))
    assert [c.where for c in a.cases] and str(a.where[0]) == "Ne(N, 1)"
    assert a.output_shape[0] == a.batch and a.cases[0].output_shape == (10,)
    for n, h, w in itertools.product((1, 2, 3), range(1, 9), range(1, 9)):
        assert symshape_output(a, N=n, H=h, W=w) == torch_output(model, (n, 3, h, w)), (n, h, w)
    assert a.in_features == {"fc": 8} and a.cases[0].in_features == {"fc": 8}
    assert "case N == 1" in str(a)


def test_a_case_torch_refuses_whole():
    model = SqueezeNorm().eval()
    a = symshape.analyze(model, (3, "H", "W"))
    assert a.valid_sizes(batch=1).is_empty
    with pytest.raises(InvalidInputSize, match="bn: BatchNorm1d expects a 2D or 3D input"):
        a.at(H=8, W=8)
    with pytest.raises(symshape.SymshapeError, match="fc is not called at batch 1"):
        a.formula(batch=1)
    assert a.formula(batch=2)(H=9, W=9) == 8
    brute = {(h, w) for h, w in itertools.product(range(1, 8), repeat=2) if torch_output(model, (2, 3, h, w))}
    valid = a.valid_sizes(batch=2)
    assert brute == {(h, w) for h, w in itertools.product(range(1, 8), repeat=2) if valid.contains(H=h, W=w)}
    for n, h, w in itertools.product((1, 2), range(1, 6), range(1, 6)):
        assert symshape_output(a, N=n, H=h, W=w) == torch_output(model, (n, 3, h, w)), (n, h, w)
    assert a.verify(samples=6).ok and a.verify(samples=6, batch=2).ok


def _flat(model, n, h, w):
    """in_features at the LazyLinear, from a real forward of the layers before it."""
    try:
        with torch.no_grad():
            x = model.conv(torch.rand(n, 3, h, w)).squeeze(2).sum(2)
        return x.flatten(1).shape[1]
    except (RuntimeError, IndexError):
        return None


def test_case_formula_is_piecewise_and_agrees_with_torch():
    model = SqueezeRows()
    a = symshape.analyze(model, (3, "H", "W"))
    f = a.formula()
    H, W = sorted(f.expr.free_symbols, key=str)
    assert f.expr.subs({H: 1, W: 7}) == 4 and f.expr.subs({H: 2, W: 7}) == 20
    grid = f.grid(H=range(1, 7), W=range(1, 9))
    for h, w in itertools.product(range(1, 7), range(1, 9)):
        want = _flat(model, 1, h, w)
        got = f(H=h, W=w) if f.accepts(H=h, W=w) else None
        assert got == want, (h, w)
        assert bool(grid.valid[h - 1, w - 1]) == (want is not None)
        assert int(grid.values[h - 1, w - 1]) == (want or 0)
    assert isinstance(model.fc, nn.LazyLinear) and model.fc.has_uninitialized_params()  # untouched


def test_solve_covers_every_case():
    model = SqueezeRows()
    a = symshape.analyze(model, (3, "H", "W"))
    for flat in (4, 8, 20):
        got = a.solve(flat)
        for h, w in itertools.product(range(1, 9), range(1, 12)):
            assert got.contains(H=h, W=w) == (_flat(model, 1, h, w) == flat), (flat, h, w)
    none = a.solve(6)
    assert none.is_empty and none.nearest["below"][0] == 4 and none.nearest["above"][0] == 8
    valid = a.valid_sizes()
    for h, w in itertools.product(range(1, 9), range(1, 9)):
        assert valid.contains(H=h, W=w) == (_flat(model, 1, h, w) is not None)


def test_verify_and_explain_each_case():
    a = symshape.analyze(PoolSqueeze().eval(), (3, "H", "W"))
    for batch in (1, 2):
        report = a.verify(samples=8, batch=batch)
        assert report.ok and report.checked > 8
    text = a.explain()
    assert "Where N != 1:" in text and "Where N == 1 (a case of its own):" in text
    assert "(N, 8, 1, 1) → (8)" in text  # the case N == 1 shows its shapes whole
    assert a.explain(H=9, W=9, N=2).count("Derivation") == 1


def test_too_many_cases_are_refused_by_name():
    class SqueezeAll(nn.Module):
        def forward(self, x):
            return x.squeeze()

    with pytest.raises(SizeCases, match="at most 16 cases"):
        symshape.analyze(SqueezeAll(), ("A", "B", "C", "D", "E"), batch=None)


class Squeezer(nn.Module):
    def __init__(self, dims, then):
        super().__init__()
        self.dims, self.then = dims, then

    def forward(self, x):
        x = x.squeeze() if self.dims is None else x.squeeze(self.dims)
        if self.then == "sum":
            return x.sum(-1)
        if self.then == "flatten":
            return x.flatten()
        return x


@settings(max_examples=25, deadline=None)
@given(dims=st.one_of(st.none(), st.integers(0, 2), st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True)
                      .map(tuple)),
       then=st.sampled_from(["none", "sum", "flatten"]),
       sizes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), min_size=4, max_size=8))
def test_squeeze_cases_agree_with_torch(dims, then, sizes):
    model = Squeezer(dims, then)
    a = symshape.analyze(model, ("A", "B", "C"), batch=None)
    for s in sizes + [(1, 1, 1)]:
        assert symshape_output(a, **dict(zip("ABC", s))) == torch_output(model, s), s


@pytest.mark.parametrize("dim", [-1, 0, 1, -2, (0,), (-1, 0)])
def test_a_reduction_of_a_0_dim_tensor_wraps_dims_as_torch(dim):
    """After every dim is squeezed away (the case A == B == 1), a sum over dim -1 or 0 of the
    0-dim result still runs in torch: it wraps a 0-dim tensor's dims as if it had one."""
    class SumAfterSqueeze(nn.Module):
        def forward(self, x):
            return x.squeeze().sum(dim)

    model = SumAfterSqueeze()
    a = symshape.analyze(model, ("A", "B"), batch=None)
    for s in itertools.product((1, 2), repeat=2):
        assert symshape_output(a, A=s[0], B=s[1]) == torch_output(model, s), s


def test_export_spec_and_the_command_line_take_the_batchs_case(tmp_path, capsys):
    """torch.export specializes a squeeze of dim N: the spec is made from the case of the batch
    asked for, and torch exports it; the command line shows that case's output shape."""
    a = symshape.analyze(PoolSqueeze().eval(), (3, "H", "W"))
    for batch in (1, 2):
        spec = a.export_spec(batch=batch)
        assert spec.analysis is a.for_batch(batch), spec  # torch's own guards (H, W != 3, 4) are findings
        program = torch.export.export(copy.deepcopy(a.model), *spec.example_inputs(), dynamic_shapes=spec.dynamic_shapes())
        assert tuple(program.module()(torch.rand(batch, 3, 40, 33)).shape) == ((10,) if batch == 1 else (batch, 10))
    assert isinstance(a.formula(batch=2), symshape.formula.Formula)  # the case's own, compiled
    source = tmp_path / "head.py"
    source.write_text("import torch.nn as nn\n\n\nclass Head(nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.conv = nn.Conv2d(3, 8, 3, stride=2)\n"
                      "        self.pool = nn.AdaptiveAvgPool2d(1)\n        self.fc = nn.Linear(8, 10)\n\n"
                      "    def forward(self, x):\n        return self.fc(self.pool(self.conv(x)).squeeze())\n")
    for batch, shape in ((1, ["10"]), (3, ["3", "10"])):
        assert symshape.cli.main(["formula", "--json", "--batch", str(batch), f"{source}:Head", "--input", "3,H,W"]) == 0
        assert json.loads(capsys.readouterr().out)["output_shape"] == shape


def test_a_case_whose_every_size_torch_refuses_is_proved_inside_it():
    """At H == 1 the narrow refuses every size: the case's proof runs at H = 1 (where torch must
    refuse too), not at sizes of the other case, so the case keeps its steps."""
    class SqueezeAndNarrow(nn.Module):
        def forward(self, x):
            return x.squeeze(2).sum() + x.narrow(2, 1, 1).sum()

    model = SqueezeAndNarrow()
    a = symshape.analyze(model, (3, "H", "W"))
    (case,) = a.cases
    assert [s.name for s in case.steps] == [s.name for s in a.steps] and "H=1" in case.proof
    assert case.valid_sizes().is_empty
    for h, w in itertools.product(range(1, 5), range(1, 4)):
        assert symshape_output(a, H=h, W=w) == torch_output(model, (1, 3, h, w)), (h, w)
        assert a.valid_sizes().contains(H=h, W=w) == (h >= 2)
