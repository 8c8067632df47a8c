"""A second differential fuzz, independent of the rules' own generator: models assembled from
blocks written after torchvision's model code (tests/model_blocks.py), with random
hyper-parameters and functional keyword variants, checked against real torch forwards step by
step at every square size up to 40 and where the model's windows exactly fit or fall one short
(around multiples of its total stride, read from its modules, not from symshape)."""

import os

from hypothesis import HealthCheck, given, settings

import symshape
from model_blocks import Functional, independent_models
from oracle import check_sizes, torch_runs

EXAMPLES = int(os.environ.get("SYMSHAPE_INDEPENDENT_EXAMPLES", "12"))
TALLY = {"models": 0, "refused_models": 0, "sizes": 0, "accepted": 0, "disagreements": 0}


def _strides(model) -> int:
    """The product of the strides the model's layers declare (its total stride)."""
    total = 1
    for m in model.modules():
        s = getattr(m, "stride", None)
        if isinstance(m, Functional):
            s = m.s if m.kind in ("max", "avg", "conv") else None
        if isinstance(s, tuple):
            s = s[0]
        if isinstance(s, int) and s > 1:
            total *= s
    return total


def _sizes(model) -> list[dict[str, int]]:
    total = _strides(model)
    edges = {k * total + d for k in (1, 2, 3) for d in (-1, 0, 1)}  # a window exactly fits, or falls one short
    square = sorted(set(range(1, 41)) | {n for n in edges if 1 <= n <= 300})
    out = [{"H": n, "W": n} for n in square]
    out += [{"H": n, "W": n + 1} for n in sorted(edges) if 1 <= n <= 300]
    out += [{"H": n + 1, "W": n} for n in sorted(edges) if 1 <= n <= 300]
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(independent_models())
def test_models_from_real_blocks_agree_with_torch(drawn):
    model, shape = drawn
    sizes = _sizes(model)
    try:
        analysis = symshape.analyze(model, shape)
    except symshape.InvalidInputSize as e:
        TALLY["refused_models"] += 1
        ran = [s for s in sizes if torch_runs(model, shape, s)]
        assert not ran, f"{model}\nsymshape refused every size ({e}), torch ran at {ran[:3]}"
        return
    TALLY["models"] += 1
    for s in sizes:
        ok, bad = check_sizes(analysis, s)
        TALLY["sizes"] += 1
        TALLY["accepted"] += ok
        TALLY["disagreements"] += bool(bad)
        assert not bad, f"{model}\nat {s}:\n" + "\n".join(bad)
