"""A view whose -1 takes the batch dim (``x.view(-1, 9216)``): check, formula and explain flag
it; at a size where one sample becomes several rows, or where the view fails, check and formula
report a finding (exit 1) with the fix (issue 20, point 2). Checked against torch."""

import json
import os

import pytest
import torch
import torch.nn as nn

import symshape
from test_cli import EX, run

ALEXNET = os.path.join(EX, "alexnet.py") + ":AlexNet"


def _torch_rows(model, size):
    try:
        with torch.no_grad():
            return model(torch.zeros(1, 3, size, size)).shape[0]
    except RuntimeError:
        return None


def test_rows_and_failures_agree_with_torch():
    import alexnet

    model = alexnet.AlexNet().eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    (merge,) = analysis.batch_merges()
    assert merge.step == "view" and "N" not in str(merge.rows)
    seen = set()
    for size in range(63, 460, 9):
        rows = _torch_rows(model, size)
        report = analysis.check(H=size, W=size)
        if rows is None:  # torch refuses the view (or a layer before it)
            assert not report.ok
            seen.add("fails")
        elif rows == 1:
            assert report.ok, (size, str(report))
            seen.add("ok")
        else:
            assert [v["rows"] for v in report.views] == [str(rows)], (size, rows, report.views)
            seen.add("rows")
    assert seen == {"fails", "ok", "rows"}


def test_the_cli_reports_4_rows_at_419_and_the_failing_view_as_a_finding(capsys):
    code, out, _ = run(capsys, "check", ALEXNET, "--input", "3,419,419")
    assert code == 1
    assert "one sample becomes 4 rows of 9216" in out and "x.flatten(1)" in out
    code, out, _ = run(capsys, "check", ALEXNET, "--input", "3,300,300", "--json")
    assert code == 1
    view = json.loads(out)["views"][0]
    import alexnet
    try:
        alexnet.AlexNet().eval()(torch.zeros(1, 3, 300, 300))
        raise AssertionError("torch ran the view at 300x300")
    except RuntimeError as e:
        torch_says = str(e)
    assert view["rows"] is None and f"torch raises: {torch_says};" in view["message"]
    assert torch_says == "shape '[-1, 9216]' is invalid for input of size 16384"
    code, out, _ = run(capsys, "formula", ALEXNET, "--input", "3,300,300")
    assert code == 1 and "fails at" in out and "x.flatten(1)" in out
    code, out, _ = run(capsys, "check", ALEXNET, "--input", "3,224,224")
    assert code == 0 and "all Linear layers fit" in out
    for command in ("formula", "explain"):
        code, out, _ = run(capsys, command, ALEXNET, "--input", "3,H,W")
        assert code == 0 and "note: view (Tensor.view) folds the batch dim into -1" in out


@pytest.mark.parametrize("flatten", [
    lambda x: x.flatten(1),
    lambda x: x.view(x.size(0), -1),
    lambda x: x.reshape(x.shape[0], -1, 4),
    lambda x: torch.flatten(x, 1),
])
def test_views_that_keep_the_batch_are_not_flagged(flatten):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, x):
            return flatten(self.conv(x))

    assert symshape.analyze(Net(), (3, "H", "W")).batch_merges() == []


# -- check --fix rewrites the view ----------------------------------------------------------------

VIEWS = {
    "flat": ("x = x.view(-1, 256 * 6 * 6)", "x = x.flatten(1)"),
    "nchw": ("x = x.view(-1, 256, 6, 6).flatten(1)", "x = x.view(x.size(0), 256, 6, 6).flatten(1)"),
    "tuple": ("x = x.reshape((-1, 9216))", "x = x.flatten(1)"),
}


def _alexnet_with(tmp_path, line: str):
    source = open(os.path.join(EX, "alexnet.py"), encoding="utf-8").read()
    path = tmp_path / "net.py"
    path.write_bytes(source.replace("x = x.view(-1, 256 * 6 * 6)", line).replace("\n", "\r\n").encode())
    return path


def _load(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"net_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AlexNet().eval()


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_fix_rewrites_the_view_and_only_it(tmp_path, capsys, kind):
    old, new = VIEWS[kind]
    path = _alexnet_with(tmp_path, old)
    before = path.read_bytes()
    assert _torch_rows_at(_load(path), 419) == 4
    code, out, _ = run(capsys, "check", f"{path}:AlexNet", "--input", "3,419,419", "--fix")
    assert code == 0, out
    assert f"+        {new}" in out and ("fixed view" in out or "fixed reshape" in out)
    after = path.read_bytes()
    assert after == before.replace(old.encode(), new.encode())  # every other byte kept (CRLF too)
    model = _load(path)
    assert _torch_rows_at(model, 419) is None  # one row now: the 4x9216 no longer reach the Linear
    assert _torch_rows_at(model, 224) == 1
    code, out, err = run(capsys, "check", f"{path}:AlexNet", "--input", "3,419,419")
    if kind == "nchw":  # the view keeps the batch now, and torch refuses 36864 values as 256x6x6
        assert code == 2 and "view(N, 256, 6, 6) needs 9216 elements, gets 36864" in err
    else:
        assert code == 1 and "in_features is 9216, but 36864 reach it" in out


def _torch_rows_at(model, size):
    return _torch_rows(model, size)


@pytest.mark.parametrize("line, why", [
    ("x = nn.functional.relu(x).view(-1, 256, 6, 6).flatten(1)", "of an expression"),
    ("x = x.view(-1, 9216) if True else x.view(-1, 9216)", "2 calls .view(-1, 9216)"),
])
def test_fix_refuses_what_it_cannot_rewrite_exactly(tmp_path, capsys, line, why):
    path = _alexnet_with(tmp_path, line)
    before = path.read_bytes()
    code, out, _ = run(capsys, "check", f"{path}:AlexNet", "--input", "3,419,419", "--fix")
    assert code == 1 and "not fixed: view: " in out and why in out
    assert path.read_bytes() == before


def test_fix_through_the_console_script(tmp_path):
    import subprocess
    import sys

    path = _alexnet_with(tmp_path, VIEWS["flat"][0])
    argv = [sys.executable, "-m", "symshape", "check", f"{path}:AlexNet", "--input", "3,419,419"]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1 and "one sample becomes 4 rows of 9216" in r.stdout
    r = subprocess.run([*argv, "--fix"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "fixed view in net.py" in r.stdout
    assert b"x = x.flatten(1)\r\n" in path.read_bytes()
