"""Analysis.verify: sampled sizes, mismatch reports, the model left alone, the CLI."""

import os

import pytest
import torch
import torch.nn as nn

import seed000_mnist
import seed003_cs231n
import symshape
from symshape.cli import main
from symshape.rules import registry
from test_unchanged import same, snapshot

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_verify_samples_the_edges_and_agrees():
    a = symshape.analyze(seed000_mnist.Net(), (1, "H", "W"))
    report = a.verify()
    assert report.ok and not report.mismatches
    assert report.sizes[:3] == [{"H": 28, "W": 28}, {"H": 27, "W": 28}, {"H": 28, "W": 27}]
    assert len(report.sizes) == 20 and report.checked > 100
    assert [r[1] for r in report.results[:3]] == [True, False, False]  # torch ran at the smallest only
    assert str(report).startswith("verified on cpu: 20 sizes")


def test_verify_checks_rounding_edges_and_given_sizes():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Flatten(), nn.LazyLinear(3))
    a = symshape.analyze(net, (1, "H", "W"))
    report = a.verify(samples=1)
    # the smallest valid size 3x3 (where the stride-2 division is exact), just below it, and the
    # first size past the edge, where the division rounds
    assert report.sizes == [{"H": 3, "W": 3}, {"H": 2, "W": 3}, {"H": 3, "W": 2}, {"H": 4, "W": 3}, {"H": 3, "W": 4}]
    given = a.verify(sizes=[{"H": 9, "W": 7}, {"H": 1, "W": 7}])
    assert given.sizes == [{"H": 9, "W": 7}, {"H": 1, "W": 7}] and given.ok


def test_a_wrong_rule_is_caught_with_layer_size_values_and_rule(monkeypatch):
    rule = registry._MODULE_RULES[nn.MaxPool2d]
    original = rule.fn

    def off_by_one(ctx, module, x, **kw):
        out = original(ctx, module, x, **kw)
        return symshape.tensor.SymTensor((*out.shape[:-1], out.shape[-1] + 1))

    monkeypatch.setitem(registry._MODULE_RULES, nn.MaxPool2d, rule.__class__(
        rule.name, off_by_one, rule.kind, rule.target, rule.bound, rule.overridable))
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(2))
    # analyze() proves the trace with one forward and refuses the wrong rule outright ...
    with pytest.raises(symshape.TraceMismatch, match=r"the trace does not match the model at H=224, W=256: 1 at"):
        symshape.analyze(net, (1, "H", "W"))
    # ... and verify() (here without the proof) names the layer, the sizes and the rule
    report = symshape.analyze(net, (1, "H", "W"), prove=False).verify(samples=4)
    assert not report.ok
    first = report.mismatches[0]
    assert (first.layer, first.rule, first.what) == ("1", "max_pool", "output shape")
    assert first.predicted[-1] == first.actual[-1] + 1
    assert str(first).startswith(f"1 at H={first.sizes['H']}, W={first.sizes['W']} (output shape, rule max_pool)")
    # the in_features check notices the same error one layer later
    assert any(m.what == "in_features" and m.layer == "3" for m in report.mismatches)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_verify_leaves_the_model_alone(device):
    lazy = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(5))
    hooked = seed000_mnist.Net()
    hooked.conv1.register_forward_hook(lambda m, i, o: None)
    hooked.fc2.eval()  # mixed flags must come back mixed
    for model in (lazy, hooked, seed003_cs231n.case2_model):
        before = snapshot(model)
        report = symshape.analyze(model, (model is seed003_cs231n.case2_model and 3 or 1, "H", "W")).verify(
            samples=5, device=device)
        assert report.checked > 0
        assert same(before, snapshot(model)), (model, device)
    assert lazy[4].has_uninitialized_params()
    assert hooked.training and not hooked.fc2.training


def test_meta_agrees_on_the_seed_nets():
    for model, shape in ((seed000_mnist.Net(), (1, "H", "W")), (seed003_cs231n.case2_model, (3, "H", "W"))):
        assert symshape.analyze(model, shape).verify(samples=8, device="meta").ok


def test_verify_cli(capsys):
    code = main(["verify", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W", "--samples", "5"])
    out, err = capsys.readouterr()
    assert code == 0 and out.splitlines()[1].startswith("verified on cpu: ") and "0 mismatches" in out and err == ""
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["verify", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W", "--samples", "0"])
    assert e.value.code == 2 and "--samples: must be at least 1" in capsys.readouterr().err


def test_verify_cli_reports_a_mismatch(capsys, monkeypatch):
    rule = registry._MODULE_RULES[nn.Conv2d]
    monkeypatch.setitem(registry._MODULE_RULES, nn.Conv2d, rule.__class__(
        rule.name, lambda ctx, module, x, **kw: symshape.tensor.SymTensor((*x.shape[:1], module.out_channels, 5, 5)),
        rule.kind, rule.target, rule.bound, rule.overridable))
    code = main(["verify", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W", "--samples", "3"])
    out, _ = capsys.readouterr()
    assert code == 1 and "mismatch: 0 at H=" in out and "rule conv" in out


def test_random_sizes_stay_within_the_element_budget():
    # x3 then x3 per dim: at a 30-cube the last tensor would hold 264^3 = 18.4M elements per channel
    net = nn.Sequential(nn.ConvTranspose3d(1, 2, 1, stride=3), nn.Upsample(scale_factor=3.0))
    a = symshape.analyze(net, (1, "T", "H", "W"))
    from symshape.verify import MAX_SAMPLED_ELEMENTS, _largest, sample_sizes

    sizes = sample_sizes(a, a.valid_sizes(), samples=12)
    assert len(sizes) == 12
    assert all(_largest(a.evaluate(**s)) <= MAX_SAMPLED_ELEMENTS for s in sizes)
    assert _largest(a.evaluate(T=30, H=30, W=30)) == 2 * 264 ** 3
    assert net(torch.rand(1, 1, 2, 3, 4)).numel() == _largest(a.evaluate(T=2, H=3, W=4))
    assert a.verify(samples=12).ok


def test_verify_checks_the_analysis_it_is_given_once_per_size(monkeypatch):
    """No second analysis (nothing is traced again) and one evaluation per checked size."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Flatten(), nn.LazyLinear(3))
    a = symshape.analyze(net, (1, "H", "W"))
    import symshape.trace as trace_module

    monkeypatch.setattr(trace_module, "_Tracer", None)  # any new trace would fail
    monkeypatch.setattr(trace_module, "_fast_sequential", lambda m: (_ for _ in ()).throw(AssertionError("traced")))
    calls = []
    evaluate = a.evaluate
    monkeypatch.setattr(a, "evaluate", lambda **s: calls.append(s) or evaluate(**s))
    sizes = [{"H": 3, "W": 3}, {"H": 2, "W": 9}, {"H": 17, "W": 8}]
    report = a.verify(sizes=sizes)
    assert report.ok and len(report.results) == 3
    assert sorted(map(sorted, (c.items() for c in calls))) == sorted(map(sorted, (s.items() for s in sizes)))


def test_verify_runs_in_the_mode_the_model_was_analyzed_in():
    """A training-mode BatchNorm at batch 1 refuses a 1x1 map; in eval mode it does not. verify
    agrees with the analysis in each mode, and leaves the flags and torch's RNG as they were."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    train = symshape.analyze(net, (1, "H", "W"))
    assert train.mode == "train"
    assert not train.evaluate(H=3, W=3).ok and train.evaluate(H=4, W=3).ok
    state = torch.random.get_rng_state()
    report = train.verify(sizes=[{"H": 3, "W": 3}, {"H": 4, "W": 3}])
    assert report.ok, report
    assert [r[1] for r in report.results] == [False, True]  # torch raised at 1x1, in training mode
    assert torch.equal(torch.random.get_rng_state(), state)
    net.eval()
    evaluated = symshape.analyze(net, (1, "H", "W"))
    assert evaluated.mode == "eval" and evaluated.evaluate(H=3, W=3).ok
    net.train()
    report = evaluated.verify(sizes=[{"H": 3, "W": 3}])  # the model is back in training mode now
    assert report.ok and report.results[0][1], report
    assert all(m.training for m in net.modules())


def test_verify_refuses_a_size_with_a_missing_name_clearly():
    a = symshape.analyze(nn.Conv2d(1, 2, 3), (1, "H", "W"))
    with pytest.raises(symshape.SymshapeError, match="missing size"):
        a.verify(sizes=[{"H": 28}])


def test_verify_given_a_list_first_says_to_pass_sizes():
    a = symshape.analyze(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), (1, "H", "W"))
    with pytest.raises(symshape.InvalidArgument, match=r"sizes=\["):
        a.verify([{"H": 5, "W": 5}])
    assert a.verify(sizes=[{"H": 5, "W": 5}]).ok


class _ReadsValues(nn.Module):
    """transformers' mask code: a read of a tensor's values that fx tracing skips
    (``if not is_tracing(x) and (x[:, -1] == 0).all()``)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        if not isinstance(x, torch.fx.Proxy) and x.sum().item() > 1e30:
            x = x[:, :1]
        return self.lin(x)


def test_a_meta_model_that_reads_values_is_refused_saying_so():
    """Its meta forward stops at ``.item()``: nothing proves the trace there, and the refusal says
    why and what to do; the same model on the CPU is proved by its own forward."""
    analysis = symshape.analyze(_ReadsValues(), ("T", 4))
    assert analysis.proof == "T=224" and analysis.verify(samples=4).ok
    with torch.device("meta"):
        model = _ReadsValues()
    with pytest.raises(symshape.TraceMismatch) as e:
        symshape.analyze(model, ("T", 4))
    assert "reads a tensor's values (Tensor.item() cannot be called on meta tensors)" in str(e.value)
    assert "build it on the CPU" in str(e.value)
