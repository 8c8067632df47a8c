"""The symshape command: output, exit codes (0 ok, 1 finding, 2 usage error)."""

import os
import re
import subprocess
import sys

import pytest

from symshape.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "spec, shape, fc, formula, value",
    [
        ("seed000_mnist.py:Net", "1,{}", "fc1", "20*floor((H - 12)/4)*floor((W - 12)/4)", "320"),
        ("seed001_cnnclf.py:answer", "1,{}", "clf.1", "64*floor((H - 16)/12)*floor((W - 16)/12)", "3136"),
        ("seed002_pytorch_mnist.py:Net", "1,{}", "fc1", "64*floor((H - 4)/2)*floor((W - 4)/2)", "9216"),
        ("seed003_cs231n.py:simple_model", "3,{}", "3", "32*floor((H - 5)/2)*floor((W - 5)/2)", "5408"),
        ("seed003_cs231n.py:case2_model", "3,{}", "4", "64*floor(H/8)*floor(W/8)", "1024"),
    ],
)
def test_formula_on_seed_examples(capsys, spec, shape, fc, formula, value):
    size = "100,100" if "cnnclf" in spec else "32,32" if "cs231n" in spec else "28,28"
    code, out, _ = run(capsys, "formula", os.path.join(EX, spec), "--input", shape.format("H,W"))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(fc + " "))
    assert re.split(r"\s{2,}", row)[1] == formula
    code, out, _ = run(capsys, "formula", os.path.join(EX, spec), "--input", shape.format(size))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(fc + " "))
    assert re.split(r"\s{2,}", row)[1:3] == [value, value]


def test_formula_wrong_linear_is_a_finding(capsys):
    code, out, _ = run(capsys, "formula", os.path.join(EX, "seed000_mnist.py:NetMaxPool"), "--input", "1,H,W")
    assert code == 0 and "fc1    20*floor((H - 12)/4)*floor((W - 12)/4)  20000" in out
    code, out, _ = run(capsys, "formula", os.path.join(EX, "seed000_mnist.py:NetMaxPool"), "--input", "1,28,28")
    assert code == 1
    assert "fc1    320          20000  <- does not fit" in out
    assert "in_features is 20000 but the input's last dim is 320" in out


def test_formula_kwargs(capsys):
    code, out, _ = run(capsys, "formula", os.path.join(EX, "unet.py:UNet"), "--input", "1,64,64",
                       "--kwargs", '{"levels": 2, "classes": 3}')
    assert code == 0 and "the forward calls no nn.Linear; output shape: (N, 3, 64, 64)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["formula", "nope.py:Net", "--input", "1,H,W"], "no such file: nope.py"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Nett"), "--input", "1,H,W"], "has no 'Nett'; it defines: Net, NetMaxPool"),
        (["formula", os.path.join(EX, "seed000_mnist.py"), "--input", "1,H,W"], "must look like path/to/file.py:Name"),
        (["formula", "no_such_package.mod:Net", "--input", "1,H,W"], "cannot import no_such_package.mod"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,,W"], "expected comma-separated sizes"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,-3,W"], "neither a positive int nor a size name"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,0,W"], "size must be a positive int, got 0"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,10,10"], "conv2: kernel 5 needs at least 5 rows, gets 3"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--kwargs", "{bad"], "--kwargs is not valid JSON"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--kwargs", '{"x": 1}'], "Net(**{'x': 1}) failed"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,1,H,W"], "Conv2d expects a 3D or 4D input, gets 5D"),
        (["formula", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H"],
         "conv1: kernel 5 needs at least 5 rows, gets 1 (whatever H is)"),
        (["solve", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--flat", "-5"],
         "argument --flat: must be at least 0, got -5"),
        (["solve", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--flat", "320", "--layer", "fc9"],
         "--layer 'fc9': no Linear of that name; the forward calls: fc1, fc2"),
        (["solve", os.path.join(EX, "unet.py:UNet"), "--input", "1,H,W", "--flat", "320"],
         "the forward calls no nn.Linear / nn.LazyLinear"),
        (["solve", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--flat", "320", "--max", "0"],
         "argument --max: must be at least 1, got 0"),
        (["sizes", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--max", "x"],
         "argument --max: invalid int value: 'x'"),
        (["verify", os.path.join(EX, "seed000_mnist.py:Net"), "--input", "1,H,W", "--samples", "0"],
         "argument --samples: must be at least 1, got 0"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert message in err


def test_console_script_end_to_end():
    """The real entry point, as a user runs it: output and exit codes."""
    ok = subprocess.run([sys.executable, "-m", "symshape", "formula", os.path.join(EX, "seed000_mnist.py:Net"),
                         "--input", "1,28,28"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[2].split()[:3] == ["fc1", "320", "320"]
    assert ok.stderr == ""
    bad = subprocess.run([sys.executable, "-m", "symshape", "formula", "missing.py:Net", "--input", "1,H,W"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "symshape", "formula"], capture_output=True, text=True)
    assert usage.returncode == 2 and "--input" in usage.stderr
    # a finding (exit 1) through the fast exit: the whole report still arrives through a pipe
    finding = subprocess.run([sys.executable, "-m", "symshape", "check", os.path.join(EX, "seed000_mnist.py:NetMaxPool"),
                              "--input", "1,28,28"], capture_output=True, text=True)
    slow = subprocess.run([sys.executable, "-m", "symshape", "check", os.path.join(EX, "seed000_mnist.py:NetMaxPool"),
                           "--input", "1,28,28"], capture_output=True, text=True,
                          env={**os.environ, "SYMSHAPE_SLOW_EXIT": "1"})
    assert finding.returncode == slow.returncode == 1
    assert "nn.Linear(320, 50)" in finding.stdout and finding.stdout == slow.stdout


def test_solve_command(capsys):
    code, out, _ = run(capsys, "solve", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W",
                       "--flat", "5408", "--square", "--max", "40")
    assert code == 0
    assert out.splitlines() == ["3 in_features = 5408 at H = W ∈ {31, 32}", "sizes up to 40 (2):",
                                "  H=31, W=31", "  H=32, W=32"]
    code, out, _ = run(capsys, "solve", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W",
                       "--flat", "5000", "--square")
    assert code == 1
    assert out.splitlines() == ["no input size gives 3 in_features = 5000 with square inputs",
                                "nearest below: 4608 at H = W ∈ {29, 30}",
                                "nearest above: 5408 at H = W ∈ {31, 32}"]


def test_sizes_command(capsys):
    code, out, _ = run(capsys, "sizes", os.path.join(EX, "seed001_cnnclf.py:CNNclf"), "--input", "1,H,W")
    assert code == 0
    assert out.splitlines() == ["valid:       H ∈ [28, 39] and W ∈ [28, 39]", "smallest:    H=28, W=28",
                                "no rounding: H = 28 and W = 28"]
    code, out, _ = run(capsys, "sizes", os.path.join(EX, "unet.py:UNet"), "--input", "1,H,W", "--kwargs", '{"levels": 3}')
    # in training mode the bottleneck's batch norm refuses 1x1 (8x8 in): one value per channel
    assert code == 0 and out.splitlines()[:3] == ["valid:", "  H = 8 and W ≥ 16, W ≡ 0 (mod 8)",
                                                  "  H ≥ 16, H ≡ 0 (mod 8) and W ≥ 8, W ≡ 0 (mod 8)"]
    code, out, err = run(capsys, "sizes", os.path.join(EX, "seed001_cnnclf.py:CNNclf"), "--input", "1,28,28")
    assert code == 2 and "no size name" in err
