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
    assert view["rows"] is None and "needs a multiple of 9216 elements" in view["message"]
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
