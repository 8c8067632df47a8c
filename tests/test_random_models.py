"""Random models against real torch: every step's shape, and refusing exactly where torch does."""

import os

from hypothesis import given, settings

from oracle import check_sizes
from strategies import models
import symshape

EXAMPLES = int(os.environ.get("SYMSHAPE_FUZZ_EXAMPLES", "300"))
TALLY = {"models": 0, "sizes": 0, "accepted": 0, "refused": 0, "disagreements": 0, "verify_checks": 0}


@settings(max_examples=EXAMPLES)
@given(models())
def test_random_models_agree_with_torch(drawn):
    model, input_shape, sizes_list, description = drawn
    try:
        analysis = symshape.analyze(model, input_shape)
    except symshape.InvalidInputSize:
        # refused for every size at analysis time (a wrong rank): torch must refuse too
        ok, _ = check_sizes_without_analysis(model, input_shape, sizes_list[0])
        assert not ok, f"{description}: symshape refused every size, torch ran"
        return
    TALLY["models"] += 1
    for sizes in sizes_list:
        ok, bad = check_sizes(analysis, sizes)
        TALLY["sizes"] += 1
        TALLY["accepted" if ok else "refused"] += 1
        TALLY["disagreements"] += bool(bad)
        assert not bad, f"{description}\n{model}\ninput {input_shape} at {sizes}:\n" + "\n".join(bad)
    # and Analysis.verify in eval mode: its own sampled sizes (smallest valid, just below,
    # rounding edges) plus the drawn ones
    report = analysis.verify(samples=len(sizes_list) + 4, seed=len(TALLY))
    TALLY["verify_checks"] += report.checked
    assert report.ok, f"{description}\n{model}\n{report}"
    report = analysis.verify(sizes=sizes_list)
    TALLY["verify_checks"] += report.checked
    assert report.ok, f"{description}\n{model}\n{report}"


def check_sizes_without_analysis(model, input_shape, sizes):
    import torch

    x = torch.rand(1, *(sizes.get(d, d) for d in input_shape))
    try:
        with torch.no_grad():
            model(x)
        return True, []
    except Exception:
        return False, []
