"""The torchvision classification zoo: analyze, verify, the smallest size (pytest -m zoo).

Needs torchvision, which does not import beside torch 2.13.0: run in a venv with
torch==2.14.1 torchvision==0.29.1 (DEVELOPERS.md). Skipped when torchvision is absent.
"""

import os
import sys

import pytest

pytestmark = pytest.mark.zoo
torchvision = pytest.importorskip("torchvision", reason="the zoo needs torchvision (see DEVELOPERS.md)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import symshape  # noqa: E402
import zoo  # noqa: E402


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_model(name):
    r = zoo.run(name, samples=6)
    assert r["mismatches"] == 0, str(r["report"])
    assert r["min_square"] == r["torch_min_square"], r


def test_vit_image_size_check_is_a_constraint():
    a = symshape.analyze(zoo.build("vit_b_16"), (3, "H", "W"))
    assert str(a.valid_sizes()) == "H = 224 and W = 224"


def test_inception_v3_smallest_is_75():
    assert symshape.analyze(zoo.build("inception_v3"), (3, "H", "W")).valid_sizes(square=True).min() == {"H": 75, "W": 75}


@pytest.mark.parametrize("name, part, expected", [
    ("vgg11_bn", "features", "(N, 512, floor(H/32), floor(W/32))"),
    ("alexnet", "features", "(N, 256, floor((H - 31)/32), floor((W - 31)/32))"),
    ("mobilenet_v2", "features", "(N, 1280, floor((H + 31)/32), floor((W + 31)/32))"),
    ("densenet121", "features", "(N, 1024, floor((H + 3)/32), floor((W + 3)/32))"),
])
def test_feature_extractor_shapes(name, part, expected):
    model = getattr(zoo.build(name), part)
    a = symshape.analyze(model, (3, "H", "W"))
    assert str(a.output_shape) == expected
    assert a.verify(samples=4).ok


def test_resnet50_trunk():
    import torch.nn as nn

    trunk = nn.Sequential(*list(zoo.build("resnet50").children())[:-2])
    a = symshape.analyze(trunk, (3, "H", "W"))
    assert str(a.output_shape) == "(N, 2048, floor((H + 31)/32), floor((W + 31)/32))"


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_export_spec(name):
    """export_spec() on the zoo: where torch.export exports the spec, a fresh export with it runs
    beside eager torch at the spec's sizes and agrees; where torch refuses every spec tried, its
    error is reported (the figures in docs/deploy.md)."""
    import export_spec

    model = zoo.build(name)
    a = symshape.analyze(model, (3, "H", "W"))
    spec = a.export_spec()
    valid = a.valid_sizes()
    assert all(valid.contains(**s) for s in spec.admitted().enumerate(300)[:50])
    if spec.checked.works:
        agree, n = export_spec.independent(model, spec)
        assert agree == n >= 1
    else:
        assert spec.checked.error or spec.checked.runs
