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
    assert code == 0 and "the forward calls no nn.Linear (nor another layer whose parameters fix an input size); output shape: (N, 3, 64, 64)" in out


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
         "--layer 'fc9': no fixed layer of that name; the forward calls: fc1, fc2"),
        (["solve", os.path.join(EX, "unet.py:UNet"), "--input", "1,H,W", "--flat", "320"],
         "the forward calls no nn.Linear (nor another layer whose parameters fix an input size)"),
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
    assert ok.stdout.splitlines()[0].endswith(": eval mode, batch 1, input 1,28,28")  # what the answer is for
    assert ok.stdout.splitlines()[3].split()[:3] == ["fc1", "320", "320"]
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
    assert out.splitlines()[1:] == ["3 in_features = 5408 at H = W ∈ {31, 32}", "sizes up to 40 (2):",
                                "  H=31, W=31", "  H=32, W=32"]
    code, out, _ = run(capsys, "solve", os.path.join(EX, "seed003_cs231n.py:simple_model"), "--input", "3,H,W",
                       "--flat", "5000", "--square")
    assert code == 1
    assert out.splitlines()[1:] == ["no input size gives 3 in_features = 5000 with square inputs",
                                "nearest below: 4608 at H = W ∈ {29, 30}",
                                "nearest above: 5408 at H = W ∈ {31, 32}"]


def test_sizes_command(capsys):
    code, out, _ = run(capsys, "sizes", os.path.join(EX, "seed001_cnnclf.py:CNNclf"), "--input", "1,H,W")
    assert code == 0
    assert out.splitlines()[1:] == ["valid:       H ∈ [28, 39] and W ∈ [28, 39]", "smallest:    H=28, W=28",
                                "no rounding: H = 28 and W = 28"]
    code, out, _ = run(capsys, "sizes", os.path.join(EX, "unet.py:UNet"), "--input", "1,H,W", "--kwargs", '{"levels": 3}',
                       "--train")
    # in training mode the bottleneck's batch norm refuses 1x1 (8x8 in): one value per channel
    assert code == 0 and out.splitlines()[1:4] == ["valid:", "  H = 8 and W ≥ 16, W ≡ 0 (mod 8)",
                                                   "  H ≥ 16, H ≡ 0 (mod 8) and W ≥ 8, W ≡ 0 (mod 8)"]
    code, out, _ = run(capsys, "sizes", os.path.join(EX, "unet.py:UNet"), "--input", "1,H,W", "--kwargs", '{"levels": 3}')
    assert code == 0 and out.splitlines()[1] == "valid:       H ≥ 8, H ≡ 0 (mod 8) and W ≥ 8, W ≡ 0 (mod 8)"
    code, out, err = run(capsys, "sizes", os.path.join(EX, "seed001_cnnclf.py:CNNclf"), "--input", "1,28,28")
    assert code == 2 and "no size name" in err


# -- --json (issue 22 point 7): one object per command, parsed -------------------------------------

import json  # noqa: E402

SEED0 = os.path.join(EX, "seed000_mnist.py:Net")


def _int_set_ok(s):
    assert set(s) == {"intervals", "from", "period", "residues", "text"}
    assert all(len(i) == 2 and i[0] <= i[1] for i in s["intervals"]) and s["period"] >= 1
    assert all(0 <= r < s["period"] for r in s["residues"])


def _size_set_ok(s, names):
    assert s["names"] == names and isinstance(s["text"], str)
    for box in s["boxes"]:
        assert sorted(box) == sorted(names)
        for v in box.values():
            _int_set_ok(v)


def _members(s, names, upto):
    """The members of a JSON size set up to ``upto``, read from the JSON alone."""
    def has(iset, n):
        if n < iset["from"]:
            return any(lo <= n <= hi for lo, hi in iset["intervals"])
        return n % iset["period"] in iset["residues"]
    import itertools
    return {c for c in itertools.product(range(1, upto + 1), repeat=len(names))
            if any(all(has(box[k], v) for k, v in zip(names, c)) for box in s["boxes"])}


def _json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    doc = json.loads(out)
    assert doc["command"] == argv[0]
    return code, doc


def test_json_formula(capsys):
    code, doc = _json(capsys, "formula", SEED0, "--input", "1,H,W")
    assert code == 0 and doc["input"] == [1, "H", "W"] and doc["output_shape"] == ["N", "10"]
    assert doc["layers"][0] == {"layer": "fc1", "in_features": "20*floor((H - 12)/4)*floor((W - 12)/4)",
                                "value": None, "declared": 320, "fits": None}
    code, doc = _json(capsys, "formula", os.path.join(EX, "seed000_mnist.py:NetMaxPool"), "--input", "1,28,28")
    assert code == 1 and doc["problems"] and any(layer["fits"] is False for layer in doc["layers"])


def test_json_solve_and_sizes_describe_the_same_sets_as_the_api(capsys):
    import symshape
    from symshape.load import load_model
    a = symshape.analyze(load_model(SEED0), (1, "H", "W"))
    code, doc = _json(capsys, "solve", SEED0, "--input", "1,H,W", "--flat", "320", "--max", "40")
    assert code == 0 and doc["layer"] == "fc1" and doc["flat"] == 320
    _size_set_ok(doc["solutions"], ["H", "W"])
    expected = {(r["H"], r["W"]) for r in a.solve(320).enumerate(40)}
    assert _members(doc["solutions"], ["H", "W"], 40) == expected == {(m["H"], m["W"]) for m in doc["members"]}
    code, doc = _json(capsys, "solve", SEED0, "--input", "1,H,W", "--flat", "321")
    assert code == 1 and doc["solutions"]["boxes"] == [] and set(doc["nearest"]) == {"below", "above"}
    code, doc = _json(capsys, "sizes", SEED0, "--input", "1,H,W", "--max", "30")
    assert code == 0 and doc["smallest"] == a.valid_sizes().min()
    _size_set_ok(doc["valid"], ["H", "W"])
    _size_set_ok(doc["no_rounding"], ["H", "W"])
    assert _members(doc["valid"], ["H", "W"], 30) == {(r["H"], r["W"]) for r in a.valid_sizes().enumerate(30)}
    assert len(doc["members"]) == a.valid_sizes().count(30)


def test_json_check_explain_verify(capsys):
    code, doc = _json(capsys, "check", SEED0, "--input", "1,32,32")
    assert code == 1 and doc["ok"] is False
    (finding,) = [f for f in doc["findings"] if f["layer"] == "fc1"]
    assert finding["declared"] == 320 and finding["value"] == 500 and finding["fix"] == "nn.Linear(500, 50)"
    assert "mat1 and mat2" in finding["error"]
    code, doc = _json(capsys, "explain", SEED0, "--input", "1,28,28")
    assert code == 0 and doc["sizes"] == {"H": 28, "W": 28} and doc["steps"][0]["name"] == "conv1"
    assert doc["text"].startswith("Derivation")
    code, doc = _json(capsys, "verify", SEED0, "--input", "1,H,W", "--samples", "2")
    assert code == 0 and doc["ok"] is True and doc["checked"] > 0 and doc["mismatches"] == []
    assert all(set(r) == {"sizes", "torch_runs", "symshape_runs", "mismatches"} for r in doc["results"])


def test_json_usage_error_is_an_object_too(capsys):
    code, out, err = run(capsys, "formula", "missing.py:Net", "--input", "1,H,W", "--json")
    assert code == 2 and json.loads(out) == {"command": "formula", "error": {
        "type": "ModelLoadError", "message": "no such file: missing.py"}}
    assert err.count("\n") == 1


# -- model files that take over the process, streams (issue 22 point 7) ----------------------------

SCRIPTS = {
    "argp.py": "import argparse\np = argparse.ArgumentParser()\np.add_argument('--epochs', required=True)\n"
               "args = p.parse_args()\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "hard_exit.py": "import os\nos._exit(0)\n",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_model_file_that_exits_at_import_is_a_usage_error(tmp_path, name):
    path = tmp_path / name
    path.write_text("import torch.nn as nn\n" + SCRIPTS[name] + "class Net(nn.Module):\n    pass\n")
    argv_before = list(sys.argv)
    r = subprocess.run([sys.executable, "-m", "symshape", "formula", f"{path}:Net", "--input", "1,H,W"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "exited" in r.stderr, r.stderr
    assert sys.argv == argv_before


def test_a_dataclass_with_postponed_annotations_loads(tmp_path, capsys):
    path = tmp_path / "cfg_model.py"
    path.write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\nimport torch.nn as nn\n\n"
        "@dataclass\nclass Cfg:\n    ch: int = 4\n\n"
        "class Net(nn.Module):\n    def __init__(self, cfg: Cfg = Cfg()):\n        super().__init__()\n"
        "        self.c = nn.Conv2d(1, cfg.ch, 3)\n        self.fc = nn.Linear(cfg.ch * 26 * 26, 2)\n\n"
        "    def forward(self, x):\n        return self.fc(self.c(x).flatten(1))\n")
    code, out, _ = run(capsys, "formula", f"{path}:Net", "--input", "1,H,W")
    assert code == 0 and "4*(H - 2)*(W - 2)" in out


def test_a_closed_output_stops_quietly():
    conv = "torch.nn:Conv2d --kwargs '{\"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 3}'"
    listing = f"{sys.executable} -m symshape sizes {conv} --input 1,H,W --max 600"  # 357,604 lines
    r = subprocess.run(f"{listing} | head -2", shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert r.stdout.splitlines()[1] == "valid:       H ≥ 3 and W ≥ 3" and r.stderr == ""
    code = subprocess.run(f"set -o pipefail; {listing} | head -1 > /dev/null", shell=True,
                          executable="/bin/bash").returncode
    assert code == 141


def test_ctrl_c_is_one_line_and_exit_130():
    import signal
    import time
    p = subprocess.Popen([sys.executable, "-m", "symshape", "sizes", "torch.nn:Conv2d", "--input", "1,H,W",
                          "--kwargs", '{"in_channels": 1, "out_channels": 1, "kernel_size": 3}', "--max", "3000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err == "symshape: interrupted\n"


def test_a_long_listing_is_streamed(capsys):
    import symshape
    from symshape.load import load_model
    valid = symshape.analyze(load_model(SEED0), (1, "H", "W")).valid_sizes()
    it = valid.members(10 ** 6)
    first = [next(it) for _ in range(3)]  # no list of 10**12 sizes is built first
    assert first == valid.enumerate(100)[:3] == [{"H": 16, "W": 76}, {"H": 16, "W": 77}, {"H": 16, "W": 78}]
    assert valid.count(60) == len(valid.enumerate(60))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_or_closed_stdout_is_one_line_not_a_traceback():
    cmd = f"{sys.executable} -m symshape formula {SEED0} --input 1,H,W"
    full = subprocess.run(f"{cmd} > /dev/full", shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert full.returncode == 2 and full.stderr == "symshape: error: cannot write the output: No space left on device\n"
    closed = subprocess.run(f"{cmd} >&-", shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert closed.returncode == 141 and closed.stderr == ""
