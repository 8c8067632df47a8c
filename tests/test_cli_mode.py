"""The command line answers the inference question: eval mode and batch 1 by default, --train and
--batch N on request, and every answer says which (issue 20, point 1). Checked against torch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from test_cli import EX, ROOT, run

UNET = os.path.join(EX, "unet.py") + ":UNet"


def _torch_runs(model, shape) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
        return True
    except (RuntimeError, ValueError):
        return False


def test_unet_docstring_holds_through_the_cli():
    """examples/unet.py says: H and W multiples of 2**levels (32) -- in eval mode, the default."""
    out = subprocess.run([sys.executable, "-m", "symshape", "sizes", UNET, "--input", "1,H,W"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{UNET}: eval mode, batch 1, input 1,H,W"
    assert lines[1] == "valid:       H ≥ 32, H ≡ 0 (mod 32) and W ≥ 32, W ≡ 0 (mod 32)"


@pytest.mark.parametrize("train, batch", [(False, 1), (True, 1), (True, 2), (False, 3)])
def test_sizes_in_each_mode_and_batch_agree_with_torch(capsys, train, batch):
    import unet

    argv = ["sizes", UNET, "--input", "1,H,W", "--json", "--batch", str(batch)] + (["--train"] if train else [])
    code, out, _ = run(capsys, *argv)
    assert code == 0
    doc = json.loads(out)
    assert (doc["mode"], doc["batch"]) == ("train" if train else "eval", batch)
    valid = {(h, w) for h, w in ((32, 32), (32, 64), (64, 32), (64, 64), (48, 64))
             if any(b.get("H") and _in(h, b["H"]) and _in(w, b["W"]) for b in doc["valid"]["boxes"])}
    model = unet.UNet().train(train)
    for h, w in ((32, 32), (32, 64), (64, 32), (64, 64), (48, 64)):
        assert ((h, w) in valid) == _torch_runs(model, (batch, 1, h, w)), (train, batch, h, w)


def _in(n: int, s: dict) -> bool:
    """Membership in a JSON int set (docs/cli.md)."""
    if any(lo <= n <= hi for lo, hi in s["intervals"]):
        return True
    return s["from"] is not None and n >= s["from"] and n % s["period"] in s["residues"]


def test_train_mode_at_batch_1_refuses_a_1x1_map(capsys):
    code, out, _ = run(capsys, "sizes", UNET, "--input", "1,H,W", "--train")
    assert code == 0
    assert out.splitlines()[0].endswith("train mode, batch 1, input 1,H,W")
    assert "H = 32 and W ≥ 64" in out  # the 1x1 bottleneck map at 32x32: BatchNorm refuses it in training


def test_formula_at_a_batch_and_verify_in_its_mode(capsys):
    code, out, _ = run(capsys, "formula", os.path.join(EX, "seed000_mnist.py") + ":Net", "--input", "1,28,28",
                       "--batch", "4")
    assert code == 0
    assert out.splitlines()[0].endswith(": eval mode, batch 4, input 1,28,28")
    code, out, _ = run(capsys, "verify", UNET, "--input", "1,H,W", "--batch", "2", "--train", "--samples", "3")
    assert code == 0, out
    assert "train mode, batch 2" in out.splitlines()[0]
    assert "N=2" in out and "0 mismatches" in out


def test_batch_and_no_batch_exclude_each_other(capsys):
    code, _, err = run(capsys, "sizes", UNET, "--input", "1,H,W", "--batch", "2", "--no-batch")
    assert code == 2 and "exclude each other" in err
    code, _, err = run(capsys, "sizes", UNET, "--input", "1,H,W", "--batch", "0")
    assert code == 2 and "at least 1" in err


def test_explain_writes_the_header_as_a_comment_of_its_format(capsys):
    spec = os.path.join(EX, "seed000_mnist.py") + ":Net"
    for fmt, start in (("text", spec), ("md", "<!-- "), ("latex", "% ")):
        code, out, _ = run(capsys, "explain", spec, "--input", "1,28,28", "--format", fmt)
        assert code == 0
        assert out.splitlines()[0].startswith(start) and "eval mode, batch 1" in out.splitlines()[0]


def test_the_api_keeps_the_models_mode_and_says_it():
    import symshape
    import unet

    model = unet.UNet()  # training mode, as constructed
    analysis = symshape.analyze(model, (1, "H", "W"))
    assert model.training and analysis.mode == "train"
    assert str(analysis).splitlines()[0] == "input (N, 1, H, W), train mode"
    assert analysis.valid_sizes(batch=2) != analysis.valid_sizes()
    report = analysis.verify(samples=3, batch=2)
    assert report.ok and all(s["N"] == 2 for s in report.sizes)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["sizes", "--help"]])
def test_help_and_version_answer_without_importing_torch(argv):
    code = ("import sys\nfrom symshape.cli import main\ntry:\n    main(%r)\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\nassert 'torch' not in sys.modules and 'sympy' not in sys.modules, "
            "'imported'\n" % argv)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "symshape" in out.stdout


def test_the_package_imports_lazily_and_still_exports_everything():
    code = ("import sys, symshape\nassert 'torch' not in sys.modules\n"
            "assert all(hasattr(symshape, n) for n in symshape.__all__)\n"
            "assert 'torch' in sys.modules and symshape.tensor.SymTensor\n"
            "from symshape import analyze, SizeSet\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _console_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "symshape")


def test_a_package_module_spec_loads_from_the_current_folder(tmp_path):
    """``symshape formula pkg.models:Net`` from the folder holding pkg/, as ``python -m`` would."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 2))\n\n\n"
        "def make_net():\n    return Net()\n")
    script = _console_script()
    if not os.path.exists(script):
        pytest.skip("the symshape console script is not installed in this environment")
    ok = subprocess.run([script, "formula", "pkg.models:Net", "--input", "1,H,W"], capture_output=True, text=True,
                        cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "4*(H - 2)*(W - 2)" in ok.stdout
    missing = subprocess.run([script, "formula", "pkg.models:Nett", "--input", "1,H,W"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    assert missing.returncode == 2
    assert "it defines: Net (models and model classes); make_net (functions, e.g. factories)" in missing.stderr


def test_a_refusal_names_the_op_without_a_graph_dump_unless_debug(tmp_path, capsys):
    path = tmp_path / "gather.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
                    "        return torch.gather(x, 2, torch.randint(0, 5, (1, 3, 2)))\n")
    code, _, err = run(capsys, "formula", f"{path}:Net", "--input", "3,L")
    assert code == 2 and "torch.gather" in err and "(called at 'gather' in Net)" in err
    assert "num_users" not in err and "%" not in err
    code, _, err = run(capsys, "formula", f"{path}:Net", "--input", "3,L", "--debug")
    assert code == 2 and "traced node: %gather : [num_users=" in err


def test_a_long_size_set_prints_its_first_lines_and_how_many_more():
    from symshape.cli import MAX_SET_LINES, _show
    from symshape.sizes import IntSet, SizeSet

    boxes = [{"H": IntSet.interval(10 * i, 10 * i + 3), "W": IntSet.interval(i + 1, i + 1)} for i in range(1, 31)]
    sizes = SizeSet(("H", "W"), boxes)
    text = _show("valid:", sizes).splitlines()
    assert len(text) == MAX_SET_LINES and text[-1] == f"  … and {len(sizes.lines()) - MAX_SET_LINES + 2} more (--json lists them all)"
    assert text[1:-1] == [f"  {line}" for line in sizes.lines()[:MAX_SET_LINES - 2]]
