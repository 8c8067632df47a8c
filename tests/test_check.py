"""symshape check: wrong Linear layers, torch's exact error, the sizes that would fit, --fix."""

import os
import shutil
import textwrap

import pytest
import torch
import torch.nn as nn

import seed000_mnist
import seed001_cnnclf
import seed003_cs231n
import symshape
from symshape.check import torch_linear_error
from symshape.cli import main

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def torch_error(model, shape):
    with pytest.raises(RuntimeError) as e:
        with torch.no_grad():
            model.eval()(torch.rand(1, *shape))
    return str(e.value).splitlines()[0]


def test_seed000_any_number_20000():
    model = seed000_mnist.NetMaxPool()
    report = symshape.analyze(model, (1, "H", "W")).check(H=28, W=28)
    assert not report.ok and [f.layer for f in report.findings] == ["fc1"]
    f = report.findings[0]
    assert (f.declared, f.value, str(f.formula)) == (20000, 320, "20*floor((H - 12)/4)*floor((W - 12)/4)")
    assert f.error == "mat1 and mat2 shapes cannot be multiplied (1x320 and 20000x50)"
    assert f.error == torch_error(model, (1, 28, 28))
    assert f.fix == "nn.Linear(320, 50)" and f.lazy_fix == "nn.LazyLinear(50)"
    assert f.fits.min() == {"H": 112, "W": 172} and f.fits.contains(H=16, W=4012)
    assert str(report).splitlines()[0] == "fc1: in_features is 20000, but 320 reach it at H=28, W=28"


def test_seed001_cnnclf_at_100():
    model = seed001_cnnclf.CNNclf()
    report = symshape.analyze(model, (1, "H", "W")).check(H=100, W=100)
    (f,) = report.findings
    assert (f.layer, f.declared, f.value) == ("clf.1", 64, 3136)
    assert f.error == torch_error(model, (1, 100, 100))
    assert str(f.fits) == "H ∈ [28, 39] and W ∈ [28, 39]"
    assert f.fix == "nn.Linear(3136, 20)"


def test_two_wrong_linears_are_both_reported():
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(100, 50, bias=False),
                              torch.nn.ReLU(), torch.nn.Linear(49, 10))
    report = symshape.analyze(net, (1, "L")).check(L=30)
    assert [(f.layer, f.declared, f.value) for f in report.findings] == [("2", 100, 112), ("4", 49, 50)]
    assert report.findings[0].fix == "nn.Linear(112, 50, bias=False)"
    assert report.findings[1].fits is not None and report.findings[1].fits.is_empty  # 50 reaches it always
    # torch's message for the first, and for the second once the first is right
    assert report.findings[0].error == torch_error(net, (1, 30))
    net[2] = torch.nn.Linear(112, 50, bias=False)
    assert report.findings[1].error == torch_error(net, (1, 30))


@pytest.mark.parametrize("shape", [(1, 320), (2, 3, 320), (320,), (4, 1, 320)])
def test_error_message_is_torchs(shape):
    with pytest.raises(RuntimeError) as e:
        torch.nn.Linear(20000, 50)(torch.rand(*shape))
    assert torch_linear_error(shape, 20000, 50) == str(e.value).splitlines()[0]


def test_symbolic_check_tells_where_each_linear_fits():
    report = symshape.analyze(seed001_cnnclf.CNNclf(), (1, "H", "W")).check()
    assert report.ok and str(report.fits["clf.1"]) == "H ∈ [28, 39] and W ∈ [28, 39]"
    never = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, stride=2), torch.nn.Flatten(), torch.nn.Linear(7, 3))
    report = symshape.analyze(never, (1, "H", "W")).check()
    assert not report.ok and report.findings[0].fits.is_empty  # 2*a*b is never 7


# --fix ------------------------------------------------------------------------------------------


def copy_example(tmp_path, name):
    dst = tmp_path / name
    shutil.copy(os.path.join(EX, name), dst)
    return dst


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fix_rewrites_only_the_literal(tmp_path, capsys):
    path = copy_example(tmp_path, "seed001_cnnclf.py")
    before = path.read_text()
    code, out, _ = run(capsys, "check", f"{path}:CNNclf", "--input", "1,100,100")
    assert code == 1 and path.read_text() == before  # without --fix nothing is written
    code, out, _ = run(capsys, "check", f"{path}:CNNclf", "--input", "1,100,100", "--fix")
    assert code == 0
    after = path.read_text()
    assert "-            nn.Linear(64, 20, bias=True),\n+            nn.Linear(3136, 20, bias=True),\n" in out
    assert after == before.replace("nn.Linear(64, 20, bias=True)", "nn.Linear(3136, 20, bias=True)")
    code, out, _ = run(capsys, "check", f"{path}:CNNclf", "--input", "1,100,100")
    assert code == 0 and out.strip().splitlines()[1] == "all Linear layers fit (clf.1, clf.3)"
    assert out.strip().splitlines()[2].startswith("note: unbatched, model(x) with x.shape == (1, 100, 100) gives "
                                                  "clf.1 in_features 49, not 3136 (clf.0, nn.Flatten, merges other dims)")


def test_lazy_and_missing_linears_are_named(capsys):
    lazy = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(5))
    report = symshape.analyze(lazy, (1, "H", "W")).check()
    assert report.ok and report.lazy == ["2"]
    assert str(report) == "nothing to check: 2 is lazy (in_features is set at the first call)"
    mixed = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(8), nn.Linear(8, 2))
    report = symshape.analyze(mixed, (1, 5, 5)).check()
    assert str(report) == "all Linear layers fit (3); 2 is lazy (in_features is set at the first call)"
    assert str(symshape.analyze(nn.Conv2d(1, 4, 3), (1, "H", "W")).check()) == (
        "nothing to check: the forward calls no nn.Linear (nor another layer whose parameters fix an input size)")


def test_fix_computed_literal(tmp_path, capsys):
    path = copy_example(tmp_path, "seed003_cs231n.py")
    code, out, _ = run(capsys, "check", f"{path}:case2_model", "--input", "3,64,64", "--fix")
    assert code == 0
    assert "-fc = nn.Linear(64 * 4 * 4, 10)\n+fc = nn.Linear(4096, 10)\n" in out
    assert "fc = nn.Linear(4096, 10)\n" in path.read_text()


def test_fix_refuses_a_variable(tmp_path, capsys):
    path = copy_example(tmp_path, "seed000_mnist.py")
    before = path.read_text()
    code, out, _ = run(capsys, "check", f"{path}:NetMaxPool", "--input", "1,28,28", "--fix")
    assert code == 1 and path.read_text() == before
    assert "not fixed: fc1: in_features comes from any_number (line" in out
    assert "not a literal: set it to 320 where it is defined" in out


def test_fix_two_wrong_linears_and_a_constructor_argument(tmp_path, capsys):
    path = tmp_path / "two.py"
    path.write_text(textwrap.dedent('''\
        import torch.nn as nn


        class Two(nn.Module):
            def __init__(self, hidden=50):
                super().__init__()
                self.conv = nn.Conv1d(1, 4, 3)
                self.fc1 = nn.Linear(100, 50)  # was it 100?
                self.fc2 = nn.Linear(49, 10)
                self.fc3 = nn.Linear(hidden, 2)

            def forward(self, x):
                return self.fc3(self.fc2(self.fc1(self.conv(x).flatten(1))))
        '''))
    before = path.read_text()
    # built with hidden passed explicitly: the fix belongs to the caller, not to the default
    code, out, _ = run(capsys, "check", f"{path}:Two", "--input", "1,30", "--kwargs", '{"hidden": 50}', "--fix")
    text = path.read_text()
    assert "self.fc1 = nn.Linear(112, 50)  # was it 100?" in text and "self.fc2 = nn.Linear(50, 10)" in text
    assert "self.fc3 = nn.Linear(hidden, 2)" in text and "def __init__(self, hidden=50):" in text
    assert "fixed fc1, fc2 in" in out
    assert code == 1 and "fc3: in_features is 50, but 10 reach it" in out
    assert "not fixed: fc3: in_features comes from the parameter hidden (line 10), which the model was built " \
           "with another value for: pass hidden=10" in out
    # built with hidden at its default (used for fc3 only): the default is what built the layer
    path.write_text(before)
    code, out, _ = run(capsys, "check", f"{path}:Two", "--input", "1,30", "--fix")
    assert code == 0 and "fixed fc3, fc1, fc2 in" in out
    assert path.read_text() == before.replace("hidden=50", "hidden=10").replace(
        "nn.Linear(100, 50)", "nn.Linear(112, 50)").replace("nn.Linear(49, 10)", "nn.Linear(50, 10)")


# -- --fix on awkward files (issue 22 point 2) -------------------------------------------------------

NET = '''import torch.nn as nn
{before}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(100, 10){after}

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
'''


@pytest.mark.parametrize("before, after", [
    ("\f\n# a form feed above", ""),
    ("# a line separator \u2028 in a comment", "  # and \u2029 here"),
    ("x = '\u2028'\f", ""),
])
def test_fix_edits_the_right_characters_whatever_the_line_breaks(tmp_path, capsys, before, after):
    path = tmp_path / "odd.py"
    source = NET.format(before=before, after=after)
    path.write_bytes(source.encode("utf-8"))
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1,8,8", "--fix")
    assert code == 0 and "fixed fc in" in out
    assert path.read_bytes() == source.replace("nn.Linear(100, 10)", "nn.Linear(144, 10)").encode("utf-8")


def test_fix_keeps_crlf_newlines_and_a_latin1_file(tmp_path, capsys):
    crlf = tmp_path / "crlf.py"
    source = NET.format(before="", after="").replace("\n", "\r\n")
    crlf.write_bytes(source.encode("utf-8"))
    code, _, _ = run(capsys, "check", f"{crlf}:Net", "--input", "1,8,8", "--fix")
    assert code == 0 and crlf.read_bytes() == source.replace("(100, 10)", "(144, 10)").encode("utf-8")
    latin = tmp_path / "latin.py"
    source = "# -*- coding: latin-1 -*-\n" + NET.format(before="# caf\u00e9, na\u00efve", after="  # \u00e9")
    latin.write_bytes(source.encode("latin-1"))
    code, _, _ = run(capsys, "check", f"{latin}:Net", "--input", "1,8,8", "--fix")
    assert code == 0 and latin.read_bytes() == source.replace("(100, 10)", "(144, 10)").encode("latin-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crlf.py", "latin.py"]  # no temporary file left


def test_fix_edits_the_analyzed_class_and_its_constructor_default_only(tmp_path, capsys):
    path = tmp_path / "two_classes.py"
    source = '''import torch.nn as nn


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(100, 10)


class Net(nn.Module):
    def __init__(self, n=100):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(n, 10)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))
'''
    path.write_text(source)
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1,8,8", "--fix")
    assert code == 0 and path.read_text() == source.replace("n=100", "n=144")


def test_fix_refuses_one_literal_that_two_layers_need_differently(tmp_path, capsys):
    path = tmp_path / "shared.py"
    source = '''import torch.nn as nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(100, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 16, 3)
        self.b = nn.Conv2d(1, 16, 5)
        self.ha = Head()
        self.hb = Head()

    def forward(self, x):
        return self.ha(self.a(x)) + self.hb(self.b(x))
'''
    path.write_text(source)
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1,15,15", "--fix")
    assert code == 1 and path.read_text() == source
    assert "not fixed: ha.fc: 100 (line 7) builds several layers: ha.fc needs 2704, hb.fc needs 1936" in out
    assert "---" not in out  # no diff: nothing was written
    # both need the same value (the second conv as the first): one edit of the shared literal
    path.write_text(source.replace("nn.Conv2d(1, 16, 5)", "nn.Conv2d(1, 16, 3)"))
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1,15,15", "--fix")
    assert code == 0 and "fixed ha.fc, hb.fc in" in out
    assert path.read_text() == source.replace("nn.Conv2d(1, 16, 5)", "nn.Conv2d(1, 16, 3)").replace(
        "nn.Linear(100, 10)", "nn.Linear(2704, 10)")


def test_fix_reports_a_file_it_cannot_write_and_prints_no_diff(tmp_path, capsys, monkeypatch):
    import symshape.fix as fix_module

    path = tmp_path / "net.py"
    source = NET.format(before="", after="")
    path.write_text(source)

    def refuse(*_args):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(fix_module.os, "replace", refuse)
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1,8,8", "--fix")
    assert code == 1 and path.read_text() == source
    assert "not fixed: fc: cannot write " in out and "net.py: read-only file system" in out
    assert "---" not in out and "fixed fc" not in out.replace("not fixed: fc", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py"]
