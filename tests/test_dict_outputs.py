"""A model whose output is a dict: transformers' models return a ``ModelOutput`` (an
``OrderedDict`` of the fields that are set), segmentation heads a dict of named maps. symshape's
output shape is then a dict of shapes by key, compared with torch's at every size; the proof
compared a dict of traced tensors with torch's tensors and refused every such model."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

import symshape
from oracle import grid, members, scan


class ModelOutput(OrderedDict):
    """transformers' ModelOutput, as far as shapes go: a dict of the fields that are set."""


class Named(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.conv(x)
        pooled = self.fc(y.mean((2, 3)))
        if self.kind == "dict":
            return {"out": y}
        if self.kind == "model_output":
            return ModelOutput(last_hidden_state=y, pooler_output=pooled)
        return ModelOutput(maps=(y, y[:, :1]), extra={"pooled": pooled})  # nested


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items()}
    return tuple(_shapes(v) for v in value)


@pytest.mark.parametrize("kind", ["dict", "model_output", "nested"])
def test_a_dict_output_is_a_dict_of_shapes_that_torch_gives(kind):
    model = Named(kind).eval()
    a = symshape.analyze(model, (3, "H", "W"))
    assert isinstance(a.output_shape, dict)
    for h, w in [(3, 3), (7, 12), (32, 20)]:
        with torch.no_grad():
            expected = _shapes(model(torch.rand(1, 3, h, w)))
        assert a.at(H=h, W=w).output_shape == expected
    assert members(a.valid_sizes(), ["H", "W"], 8) == scan(model, (3, "H", "W"), ["H", "W"], 8)
    assert a.verify(sizes=grid(["H", "W"], [1, 2, 3, 9])).ok
    assert a.in_features == {"fc": 8}  # the Linear's in_features, as for any output
    assert "out" in str(a) or "last_hidden_state" in str(a) or "maps" in str(a)
