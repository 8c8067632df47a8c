"""Random models against real torch: every step's shape, and refusing exactly where torch does."""

import os

from hypothesis import given, settings

from oracle import check_sizes, torch_runs
from strategies import models
import symshape

# about 15% of drawn models fail a check at every size (refused at analysis, and checked to be
# refused by torch); 380 draws leave over 300 analyzed models in the default run
EXAMPLES = int(os.environ.get("SYMSHAPE_FUZZ_EXAMPLES", "380"))
TALLY = {"models": 0, "sizes": 0, "accepted": 0, "refused": 0, "disagreements": 0, "verify_checks": 0,
         "refused_models": 0}


@settings(max_examples=EXAMPLES)
@given(models())
def test_random_models_agree_with_torch(drawn):
    model, input_shape, sizes_list, description = drawn
    try:
        analysis = symshape.analyze(model, input_shape)
    except symshape.InvalidInputSize as e:
        # refused for every size at analysis time (a wrong rank, a check that fails whatever the
        # sizes are): torch must refuse every drawn size too
        TALLY["refused_models"] += 1
        for sizes in sizes_list:
            ok = torch_runs(model, input_shape, sizes)
            TALLY["sizes"] += 1
            TALLY["refused"] += 1
            assert not ok, f"{description}\n{model}\nsymshape refused every size ({e}), torch ran at {sizes}"
        return
    TALLY["models"] += 1
    for sizes in sizes_list:
        ok, bad = check_sizes(analysis, sizes)
        TALLY["sizes"] += 1
        TALLY["accepted" if ok else "refused"] += 1
        TALLY["disagreements"] += bool(bad)
        assert not bad, f"{description}\n{model}\ninput {input_shape} at {sizes}:\n" + "\n".join(bad)
    # and Analysis.verify, in the mode the model was analyzed in: its own sampled sizes (smallest valid, just below,
    # rounding edges) plus the drawn ones
    report = analysis.verify(samples=len(sizes_list) + 4, seed=len(TALLY))
    TALLY["verify_checks"] += report.checked
    assert report.ok, f"{description}\n{model}\n{report}"
    report = analysis.verify(sizes=sizes_list)
    TALLY["verify_checks"] += report.checked
    assert report.ok, f"{description}\n{model}\n{report}"
