"""Analysis.export_spec / dynamic_shapes and `symshape export-spec` against real torch.export.

Truth is torch: every spec is exported afresh here with ``torch.export.export(model, example,
dynamic_shapes=spec.dynamic_shapes())`` and its program run beside eager torch at sizes the spec
admits; every set of sizes symshape says torch.export refuses is checked size by size against the
program torch exported.
"""

import json
import os
import re
import warnings

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seed000_mnist
import seed001_cnnclf
import seed003_cs231n
import symshape
import unet
from symshape.guards import GuardReader, Unparsed, violated_guards
from symshape.modules import copy_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _rand(shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _eager(model, shape):
    """The model's output at ``shape`` (a copy in eval mode), or None where torch refuses it."""
    with torch.no_grad():
        try:
            return model(_rand(shape))
        except Exception:
            return None


def _runs(program, shape) -> bool:
    with torch.no_grad():
        try:
            program(_rand(shape))
            return True
        except Exception:
            return False


def _fresh_export_agrees(model, a, spec, upto: int) -> int:
    """Export afresh with the spec and compare with eager torch at every admitted size <= upto
    (a sample of them where there are many); returns how many sizes were compared."""
    ep = torch.export.export(model, *spec.example_inputs(), dynamic_shapes=spec.dynamic_shapes())
    program = ep.module()
    sizes = spec.admitted().enumerate(max(upto, *spec.example.values()))
    assert sizes, spec
    step = max(1, len(sizes) // 8)
    for s in sizes[::step][:8]:
        shape = a.concrete_input(s)
        want = _eager(model, shape)
        assert want is not None, f"the spec admits {s}, which eager torch refuses"
        with torch.no_grad():
            got = program(_rand(shape))
        assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-5), s
    return len(sizes[::step][:8])


def _admitted_are_valid(a, spec, upto: int):
    valid = a.valid_sizes()
    members = spec.admitted().enumerate(max(upto, *spec.example.values()))
    assert members and all(valid.contains(**s) for s in members)
    assert spec.admitted().contains(**spec.example)


SEEDS = [
    ("seed000", seed000_mnist.Net, (1, "H", "W"), 64),
    ("seed001", seed001_cnnclf.CNNclf, (1, "H", "W"), 64),
    ("seed003", lambda: seed003_cs231n.case2_model, (3, "H", "W"), 48),
]


@pytest.mark.parametrize("name, make, shape, upto", SEEDS, ids=[s[0] for s in SEEDS])
def test_seed_nets_export_first_time(name, make, shape, upto):
    model = make().eval()
    a = symshape.analyze(model, shape)
    spec = a.export_spec()
    assert spec.checked.exported and spec.checked.works and len(spec.history) == 1, spec.checked
    _admitted_are_valid(a, spec, upto)
    assert _fresh_export_agrees(model, a, spec, upto) >= 2
    # the part of the valid sizes it takes, and the rest stated
    assert len(a.valid_sizes().boxes) == 1 or spec.left_out


def test_seed000_spec_is_the_28_box_and_states_the_other_parts():
    a = symshape.analyze(seed000_mnist.Net().eval(), (1, "H", "W"))
    spec = a.export_spec(check=False, H=28, W=28)
    assert str(spec.admitted()) == "H ∈ [28, 31] and W ∈ [28, 31]"
    assert spec.example == {"H": 28, "W": 28}
    assert "4 other parts of the valid sizes" in spec.left_out[0]
    assert 'H = Dim("H", min=28, max=31)' in spec.code() and 'dynamic_shapes = {"x": {2: H, 3: W}}' in spec.code()


def test_unet_derived_dims_and_the_sizes_torch_refuses_exactly():
    """A U-Net with skips needs H, W ≡ 0 (mod 32): derived dims. torch.export's program guards
    the bottleneck's 1x1 away (W // 32 != 1): symshape states that set exactly, and every size
    of the first spec up to 256 runs in torch's program exactly when it is not in it."""
    model = unet.UNet().eval()
    a = symshape.analyze(model, (1, "H", "W"))
    spec = a.export_spec()
    assert spec.forms["H"].coeff == 32 and spec.roots[spec.forms["H"].root] == (2, None)
    assert "32 * h" in spec.code()
    first = spec.history[0]
    assert first.exported and first.spec.roots[first.spec.forms["H"].root] == (1, None)
    refused = [f.sizes for f in first.findings]
    assert {"(L['x'].size()[3] // 32) != 1", "(L['x'].size()[2] // 32) != 1"} <= {f.guard for f in first.findings}
    program = first.program.module()
    for s in first.spec.admitted().enumerate(160):
        in_finding = any(r.contains(**s) for r in refused)
        assert _eager(model, a.concrete_input(s)) is not None
        assert _runs(program, a.concrete_input(s)) != in_finding, s
    assert spec.checked.works and not spec.checked.findings
    _admitted_are_valid(a, spec, 256)
    _fresh_export_agrees(model, a, spec, 200)


def _backbone() -> nn.Module:
    """A stride-32 backbone: five stride-2 stages (ResNet's stem and stages in miniature), global
    pooling and a classifier; it runs at every size."""
    layers, c = [], 3
    for out in (8, 8, 16, 16, 32):
        layers += [nn.Conv2d(c, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)).eval()


def test_stride32_backbone_export_refusals_are_valid_sizes():
    """A stride-32 backbone runs at every size; torch.export refuses the sizes where an inner dim
    is 1, one stride level at a time. Each refused set is exact: valid (eager runs it), and a
    spec that holds a size of it is refused by torch."""
    from torch.export import Dim
    model = _backbone()
    a = symshape.analyze(model, (3, "H", "W"))
    assert str(a.valid_sizes()) == "any H and W"
    spec = a.export_spec()
    assert spec.checked.works
    assert spec.roots == {"H": (33, None), "W": (33, None)}  # 17..32: the last stage is 1x1
    refused = [f for f in spec.refusals if f.stage == "export"]
    assert len(refused) == 10 and all(not f.sizes.is_empty for f in refused)
    for f in (refused[0], refused[-1]):
        s = f.sizes.min()
        assert _eager(model, a.concrete_input(s)) is not None
        # a spec starting at that size: torch.export refuses it
        lo = {k: v for k, v in s.items()}
        with pytest.raises(Exception, match="Constraints violated"):
            torch.export.export(copy_model(model), (_rand((1, 3, 40, 41)),),
                                dynamic_shapes={"input": {2: Dim("H", min=min(lo["H"], 40)),
                                                          3: Dim("W", min=min(lo["W"], 41))}})
    _fresh_export_agrees(model, a, spec, 48)


def test_ceil_mode_chain_exports_on_a_residue_class():
    """torch.export cannot prove the ceil_mode last-window guard and specializes the chain's
    branches to the example: symshape narrows the spec to where the program runs, exactly."""
    chain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(4, 4, 3),
                          nn.MaxPool2d(2, 3, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                          nn.Flatten()).eval()
    a = symshape.analyze(chain, (1, "H", "W"))
    spec = a.export_spec()
    assert spec.checked.works
    assert any(f.sizes.is_empty for f in spec.refusals)  # a guard that holds but torch cannot prove
    for check in spec.history:
        if not check.exported:
            continue
        program = check.program.module()
        refused = [f.sizes for f in check.findings]
        for s in check.spec.admitted().enumerate(60):
            if check.unsolved and _runs(program, a.concrete_input(s)):
                continue
            assert _runs(program, a.concrete_input(s)) != any(r.contains(**s) for r in refused), s
    _admitted_are_valid(a, spec, 120)
    _fresh_export_agrees(chain, a, spec, 120)


def test_model_and_torch_state_unchanged():
    """In training mode (BatchNorm would update its running stats if the model itself ran)."""
    model = _backbone().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    a = symshape.analyze(model, (3, "H", "W"))
    spec = a.export_spec()
    assert spec.checked.exported and spec.checked.runs
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_dynamic_shapes_is_the_plain_argument():
    a = symshape.analyze(seed000_mnist.Net().eval(), (1, "H", "W"))
    ds = a.dynamic_shapes(check=False, H=30, W=29)
    assert type(ds) is dict and set(ds) == {"x"} and set(ds["x"]) == {2, 3}
    ep = torch.export.export(seed000_mnist.Net().eval(), (_rand((1, 1, 30, 29)),), dynamic_shapes=ds)
    assert ep.module()(_rand((1, 1, 31, 28))).shape == (1, 10)


def test_example_must_be_accepted():
    a = symshape.analyze(seed000_mnist.Net().eval(), (1, "H", "W"))
    with pytest.raises(symshape.InvalidArgument, match="H=5, W=5 is not a size the model accepts"):
        a.export_spec(check=False, H=5, W=5)
    with pytest.raises(symshape.InvalidArgument, match="unknown size"):
        a.export_spec(check=False, X=5)


def test_tied_sizes_become_one_root():
    """x + x.transpose(2, 3) after a stride-2 conv: H and W tied; one Dim, a derived one."""
    class Sym(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, 2)

        def forward(self, x):
            y = self.conv(x)
            return y + y.transpose(2, 3)

    model = Sym().eval()
    a = symshape.analyze(model, (1, "H", "W"))
    # by default the part with the most sizes (H ≥ 3 and W ∈ {3, 4}); an example picks the tied part
    assert str(a.export_spec(check=False).admitted()) == "H ≥ 3 and W ∈ {3, 4}"
    spec = a.export_spec(H=9, W=10)
    assert spec.forms["H"].root == spec.forms["W"].root and spec.forms["W"].code() == "2 * h + 2"
    assert spec.checked.works
    _admitted_are_valid(a, spec, 60)
    _fresh_export_agrees(model, a, spec, 60)


def test_several_inputs_by_name():
    import image_mask
    model = image_mask.ImageMask().eval()
    a = symshape.analyze(model, ((3, "H", "W"), (1, "H", "W")))
    spec = a.export_spec()
    ds = spec.dynamic_shapes()
    assert list(ds) == list(__import__("inspect").signature(model.forward).parameters)[:2]
    assert spec.checked.works


def test_guard_reader_parses_never_evaluates():
    H = symshape.dims.size_symbol("H")
    reader = GuardReader({("x", 2): H})
    fails = reader.dnf("(L['x'].size()[2] // 32) != 1", holds=False)
    assert len(fails) == 1 and fails[0][0].relation == "=="
    for text in ("__import__('os').system('true') != 1", "L['x'].size()[2].bit_length() > 1", "open('f') == 1",
                 "L['y'].size()[2] == 1", "(lambda: 1)() == 1"):
        with pytest.raises(Unparsed):
            reader.dnf(text, holds=False)


def test_violated_guards_from_torch_message():
    msg = ("Constraints violated (H, W)! For more information, run with TORCH_LOGS=\"+dynamic\".\n"
           "  - Not all values of W = L['x'].size()[3] in the specified range satisfy the generated guard "
           "(1 + (((-1) + L['x'].size()[3]) // 2)) != 1.\n"
           "  - Not all values of H = L['x'].size()[2] in the specified range satisfy the generated guard "
           "(1 + (((-1) + L['x'].size()[2]) // 2)) != 1.\nSuggested fixes:\n  H = Dim('H', min=3)")
    assert violated_guards(msg) == ["(1 + (((-1) + L['x'].size()[3]) // 2)) != 1",
                                     "(1 + (((-1) + L['x'].size()[2]) // 2)) != 1"]


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.booleans()), min_size=1,
                max_size=3))
def test_random_conv_stacks_export_and_agree(layers):
    """Random conv/pool stacks: the spec torch exports admits only valid sizes and its program
    agrees with eager torch; every size of the first spec runs in the first program exactly
    when no finding holds it."""
    mods, c = [], 1
    for k, s, p, pool in layers:
        p = min(p, k // 2)
        mods += [nn.Conv2d(c, 2, k, s, p), nn.ReLU()] + ([nn.MaxPool2d(2, ceil_mode=s == 2)] if pool else [])
        c = 2
    model = nn.Sequential(*mods).eval()
    a = symshape.analyze(model, (1, "H", "W"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = a.export_spec()
    assert spec.checked.works, spec.checked
    _admitted_are_valid(a, spec, 40)
    first = spec.history[0]
    if first.exported and not first.unsolved:
        program = first.program.module()
        refused = [f.sizes for f in first.findings]
        for s in first.spec.admitted().enumerate(30)[::3]:
            assert _runs(program, a.concrete_input(s)) != any(r.contains(**s) for r in refused), s


def test_cli_prints_python_that_exports(capsys, monkeypatch, examples_dir):
    """The printed code is pasteable: run as Python (our own output, in the test), it gives the
    dynamic_shapes torch exports the U-Net with, at the example shape it names."""
    from symshape.cli import main
    monkeypatch.chdir(os.path.dirname(examples_dir))
    assert main(["export-spec", "examples/unet.py:UNet", "--input", "1,H,W"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# examples/unet.py:UNet: eval mode, batch 1, input 1,H,W\n")
    assert "# torch.export.export with this spec: exported" in out
    scope: dict = {}
    exec(compile(out, "<export-spec>", "exec"), scope)  # noqa: S102 - symshape's own output
    example = re.search(r"# example inputs: torch.randn\((.*?)\)", out).group(1)
    shape = tuple(int(v) for v in example.split(", "))
    model = unet.UNet().eval()
    ep = torch.export.export(model, (_rand(shape),), dynamic_shapes=scope["dynamic_shapes"])
    with torch.no_grad():
        assert torch.allclose(ep.module()(_rand((1, 1, 96, 128))), model(_rand((1, 1, 96, 128))), atol=1e-5)


def test_cli_no_check_json_and_errors(capsys, monkeypatch, examples_dir):
    from symshape.cli import main
    monkeypatch.chdir(os.path.dirname(examples_dir))
    assert main(["export-spec", "examples/seed000_mnist.py:Net", "--input", "1,H,W", "--size", "H=28,W=30",
                 "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "torch.export.export with" not in out and "# example inputs: torch.randn(1, 1, 28, 30)" in out
    assert main(["export-spec", "examples/seed000_mnist.py:Net", "--input", "1,H,W", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["roots"] == {"H": {"min": 28, "max": 31}, "W": {"min": 28, "max": 31}}
    assert data["dynamic_shapes"] == {"x": {"2": {"root": "H", "coeff": 1, "const": 0},
                                            "3": {"root": "W", "coeff": 1, "const": 0}}}
    assert data["export"]["exported"] and all(r["result"] == "agrees" for r in data["export"]["runs"])
    assert main(["export-spec", "examples/seed000_mnist.py:Net", "--input", "1,H,W", "--size", "5x5"]) == 2
    assert "H=5, W=5 is not a size the model accepts" in capsys.readouterr().err
    assert main(["export-spec", "examples/seed000_mnist.py:Net", "--input", "1,H,W", "--size", "5x"]) == 2
    assert "--size '5x'" in capsys.readouterr().err


def test_an_example_torch_specializes_is_exit_1_with_the_reason(capsys, monkeypatch, examples_dir):
    """At 32×64 the U-Net's bottleneck is 1 row high: torch.export takes H for a constant and
    refuses the spec; symshape says why, and the command exits 1 (no spec torch exports)."""
    from symshape.cli import main
    monkeypatch.chdir(os.path.dirname(examples_dir))
    a = symshape.analyze(unet.UNet().eval(), (1, "H", "W"))
    spec = a.export_spec(H=32, W=64)
    assert not spec.checked.exported and "specialized it to be a constant" in spec.checked.message
    assert spec.notes and "0 or 1" in spec.notes[0]
    assert main(["export-spec", "examples/unet.py:UNet", "--input", "1,H,W", "--size", "32x64"]) == 1
    out = capsys.readouterr().out
    assert "# torch.export.export refused the spec: UserError: Constraints violated" in out
    assert "# note: at the example a size-dependent dim is 0 or 1" in out


def test_what_is_left_out_and_why():
    """A union, a ≠ hole and a second residue class are each stated, with the reason."""
    from symshape.export import _best, _left_out
    from symshape.sizes import IntSet, SizeSet

    hole = IntSet.at_least(5) - IntSet.of([7])
    p = _best(hole, None)
    assert (p.step, p.offset, p.first, p.hi) == (1, 0, 8, None)
    [note] = _left_out(SizeSet(["H"], [{"H": hole}]), 0, {"H": p}, {"H": hole})
    assert note.startswith("H ∈ {5, 6}") and "H = 7 is not valid, a hole below" in note
    two = IntSet.congruent(0, 32, 32) | IntSet.congruent(16, 32, 48)  # H ≡ 0 (mod 16) from 32 on
    assert (_best(two, None).step, _best(two, None).first) == (16, 32)
    classes = IntSet.congruent(0, 32, 32) | IntSet.congruent(8, 32, 40)
    q = _best(classes, None)
    assert (q.step, q.offset) == (32, 0)
    [note] = _left_out(SizeSet(["H"], [{"H": classes}]), 0, {"H": q}, {"H": classes})
    assert "one Dim states one residue class; the spec takes H ≡ 0 (mod 32)" in note
    assert _best(classes, 40).offset == 8  # an example picks its class
    union = SizeSet(["H", "W"], [{"H": IntSet.interval(28, 31), "W": IntSet.interval(28, 31)},
                                 {"H": IntSet.interval(16, 19), "W": IntSet.interval(76, 79)}])
    i = next(i for i, b in enumerate(union.boxes) if b["H"] == IntSet.interval(28, 31))
    notes = _left_out(union, i, {"H": _best(IntSet.interval(28, 31), None), "W": _best(IntSet.interval(28, 31), None)},
                      union.boxes[i])
    assert notes == ["H ∈ [16, 19] and W ∈ [76, 79] (1 other part of the valid sizes: a Dim holds one range per size, "
                     "and these sizes are coupled or a union)"]


def test_guard_forms_of_real_models_solve_exactly():
    """The guards the zoo's exports produce, solved against the same condition in Python at every
    W up to 300: ConvNeXt's ``1 % n != 0``, MobileNet's range with no end, GoogLeNet's guard in
    its Dims' names (torch's own report of it fails, pytorch/pytorch#121286)."""
    from symshape.dims import size_symbol
    from symshape.solve import solve_requirements

    H, W = size_symbol("H"), size_symbol("W")
    reader = GuardReader({("x", 2): H, ("x", 3): W}, {"H": H, "W": W})

    def fails_at(text):
        boxes = []
        for conj in reader.dnf(text, holds=False):
            boxes += solve_requirements(["W"], [("g", r) for r in conj]).boxes
        return symshape.SizeSet(["W"], boxes)

    cases = [
        ("(1 % (96*(L['x'].size()[3] // 4))) != 0", lambda w: 1 % (96 * (w // 4)) != 0 if w >= 4 else None),
        ("(4 % (1 + L['x'].size()[3] // 6)) != 0", lambda w: 4 % (1 + w // 6) != 0),
        ("33 <= L['x'].size()[3] and L['x'].size()[3] <= IntInfinity()", lambda w: 33 <= w),
        ("(1 + (((-1) + L['x'].size()[3]) // 2)) != 1", lambda w: 1 + (w - 1) // 2 != 1),
        ("not (L['x'].size()[3] % 3 == 1 or L['x'].size()[3] < 5)", lambda w: not (w % 3 == 1 or w < 5)),
    ]
    for text, truth in cases:
        fails = fails_at(text)
        for w in range(1, 301):
            if truth(w) is not None:
                assert fails.contains(W=w) == (not truth(w)), (text, w)
    [g] = violated_guards("AssertionError: Expected op to be '==', got < for (-2) + 2*(((1/2)*W) // 2) < (1/2)*W")
    assert g == "(-2) + 2*(((1/2)*W) // 2) < (1/2)*W"
    fails = fails_at(g)
    assert all(fails.contains(W=w) == (not (-2 + 2 * ((w / 2) // 2) < w / 2)) for w in range(1, 301))
